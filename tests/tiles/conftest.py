"""Tilesets of the committed sample district, converted once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiles_support import MAX_POINTS

from tiles.job import TilerSettings, convert
from tiles.products import ProductOptions


@pytest.fixture(scope="session")
def tilesets(district, tmp_path_factory) -> dict[str, Path]:
    """The sample district as three tilesets: full (1.1 glb), streets (1.0 pnts), terrain (1.1 glb)."""
    folder = tmp_path_factory.mktemp("tilesets")
    laz = str(district / "district.laz")
    products = {
        "full": TilerSettings(max_points=MAX_POINTS),
        "streets": TilerSettings(product=ProductOptions("streets", streets=str(district / "district.gpkg")),
                                 spec="1.0", max_points=MAX_POINTS),
        "terrain": TilerSettings(product=ProductOptions("terrain", spacing=1.0), max_points=MAX_POINTS),
    }
    return {name: convert([laz], folder / name, settings).output for name, settings in products.items()}
