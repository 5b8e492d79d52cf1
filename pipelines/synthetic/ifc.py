"""IFC4 model of the synthetic town hall, authored with the ifcopenshell API.

Everything comes from :func:`.townhall.build_model`, so the IfcSpace areas are
the ground truth of :func:`.townhall.room_truth`. Geometry is in the local
frame (metres); an IfcMapConversion to EPSG:2154 places it. The output is
byte-for-byte deterministic: GlobalIds are uuid5 of a stable key and the
header time stamp is fixed.
"""

from __future__ import annotations

import math
import pathlib
import uuid
from collections import defaultdict

import ifcopenshell
import ifcopenshell.api.aggregate
import ifcopenshell.api.attribute
import ifcopenshell.api.context
import ifcopenshell.api.feature
import ifcopenshell.api.geometry
import ifcopenshell.api.georeference
import ifcopenshell.api.project
import ifcopenshell.api.pset
import ifcopenshell.api.root
import ifcopenshell.api.spatial
import ifcopenshell.api.type
import ifcopenshell.api.unit
import ifcopenshell.guid
import ifcopenshell.util.geolocation
import numpy as np
from ifcopenshell.util.shape_builder import ShapeBuilder
from pyproj import Transformer
from shapely.geometry import Polygon

from pipelines.synthetic.townhall import (
    Door,
    Level,
    Room,
    Stair,
    StairFlight,
    TownHall,
    TownHallSite,
    Wall,
    Window,
    build_model,
)
from pipelines.synthetic.townhall_programme import SLAB

_API = ifcopenshell.api
_GUID_NAMESPACE = uuid.UUID("6f1c3a52-5d0e-4b8e-9a57-2f6c1e0b7d11")
_TIME_STAMP = "2024-01-01T00:00:00"
_FILE_NAME = "hotel-de-ville.ifc"
_OPENING_MARGIN = 0.1  # openings cut a little deeper than the wall so no skin is left
_WALL_TYPES = {"exterior": "SOLIDWALL", "courtyard": "SOLIDWALL", "corridor": "PARTITIONING",
               "partition": "PARTITIONING", "parapet": "PARAPET"}
_PUBLIC_USES = ("reception", "meeting", "circulation", "sanitary")


def write_ifc(site: TownHallSite, path: pathlib.Path, model: TownHall | None = None) -> None:
    """Write the town hall as an IFC4 file georeferenced in EPSG:2154 / NGF-IGN69.

    Parameters
    ----------
    site : TownHallSite
        Position of the building's local frame.
    path : pathlib.Path
        Output file; overwritten if it exists.
    model : TownHall, optional
        The building; the sample's town hall (:func:`.townhall.build_model`) by default, or a larger
        complex of its pavilions (:func:`.pavilions.build_complex`).

    Examples
    --------
    >>> write_ifc(TownHallSite((651180.0, 6861150.0), 0.0, 36.0), tmp_path / "hdv.ifc")  # doctest: +SKIP
    """
    path = pathlib.Path(path)
    model = model or build_model()
    f = _new_file()
    body = _project(f, site)
    building = _spatial(f, site)
    storeys = {lv.code: _storey(f, building, lv) for lv in model.levels}
    for lv in model.levels:
        for slab in model.slabs(lv):
            _slab(f, body, storeys[lv.code], lv, slab, -SLAB, "FLOOR")
    top = model.levels[-1]
    for slab in model.slabs(model.levels[0]):
        _slab(f, body, storeys[top.code], top, Polygon(slab.exterior), top.height - SLAB, "ROOF")
    for room in model.rooms:
        _space(f, body, storeys[room.level.code], room)
    walls = {(w.level.code, w.id): _wall(f, body, storeys[w.level.code], w) for w in model.walls}
    by_id = {(w.level.code, w.id): w for w in model.walls}
    typed = defaultdict(list)
    for door in model.doors:
        key = (door.level.code, door.wall_id)
        typed[_door_type(f, body, door.width, door.height)].append(
            _door(f, body, storeys[door.level.code], walls[key], by_id[key], door))
    for win in model.windows:
        key = (win.level.code, win.wall_id)
        typed[_window_type(f, body, win.width, win.height)].append(
            _window(f, body, storeys[win.level.code], walls[key], by_id[key], win))
    for type_, elements in typed.items():
        for element in elements:  # one at a time: the API iterates a set, whose order follows memory addresses
            _API.type.assign_type(f, related_objects=[element], relating_type=type_)
    for stair in model.stairs:
        _stair(f, body, storeys[stair.level.code], stair)
    _sort_sets(f)
    _fix_global_ids(f)
    f.write(str(path))


def _new_file() -> ifcopenshell.file:
    f = _API.project.create_file(version="IFC4")
    header = f.header.file_name
    header.name = _FILE_NAME  # not the output path, so the bytes do not depend on where they go
    header.time_stamp = _TIME_STAMP  # create_file stamps "now"; fixed for reproducible bytes
    header.author = ("Lutece",)
    header.organization = ("Lutece synthetic sample district",)
    header.authorization = "None"
    return f


def _project(f: ifcopenshell.file, site: TownHallSite) -> ifcopenshell.entity_instance:
    """Project, metre units, contexts and map conversion; returns the Body context."""
    _API.root.create_entity(f, ifc_class="IfcProject", name="Lutèce — Hôtel de Ville")
    units = _API.unit.assign_unit(f, length={"is_metric": True, "raw": "METERS"})
    units.Units = sorted(units.Units, key=lambda u: u.id())  # assign_unit goes through a set
    model = _API.context.add_context(f, context_type="Model")
    body = _API.context.add_context(f, context_type="Model", context_identifier="Body",
                                    target_view="MODEL_VIEW", parent=model)
    _API.georeference.add_georeferencing(f, ifc_class="IfcMapConversion", name="EPSG:2154")
    a = math.radians(site.rotation_deg)
    _API.georeference.edit_georeferencing(
        f,
        projected_crs={"Name": "EPSG:2154", "Description": "RGF93 v1 / Lambert-93",
                       "GeodeticDatum": "RGF93 v1", "VerticalDatum": "NGF-IGN69"},
        coordinate_operation={"Eastings": float(site.origin[0]), "Northings": float(site.origin[1]),
                              "OrthogonalHeight": float(site.ground_z), "XAxisAbscissa": math.cos(a),
                              "XAxisOrdinate": math.sin(a), "Scale": 1.0},
    )
    return body


def _spatial(f: ifcopenshell.file, site: TownHallSite) -> ifcopenshell.entity_instance:
    project = f.by_type("IfcProject")[0]
    ifc_site = _API.root.create_entity(f, ifc_class="IfcSite", name="Parvis de l'Hôtel de Ville")
    lon, lat = Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True).transform(*site.origin)
    _API.attribute.edit_attributes(f, product=ifc_site, attributes={
        "RefLatitude": ifcopenshell.util.geolocation.dd2dms(round(lat, 9), use_us=True),
        "RefLongitude": ifcopenshell.util.geolocation.dd2dms(round(lon, 9), use_us=True),
        "RefElevation": float(site.ground_z)})
    building = _API.root.create_entity(f, ifc_class="IfcBuilding", name="Hôtel de Ville")
    _API.attribute.edit_attributes(f, product=building, attributes={
        "ElevationOfRefHeight": float(site.ground_z), "ElevationOfTerrain": float(site.ground_z)})
    _API.aggregate.assign_object(f, products=[ifc_site], relating_object=project)
    _API.aggregate.assign_object(f, products=[building], relating_object=ifc_site)
    for product in (ifc_site, building):
        _API.geometry.edit_object_placement(f, product=product, matrix=np.eye(4))
    return building


def _storey(f: ifcopenshell.file, building, level: Level) -> ifcopenshell.entity_instance:
    storey = _API.root.create_entity(f, ifc_class="IfcBuildingStorey", name=level.name)
    _API.attribute.edit_attributes(f, product=storey, attributes={"Elevation": level.elevation,
                                                                  "Description": level.code})
    _API.aggregate.assign_object(f, products=[storey], relating_object=building)
    _API.geometry.edit_object_placement(f, product=storey, matrix=_matrix((0.0, 0.0), (1.0, 0.0), level.elevation))
    return storey


def _matrix(origin, x_axis, z: float) -> np.ndarray:
    """Placement with its x axis along ``x_axis`` in the horizontal plane."""
    m = np.eye(4)
    m[:2, 0] = x_axis
    m[:2, 1] = (-x_axis[1], x_axis[0])
    m[:3, 3] = (origin[0], origin[1], z)
    return m


def _extruded(f, body, poly: Polygon, z: float, depth: float) -> ifcopenshell.entity_instance:
    """Body representation: ``poly`` (local metres, holes allowed) extruded up from ``z``."""
    sb = ShapeBuilder(f)
    outer = sb.polyline(list(poly.exterior.coords)[:-1], closed=True)
    inner = [sb.polyline(list(r.coords)[:-1], closed=True) for r in poly.interiors]
    solid = sb.extrude(sb.profile(outer, inner_curves=inner), magnitude=depth, position=(0.0, 0.0, z))
    return sb.get_representation(body, [solid])


def _place_in_storey(f, product, storey, level: Level, contain: bool = True) -> None:
    if contain:
        _API.spatial.assign_container(f, products=[product], relating_structure=storey)
    _API.geometry.edit_object_placement(f, product=product, matrix=_matrix((0.0, 0.0), (1.0, 0.0), level.elevation))


def _space(f, body, storey, room: Room) -> None:
    space = _API.root.create_entity(f, ifc_class="IfcSpace", predefined_type="USERDEFINED", name=room.name)
    _API.attribute.edit_attributes(f, product=space, attributes={"LongName": room.code, "ObjectType": room.use})
    _API.aggregate.assign_object(f, products=[space], relating_object=storey)
    _place_in_storey(f, space, storey, room.level, contain=False)
    _API.geometry.assign_representation(f, product=space, representation=_extruded(
        f, body, room.polygon, 0.0, room.level.clear_height))
    pset = _API.pset.add_pset(f, product=space, name="Pset_SpaceCommon")
    _API.pset.edit_pset(f, pset=pset, properties={"Reference": room.code, "IsExternal": False,
                                                   "PubliclyAccessible": room.use in _PUBLIC_USES})
    qto = _API.pset.add_qto(f, product=space, name="Qto_SpaceBaseQuantities")
    area, height = round(room.area, 3), round(room.level.clear_height, 3)
    _API.pset.edit_qto(f, qto=qto, properties={"NetFloorArea": area, "Height": height,
                                               "NetPerimeter": round(room.polygon.length, 3),
                                               "NetVolume": round(area * height, 3)})


def _slab(f, body, storey, level: Level, poly: Polygon, z: float, kind: str) -> None:
    slab = _API.root.create_entity(f, ifc_class="IfcSlab", predefined_type=kind, name=f"Dalle {level.code}")
    _place_in_storey(f, slab, storey, level)
    _API.geometry.assign_representation(f, product=slab, representation=_extruded(f, body, poly, z, SLAB))


def _wall(f, body, storey, wall: Wall) -> ifcopenshell.entity_instance:
    element = _API.root.create_entity(f, ifc_class="IfcWall", predefined_type=_WALL_TYPES[wall.kind],
                                      name=f"{wall.level.code} {wall.id}")
    _API.spatial.assign_container(f, products=[element], relating_structure=storey)
    rep = _API.geometry.add_wall_representation(f, context=body, length=wall.axis.length, height=wall.height,
                                                thickness=wall.thickness, offset=-wall.thickness / 2)
    _API.geometry.assign_representation(f, product=element, representation=rep)
    _API.geometry.edit_object_placement(f, product=element, matrix=_matrix(
        wall.start, wall.direction, wall.level.elevation + wall.base))
    pset = _API.pset.add_pset(f, product=element, name="Pset_WallCommon")
    _API.pset.edit_pset(f, pset=pset, properties={"IsExternal": wall.kind in ("exterior", "courtyard", "parapet"),
                                                   "LoadBearing": wall.kind in ("exterior", "courtyard")})
    return element


def _opening(f, body, element, wall: Wall, center, width: float, height: float, sill: float):
    """Void the wall ``element`` with a ``width`` x ``height`` box centred on ``center``.

    Returns the opening and its placement matrix, which its filling shares.
    """
    opening = _API.root.create_entity(f, ifc_class="IfcOpeningElement", predefined_type="OPENING")
    depth = wall.thickness + 2 * _OPENING_MARGIN
    rep = _API.geometry.add_wall_representation(f, context=body, length=width, height=height,
                                                thickness=depth, offset=-depth / 2)
    _API.geometry.assign_representation(f, product=opening, representation=rep)
    _API.feature.add_feature(f, feature=opening, element=element)
    start = np.asarray(center) - wall.direction * width / 2
    matrix = _matrix(start, wall.direction, wall.level.elevation + sill)
    _API.geometry.edit_object_placement(f, product=opening, matrix=matrix)
    return opening, matrix


def _fill(f, storey, opening, filling, matrix) -> None:
    _API.feature.add_filling(f, opening=opening, element=filling)
    _API.spatial.assign_container(f, products=[filling], relating_structure=storey)
    _API.geometry.edit_object_placement(f, product=filling, matrix=matrix)


def _door(f, body, storey, element, wall: Wall, door: Door) -> ifcopenshell.entity_instance:
    opening, matrix = _opening(f, body, element, wall, door.center, door.width, door.height, 0.0)
    ifc_door = _API.root.create_entity(f, ifc_class="IfcDoor", predefined_type="DOOR", name=door.id)
    _API.attribute.edit_attributes(f, product=ifc_door, attributes={
        "OverallWidth": door.width, "OverallHeight": door.height, "Description": " / ".join(door.connects)})
    _fill(f, storey, opening, ifc_door, matrix)
    pset = _API.pset.add_pset(f, product=ifc_door, name="Pset_DoorCommon")
    _API.pset.edit_pset(f, pset=pset, properties={"IsExternal": door.exterior, "Reference": door.id})
    return ifc_door


def _window(f, body, storey, element, wall: Wall, win: Window) -> ifcopenshell.entity_instance:
    opening, matrix = _opening(f, body, element, wall, win.center, win.width, win.height, win.sill)
    ifc_window = _API.root.create_entity(f, ifc_class="IfcWindow", predefined_type="WINDOW", name=win.id)
    _API.attribute.edit_attributes(f, product=ifc_window, attributes={
        "OverallWidth": win.width, "OverallHeight": win.height})
    _fill(f, storey, opening, ifc_window, matrix)
    return ifc_window


def _door_type(f, body, width: float, height: float) -> ifcopenshell.entity_instance:
    name = f"Porte {width:.2f} x {height:.2f}"
    if found := [t for t in f.by_type("IfcDoorType") if t.Name == name]:
        return found[0]
    operation = "DOUBLE_DOOR_SINGLE_SWING" if width > 1.5 else "SINGLE_SWING_LEFT"
    door_type = _API.root.create_entity(f, ifc_class="IfcDoorType", predefined_type="DOOR", name=name)
    door_type.OperationType = operation
    rep = _API.geometry.add_door_representation(f, context=body, overall_height=height, overall_width=width,
                                                operation_type=operation)
    _API.geometry.assign_representation(f, product=door_type, representation=rep)
    return door_type


def _window_type(f, body, width: float, height: float) -> ifcopenshell.entity_instance:
    name = f"Fenêtre {width:.2f} x {height:.2f}"
    if found := [t for t in f.by_type("IfcWindowType") if t.Name == name]:
        return found[0]
    window_type = _API.root.create_entity(f, ifc_class="IfcWindowType", predefined_type="WINDOW", name=name)
    window_type.PartitioningType = "DOUBLE_PANEL_VERTICAL"
    rep = _API.geometry.add_window_representation(f, context=body, overall_height=height, overall_width=width,
                                                  partition_type="DOUBLE_PANEL_VERTICAL", panel_properties=[{}, {}])
    _API.geometry.assign_representation(f, product=window_type, representation=rep)
    return window_type


def _stair(f, body, storey, stair: Stair) -> None:
    """Half-turn stair: two flights and a half landing, aggregated under one IfcStair."""
    level = stair.level
    ifc_stair = _API.root.create_entity(f, ifc_class="IfcStair", predefined_type="HALF_TURN_STAIR",
                                       name=f"Escalier A {level.code}")
    _place_in_storey(f, ifc_stair, storey, level)
    parts = []
    for i, flight in enumerate(stair.flights, start=1):
        part = _API.root.create_entity(f, ifc_class="IfcStairFlight", predefined_type="STRAIGHT",
                                       name=f"Volée {i} {level.code}")
        _API.attribute.edit_attributes(f, product=part, attributes={
            "NumberOfRisers": flight.risers, "NumberOfTreads": flight.risers - 1,
            "RiserHeight": flight.riser, "TreadLength": abs(flight.y_step)})
        parts.append((part, _flight_representation(f, body, flight)))
    landing = _API.root.create_entity(f, ifc_class="IfcSlab", predefined_type="LANDING", name=f"Palier {level.code}")
    parts.append((landing, _extruded(f, body, stair.landing, stair.landing_z - 0.2, 0.2)))
    for part, rep in parts:
        _API.aggregate.assign_object(f, products=[part], relating_object=ifc_stair)
        _API.geometry.assign_representation(f, product=part, representation=rep)
        _place_in_storey(f, part, storey, level, contain=False)


def _flight_representation(f, body, flight: StairFlight) -> ifcopenshell.entity_instance:
    """Saw-tooth side profile in the vertical plane along the walking line, extruded across the width."""
    m, r, g = flight.risers, flight.riser, abs(flight.y_step)
    run, waist = (m - 1) * g, 0.2
    steps = [p for i in range(m - 1) for p in ((i * g, (i + 1) * r), ((i + 1) * g, (i + 1) * r))]
    profile = [(0.0, 0.0), *steps, (run, (m - 1) * r - waist), (waist * g / r, 0.0)]
    walk = np.sign(flight.y_step)
    sb = ShapeBuilder(f)
    # Profile x runs along the walking direction and profile y is up; z = x cross y points across the flight.
    x0 = flight.x0 if walk > 0 else flight.x1
    solid = sb.extrude(sb.profile(sb.polyline(profile, closed=True)), magnitude=flight.x1 - flight.x0,
                       position=(x0, flight.y_start, flight.z_start), position_x_axis=(0.0, walk, 0.0),
                       position_z_axis=(walk, 0.0, 0.0))
    return sb.get_representation(body, [solid])


def _sort_sets(f: ifcopenshell.file) -> None:
    """Order the members of unordered SETs by id; the API fills some through Python sets."""
    schema = ifcopenshell.schema_by_name(f.schema)
    for cls in ("IfcRelationship", "IfcUnitAssignment", "IfcPropertySetDefinition"):
        for entity in f.by_type(cls):
            for attr in schema.declaration_by_name(entity.is_a()).all_attributes():
                kind = attr.type_of_attribute()
                value = getattr(entity, attr.name())
                if (isinstance(value, tuple) and len(value) > 1 and isinstance(value[0], ifcopenshell.entity_instance)
                        and hasattr(kind, "type_of_aggregation_string") and kind.type_of_aggregation_string() == "set"):
                    setattr(entity, attr.name(), sorted(value, key=lambda e: e.id()))


def _fix_global_ids(f: ifcopenshell.file) -> None:
    """Replace the API's random GlobalIds by uuid5 of (class, name, rank among namesakes)."""
    seen: dict[tuple[str, str], int] = defaultdict(int)
    for entity in sorted(f.by_type("IfcRoot"), key=lambda e: e.id()):
        key = (entity.is_a(), entity.Name or "")
        seen[key] += 1
        guid = uuid.uuid5(_GUID_NAMESPACE, f"townhall/{key[0]}/{key[1]}/{seen[key]}")
        entity.GlobalId = ifcopenshell.guid.compress(guid.hex)
