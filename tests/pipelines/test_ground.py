"""Ground classification (SMRF) and the DTM, scored on the synthetic district and IGN's tiles.

Scoring choices:

- Ground is ASPRS class 2 and class 9 (water): the water surface is what a
  DTM shows there (IGN's flatten it, as the district's truth does), and SMRF,
  which only sees heights, finds it as the lowest surface. The central crop
  scored below holds no water, so the choice only matters for the DTM.
- Noise (class 7) is scored, as non-ground: the classifier is meant to keep
  multipath echoes under the ground out of it.
- On IGN's tiles, class 17 (bridge decks) is non-ground, as IGN's DTMs run
  under bridges; class 0 (never classified) and 64 and above (IGN's own
  classes: artefacts, virtual points, other permanent structures) are not
  scored, having no ground / non-ground answer in ASPRS terms.
"""

from __future__ import annotations

import json

import laspy
import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from rasterio.features import rasterize
from scipy import ndimage

from gis import asprs
from gis.errors import InputError
from pipelines.algorithms.ground import _disk_rectangles, _morph, _Buffers, classify_ground, dtm_from_ground
from pipelines.raster import Grid

def _read(path) -> tuple[np.ndarray, np.ndarray]:
    las = laspy.read(path)
    return np.column_stack([las.x, las.y, las.z]), np.asarray(las.classification)


def _agreement(ground: np.ndarray, classes: np.ndarray, scored: np.ndarray | None = None) -> float:
    agree = ground == np.isin(classes, asprs.TERRAIN)
    return float(agree[scored].mean() if scored is not None else agree.mean())


@pytest.fixture(scope="module")
def district_points(district) -> tuple[np.ndarray, np.ndarray]:
    return _read(district / "district.laz")


@pytest.fixture(scope="module")
def district_ground(district_points) -> np.ndarray:
    return classify_ground(district_points[0])


def test_a_plane_with_a_building_a_car_and_low_echoes():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0.0, 100.0, (2, 80_000))
    z = 40.0 + 0.02 * x - 0.01 * y + rng.normal(0.0, 0.03, len(x))
    truth = np.ones(len(x), dtype=bool)
    building = (np.abs(x - 40.0) < 12.0) & (np.abs(y - 60.0) < 9.0)
    car = (np.abs(x - 80.0) < 2.2) & (np.abs(y - 20.0) < 0.9)
    z[building] += 12.0
    z[car] += 1.4
    low = rng.choice(np.flatnonzero(~building & ~car), 40, replace=False)
    z[low] -= rng.uniform(1.0, 10.0, len(low))
    truth[building | car] = False
    truth[low] = False
    ground = classify_ground(np.column_stack([x, y, z]))
    assert not ground[building].any() and not ground[car].any() and not ground[low].any()
    assert ground[truth].mean() > 0.999


def test_classify_ground_checks_its_input():
    with pytest.raises(InputError, match="n, 3"):
        classify_ground(np.zeros((10, 2)))
    with pytest.raises(InputError, match="cell"):
        classify_ground(np.zeros((10, 3)), cell=0.0)
    assert classify_ground(np.zeros((0, 3))).shape == (0,)
    assert classify_ground(np.array([[651000.0, 6861000.0, 35.0]])).tolist() == [True]


@pytest.mark.parametrize("radius", [1, 2, 5, 11, 18])
def test_the_disk_opening_is_an_exact_disk(radius):
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    disk = xx**2 + yy**2 <= radius**2
    union = np.zeros_like(disk)
    for half_width, half_height in _disk_rectangles(radius):
        union[radius - half_height:radius + half_height + 1, radius - half_width:radius + half_width + 1] = True
    assert (union == disk).all()
    surface = np.random.default_rng(radius).random((60, 70)).astype(np.float32)
    eroded = _morph(surface, _disk_rectangles(radius), ndimage.minimum_filter1d, np.minimum,
                    _Buffers(surface.shape), np.empty_like(surface))
    assert np.array_equal(eroded, ndimage.grey_erosion(surface, footprint=disk, mode="nearest"))


def test_the_unclassified_crop_agrees_with_the_truth(district, district_manifest, district_points):
    xyz, truth_classes = _read(district / "district-unclassified.laz")
    assert set(np.unique(truth_classes)) == {1}
    whole, classes = district_points
    xmin, ymin, xmax, ymax = district_manifest["variant_extent"]
    crop = (whole[:, 0] >= xmin) & (whole[:, 0] < xmax) & (whole[:, 1] >= ymin) & (whole[:, 1] < ymax)
    assert np.array_equal(whole[crop], xyz)  # the same points in the same order
    classes = classes[crop]
    ground = classify_ground(xyz)
    assert _agreement(ground, classes) >= 0.97  # noise included, as non-ground
    assert _agreement(ground, classes, classes != asprs.NOISE) >= 0.97
    assert ground[classes == asprs.GROUND].mean() > 0.99
    assert ground[np.isin(classes, [asprs.HIGH_VEGETATION, asprs.BUILDING])].mean() < 0.01
    assert (~ground[classes == asprs.NOISE]).mean() > 0.9


@pytest.mark.ign
def test_real_tiles_agree_with_ign_ground_class(ign_tiles):
    for tile in ign_tiles:
        xyz, classes = _read(tile)
        # The cell follows the point spacing: 1 m at LiDAR HD density, more for a thinned tile.
        extent = np.ptp(xyz[:, 0]) * np.ptp(xyz[:, 1])
        cell = max(1.0, float(np.round(1.0 / np.sqrt(len(xyz) / extent))))
        ground = classify_ground(xyz, cell=cell)
        scored = (classes != 0) & (classes < 64)
        assert _agreement(ground, classes, scored) >= 0.95, tile.name


@pytest.mark.slow
def test_dtm_of_the_district_matches_the_true_terrain(district, district_points, district_ground):
    xyz = district_points[0][district_ground]
    with rasterio.open(district / "truth-dtm.tif") as source:
        truth = source.read(1)
        bounds, transform = source.bounds, source.transform
    grid = Grid(bounds.left, bounds.bottom, bounds.right, bounds.top, 0.5)
    assert grid.transform == transform and grid.shape == truth.shape
    dtm = dtm_from_ground(xyz[:, 0], xyz[:, 1], xyz[:, 2], grid)
    assert dtm.dtype == np.float32 and dtm.shape == grid.shape and not np.isnan(dtm).any()

    footprints = pyogrio.read_dataframe(district / "truth.gpkg", layer="footprints").geometry.values
    trees = pyogrio.read_dataframe(district / "truth.gpkg", layer="trees")
    crowns = shapely.buffer(trees.geometry.values, trees["crown_radius_m"].to_numpy())
    under_buildings = rasterize(footprints, out_shape=grid.shape, transform=transform).astype(bool)
    under_trees = rasterize(crowns, out_shape=grid.shape, transform=transform).astype(bool) & ~under_buildings
    water = np.abs(truth - 30.0) < 1e-3
    # Cells within 1 m of the river's bank step, on either side of it.
    step = np.where(water, ndimage.distance_transform_edt(water, sampling=0.5),
                    ndimage.distance_transform_edt(~water, sampling=0.5)) <= 1.0
    edge = np.ones(grid.shape, dtype=bool)
    edge[2:-2, 2:-2] = False  # cell centres within 1 m of the district's edge
    open_ground = ~under_buildings & ~under_trees & ~step & ~edge

    def rmse(mask):
        return float(np.sqrt(np.mean((dtm[mask] - truth[mask]) ** 2)))

    assert rmse(open_ground) <= 0.15
    assert rmse(under_buildings) <= 0.5
    assert rmse(under_trees) <= 0.5


def test_dtm_of_a_plane_is_exact():
    grid = Grid(1000.0, 2000.0, 1010.0, 2008.0, 0.5)
    xs, ys = grid.centres()
    x, y = (a.ravel() for a in np.meshgrid(xs, ys))
    plane = lambda x, y: 50.0 + 0.03 * (x - 1000.0) - 0.12 * (y - 2000.0)  # noqa: E731
    hole = (np.abs(x - 1004.0) < 2.1) & (np.abs(y - 2004.0) < 1.6)  # under a building
    notch = (x > 1008.0) & (np.abs(y - 2004.0) < 1.1)  # a gap open on the east edge
    keep = ~hole & ~notch
    x, y = x[keep], y[keep]
    # Three points in some cells, symmetric about the centre: the median is the centre's height.
    extra = np.arange(0, len(x), 7)
    x = np.r_[x, x[extra] - 0.1, x[extra] + 0.1, 2000.0]
    y = np.r_[y, y[extra] + 0.2, y[extra] - 0.2, 3000.0]  # and one point off the grid
    dtm = dtm_from_ground(x, y, plane(x, y), grid)
    expected = plane(*np.meshgrid(xs, ys))
    assert dtm.dtype == np.float32 and dtm.shape == (16, 20)
    assert np.abs(dtm - expected).max() < 1e-4


def test_dtm_extrapolates_to_the_grid_corners_without_nan():
    grid = Grid(0.0, 0.0, 20.0, 20.0, 1.0)
    x, y = np.array([5.5, 14.5, 9.5]), np.array([5.5, 6.5, 15.5])
    dtm = dtm_from_ground(x, y, np.array([10.0, 12.0, 11.0]), grid)
    assert not np.isnan(dtm).any()
    assert dtm[0, 0] == 11.0 and dtm[-1, 0] == 10.0  # nearest point's height at the corners
    assert 10.0 <= dtm.min() and dtm.max() <= 12.0
    assert np.isnan(dtm_from_ground(np.array([99.0]), np.array([99.0]), np.array([1.0]), grid)).all()
