"""Oracles for the shipped pipeline on real IGN tiles: IGN's own classes, and Delaunay-linear terrains (scipy).

Nothing here uses the pipeline's code: the truth is what IGN classified, and
the terrain reference is scipy's linear interpolation over a Delaunay
triangulation of ground points, evaluated at the centres of the pipeline's
DTM cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import laspy
import numpy as np
import rasterio
from scipy import ndimage
from scipy.interpolate import LinearNDInterpolator

GROUND, BUILDING = 2, 6


def without_classes(source: Path, target: Path) -> Path:
    """A copy of an IGN tile with every point unclassified (1), as a survey delivered raw."""
    las = laspy.read(source)
    las.classification[:] = 1
    las.write(target)
    return target


@dataclass
class Raster:
    data: np.ndarray
    xs: np.ndarray  # cell-centre x of each column
    ys: np.ndarray  # cell-centre y of each row


def read_raster(path: Path) -> Raster:
    with rasterio.open(path) as dataset:
        data = dataset.read(1).astype(float)
        t = dataset.transform
    xs = t.c + (np.arange(data.shape[1]) + 0.5) * t.a
    ys = t.f + (np.arange(data.shape[0]) + 0.5) * t.e
    return Raster(data, xs, ys)


def tin_on(raster: Raster, xyz: np.ndarray) -> np.ndarray:
    """Delaunay-linear heights of ``xyz`` at the raster's cell centres; NaN outside the points' convex hull."""
    gx, gy = np.meshgrid(raster.xs, raster.ys)
    interpolator = LinearNDInterpolator(xyz[:, :2] - xyz[:, :2].min(axis=0), xyz[:, 2])
    return interpolator(gx - xyz[:, 0].min(), gy - xyz[:, 1].min())


def inner(raster: Raster, margin: float) -> np.ndarray:
    """Cells at least ``margin`` metres inside the raster's extent (the tile's edges have no neighbours)."""
    gx, gy = np.meshgrid(raster.xs, raster.ys)
    return ((gx - raster.xs.min() >= margin) & (raster.xs.max() - gx >= margin)
            & (gy - raster.ys.min() >= margin) & (raster.ys.max() - gy >= margin))


def directional_ratio(difference: np.ndarray) -> float:
    """Mean |d/dx| over mean |d/dy| of a difference raster (1 when the errors favour no grid direction)."""
    dy, dx = np.gradient(np.where(np.isfinite(difference), difference, 0.0))
    valid = ndimage.binary_erosion(np.isfinite(difference), iterations=1)
    return float(np.mean(np.abs(dx[valid])) / max(np.mean(np.abs(dy[valid])), 1e-12))


def building_clusters(xy: np.ndarray, cell: float = 1.0, min_area: float = 20.0) -> list[np.ndarray]:
    """IGN's buildings as groups of building points: 8-connected occupied cells, at least ``min_area`` m2."""
    low = xy.min(axis=0)
    cols, rows = np.floor((xy - low) / cell).astype(int).T
    grid = np.zeros((rows.max() + 1, cols.max() + 1), dtype=bool)
    grid[rows, cols] = True
    grid = ndimage.binary_closing(grid, structure=np.ones((3, 3)))
    labels, count = ndimage.label(grid, structure=np.ones((3, 3)))
    areas = np.bincount(labels.ravel(), minlength=count + 1) * cell**2
    point_label = labels[rows, cols]
    return [xy[point_label == label] for label in range(1, count + 1) if areas[label] >= min_area]
