"""Trees and canopy cover from a canopy height model (CHM), as pure functions.

A CHM holds, per cell, the height above ground of the highest vegetation
return (NaN or 0 where there is none); :func:`canopy_height_model` builds one
from classified points and a terrain raster.

Tree detection follows the usual two steps of the literature, vectorised with
numpy and scipy:

1. Tree tops are local maxima of the lightly smoothed CHM in a circular window
   whose width grows with the height of the cell (the variable window filter of
   Popescu & Wynne 2004): a tall tree has a wide crown, so a bump on its crown
   is not mistaken for another top, while small close trees are still split.
   Only the 3x3 local maxima are tested against their window, by gathering the
   window's cells with fancy indexing, so the cost is small however wide the
   window is.
2. Crowns are grown from the tops by a marker-controlled watershed of the
   inverted CHM, flooded level by level over the canopy cells only (not
   ``scipy.ndimage.watershed_ift``, whose arc weights are the differences of
   neighbouring values, a gradient watershed that lets a crown's flood run
   along its neighbour's edge); cells lower than a fraction of their tree's
   top (the crown's edge) are left out. A crown's radius is that of the disc
   of the same area.

Canopy cover polygons are the thresholded CHM, cleared of small patches and
holes on the raster, traced by ``rasterio.features.shapes``, simplified and
filtered by area.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import geopandas as gpd
import numpy as np
import rasterio.features
import shapely
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from gis.errors import InputError
from pipelines.raster import Grid, Raster, bin_extreme


_BLOCK_ROWS = 256  # rows per block when filling pits, to bound memory on large tiles
_CANDIDATE_CHUNK = 4096  # tree-top candidates tested at once against their window
_FLOOD_STEP = 0.1  # metres of water level per step of the watershed
_TOP_REACH = 1.0  # metres: a tree's height is the highest CHM cell this close (in x and y) to its top
_EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)


def popescu_deciduous_window(height: np.ndarray) -> np.ndarray:
    """Width (m) of the search window for a tree top of ``height`` (m).

    The crown width of deciduous trees predicted from their height by Popescu &
    Wynne (2004): ``3.09632 + 0.00895 h**2``.

    >>> float(popescu_deciduous_window(np.array(20.0)).round(2))
    6.68
    """
    return 3.09632 + 0.00895 * np.square(height)


def canopy_height_model(x: np.ndarray, y: np.ndarray, z: np.ndarray, ground: Raster, grid: Grid, *,
                        pit_depth: float = 1.0) -> np.ndarray:
    """Height above ground of the highest vegetation return in each cell of ``grid``.

    Each return is normalised by the terrain under it before binning, so the
    CHM stays right on slopes. Returns below the terrain count as 0 m; returns
    off the terrain raster are ignored. Pits are then filled once: a cell that
    is empty, or more than ``pit_depth`` below the median of its 8
    neighbours, takes that median when at least 5 neighbours hold a value.

    Parameters
    ----------
    x, y, z : numpy.ndarray
        Coordinates of the vegetation returns (e.g. classes 3, 4 and 5), in the CRS of ``ground`` and ``grid``.
    ground : Raster
        Terrain heights (a DTM), on any grid covering the points.
    grid : Grid
        Grid of the CHM.
    pit_depth : float
        Depth (m) below the neighbours' median from which a cell is a pit.

    Returns
    -------
    numpy.ndarray
        float32 array of ``grid.shape``; NaN where there is no vegetation.

    Examples
    --------
    >>> grid = Grid(0.0, 0.0, 2.0, 2.0, 1.0)
    >>> ground = Raster(np.full((2, 2), 10.0, dtype=np.float32), grid, "EPSG:2154")
    >>> canopy_height_model(np.array([0.5]), np.array([1.5]), np.array([18.0]), ground, grid)
    array([[ 8., nan],
           [nan, nan]], dtype=float32)
    """
    x, y, z = (np.asarray(a, dtype=np.float64) for a in (x, y, z))
    height = z - ground.sample(x, y)
    known = np.isfinite(height)
    chm = bin_extreme(grid, x[known], y[known], np.maximum(height[known], 0.0), highest=True)
    return _fill_pits(chm, pit_depth)


def _fill_pits(chm: np.ndarray, pit_depth: float, min_neighbours: int = 5) -> np.ndarray:
    """Replace empty or sunken cells by the median of their valid 8 neighbours (one pass, by blocks of rows)."""
    rows, cols = chm.shape
    padded = np.pad(chm, 1, constant_values=np.nan)
    filled = chm.copy()
    for start in range(0, rows, _BLOCK_ROWS):
        stop = min(rows, start + _BLOCK_ROWS)
        windows = sliding_window_view(padded[start:stop + 2], (3, 3)).reshape(stop - start, cols, 9)
        neighbours = np.sort(np.delete(windows, 4, axis=-1), axis=-1)  # NaN sort last
        count = np.isfinite(neighbours).sum(axis=-1)
        low = np.take_along_axis(neighbours, (np.maximum(count - 1, 0) // 2)[..., None], axis=-1)[..., 0]
        high = np.take_along_axis(neighbours, np.minimum(count // 2, 7)[..., None], axis=-1)[..., 0]
        median = 0.5 * (low + high)
        block = chm[start:stop]
        with np.errstate(invalid="ignore"):
            pit = (count >= min_neighbours) & (np.isnan(block) | (block < median - pit_depth))
        filled[start:stop][pit] = median[pit]
    return filled


def detect_trees(chm: Raster, *, min_height: float = 3.0, smoothing: float = 0.5, crs: str = "EPSG:2154",
                 window: Callable[[np.ndarray], np.ndarray] = popescu_deciduous_window,
                 crown_fraction: float = 0.5, min_crown_ratio: float = 0.5) -> gpd.GeoDataFrame:
    """Tree tops and crown sizes from a canopy height model.

    Tops are the local maxima of the CHM smoothed by a Gaussian of
    ``smoothing`` metres, each in a circular window of ``window(height)``
    metres across (variable window filter). Crowns are the watershed basins of
    the inverted smoothed CHM grown from the tops, limited to the cells of at
    least ``crown_fraction`` times the top's height. A top whose crown is
    narrower than ``min_crown_ratio`` times its window is a bump on a
    neighbour's crown: it is dropped and the crowns are grown again.

    Parameters
    ----------
    chm : Raster
        Heights above ground of the vegetation; NaN or 0 where there is none.
    min_height : float
        Lowest tree top (m); lower maxima are shrubs.
    smoothing : float
        Standard deviation (m) of the Gaussian smoothing; 0 for none.
    crs : str
        CRS of the output (that of the CHM's grid).
    window : callable
        Window width (m) as a function of the top's height (m); the default is
        :func:`popescu_deciduous_window`.
    crown_fraction : float
        Crown edge, as a fraction of the tree's height.
    min_crown_ratio : float
        Narrowest crown (equal-area diameter) kept, as a fraction of the top's window width.

    Returns
    -------
    geopandas.GeoDataFrame
        One point per tree top, with ``height_m`` (highest CHM cell within
        1 m of the top), ``crown_area_m2`` and ``crown_radius_m``
        (``sqrt(area / pi)``).

    Raises
    ------
    InputError
        When a parameter is out of its range.

    Examples
    --------
    >>> ys, xs = np.mgrid[0:40, 0:40] * 0.5 + 0.25
    >>> crown = np.clip(12.0 - ((xs - 10) ** 2 + (ys - 10) ** 2) / 2, 0, None).astype(np.float32)
    >>> trees = detect_trees(Raster(crown, Grid(0.0, 0.0, 20.0, 20.0, 0.5), "EPSG:2154"))
    >>> len(trees), float(trees.height_m.iloc[0].round(1))
    (1, 11.9)
    """
    if min_height <= 0 or smoothing < 0 or not 0 < crown_fraction <= 1 or min_crown_ratio < 0:
        raise InputError(f"detect_trees: min_height ({min_height}) must be > 0, smoothing ({smoothing}) >= 0, "
                         f"crown_fraction ({crown_fraction}) in (0, 1] and min_crown_ratio ({min_crown_ratio}) >= 0")
    resolution = chm.grid.resolution
    heights = np.nan_to_num(np.asarray(chm.data, dtype=np.float64), nan=0.0).clip(min=0.0)
    smooth = ndimage.gaussian_filter(heights, smoothing / resolution, mode="nearest") if smoothing > 0 else heights
    tops, count = _tree_tops(smooth, resolution, min_height, window)
    if count:
        min_radius = min_crown_ratio * window(_label_maximum(smooth, tops, count)[1:]) / 2.0
        tops, crowns, count = _grow_crowns(smooth, heights, tops, count, crown_fraction * min_height, crown_fraction,
                                           min_radius, resolution)
    if not count:
        return _empty_trees(crs)
    rows, cols = _label_centres(tops, count)
    near_top = 2 * round(_TOP_REACH / resolution) + 1
    height = _label_maximum(ndimage.maximum_filter(heights, size=near_top), tops, count)[1:]
    area = np.bincount(crowns.ravel(), minlength=count + 1)[1:] * resolution**2
    x = chm.grid.xmin + (cols + 0.5) * resolution
    y = chm.grid.ymax - (rows + 0.5) * resolution
    keep = height >= min_height
    return gpd.GeoDataFrame({
        "height_m": height[keep].astype(np.float64).round(2),
        "crown_radius_m": np.sqrt(area[keep] / math.pi).round(2),
        "crown_area_m2": area[keep].round(2),
    }, geometry=shapely.points(x[keep], y[keep]), crs=crs)


def _empty_trees(crs: str) -> gpd.GeoDataFrame:
    columns = {name: np.array([], dtype=np.float64) for name in ("height_m", "crown_radius_m", "crown_area_m2")}
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries([], crs=crs), crs=crs)


def _label_maximum(values: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Highest of ``values`` per label, indexed by label (0 for label 0 and for absent labels); one sort."""
    index = labels.ravel()
    labelled = np.flatnonzero(index)
    index, values = index[labelled], values.ravel()[labelled]
    result = np.zeros(count + 1)
    order = np.lexsort((values, index))
    last_of_label = np.r_[index[order][1:] != index[order][:-1], True]
    result[index[order][last_of_label]] = values[order][last_of_label]
    return result


def _label_centres(labels: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean row and column of the cells of each label 1..count."""
    rows, cols = np.nonzero(labels)
    index = labels[rows, cols]
    size = np.bincount(index, minlength=count + 1)[1:]
    return (np.bincount(index, rows, minlength=count + 1)[1:] / size,
            np.bincount(index, cols, minlength=count + 1)[1:] / size)


def _disc_offsets(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column offsets of the cells within ``radius`` cells of the centre."""
    dr, dc = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    inside = dr**2 + dc**2 <= radius**2 + radius  # a slightly rounder disc than r**2 at small radii
    return dr[inside], dc[inside]


def _tree_tops(smooth: np.ndarray, resolution: float, min_height: float,
               window: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, int]:
    """Variable window filter: label image of the tops (a flat top is one label) and their number."""
    candidate = (smooth >= min_height) & (smooth >= ndimage.maximum_filter(smooth, size=3, mode="nearest"))
    rows, cols = np.nonzero(candidate)
    value = smooth[rows, cols]
    width = np.broadcast_to(window(value), value.shape)
    radius = np.maximum(1, np.round(0.5 * width / resolution)).astype(np.int64)
    margin = int(radius.max()) if len(radius) else 1
    padded = np.pad(smooth, margin, constant_values=-np.inf)
    keep = np.zeros(len(rows), dtype=bool)
    for size in np.unique(radius):
        dr, dc = _disc_offsets(int(size))
        members = np.flatnonzero(radius == size)
        for chunk in np.array_split(members, max(1, math.ceil(len(members) / _CANDIDATE_CHUNK))):
            around = padded[rows[chunk, None] + margin + dr, cols[chunk, None] + margin + dc]
            keep[chunk] = value[chunk] >= around.max(axis=1)
    tops = np.zeros(smooth.shape, dtype=bool)
    tops[rows[keep], cols[keep]] = True
    return ndimage.label(tops, structure=_EIGHT_NEIGHBOURS)


def _grow_crowns(smooth: np.ndarray, heights: np.ndarray, tops: np.ndarray, count: int, floor: float,
                 crown_fraction: float, min_radius: np.ndarray,
                 resolution: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Crowns of the tops, dropping the tops whose crown is narrower than ``min_radius`` (m, per top).

    When some are dropped, the crowns of the others are grown again over the
    freed cells. Returns the tops and crowns (label images, numbered anew) and
    the number of trees.
    """
    crowns = _crowns(smooth, heights, tops, count, floor, crown_fraction)
    radius = np.sqrt(np.bincount(crowns.ravel(), minlength=count + 1)[1:] * resolution**2 / math.pi)
    narrow = np.r_[True, radius < min_radius]
    if narrow[1:].any():
        renumber = np.where(narrow, 0, np.cumsum(~narrow))
        tops, count = renumber[tops], int((~narrow).sum())
        crowns = _crowns(smooth, heights, tops, count, floor, crown_fraction) if count else np.zeros_like(tops)
    return tops, crowns, count


def _crowns(smooth: np.ndarray, heights: np.ndarray, tops: np.ndarray, count: int, floor: float,
            crown_fraction: float) -> np.ndarray:
    """Crown of each cell: the watershed of the smoothed CHM from the tops, cut at ``crown_fraction`` of the top."""
    crowns = _flood_from_tops(smooth, tops, smooth >= floor)
    top_height = _label_maximum(smooth, tops, count)
    crowns[heights < crown_fraction * top_height[crowns]] = 0
    return crowns


def _flood_from_tops(surface: np.ndarray, tops: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Marker-controlled watershed of ``surface`` seen upside down, within ``inside``.

    The surface is flooded downwards from its top in steps of ``_FLOOD_STEP``
    metres; at each step the labelled regions grow, one ring of 8 neighbours
    per pass, into the cells reached by the water, each cell taking the label
    of its highest labelled neighbour. Regions cannot cross cells outside
    ``inside`` (gaps in the canopy). Only the cells of the patches holding a
    top are handled, as compact arrays with a table of their neighbours,
    so the cost follows the canopy, not the raster.
    """
    patches, _ = ndimage.label(inside | (tops > 0), structure=_EIGHT_NEIGHBOURS)
    seeded = np.zeros(patches.max() + 1, dtype=bool)
    seeded[patches[tops > 0]] = True
    seeded[0] = False
    cells = np.flatnonzero(seeded[patches])
    # Compact index of each handled cell on a padded raster; elsewhere the sentinel len(cells), never labelled.
    compact = np.full((surface.shape[0] + 2, surface.shape[1] + 2), len(cells), dtype=np.int32)
    row, col = np.divmod(cells, surface.shape[1])
    compact[row + 1, col + 1] = np.arange(len(cells), dtype=np.int32)
    neighbour = np.column_stack([compact[row + 1 + dr, col + 1 + dc]
                                 for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc])
    height = surface.ravel()[cells]
    neighbour_height = np.r_[height, -np.inf].astype(np.float32)[neighbour]
    label = np.r_[tops.ravel()[cells], 0].astype(np.int32)
    waiting = np.zeros(len(cells) + 1, dtype=bool)
    level = np.floor((height.max() - height) / _FLOOD_STEP).astype(np.int64)
    order = np.argsort(level, kind="stable")
    bounds = np.searchsorted(level[order], np.arange(level.max() + 2))
    for step in range(level.max() + 1):
        candidates = order[bounds[step]:bounds[step + 1]]
        candidates = candidates[label[candidates] == 0]
        waiting[candidates] = True
        while len(candidates):  # one ring per pass; only cells next to a newly labelled one are looked at again
            around = label[neighbour[candidates]]
            best = np.argmax(np.where(around > 0, neighbour_height[candidates], -np.inf), axis=1)
            grown = around[np.arange(len(candidates)), best]
            labelled = candidates[grown > 0]
            label[labelled] = grown[grown > 0]
            waiting[labelled] = False
            next_to = neighbour[labelled].ravel()
            candidates = np.unique(next_to[waiting[next_to]])
    crowns = np.zeros(surface.size, dtype=np.int32)
    crowns[cells] = label[:-1]
    return crowns.reshape(surface.shape)


def canopy_polygons(chm: Raster, *, min_height: float = 2.0, min_area: float = 5.0, crs: str = "EPSG:2154",
                    tolerance: float | None = None) -> gpd.GeoDataFrame:
    """Canopy cover: polygons of the cells where vegetation reaches ``min_height``.

    Patches and holes smaller than ``min_area`` are removed from the
    thresholded CHM, whose 4-connected patches are then traced into one
    polygon each (cells touching only at a corner stay apart); the outlines
    are simplified and the polygons still smaller than ``min_area`` dropped.

    Parameters
    ----------
    chm : Raster
        Heights above ground of the vegetation; NaN or 0 where there is none.
    min_height : float
        Lowest vegetation (m) that counts as canopy.
    min_area : float
        Smallest polygon, and largest hole filled (m²).
    crs : str
        CRS of the output (that of the CHM's grid).
    tolerance : float, optional
        Simplification tolerance (m); half a cell by default.

    Returns
    -------
    geopandas.GeoDataFrame
        Polygons with ``area_m2``, largest first.

    Raises
    ------
    InputError
        When ``min_area`` or ``tolerance`` is negative.
    """
    if min_area < 0 or (tolerance is not None and tolerance < 0):
        raise InputError(f"canopy_polygons: min_area ({min_area}) and tolerance ({tolerance}) cannot be negative")
    grid = chm.grid
    with np.errstate(invalid="ignore"):
        mask = np.asarray(chm.data) >= min_height
    if not mask.any():
        return gpd.GeoDataFrame({"area_m2": np.array([], dtype=np.float64)}, geometry=gpd.GeoSeries([], crs=crs),
                                crs=crs)
    mask = _without_small_patches(mask, min_area / grid.resolution**2)
    # Each 4-connected patch traces to one valid polygon, so no union is needed; make_valid is a safety net.
    polygons = np.array([shapely.geometry.shape(geometry) for geometry, _ in rasterio.features.shapes(
        mask.astype(np.uint8), mask=mask, connectivity=4, transform=grid.transform)], dtype=object)
    invalid = ~shapely.is_valid(polygons)
    if invalid.any():
        polygons = np.r_[polygons[~invalid], shapely.get_parts(shapely.make_valid(polygons[invalid]))]
        polygons = polygons[shapely.get_type_id(polygons) == 3]
    tolerance = grid.resolution / 2 if tolerance is None else tolerance
    polygons = shapely.simplify(polygons, tolerance, preserve_topology=True)
    area = shapely.area(polygons)
    order = np.argsort(-area, kind="stable")
    order = order[area[order] >= min_area]
    return gpd.GeoDataFrame({"area_m2": area[order].round(2)}, geometry=polygons[order], crs=crs)


def _without_small_patches(mask: np.ndarray, min_cells: float) -> np.ndarray:
    """``mask`` without its 4-connected patches of fewer than ``min_cells`` cells, and with such holes filled.

    Done on the raster, so that a noisy CHM does not trace into thousands of specks.
    """
    patches, _ = ndimage.label(mask)
    small = np.bincount(patches.ravel()) < min_cells
    small[0] = False
    mask = mask & ~small[patches]
    holes, _ = ndimage.label(~mask, structure=_EIGHT_NEIGHBOURS)  # the complement of 4-connected patches
    fill = np.bincount(holes.ravel()) < min_cells
    fill[0] = False
    fill[np.unique(np.r_[holes[0], holes[-1], holes[:, 0], holes[:, -1]])] = False  # open to the outside
    return mask | fill[holes]
