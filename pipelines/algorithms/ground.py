"""Ground classification of lidar points and the terrain model (DTM), as pure functions.

:func:`classify_ground` is SMRF, the Simple Morphological Filter of Pingel,
Clarke & McBride (2013, "An improved simple morphological filter for the
terrain classification of airborne LIDAR data", ISPRS J. 77, 21-30), the
algorithm PDAL's ``filters.smrf`` implements, vectorised with numpy and
scipy.ndimage:

1. The minimum surface: the lowest point of each ``cell``. Low outliers
   (multipath echoes, a few metres under the ground) are dropped first, a
   point being one when it lies more than ``LOW_NOISE_DEPTH`` below all but at
   most one of the other points within ``LOW_NOISE_RADIUS``. This replaces
   SMRF's negative-blunder step (an opening of the inverted surface with a
   slope of 5, which flags only pits deeper than 5 m per cell) with a test
   that also catches echoes 1 or 2 m down, and two echoes side by side.
   Empty cells are inpainted.
2. Objects: the surface is opened (erosion then dilation, flat disks) with radii
   of 1, 2, ... cells up to ``window`` metres, each opening applied to the
   previous one; a cell whose height drops by more than ``slope`` x the radius
   in metres at some step is an object (a building, a tree, a car). The
   cells beside an object that stand more than one cell's slope above their
   lowest other neighbour are objects too: the foot of a wall, where the
   lowest point is a facade point, drops with the roof, by less than that
   step's threshold, and would otherwise stay as a raised rim (the second
   departure from SMRF; on the sample district it brings the DTM's error
   under buildings, interpolated from their rims, from 0.16 to 0.04 m RMSE).
3. The provisional DTM: the minimum surface without objects and empty cells,
   inpainted. A point is ground when it lies within
   ``elevation_threshold + elevation_scalar * local slope`` of this surface
   (interpolated bilinearly), above or below.

A disk opening is computed exactly and fast: a disk is the union of a few
rectangles (one per step of its outline), and erosion by a union is the
minimum of the erosions by each rectangle, each separable into two running
minima along rows and columns (``minimum_filter1d``, whose cost does not grow
with the length). The surface is extended beyond the grid by its edge cells,
so ground that the tile's edge cuts narrow (a quay between the edge and a
river) is not taken for an object.

:func:`dtm_from_ground` makes the terrain raster from ground points: per-cell
median height, then gaps (under buildings, water without returns) filled.

Wide gaps (``TIN_MIN_GAP`` cells or more, 8-connected) are filled from a
Delaunay triangulation of the ground points around them (a TIN, linear in
each triangle: :mod:`pipelines.algorithms.tin`), which favours no direction;
the row-and-column fill used before drew grid-aligned cross-hatching in the
hillshade and erred by up to 8.8 m against a TIN near a bank. On a sparse
tile nearly every cell is such a gap, and the DTM is the TIN of the ground.
Small gaps (a cell that no point happened to hit) and SMRF's own inpainting
use the cheaper linear interpolation along rows and along columns between
the nearest valid cells, the two estimates weighted by the inverse square
of their spans (exact on a plane, a few passes over the grid). Cells that no
triangle, row or column brackets, in a corner of the grid, take the nearest
valid cell's value, so a filled raster has no NaN.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from gis.errors import InputError
from pipelines.raster import Grid, bin_count

LOW_NOISE_RADIUS = 3.0  # metres: a low outlier is lower than all but one of the other points this close ...
LOW_NOISE_DEPTH = 0.5  # ... by more than this many metres
LOW_NOISE_PER_CELL = 2  # at most this many low outliers are dropped from one cell
TIN_MIN_GAP = 16  # cells: gaps this large are filled from a TIN of the ground points; smaller ones along rows/columns
TIN_RIM_CELLS = 1  # the TIN's vertices: the ground points of the cells this close to a wide gap


def classify_ground(xyz: np.ndarray, *, cell: float = 1.0, slope: float = 0.15, window: float = 18.0,
                    elevation_threshold: float = 0.5, elevation_scalar: float = 1.25) -> np.ndarray:
    """Ground points of an airborne lidar point cloud, by SMRF (Pingel et al. 2013).

    Parameters
    ----------
    xyz
        (n, 3) coordinates in a projected CRS in metres (Lambert-93 and
        NGF-IGN69 heights for IGN tiles). Classes, returns and intensities are
        not used.
    cell
        Size of the minimum-surface cells, metres. About the point spacing:
        1 m for LiDAR HD (10 points/m2); larger for sparser clouds.
    slope
        Slope threshold (rise over run): the drop allowed per metre of opening
        radius before a cell is an object. Raise it in steep terrain.
    window
        Largest opening radius, metres: objects (buildings) narrower than twice
        this are removed; wider ones are kept as ground.
    elevation_threshold
        Height, metres, within which a point must lie of the provisional DTM
        to be ground, on flat terrain.
    elevation_scalar
        Added to the threshold per unit of the provisional DTM's slope, so that
        points on steep ground and along breaklines (a quay's wall) stay ground.

    Returns
    -------
    numpy.ndarray
        Boolean mask of length n, True for ground.

    Notes
    -----
    The parameters and the defaults are those of PDAL's ``filters.smrf``
    (``cell``, ``slope``, ``window``, ``threshold``, ``scalar``). See the module
    docstring for the steps and the two departures: the low-outlier step and
    the feet of walls.
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise InputError(f"points must be an (n, 3) array, not of shape {xyz.shape}")
    if not np.isfinite(xyz).all():
        raise InputError("points must have finite coordinates")
    for name, value in (("cell", cell), ("window", window)):
        if not value > 0:
            raise InputError(f"{name} must be positive, not {value}")
    if slope < 0 or elevation_threshold < 0 or elevation_scalar < 0:
        raise InputError("slope, elevation_threshold and elevation_scalar must not be negative")
    if not len(xyz):
        return np.zeros(0, dtype=bool)
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    pad = cell  # Grid cells are half-open: keep the points on the far edges inside, and at least 2 x 2 cells
    grid = Grid.covering((x.min() - pad, y.min() - pad, x.max() + pad, y.max() + pad), cell)
    index = grid.cell_index(x, y)
    lowest = _lowest_per_cell(index, z, grid.shape, LOW_NOISE_PER_CELL + 1)
    minimum = _drop_low_outliers(lowest, max(1, round(LOW_NOISE_RADIUS / cell)), LOW_NOISE_DEPTH)
    empty = np.isnan(minimum)
    filled = _fill_gaps(minimum)
    objects = _progressive_filter(filled, cell, slope, window)
    objects |= _raised_edges(filled, objects, slope * cell * math.sqrt(2))
    provisional = _fill_gaps(np.where(empty | objects, np.nan, minimum))
    gy, gx = np.gradient(provisional, cell)
    local_slope = np.hypot(gx, gy)
    rows = (grid.ymax - y) / cell - 0.5
    cols = (x - grid.xmin) / cell - 0.5
    surface = ndimage.map_coordinates(provisional, [rows, cols], order=1, mode="nearest")
    steepness = ndimage.map_coordinates(local_slope, [rows, cols], order=1, mode="nearest")
    return np.abs(z - surface) <= elevation_threshold + elevation_scalar * steepness


def dtm_from_ground(x: np.ndarray, y: np.ndarray, z: np.ndarray, grid: Grid) -> np.ndarray:
    """The terrain raster of ground points on ``grid``, gaps filled.

    Parameters
    ----------
    x, y, z
        Ground points (for instance those :func:`classify_ground` marks), in
        the grid's CRS, metres. Points outside the grid are ignored.
    grid
        The output grid (:class:`pipelines.raster.Grid`, row 0 to the north).

    Returns
    -------
    numpy.ndarray
        float32 heights of shape ``grid.shape``. A cell with ground points holds
        their median height; wide gaps take the TIN of the ground points
        around them, small ones the linear interpolation between the nearest
        such cells along their row and their column, and cells that nothing
        brackets (a corner of the grid) the nearest such cell's height, so
        there is no NaN unless there are no ground points in the grid at all
        (then every cell is NaN).

    Notes
    -----
    Binning then interpolating the gaps is how DTMs are made from classified
    ground (PDAL's ``writers.gdal``, IGN's LiDAR HD MNT, which also interpolate
    under buildings and water); the median, rather than the mean or the minimum,
    keeps a stray low or high point from marking a cell. See the module
    docstring for the interpolation.
    """
    x, y, z = (np.asarray(v, dtype=np.float64).ravel() for v in (x, y, z))
    if not len(x) == len(y) == len(z):
        raise InputError(f"x, y and z must have the same length, not {len(x)}, {len(y)} and {len(z)}")
    index = grid.cell_index(x, y)
    inside = index >= 0
    index, z = index[inside], z[inside]
    counts = bin_count(grid, x[inside], y[inside]).ravel()
    order = _by_cell_then_height(index, z)
    start = np.cumsum(counts) - counts  # where each cell's points begin in the sorted order
    filled = counts > 0
    low = start[filled] + (counts[filled] - 1) // 2
    high = start[filled] + counts[filled] // 2
    median = np.full(counts.shape, np.nan)
    median[filled] = (z[order[low]] + z[order[high]]) / 2
    median = median.reshape(grid.shape)
    wide = _wide_gaps(np.isnan(median))
    if wide.any():
        # The TIN's vertices: the ground points of the cells bordering a wide gap (those whose triangles span
        # it), so that a dense tile triangulates its buildings' outlines, not all its points.
        rim = ndimage.binary_dilation(wide, iterations=TIN_RIM_CELLS).ravel()[index]
        from pipelines.algorithms.tin import tin_onto_grid

        tin = tin_onto_grid(x[inside][rim], y[inside][rim], z[rim], grid, wide)
        median = np.where(np.isnan(median), tin, median)
    return _fill_gaps(median).astype(np.float32)


def _wide_gaps(gaps: np.ndarray) -> np.ndarray:
    """The gap cells in components of at least ``TIN_MIN_GAP`` cells (8-connected): under buildings, water."""
    labels, count = ndimage.label(gaps, structure=np.ones((3, 3), dtype=bool))
    if not count:
        return gaps
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    return (sizes >= TIN_MIN_GAP)[labels]


def _by_cell_then_height(index: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The order sorting points by cell, then by height: one float sort, twice as fast as a lexsort.

    Each cell's heights are shifted into their own band of the key, wider
    than the heights' range, so that cells never interleave.
    """
    if len(z) == 0:
        return np.empty(0, dtype=np.int64)
    low = z.min()
    band = z.max() - low + 1.0
    return np.argsort(index * band + (z - low))


def _lowest_per_cell(index: np.ndarray, z: np.ndarray, shape: tuple[int, int], k: int) -> np.ndarray:
    """The k lowest heights of each cell, as (k, rows, cols); +inf where a cell has fewer points."""
    order = _by_cell_then_height(index, z)
    cells = index[order]
    starts = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1]])
    rank = np.arange(len(cells)) - np.repeat(starts, np.diff(np.r_[starts, len(cells)]))
    keep = rank < k
    lowest = np.full((k, shape[0] * shape[1]), np.inf)
    lowest[rank[keep], cells[keep]] = z[order[keep]]
    return lowest.reshape(k, *shape)


def _drop_low_outliers(lowest: np.ndarray, radius: int, depth: float) -> np.ndarray:
    """The minimum surface (NaN where empty) once low outliers are dropped from ``lowest`` (k, rows, cols).

    A cell's lowest point is an outlier when fewer than two other points of
    the (2 radius + 1)^2 cells around lie less than ``depth`` above it: real
    ground has neighbours at its height, a multipath echo has none, or one
    when two echoes fall close. The two lowest other points come from the
    cell's next two points and the neighbouring cells' lowest and second
    lowest points. Each pass drops one point per cell (at most k - 1 in all),
    so that a neighbouring outlier, dropped in one pass, no longer hides
    another in the next.
    """
    levels = len(lowest) - 1
    lowest = np.concatenate([lowest, np.full((2, *lowest.shape[1:]), np.inf)])  # "no next point"
    size = 2 * radius + 1
    ring = np.ones((size, size), dtype=bool)
    ring[radius, radius] = False
    level = np.zeros(lowest.shape[1:], dtype=np.int64)
    rows, cols = np.indices(level.shape)
    for _ in range(levels):
        current, next1, next2 = (lowest[level + step, rows, cols] for step in range(3))
        around1 = ndimage.minimum_filter(current, footprint=ring, mode="constant", cval=np.inf)
        # The second lowest point around: the second lowest cell minimum, or the second point of a cell.
        around2 = np.minimum(ndimage.rank_filter(current, 1, footprint=ring, mode="constant", cval=np.inf),
                             ndimage.minimum_filter(next1, footprint=ring, mode="constant", cval=np.inf))
        second_other = np.minimum(np.minimum(np.maximum(next1, around1), next2), around2)
        # A point with fewer than two others around cannot be judged, and stays.
        outlier = np.isfinite(second_other) & (current < second_other - depth) & (level < levels)
        if not outlier.any():
            break
        level += outlier
    minimum = lowest[level, rows, cols]
    return np.where(np.isfinite(minimum), minimum, np.nan)


def _raised_edges(surface: np.ndarray, objects: np.ndarray, rise: float) -> np.ndarray:
    """Cells next to an object that stand more than ``rise`` above their lowest non-object neighbour.

    The foot of a wall: a cell on a building's outline whose lowest point is
    a facade point half a metre up. The opening lowers it in the same step
    as the roof, by less than that step's threshold (``slope`` x the
    building's half-width), so SMRF leaves it in the provisional DTM as a
    raised rim, which would pass the facade's lowest points as ground.
    """
    beside = ndimage.binary_dilation(objects, structure=np.ones((3, 3), dtype=bool)) & ~objects
    lowest_around = ndimage.minimum_filter(np.where(objects, np.inf, surface), size=3, mode="nearest")
    return beside & (surface - lowest_around > rise)


def _progressive_filter(surface: np.ndarray, cell: float, slope: float, window: float) -> np.ndarray:
    """Cells that drop by more than ``slope`` x radius when the surface is opened by growing disks.

    The surface is first extended by its edge cells as far as the largest disk
    reaches, so that a strip of ground cut narrow by the grid's edge (a quay
    between the tile's edge and a river) is as wide as it is in the world,
    not mistaken for an object. Heights are taken relative to the lowest cell
    and held in float32, precise to well under a millimetre, which halves the
    memory traffic of the filters.
    """
    largest = math.ceil(window / cell - 1e-9)
    last = np.pad(surface - np.nanmin(surface), largest, mode="edge").astype(np.float32)
    objects = np.zeros(last.shape, dtype=bool)
    buffers = _Buffers(last.shape)
    for radius in range(1, largest + 1):
        rectangles = _disk_rectangles(radius)
        eroded = _morph(last, rectangles, ndimage.minimum_filter1d, np.minimum, buffers, buffers.eroded)
        opened = _morph(eroded, rectangles, ndimage.maximum_filter1d, np.maximum, buffers, buffers.opened)
        objects |= last - opened > slope * radius * cell
        last, buffers.opened = opened, last  # the old surface's array takes the next opening
    return objects[largest:-largest, largest:-largest]


class _Buffers:
    """Arrays reused by every morphological pass, so that the loop allocates nothing."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.along, self.both, self.eroded, self.opened = (np.empty(shape, dtype=np.float32) for _ in range(4))


def _disk_rectangles(radius: int) -> list[tuple[int, int]]:
    """(half-width, half-height) of the rectangles whose union is the disk of ``radius`` cells.

    The disk holds the cells (dx, dy) with dx^2 + dy^2 <= radius^2; each step of
    its outline gives one rectangle.
    """
    half_widths = np.floor(np.sqrt(radius**2 - np.arange(radius + 1) ** 2) + 1e-9).astype(int)
    # half_widths[dy] decreases with dy: the rectangle of half-width w reaches the last row still that wide.
    return [(int(w), int(np.flatnonzero(half_widths >= w)[-1])) for w in np.unique(half_widths)]


def _morph(surface: np.ndarray, rectangles: list[tuple[int, int]], filter1d, pick, buffers: _Buffers,
           out: np.ndarray) -> np.ndarray:
    """Flat erosion (``minimum_filter1d``, ``np.minimum``) or dilation (maximum) by a union of rectangles."""
    for number, (half_width, half_height) in enumerate(rectangles):
        part = surface
        if half_width:
            part = filter1d(part, 2 * half_width + 1, axis=1, output=buffers.along, mode="nearest")
        if half_height:
            part = filter1d(part, 2 * half_height + 1, axis=0, output=buffers.both, mode="nearest")
        if number == 0:
            np.copyto(out, part)
        else:
            pick(out, part, out=out)
    return out


def _fill_gaps(values: np.ndarray) -> np.ndarray:
    """``values`` with its NaN cells filled by linear interpolation along rows and columns.

    Each gap cell gets the linear interpolation between the nearest valid cells
    on its left and right, and the one between those above and below; the two
    are averaged with weights 1 / span^2, the shorter span counting more. Both
    are exact on a plane, so the fill is too, and the cost is a few passes over
    the grid whatever the gaps' size (GDAL's ``FillNodata`` also searches along
    directions; this is its linear, not inverse-distance, form). A cell that
    neither a row nor a column brackets (a gap in a corner of the grid) takes
    the value of the nearest valid cell.
    """
    gaps = np.isnan(values)
    if not gaps.any() or gaps.all():
        return values.copy()
    total = np.zeros(values.shape)
    weight = np.zeros(values.shape)
    for transpose in (False, True):
        estimate, span = _interpolate_along_rows(values.T if transpose else values)
        if transpose:
            estimate, span = estimate.T, span.T
        bracketed = gaps & np.isfinite(estimate)
        total[bracketed] += estimate[bracketed] / span[bracketed] ** 2
        weight[bracketed] += 1.0 / span[bracketed] ** 2
    filled = values.copy()
    bracketed = weight > 0
    filled[bracketed] = total[bracketed] / weight[bracketed]
    still = np.isnan(filled)
    if still.any():
        nearest = ndimage.distance_transform_edt(gaps, return_distances=False, return_indices=True)
        filled[still] = values[nearest[0][still], nearest[1][still]]
    return filled


def _interpolate_along_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per cell, the linear interpolation between the nearest valid cells left and right, and their distance.

    NaN where a row has no valid cell on one side.
    """
    cols = values.shape[1]
    valid = ~np.isnan(values)
    position = np.arange(cols)
    before = np.maximum.accumulate(np.where(valid, position, -1), axis=1)
    after = np.minimum.accumulate(np.where(valid, position, cols)[:, ::-1], axis=1)[:, ::-1]
    bracketed = (before >= 0) & (after < cols)
    left = np.take_along_axis(values, np.clip(before, 0, cols - 1), axis=1)
    right = np.take_along_axis(values, np.clip(after, 0, cols - 1), axis=1)
    span = np.maximum(after - before, 1)
    estimate = left + (right - left) * (position - before) / span
    return np.where(bracketed, estimate, np.nan), span
