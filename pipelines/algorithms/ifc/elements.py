"""What an IFC model holds for an interior: storeys and their levels, and the elements' attributes."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pandas imported where used: the geometry children import this module, not pandas
    import pandas as pd

# IFC classes read, and the class of the feature each becomes (subtypes included, e.g. IfcWallStandardCase).
CLASSES = {"IfcSpace": "room", "IfcWall": "wall", "IfcCurtainWall": "wall", "IfcSlab": "slab", "IfcDoor": "door",
           "IfcWindow": "window", "IfcStair": "stair", "IfcStairFlight": "stair", "IfcColumn": "column"}
BELOW_GROUND = 0.5  # metres: a storey whose floor is this far below the building's reference is a basement


def storey_table(model, georef) -> pd.DataFrame:
    """One row per storey, lowest first: ``level`` (ground floor 0, basements negative), ``name``,
    ``elevation`` (map height of its floor), ``global_id``, ``step_id``."""
    import ifcopenshell.util.placement
    import pandas as pd

    rows, unit = [], _unit(model)
    for storey in model.by_type("IfcBuildingStorey"):
        if storey.ObjectPlacement is not None:  # placements are in project units, the geometry in metres
            local_z = float(ifcopenshell.util.placement.get_local_placement(storey.ObjectPlacement)[2, 3]) * unit
        else:
            local_z = float(storey.Elevation or 0.0) * unit
        rows.append({"name": storey.Name or storey.LongName or f"#{storey.id()}", "local_z": local_z,
                     "elevation": round(float(georef.apply([[0.0, 0.0, local_z]])[0, 2]), 4),
                     "global_id": storey.GlobalId, "step_id": storey.id()})
    table = pd.DataFrame(rows).sort_values("local_z", kind="stable").reset_index(drop=True)
    ground = _ground_rank(model, table)
    table.insert(0, "level", np.arange(len(table)) - ground)
    return table.drop(columns="local_z")


def _ground_rank(model, table: pd.DataFrame) -> int:
    """Rank of the ground floor: the lowest storey not below the building's reference height.

    The reference is the building's ElevationOfRefHeight (map height) when given, else local z = 0.
    """
    reference = None
    buildings = model.by_type("IfcBuilding")
    if buildings and buildings[0].ElevationOfRefHeight is not None:
        reference = ("elevation", float(buildings[0].ElevationOfRefHeight) * _unit(model))
    column, value = reference or ("local_z", 0.0)
    above = np.flatnonzero(table[column].to_numpy() >= value - BELOW_GROUND)
    return int(above[0]) if len(above) else len(table) - 1


def _unit(model, kind: str = "LENGTHUNIT") -> float:
    """Metres (or square metres for AREAUNIT) per project unit."""
    import ifcopenshell.util.unit

    return ifcopenshell.util.unit.calculate_unit_scale(model, kind)


def elements_of(model) -> list:
    """Every element to convert: the classes of :data:`CLASSES`, each once, in file order."""
    found = {}
    for ifc_class in CLASSES:
        for element in model.by_type(ifc_class):
            found[element.id()] = element
    return [found[key] for key in sorted(found)]


def feature_class(element) -> str:
    """room, wall, slab, door, window, stair or column; a part of a stair (its landing slab) is stair."""
    import ifcopenshell.util.element

    whole = ifcopenshell.util.element.get_aggregate(element)
    if whole is not None and whole.is_a("IfcStair"):
        return "stair"
    return next(name for ifc_class, name in CLASSES.items() if element.is_a(ifc_class))


def storey_of(element):
    """The storey holding ``element``: its spatial container, or what it is part of, up the chain."""
    import ifcopenshell.util.element

    current, seen = element, set()
    while current is not None and current.id() not in seen:
        seen.add(current.id())
        if current.is_a("IfcBuildingStorey"):
            return current
        container = ifcopenshell.util.element.get_container(current)
        if container is not None and container.is_a("IfcBuildingStorey"):
            return container
        current = container or ifcopenshell.util.element.get_aggregate(current)
    return None


def attributes(element, unit: float, area_unit: float) -> dict:
    """name, long_name, use, description, and (spaces) net floor area and height from the quantity sets.

    The use of a space is its ObjectType (IFC4), else Pset_SpaceOccupancyRequirements' OccupancyType, else its
    type's name. Quantities from any quantity set (Qto_SpaceBaseQuantities in IFC4, BaseQuantities in IFC2x3),
    else Pset_SpaceCommon's planned area (IFC2x3); NaN when absent (computed from the geometry later).
    """
    import ifcopenshell.util.element

    row = {"name": element.Name or "", "long_name": getattr(element, "LongName", None) or "",
           "description": element.Description or "", "use": "", "area": math.nan, "height": math.nan}
    if not element.is_a("IfcSpace"):
        return row
    psets = ifcopenshell.util.element.get_psets(element)
    element_type = ifcopenshell.util.element.get_type(element)
    row["use"] = (element.ObjectType or psets.get("Pset_SpaceOccupancyRequirements", {}).get("OccupancyType")
                  or (element_type.Name if element_type is not None else None) or "")
    quantities = ifcopenshell.util.element.get_psets(element, qtos_only=True)
    area = _first(quantities, ("NetFloorArea", "GrossFloorArea"))
    if area is None:
        area = _first(psets, ("NetPlannedArea", "GrossPlannedArea"))
    height = _first(quantities, ("Height", "FinishCeilingHeight", "ClearHeight"))
    row["area"] = float(area) * area_unit if area is not None else math.nan
    row["height"] = float(height) * unit if height is not None else math.nan
    return row


def _first(sets: dict, names: tuple[str, ...]):
    for name in names:
        for properties in sets.values():
            value = properties.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                return value
    return None


def people(model) -> list[str]:
    """Every personal name the model holds (IfcPerson: authors, occupants, actors), full and in parts."""
    names = set()
    for person in model.by_type("IfcPerson"):
        parts = [person.GivenName, *(person.MiddleNames or ()), person.FamilyName]
        parts = [str(p).strip() for p in parts if p and str(p).strip()]
        if parts:
            names.add(" ".join(parts))
            names.update(parts)
    return sorted(names, key=len, reverse=True)
