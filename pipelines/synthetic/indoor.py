"""Indoor GeoJSON of the synthetic town hall: rooms and doors in EPSG:2154.

The same model as the IFC file (:func:`.townhall.build_model`), so room areas
here equal the IFC NetFloorArea. Output is deterministic: coordinates rounded
to the millimetre, keys sorted, features in model order.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import shapely
from shapely.geometry import LineString, mapping

from pipelines.synthetic.townhall import Door, Room, TownHallSite, build_model, floor_z, to_l93

CRS_URN = "urn:ogc:def:crs:EPSG::2154"
_MM = 3


def indoor_features(site: TownHallSite) -> dict:
    """Rooms (Polygons) and doors (LineStrings along the wall) as a GeoJSON FeatureCollection.

    Parameters
    ----------
    site : TownHallSite
        Position of the building's local frame.

    Returns
    -------
    dict
        FeatureCollection with the legacy ``crs`` member naming EPSG:2154, which GDAL honours.
    """
    model = build_model()
    rooms = _rounded(to_l93(np.array([r.polygon for r in model.rooms], dtype=object), site))
    doors = _rounded(to_l93(np.array([_door_line(d, model) for d in model.doors], dtype=object), site))
    features = [_room_feature(r, g, site) for r, g in zip(model.rooms, rooms)]
    features += [_door_feature(d, g, site) for d, g in zip(model.doors, doors)]
    return {
        "type": "FeatureCollection",
        "name": "hotel-de-ville-indoor",
        "crs": {"type": "name", "properties": {"name": CRS_URN}},
        "features": features,
    }


def write_indoor_geojson(site: TownHallSite, path: pathlib.Path) -> None:
    """Write :func:`indoor_features` to ``path`` (UTF-8, sorted keys, byte-for-byte reproducible).

    Parameters
    ----------
    site : TownHallSite
        Position of the building's local frame.
    path : pathlib.Path
        Output file; overwritten if it exists.
    """
    text = json.dumps(indoor_features(site), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    pathlib.Path(path).write_text(text + "\n", encoding="utf-8")


def _rounded(geoms: np.ndarray) -> np.ndarray:
    return shapely.transform(geoms, lambda xy: np.round(xy, _MM))


def _door_line(door: Door, model) -> LineString:
    """The door's width along its wall's axis, local metres."""
    wall = next(w for w in model.walls if w.level == door.level and w.id == door.wall_id)
    half = wall.direction * door.width / 2
    return LineString([np.subtract(door.center, half), np.add(door.center, half)])


def _room_feature(room: Room, geom, site: TownHallSite) -> dict:
    return {
        "type": "Feature",
        "id": room.code,
        "geometry": mapping(geom),
        "properties": {
            "feature_type": "room", "code": room.code, "name": room.name, "use": room.use,
            "level": room.level.name, "level_index": room.level.index,
            "floor_z": round(floor_z(site, room.level), _MM), "height_m": round(room.level.clear_height, _MM),
            "area_m2": round(room.area, _MM),
        },
    }


def _door_feature(door: Door, geom, site: TownHallSite) -> dict:
    return {
        "type": "Feature",
        "id": door.id,
        "geometry": mapping(geom),
        "properties": {
            "feature_type": "door", "code": door.id, "level": door.level.name, "level_index": door.level.index,
            "floor_z": round(floor_z(site, door.level), _MM), "width_m": door.width, "height_m": door.height,
            "connects": list(door.connects), "exterior": door.exterior,
        },
    }
