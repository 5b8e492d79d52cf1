"""The per-footprint point work of :mod:`roofs`, done for a batch of footprints at once.

A footprint's points, its ground plane and its roof percentiles cost little in numpy but much in Python
calls when done one footprint at a time (tens of microseconds of call overhead each, 10,000 times). Here
each is one pass over the batch's points, each point tagged with its footprint (its *owner*); every
footprint's figures depend on its own points alone, so a batch gives what one footprint at a time gives.
"""

from __future__ import annotations

import numpy as np

from gis.asprs import BUILDING, TERRAIN

MIN_PLANE_POINTS = 10  # fewer ground points: their median height, not a plane


class PointIndex:
    """The ground and the building points, each sorted by a grid cell: a footprint's candidates are a few
    slices (one per cell row its box crosses). The building points' order within a box is the same
    whatever the boxes asked with it (the roof planes' random draws depend on it): 25 m cells, each in the
    points' order. The ground points' order only moves the last bits of a plane's sums: finer cells, that
    read fewer points outside the boxes."""

    CELLS = {"terrain": 12.5, "building": 25.0}

    def __init__(self, xyz: np.ndarray, classification: np.ndarray) -> None:
        # column by column: numpy reduces a strided (n, 2) block along its first axis 15x slower
        self.origin = np.array([xyz[:, 0].min(), xyz[:, 1].min()]) if len(xyz) else np.zeros(2)
        span = (np.array([xyz[:, 0].max(), xyz[:, 1].max()]) - self.origin) if len(xyz) else np.zeros(2)
        classes = np.asarray(classification)
        self.groups = {}
        for name, wanted in (("terrain", TERRAIN), ("building", (BUILDING,))):
            cell = self.CELLS[name]
            columns, rows = int(span[0] // cell) + 1, int(span[1] // cell) + 1
            table = np.zeros(max(int(classes.max(initial=0)), *wanted) + 1, dtype=bool)  # a lookup, not np.isin
            table[list(wanted)] = True
            chosen = np.flatnonzero(table[classes])
            keys = self._keys(xyz[chosen, 0], xyz[chosen, 1], cell, columns)
            # the smallest key type: numpy's stable sort is a radix sort (linear) on 16-bit integers
            keys = keys.astype(np.uint16 if rows * columns <= np.iinfo(np.uint16).max else np.int64)
            order = np.argsort(keys, kind="stable")
            self.groups[name] = (xyz[chosen[order]], keys[order].astype(np.int64), cell, columns)

    def _cell(self, x, y, cell: float, columns: int) -> tuple[np.ndarray, np.ndarray]:
        # np.floor of the quotient: 5x faster than floor_divide (which may put a point within a rounding of
        # a cell's border in the other cell: the index and its queries use the same cells)
        column = np.clip(np.floor((np.asarray(x) - self.origin[0]) / cell), 0, columns - 1).astype(np.int64)
        row = np.maximum(np.floor((np.asarray(y) - self.origin[1]) / cell), 0).astype(np.int64)
        return column, row

    def _keys(self, x: np.ndarray, y: np.ndarray, cell: float, columns: int) -> np.ndarray:
        """Each point's cell, row * columns + column (as :meth:`_cell`), as floats: worked in place, for a
        new array of millions of points costs more in page faults than its arithmetic."""
        column = np.subtract(x, self.origin[0])
        column /= cell
        np.floor(column, out=column)
        np.clip(column, 0, columns - 1, out=column)
        row = np.subtract(y, self.origin[1])
        row /= cell
        np.floor(row, out=row)
        np.maximum(row, 0, out=row)
        row *= columns
        row += column
        return row

    def in_box(self, bounds, group: str) -> np.ndarray:
        """The points of ``group`` inside the box (xmin, ymin, xmax, ymax)."""
        points, _ = self.in_boxes(np.asarray([bounds], dtype=float), group)
        return points

    def in_boxes(self, boxes: np.ndarray, group: str) -> tuple[np.ndarray, np.ndarray]:
        """The points of ``group`` inside each box (rows xmin, ymin, xmax, ymax), box after box, and each
        point's box (its owner)."""
        points, keys, cell, columns = self.groups[group]
        (c0, c1), (r0, r1) = self._cell(boxes[:, [0, 2]].T, boxes[:, [1, 3]].T, cell, columns)
        box = np.repeat(np.arange(len(boxes)), r1 - r0 + 1)  # one slice of the sorted points per cell row
        row = r0[box] + _positions(r1 - r0 + 1)
        starts = np.searchsorted(keys, row * columns + c0[box], side="left")
        stops = np.searchsorted(keys, row * columns + c1[box], side="right")
        lengths = np.maximum(stops - starts, 0)
        index = np.repeat(starts, lengths) + _positions(lengths)
        owner = np.repeat(box, lengths)
        found = points[index]
        inside = in_boxes(found, boxes[owner])
        return found[inside], owner[inside]


def _positions(lengths: np.ndarray) -> np.ndarray:
    """0, 1, ..., n - 1 for each n of ``lengths``, joined (ranges as one index array)."""
    ends = np.cumsum(lengths)
    return np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - lengths, lengths)


def in_boxes(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Which points lie inside their box (one row xmin, ymin, xmax, ymax per point), borders included."""
    x, y = points[:, 0], points[:, 1]
    return (x >= boxes[:, 0]) & (x <= boxes[:, 2]) & (y >= boxes[:, 1]) & (y <= boxes[:, 3])


def split_points(points: np.ndarray, owner: np.ndarray, count: int) -> list[np.ndarray]:
    """The points of each owner 0..count - 1 (``owner`` non-decreasing), in their order."""
    return np.split(points, np.cumsum(np.bincount(owner, minlength=count))[:-1])


def sorted_by_owner(values: np.ndarray, owner: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The values sorted within each owner (``owner`` non-decreasing), each owner's first position in them
    and its number of values."""
    sizes = np.bincount(owner, minlength=count)
    first = np.cumsum(sizes) - sizes
    position = np.arange(len(values)) - first[owner]
    widest = int(sizes.max(initial=0))
    if count * widest > 4 * len(values) + 4096:  # one owner far larger than the others: np.lexsort's two passes
        order = np.argsort(values)
        return values[order[np.argsort(owner[order], kind="stable")]], first, sizes
    rows = np.full((count, widest), np.inf)  # one row per owner, padded after its values: one 2D sort (SIMD)
    rows[owner, position] = values
    rows.sort(axis=1)
    return rows[owner, position], first, sizes


def percentiles(values: np.ndarray, owner: np.ndarray, count: int, qs) -> np.ndarray:
    """(count, len(qs)): ``np.percentile(values of the owner, qs)`` (its 'linear' method, to the bit) for
    every owner, NaN for an owner with no value."""
    ordered, first, sizes = sorted_by_owner(values, owner, count)
    ordered = np.append(ordered, np.nan)  # where an owner with no value looks
    last = np.maximum(sizes - 1, 0)[:, None]
    virtual = (sizes[:, None] - 1) * np.true_divide(np.asarray(qs, dtype=float), 100)  # numpy's virtual index
    below = np.floor(virtual)
    gamma = virtual - below
    low = np.minimum(below.astype(np.int64), last)
    start = np.where(sizes > 0, first, len(ordered) - 1)[:, None]
    a, b = ordered[start + low], ordered[start + np.minimum(low + 1, last)]
    step = b - a  # numpy's _lerp: from the lower value below the middle, from the upper one above it
    return np.where(gamma >= 0.5, b - step * (1 - gamma), a + step * gamma)


def medians(values: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
    """``np.median`` of each owner's values (NaN for none)."""
    ordered, first, sizes = sorted_by_owner(values, owner, count)
    result = np.full(count, np.nan)
    has = sizes > 0
    low, high = first[has] + (sizes[has] - 1) // 2, first[has] + sizes[has] // 2
    result[has] = (ordered[low] + ordered[high]) / 2
    return result


def ground_heights(ground: np.ndarray, owner: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """For each footprint (``centres``: its centroid), a plane through its ground points at its centroid,
    their median when too few for a plane, NaN with none: two least-squares fits, the second without the
    points more than 3 median residuals off the first (kerbs and walls' feet), each footprint's normal
    equations solved in one call."""
    count = len(centres)
    sizes = np.bincount(owner, minlength=count)
    planar = sizes >= MIN_PLANE_POINTS
    few = ~planar[owner]
    heights = medians(ground[few, 2], owner[few], count)
    on = ~few
    dx, dy = ground[on, 0] - centres[owner[on], 0], ground[on, 1] - centres[owner[on], 1]
    base = np.bincount(owner, ground[:, 2], count) / np.maximum(sizes, 1)  # heights from the mean: small sums
    dz, who = ground[on, 2] - base[owner[on]], owner[on]
    weights = np.ones(len(dz))
    first, singular = _planes(dx, dy, dz, who, weights, count)
    residual = np.abs(dz - (first[who, 0] + first[who, 1] * dx + first[who, 2] * dy))
    typical = medians(residual, who, count)
    weights = (residual < 3 * np.maximum(typical[who], 0.05)).astype(float)
    second, singular_again = _planes(dx, dy, dz, who, weights, count)
    fitted = planar & ~singular & ~singular_again
    result = heights.copy()
    result[fitted] = base[fitted] + second[fitted, 0]
    for k in np.flatnonzero(planar & ~fitted):  # points on a line, or too few kept: least squares' own answer
        result[k] = _ground_one(ground[owner == k], centres[k])
    return result


def _planes(dx, dy, dz, owner, weights, count) -> tuple[np.ndarray, np.ndarray]:
    """Each owner's least-squares plane dz = a + b dx + c dy (weighted 0/1) from its normal equations, and
    which owners' equations are too ill-conditioned to trust (left to :func:`_ground_one`)."""
    def total(values):
        return np.bincount(owner, weights * values, minlength=count)

    ones, sx, sy = total(np.ones_like(dx)), total(dx), total(dy)
    sxx, sxy, syy = total(dx * dx), total(dx * dy), total(dy * dy)
    matrix = np.stack([np.stack([ones, sx, sy], -1), np.stack([sx, sxx, sxy], -1), np.stack([sy, sxy, syy], -1)], -2)
    vector = np.stack([total(dz), total(dx * dz), total(dy * dz)], -1)
    with np.errstate(all="ignore"):
        singular = ~(np.linalg.cond(matrix) < 1e10) if count else np.zeros(0, dtype=bool)
    matrix[singular] = np.eye(3)  # solved apart; a singular matrix would fail the whole stack
    return np.linalg.solve(matrix, vector[:, :, None])[:, :, 0], singular


def _ground_one(ground: np.ndarray, centre: np.ndarray) -> float:
    """:func:`ground_heights` of one footprint with numpy's least squares (any rank)."""
    dx, dy = ground[:, 0] - centre[0], ground[:, 1] - centre[1]
    design = np.column_stack([np.ones_like(dx), dx, dy])
    coefficients = np.linalg.lstsq(design, ground[:, 2], rcond=None)[0]
    residual = ground[:, 2] - design @ coefficients
    keep = np.abs(residual) < 3 * max(np.median(np.abs(residual)), 0.05)
    coefficients = np.linalg.lstsq(design[keep], ground[keep, 2], rcond=None)[0]
    return float(coefficients[0])
