"""Two per-request costs of pygeoapi 0.21's Features handler, cached once per process.

pygeoapi builds a new pyproj ``Transformer`` for every ``bbox`` it takes to
the storage CRS (25 ms, half of an items request) and parses the CRS URIs
of every request again. Both depend only on the CRS URIs, so the same
functions are wrapped with a cache keyed by them; what they return and raise
is unchanged.
"""

from __future__ import annotations

from functools import lru_cache

_installed = False


@lru_cache(maxsize=64)
def _transformer(from_crs: str, to_crs: str):
    import pyproj
    from pygeoapi.util import get_crs_from_uri

    return pyproj.Transformer.from_crs(get_crs_from_uri(from_crs), get_crs_from_uri(to_crs))


def transform_bbox(bbox: list, from_crs: str, to_crs: str) -> list:
    """pygeoapi's ``transform_bbox`` with the transformer cached."""
    transform = _transformer(from_crs, to_crs).transform
    n_dims = len(bbox) // 2
    return list(transform(*bbox[:n_dims]) + transform(*bbox[n_dims:]))


def install() -> None:
    """Put the cached versions in place of pygeoapi's (idempotent)."""
    global _installed
    if _installed:
        return
    import pygeoapi.api.itemtypes as itemtypes

    original = itemtypes.create_crs_transform_spec

    @lru_cache(maxsize=256)
    def cached_spec(storage_crs, supported: tuple, query_crs_uri):
        config = {"crs": list(supported)}
        if storage_crs is not None:
            config["storage_crs"] = storage_crs
        return original(config, query_crs_uri)

    def create_crs_transform_spec(config: dict, query_crs_uri=None):
        return cached_spec(config.get("storage_crs"), tuple(config.get("crs") or ()), query_crs_uri)

    itemtypes.transform_bbox = transform_bbox
    itemtypes.create_crs_transform_spec = create_crs_transform_spec
    _installed = True
