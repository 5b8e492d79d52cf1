"""Storage backends of the city GIS, behind one interface (:class:`gis.backends.base.Backend`).

Backends are named in ``store.backend`` of ``lutece.yml``; the registry maps a
short name to a dotted path, loaded only when used, and a dotted path
(``mycity.store:MyBackend``) works too.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from gis.errors import ConfigError

BACKENDS: dict[str, str] = {
    "geopackage": "gis.backends.geopackage:GeoPackageBackend",
    "postgis": "gis.backends.postgis:PostGISBackend",
}


def load_backend_class(name: str) -> type:
    """The backend class of a short name or a ``module:Class`` dotted path."""
    target = BACKENDS.get(name, name)
    module_name, _, attribute = target.partition(":")
    if not attribute:
        raise ConfigError(f"store.backend {name!r} is not available; use one of {', '.join(BACKENDS)}")
    try:
        return getattr(import_module(module_name), attribute)
    except (ImportError, AttributeError):
        raise ConfigError(f"store.backend {name!r}: cannot load {target}; use one of {', '.join(BACKENDS)}") from None


def open_backend(store: dict[str, Any], create: bool = True):
    """Open the backend the ``store`` section of the configuration describes.

    Examples
    --------
    >>> backend = open_backend({"backend": "geopackage", "path": "city"})  # doctest: +SKIP
    """
    name = store.get("backend", "geopackage")
    cls = load_backend_class(name)
    if name == "geopackage" or cls.__name__ == "GeoPackageBackend":
        return cls(store.get("path", "city"), create=create)
    return cls(store, create=create)
