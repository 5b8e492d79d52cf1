"""Point density of a tile, and the parameters that follow it.

The defaults of the density-dependent parameters are tuned for IGN LiDAR HD
(``REFERENCE_DENSITY`` pulses/m2, about 10). A tile's pulse density is its
first (or only) returns per m2 of its core, counted over the ``AREA_CELL``
cells that hold points, so that water without returns, or the blank around
a survey's edge, does not dilute it. A length then scales with the point
spacing: ``scale = sqrt(REFERENCE_DENSITY / density)``, kept within
``[1, MAX_SCALE]``: never shorter than the reference value (denser surveys
keep the defaults, tested on 10-34 points/m2), never more than
``MAX_SCALE`` times longer (below 10 / 64 = 0.16 pulses/m2 the parameters
stop growing and the products warn that the density is too low).

Each such option of a stage is ``None`` (the default: scaled) or a number
(used as given); the README lists them with their reference values.
"""

from __future__ import annotations

import math

import numpy as np

REFERENCE_DENSITY = 10.0  # pulses/m2: what the defaults are tuned for (IGN LiDAR HD's specification)
MAX_SCALE = 8.0  # the longest a scaled length gets, times its reference value
AREA_CELL = 5.0  # metres: cells this wide count as covered (7 pulses expected at 0.3 pulses/m2)


def pulse_density(xy: np.ndarray, return_number: np.ndarray) -> float:
    """First (or only) returns per m2 over the ``AREA_CELL`` cells holding points; 0 for no point.

    >>> rng = np.random.default_rng(0)
    >>> round(pulse_density(rng.uniform(0, 100, (5000, 2)), np.ones(5000, dtype=np.uint8)), 2)
    0.5
    """
    if len(xy) == 0:
        return 0.0
    cells = np.floor((xy - xy.min(axis=0)) / AREA_CELL).astype(np.int64)
    occupied = len(np.unique(cells[:, 0] * (int(cells[:, 1].max()) + 1) + cells[:, 1]))
    first = int(np.count_nonzero(return_number <= 1))  # 0: a file that does not record returns
    return first / (occupied * AREA_CELL**2)


def spacing_scale(density: float) -> float:
    """How much longer than at the reference density a length parameter is: within [1, MAX_SCALE]."""
    if density <= 0:
        return MAX_SCALE
    return min(MAX_SCALE, max(1.0, math.sqrt(REFERENCE_DENSITY / density)))


def scaled(value: float | None, reference: float, density: float, power: float = 1.0) -> float:
    """An option's value: as given, or (None) the reference value times :func:`spacing_scale` to ``power``.

    A power under 1 makes a neighbourhood hold more points as the density
    falls (a roof's local plane needs a handful of points, but a wide
    neighbourhood straddles its ridge).
    """
    return float(value) if value is not None else reference * spacing_scale(density) ** power


def scaled_count(value: int | None, reference: int, density: float, least: int = 3) -> int:
    """A count of neighbours within a scaled distance: as given, or (None) what the reference expects.

    While the distance scales with the spacing the expected count is the
    reference's; once the scale is clamped it follows the density, never
    under ``least``.
    """
    if value is not None:
        return int(value)
    expected = density * spacing_scale(density) ** 2 / REFERENCE_DENSITY
    return max(least, min(reference, round(reference * expected)))
