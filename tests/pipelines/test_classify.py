"""Buildings, vegetation and cars from geometry alone, checked against the sample district's classes and IGN's."""

import math
import time

import laspy
import numpy as np
import pytest
import rasterio
from scipy import ndimage

from gis import asprs
from gis.errors import InputError
from pipelines.algorithms.classify import classify_above_ground

BUILDING, VEGETATION, OTHER = "building", "vegetation", "other"
NOT_ABOVE_GROUND = (*asprs.TERRAIN, asprs.NOISE, asprs.IGN_ARTEFACT, asprs.IGN_VIRTUAL)
NOMINAL_DENSITY = 10.0  # points/m2 the classifier's default distances are meant for (IGN LiDAR HD)
# Agreement with IGN on its building and vegetation points. Issue 3 sets no target for this separation; it asks
# >= 95 % agreement with IGN's ground class on the real tiles, and the same bar is used here for tiles of LiDAR HD's
# density (10-20 points/m2, issue 3). Sparser tiles (the shared sample at 0.3 points/m2) are outside the method's
# domain: there it must still beat, by 10 points, guessing IGN's majority class for every point.
IGN_AGREEMENT = 0.95
SPARSE_DENSITY = 10.0  # points/m2
SPARSE_GAIN_OVER_MAJORITY = 0.10
# IGN LiDAR HD's vegetation classes by height above ground, written out: low below 0.5 m, medium below 1.5 m.
IGN_VEGETATION_LIMITS = ((0.5, asprs.LOW_VEGETATION), (1.5, asprs.MEDIUM_VEGETATION), (np.inf, asprs.HIGH_VEGETATION))


def _category(classes: np.ndarray) -> np.ndarray:
    return np.select([classes == asprs.BUILDING, np.isin(classes, asprs.VEGETATION)], [BUILDING, VEGETATION], OTHER)


def _scores(truth: np.ndarray, found: np.ndarray) -> dict[str, float]:
    """Recall and precision (points) of each category, and the overall agreement."""
    truth, found = _category(truth), _category(found)
    scores = {"agreement": float(np.mean(truth == found))}
    for name in (BUILDING, VEGETATION, OTHER):
        hits = np.sum((truth == name) & (found == name))
        scores[f"{name} recall"] = float(hits / max(1, np.sum(truth == name)))
        scores[f"{name} precision"] = float(hits / max(1, np.sum(found == name)))
    return scores


def _report(title: str, scores: dict[str, float]) -> None:
    print(f"\n{title}: " + ", ".join(f"{name} {value:.4f}" for name, value in scores.items()))


def _sample_raster(path, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Value of the cell under each point (read once and indexed: rasterio's sample() is slow per point)."""
    with rasterio.open(path) as dataset:
        data = dataset.read(1)
        left, top, res = dataset.bounds.left, dataset.bounds.top, dataset.res[0]
    rows = np.clip(np.floor((top - y) / res).astype(int), 0, data.shape[0] - 1)
    cols = np.clip(np.floor((x - left) / res).astype(int), 0, data.shape[1] - 1)
    return data[rows, cols].astype(np.float64)


@pytest.fixture(scope="module")
def district_run(district):
    """The district's above-ground points, classified with their classes stripped: (truth, found, heights, seconds)."""
    points = laspy.read(district / "district.laz")
    classes = np.asarray(points.classification)
    above = ~np.isin(classes, NOT_ABOVE_GROUND)
    xyz = np.column_stack([points.x, points.y, points.z])[above]
    height = xyz[:, 2] - _sample_raster(district / "truth-dtm.tif", xyz[:, 0], xyz[:, 1])
    start = time.perf_counter()
    found = classify_above_ground(xyz, height)
    return classes[above], found, height, time.perf_counter() - start


@pytest.mark.slow
def test_district_buildings_and_vegetation_match_the_truth(district_run):
    truth, found, _, seconds = district_run
    scores = _scores(truth, found)
    _report(f"district ({len(truth)} points, {seconds:.1f} s)", scores)
    assert found.dtype == np.uint8 and set(np.unique(found)) <= {asprs.UNCLASSIFIED, *asprs.ABOVE_GROUND}
    assert scores["building recall"] >= 0.95 and scores["building precision"] >= 0.95
    assert scores["vegetation recall"] >= 0.90 and scores["vegetation precision"] >= 0.90
    assert scores["agreement"] >= 0.93
    assert scores["other recall"] >= 0.90 and scores["other precision"] >= 0.90  # the parked cars
    assert seconds < 30  # about 4 s on 2 shared cores; the budget is 15 s


@pytest.mark.slow
def test_district_vegetation_takes_its_class_from_its_height(district_run):
    truth, found, height, _ = district_run
    vegetation = np.isin(found, asprs.VEGETATION)
    expected = np.select([height < limit for limit, _ in IGN_VEGETATION_LIMITS],
                         [code for _, code in IGN_VEGETATION_LIMITS])
    assert np.array_equal(found[vegetation], expected[vegetation])
    both = vegetation & np.isin(truth, asprs.VEGETATION)
    assert np.mean(found[both] == truth[both]) > 0.99  # the generator uses IGN's limits too


@pytest.mark.ign
def test_ign_tiles_agree_with_ign_on_buildings_and_vegetation(ign_tiles):
    for tile in ign_tiles:
        points = laspy.read(tile)
        classes = np.asarray(points.classification)
        xyz = np.column_stack([points.x, points.y, points.z])
        density = len(xyz) / max(1.0, np.ptp(xyz[:, 0]) * np.ptp(xyz[:, 1]))
        scale = max(1.0, math.sqrt(NOMINAL_DENSITY / density))  # distances grow with the point spacing
        height = xyz[:, 2] - _terrain_from_ground(xyz, classes == asprs.GROUND, cell=scale)
        above = ~np.isin(classes, NOT_ABOVE_GROUND)
        found = classify_above_ground(xyz[above], height[above], radius=1.0 * scale, cluster_distance=1.5 * scale,
                                      cell=0.5 * scale, facade_distance=0.75 * scale)
        judged = np.isin(classes[above], asprs.ABOVE_GROUND)  # IGN's building and vegetation points
        scores = _scores(classes[above][judged], found[judged])
        _report(f"{tile.name} ({density:.1f} points/m2, {judged.sum()} judged)",
                {name: value for name, value in scores.items() if not name.startswith(OTHER)})
        if density >= SPARSE_DENSITY:
            assert scores["agreement"] >= IGN_AGREEMENT, tile.name
        else:
            majority = max(np.mean(_category(classes[above][judged]) == name) for name in (BUILDING, VEGETATION))
            assert scores["agreement"] >= majority + SPARSE_GAIN_OVER_MAJORITY, tile.name


def _terrain_from_ground(xyz: np.ndarray, ground: np.ndarray, cell: float) -> np.ndarray:
    """Terrain height under each point: lowest ground point per cell, empty cells from their nearest full one."""
    cells = np.floor((xyz[:, :2] - xyz[:, :2].min(axis=0)) / cell).astype(int)
    lowest = np.full(tuple(cells.max(axis=0) + 1), np.inf)
    np.minimum.at(lowest, (cells[ground, 0], cells[ground, 1]), xyz[ground, 2])
    _, nearest = ndimage.distance_transform_edt(np.isinf(lowest), return_indices=True)
    filled = lowest[nearest[0], nearest[1]]
    return filled[cells[:, 0], cells[:, 1]]


def test_no_points_give_no_classes():
    found = classify_above_ground(np.empty((0, 3)), np.empty(0))
    assert found.dtype == np.uint8 and found.shape == (0,)


@pytest.mark.parametrize("xyz, height, options, message", [
    (np.zeros((3, 2)), np.zeros(3), {}, "(n, 3)"),
    (np.zeros((3, 3)), np.zeros(2), {}, "one value per point"),
    (np.full((3, 3), np.nan), np.zeros(3), {}, "finite"),
    (np.zeros((3, 3)), np.zeros(3), {"radius": 0.0}, "radius must be positive"),
    (np.zeros((3, 3)), np.zeros(3), {"planarity_threshold": 1.5}, "planarity_threshold"),
])
def test_bad_input_is_a_clear_error(xyz, height, options, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        classify_above_ground(xyz, height, **options)
