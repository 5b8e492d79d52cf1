"""Trees and canopy from a canopy height model, checked against the sample district's true trees."""

import math

import geopandas as gpd
import laspy
import numpy as np
import pytest
import rasterio
import shapely
from scipy import ndimage
from tree_matching import match_trees

from gis import asprs
from gis.errors import InputError
from pipelines.algorithms.trees import canopy_height_model, canopy_polygons, detect_trees
from pipelines.raster import Grid, Raster, bin_extreme

CELL = 0.5


def _read_raster(path) -> Raster:
    with rasterio.open(path) as dataset:
        left, bottom, right, top = dataset.bounds
        data = dataset.read(1).astype(np.float32)
        if dataset.nodata is not None:
            data[data == dataset.nodata] = np.nan
        return Raster(data, Grid(left, bottom, right, top, dataset.res[0]), "EPSG:2154")


@pytest.fixture(scope="module")
def district_chm(district) -> Raster:
    """The CHM at 0.5 m of the vegetation returns (classes 3, 4, 5) over the true terrain."""
    points = laspy.read(district / "district.laz")
    vegetation = np.isin(np.asarray(points.classification), asprs.VEGETATION)
    ground = _read_raster(district / "truth-dtm.tif")
    grid = Grid.covering(ground.grid.bounds, CELL)
    x, y, z = (np.asarray(points[axis])[vegetation] for axis in "xyz")
    return Raster(canopy_height_model(x, y, z, ground, grid), grid, "EPSG:2154")


@pytest.fixture(scope="module")
def true_trees(district) -> gpd.GeoDataFrame:
    return gpd.read_file(district / "truth.gpkg", layer="trees")


@pytest.fixture(scope="module")
def detected(district_chm) -> gpd.GeoDataFrame:
    return detect_trees(district_chm)


def test_canopy_height_model_is_the_vegetation_height_above_ground(district_chm, true_trees):
    data = district_chm.data
    assert data.dtype == np.float32 and data.shape == district_chm.grid.shape
    assert 0.03 < np.isfinite(data).mean() < 0.3  # crowns only: streets, roofs and water stay NaN
    assert np.nanmin(data) >= 0 and np.nanmax(data) < 30
    above_trunks = district_chm.sample(true_trees.geometry.x.values, true_trees.geometry.y.values)
    assert np.median(np.abs(above_trunks - true_trees.height_m.values)) < 0.5


def test_canopy_height_model_fills_pits_but_not_the_open():
    grid = Grid(0.0, 0.0, 7.0, 7.0, 1.0)
    ground = Raster(np.full(grid.shape, 100.0, dtype=np.float32), grid, "EPSG:2154")
    xs, ys = np.meshgrid(np.arange(7) + 0.5, np.arange(7) + 0.5)
    crown = (np.abs(xs - 3.5) < 2.5) & (np.abs(ys - 3.5) < 2.5) & ~((xs == 3.5) & (ys == 3.5))  # 5x5, empty centre
    sunk = (xs == 2.5) & (ys == 2.5)
    chm = canopy_height_model(xs[crown], ys[crown], np.where(sunk, 104.0, 110.0)[crown], ground, grid)
    assert chm[3, 3] == pytest.approx(10.0)  # the empty centre, surrounded
    assert chm[4, 2] == pytest.approx(10.0)  # the sunken cell, 6 m below its neighbours
    assert chm[1, 1] == pytest.approx(10.0)  # the crown's corner, left as it is
    assert np.isnan(chm[0]).all() and np.isnan(chm[:, 6]).all()  # open ground stays empty


def test_trees_are_found_with_their_heights_and_crowns(district_chm, true_trees, detected):
    truth, found = match_trees(true_trees, detected)
    precision, recall = len(truth) / len(detected), len(truth) / len(true_trees)
    f1 = 2 * precision * recall / (precision + recall)
    height_error = detected.height_m.values[found] - true_trees.height_m.values[truth]
    radius_error = detected.crown_radius_m.values[found] - true_trees.crown_radius_m.values[truth]
    print(f"\n{len(detected)} tops for {len(true_trees)} trees: precision {precision:.3f} recall {recall:.3f} "
          f"F1 {f1:.3f}; height error median |{np.median(np.abs(height_error)):.2f}| m, "
          f"crown radius error median |{np.median(np.abs(radius_error)):.2f}| m "
          f"(bias {np.median(radius_error):+.2f} m, RMSE {np.sqrt(np.mean(radius_error ** 2)):.2f} m)")
    assert f1 >= 0.8
    assert np.median(np.abs(height_error)) <= 1.0
    assert np.median(np.abs(radius_error)) <= 0.75


def test_tree_table_shape(detected):
    assert list(detected.columns) == ["height_m", "crown_radius_m", "crown_area_m2", "geometry"]
    assert detected.crs.to_epsg() == 2154 and (detected.geom_type == "Point").all()
    assert (detected.height_m >= 3.0).all()
    assert np.allclose(detected.crown_radius_m, np.sqrt(detected.crown_area_m2 / math.pi), atol=0.01)
    empty = detect_trees(Raster(np.full((20, 20), np.nan, dtype=np.float32), Grid(0, 0, 10, 10, 0.5), "EPSG:2154"))
    assert empty.empty and list(empty.columns) == list(detected.columns)
    with pytest.raises(InputError):
        detect_trees(Raster(np.zeros((2, 2), dtype=np.float32), Grid(0, 0, 1, 1, 0.5), "EPSG:2154"), crown_fraction=0)


def _cones(trees: list[tuple[float, float, float, float]], size: float = 30.0) -> Raster:
    """A CHM of paraboloid crowns (x, y, height, radius), each ending at two thirds of its height, at 0.5 m."""
    grid = Grid(0.0, 0.0, size, size, CELL)
    xs, ys = grid.centres()
    xs, ys = np.meshgrid(xs, ys)
    chm = np.full(grid.shape, np.nan, dtype=np.float32)
    for x, y, height, radius in trees:
        off = np.hypot(xs - x, ys - y) / radius
        crown = np.where(off < 1, height * (1 - off**2 / 3), np.nan)
        chm = np.fmax(chm, crown).astype(np.float32)
    return Raster(chm, grid, "EPSG:2154")


def test_close_trees_are_split_and_a_short_one_keeps_its_own_height():
    # A 20 m tree and a 9 m tree whose crowns touch: two tops, and the short one is not given its neighbour's height.
    trees = detect_trees(_cones([(10.0, 15.0, 20.0, 5.0), (18.5, 15.0, 9.0, 3.5)]))
    assert len(trees) == 2
    trees = trees.sort_values("height_m")
    assert trees.height_m.tolist() == pytest.approx([9.0, 20.0], abs=0.1)
    assert trees.crown_radius_m.tolist() == pytest.approx([3.5, 5.0], abs=0.6)
    assert trees.geometry.x.tolist() == pytest.approx([18.5, 10.0], abs=0.5)


def test_a_bump_on_a_wide_crown_is_not_a_tree():
    chm = _cones([(15.0, 15.0, 20.0, 7.0)])
    chm.data[28:31, 35:38] += 1.0  # a branch 3.25 m from the top
    assert len(detect_trees(chm, window=lambda height: 1.0)) == 2  # a local maximum...
    assert len(detect_trees(chm)) == 1  # ...inside the window of a 20 m tree


def test_canopy_polygons_cover_the_crowns(district_chm, true_trees, detected):
    canopy = canopy_polygons(district_chm)
    assert canopy.crs.to_epsg() == 2154 and canopy.is_valid.all() and (canopy.geom_type == "Polygon").all()
    assert (canopy.area_m2 >= 5.0).all() and canopy.area_m2.is_monotonic_decreasing
    crowns = shapely.union_all(true_trees.geometry.buffer(true_trees.crown_radius_m).values)
    cover = shapely.union_all(canopy.geometry.values)
    assert shapely.area(cover & crowns) / shapely.area(cover | crowns) > 0.85
    assert shapely.contains(cover, detected.geometry.values).all()


def test_canopy_polygons_drop_specks_and_fill_small_holes():
    grid = Grid(0.0, 0.0, 20.0, 20.0, 0.5)
    chm = np.full(grid.shape, np.nan, dtype=np.float32)
    chm[4:24, 4:24] = 8.0  # a 10 m x 10 m crown...
    chm[13:15, 13:15] = np.nan  # ...with a 1 m2 gap
    chm[30, 30] = 8.0  # a speck of 0.25 m2
    chm[34:38, 4:8] = 1.0  # a 4 m2 shrub, too low
    canopy = canopy_polygons(Raster(chm, grid, "EPSG:2154"))
    assert len(canopy) == 1 and canopy.area_m2.iloc[0] == pytest.approx(100.0)
    assert shapely.get_num_interior_rings(canopy.geometry.iloc[0]) == 0
    assert canopy_polygons(Raster(np.full(grid.shape, np.nan, dtype=np.float32), grid, "EPSG:2154")).empty


def _ground(x: np.ndarray, y: np.ndarray, z: np.ndarray, grid: Grid) -> Raster:
    """A rough DTM for the real tiles: lowest ground return per cell, empty cells from their nearest neighbour."""
    lowest = bin_extreme(grid, x, y, z, highest=False)
    nearest = ndimage.distance_transform_edt(np.isnan(lowest), return_distances=False, return_indices=True)
    return Raster(lowest[tuple(nearest)], grid, "EPSG:2154")


@pytest.mark.ign
def test_real_tiles_give_sane_trees_and_canopy(ign_tiles):
    for tile in ign_tiles:
        points = laspy.read(tile)
        classes = np.asarray(points.classification)
        x, y, z = (np.asarray(points[axis]) for axis in "xyz")
        bounds = (x.min(), y.min(), x.max(), y.max())
        density = len(x) / ((bounds[2] - bounds[0]) * (bounds[3] - bounds[1]))
        # About 2 returns per cell: one of the tiles is thinned to 0.3 points/m2.
        cell = max(CELL, 0.5 * math.ceil(2 * math.sqrt(2 / density)))
        ground = _ground(x[classes == asprs.GROUND], y[classes == asprs.GROUND], z[classes == asprs.GROUND], Grid.covering(bounds, max(1.0, cell)))
        grid = Grid.covering(bounds, cell)
        high = classes == asprs.HIGH_VEGETATION
        chm = Raster(canopy_height_model(x[high], y[high], z[high], ground, grid), grid, "EPSG:2154")
        trees, canopy = detect_trees(chm), canopy_polygons(chm)
        hectares = (grid.xmax - grid.xmin) * (grid.ymax - grid.ymin) / 1e4
        assert 0 < len(trees) < 500 * hectares, tile.name
        assert trees.height_m.between(3.0, np.nanmax(chm.data) + 0.01).all() and trees.height_m.max() < 60
        assert (trees.crown_radius_m > 0).all() and trees.crown_radius_m.max() < 20
        assert shapely.contains(shapely.box(*grid.bounds), trees.geometry.values).all()
        assert len(canopy) and canopy.is_valid.all() and (canopy.area_m2 >= 5.0).all()
        tall = np.sum(chm.data >= 2.0) * cell**2
        assert 0.8 * tall < canopy.area_m2.sum() < 1.2 * tall, tile.name
        cover = shapely.union_all(canopy.geometry.values).buffer(cell)
        assert shapely.contains(cover, trees.geometry.values).mean() > 0.95


def test_canopy_sewing_unites_the_pieces_cut_by_tile_edges_and_keeps_the_others():
    from pipelines.stages.vectors import _dissolve_overlapping

    boxes = [shapely.box(0, 0, 10, 10), shapely.box(10, 2, 14, 8),  # a crown cut by an edge at x = 10
             shapely.box(30, 0, 35, 5),  # a crown inside one tile
             shapely.box(50, 0, 60, 10), shapely.box(60, 0, 70, 10), shapely.box(60, 10, 70, 20)]  # cut by 2 edges
    polygons = shapely.buffer(np.array(boxes), 0.01)
    sewn = _dissolve_overlapping(polygons)
    expected = shapely.get_parts(shapely.union_all(polygons))
    assert len(sewn) == len(expected) == 3
    assert sorted(shapely.area(sewn).round(6)) == sorted(shapely.area(expected).round(6))
    assert shapely.area(shapely.symmetric_difference(shapely.union_all(sewn), shapely.union_all(expected))) < 1e-9


def test_one_detected_top_stands_for_one_true_tree():
    """The matching the F1 scores use is one to one: a nearest join would count both trees found here."""
    truth = gpd.GeoDataFrame({"crown_radius_m": [3.0, 3.0]}, geometry=gpd.points_from_xy([0.0, 3.0], [0.0, 0.0]))
    found = gpd.GeoDataFrame(geometry=gpd.points_from_xy([1.5], [0.0]))
    true_index, found_index = match_trees(truth, found)
    assert len(true_index) == len(found_index) == 1
