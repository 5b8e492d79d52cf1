"""Indoor floor plans (GeoJSON, or any vector file GDAL reads) to an :class:`~.interior.Interior`.

The plans hold rooms (polygons) and doors (lines) per level, each feature with
``feature_type`` (room or door), ``level`` (the storey's name), ``level_index``
and ``floor_z``; rooms also ``code``, ``name``, ``use``, ``height_m`` and
``area_m2``, doors ``height_m``. Rooms become prisms from their floor up to
their height, doors thin panels in their wall's plane. A room whose outline is
invalid (self-intersecting) or that overlaps another room of its level is an
error naming both, or, with ``on_invalid="skip"``, left out and reported.
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gis.errors import InputError
from pipelines.algorithms.interior import Interior, Skipped, element_frame, join_meshes

REQUIRED = ("feature_type", "level", "level_index", "floor_z")
OVERLAP = 0.01  # m2: rooms of one level sharing more than this overlap (a shared wall face shares nothing)
DOOR_THICKNESS = 0.1  # metres: a door panel's thickness in 3D (the plans give its width only)
DEFAULT_DOOR_HEIGHT = 2.1


def read_indoor(path: Path, crs: pyproj.CRS | None, on_invalid: str = "raise") -> Interior:
    """Read indoor plans into an interior in the working CRS ``crs``; see the module docstring."""
    path = Path(path)
    plans = _read(path, crs)
    crs = crs or plans.crs  # crs: auto works in the plans' own CRS
    skipped: list[Skipped] = []
    rooms = plans[plans["feature_type"] == "room"]
    rooms = _check_rooms(rooms, path, on_invalid, skipped)
    doors = plans[(plans["feature_type"] == "door") & plans.geom_type.isin(["LineString", "MultiLineString"])]
    storeys = (plans[["level_index", "level", "floor_z"]].drop_duplicates("level_index").sort_values("level_index")
               .rename(columns={"level_index": "level", "level": "name", "floor_z": "elevation"}).reset_index(drop=True))
    storeys["level"] = storeys["level"].astype(np.int64)
    rows, outlines, meshes = [], [], []
    for _, room in rooms.iterrows():
        height = _number(room, "height_m")
        area = _number(room, "area_m2")
        rows.append(_row(room, "room", height, area if not math.isnan(area) else room.geometry.area))
        outlines.append(room.geometry)
        meshes.append(_prism(room.geometry, room["floor_z"], height if height > 0 else 2.5))
    for _, door in doors.iterrows():
        height = _number(door, "height_m")
        height = height if height > 0 else DEFAULT_DOOR_HEIGHT
        rows.append(_row(door, "door", height, math.nan))
        outlines.append(door.geometry)
        panel = door.geometry.buffer(DOOR_THICKNESS / 2, cap_style="flat")
        meshes.append(_prism(panel, door["floor_z"], height))
    if not rows:
        raise InputError(f"{path}: no room and no door in the plans; features need feature_type room or door")
    vertices, faces, owner = join_meshes(meshes)
    return Interior(storeys, element_frame(rows, outlines, crs), vertices, faces, owner, crs, path, skipped,
                    {"source": "plans", "crs": crs.to_string()})


def _read(path: Path, crs: pyproj.CRS | None) -> gpd.GeoDataFrame:
    import pyogrio

    if not path.is_file():
        raise InputError(f"{path}: no such plans file; give the building's indoor GeoJSON")
    try:
        plans = gpd.read_file(path)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the plans ({str(exc).splitlines()[0][:200]}); give a GeoJSON of "
                         "rooms and doors") from None
    missing = [name for name in REQUIRED if name not in plans.columns]
    if missing:
        raise InputError(f"{path}: the plans have no {', '.join(missing)} propert{'ies' if len(missing) > 1 else 'y'}"
                         "; every room and door needs feature_type, level, level_index and floor_z")
    if plans.crs is None:
        raise InputError(f"{path}: the plans have no CRS; add one (a GeoJSON 'crs' member, e.g. "
                         "urn:ogc:def:crs:EPSG::2154) or convert them with ogr2ogr -a_srs")
    return plans.to_crs(crs) if crs is not None and not plans.crs.equals(crs) else plans


def _check_rooms(rooms: gpd.GeoDataFrame, path: Path, on_invalid: str, skipped: list[Skipped]) -> gpd.GeoDataFrame:
    """Rooms that are valid polygons and overlap no other room of their level (see the module docstring)."""
    bad = ~rooms.geom_type.isin(["Polygon", "MultiPolygon"]) | ~rooms.geometry.is_valid
    for _, room in rooms[bad].iterrows():
        reason = f"its outline is {shapely.is_valid_reason(room.geometry)}" if room.geometry is not None else \
            "it has no outline"
        _refuse_or_skip(on_invalid, path, room, reason, skipped)
    rooms = rooms[~bad]
    keep = pd.Series(True, index=rooms.index)
    for _, level in rooms.groupby("level_index"):
        left, right = level.sindex.query(level.geometry, predicate="intersects")
        for i, j in zip(left, right):
            a, b = level.index[i], level.index[j]
            if a < b and keep[a] and keep[b] and level.geometry[a].intersection(level.geometry[b]).area > OVERLAP:
                overlap = level.geometry[a].intersection(level.geometry[b]).area
                _refuse_or_skip(on_invalid, path, level.loc[b], f"it overlaps room {_label(level.loc[a])} by "
                                f"{overlap:.2f} m2", skipped)
                keep[b] = False
    return rooms[keep]


def _refuse_or_skip(on_invalid: str, path: Path, room, reason: str, skipped: list[Skipped]) -> None:
    if on_invalid != "skip":
        raise InputError(f"{path}: room {_label(room)} on level {room['level']}: {reason}; fix the plans, or pass "
                         "on_invalid: skip to leave such rooms out (they are listed in the run report)")
    skipped.append(Skipped(_code(room), "room", reason))


def _label(feature) -> str:
    return f"{_code(feature)} ({feature.get('name', '') or 'no name'})"


def _code(feature) -> str:
    code = feature.get("code")
    return str(code) if isinstance(code, str) and code else f"feature {feature.name}"


def _number(feature, name: str) -> float:
    value = feature.get(name)
    return float(value) if isinstance(value, (int, float)) and not pd.isna(value) else math.nan


def _row(feature, feature_class: str, height: float, area: float) -> dict:
    def text(name: str) -> str:
        value = feature.get(name)
        return value if isinstance(value, str) else ""

    connects = feature.get("connects")
    description = " / ".join(map(str, connects)) if isinstance(connects, (list, tuple, np.ndarray)) else text("description")
    return {"class": feature_class, "level": int(feature["level_index"]), "level_name": str(feature["level"]),
            "floor_elevation": float(feature["floor_z"]), "global_id": _code(feature), "name": text("name"),
            "long_name": text("long_name"), "use": text("use"), "description": description, "height": height,
            "area": area}


def _prism(polygon, floor: float, height: float) -> tuple[np.ndarray, np.ndarray]:
    from pipelines.algorithms.shells import Prism, prism_mesh

    parts = list(getattr(polygon, "geoms", [polygon]))
    return join_meshes([prism_mesh(Prism(part, float(floor), float(floor) + height)) for part in parts])[:2]
