"""North-up grids and rasters in the working CRS, and points binned into them.

The small shared vocabulary of the raster stages: a :class:`Grid` (bounds
snapped to the resolution, shape, affine transform) and a :class:`Raster`
(float32 values, NaN where there is no data, on a grid). Binning is
vectorised; per-cell minimum or maximum are one unbuffered ``ufunc.at`` pass,
which numpy 2 runs without sorting the points.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import Affine

# rasterio.features traces and burns through in-memory rasters that warn they have no geotransform, and
# silences that with warnings.catch_warnings, which is not thread-safe: with a tile's writers in threads the
# warning leaked out now and then (the outputs are georeferenced all the same).
warnings.filterwarnings("ignore", message="Dataset has no geotransform", category=NotGeoreferencedWarning)


@dataclass(frozen=True)
class Grid:
    """Cells of ``resolution`` metres covering [xmin, xmax) x [ymin, ymax); row 0 is the north edge."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float
    resolution: float

    @classmethod
    def covering(cls, bounds: tuple[float, float, float, float], resolution: float) -> Grid:
        """The grid aligned on multiples of ``resolution`` that covers ``bounds`` (xmin, ymin, xmax, ymax).

        Aligned grids of neighbouring tiles share their cell edges, so tiles mosaic without seams.

        >>> Grid.covering((10.2, 20.7, 12.1, 21.0), 0.5).shape
        (1, 5)
        """
        xmin, ymin, xmax, ymax = bounds
        snap_down = lambda v: math.floor(round(v / resolution, 9)) * resolution  # noqa: E731
        snap_up = lambda v: math.ceil(round(v / resolution, 9)) * resolution  # noqa: E731
        return cls(snap_down(xmin), snap_down(ymin), max(snap_up(xmax), snap_down(xmin) + resolution),
                   max(snap_up(ymax), snap_down(ymin) + resolution), resolution)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(round((self.ymax - self.ymin) / self.resolution)),
                int(round((self.xmax - self.xmin) / self.resolution)))

    @property
    def transform(self) -> Affine:
        return Affine(self.resolution, 0.0, self.xmin, 0.0, -self.resolution, self.ymax)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (self.xmin, self.ymin, self.xmax, self.ymax)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre x of each column and y of each row (1-D arrays)."""
        rows, cols = self.shape
        xs = self.xmin + (np.arange(cols) + 0.5) * self.resolution
        ys = self.ymax - (np.arange(rows) + 0.5) * self.resolution
        return xs, ys

    def cell_index(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Flat cell index (row * cols + col) of each point; -1 for points outside the grid."""
        rows, cols = self.shape
        col = np.floor((np.asarray(x) - self.xmin) / self.resolution).astype(np.int64)
        row = np.floor((self.ymax - np.asarray(y)) / self.resolution).astype(np.int64)
        inside = (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
        return np.where(inside, row * cols + col, -1)


@dataclass
class Raster:
    """float32 values on a grid; NaN is no data."""

    data: np.ndarray
    grid: Grid
    crs: str

    def __post_init__(self) -> None:
        if self.data.shape != self.grid.shape:
            raise ValueError(f"raster data of shape {self.data.shape} on a grid of shape {self.grid.shape}")

    def sample(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Value of the cell under each point (NaN outside the grid or where there is no data)."""
        index = self.grid.cell_index(x, y)
        values = np.full(index.shape, np.nan, dtype=np.float64)
        inside = index >= 0
        values[inside] = self.data.ravel()[index[inside]]
        return values


def bin_extreme(grid: Grid, x: np.ndarray, y: np.ndarray, z: np.ndarray, highest: bool = True) -> np.ndarray:
    """Per-cell maximum (or minimum) of ``z``; NaN in empty cells. Points outside the grid are ignored."""
    index = grid.cell_index(x, y)
    inside = index >= 0
    if not inside.all():
        index, z = index[inside], np.asarray(z)[inside]
    extreme, start = (np.maximum, -np.inf) if highest else (np.minimum, np.inf)
    result = np.full(grid.shape[0] * grid.shape[1], start)
    extreme.at(result, index, np.asarray(z, dtype=np.float64))
    result[result == start] = np.nan
    return result.reshape(grid.shape).astype(np.float32)


def bin_count(grid: Grid, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Number of points per cell."""
    index = grid.cell_index(x, y)
    counts = np.bincount(index[index >= 0], minlength=grid.shape[0] * grid.shape[1])
    return counts.reshape(grid.shape)
