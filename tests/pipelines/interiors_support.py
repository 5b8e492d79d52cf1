"""Helpers of the interiors tests: the sample town hall's truth, and IFC files broken or stripped on purpose."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import ifcopenshell
import ifcopenshell.guid
import shapely

WORKING_CRS = "EPSG:2154"


def truth_rooms(district: Path) -> gpd.GeoDataFrame:
    """The generator's rooms (code, name, use, level_index, area_m2, floor_z, height_m, outline)."""
    return gpd.read_file(district / "truth.gpkg", layer="rooms")


def truth_footprint(district: Path) -> shapely.Polygon:
    footprints = gpd.read_file(district / "truth.gpkg", layer="footprints")
    return footprints[footprints["kind"] == "townhall"].geometry.iloc[0]


def without_georeferencing(model: ifcopenshell.file, keep_site: bool = False) -> ifcopenshell.file:
    """The model without its IfcMapConversion and IfcProjectedCRS (and without the site's lat/lon unless kept)."""
    for entity in model.by_type("IfcMapConversion") + model.by_type("IfcProjectedCRS"):
        model.remove(entity)
    if not keep_site:
        for site in model.by_type("IfcSite"):
            site.RefLatitude = site.RefLongitude = site.RefElevation = None
    return model


def break_elements(model: ifcopenshell.file) -> dict[str, str]:
    """Break three elements as real files are broken; returns {GlobalId: what was broken}.

    A wall placed by a zero-length axis, a space without any geometry, and a wall whose body is a boolean on a
    solid with no area (which crashes the geometry kernel when it meets it).
    """
    walls, spaces = model.by_type("IfcWall"), model.by_type("IfcSpace")
    placed, emptied, clipped = walls[0], spaces[0], walls[1]
    zero = model.createIfcDirection((0.0, 0.0, 0.0))
    axes = model.createIfcAxis2Placement3D(model.createIfcCartesianPoint((0.0, 0.0, 0.0)), zero, zero)
    placed.ObjectPlacement = model.createIfcLocalPlacement(placed.ObjectPlacement.PlacementRelTo, axes)
    emptied.Representation = None
    body = clipped.Representation.Representations[0]
    flat = model.createIfcArbitraryClosedProfileDef("AREA", None, model.createIfcPolyline(
        [model.createIfcCartesianPoint(p) for p in ((0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (0.0, 0.0))]))
    degenerate = model.createIfcExtrudedAreaSolid(flat, None, model.createIfcDirection((0.0, 0.0, 1.0)), 3.0)
    body.Items = [model.createIfcBooleanResult("DIFFERENCE", degenerate, body.Items[0])]
    return {placed.GlobalId: "placement", emptied.GlobalId: "geometry", clipped.GlobalId: "boolean"}


def without_storeys(path: Path) -> Path:
    """A small IFC4 file with a project, a site, a building and one wall, but no storey."""
    import ifcopenshell.api.aggregate
    import ifcopenshell.api.project
    import ifcopenshell.api.root
    import ifcopenshell.api.spatial

    model = ifcopenshell.api.project.create_file(version="IFC4")
    project = ifcopenshell.api.root.create_entity(model, ifc_class="IfcProject", name="No storeys")
    site = ifcopenshell.api.root.create_entity(model, ifc_class="IfcSite", name="Site")
    building = ifcopenshell.api.root.create_entity(model, ifc_class="IfcBuilding", name="Building")
    wall = ifcopenshell.api.root.create_entity(model, ifc_class="IfcWall", name="Wall")
    ifcopenshell.api.aggregate.assign_object(model, products=[site], relating_object=project)
    ifcopenshell.api.aggregate.assign_object(model, products=[building], relating_object=site)
    ifcopenshell.api.spatial.assign_container(model, products=[wall], relating_structure=building)
    model.write(str(path))
    return path


def validate_gltf(files: list[Path]) -> list[dict]:
    """The Khronos glTF validator, as the tiles tests run it (tests/tiles/tiles_support.py)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tiles" / "tiles_support.py"
    spec = importlib.util.spec_from_file_location("tiles_support", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.validate_gltf(files)


# Texts the open profile must never publish: sensitive rooms of the sample, and what the test adds.
SENSITIVE_ROOMS = {"RDC-10": "Police municipale", "SS-10": "Local informatique", "R3-11": "Local serveurs"}
ADDED_ROOMS = {"R2-01": "Régie des recettes", "R2-02": "Crèche du personnel", "R1-08": "Bureau de Mme Martin"}
PERSON = ("Jeanne", "Dupuis")


def with_sensitive_content(model: ifcopenshell.file) -> None:
    """Rename three offices to a cash office, a crèche and a named person's office, and put an occupant
    (an IfcPerson through IfcOccupant) in a fourth one, whose name becomes hers."""
    import ifcopenshell.api.root

    spaces = {space.LongName: space for space in model.by_type("IfcSpace")}
    for code, name in ADDED_ROOMS.items():
        spaces[code].Name = name
    person = model.createIfcPerson(None, PERSON[1], PERSON[0])
    occupant = ifcopenshell.api.root.create_entity(model, ifc_class="IfcOccupant", name="Occupant")
    occupant.TheActor = person
    occupant.PredefinedType = "LESSEE"
    office = spaces["R1-09"]
    office.Name = f"Bureau {PERSON[0]} {PERSON[1]}"
    model.createIfcRelAssignsToActor(ifcopenshell.guid.new(), None, None, None, [office], None, occupant, None)


def small_ifc2x3(path: Path) -> Path:
    """An IFC2x3 model in millimetres, placed by its site's latitude and longitude: one storey, one 4 m x 5 m
    space (BaseQuantities: 20 m2, 2800 mm) and an author (an IfcPerson) in the owner history."""
    import ifcopenshell.api.aggregate
    import ifcopenshell.api.context
    import ifcopenshell.api.geometry
    import ifcopenshell.api.owner.settings as owner
    import ifcopenshell.api.project
    import ifcopenshell.api.pset
    import ifcopenshell.api.root
    import ifcopenshell.api.unit
    import numpy as np
    from ifcopenshell.util.shape_builder import ShapeBuilder

    model = ifcopenshell.api.project.create_file(version="IFC2X3")
    organisation = model.createIfcOrganization(None, "Cabinet d'architectes")
    user = model.createIfcPersonAndOrganization(model.createIfcPerson(None, "Durand", "Paul"), organisation)
    application = model.createIfcApplication(organisation, "1.0", "test", "test")
    saved = owner.get_user, owner.get_application
    owner.get_user, owner.get_application = (lambda _: user), (lambda _: application)  # IFC2x3 needs an owner
    try:
        project = ifcopenshell.api.root.create_entity(model, ifc_class="IfcProject", name="Petit modèle")
        ifcopenshell.api.unit.assign_unit(model, length={"is_metric": True, "raw": "MILLIMETERS"})
        parent = ifcopenshell.api.context.add_context(model, context_type="Model")
        body = ifcopenshell.api.context.add_context(model, context_type="Model", context_identifier="Body",
                                                    target_view="MODEL_VIEW", parent=parent)
        site = ifcopenshell.api.root.create_entity(model, ifc_class="IfcSite", name="Site")
        site.RefLatitude, site.RefLongitude, site.RefElevation = (48, 51, 0, 0), (2, 21, 0, 0), 35000.0
        building = ifcopenshell.api.root.create_entity(model, ifc_class="IfcBuilding", name="Bâtiment")
        storey = ifcopenshell.api.root.create_entity(model, ifc_class="IfcBuildingStorey", name="RDC")
        space = ifcopenshell.api.root.create_entity(model, ifc_class="IfcSpace", name="Bureau de Paul Durand")
        space.LongName, space.ObjectType = "A-01", "office"
        for child, whole in ((site, project), (building, site), (storey, building), (space, storey)):
            ifcopenshell.api.aggregate.assign_object(model, products=[child], relating_object=whole)
        for product in (site, building, storey, space):
            ifcopenshell.api.geometry.edit_object_placement(model, product=product, matrix=np.eye(4))
        shapes = ShapeBuilder(model)
        outline = shapes.polyline([(0.0, 0.0), (4000.0, 0.0), (4000.0, 5000.0), (0.0, 5000.0)], closed=True)
        solid = shapes.extrude(shapes.profile(outline), magnitude=2800.0)
        ifcopenshell.api.geometry.assign_representation(model, product=space,
                                                        representation=shapes.get_representation(body, [solid]))
        quantities = ifcopenshell.api.pset.add_qto(model, product=space, name="BaseQuantities")
        ifcopenshell.api.pset.edit_qto(model, qto=quantities, properties={"NetFloorArea": 20.0, "Height": 2800.0})
    finally:
        owner.get_user, owner.get_application = saved
    model.write(str(path))
    return path
