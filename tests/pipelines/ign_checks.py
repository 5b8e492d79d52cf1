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
from scipy.spatial import Delaunay


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
    """Delaunay-linear heights of ``xyz`` at the raster's cell centres; NaN outside the points' convex hull.

    scipy triangulates; each triangle's plane is then evaluated, in numpy, at
    the cell centres of its bounding box that it covers (barycentric weights).
    What ``LinearNDInterpolator`` gives, without its point location, whose
    barycentric transforms (LAPACK per triangle) took 40 s for the dense
    tile's 43 000 triangles on a loaded machine.
    """
    res = raster.xs[1] - raster.xs[0]
    u = (xyz[:, 0] - raster.xs[0]) / res  # column coordinate: cell centres at integers
    v = (raster.ys[0] - xyz[:, 1]) / res  # row coordinate
    triangles = Delaunay(np.column_stack([u, v])).simplices
    tu, tv = u[triangles], v[triangles]
    c0 = np.clip(np.ceil(tu.min(axis=1) - 1e-9), 0, None).astype(int)
    c1 = np.clip(np.floor(tu.max(axis=1) + 1e-9), None, len(raster.xs) - 1).astype(int)
    r0 = np.clip(np.ceil(tv.min(axis=1) - 1e-9), 0, None).astype(int)
    r1 = np.clip(np.floor(tv.max(axis=1) + 1e-9), None, len(raster.ys) - 1).astype(int)
    width, height = np.maximum(c1 - c0 + 1, 0), np.maximum(r1 - r0 + 1, 0)
    owner = np.repeat(np.arange(len(triangles)), width * height)  # one candidate per cell of each box
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(width * height) - width * height, width * height)
    col, row = c0[owner] + rank % width[owner], r0[owner] + rank // width[owner]
    (ua, ub, uc), (va, vb, vc) = tu[owner].T, tv[owner].T
    det = (vb - vc) * (ua - uc) + (uc - ub) * (va - vc)
    det = np.where(det == 0, np.inf, det)
    wa = ((vb - vc) * (col - uc) + (uc - ub) * (row - vc)) / det
    wb = ((vc - va) * (col - uc) + (ua - uc) * (row - vc)) / det
    wc = 1 - wa - wb
    inside = (wa >= -1e-9) & (wb >= -1e-9) & (wc >= -1e-9)
    z = xyz[triangles[owner], 2]
    heights = np.full(raster.data.shape, np.nan)
    heights[row[inside], col[inside]] = (wa * z[:, 0] + wb * z[:, 1] + wc * z[:, 2])[inside]
    return heights


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
