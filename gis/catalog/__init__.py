"""The catalog of the shared city GIS: layers, immutable versions, licences, the change feed.

- :mod:`gis.catalog.model`: the records (:class:`Layer`, :class:`Version`, :class:`ChangeEvent`);
- :mod:`gis.catalog.licences`: licences, access levels and their rules;
- :mod:`gis.catalog.gates`: the checks a product passes before publication;
- :mod:`gis.catalog.products`: product kinds, lineage sidecars, checksums;
- :mod:`gis.catalog.service`: :class:`Catalog`, the operations on any backend.
"""

from gis.catalog.licences import ACCESS_LEVELS, LICENCES, Licence, check_licence_rules, get_licence
from gis.catalog.model import KINDS, ChangeEvent, Layer, Version


def __getattr__(name: str):
    # The service imports the backends, which import the model: loaded on first use to keep imports acyclic.
    if name in ("Catalog", "Published"):
        from gis.catalog import service

        return getattr(service, name)
    raise AttributeError(name)

__all__ = ["ACCESS_LEVELS", "KINDS", "LICENCES", "Catalog", "ChangeEvent", "Layer", "Licence", "Published",
           "Version", "check_licence_rules", "get_licence"]
