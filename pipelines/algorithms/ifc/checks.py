"""What makes the geometry kernel fail or crash, found in the model before it runs.

Real IFC files are often slightly broken. Some breakage makes ifcopenshell's
iterator drop the element quietly, some (a boolean on a degenerate solid)
crashes the process. These checks read the placement chain and the body
representation of an element (its openings' too, which its boolean subtracts)
and say what is wrong, so that the element is skipped with that reason and
the others are converted. They run in the geometry children (:mod:`.geometry`), one model per process: the
caches of judged placements and items live as long as that process.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

_TINY = 1e-9
_SOLIDS = ("IfcSolidModel", "IfcHalfSpaceSolid", "IfcBooleanResult", "IfcCsgPrimitive3D", "IfcTessellatedFaceSet",
           "IfcShellBasedSurfaceModel", "IfcFaceBasedSurfaceModel")


def element_problem(element) -> str | None:
    """Why ``element`` cannot be converted (None when nothing known is wrong)."""
    problem = placement_problem(element.ObjectPlacement)
    if problem:
        return f"invalid placement ({problem})"
    body = body_items(element)
    if body is None:
        return "no geometry (no body representation)"
    for item in body:
        problem = item_problem(item)
        if problem:
            return f"{'bad boolean' if item.is_a('IfcBooleanResult') else 'bad geometry'} ({problem})"
    for opening in _openings(element):
        problem = placement_problem(opening.ObjectPlacement) or next(
            filter(None, (item_problem(i) for i in body_items(opening) or [])), None)
        if problem:
            return f"bad boolean: its opening {opening.GlobalId} cannot be subtracted ({problem})"
    return None


def body_items(product) -> list | None:
    """The items of the product's body (3D model) representation; None when it has none."""
    shape = getattr(product, "Representation", None)
    if shape is None:
        return None
    for representation in shape.Representations or ():
        if representation.RepresentationIdentifier in ("Body", None, "Facetation") and \
                representation.RepresentationType not in ("Curve2D", "Annotation2D", "GeometricCurveSet"):
            return list(representation.Items or ())
    return None


def placement_problem(placement) -> str | None:
    """A zero-length or parallel axis anywhere up the placement chain, or a loop in it."""
    if placement is None:
        return None
    return _placement_problem(placement)


_CHAINS: dict = {}  # a placement's problem, up its chain (entities hash by file and id; elements share chains)


def _placement_problem(placement) -> str | None:
    """Walk up the chain to the first placement already judged, then judge the walked ones top down."""
    walked, seen = [], set()
    while placement is not None and placement not in _CHAINS:
        if placement.id() in seen:
            problem = f"#{placement.id()} places itself"
            _CHAINS.update(dict.fromkeys(walked, problem))
            return problem
        seen.add(placement.id())
        walked.append(placement)
        placement = getattr(placement, "PlacementRelTo", None)
    problem = _CHAINS[placement] if placement is not None else None
    for member in reversed(walked):  # the lowest problem of the chain is the one told
        problem = axes_problem(getattr(member, "RelativePlacement", None)) or problem
        _CHAINS[member] = problem
    return problem


def axes_problem(axes) -> str | None:
    """A degenerate IfcAxis2Placement2D/3D (zero-length, non-finite or parallel directions)."""
    if axes is None:
        return None
    vectors = {}
    for name in ("Axis", "RefDirection"):
        direction = getattr(axes, name, None)
        if direction is not None:
            vector = tuple(float(v) for v in direction.DirectionRatios) + (0.0,) * (3 - len(direction.DirectionRatios))
            length = math.sqrt(sum(v * v for v in vector))
            if not math.isfinite(length) or length < _TINY:
                return f"#{axes.id()} {axes.is_a()} has a zero-length {name}"
            vectors[name] = [v / length for v in vector]
    if len(vectors) == 2:
        (a1, a2, a3), (b1, b2, b3) = vectors["Axis"], vectors["RefDirection"]
        if math.hypot(a2 * b3 - a3 * b2, a3 * b1 - a1 * b3, a1 * b2 - a2 * b1) < 1e-6:
            return f"#{axes.id()} {axes.is_a()} has its Axis parallel to its RefDirection"
    return None


def item_problem(item, depth: int = 0) -> str | None:
    """What is degenerate in one representation item (booleans and mapped items walked through)."""
    return _item_problem(item, depth)


@lru_cache(maxsize=65536)  # entity instances hash by file and id
def _item_problem(item, depth: int) -> str | None:  # types share their mapped items
    if depth > 50:
        return f"#{item.id()}: representation nested too deep"
    if item.is_a("IfcBooleanResult"):
        for role, operand in (("first", item.FirstOperand), ("second", item.SecondOperand)):
            if operand is None or not any(operand.is_a(kind) for kind in _SOLIDS):
                what = "nothing" if operand is None else f"#{operand.id()} {operand.is_a()}"
                return f"#{item.id()} {item.is_a()}: its {role} operand is {what}, not a solid"
            problem = item_problem(operand, depth + 1)
            if problem:
                return f"#{item.id()} {item.is_a()}: {role} operand: {problem}"
        return None
    if item.is_a("IfcMappedItem"):
        source = item.MappingSource
        problem = axes_problem(source.MappingOrigin) if source.MappingOrigin.is_a("IfcAxis2Placement") else None
        return problem or next(filter(None, (item_problem(i, depth + 1) for i in source.MappedRepresentation.Items)),
                               None)
    if item.is_a("IfcSweptAreaSolid"):
        problem = axes_problem(item.Position) or _profile_problem(item.SweptArea)
        if problem is None and item.is_a("IfcExtrudedAreaSolid"):
            direction = np.asarray(item.ExtrudedDirection.DirectionRatios, float)
            if not item.Depth > 0 or np.linalg.norm(direction) < _TINY:
                problem = f"#{item.id()} IfcExtrudedAreaSolid extrudes by {item.Depth} along {direction.tolist()}"
        return problem
    if item.is_a("IfcHalfSpaceSolid"):
        surface = item.BaseSurface
        return axes_problem(surface.Position) if surface.is_a("IfcPlane") else None
    return None


def _profile_problem(profile) -> str | None:
    if profile.is_a("IfcRectangleProfileDef"):
        if not (profile.XDim > 0 and profile.YDim > 0):
            return f"#{profile.id()} IfcRectangleProfileDef is {profile.XDim} x {profile.YDim}"
    elif profile.is_a("IfcArbitraryClosedProfileDef") and profile.OuterCurve.is_a("IfcPolyline"):
        points = np.array([p.Coordinates[:2] for p in profile.OuterCurve.Points], float)
        x, y = points[:, 0], points[:, 1]
        if abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2 < _TINY:
            return f"#{profile.id()} {profile.is_a()} encloses no area"
    return None


def _openings(element) -> list:
    return [rel.RelatedOpeningElement for rel in getattr(element, "HasOpenings", ()) or ()]
