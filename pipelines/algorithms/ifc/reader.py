"""Reading an IFC file into an interior: see the package docstring."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyproj

from gis.errors import InputError
from pipelines.algorithms.ifc.georef import GeorefOptions, georeference
from pipelines.algorithms.interior import Interior, Skipped, element_frame, join_meshes

if TYPE_CHECKING:
    from pipelines.algorithms.ifc.geometry import Triangulation

LINED = ("door", "window")  # classes drawn in plan as their axis line


@dataclass(frozen=True)
class PlanCuts:
    """Heights of the plan's cuts, above the floor (metres)."""

    room: float = 0.05  # a space's outline: just above its floor
    wall: float = 1.2  # walls and columns: above window sills and below door heads, as a plan is drawn

    def __post_init__(self) -> None:
        if not (0 < self.room < 1 and 0 < self.wall < 5):
            raise ValueError(f"plan cuts must be above the floor and within the storey: room {self.room}, "
                             f"wall {self.wall}")


def read_ifc(path: Path, crs: pyproj.CRS | None, georef: GeorefOptions | None = None, workers: int | None = None,
             cuts: PlanCuts = PlanCuts(), geometry: Triangulation | None = None) -> Interior:
    """Read an IFC file into an interior in the working CRS ``crs``.

    ``workers``: geometry processes (default: one per available core and half megabyte of the file,
    :func:`.geometry.default_workers`);
    ``geometry``: those already started by the caller on ``path`` (:func:`.geometry.start`), else started here.

    Raises
    ------
    InputError
        Not IFC, truncated, no storey, no georeferencing and no origin given, nothing convertible.
    """
    path = Path(path)
    from pipelines.algorithms.ifc.geometry import start

    with geometry or start(path, workers) as geometry:  # leaving it: no child left running
        return _read(path, crs, georef, cuts, geometry)


def _read(path: Path, crs: pyproj.CRS | None, georef: GeorefOptions | None, cuts: PlanCuts,
          geometry: Triangulation) -> Interior:
    from pipelines.algorithms.ifc.elements import (
        attributes,
        elements_of,
        feature_class,
        people,
        storey_of,
        storey_table,
    )
    from pipelines.algorithms.ifc.source import open_ifc
    from pipelines.algorithms.sections import axis_lines
    import ifcopenshell.util.unit

    model = open_ifc(path)
    placed = georeference(model, crs, georef, str(path))
    crs = placed.working
    storeys = storey_table(model, placed)
    unit = ifcopenshell.util.unit.calculate_unit_scale(model)
    area_unit = ifcopenshell.util.unit.calculate_unit_scale(model, "AREAUNIT")
    candidates = elements_of(model)  # the children's shares are of these
    levels = {row.step_id: row for row in storeys.itertuples(index=False)}
    described = {}  # what needs no geometry, read while the geometry children run
    for e in candidates:
        storey = storey_of(e)
        described[e.id()] = (levels[storey.id()] if storey is not None else None, feature_class(e),
                             attributes(e, unit, area_unit))
    shapes = geometry.collect([e.id() for e in candidates], {e.id(): e.GlobalId for e in candidates})
    skipped = [Skipped(e.GlobalId, e.is_a(), shapes.problems[e.GlobalId]) for e in candidates
               if e.GlobalId in shapes.problems  # an aggregate without a body of its own: its parts count
               and not (shapes.problems[e.GlobalId].startswith("no geometry") and e.IsDecomposedBy)]
    rows, outlines, meshes = [], [], []
    for element in candidates:
        if element.GlobalId in shapes.problems:
            continue
        if element.GlobalId in shapes.failed:
            skipped.append(Skipped(element.GlobalId, element.is_a(), shapes.failed[element.GlobalId]))
            continue
        vertices, faces = shapes.meshes[element.GlobalId]
        vertices = placed.apply(vertices)
        level, kind, values = described[element.id()]
        if level is None:
            level = _level_below(storeys, vertices[:, 2].min())
        row = {"class": kind, "level": int(level.level), "level_name": level.name,
               "floor_elevation": float(level.elevation), "global_id": element.GlobalId, **values}
        outline = _outline(row["class"], vertices, faces, row["floor_elevation"], cuts)  # doors, windows: below
        if row["class"] == "room":
            if outline is None or outline.is_empty:
                skipped.append(Skipped(element.GlobalId, element.is_a(), "its solid has no section above its floor"))
                continue
            if math.isnan(row["area"]):
                row["area"] = float(outline.area)
        if math.isnan(row["height"]) and row["class"] == "room":
            row["height"] = float(np.ptp(vertices[:, 2]))
        rows.append(row)
        outlines.append(outline)
        meshes.append((vertices, faces))
    lined = [i for i, row in enumerate(rows) if row["class"] in LINED]
    for i, line in zip(lined, axis_lines([meshes[i][0] for i in lined])):
        outlines[i] = line
    if not rows:
        raise InputError(f"{path}: no element of the model could be converted ({len(skipped)} skipped, the first: "
                         f"{skipped[0].reason if skipped else 'none'}); check the file in an IFC viewer")
    vertices, faces, owner = join_meshes(meshes)
    return Interior(storeys.drop(columns=["step_id"]), element_frame(rows, outlines, crs), vertices, faces, owner, crs,
                    path, skipped, placed.describe(), people(model))


def _level_below(storeys, z: float):
    """The storey of an element no storey holds: the highest whose floor is below its lowest point."""
    below = storeys[storeys["elevation"] <= z + 0.1]
    return next((below if len(below) else storeys).iloc[[-1 if len(below) else 0]].itertuples(index=False))


def _outline(feature_class: str, vertices: np.ndarray, faces: np.ndarray, floor: float, cuts: PlanCuts):
    from pipelines.algorithms.sections import footprint, section

    low, high = float(vertices[:, 2].min()), float(vertices[:, 2].max())
    if feature_class == "room":
        return section(vertices, faces, low + cuts.room)
    if feature_class in ("wall", "column"):
        z = floor + cuts.wall
        return section(vertices, faces, z if low < z < high else (low + high) / 2) or footprint(vertices, faces)
    if feature_class == "slab":
        return section(vertices, faces, (low + high) / 2) or footprint(vertices, faces)
    return None  # doors and windows: their axis lines, all at once (:func:`.sections.axis_lines`)
