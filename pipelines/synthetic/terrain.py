"""The true terrain of the synthetic district: an analytic function.

Heights are NGF-IGN69 metres. The ground rises gently to the north from a
quay above a river, with a long low undulation; the river's water surface is
flat and lies a few metres below the quays, so the bank is a vertical step.
The function is the ground truth of every DTM made from the sample lidar.
"""

from __future__ import annotations

import numpy as np

WATER_Z = 30.0
QUAY_Z = 34.2
SLOPE = 0.012  # 1.2 % rising to the north
UNDULATION_AMPLITUDE = 0.6
UNDULATION_WAVELENGTHS = (350.0, 420.0)


def ground_height(x: np.ndarray, y: np.ndarray, origin: tuple[float, float],
                  river: tuple[float, float]) -> np.ndarray:
    """True ground height at Lambert-93 ``x``, ``y``.

    Parameters
    ----------
    x, y
        Coordinates in EPSG:2154 metres (arrays of the same shape).
    origin
        The district's south-west corner.
    river
        The river's southern and northern bank ordinates (``y``): between
        them the "ground" is the water surface, as IGN's DTMs flatten water.

    Examples
    --------
    >>> float(ground_height(np.array(651000.0), np.array(6861000.0), (651000.0, 6861000.0), (6861015.0, 6861060.0)))
    34.2
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    south, north = river
    dx = x - origin[0]
    wave_x, wave_y = UNDULATION_WAVELENGTHS
    rise = SLOPE * np.clip(y - north, 0.0, None)
    undulation = UNDULATION_AMPLITUDE * np.sin(2 * np.pi * dx / wave_x) * np.sin(2 * np.pi * np.clip(y - north, 0.0, None) / wave_y)
    z = QUAY_Z + rise + undulation
    in_river = (y >= south) & (y <= north)
    return np.where(in_river, WATER_Z, z)
