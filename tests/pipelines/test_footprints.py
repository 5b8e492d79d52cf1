"""Building footprints from building-class points, checked on small scenes, the sample district and real tiles."""

import math

import geopandas as gpd
import laspy
import numpy as np
import open3d as o3d
import pandas as pd
import pytest
import rasterio
import shapely
from scipy import ndimage

from gis import asprs
from gis.errors import InputError
from pipelines.algorithms.footprint_sewing import sew_footprints
from pipelines.algorithms.footprints import (COLUMNS, FINEST_CELL, analysis_cell, cluster_points,
                                             extract_footprints, square)
from pipelines.raster import Grid, Raster, bin_extreme
from pipelines.stages.vectors import _in_core

GROUND_Z = 35.0


# --- small scenes ---------------------------------------------------------------------------------------------


def _flat_terrain(bounds=(-10.0, -10.0, 110.0, 110.0)) -> Raster:
    grid = Grid.covering(bounds, 0.5)
    return Raster(np.full(grid.shape, GROUND_Z, dtype=np.float32), grid, "EPSG:2154")


def _scan(buildings: list[tuple[shapely.Polygon, str, float, float]], density: float = 10.0,
          seed: int = 0) -> np.ndarray:
    """Roof and facade points of (footprint, roof type, eave height, top height) buildings standing on GROUND_Z.

    Flat roofs are at the top; pitched roofs rise from the eaves on the long sides to a ridge along the long axis;
    mansard roofs rise at 2 m per m from every outer wall up to the top. Outer walls (not the party walls) get
    facade points.
    """
    rng = np.random.default_rng(seed)
    union = shapely.union_all([footprint for footprint, *_ in buildings])
    parts = []
    for footprint, kind, eave, top in buildings:
        xmin, ymin, xmax, ymax = footprint.bounds
        count = rng.poisson(density * footprint.area)
        x, y = rng.uniform(xmin, xmax, count), rng.uniform(ymin, ymax, count)
        keep = shapely.contains_xy(footprint, x, y)
        x, y = x[keep], y[keep]
        walls = footprint.boundary.intersection(union.boundary)
        if kind == "flat":
            z = np.full(len(x), top)
        elif kind == "pitched":
            along_x = xmax - xmin >= ymax - ymin
            off_ridge = np.abs(y - (ymin + ymax) / 2) if along_x else np.abs(x - (xmin + xmax) / 2)
            half = (ymax - ymin) / 2 if along_x else (xmax - xmin) / 2
            z = eave + (top - eave) * (1 - off_ridge / half)
        else:
            z = eave + np.minimum(2.0 * shapely.distance(walls, shapely.points(x, y)), top - eave)
        parts.append(np.column_stack([x, y, z + rng.normal(0.0, 0.03, len(x))]))
        count = rng.poisson(0.8 * walls.length * (eave - GROUND_Z))  # facade points: 0.8 per m2 of outer wall
        xy = shapely.get_coordinates(_points_along(walls, rng, count)) + rng.normal(0.0, 0.03, (count, 2))
        parts.append(np.column_stack([xy, rng.uniform(GROUND_Z + 0.5, eave, count)]))
    return np.vstack(parts)


def _points_along(lines: shapely.Geometry, rng: np.random.Generator, count: int) -> np.ndarray:
    segments = shapely.get_parts(lines)
    lengths = shapely.length(segments)
    which = rng.choice(len(segments), size=count, p=lengths / lengths.sum())
    return shapely.line_interpolate_point(segments[which], rng.uniform(0, 1, count), normalized=True)


def _iou(a: shapely.Geometry, b: shapely.Geometry) -> float:
    return shapely.area(shapely.intersection(a, b)) / shapely.area(shapely.union(a, b))


def _best_match(truth: shapely.Geometry, found: gpd.GeoDataFrame) -> int:
    return int(np.argmax(shapely.area(shapely.intersection(found.geometry.values, truth))))


def test_attached_flat_roofs_of_different_heights_are_two_buildings():
    left, right = shapely.box(0, 0, 16, 13), shapely.box(16, 0, 30, 13)
    found = extract_footprints(_scan([(left, "flat", 55.0, 55.0), (right, "flat", 56.5, 56.5)]), _flat_terrain())
    assert len(found) == 2
    for footprint, top in ((left, 55.0), (right, 56.5)):
        match = found.iloc[_best_match(footprint, found)]
        assert _iou(footprint, match.geometry) > 0.92
        assert match.height_m == pytest.approx(top - GROUND_Z, abs=0.15)
        assert match.roof_z_min == pytest.approx(top, abs=0.2)


@pytest.mark.parametrize("kind", ["pitched", "mansard"])
def test_sloping_roofs_are_one_building(kind):
    footprint = shapely.box(0, 0, 20, 13)
    found = extract_footprints(_scan([(footprint, kind, 51.0, 55.0)]), _flat_terrain())
    assert len(found) == 1
    assert _iou(footprint, found.geometry.iloc[0]) > 0.92
    assert found.height_m.iloc[0] == pytest.approx(55.0 - GROUND_Z, abs=0.2)
    assert 50.5 < found.roof_z_min.iloc[0] < 51.6 and found.roof_z_max.iloc[0] == pytest.approx(55.0, abs=0.15)


@pytest.mark.parametrize("kind, eave", [("mansard", 51.5), ("pitched", 50.0)])
def test_a_pitched_roof_next_to_a_roof_whose_height_crosses_it_is_split(kind, eave):
    """Along the party wall the neighbour's roof rises from below the pitched roof's eave to above its ridge:
    the two roofs meet at the same height somewhere, a step is only part of the wall."""
    pitched, other = shapely.box(0, 0, 18, 13), shapely.box(18, 0, 34, 13)
    points = _scan([(pitched, "pitched", 52.0, 56.0), (other, kind, eave, 57.2)])
    found = extract_footprints(points, _flat_terrain())
    assert len(found) == 2
    for footprint, top in ((pitched, 56.0), (other, 57.2)):
        match = found.iloc[_best_match(footprint, found)]
        assert _iou(footprint, match.geometry) > 0.93
        assert match.height_m == pytest.approx(top - GROUND_Z, abs=0.15)


def test_a_courtyard_is_kept_as_a_hole_and_the_ring_squared():
    ring = shapely.box(0, 0, 40, 36).difference(shapely.box(12, 12, 28, 24))
    found = extract_footprints(_scan([(ring, "flat", 52.0, 52.0)]), _flat_terrain())
    assert len(found) == 1
    polygon = found.geometry.iloc[0]
    assert len(polygon.interiors) == 1 and _iou(ring, polygon) > 0.95
    assert len(polygon.exterior.coords) == 5 and len(polygon.interiors[0].coords) == 5  # squared


def test_detached_buildings_and_stray_points():
    rng = np.random.default_rng(3)
    stray = np.column_stack([rng.uniform(60, 100, 20), rng.uniform(60, 100, 20), rng.uniform(40, 60, 20)])
    near, far = shapely.box(0, 0, 12, 10), shapely.box(14, 0, 28, 10)
    points = np.vstack([_scan([(near, "flat", 45.0, 45.0), (far, "flat", 45.0, 45.0)]), stray])
    found = extract_footprints(points, _flat_terrain())
    assert len(found) == 2  # same heights, but 2 m apart; the stray points make no building
    assert min(_iou(near, found.geometry.iloc[_best_match(near, found)]),
               _iou(far, found.geometry.iloc[_best_match(far, found)])) > 0.95
    assert found.point_count.sum() < len(points) - 19


def test_attributes_are_consistent():
    found = extract_footprints(_scan([(shapely.box(0, 0, 20, 13), "pitched", 51.0, 55.0)]), _flat_terrain())
    assert list(found.columns) == [*COLUMNS, "geometry"] and found.crs.to_epsg() == 2154
    row = found.iloc[0]
    assert row.roof_z_min <= row.roof_z_median <= row.roof_z_max
    assert row.ground_z == pytest.approx(GROUND_Z) and row.height_m == pytest.approx(row.roof_z_max - row.ground_z)
    assert row.area_m2 == pytest.approx(row.geometry.area) and row.point_count > 2000


def test_empty_input_and_bad_input():
    empty = extract_footprints(np.empty((0, 3)), _flat_terrain())
    assert len(empty) == 0 and list(empty.columns) == [*COLUMNS, "geometry"]
    with pytest.raises(InputError):
        extract_footprints(np.zeros((10, 2)), _flat_terrain())
    with pytest.raises(InputError):
        extract_footprints(np.zeros((10, 3)), _flat_terrain(), height_step=0.0)


def test_square_snaps_near_right_angles_and_keeps_l_shapes():
    rng = np.random.default_rng(1)
    noisy = shapely.Polygon([(0, 0), (10, 0.2), (10.1, 6), (4, 6.2), (0.1, 5.9)])
    squared = square(noisy)
    assert squared.is_valid and len(squared.exterior.coords) == 5 and _iou(noisy, squared) > 0.95
    edges = np.diff(shapely.get_coordinates(squared.exterior), axis=0)
    assert np.allclose(np.einsum("ij,ij->i", edges, np.roll(edges, -1, axis=0)), 0.0, atol=1e-6)  # right angles
    # An L rotated by 30 degrees, its vertices jittered: the rectangle around it is askew, its edges are not.
    ell = shapely.affinity.rotate(shapely.Polygon([(0, 0), (20, 0), (20, 8), (8, 8), (8, 20), (0, 20)]), 30,
                                  origin=(0, 0))
    jittered = shapely.Polygon(shapely.get_coordinates(ell.exterior)[:-1] + rng.normal(0, 0.1, (6, 2)))
    squared = square(jittered)
    assert len(squared.exterior.coords) == 7 and _iou(ell, squared) > 0.97
    directions = np.degrees(np.arctan2(*np.diff(shapely.get_coordinates(squared.exterior), axis=0).T[::-1])) % 90
    assert np.allclose(directions, directions[0], atol=1e-6) and abs(directions[0] - 30) < 1.5


def test_analysis_cell_widens_for_sparse_points():
    rng = np.random.default_rng(0)
    assert analysis_cell(rng.uniform(0, 100, (100_000, 2))) == FINEST_CELL
    assert analysis_cell(rng.uniform(0, 100, (4_000, 2))) > 2.0


def test_cluster_points_on_tiny_inputs():
    lone = np.array([[3.0, 4.0]])
    assert cluster_points(lone, 1.0, 1).tolist() == [0] and cluster_points(lone, 1.0, 2).tolist() == [-1]
    clump = np.repeat(lone, 6, axis=0) + np.linspace(0.0, 0.05, 6)[:, None]  # 6 points in one cell
    assert cluster_points(clump, 1.0, 1).tolist() == [0] * 6
    assert (cluster_points(clump, 1.0, 30) == -1).all()


def test_a_building_longer_than_the_halo_across_a_tile_edge_is_sewn_into_one():
    """Two tiles meeting at x = 50 with a 20 m halo: each sees a piece of the 100 m block and keeps it."""
    long, neighbour, small = shapely.box(0, 0, 100, 14), shapely.box(0, 14, 48, 26), shapely.box(60, 40, 75, 52)
    points = _scan([(long, "flat", 53.0, 53.0), (neighbour, "flat", 50.0, 50.0), (small, "pitched", 45.0, 49.0)])
    halo, edge = 20.0, 50.0
    pieces = []
    for core in ((-10.0, -10.0, edge, 110.0), (edge, -10.0, 110.0, 110.0)):
        seen = (points[:, 0] >= core[0] - halo) & (points[:, 0] < core[2] + halo)
        pieces.append(_in_core(extract_footprints(points[seen], _flat_terrain()), core))
    cut = gpd.GeoDataFrame(pd.concat(pieces, ignore_index=True), crs=pieces[0].crs)
    assert len(cut) == 4  # the long building in two overlapping pieces, as the tiles make it
    sewn = sew_footprints(cut)
    assert len(sewn) == 3 and list(sewn.columns) == list(cut.columns)
    whole = sewn.iloc[_best_match(long, sewn)]
    untiled = extract_footprints(points, _flat_terrain())
    alone = untiled.iloc[_best_match(long, untiled)]
    assert _iou(long, whole.geometry) > 0.95 and _iou(alone.geometry, whole.geometry) > 0.97
    assert whole.height_m == pytest.approx(53.0 - GROUND_Z, abs=0.15)
    assert whole.area_m2 == pytest.approx(whole.geometry.area)
    assert whole.point_count == pytest.approx(alone.point_count, rel=0.05)
    for footprint in (neighbour, small):  # attached or detached, other buildings stay apart
        assert _iou(footprint, sewn.geometry.iloc[_best_match(footprint, sewn)]) > 0.85
    assert sew_footprints(pieces[0]) is pieces[0]  # nothing to join


# --- the sample district -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def district_footprints(district) -> gpd.GeoDataFrame:
    lidar = laspy.read(district / "district.laz")
    building = np.asarray(lidar.classification) == asprs.BUILDING
    xyz = np.column_stack([np.asarray(lidar.x)[building], np.asarray(lidar.y)[building],
                           np.asarray(lidar.z)[building]])
    with rasterio.open(district / "truth-dtm.tif") as dataset:
        left, bottom, right, top = dataset.bounds
        data = dataset.read(1).astype(np.float32)
        if dataset.nodata is not None:
            data[data == dataset.nodata] = np.nan
        dtm = Raster(data, Grid(left, bottom, right, top, dataset.res[0]), "EPSG:2154")
    return extract_footprints(xyz, dtm)


@pytest.fixture(scope="module")
def true_footprints(district) -> gpd.GeoDataFrame:
    return gpd.read_file(district / "truth.gpkg", layer="footprints")


@pytest.fixture(scope="module")
def matches(district_footprints, true_footprints) -> tuple[np.ndarray, np.ndarray]:
    """Per true footprint: the IoU with its best-matching extracted footprint (largest intersection), and the
    error of that footprint's height."""
    found = district_footprints.geometry.values
    iou, height_error = np.zeros(len(true_footprints)), np.full(len(true_footprints), np.inf)
    for index, truth in enumerate(true_footprints.itertuples()):
        overlap = shapely.area(shapely.intersection(found, truth.geometry))
        if overlap.max() > 0:
            best = int(np.argmax(overlap))
            iou[index] = _iou(truth.geometry, found[best])
            height_error[index] = district_footprints.height_m.iloc[best] - truth.height_m
    return iou, height_error


def test_cluster_points_matches_the_dbscan_of_every_point(district):
    """Clustering one representative per cell, on a part of the district with stray points added, gives the
    partition of open3d's DBSCAN of the points: the same clusters and the same noise."""
    lidar = laspy.read(district / "district.laz")
    building = np.asarray(lidar.classification) == asprs.BUILDING
    xy = np.column_stack([np.asarray(lidar.x)[building], np.asarray(lidar.y)[building]])
    corner = xy.min(axis=0)
    xy = xy[(xy[:, 0] < corner[0] + 160) & (xy[:, 1] < corner[1] + 140)]
    xy = np.vstack([xy, corner + np.random.default_rng(0).uniform(0, (160, 140), (300, 2))])
    cloud = o3d.geometry.PointCloud()
    cloud.points = o3d.utility.Vector3dVector(np.column_stack([xy - corner, np.zeros(len(xy))]))
    expected = np.asarray(cloud.cluster_dbscan(eps=1.5, min_points=30))
    found = cluster_points(xy, 1.5, 30)
    assert np.array_equal(found < 0, expected < 0) and (expected < 0).sum() > 100
    pairs = np.unique(np.column_stack([found, expected])[expected >= 0], axis=0)
    assert len(pairs) == expected.max() + 1 == found.max() + 1 > 1


def test_district_footprints_match_the_truth(matches, true_footprints):
    iou, height_error = matches
    assert np.median(iou) >= 0.85
    assert np.mean(np.abs(height_error) <= 0.5) >= 0.95
    for roof_type in ("flat", "pitched", "mansard"):  # sloping roofs are not cut into pieces
        assert np.median(iou[true_footprints.roof_type.values == roof_type]) >= 0.85, roof_type


def test_district_footprints_are_valid_polygons_one_per_building(district_footprints, true_footprints):
    found = district_footprints
    assert len(found) > 0 and found.is_valid.all() and (found.geom_type == "Polygon").all()
    assert found.crs.to_epsg() == 2154
    assert 0.9 * len(true_footprints) <= len(found) <= 1.05 * len(true_footprints)
    assert (found.roof_z_min <= found.roof_z_median).all() and (found.roof_z_median <= found.roof_z_max).all()
    assert found.area_m2.min() >= 20.0 and (found.point_count > 0).all()
    # No true building is cut in two: a second footprint never covers more than a sliver of it.
    for truth in true_footprints.geometry.values:
        covered = shapely.area(shapely.intersection(found.geometry.values, truth)) / truth.area
        assert np.sort(covered)[-2] < 0.2


def test_district_town_hall_keeps_its_courtyard(district_footprints, true_footprints):
    hall = true_footprints[true_footprints.kind == "townhall"].geometry.iloc[0]
    found = district_footprints.geometry.iloc[_best_match(hall, district_footprints)]
    assert len(found.interiors) == 1 and _iou(hall, found) > 0.95


# --- real IGN LiDAR HD tiles -----------------------------------------------------------------------------------


def _terrain_from_ground_points(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> Raster:
    """A rough DTM: the lowest ground point of each 1 m cell, empty cells filled from the nearest."""
    grid = Grid.covering((x.min(), y.min(), x.max(), y.max()), 1.0)
    lowest = bin_extreme(grid, x, y, z, highest=False)
    nearest = ndimage.distance_transform_edt(np.isnan(lowest), return_distances=False, return_indices=True)
    return Raster(lowest[tuple(nearest)], grid, "EPSG:2154")


@pytest.mark.ign
@pytest.mark.slow
def test_real_tiles_give_valid_footprints_with_sane_attributes(ign_tiles):
    for tile in ign_tiles:
        lidar = laspy.read(tile)
        classes = np.asarray(lidar.classification)
        x, y, z = np.asarray(lidar.x), np.asarray(lidar.y), np.asarray(lidar.z)
        ground = classes == asprs.GROUND
        dtm = _terrain_from_ground_points(x[ground], y[ground], z[ground])
        building = classes == asprs.BUILDING
        xyz = np.column_stack([x[building], y[building], z[building]])
        cell = analysis_cell(xyz[:, :2])
        # Sparse tiles (some IGN samples hold < 1 point per m2) need a wider DBSCAN neighbourhood.
        options = {} if cell == FINEST_CELL else {"cluster_distance": 2 * cell, "min_points": 5}
        found = extract_footprints(xyz, dtm, **options)
        assert len(found) > 0, tile.name
        assert found.is_valid.all() and (found.geom_type == "Polygon").all() and found.area_m2.min() >= 20.0
        margin = 2 * cell  # traced cells and squared edges may overhang the points by a cell or so
        assert found.geometry.within(shapely.box(x.min(), y.min(), x.max(), y.max()).buffer(margin)).all()
        assert (found.roof_z_min <= found.roof_z_median).all() and (found.roof_z_median <= found.roof_z_max).all()
        assert found.ground_z.between(z[ground].min() - 1, z[ground].max() + 1).all()
        assert found.height_m.between(0.5, 100.0).all() and math.isfinite(found.height_m.median())
