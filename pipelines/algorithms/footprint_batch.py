"""The footprint checks of :mod:`footprint_check` for a batch of footprints at once, where they are plain.

Most footprints rest on their own points: their check is three tests of their points (on a neighbour, near
a sample, outside the footprint), each done here in a few numpy/shapely calls for the whole batch instead
of a few dozen per footprint. A footprint needing more (a shift search, its points read again for a
sparse lidar, a footprint too thin for the sample grid) is left to :func:`check_footprint`, with the
same figures: the same points, samples and tests.
"""

from __future__ import annotations

import numpy as np
import shapely

from pipelines.algorithms.footprint_check import (POINTS_PER_DISC, SAMPLE, STEP, CheckOptions, CheckShapes,
                                                  FootprintCheck)
from pipelines.algorithms.roof_batch import in_boxes


def check_batch(footprints: np.ndarray, shapes: list[CheckShapes], others: list[np.ndarray], xyz: np.ndarray,
                owner: np.ndarray, on_roof: np.ndarray, fetched: np.ndarray, density: np.ndarray,
                options: CheckOptions) -> list[FootprintCheck | None]:
    """Each footprint's check, or None where :func:`check_footprint` must do it: ``xyz`` the building
    points read around each footprint (``owner``: whose, ``fetched``: from which box), ``on_roof`` which of
    them are its roof points, ``density`` its roof points per m2 (> 0)."""
    count = len(footprints)
    density = np.maximum(density, 1e-6)
    reach = np.maximum(STEP, np.sqrt(POINTS_PER_DISC / (np.pi * density)))
    grow = max(options.check_margin, options.max_shift) + reach
    boxes = shapely.bounds(footprints) + np.column_stack([-grow, -grow, grow, grow])
    plain = ((boxes[:, :2] >= fetched[:, :2]).all(axis=1) & (boxes[:, 2:] <= fetched[:, 2:]).all(axis=1)
             & np.array([s.nodes is not None and len(s.samples) > 0 for s in shapes]))
    keep = plain[owner] & in_boxes(xyz, boxes[owner])  # the points check_footprint would be given
    xy, owner, inside = xyz[keep, :2], owner[keep], on_roof[keep]
    taken = _taken(others, xy, owner, count)
    covered, free = _shares_near(shapes, xy, owner, taken, reach, plain)
    plain &= free >= 1 - options.shift_gain / 2  # else a shift is looked for
    outside = np.bincount(owner, _outside(footprints, shapes, xy, owner, taken | inside, plain), count)
    area = outside / density
    partial = area >= options.partial_share * shapely.area(footprints)
    return [FootprintCheck(float(covered[k]), float(area[k]), int(outside[k]), (0.0, 0.0), False, bool(partial[k]))
            if plain[k] else None for k in range(count)]


def _taken(others: list[np.ndarray], xy: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
    """Which points lie on a neighbour of their footprint (``others``: each footprint's neighbours grown
    by EDGE): its n-th neighbours tested together, after their boxes."""
    taken = np.zeros(len(xy), dtype=bool)
    most = max((len(o) for o in others), default=0)
    for n in range(most):
        neighbour = np.array([o[n] if n < len(o) else None for o in others], dtype=object)
        bounds = shapely.bounds(neighbour)  # NaN for none: no point inside
        near = np.flatnonzero(~taken & in_boxes(xy, bounds[owner]))
        taken[near] = shapely.contains_xy(neighbour[owner[near]], xy[near, 0], xy[near, 1])
    return taken


def _shares_near(shapes: list[CheckShapes], xy: np.ndarray, owner: np.ndarray, taken: np.ndarray,
                 reach: np.ndarray, plain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each footprint, the share of its samples with one of its points within ``reach``, and with one of
    its untaken points: :func:`footprint_check._share_near`'s grid nodes marked by the points around them.
    Each point first marks its nearest node (on a dense roof, every sample but a few); only the points
    near a sample still unmarked then test every node within their reach."""
    count = len(shapes)
    if not plain.any():
        return np.zeros(count), np.zeros(count)
    xs, ys = (np.concatenate([getattr(s, axis) if plain[k] else [] for k, s in enumerate(shapes)]).astype(float)
              for axis in ("xs", "ys"))
    width = np.array([len(s.xs) if plain[k] else 0 for k, s in enumerate(shapes)])
    height = np.array([len(s.ys) if plain[k] else 0 for k, s in enumerate(shapes)])
    first_x, first_y, first_node = (np.cumsum(n) - n for n in (width, height, width * height))
    low_x, high_x = _ends(xs, first_x, width, reach)
    low_y, high_y = _ends(ys, first_y, height, reach)
    near = np.flatnonzero(in_boxes(xy, np.column_stack([low_x, low_y, high_x, high_y])[owner]))  # others mark none
    xy, owner, taken = xy[near], owner[near], taken[near]
    marked = np.zeros((2, int((width * height).sum())), dtype=bool)  # by any point, by an untaken one
    column = np.clip(np.rint((xy[:, 0] - xs[np.minimum(first_x, len(xs) - 1)][owner]) / SAMPLE), 0,
                     width[owner] - 1).astype(np.int64)
    row = np.clip(np.rint((xy[:, 1] - ys[np.minimum(first_y, len(ys) - 1)][owner]) / SAMPLE), 0,
                  height[owner] - 1).astype(np.int64)
    nearest = first_node[owner] + row * width[owner] + column
    r2 = reach[owner] ** 2
    hit = (xs[first_x[owner] + column] - xy[:, 0]) ** 2 + (ys[first_y[owner] + row] - xy[:, 1]) ** 2 < r2
    marked[0, nearest[hit]] = True
    marked[1, nearest[hit & ~taken]] = True
    samples = np.concatenate([first_node[k] + shapes[k].nodes for k in np.flatnonzero(plain)] or [[]]).astype(np.int64)
    sample_owner = np.repeat(np.flatnonzero(plain), [len(shapes[k].nodes) for k in np.flatnonzero(plain)])
    unmarked = np.zeros(marked.shape[1], dtype=bool)
    unmarked[samples[~marked[:, samples].all(axis=0)]] = True
    # a node within reach of a point is at most reach + half a step from the point's nearest node
    around = _dilated(unmarked, np.repeat(width, width * height), int(np.ceil(reach[plain].max() / SAMPLE + 0.5)))
    again = np.flatnonzero(around[nearest])
    _mark_within_reach(marked, again, xy, owner, taken, reach, xs, ys, width, first_x, first_y, first_node)
    totals = np.bincount(sample_owner, minlength=count)
    shares = [np.bincount(sample_owner, marked[s, samples], count) / np.maximum(totals, 1) for s in (0, 1)]
    return shares[0], shares[1]


def _dilated(cells: np.ndarray, width: np.ndarray, steps: int) -> np.ndarray:
    """``cells`` (flat grids, ``width`` each cell's grid width) grown by ``steps`` cells along rows then along
    columns (a square); what crosses from a row's end to the next row's is harmless: a superset."""
    index, last = np.arange(len(cells)), len(cells) - 1
    for stride in (1, width):
        for _ in range(steps):
            cells = cells | cells[np.clip(index - stride, 0, last)] | cells[np.clip(index + stride, 0, last)]
    return cells


def _mark_within_reach(marked, at, xy, owner, taken, reach, xs, ys, width, first_x, first_y, first_node) -> None:
    """The points ``at`` mark every node within their reach (as :func:`footprint_check._share_near`): the
    points with the same number of nodes to look at in one broadcast."""
    height_of = np.diff(np.append(first_y, len(ys)))
    steps = (2 * reach / SAMPLE).astype(int) + 2  # from the first node past x - reach, those up to x + reach
    for step in np.unique(steps[owner[at]]):
        these = at[steps[owner[at]] == step]
        k, r = owner[these], reach[owner[these]]
        column = _first_past(xs, first_x[k], width[k], xy[these, 0] - r)[:, None] + np.arange(step)
        row = _first_past(ys, first_y[k], height_of[k], xy[these, 1] - r)[:, None] + np.arange(step)
        dx2 = (xs[first_x[k][:, None] + np.minimum(column, width[k][:, None] - 1)] - xy[these, :1]) ** 2
        dy2 = (ys[first_y[k][:, None] + np.minimum(row, height_of[k][:, None] - 1)] - xy[these, 1:2]) ** 2
        dx2[column >= width[k][:, None]] = np.inf  # past the grid's last column or row
        dy2[row >= height_of[k][:, None]] = np.inf
        point, i, j = np.nonzero(dx2[:, :, None] + dy2[:, None, :] < (r * r)[:, None, None])
        node = first_node[k[point]] + row[point, j] * width[k[point]] + column[point, i]
        marked[0, node] = True
        marked[1, node[~taken[these[point]]]] = True


def _ends(values: np.ndarray, first: np.ndarray, length: np.ndarray, reach: np.ndarray):
    """Each run's first value less its reach and last value plus it, with a margin over the rounding of a
    distance test (so that no point within reach of a node is left out), or NaN for an empty run."""
    has = length > 0
    low = np.where(has, values[np.minimum(first, len(values) - 1)] - reach - 1e-6, np.nan)
    high = np.where(has, values[np.minimum(first + length - 1, len(values) - 1)] + reach + 1e-6, np.nan)
    return low, high


def _first_past(values: np.ndarray, first: np.ndarray, length: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``np.searchsorted(values[first:first + length], x)`` for each x, each run of values a grid of SAMPLE
    steps (np.arange: a step's rounding is far below one): the step counted, then set right by the values."""
    found = np.clip(np.floor((x - values[first]) / SAMPLE).astype(np.int64), 0, length)
    last = first + np.maximum(length - 1, 0)
    found += (found < length) & (values[np.minimum(first + found, last)] < x)  # one past: still below x
    found -= (found > 0) & (values[np.minimum(first + found - 1, last)] >= x)  # the one before already past x
    return found


def _outside(footprints: np.ndarray, shapes: list[CheckShapes], xy: np.ndarray, owner: np.ndarray,
             skipped: np.ndarray, plain: np.ndarray) -> np.ndarray:
    """Which points are free building points outside their footprint (grown by EDGE) within check_margin
    (``skipped``: taken, or its roof points)."""
    wide = np.array([s.wide for s in shapes], dtype=object)
    edge = np.array([s.edge for s in shapes], dtype=object)
    near = np.flatnonzero(~skipped & plain[owner])
    near = near[shapely.contains_xy(wide[owner[near]], xy[near, 0], xy[near, 1])]
    near = near[~shapely.contains_xy(edge[owner[near]], xy[near, 0], xy[near, 1])]
    outside = np.zeros(len(xy), dtype=bool)
    outside[near] = True
    return outside
