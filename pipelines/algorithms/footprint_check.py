"""Does a footprint agree with the lidar? Reported per building, never "fixed".

The footprint (shrunk by :data:`EDGE`, so that its walls do not count) is sampled every :data:`SAMPLE`
metres; a sample is "on building points" when one lies within ``reach`` of it, a radius set by the point
density (a disc of that radius holds :data:`POINTS_PER_DISC` points on average, so that an empty disc is
not sampling luck). Three figures come out:

- ``footprint_coverage``: the share of the samples on building points;
- ``outside_area`` / ``outside_points``: the building points more than :data:`EDGE` and at most
  ``check_margin`` outside the footprint that lie in no footprint of the layer (a neighbour's roof is not
  this building's), their area as points over the density: a wing or an annex the footprint misses, the
  strip a shifted footprint left, or a neighbour missing from the cadastre;
- ``shift_x`` / ``shift_y``: the translation (steps of :data:`STEP` up to ``max_shift``) that puts the
  most of the footprint on building points of no other footprint. A shifted footprint rests partly on
  the street or on its neighbour's roof; moved back it rests on its own.

``footprint_shifted`` is set when the best translation raises that share by ``shift_gain`` or more;
``footprint_partial`` when, at the best position, the building points outside cover ``partial_share``
of the footprint's area or more. ``footprint_check`` says it in words, with the figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
import shapely.affinity
from scipy.spatial import cKDTree

POINTS_PER_DISC = 8.0  # building points expected within a sample's reach (none: 1 chance in 3,000)
SAMPLE = 1.0  # metres between the samples of a footprint
STEP = 0.5  # metres between the shifts tried
MIN_SHIFT = 1.0  # metres: a smaller shift is within the slack of the samples' reach and the edge
MITRE = {"join_style": "mitre", "mitre_limit": 3.0}  # buffers keep a building's corners square, and cost less
EDGE = 0.5  # metres: the footprint shrunk by this, and building points this close outside it left out


@dataclass(frozen=True)
class CheckOptions:
    check_margin: float = 3.0  # metres around the footprint where building points outside it are counted
    max_shift: float = 3.0  # metres: the largest translation looked for
    shift_gain: float = 0.03  # the share of the footprint on its own points a translation must add
    partial_share: float = 0.1  # building points outside the footprint over this share of its area
    min_coverage: float = 0.8  # building points on less of the footprint (and no shift found): said so


@dataclass
class FootprintCheck:
    coverage: float
    outside_area: float
    outside_points: int
    shift: tuple[float, float]
    shifted: bool
    partial: bool

    def attributes(self, min_coverage: float = 0.8) -> dict:
        return {"footprint_coverage": self.coverage, "outside_area": self.outside_area,
                "outside_points": self.outside_points, "shift_x": self.shift[0], "shift_y": self.shift[1],
                "footprint_shifted": self.shifted, "footprint_partial": self.partial,
                "footprint_check": self.summary(min_coverage)}

    def summary(self, min_coverage: float = 0.8) -> str:
        said = []
        if self.shifted:
            said.append(f"footprint_shifted: the lidar's building is {np.hypot(*self.shift):.1f} m away "
                        f"(dx {self.shift[0]:+.1f} m, dy {self.shift[1]:+.1f} m)")
        if self.partial:
            said.append(f"footprint_partial: {self.outside_area:.0f} m2 of building points ({self.outside_points}) "
                        "outside the footprint and any other, next to it")
        if not said and self.coverage < min_coverage:
            said.append(f"building points cover {self.coverage:.0%} of the footprint (occluded, or changed)")
        return "; ".join(said) or "ok"


def no_points_check() -> dict:
    """The figures of a footprint with no building point at all."""
    return {**FootprintCheck(0.0, 0.0, 0, (0.0, 0.0), False, False).attributes(),
            "footprint_check": "no building point in the footprint (demolished, or far from where the lidar sees it)"}


def unchecked() -> dict:
    """The figures of a footprint not checked (option ``check_footprints: false``)."""
    return {**FootprintCheck(np.nan, np.nan, 0, (np.nan, np.nan), False, False).attributes(),
            "footprint_check": "not checked (option check_footprints: false)"}


@dataclass(frozen=True)
class CheckShapes:
    """What the checks need of one footprint, made for a whole chunk of footprints at once."""

    samples: np.ndarray  # (k, 2) points every SAMPLE metres inside the footprint shrunk by EDGE
    edge: object  # the footprint grown by EDGE
    wide: object  # the footprint grown by check_margin
    xs: np.ndarray  # the sample grid's columns and rows (the samples are some of its nodes)
    ys: np.ndarray
    nodes: np.ndarray | None  # each sample's node (row * len(xs) + column); None: one sample off the grid


def check_shapes(footprints, margin: float) -> list[CheckShapes]:
    """The :class:`CheckShapes` of each footprint: one vectorised buffer of each kind for all of them."""
    footprints = np.asarray(footprints, dtype=object)
    edges, wides = grown(footprints, EDGE), grown(footprints, margin)
    shapely.prepare(edges)  # each is tested against a thousand points or more
    shapely.prepare(wides)
    return [CheckShapes(samples, edge, wide, *grid) for (samples, grid), edge, wide
            in zip(_samples(footprints), edges, wides)]


def grown(geometries, distance: float):
    """The geometries buffered by ``distance`` with square corners (``Polygon.buffer(distance, **MITRE)``)."""
    return shapely.buffer(geometries, distance, quad_segs=16, **MITRE)


def check_footprint(footprint, shapes: CheckShapes, others: np.ndarray,
                    building_points_in: Callable[[tuple], tuple[np.ndarray, np.ndarray]], density: float,
                    options: CheckOptions) -> FootprintCheck:
    """The agreement of ``footprint`` with the building points (``building_points_in(box)`` gives those of a
    box, and which of them are known to lie well inside the footprint: its roof points, which no test of
    points outside it needs to look at), ``shapes`` its :func:`check_shapes`, ``others`` the layer's
    footprints near it grown by EDGE, ``density`` the building points per m2 inside it."""
    density = max(density, 1e-6)
    reach = max(STEP, float(np.sqrt(POINTS_PER_DISC / (np.pi * density))))
    xmin, ymin, xmax, ymax = footprint.bounds
    grow = max(options.check_margin, options.max_shift) + reach
    xyz, inside = building_points_in((xmin - grow, ymin - grow, xmax + grow, ymax + grow))
    xy = xyz[:, :2]
    samples = shapes.samples
    if len(xy) == 0 or len(samples) == 0:
        return FootprintCheck(0.0, 0.0, 0, (0.0, 0.0), False, False)
    taken = _taken(others, xy)
    at_zero = _share_near(shapes, xy[~taken], reach)
    coverage = _share_near(shapes, xy, reach) if taken.any() else at_zero
    best, shift = at_zero, np.zeros(2)
    if at_zero < 1 - options.shift_gain / 2:  # a footprint resting on its own points needs no search
        free = cKDTree(xy[~taken], balanced_tree=False, compact_nodes=False) if (~taken).any() else None
        steps = np.arange(-int(options.max_shift / STEP), int(options.max_shift / STEP) + 1) * STEP
        shifts = np.array([(dx, dy) for dx in steps for dy in steps if MIN_SHIFT <= np.hypot(dx, dy) <= options.max_shift])
        shares = _shares(free, samples, shifts, reach)
        if shares.max() > at_zero:
            # the shares plateau where the footprint rests whole on the points (the samples' reach and the
            # shrunk edge are slack): of those shifts, the ones leaving the fewest free points next to it,
            # and of these their middle
            plateau = shifts[shares >= shares.max() - 0.005]
            left = np.array([np.count_nonzero(_outside(footprint, shapes, s, xy, taken, options.check_margin))
                             for s in plateau])
            best, shift = float(shares.max()), plateau[left <= left.min() + 0.01 * len(xy)].mean(axis=0)
    shifted = (best - at_zero >= options.shift_gain and best >= 1 - 2 * options.shift_gain  # moved, it rests on them
               and np.hypot(*shift) >= MIN_SHIFT)
    if not shifted:
        shift = np.zeros(2)
    outside = _outside(footprint, shapes, shift, xy, taken | inside if not shifted else taken, options.check_margin)
    outside_points = int(outside.sum())
    outside_area = outside_points / density
    partial = outside_area >= options.partial_share * footprint.area
    return FootprintCheck(coverage, outside_area, outside_points, (float(shift[0]), float(shift[1])), bool(shifted),
                          bool(partial))


def _taken(others: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Which points lie on a neighbour (``others``: the neighbours grown by EDGE): a neighbour's roof, and
    its walls, are not this footprint's."""
    taken = np.zeros(len(xy), dtype=bool)
    if len(others) == 0:
        return taken
    low, high = xy.min(axis=0), xy.max(axis=0)
    bounds = shapely.bounds(others)
    near = (bounds[:, 0] <= high[0]) & (bounds[:, 2] >= low[0]) & (bounds[:, 1] <= high[1]) & (bounds[:, 3] >= low[1])
    for other in others[near]:
        taken |= shapely.contains_xy(other, xy[:, 0], xy[:, 1])
    return taken


def _outside(footprint, shapes: CheckShapes, shift: np.ndarray, xy: np.ndarray, taken: np.ndarray,
             margin: float) -> np.ndarray:
    """Which points are free building points outside the footprint moved by ``shift``, within ``margin``
    (``taken``: the points not to count, or known to be inside)."""
    if shift.any():
        placed = shapely.affinity.translate(footprint, *shift)
        wide, edge = placed.buffer(margin, **MITRE), placed.buffer(EDGE, **MITRE)
    else:
        wide, edge = shapes.wide, shapes.edge
    x, y = xy[:, 0], xy[:, 1]
    near = ~taken
    near[near] = shapely.contains_xy(wide, x[near], y[near])
    near[near] = ~shapely.contains_xy(edge, x[near], y[near])
    return near


def _samples(footprints: np.ndarray) -> list[tuple[np.ndarray, tuple]]:
    """For each footprint, points every SAMPLE metres inside it shrunk by EDGE (its centre when too thin for
    any) and their grid (columns, rows, each sample's node): every footprint's nodes tested in one call."""
    inner = grown(footprints, -EDGE)
    grids, lines = [], []
    for bounds in shapely.bounds(inner):
        xmin, ymin, xmax, ymax = bounds if np.isfinite(bounds[0]) else (0.0, 0.0, 0.0, 0.0)  # empty: no grid
        xs, ys = np.arange(xmin + SAMPLE / 2, xmax, SAMPLE), np.arange(ymin + SAMPLE / 2, ymax, SAMPLE)
        grids.append(np.column_stack([np.tile(xs, len(ys)), np.repeat(ys, len(xs))]))  # a meshgrid's order
        lines.append((xs, ys))
    counts = np.array([len(grid) for grid in grids], dtype=np.int64)
    grid = np.concatenate(grids) if grids else np.empty((0, 2))
    inside = shapely.contains_xy(np.repeat(inner, counts), grid[:, 0], grid[:, 1])
    kept = np.bincount(np.repeat(np.arange(len(grids)), counts)[inside], minlength=len(grids))
    samples = np.split(grid[inside], np.cumsum(kept)[:-1])
    nodes = np.split(np.concatenate([np.arange(count) for count in counts])[inside], np.cumsum(kept)[:-1])
    found = []
    for k, (axes, points, node) in enumerate(zip(lines, samples, nodes)):
        if not len(points):
            centre = footprints[k] if shapely.is_empty(inner[k]) else inner[k]
            points, node = np.array([centre.representative_point().coords[0]]), None
        found.append((points, (*axes, node)))
    return found


def _share_near(shapes: CheckShapes, points: np.ndarray, reach: float) -> float:
    """The share of the samples with one of ``points`` within ``reach``, as a KD-tree of the points would
    say (:func:`_share`) without building one: each point marks the sample grid's nodes around it."""
    if len(points) == 0:
        return 0.0
    if shapes.nodes is None:  # a footprint too thin for the grid: its one sample
        return _share(cKDTree(points), shapes.samples, reach)
    xs, ys = shapes.xs, shapes.ys
    steps = np.arange(int(2 * reach / SAMPLE) + 2)  # from the first node past x - reach, those up to x + reach
    column = np.searchsorted(xs, points[:, 0] - reach)[:, None] + steps
    row = np.searchsorted(ys, points[:, 1] - reach)[:, None] + steps
    dx2 = (xs[np.minimum(column, len(xs) - 1)] - points[:, :1]) ** 2
    dy2 = (ys[np.minimum(row, len(ys) - 1)] - points[:, 1:2]) ** 2
    dx2[column >= len(xs)] = np.inf  # past the grid's last column or row
    dy2[row >= len(ys)] = np.inf
    point, i, j = np.nonzero(dx2[:, :, None] + dy2[:, None, :] < reach * reach)  # the tree's test, squared
    marked = np.zeros(len(xs) * len(ys), dtype=bool)
    marked[row[point, j] * len(xs) + column[point, i]] = True
    return float(marked[shapes.nodes].mean())


def _share(tree, samples: np.ndarray, reach: float) -> float:
    """The share of the samples with a point of ``tree`` within ``reach``."""
    if tree is None:
        return 0.0
    distance, _ = tree.query(samples, distance_upper_bound=reach)
    return float(np.isfinite(distance).mean())


def _shares(tree, samples: np.ndarray, shifts: np.ndarray, reach: float) -> np.ndarray:
    """:func:`_share` of the samples moved by each shift (k, 2)."""
    if tree is None:
        return np.zeros(len(shifts))
    moved = (samples[None, :, :] + shifts[:, None, :]).reshape(-1, 2)
    distance, _ = tree.query(moved, distance_upper_bound=reach)
    return np.isfinite(distance).reshape(len(shifts), len(samples)).mean(axis=1)
