"""A batch of footprints reconstructed at once gives what one footprint at a time gives (issue 14's speed).

Oracles: numpy's own np.percentile, np.median and np.linalg.lstsq per footprint, and the per-footprint
footprint check (:func:`check_footprint`) on the sample district made harder (footprints shifted, cut,
thinned to a sliver, the lidar thinned so that the checks' reach varies).
"""

from __future__ import annotations

import geopandas as gpd
import laspy
import numpy as np
import shapely.affinity

from pipelines.algorithms import roofs
from pipelines.algorithms.roof_batch import ground_heights, medians, percentiles
from pipelines.algorithms.roofs import RoofOptions, attribute_frame, reconstruct

CHECKS = ["footprint_coverage", "outside_area", "outside_points", "shift_x", "shift_y", "footprint_shifted",
          "footprint_partial", "footprint_check"]


def owners(rng, count: int, large: bool = False) -> np.ndarray:
    sizes = rng.integers(0, 40, count)
    sizes[:5] = [0, 1, 2, 9, 10]
    if large:  # one owner far larger than the others
        sizes[7] = 20_000
    return np.repeat(np.arange(count), sizes)


def test_percentiles_and_medians_are_numpys_to_the_bit():
    rng = np.random.default_rng(3)
    for large in (False, True):
        owner = owners(rng, 300, large)
        values = rng.normal(30, 5, len(owner)).round(2)  # ties, as lidar heights in cm have
        qs = [2, 50, 98, 70, 0, 100, 33.3]
        got, middle = percentiles(values, owner, 300, qs), medians(values, owner, 300)
        for k in range(300):
            mine = values[owner == k]
            expected = np.percentile(mine, qs) if len(mine) else np.full(len(qs), np.nan)
            assert np.array_equal(got[k], expected, equal_nan=True), k
            assert np.array_equal(middle[k], np.median(mine) if len(mine) else np.nan, equal_nan=True), k


def lstsq_ground(points: np.ndarray, centre: np.ndarray) -> float:
    """The ground under a footprint as numpy's least squares give it, footprint by footprint."""
    if len(points) == 0:
        return np.nan
    if len(points) < 10:
        return float(np.median(points[:, 2]))
    design = np.column_stack([np.ones(len(points)), points[:, 0] - centre[0], points[:, 1] - centre[1]])
    coefficients = np.linalg.lstsq(design, points[:, 2], rcond=None)[0]
    residual = np.abs(points[:, 2] - design @ coefficients)
    keep = residual < 3 * max(np.median(residual), 0.05)
    return float(np.linalg.lstsq(design[keep], points[keep, 2], rcond=None)[0][0])


def test_ground_planes_match_least_squares_footprint_by_footprint():
    rng = np.random.default_rng(5)
    owner = owners(rng, 300)
    xy = rng.uniform(650_000, 650_050, (len(owner), 2))
    z = 35 + 0.02 * (xy[:, 0] - 650_000) + rng.normal(0, 0.05, len(owner))
    z[rng.random(len(owner)) < 0.1] += 1.5  # kerbs and walls' feet
    points = np.column_stack([xy, z])
    points[owner == 20, 1] = 6_860_000.0  # all on a line: least squares' minimum-norm answer
    centres = rng.uniform(650_000, 650_050, (300, 2))
    got = ground_heights(points, owner, centres)
    expected = np.array([lstsq_ground(points[owner == k], centres[k]) for k in range(300)])
    assert np.allclose(got, expected, rtol=0, atol=1e-6, equal_nan=True)


def test_batched_footprint_checks_equal_the_per_footprint_checks(district, monkeypatch):
    las = laspy.read(district / "district.laz")
    xyz, classes = np.column_stack([las.x, las.y, las.z]), np.asarray(las.classification)
    rng = np.random.default_rng(14)
    sparse = (classes == 6) & (rng.random(len(xyz)) < np.linspace(0.85, 0.0, len(xyz)))  # reach grows
    xyz, classes = xyz[~sparse], classes[~sparse]
    footprints = gpd.read_file(district / "district.gpkg", layer="buildings_cadastre")
    changed = []
    for row, geometry in enumerate(footprints.geometry):
        kind = row % 4
        if kind == 1:
            geometry = shapely.affinity.translate(geometry, 2.0, -1.5)
        elif kind == 2:
            geometry = shapely.affinity.scale(geometry, 0.65, 1.0, origin=(geometry.bounds[0], geometry.bounds[1]))
        elif kind == 3 and row % 8 == 3:
            geometry = shapely.affinity.scale(geometry, 0.1, 1.0)  # a sliver: off the sample grid
        changed.append(geometry)
    footprints = footprints.set_geometry(changed)
    options = RoofOptions(lod="1.2")
    batched = attribute_frame(reconstruct(footprints, xyz, classes, None, options), footprints.crs)
    monkeypatch.setattr(roofs, "check_batch", lambda footprints, *_: [None] * len(footprints))
    alone = attribute_frame(reconstruct(footprints, xyz, classes, None, options), footprints.crs)
    assert batched[CHECKS].equals(alone[CHECKS])
