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


def check_footprint(footprint, others: list, building_points_in: Callable[[tuple], np.ndarray], density: float,
                    options: CheckOptions) -> FootprintCheck:
    """The agreement of ``footprint`` with the building points (``building_points_in(box)`` gives those of a
    box), ``others`` the layer's footprints near it, ``density`` the building points per m2 inside it."""
    from scipy.spatial import cKDTree

    density = max(density, 1e-6)
    reach = max(STEP, float(np.sqrt(POINTS_PER_DISC / (np.pi * density))))
    xmin, ymin, xmax, ymax = footprint.bounds
    grow = max(options.check_margin, options.max_shift) + reach
    xy = building_points_in((xmin - grow, ymin - grow, xmax + grow, ymax + grow))[:, :2]
    samples = _samples(footprint)
    if len(xy) == 0 or len(samples) == 0:
        return FootprintCheck(0.0, 0.0, 0, (0.0, 0.0), False, False)
    taken = np.zeros(len(xy), dtype=bool)
    box = shapely.box(*xy.min(axis=0), *xy.max(axis=0)).buffer(EDGE)
    for other in (o for o in others if o.intersects(box)):  # a neighbour's roof (and its walls) is not ours
        taken |= shapely.contains_xy(other.buffer(EDGE, **MITRE), xy[:, 0], xy[:, 1])
    free = cKDTree(xy[~taken]) if (~taken).any() else None
    at_zero = _share(free, samples, reach)
    coverage = _share(cKDTree(xy), samples, reach) if taken.any() else at_zero
    best, shift = at_zero, np.zeros(2)
    if at_zero < 1 - options.shift_gain / 2:  # a footprint resting on its own points needs no search
        steps = np.arange(-int(options.max_shift / STEP), int(options.max_shift / STEP) + 1) * STEP
        shifts = np.array([(dx, dy) for dx in steps for dy in steps if MIN_SHIFT <= np.hypot(dx, dy) <= options.max_shift])
        shares = _shares(free, samples, shifts, reach)
        if shares.max() > at_zero:
            # the shares plateau where the footprint rests whole on the points (the samples' reach and the
            # shrunk edge are slack): of those shifts, the ones leaving the fewest free points next to it,
            # and of these their middle
            plateau = shifts[shares >= shares.max() - 0.005]
            left = np.array([np.count_nonzero(_outside(footprint, s, xy, taken, options.check_margin))
                             for s in plateau])
            best, shift = float(shares.max()), plateau[left <= left.min() + 0.01 * len(xy)].mean(axis=0)
    shifted = (best - at_zero >= options.shift_gain and best >= 1 - 2 * options.shift_gain  # moved, it rests on them
               and np.hypot(*shift) >= MIN_SHIFT)
    if not shifted:
        shift = np.zeros(2)
    outside = _outside(footprint, shift, xy, taken, options.check_margin)
    outside_points = int(outside.sum())
    outside_area = outside_points / density
    partial = outside_area >= options.partial_share * footprint.area
    return FootprintCheck(coverage, outside_area, outside_points, (float(shift[0]), float(shift[1])), bool(shifted),
                          bool(partial))


def _outside(footprint, shift: np.ndarray, xy: np.ndarray, taken: np.ndarray, margin: float) -> np.ndarray:
    """Which points are free building points outside the footprint moved by ``shift``, within ``margin``."""
    placed = shapely.affinity.translate(footprint, *shift) if shift.any() else footprint
    x, y = xy[:, 0], xy[:, 1]
    near = ~taken & shapely.contains_xy(placed.buffer(margin, **MITRE), x, y)
    near[near] = ~shapely.contains_xy(placed.buffer(EDGE, **MITRE), x[near], y[near])
    return near


def _samples(footprint) -> np.ndarray:
    """Points every SAMPLE metres inside the footprint shrunk by EDGE (its centre when too thin for any)."""
    inner = footprint.buffer(-EDGE, **MITRE)
    if inner.is_empty:
        return np.array([footprint.representative_point().coords[0]])
    xmin, ymin, xmax, ymax = inner.bounds
    gx, gy = np.meshgrid(np.arange(xmin + SAMPLE / 2, xmax, SAMPLE), np.arange(ymin + SAMPLE / 2, ymax, SAMPLE))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    inside = grid[shapely.contains_xy(inner, grid[:, 0], grid[:, 1])]
    return inside if len(inside) else np.array([inner.representative_point().coords[0]])


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
