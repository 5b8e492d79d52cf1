"""Building footprints from building-class lidar points, as a pure function.

:func:`extract_footprints` turns the building points of one tile (ASPRS class
6: roofs and sparse facade points) into one polygon per building, with its
ground and roof heights. The steps, vectorised with numpy, scipy and shapely
(and a few loops compiled with numba):

1. Clusters: open3d's DBSCAN in 2D, run on the centroids of cells a third of
   the clustering distance wide (see :func:`cluster_points`): a ring of
   attached buildings around a courtyard is one cluster, a detached building
   another, and stray points are dropped.
2. Roof points and local planes, on a grid of 0.5 m cells (wider for sparse
   points, see :func:`analysis_cell`). A point well below the top of its cell,
   or of the cells around, is on a wall. Every cell then gets the
   least-squares plane of the roof points of its 3x3 window (moments summed
   per cell, then over the window, solved in closed form); the fit is done a
   second time without the points off that plane (roof furniture, walls, the
   other side of a step), and points well below the refitted plane are wall
   points too. A cell is smooth when its plane fits within ``_SMOOTH_RMS``:
   windows straddling a ridge, a break of slope, a step or an edge are not.
3. Roof faces: neighbouring smooth cells whose planes agree (slope, and
   height on their shared edge) are joined into faces: a flat roof is one
   face, a pitched roof two, a mansard roof a flat top and steep sides.
4. Buildings: for two faces facing each other across a few cells, the
   surface switches from one plane to the other where the cells in between
   fit them best; the planes' height difference there is ~0 at a ridge or a
   break of slope (a *continuous* contact) and the step at a party wall
   between roofs of different heights. Faces are merged along continuous
   contacts, longest first, but never across a cannot-link: faces whose
   contacts are stepped by more than ``height_step`` (or mostly offset by
   more than half of it, as where a sloping roof meets the flat top of a
   neighbour). So the steep side of a mansard, running along the street past
   a party wall, cannot glue two buildings together: a face continuous with
   two buildings that may not be joined is split between them.
5. Cells of no face (ridges, steps, edges, split faces) go to the building of
   the nearest face of their cluster; then a cell on a step goes to the
   building whose roof plane its points fit (the faces stop closer to a step
   on one side than on the other).
6. Outlines: the label raster is traced (``rasterio.features.shapes``),
   opened and closed by a cell, simplified and squared (:func:`square`):
   edges near the dominant orientation, or its normal, are made parallel to
   it, and moved onto the facade points along them where there are enough,
   which puts outer walls within a few centimetres. Holes (courtyards) are
   kept.
7. Attributes: percentiles of the roof points' heights (facade points and
   the cells at the edge of a neighbour left out) and the median of the
   terrain under the building.

Attached buildings whose roofs are at about the same height (less than
``height_step`` apart where they meet) cannot be told apart and make one
footprint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numba
import numpy as np
import rasterio.features
import shapely
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from gis.errors import InputError
from pipelines.algorithms.lean_open3d import o3d
from pipelines.algorithms.squaring import square
from pipelines.raster import Grid, Raster

FINEST_CELL = 0.5  # metres, the resolution at which roofs are analysed when points are dense enough
_POINTS_PER_CELL = 2.5  # ... else the cell is widened to hold this many points on average

_FACADE_DROP_CELL = 3.0  # a point this many cell widths below the top of its cell is on a wall ...
_FACADE_DROP_WINDOW = 6.0  # ... or this many below the top of the 3x3 cells around it
_INLIER_DISTANCE = 0.3  # points farther than this from their window's plane (m) are left out of the refit
_WALL_TOLERANCE = 0.3  # points farther than this below the refitted plane of their cell are on a wall (m) ...
_WALL_PLANE_REACH = 2  # ... or of the nearest cell with a plane, up to this many cells away
_MAX_FILLED_HOLE = 4.0  # holes in the cells of a cluster smaller than this (m2) are filled
_MIN_WINDOW_POINTS = 6  # roof points needed in a 3x3 window to fit a plane
_SMOOTH_RMS = 0.12  # a window fits a plane within this (m): a smooth cell
_LINK_SLOPE = 0.15  # neighbouring smooth cells with slopes closer than this ...
_LINK_HEIGHT = 0.15  # ... and heights on their shared edge closer than this (m) are on one face
_MIN_FACE_CELLS = 6  # smaller faces are left to the nearest building
_CONTACT_GAP = 4  # faces facing each other across up to this many cells are in contact
_CONTINUOUS_HEIGHT = 0.3  # planes closer than this (m) in the gap meet: a continuous contact
_CONTINUOUS_SHARE = 0.5  # share of continuous contacts for two faces to be one roof
_STEP_SHARE = 0.2  # share of stepped contacts for two faces to be on two buildings
_MIN_STEP_CONTACTS = 3
_OFFSET_SHARE = 0.5  # ... or of contacts offset by half a step
_SETTLE_PASSES = 3  # passes moving the cells at a step to the building of their height ...
_SETTLE_FIT = 0.3  # ... which they fit within this (m)
_ROOF_PERCENTILES = (1.0, 50.0, 99.0)  # roof_z_min, roof_z_median, roof_z_max
_INTERIOR_CELLS = 2  # roof_z_max comes from the roof points at least this many cells inside the building ...
_MIN_INTERIOR_POINTS = 20  # ... when there are this many, else from all its roof points
_WALL_BELOW_ROOF = 0.5  # wall points to square a building are this far below its lowest roof (m)
COLUMNS = ["ground_z", "roof_z_min", "roof_z_median", "roof_z_max", "height_m", "area_m2", "point_count"]


def extract_footprints(xyz: np.ndarray, dtm: Raster, *, cluster_distance: float = 1.5, min_points: int = 30,
                       min_area: float = 20.0, height_step: float = 1.0, simplify: float = 0.5,
                       crs: str = "EPSG:2154") -> gpd.GeoDataFrame:
    """Footprints of the buildings whose points are ``xyz``, one polygon per building.

    Points are clustered in 2D (attached buildings make one cluster), each
    cluster's roof is split into buildings where its height jumps by more than
    ``height_step`` (slopes of pitched and mansard roofs are continuous and do
    not split), and each building is outlined, simplified and squared to its
    dominant orientation. See the module's docstring for the method.

    Parameters
    ----------
    xyz : numpy.ndarray
        (n, 3) building points (ASPRS class 6: roofs and facades) of one tile, in projected metres.
    dtm : Raster
        Terrain heights covering the points, in the same CRS.
    cluster_distance : float
        DBSCAN radius (m): points closer than this are in one cluster (see :func:`cluster_points`).
    min_points : int
        DBSCAN minimum number of neighbours of a core point; points of no cluster are dropped.
    min_area : float
        Smallest footprint kept (m2).
    height_step : float
        Jump of roof height (m) between two attached buildings.
    simplify : float
        Tolerance (m) of the outline simplification (Douglas-Peucker), before squaring.
    crs : str
        CRS of the output.

    Returns
    -------
    geopandas.GeoDataFrame
        One valid polygon per building (courtyards as holes) with
        ``ground_z``, the median of ``dtm`` under the footprint (NaN where
        ``dtm`` does not cover it); ``roof_z_min``, ``roof_z_median`` and
        ``roof_z_max``, the 1st, 50th and 99th percentiles of the heights of
        the roof points (facade points left out; the top from the points at
        least 1 m inside the footprint, so that a strip of a taller neighbour
        or a few outliers do not count, while roof furniture covering more
        than 1 % of the roof does); ``height_m``, ``roof_z_max - ground_z``;
        ``area_m2``; and ``point_count``, the roof and facade points of the
        building.

    Raises
    ------
    InputError
        When ``xyz`` is not an (n, 3) array or a parameter is out of its range.

    Examples
    --------
    >>> import laspy  # doctest: +SKIP
    >>> las = laspy.read("district.laz")  # doctest: +SKIP
    >>> from gis.asprs import BUILDING  # doctest: +SKIP
    >>> keep = las.classification == BUILDING  # doctest: +SKIP
    >>> xyz = np.column_stack([las.x[keep], las.y[keep], las.z[keep]])  # doctest: +SKIP
    >>> extract_footprints(xyz, dtm)[["height_m", "area_m2"]].head(2)  # doctest: +SKIP
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise InputError(f"extract_footprints: xyz must be an (n, 3) array of points, not of shape {xyz.shape}")
    if cluster_distance <= 0 or min_points < 1 or min_area < 0 or height_step <= 0 or simplify < 0:
        raise InputError(f"extract_footprints: cluster_distance ({cluster_distance}) and height_step "
                         f"({height_step}) must be > 0, min_points ({min_points}) >= 1, min_area ({min_area}) "
                         f"and simplify ({simplify}) >= 0")
    finite = np.isfinite(xyz)
    xyz = xyz[finite[:, 0] & finite[:, 1] & finite[:, 2]]  # (.all(axis=1) is several times slower)
    cluster = cluster_points(xyz[:, :2], cluster_distance, min_points)
    xyz, cluster = xyz[cluster >= 0], cluster[cluster >= 0]
    if len(xyz) == 0:
        return _empty(crs)
    x, y, z = np.array(xyz.T)  # contiguous copies, read many times
    size = analysis_cell(xyz[:, :2])
    grid = Grid.covering((x.min() - 2 * size, y.min() - 2 * size, x.max() + 2 * size, y.max() + 2 * size), size)
    cell = grid.cell_index(x, y)
    mask, cell_cluster = _cluster_cells(grid, cell, cluster)
    roof, planes = _roof_planes(grid, cell, x, y, z)
    faces = roof_faces(planes, mask, cell_cluster)
    groups = _group_faces(faces, planes, cell_cluster, height_step)
    labels, expected = _fill(groups, mask, cell_cluster, planes)
    labels = _settle_steps(labels, expected, _cell_median(grid, cell, z), height_step)
    return _buildings(labels, grid, cell, xyz, roof, dtm, min_area=min_area, simplify=simplify, crs=crs)


def cluster_points(xy: np.ndarray, distance: float, min_points: int) -> np.ndarray:
    """DBSCAN cluster of each point in 2D (open3d), -1 for noise, clustering one representative per small cell.

    DBSCAN of every point is the slowest step of the footprints, while dense
    roofs hold several points per ``distance / 3`` cell, all well within
    ``distance`` of each other. So the centroid of each occupied cell of that
    size stands for its points: DBSCAN runs on the centroids, with the same
    radius and ``min_points`` divided by the median number of points per
    occupied cell (at least 2, so that a lone cell is noise, unless
    ``min_points`` is 1), and each point takes the cluster of its cell. On
    lidar tiles (3 points per cell) this gives the partition of the points'
    DBSCAN, 5 to 6 times faster. Sparse points (a median under 2 points per
    cell) are clustered themselves: there the cells would save little, and
    count a cell of 2 or 3 points as one.

    >>> xy = np.array([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0], [50.0, 0.0]])
    >>> cluster_points(xy, 1.0, 2).tolist()
    [0, 0, 0, -1]
    >>> dense = np.repeat(xy, 10, axis=0) + 0.01  # 10 points per cell: 30 points are 3 cells
    >>> cluster_points(dense, 1.0, 30)[::10].tolist()
    [0, 0, 0, -1]
    """
    if len(xy) == 0:
        return np.empty(0, dtype=np.int64)
    centroids, cell, counts = _cell_centroids(xy, distance / 3)
    per_cell = float(np.median(counts))
    if per_cell < 2:
        return _dbscan(xy - _lower_left(xy), distance, min_points)
    return _dbscan(centroids, distance, min(min_points, max(2, round(min_points / per_cell))))[cell]


def _dbscan(xy: np.ndarray, distance: float, min_points: int) -> np.ndarray:
    """open3d's DBSCAN of (n, 2) points (at z = 0): the cluster of each, -1 for noise."""
    cloud = o3d.geometry.PointCloud()
    cloud.points = o3d.utility.Vector3dVector(np.column_stack([xy, np.zeros(len(xy))]))
    return np.asarray(cloud.cluster_dbscan(eps=distance, min_points=min_points, print_progress=False), dtype=np.int64)


def _cell_centroids(xy: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The centroids (from the points' south-west corner) of the occupied cells of ``size``, the cell of each
    point (0, 1, ... over them) and the number of points of each cell."""
    shifted = xy - _lower_left(xy)
    cell, counts = _occupied_cells(shifted, size)
    centroids = np.column_stack([np.bincount(cell, shifted[:, k], len(counts)) for k in (0, 1)]) / counts[:, None]
    return centroids, cell, counts


def _occupied_cells(xy: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """The cell of ``size`` (from the points' south-west corner) of each point, numbered 0, 1, ... over the
    occupied cells in row-major order, and the number of points of each cell."""
    column, row = np.floor((xy - _lower_left(xy)) / size).astype(np.int64).T
    key = row * (int(column.max()) + 1) + column
    if key.max() < 4 * len(key) + 1_000_000:  # counting the points of every cell is cheaper than sorting them
        counts = np.bincount(key)
        occupied = counts > 0
        return (np.cumsum(occupied) - 1)[key], counts[occupied]
    _, cell, counts = np.unique(key, return_inverse=True, return_counts=True)
    return cell, counts


def _lower_left(xy: np.ndarray) -> np.ndarray:
    """The lowest x and y of (n, 2) points (``xy.min(axis=0)`` reduces across the rows, many times slower)."""
    return np.array([xy[:, 0].min(), xy[:, 1].min()])


def analysis_cell(xy: np.ndarray) -> float:
    """Cell size (m) of the roof analysis: ``FINEST_CELL``, or wider for sparse points, in steps of 0.25 m.

    The density is that of the points over the 2 m cells they occupy.

    >>> analysis_cell(np.random.default_rng(0).uniform(0, 100, (100_000, 2)))
    0.5
    >>> analysis_cell(np.random.default_rng(0).uniform(0, 100, (4_000, 2)))
    2.25
    """
    if len(xy) == 0:
        return FINEST_CELL
    occupied = len(_occupied_cells(xy, 2.0)[1])
    density = len(xy) / (occupied * 4.0)
    return max(FINEST_CELL, math.ceil(math.sqrt(_POINTS_PER_CELL / density) / 0.25 - 0.5) * 0.25)


def _cluster_cells(grid: Grid, cell: np.ndarray, cluster: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cells of the buildings and the cluster of each (-1 elsewhere).

    The occupied cells are closed by a cell (not across two clusters) and
    their holes smaller than ``_MAX_FILLED_HOLE`` filled (empty cells of
    sparse roofs); courtyards stay open.
    """
    owner = _cell_extreme(grid, cell, cluster.astype(np.float64))
    occupied = np.isfinite(owner)
    cross = np.ones((3, 3), dtype=bool)
    closed = ndimage.binary_closing(occupied, structure=cross, border_value=0)
    highest = ndimage.maximum_filter(np.where(occupied, owner, -1.0), footprint=cross)
    lowest = ndimage.minimum_filter(np.where(occupied, owner, np.inf), footprint=cross)
    mask = occupied | (closed & (highest == lowest))
    holes, count = ndimage.label(~mask)
    if count:
        small = np.bincount(holes.ravel()) * grid.resolution ** 2 < _MAX_FILLED_HOLE
        small[0] = False
        mask |= small[holes]
    nearest = ndimage.distance_transform_edt(~occupied, return_distances=False, return_indices=True)
    return mask, np.where(mask, owner[tuple(nearest)], -1).astype(np.int64)


def _roof_planes(grid: Grid, cell: np.ndarray, x: np.ndarray, y: np.ndarray,
                 z: np.ndarray) -> tuple[np.ndarray, Planes]:
    """The roof points (True) and the local planes of the roofs, robust to walls and roof furniture."""
    roof = _roof_points(grid, cell, z)
    planes = local_planes(grid, cell[roof], x[roof], y[roof], z[roof])
    with np.errstate(invalid="ignore"):
        # Refit without the points off their window's plane (roof furniture, walls, the other side of a step) ...
        inlier = roof & ~(np.abs(z - planes.height_at(grid, cell, x, y)) > _INLIER_DISTANCE)
        planes = local_planes(grid, cell[inlier], x[inlier], y[inlier], z[inlier])
        if np.isnan(planes.c).all():
            return roof, planes
        # ... and take the points well below that plane, or that of the nearest cell with a plane (an edge cell
        # holding only wall points has none), for wall points too.
        distance, nearest = ndimage.distance_transform_edt(np.isnan(planes.c), return_indices=True)
        source = np.ravel_multi_index(tuple(nearest), grid.shape).ravel()[cell]
        near = distance.ravel()[cell] <= _WALL_PLANE_REACH
        roof &= ~(near & (z < planes.height_at(grid, source, x, y) - _WALL_TOLERANCE))
    return roof, planes


def _roof_points(grid: Grid, cell: np.ndarray, z: np.ndarray) -> np.ndarray:
    """True for the points on a roof, False for those on a wall (well below the roof around them)."""
    top = _cell_extreme(grid, cell, z)
    around = ndimage.maximum_filter(np.nan_to_num(top, nan=-np.inf), size=3)
    top, around = top.ravel()[cell], around.ravel()[cell]
    return (z >= top - _FACADE_DROP_CELL * grid.resolution) & (z >= around - _FACADE_DROP_WINDOW * grid.resolution)


def _cell_extreme(grid: Grid, cell: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-cell maximum of ``values`` given each point's flat cell index (NaN where empty)."""
    top = np.full(grid.shape[0] * grid.shape[1], -np.inf)
    np.maximum.at(top, cell, values)
    return np.where(np.isfinite(top), top, np.nan).reshape(grid.shape)


def _cell_median(grid: Grid, cell: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-cell median of ``values`` given each point's flat cell index (NaN where empty)."""
    return _group_percentiles(cell, values, grid.shape[0] * grid.shape[1], (50.0,))[0].reshape(grid.shape)


@dataclass(frozen=True)
class Planes:
    """The least-squares plane of each cell's 3x3 window, and the mean height of each cell's points.

    The plane is ``z = c + a (x - xc) + b (y - yc)`` around the cell's centre
    (xc, yc); ``rms`` is its fit. All NaN where there are too few points.
    """

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    rms: np.ndarray
    mean: np.ndarray
    resolution: float

    def height_at(self, grid: Grid, cell: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Height at each point of the plane of a cell (``cell``: flat indices on ``grid``, one per point)."""
        row, col = np.divmod(cell, grid.shape[1])
        u = x - (grid.xmin + (col + 0.5) * grid.resolution)
        v = y - (grid.ymax - (row + 0.5) * grid.resolution)
        return self.c.ravel()[cell] + self.a.ravel()[cell] * u + self.b.ravel()[cell] * v


def local_planes(grid: Grid, cell: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> Planes:
    """The plane fitted to the points of each cell's 3x3 window (NaN where too few points).

    ``cell`` is the flat index of each point's cell on ``grid``. Moments of
    the points (coordinates from the grid's south-west corner, heights from
    their median) are summed per cell, then over each window, moved to the
    window's centre and solved in closed form (compiled loops: numpy would
    go through a dozen temporary grids of moments).
    """
    rows, cols = grid.shape
    reference = float(np.median(z)) if len(z) else 0.0
    # Big arrays are allocated by numpy, several times faster than by numba.
    moments = np.zeros((rows, cols, 10))
    _add_moments(moments.reshape(rows * cols, 10), cell, x - grid.xmin, y - grid.ymin, z - reference)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = moments[..., 3] / moments[..., 0] + reference  # mean height of the points of each cell
    a, b, c, rms = np.full((4, rows, cols), np.nan)
    _fit_window_planes(moments, grid.resolution, _MIN_WINDOW_POINTS, a, b, c, rms)
    return Planes(a, b, c + reference, rms, mean, grid.resolution)


@numba.njit(cache=True, nogil=True)
def _add_moments(moments, cell, u, v, w):  # pragma: no cover - compiled
    """Add to each cell's row of ``moments`` n and the sums of u, v, w, uu, uv, vv, uw, vw, ww of its points."""
    for k in range(cell.size):
        m = moments[cell[k]]
        m[0] += 1.0
        m[1] += u[k]
        m[2] += v[k]
        m[3] += w[k]
        m[4] += u[k] * u[k]
        m[5] += u[k] * v[k]
        m[6] += v[k] * v[k]
        m[7] += u[k] * w[k]
        m[8] += v[k] * w[k]
        m[9] += w[k] * w[k]


@numba.njit(cache=True, nogil=True)
def _fit_window_planes(moments, resolution, min_points, a, b, c, rms):  # pragma: no cover - compiled
    """Set slope a, b, height c at the centre and rms misfit of the least-squares plane of each cell's 3x3 window,
    where it holds ``min_points`` or more."""
    rows, cols = moments.shape[0], moments.shape[1]
    window = np.empty(10)
    for i in range(rows):
        for j in range(cols):
            window[:] = 0.0
            for r in range(max(i - 1, 0), min(i + 2, rows)):
                for q in range(max(j - 1, 0), min(j + 2, cols)):
                    window += moments[r, q]
            n, sx, sy, sz, sxx, sxy, syy, sxz, syz, szz = window
            if n < min_points:
                continue
            # Moments about the window's centre cell.
            xc, yc = (j + 0.5) * resolution, (rows - i - 0.5) * resolution
            sxx, sxy = sxx - 2 * xc * sx + n * xc * xc, sxy - xc * sy - yc * sx + n * xc * yc
            syy = syy - 2 * yc * sy + n * yc * yc
            sxz, syz, sx, sy = sxz - xc * sz, syz - yc * sz, sx - n * xc, sy - n * yc
            # Normal equations [[sxx, sxy, sx], [sxy, syy, sy], [sx, sy, n]] (a, b, c) = (sxz, syz, sz),
            # by the cofactors of the symmetric matrix.
            c00, c01, c02 = syy * n - sy * sy, sx * sy - sxy * n, sxy * sy - syy * sx
            c11, c12, c22 = sxx * n - sx * sx, sxy * sx - sxx * sy, sxx * syy - sxy * sxy
            det = sxx * c00 + sxy * c01 + sx * c02
            if abs(det) <= 1e-9:
                continue
            a[i, j] = (c00 * sxz + c01 * syz + c02 * sz) / det
            b[i, j] = (c01 * sxz + c11 * syz + c12 * sz) / det
            c[i, j] = (c02 * sxz + c12 * syz + c22 * sz) / det
            sse = szz - (a[i, j] * sxz + b[i, j] * syz + c[i, j] * sz)
            rms[i, j] = math.sqrt(max(sse, 0.0) / n)


def roof_faces(planes: Planes, mask: np.ndarray, cell_cluster: np.ndarray) -> np.ndarray:
    """Label of the roof face of each smooth cell (1, 2, ...), 0 elsewhere; faces smaller than a few cells dropped."""
    smooth = mask & (planes.rms < _SMOOTH_RMS)
    rows, cols = smooth.shape
    ids = np.arange(rows * cols).reshape(rows, cols)
    sources, targets = [], []
    for di, dj in ((0, 1), (1, 0)):
        p, q = (slice(0, rows - di), slice(0, cols - dj)), (slice(di, rows), slice(dj, cols))
        dx, dy = dj * planes.resolution, -di * planes.resolution
        height_p = planes.c[p] + (planes.a[p] * dx + planes.b[p] * dy) / 2
        height_q = planes.c[q] - (planes.a[q] * dx + planes.b[q] * dy) / 2
        linked = (smooth[p] & smooth[q] & (cell_cluster[p] == cell_cluster[q])
                  & (np.abs(height_p - height_q) < _LINK_HEIGHT)
                  & (np.abs(planes.a[p] - planes.a[q]) < _LINK_SLOPE)
                  & (np.abs(planes.b[p] - planes.b[q]) < _LINK_SLOPE))
        sources.append(ids[p][linked])
        targets.append(ids[q][linked])
    sources, targets = np.concatenate(sources), np.concatenate(targets)
    graph = coo_matrix((np.ones(len(sources), dtype=np.int8), (sources, targets)), shape=(rows * cols, rows * cols))
    _, component = connected_components(graph, directed=False)
    big = np.bincount(component[smooth.ravel()], minlength=rows * cols) >= _MIN_FACE_CELLS
    face = np.cumsum(big) * big  # of each component: 1, 2, ... for the big ones, 0 for the others
    return np.where(smooth.ravel(), face[component], 0).reshape(rows, cols)


def _face_contacts(faces: np.ndarray, planes: Planes,
                   cell_cluster: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of faces facing each other across up to ``_CONTACT_GAP`` cells, with the height gap of each contact.

    A contact is a pair of cells (p in one face, q in another of the same
    cluster) on one row or column with no face between them. The surface switches from p's plane to
    q's somewhere between them: where the mean heights of the cells in
    between fit the two planes best. The contact's height gap is the
    difference of the two planes there: about 0 at a ridge or a break of
    slope, the height of the step at a party wall between roofs of different
    heights.
    """
    rows, cols = faces.shape
    first, second, gaps = [], [], []
    for di, dj in ((0, 1), (1, 0)):
        free = np.ones(faces.shape, dtype=bool)  # no face on the cells strictly between p and q
        for step in range(1, _CONTACT_GAP + 2):
            oi, oj = di * step, dj * step
            if oi >= rows or oj >= cols:
                break
            p, q = (slice(0, rows - oi), slice(0, cols - oj)), (slice(oi, rows), slice(oj, cols))
            fp, fq = faces[p], faces[q]
            found = free[p] & (fp > 0) & (fq > 0) & (fp != fq) & (cell_cluster[p] == cell_cluster[q])
            first.append(fp[found])
            second.append(fq[found])
            gaps.append(_switch_gap(planes, np.flatnonzero(found.ravel()), p, q, (di, dj), step))
            beyond = np.zeros(faces.shape, dtype=bool)
            beyond[p] = fq == 0
            free &= beyond
    return np.concatenate(first), np.concatenate(second), np.concatenate(gaps)


def _switch_gap(planes: Planes, found: np.ndarray, p: tuple, q: tuple, direction: tuple[int, int],
                step: int) -> np.ndarray:
    """Height gap between the planes of p and q where the surface between them switches from one to the other."""
    di, dj = direction
    res = planes.resolution
    a_p, b_p, c_p = (v[p].ravel()[found] for v in (planes.a, planes.b, planes.c))
    a_q, b_q, c_q = (v[q].ravel()[found] for v in (planes.a, planes.b, planes.c))
    rise_p = (a_p * dj - b_p * di) * res  # change of p's plane per cell towards q
    rise_q = (a_q * dj - b_q * di) * res
    row, col = np.divmod(found, p[1].stop - p[1].start)
    between = []  # misfit of each cell between p and q to p's plane and to q's plane
    for m in range(1, step):
        height = planes.mean[row + m * di, col + m * dj]
        known = np.isfinite(height)
        height = np.where(known, height, 0.0)
        between.append((np.where(known, np.abs(height - (c_p + rise_p * m)), 0.0),
                        np.where(known, np.abs(height - (c_q - rise_q * (step - m))), 0.0)))
    best_cost = np.full(len(found), np.inf)
    best_gap = np.zeros(len(found))
    for switch in range(1, step + 1):  # cells 1..switch-1 on p's plane, switch..step-1 on q's
        cost = sum((between[m - 1][0] if m < switch else between[m - 1][1] for m in range(1, step)),
                   np.zeros(len(found)))
        middle = switch - 0.5
        gap = np.abs((c_p + rise_p * middle) - (c_q - rise_q * (step - middle)))
        gap = np.maximum(gap - np.abs(rise_p - rise_q) / 2, 0.0)  # the switch may lie anywhere in its cell
        better = cost < best_cost - 1e-9
        best_cost = np.where(better, cost, best_cost)
        best_gap = np.where(better, gap, best_gap)
    return best_gap


def _group_faces(faces: np.ndarray, planes: Planes, cell_cluster: np.ndarray, height_step: float) -> np.ndarray:
    """Label of the building of each cell (1, 2, ...) from the faces, 0 for cells left to the nearest building."""
    count = int(faces.max())
    if count == 0:
        return faces
    first, second, gap = _face_contacts(faces, planes, cell_cluster)
    low, high = np.minimum(first, second), np.maximum(first, second)
    pairs, which = np.unique(low * (count + 1) + high, return_inverse=True)
    total = np.bincount(which)
    continuous = np.bincount(which, gap < _CONTINUOUS_HEIGHT)
    stepped = np.bincount(which, gap > height_step)
    offset = np.bincount(which, gap > height_step / 2)
    is_step = ((stepped >= _MIN_STEP_CONTACTS) & (stepped >= _STEP_SHARE * total)) \
        | ((offset >= _MIN_STEP_CONTACTS) & (offset >= _OFFSET_SHARE * total))
    is_continuous = ~is_step & (continuous >= _CONTINUOUS_SHARE * total)
    low, high = np.divmod(pairs, count + 1)
    size = np.bincount(faces.ravel(), minlength=count + 1)
    group = _merge_with_cannot_links(count, low[is_continuous], high[is_continuous], continuous[is_continuous],
                                     low[is_step], high[is_step], size)
    return group[faces]


def _merge_with_cannot_links(count: int, low: np.ndarray, high: np.ndarray, weight: np.ndarray,
                             apart_low: np.ndarray, apart_high: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Union-find of faces 1..count along the continuous pairs, heaviest first, never joining stepped faces.

    When a merge is refused, the smaller of the two faces, if it is less
    than half of its group (the steep side of a mansard running past a party
    wall, continuous with both buildings), is dissolved: it gets group 0 and
    its cells go to the nearest building. Returns the group of each face
    (index 0 unused), numbered 1, 2, ...
    """
    parent = np.arange(count + 1)
    members = {face: {face} for face in range(count + 1)}
    apart: dict[int, set[int]] = {face: set() for face in range(count + 1)}
    for a, b in zip(apart_low.tolist(), apart_high.tolist()):
        apart[a].add(b)
        apart[b].add(a)

    def root(face: int) -> int:
        while parent[face] != face:
            parent[face] = parent[parent[face]]
            face = parent[face]
        return face

    cells = {face: int(size[face]) for face in range(count + 1)}  # of each group, by root
    dissolved = set()
    for index in np.argsort(-weight, kind="stable").tolist():
        a, b = int(low[index]), int(high[index])
        ra, rb = root(a), root(b)
        if ra == rb:
            continue
        if apart[ra] & members[rb]:
            smaller = a if size[a] < size[b] else b
            if 2 * size[smaller] < cells[root(smaller)]:
                dissolved.add(smaller)
            continue
        if len(members[ra]) < len(members[rb]):
            ra, rb = rb, ra
        parent[rb] = ra
        members[ra] |= members.pop(rb)
        apart[ra] |= apart.pop(rb)
        cells[ra] += cells.pop(rb)
    roots = np.array([root(face) for face in range(count + 1)])
    roots[0] = -1
    if dissolved:
        roots[list(dissolved)] = -1
    _, group = np.unique(roots, return_inverse=True)  # -1 (face 0, dissolved faces) becomes 0
    return group


def _fill(groups: np.ndarray, mask: np.ndarray, cell_cluster: np.ndarray,
          planes: Planes) -> tuple[np.ndarray, np.ndarray]:
    """Every building cell gets the building of the nearest labelled cell of its cluster.

    Also returns the height each cell would have on the plane of that
    nearest cell (NaN where there is none). A cluster with no labelled cell at
    all (a small or rough building) is one building.
    """
    labelled = groups > 0
    labels = np.zeros_like(groups)
    expected = np.full(groups.shape, np.nan)
    if labelled.any():
        nearest = tuple(ndimage.distance_transform_edt(~labelled, return_distances=False, return_indices=True))
        labels = np.where(mask & (cell_cluster[nearest] == cell_cluster), groups[nearest], 0)
        rows, cols = np.indices(groups.shape)
        dx, dy = (cols - nearest[1]) * planes.resolution, (nearest[0] - rows) * planes.resolution
        expected = np.where(labels > 0, planes.c[nearest] + planes.a[nearest] * dx + planes.b[nearest] * dy, np.nan)
    orphan = mask & ~np.isin(cell_cluster, np.unique(cell_cluster[labelled]))
    labels[orphan] = labels.max() + 1 + cell_cluster[orphan]
    return labels, expected


def _settle_steps(labels: np.ndarray, expected: np.ndarray, height: np.ndarray, height_step: float) -> np.ndarray:
    """Move the cells on a step between two buildings to the building whose height they have.

    The nearest-face growth splits the cells around a step evenly, but the
    faces may stop closer to the step on one side. A cell p of building A
    next to a cell q of building B, where their roofs are a step apart
    (``expected`` heights differing by more than ``height_step`` / 2), goes
    to B when its median ``height`` fits B's roof (within ``_SETTLE_FIT``),
    better than A's, and q's height fits B's roof too (so that a strip of a
    sloping roof at the height of a neighbour is not taken for it).
    """
    labels, expected = labels.copy(), expected.copy()
    for _ in range(_SETTLE_PASSES):
        for p, q in _neighbour_slices():
            # Only cells next to another building may move: compare the rest of the way on those alone.
            i, j = np.nonzero((labels[p] > 0) & (labels[q] > 0) & (labels[p] != labels[q]))
            expected_p, expected_q = expected[p][i, j], expected[q][i, j]
            height_p, height_q = height[p][i, j], height[q][i, j]
            with np.errstate(invalid="ignore"):
                fits_q = np.abs(height_p - expected_q)
                move = ((np.abs(expected_p - expected_q) > height_step / 2)
                        & (fits_q < _SETTLE_FIT) & (fits_q < np.abs(height_p - expected_p))
                        & (np.abs(height_q - expected_q) < _SETTLE_FIT))
            i, j = i[move], j[move]
            labels[p][i, j], expected[p][i, j] = labels[q][i, j], expected_q[move]
    return labels


def _neighbour_slices() -> list[tuple[tuple[slice, slice], tuple[slice, slice]]]:
    """For each of the 4 directions, the slices of the cells p of a grid and of their neighbours q that way."""
    ahead, behind, every = slice(1, None), slice(None, -1), slice(None)
    return [((ahead, every), (behind, every)), ((behind, every), (ahead, every)),
            ((every, ahead), (every, behind)), ((every, behind), (every, ahead))]


def _buildings(labels: np.ndarray, grid: Grid, cell: np.ndarray, xyz: np.ndarray, roof: np.ndarray, dtm: Raster,
               *, min_area: float, simplify: float, crs: str) -> gpd.GeoDataFrame:
    """Outline each labelled building and compute its attributes."""
    owner, outlines = _outlines(labels, grid)
    if len(owner) == 0:
        return _empty(crs)
    slot = np.full(int(labels.max()) + 1, -1)
    slot[owner] = np.arange(len(owner))
    point_slot = slot[labels.ravel()[cell]]
    roof_z = _roof_heights(labels, cell, xyz[:, 2], roof & (point_slot >= 0), point_slot, len(owner))
    # Wall points well below the building's lowest roof: not the points of a lower roof next to a step.
    wall = ~roof & (point_slot >= 0)
    wall[wall] = xyz[wall, 2] < roof_z[0][point_slot[wall]] - _WALL_BELOW_ROOF
    walls = _points_by_slot(point_slot, wall, xyz[:, :2], len(owner))
    simplified = shapely.simplify(outlines, simplify, preserve_topology=True)
    merge = max(2 * simplify, grid.resolution)
    polygons = np.array([square(polygon, merge=merge, walls=points, outline=outline)
                         for polygon, points, outline in zip(simplified, walls, outlines)], dtype=object)

    cell_slot = slot[labels.ravel()]
    inside = np.flatnonzero(cell_slot >= 0)
    xs, ys = grid.centres()
    row, col = np.divmod(inside, grid.shape[1])
    ground = dtm.sample(xs[col], ys[row])
    known = np.isfinite(ground)
    ground_z = _group_percentiles(cell_slot[inside][known], ground[known], len(owner), (50.0,))[0]
    frame = gpd.GeoDataFrame({
        "ground_z": ground_z, "roof_z_min": roof_z[0], "roof_z_median": roof_z[1], "roof_z_max": roof_z[2],
        "height_m": roof_z[2] - ground_z, "area_m2": shapely.area(polygons),
        "point_count": np.bincount(point_slot[point_slot >= 0], minlength=len(owner)),
    }, geometry=gpd.GeoSeries(polygons, crs=crs), crs=crs)
    keep = (shapely.is_valid(polygons) & ~shapely.is_empty(polygons) & (frame["area_m2"].to_numpy() >= min_area)
            & np.isfinite(roof_z[2]))
    return frame[keep].reset_index(drop=True)


def _outlines(labels: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """The labels of the traced buildings and the outline of each: its largest part, opened and closed by a cell.

    The opening and the closing strip the spikes of single cells and smooth
    the staircase of oblique walls; squaring restores the corners they round.
    """
    values = labels.astype(np.int32)
    traced = [(shapely.geometry.shape(geometry), int(value)) for geometry, value in
              rasterio.features.shapes(values, mask=values > 0, connectivity=4, transform=grid.transform)]
    owner, outlines = _largest_per_owner(np.array([geometry for geometry, _ in traced], dtype=object),
                                         np.array([value for _, value in traced], dtype=np.int64))
    for distance in (-grid.resolution, grid.resolution, grid.resolution, -grid.resolution):
        outlines = shapely.buffer(outlines, distance, quad_segs=2)
    parts, index = shapely.get_parts(outlines, return_index=True)  # an opening may cut a building in two
    return _largest_per_owner(parts, owner[index])


def _largest_per_owner(polygons: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct owners (sorted) and the polygon of largest area of each."""
    if len(polygons) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
    order = np.lexsort((-shapely.area(polygons), owner))
    first = np.r_[True, owner[order][1:] != owner[order][:-1]]
    return owner[order][first], polygons[order][first]


def _roof_heights(labels: np.ndarray, cell: np.ndarray, z: np.ndarray, on_roof: np.ndarray, point_slot: np.ndarray,
                  count: int) -> np.ndarray:
    """roof_z_min, roof_z_median and roof_z_max of each building (rows), from its roof points.

    The lowest and median heights leave out the cells next to another
    building, which may hold its points; the top comes from the cells well
    inside the building, as its edge cells may hold a strip of a taller
    neighbour. Both fall back on all the roof points of small buildings.
    """
    ordered = np.flatnonzero(on_roof)
    ordered = ordered[_group_order(point_slot[ordered], z[ordered], count)]  # sorted once: subsets stay sorted
    slot, height, cell = point_slot[ordered], z[ordered], cell[ordered]
    roof_z = _ordered_percentiles(slot, height, count, _ROOF_PERCENTILES)
    own = ~_next_to_other(labels).ravel()[cell]
    own_count = np.bincount(slot[own], minlength=count)
    own_z = _ordered_percentiles(slot[own], height[own], count, _ROOF_PERCENTILES[:2])
    roof_z[:2] = np.where(own_count >= _MIN_INTERIOR_POINTS, own_z, roof_z[:2])
    interior = _interior(labels).ravel()[cell]
    inner_count = np.bincount(slot[interior], minlength=count)
    inner_top = _ordered_percentiles(slot[interior], height[interior], count, _ROOF_PERCENTILES[-1:])[0]
    roof_z[-1] = np.where(inner_count >= _MIN_INTERIOR_POINTS, inner_top, roof_z[-1])
    return roof_z


def _points_by_slot(point_slot: np.ndarray, selected: np.ndarray, xy: np.ndarray, count: int) -> list[np.ndarray]:
    """The (n, 2) coordinates of the selected points of each building 0..count-1."""
    chosen = np.flatnonzero(selected & (point_slot >= 0))
    chosen = chosen[np.argsort(point_slot[chosen], kind="stable")]
    bounds = np.searchsorted(point_slot[chosen], np.arange(count + 1))
    return [xy[chosen[start:stop]] for start, stop in zip(bounds[:-1], bounds[1:])]


def _next_to_other(labels: np.ndarray) -> np.ndarray:
    """Cells with a cell of another building among their 8 neighbours."""
    others_above = ndimage.maximum_filter(labels, size=3) > labels
    others_below = ndimage.minimum_filter(np.where(labels > 0, labels, np.iinfo(labels.dtype).max), size=3) < labels
    return others_above | others_below


def _interior(labels: np.ndarray) -> np.ndarray:
    """Cells whose neighbours within ``_INTERIOR_CELLS`` all have their label."""
    size = 2 * _INTERIOR_CELLS + 1
    return (ndimage.maximum_filter(labels, size=size) == labels) & (ndimage.minimum_filter(labels, size=size) == labels)


def _group_percentiles(group: np.ndarray, values: np.ndarray, count: int,
                       percentiles: tuple[float, ...]) -> np.ndarray:
    """Percentiles (linear interpolation) of ``values`` per group 0..count-1, NaN for empty groups."""
    order = _group_order(group, values, count)
    return _ordered_percentiles(group[order], values[order], count, percentiles)


def _ordered_percentiles(group: np.ndarray, values: np.ndarray, count: int,
                         percentiles: tuple[float, ...]) -> np.ndarray:
    """:func:`_group_percentiles` of values already in order of group, then increasing within each group."""
    sizes = np.bincount(group, minlength=count)
    starts = np.cumsum(sizes) - sizes
    result = np.full((len(percentiles), count), np.nan)
    filled = sizes > 0
    for k, percentile in enumerate(percentiles):
        position = (sizes[filled] - 1) * percentile / 100.0
        below = np.floor(position).astype(np.int64)
        above = np.minimum(below + 1, sizes[filled] - 1)
        share = position - below
        base = starts[filled]
        result[k, filled] = values[base + below] * (1 - share) + values[base + above] * share
    return result


@numba.njit(cache=True, nogil=True)
def _group_order(group, values, count):  # pragma: no cover - compiled
    """The permutation putting ``values`` in order of group 0..count-1 (a counting sort), then increasing within
    each group: one pass and many small sorts, where a lexsort of all the values is several times slower."""
    starts = np.zeros(count + 1, dtype=np.int64)
    for g in group:
        starts[g + 1] += 1
    starts = np.cumsum(starts)
    order = np.empty(group.size, dtype=np.int64)
    filled = starts[:-1].copy()
    for k in range(group.size):
        order[filled[group[k]]] = k
        filled[group[k]] += 1
    for g in range(count):
        start, stop = starts[g], starts[g + 1]
        if stop - start > 16:
            members = order[start:stop]
            order[start:stop] = members[np.argsort(values[members])]
            continue
        for k in range(start + 1, stop):  # an insertion sort: a cell holds a few points
            index, m = order[k], k - 1
            while m >= start and values[order[m]] > values[index]:
                order[m + 1] = order[m]
                m -= 1
            order[m + 1] = index
    return order


def _empty(crs: str) -> gpd.GeoDataFrame:
    """A frame of no footprint, with the columns of :func:`extract_footprints`."""
    return gpd.GeoDataFrame({name: np.empty(0) for name in COLUMNS}, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
