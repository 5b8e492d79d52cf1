"""Helpers that make products for the city GIS tests (imported by the test modules)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def assert_unchanged(catalog, events_before: int = 0) -> None:
    """Nothing was published: no new event, and nothing left behind for gc (no table, file or claim)."""
    assert len(catalog.events()) == events_before
    assert catalog.gc().removed == 0


def write_product(frame, path: Path, layer: str = "data", **options) -> Path:
    """Write a GeoDataFrame as a one-layer GeoPackage product."""
    import pyogrio

    pyogrio.write_dataframe(frame, path, layer=layer, driver="GPKG", **options)
    return path


def tiled(frame, copies: int):
    """``copies`` copies of a layer side by side (a mid-size layer from the district's cadastre)."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    side = int(np.ceil(np.sqrt(copies)))
    parts = []
    for index in range(copies):
        offset = np.array([(index % side) * 400.0, (index // side) * 400.0])
        part = frame.copy()
        part["geometry"] = shapely.transform(part.geometry.values, lambda xy, o=offset: xy + o)
        part["cadastre_id"] = part["cadastre_id"] + f"-{index}"
        parts.append(part)
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=frame.crs)
