"""The catalog of the shared city GIS: layers, immutable versions, licences, the change feed.

- :mod:`gis.records`: the records (:class:`Layer`, :class:`Version`, :class:`ChangeEvent`), below
  the catalog and the backends (also importable as :mod:`gis.catalog.model`);
- :mod:`gis.catalog.licences`: licences, access levels and their rules;
- :mod:`gis.catalog.gates`: the checks a product passes before publication;
- :mod:`gis.catalog.products`: product kinds, lineage sidecars (checksums: :mod:`gis.checksums`);
- :mod:`gis.catalog.service`: :class:`Catalog`, the operations on any backend.
"""

from gis.catalog.licences import ACCESS_LEVELS, LICENCES, Licence, check_licence_rules, get_licence
from gis.catalog.service import Catalog, Published
from gis.records import KINDS, ChangeEvent, Layer, Version

__all__ = ["ACCESS_LEVELS", "KINDS", "LICENCES", "Catalog", "ChangeEvent", "Layer", "Licence", "Published",
           "Version", "check_licence_rules", "get_licence"]
