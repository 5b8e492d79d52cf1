"""The synthetic town hall: IFC4 model, indoor GeoJSON and ground truth agree."""

from __future__ import annotations

import itertools

import geopandas
import ifcopenshell
import ifcopenshell.util.element as ifc_element
import numpy as np
import pytest
import shapely

from pipelines.synthetic.ifc import write_ifc
from pipelines.synthetic.indoor import write_indoor_geojson
from pipelines.synthetic.townhall import (
    USES,
    TownHallSite,
    build_model,
    footprint,
    height_above_ground,
    roof_elevation,
    room_truth,
)

SITE = TownHallSite(origin=(651180.0, 6861150.0), rotation_deg=0.0, ground_z=36.0)
ROTATED = TownHallSite(origin=(651180.0, 6861150.0), rotation_deg=8.0, ground_z=36.0)


@pytest.fixture(scope="module")
def ifc_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("townhall") / "hotel-de-ville.ifc"
    write_ifc(SITE, path)
    return path


@pytest.fixture(scope="module")
def ifc_file(ifc_path):
    return ifcopenshell.open(str(ifc_path))


@pytest.fixture(scope="module")
def ifc_areas(ifc_file) -> dict[tuple[str, str], float]:
    """NetFloorArea per (storey name, space name)."""
    return {
        (ifc_element.get_aggregate(s).Name, s.Name): ifc_element.get_pset(s, "Qto_SpaceBaseQuantities")["NetFloorArea"]
        for s in ifc_file.by_type("IfcSpace")
    }


def _indoor(site: TownHallSite, tmp_path) -> geopandas.GeoDataFrame:
    path = tmp_path / "indoor.geojson"
    write_indoor_geojson(site, path)
    return geopandas.read_file(path)


def test_ifc_has_storeys_with_a_basement(ifc_file):
    storeys = ifc_file.by_type("IfcBuildingStorey")
    assert ifc_file.schema == "IFC4"
    assert len(storeys) >= 4
    assert any(s.Elevation < 0 for s in storeys)


def test_ifc_spaces_match_the_model(ifc_file, ifc_areas):
    truth = room_truth(SITE)
    spaces = ifc_file.by_type("IfcSpace")
    assert len(spaces) == len(truth)
    assert all(s.Name and s.ObjectType in USES for s in spaces)
    for room in truth:
        assert ifc_areas[(room["level"], room["name"])] == pytest.approx(room["area_m2"], rel=0.01)


def test_ifc_openings_are_filled_by_doors_and_windows(ifc_file):
    model = build_model()
    openings = ifc_file.by_type("IfcOpeningElement")
    assert openings and all(o.VoidsElements and o.VoidsElements[0].RelatingBuildingElement.is_a("IfcWall")
                            for o in openings)
    fillings = [o.HasFillings[0].RelatedBuildingElement for o in openings if o.HasFillings]
    assert len(fillings) == len(openings)
    assert all(f.is_a() in ("IfcDoor", "IfcWindow") for f in fillings)
    assert len(ifc_file.by_type("IfcDoor")) == len(model.doors)
    assert len(ifc_file.by_type("IfcWindow")) == len(model.windows)


def test_ifc_has_stairs(ifc_file):
    assert ifc_file.by_type("IfcStair")
    assert ifc_file.by_type("IfcStairFlight")


def test_ifc_is_georeferenced_in_lambert93(ifc_file):
    (conversion,) = ifc_file.by_type("IfcMapConversion")
    assert conversion.TargetCRS.Name == "EPSG:2154"
    assert (conversion.Eastings, conversion.Northings) == SITE.origin
    assert conversion.OrthogonalHeight == SITE.ground_z
    assert (conversion.XAxisAbscissa, conversion.XAxisOrdinate) == pytest.approx((1.0, 0.0))


@pytest.mark.slow
def test_ifc_is_deterministic(ifc_path, tmp_path):
    again = tmp_path / "again.ifc"
    write_ifc(SITE, again)
    assert again.read_bytes() == ifc_path.read_bytes()


def test_geojson_rooms_match_ifc(tmp_path, ifc_areas):
    gdf = _indoor(SITE, tmp_path)
    assert gdf.crs.to_epsg() == 2154
    rooms = gdf[gdf["feature_type"] == "room"]
    assert len(rooms) == len(ifc_areas)
    assert set(rooms["use"]) <= set(USES)
    for _, room in rooms.iterrows():
        assert room["area_m2"] == pytest.approx(ifc_areas[(room["level"], room["name"])], abs=1e-3)
    assert np.allclose(rooms.geometry.area, rooms["area_m2"], rtol=1e-4)


def test_geojson_doors_connect_rooms_of_their_level(tmp_path):
    gdf = _indoor(SITE, tmp_path)
    names = set(zip(gdf["level"], gdf["name"]))
    doors = gdf[gdf["feature_type"] == "door"]
    assert len(doors) == len(build_model().doors)
    assert doors["exterior"].any()
    for _, door in doors.iterrows():
        assert 0.9 <= door["width_m"] <= 1.8
        assert all((door["level"], name) in names for name in door["connects"])


@pytest.mark.parametrize("site", [SITE, ROTATED], ids=["north-up", "rotated-8deg"])
def test_rooms_do_not_overlap_and_lie_inside_the_footprint(site, tmp_path):
    rooms = _indoor(site, tmp_path).query("feature_type == 'room'")
    assert shapely.contains(footprint(site).buffer(0.01), rooms.geometry.values).all()
    for _, level in rooms.groupby("level"):
        geoms = level.geometry.values
        pairs = np.array([(i, j) for i, j in itertools.combinations(range(len(geoms)), 2)])
        overlap = shapely.area(shapely.intersection(geoms[pairs[:, 0]], geoms[pairs[:, 1]]))
        assert overlap.max() < 0.01


def test_footprint_has_the_courtyard_as_its_one_hole():
    fp = footprint(SITE)
    assert len(fp.interiors) == 1
    assert fp.bounds[:2] == pytest.approx(SITE.origin)
    assert fp.area == pytest.approx(64 * 44 - 36 * 16)
    assert footprint(ROTATED).area == pytest.approx(fp.area)
    assert not footprint(ROTATED).equals(fp)


def test_room_truth_programme():
    truth = room_truth(SITE)
    names = {r["name"] for r in truth}
    assert {"Salle des fêtes", "Hall d'accueil", "Salle du Conseil", "Bureau du Maire", "Bureau 1.01",
            "Archives", "Local technique", "Parking vélos", "Escalier A"} <= names
    stair_levels = {r["level"] for r in truth if r["name"] == "Escalier A"}
    assert stair_levels == {level.name for level in build_model().levels}
    assert min(r["floor_z"] for r in truth) < SITE.ground_z
    for _, level in itertools.groupby(truth, key=lambda r: r["level"]):
        level_names = [r["name"] for r in level]
        assert len(level_names) == len(set(level_names))
    assert roof_elevation(SITE) == pytest.approx(SITE.ground_z + height_above_ground())
    assert roof_elevation(SITE) > max(r["floor_z"] + r["height_m"] for r in truth)
