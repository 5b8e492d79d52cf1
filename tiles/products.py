"""Which points a point-cloud tileset holds: ``full``, ``streets`` or ``terrain``.

- ``full``: every class but noise.
- ``streets``: the points inside the street corridors (each centreline buffered by half its width plus
  ``margin``, so that facades, trees and furniture along the street are in), every class but noise.
- ``terrain``: ground and water only, thinned to one point per ``spacing`` x ``spacing`` cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyproj

from gis.asprs import NOISES, TERRAIN
from gis.errors import InputError

if TYPE_CHECKING:  # `lutece tiles` imports this module for its choices; the point clouds load when used
    from tiles.pointcloud import PointCloud

PRODUCTS = ("full", "streets", "terrain")


@dataclass(frozen=True)
class ProductOptions:
    """What to keep; ``streets`` is a vector file of centrelines whose ``width_field`` is their width in metres."""

    product: str = "full"
    streets: str | None = None
    streets_layer: str = "streets"
    width_field: str = "width_m"
    margin: float = 2.0
    spacing: float = 1.0

    def __post_init__(self) -> None:
        if self.product not in PRODUCTS:
            raise InputError(f"--product {self.product}: use one of {', '.join(PRODUCTS)}")
        if self.product == "streets" and not self.streets:
            raise InputError("--product streets needs the streets layer: pass --streets FILE.gpkg "
                             "(centrelines with their width)")
        if self.margin < 0:
            raise InputError(f"--margin {self.margin}: must be >= 0 metres")
        if not self.spacing > 0:
            raise InputError(f"--spacing {self.spacing}: must be > 0 metres")


def street_corridors(options: ProductOptions, crs: pyproj.CRS):
    """The union of the street corridors in ``crs`` (a shapely geometry); one clear error when unusable."""
    import geopandas as gpd
    import pyogrio
    import shapely

    path = Path(options.streets)
    if not path.is_file():
        raise InputError(f"--streets {path}: no such file")
    try:
        layers = [name for name, _ in pyogrio.list_layers(path)]
    except Exception as exc:  # pyogrio's errors are many; the user only needs to know the file is unreadable
        raise InputError(f"--streets {path}: not a readable vector file ({exc})") from None
    if options.streets_layer not in layers:
        raise InputError(f"--streets {path}: no layer '{options.streets_layer}' (it has {', '.join(layers)}); "
                         "name it with --streets-layer")
    streets = gpd.read_file(path, layer=options.streets_layer)
    if options.width_field not in streets.columns:
        raise InputError(f"--streets {path}: layer '{options.streets_layer}' has no field '{options.width_field}' "
                         "(the street's width in metres); name it with --width-field")
    if streets.crs is None:
        raise InputError(f"--streets {path}: layer '{options.streets_layer}' has no CRS")
    streets = streets.to_crs(crs)
    widths = streets[options.width_field].astype(float).to_numpy()
    corridors = shapely.buffer(streets.geometry.to_numpy(), widths / 2 + options.margin)
    union = shapely.union_all(corridors[~shapely.is_empty(corridors)])
    if union.is_empty:
        raise InputError(f"--streets {path}: layer '{options.streets_layer}' gives an empty corridor "
                         "(no street, or zero widths)")
    shapely.prepare(union)
    return union


def select(cloud: PointCloud, options: ProductOptions, corridor=None) -> np.ndarray:
    """Indices of the points of ``cloud`` that the product keeps, in file order."""
    if options.product == "terrain":
        keep = np.flatnonzero(np.isin(cloud.classification, TERRAIN))
        cells = np.floor(cloud.xyz[keep, :2] / options.spacing).astype(np.int64)
        _, first = np.unique(cells[:, 0] * (1 << 32) + cells[:, 1], return_index=True)
        return keep[np.sort(first)]
    keep = np.flatnonzero(~np.isin(cloud.classification, NOISES))
    if options.product == "streets":
        import shapely

        inside = shapely.contains_xy(corridor, cloud.xyz[keep, 0], cloud.xyz[keep, 1])
        keep = keep[inside]
    return keep
