"""readers.ifc's algorithm on the sample town hall: rooms, areas, storeys, placement and bad files (broken
elements: test_interiors_pipeline.py, which runs the whole pipeline on a broken copy).

The oracle is the generator's truth (truth.gpkg: rooms with their net floor area and floor height, the
building's footprint), never the reader's own output.
"""

from __future__ import annotations

import math

import ifcopenshell
import ifcopenshell.api
import ifcopenshell.util.geolocation
import numpy as np
import pyproj
import pytest
import shapely
from interiors_support import (
    WORKING_CRS,
    small_ifc2x3,
    truth_footprint,
    truth_rooms,
    without_georeferencing,
    without_storeys,
)

from gis.errors import InputError
from pipelines.algorithms.ifc.georef import GeorefOptions, georeference
from pipelines.algorithms.ifc.reader import read_ifc
from pipelines.synthetic.townhall import footprint_local

CRS = pyproj.CRS(WORKING_CRS)


@pytest.fixture(scope="module")
def interior(district):
    return read_ifc(district / "hotel-de-ville.ifc", CRS)


def test_every_room_once_with_its_area_and_storey(interior, district):
    truth = truth_rooms(district).set_index("code")
    rooms = interior.rooms().set_index("long_name")  # the generator's room code is the space's LongName
    assert sorted(rooms.index) == sorted(truth.index)  # every room, each once
    truth = truth.loc[rooms.index]
    assert (rooms["name"] == truth["name"]).all() and (rooms["use"] == truth["use"]).all()
    assert (rooms["level"] == truth["level_index"]).all()
    assert np.allclose(rooms["floor_elevation"], truth["floor_z"], atol=1e-3)
    assert np.allclose(rooms["height"], truth["height_m"], atol=1e-3)
    # areas: the quantity and the outline cut from the space's solid, within 1 % of the truth
    assert np.all(np.abs(rooms["area"] / truth["area_m2"] - 1) <= 0.01)
    assert np.all(np.abs(rooms.geometry.area / truth["area_m2"] - 1) <= 0.01)
    assert rooms.geometry.is_valid.all()


def test_storeys_at_the_ifc_elevations(interior, district):
    truth = truth_rooms(district).groupby("level_index")["floor_z"].first()
    storeys = interior.storeys.set_index("level")
    assert list(storeys.index) == [-1, 0, 1, 2, 3]
    assert np.allclose(storeys["elevation"], truth.loc[storeys.index], atol=1e-3)
    assert list(storeys["name"]) == ["Sous-sol", "Rez-de-chaussée", "1er étage", "2e étage", "3e étage"]


def test_outline_within_half_a_metre_of_the_footprint(interior, district):
    slabs = interior.elements[(interior.elements["class"] == "slab") & (interior.elements["level"] == -1)]
    outline = shapely.union_all(list(slabs.geometry))
    assert outline.hausdorff_distance(truth_footprint(district)) <= 0.5


def test_elements_of_every_class_on_their_storeys(interior):
    counts = interior.elements["class"].value_counts()
    assert {"room", "wall", "slab", "door", "window", "stair"} <= set(counts.index)
    doors = interior.layer("door")
    assert (doors.geom_type == "LineString").all() and doors.length.between(0.8, 2.0).all()
    assert interior.skipped == []
    # every vertex of an element between its storey's floor and the next one's (walls, windows...)
    z = interior.vertices[:, 2]
    floors = interior.elements["floor_elevation"].to_numpy()[interior.face_feature]
    assert np.all(z[interior.faces].min(axis=1) >= floors - 0.31)  # the floor slab hangs below by its thickness


def _georeference(model):
    return georeference(model, CRS, None, "test.ifc")


def _placed_outline(georef) -> shapely.Polygon:
    return shapely.transform(footprint_local(), lambda xy: georef.apply(np.column_stack([xy, np.zeros(len(xy))]))[:, :2])


def test_site_latitude_longitude_and_true_north(district):
    model = without_georeferencing(ifcopenshell.open(str(district / "hotel-de-ville.ifc")), keep_site=True)
    geodetic = CRS.geodetic_crs
    site = model.by_type("IfcSite")[0]
    lon, lat = ifcopenshell.util.geolocation.dms2dd(*site.RefLongitude), ifcopenshell.util.geolocation.dms2dd(*site.RefLatitude)
    # The model's y axis is the grid's north: true north seen in the model is where PROJ puts it on the grid.
    to_grid = pyproj.Transformer.from_crs(geodetic, CRS, always_xy=True)
    end = geodetic.get_geod().fwd(lon, lat, 0.0, 100.0)
    (x0, x1), (y0, y1) = to_grid.transform([lon, end[0]], [lat, end[1]])
    context = next(c for c in model.by_type("IfcGeometricRepresentationContext") if c.ContextType == "Model")
    context.TrueNorth = model.createIfcDirection((x1 - x0, y1 - y0))
    georef = _georeference(model)
    assert georef.source == "IfcSite"
    assert _placed_outline(georef).hausdorff_distance(truth_footprint(district)) <= 0.5
    assert math.isclose(georef.apply([[0, 0, 0]])[0, 2], site.RefElevation, abs_tol=1e-6)


def test_origin_option_places_a_model_without_georeferencing(district):
    model = without_georeferencing(ifcopenshell.open(str(district / "hotel-de-ville.ifc")))
    with pytest.raises(InputError, match="--origin"):
        _georeference(model)
    truth = truth_footprint(district)
    ground = truth_rooms(district).query("level_index == 0")["floor_z"].iloc[0]
    x, y = truth.bounds[:2]  # the model's origin is the outer south-west corner
    georef = georeference(model, CRS, GeorefOptions(origin=(x, y, ground), rotation=0.0), "test.ifc")
    assert _placed_outline(georef).hausdorff_distance(truth) <= 0.5
    rotated = georeference(model, CRS, GeorefOptions(origin=(x, y), rotation=90.0, crs="EPSG:2154"), "test.ifc")
    assert np.allclose(rotated.apply([[1.0, 0.0, 2.0]]), [[x, y + 1.0, 2.0]])


@pytest.mark.parametrize("case", ["not_ifc", "truncated", "no_storeys", "xml", "missing"])
def test_bad_files_are_one_clear_error(case, district, tmp_path):
    path = tmp_path / f"{case}.ifc"
    if case == "not_ifc":
        path.write_text("name,height\nmairie,25\n", encoding="utf-8")
    elif case == "truncated":
        raw = (district / "hotel-de-ville.ifc").read_bytes()
        path.write_bytes(raw[: len(raw) // 2])
    elif case == "xml":
        path.write_text('<?xml version="1.0"?><ifcXML/>', encoding="utf-8")
    elif case == "no_storeys":
        without_storeys(path)
    expected = {"not_ifc": "not an IFC", "truncated": "truncated", "no_storeys": "no storey", "xml": "ifcXML",
                "missing": "no such IFC file"}[case]
    with pytest.raises(InputError, match=expected) as error:
        read_ifc(path, CRS)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_ifc2x3_in_millimetres_placed_by_its_site(tmp_path):
    from pipelines.algorithms.release import Rules, release

    interior = read_ifc(small_ifc2x3(tmp_path / "small.ifc"), CRS)
    (room,) = interior.rooms().itertuples()
    assert (room.name, room.use, room.long_name, room.level) == ("Bureau de Paul Durand", "office", "A-01", 0)
    assert math.isclose(room.area, 20.0) and math.isclose(room.height, 2.8) and math.isclose(room.floor_elevation, 35.0)
    assert abs(room.geometry.area / 20.0 - 1) <= 0.01  # the grid's scale factor makes it 0.02 % smaller
    assert interior.georeferencing["source"] == "IfcSite"
    lon, lat = pyproj.Transformer.from_crs(CRS, CRS.geodetic_crs, always_xy=True).transform(*room.geometry.bounds[:2])
    assert math.isclose(lat, 48 + 51 / 60, abs_tol=1e-6) and math.isclose(lon, 2 + 21 / 60, abs_tol=1e-6)
    opened = release(interior, "open", Rules.load(None)).rooms()
    assert "Paul" not in opened["name"].iloc[0] and "Durand" not in opened["name"].iloc[0]  # the author's name


def test_a_kernel_crash_costs_one_element(district, tmp_path):
    """A boolean on a flat solid crashes the geometry kernel (the checks skip it before; here it is given to the
    kernel anyway): its child dies, that batch is converted again in halves while the other worker's batch is
    kept, and the crashing wall alone is lost."""
    from interiors_support import break_elements

    from pipelines.algorithms.ifc.geometry import triangulate

    model = ifcopenshell.open(str(district / "hotel-de-ville.ifc"))
    crashing = next(guid for guid, what in break_elements(model).items() if what == "boolean")
    path = tmp_path / "crash.ifc"
    model.write(str(path))
    sound = model.by_type("IfcWall")[5:7]
    ids = [model.by_guid(crashing).id(), *(wall.id() for wall in sound)]  # 2 workers: [crashing, sound 2], [sound 1]
    shapes = triangulate(path, ids, {i: model.by_id(i).GlobalId for i in ids}, workers=2)
    assert shapes.failed == {crashing: "the geometry kernel crashed on it"}
    assert sorted(shapes.meshes) == sorted(wall.GlobalId for wall in sound)


def test_a_rotated_map_conversion(district):
    """The map conversion's x axis turned 8 degrees: the outline lands where the generator puts a rotated town hall."""
    from pipelines.synthetic.townhall import TownHallSite, footprint

    model = ifcopenshell.open(str(district / "hotel-de-ville.ifc"))
    conversion = model.by_type("IfcMapConversion")[0]
    conversion.XAxisAbscissa, conversion.XAxisOrdinate = math.cos(math.radians(8.0)), math.sin(math.radians(8.0))
    site = TownHallSite((conversion.Eastings, conversion.Northings), 8.0, conversion.OrthogonalHeight)
    assert _placed_outline(_georeference(model)).hausdorff_distance(footprint(site)) <= 0.01
