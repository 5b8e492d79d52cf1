"""Matching detected trees to the generator's true trees, one to one (shared by the algorithm and pipeline tests)."""

import geopandas as gpd
import numpy as np
from scipy.optimize import linear_sum_assignment


def match_trees(truth: gpd.GeoDataFrame, found: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matches (Hungarian) of found tops within max(2 m, half the crown radius) of a true trunk.

    Returns the positions in ``truth`` and in ``found`` of the matched pairs.
    A nearest join would let one found top stand for several true trees and
    inflate the recall.
    """
    distance = np.hypot(truth.geometry.x.values[:, None] - found.geometry.x.values[None],
                        truth.geometry.y.values[:, None] - found.geometry.y.values[None])
    reach = np.maximum(2.0, 0.5 * truth.crown_radius_m.values)[:, None]
    cost = np.where(distance <= reach, distance, 1e6)
    rows, cols = linear_sum_assignment(cost)
    matched = cost[rows, cols] < 1e6
    return rows[matched], cols[matched]
