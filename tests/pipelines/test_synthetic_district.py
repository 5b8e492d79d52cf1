"""The committed sample district: what the generator promises about it."""

import geopandas as gpd
import ifcopenshell
import laspy
import numpy as np
import pyproj
import pytest
import rasterio
import shapely

from gis import asprs
from pipelines.readers.las import inspect_lidar

LIDAR_CLASSES = {asprs.UNCLASSIFIED, asprs.GROUND, *asprs.VEGETATION, asprs.BUILDING, asprs.NOISE, asprs.WATER}


@pytest.fixture(scope="session")
def lidar(district):
    return laspy.read(district / "district.laz")


@pytest.fixture(scope="session")
def truth_footprints(district):
    return gpd.read_file(district / "truth.gpkg", layer="footprints")


def test_lidar_header_is_las14_lambert93_with_wkt(district):
    info = inspect_lidar(district / "district.laz")
    assert info.version == "1.4" and info.point_format in (6, 7)
    assert info.scales == (0.01, 0.01, 0.01)
    with laspy.open(district / "district.laz") as reader:
        assert any(isinstance(v, laspy.vlrs.known.WktCoordinateSystemVlr) for v in reader.header.vlrs)
    assert info.horizontal_crs.to_epsg() == 2154
    assert pyproj.CRS.from_user_input(info.crs).sub_crs_list[1].to_epsg() == 5720  # NGF-IGN69 heights
    xmin, ymin, zmin, xmax, ymax, zmax = info.bounds
    assert 650_000 < xmin < xmax < 652_000 and 6_860_000 < ymin < ymax < 6_862_000


def test_lidar_density_and_heights(lidar, district_manifest):
    size = district_manifest["parameters"]["size"]
    assert 9.0 < len(lidar.points) / size**2 < 12.5
    ground = np.asarray(lidar.z)[np.asarray(lidar.classification) == asprs.GROUND]
    assert 29.5 < ground.min() and ground.max() < 45.0
    building = np.asarray(lidar.z)[np.asarray(lidar.classification) == asprs.BUILDING]
    assert np.percentile(building, 99) < 75.0


def test_class_proportions(lidar):
    classes = np.asarray(lidar.classification)
    assert set(np.unique(classes)) == LIDAR_CLASSES
    share = {code: np.mean(classes == code) for code in LIDAR_CLASSES}
    assert 0.45 < share[2] < 0.80
    assert 0.10 < share[6] < 0.35
    assert 0.05 < share[3] + share[4] + share[5] < 0.25
    assert 0.005 < share[9] < 0.08
    assert 0.0 < share[7] < 0.001
    assert 0.0 < share[1] < 0.03


def test_vegetation_has_several_returns_per_pulse(lidar):
    vegetation = np.isin(np.asarray(lidar.classification), asprs.VEGETATION)
    returns = np.asarray(lidar.number_of_returns)
    assert np.mean(returns[vegetation] > 1) > 0.3
    assert returns.max() == 3
    assert np.all(np.asarray(lidar.return_number) <= returns)


def test_roof_points_line_up_with_true_footprints(lidar, truth_footprints):
    building = np.asarray(lidar.classification) == asprs.BUILDING
    points = shapely.points(np.asarray(lidar.x)[building], np.asarray(lidar.y)[building])
    area = shapely.union_all(truth_footprints.geometry.values).buffer(0.2)
    inside = shapely.contains(area, points)
    assert inside.mean() > 0.99
    # and every true building is covered by its roof points
    roof = shapely.STRtree(points)
    for footprint in truth_footprints.geometry:
        hits = len(roof.query(footprint, predicate="contains"))
        assert hits > 8.0 * footprint.area


def test_ground_points_follow_the_truth_dtm(lidar, district, district_manifest):
    ground = np.asarray(lidar.classification) == asprs.GROUND
    x, y, z = (np.asarray(v)[ground][::50] for v in (lidar.x, lidar.y, lidar.z))
    xmin, ymin, xmax, ymax = district_manifest["extent"]
    inside = (x > xmin + 0.5) & (x < xmax - 0.5) & (y > ymin + 0.5) & (y < ymax - 0.5)
    with rasterio.open(district / "truth-dtm.tif") as dtm:
        assert dtm.crs.to_epsg() == 2154
        sampled = np.array([v[0] for v in dtm.sample(zip(x[inside], y[inside]))])
    residual = z[inside] - sampled
    # 3 cm of ranging noise on a gentle slope sampled at 0.5 m; the quay's 4 m step spoils a few cells
    assert np.sqrt(np.median(residual**2)) < 0.05
    assert np.mean(np.abs(residual) < 0.2) > 0.995


def test_variants(district, district_manifest):
    unclassified = inspect_lidar(district / "district-unclassified.laz")
    assert set(unclassified.classes) == {1}
    no_crs = inspect_lidar(district / "district-nocrs.laz")
    assert no_crs.crs is None
    assert no_crs.point_count == unclassified.point_count > 100_000
    xmin, ymin, xmax, ymax = district_manifest["variant_extent"]
    assert xmin <= unclassified.bounds[0] and unclassified.bounds[3] <= xmax


def test_vector_layers(district, truth_footprints):
    layers = {name for name, _ in gpd.list_layers(district / "district.gpkg").to_numpy()}
    assert {"buildings_cadastre", "streets", "trees", "boundary", "river"} <= layers
    cadastre = gpd.read_file(district / "district.gpkg", layer="buildings_cadastre")
    assert cadastre.crs.to_epsg() == 2154
    missing = (truth_footprints["cadastre"] == "missing").sum()
    shifted = truth_footprints[truth_footprints["cadastre"] == "shifted"]
    assert missing >= 1 and len(shifted) >= 1
    assert len(cadastre) == len(truth_footprints) - missing
    assert shifted["cadastre_offset_m"].between(1.0, 2.0).all()
    streets = gpd.read_file(district / "district.gpkg", layer="streets")
    assert (streets["width_m"] > 0).all() and set(streets["kind"]) >= {"boulevard", "street"}
    inventory = gpd.read_file(district / "district.gpkg", layer="trees")
    truth_trees = gpd.read_file(district / "truth.gpkg", layer="trees")
    assert len(inventory) == len(truth_trees) > 50
    assert inventory["species"].notna().all() and (inventory["height_m"] > 0).all()


def test_roof_types_and_heights(truth_footprints):
    assert set(truth_footprints["roof_type"]) == {"flat", "pitched", "mansard"}
    haussmann = truth_footprints[truth_footprints["kind"] == "haussmann"]
    assert haussmann["height_m"].between(15.0, 36.5).all()
    assert (haussmann["height_m"] > 29.0).sum() >= 1  # a few taller ones
    assert (truth_footprints["kind"] == "townhall").sum() == 1


def test_plans_of_the_town_hall(district):
    model = ifcopenshell.open(str(district / "hotel-de-ville.ifc"))
    assert model.schema == "IFC4"
    storeys = model.by_type("IfcBuildingStorey")
    assert len(storeys) >= 4 and min(s.Elevation for s in storeys) < 0
    rooms = gpd.read_file(district / "truth.gpkg", layer="rooms")
    assert len(model.by_type("IfcSpace")) == len(rooms)
    indoor = gpd.read_file(district / "hotel-de-ville-indoor.geojson")
    assert indoor.crs.to_epsg() == 2154
    indoor_rooms = indoor[indoor["feature_type"] == "room"]
    assert sorted(indoor_rooms["area_m2"].round(1)) == sorted(rooms["area_m2"].round(1))
    townhall = gpd.read_file(district / "truth.gpkg", layer="footprints").query("kind == 'townhall'").geometry.iloc[0]
    assert townhall.buffer(0.05).contains(shapely.union_all(indoor_rooms.geometry.values))


def test_manifest_checksums_match(district, district_manifest):
    import hashlib

    for name, facts in district_manifest["files"].items():
        digest = hashlib.sha256((district / name).read_bytes()).hexdigest()
        assert digest == facts["sha256"], f"{name} differs from the manifest; run 'make sample'"
