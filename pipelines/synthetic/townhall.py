"""Programme of the synthetic town hall ("Hôtel de Ville") of the sample district.

Plain data and pure geometry, no I/O. The IFC writer (:mod:`.ifc`), the indoor
GeoJSON writer (:mod:`.indoor`) and the ground truth all derive from the one
model built here, so they cannot disagree.

Local frame: metres; x along the main (south) façade, y towards the back,
z up from the top of the ground-floor slab; origin at the outer south-west
corner. :class:`TownHallSite` places that frame in Lambert-93 / NGF-IGN69.

Layout: a 64 m x 44 m block around a 36 m x 16 m courtyard, so that all four
wings are 14 m deep. Each wing has a 2.6 m corridor along the courtyard wall
and rooms on the street side; the stair core ("Escalier A") and the wet core
("Sanitaires") are stacked at the same place on every level. Rooms are cells
on the wall axes minus the walls, so rooms of a level never overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cache

import numpy as np
import shapely
import shapely.affinity
from shapely.geometry import LineString, Point, Polygon, box
from shapely.geometry.polygon import orient

from pipelines.synthetic.townhall_programme import (
    EXTERIOR_DOORS,
    LEVELS,
    PROGRAMME,
    ROOM_DOORS,
    STAIR_X,
    WINDOW_WIDTH,
    WINDOWS,
    Level,
)

WIDTH, DEPTH = 64.0, 44.0
COURTYARD_BOUNDS = (14.0, 14.0, 50.0, 30.0)
EXTERIOR_WALL, COURTYARD_WALL, CORRIDOR_WALL, PARTITION = 0.5, 0.4, 0.2, 0.15
CORRIDOR_WIDTH = 2.6
PARAPET = 1.0
WINDOW_RHYTHM = 4.0

USES = ("office", "meeting", "reception", "archive", "technical", "sanitary", "circulation", "storage")

# Wall axes, derived once from the dimensions above.
_EA = EXTERIOR_WALL / 2
_CX0, _CY0, _CX1, _CY1 = COURTYARD_BOUNDS
_CA = COURTYARD_WALL / 2
_CORR = COURTYARD_WALL + CORRIDOR_WIDTH + CORRIDOR_WALL / 2  # courtyard face -> corridor partition axis
_PX0, _PY0, _PX1, _PY1 = _CX0 - _CORR, _CY0 - _CORR, _CX1 + _CORR, _CY1 + _CORR
_STAIR_WELL_Y = 5.8  # slabs are open over the flights up to here, where every flight starts and ends


@dataclass(frozen=True)
class TownHallSite:
    """Where the town hall stands.

    Attributes
    ----------
    origin : tuple of float
        Lambert-93 (EPSG:2154) x, y of the local origin, the outer south-west corner.
    rotation_deg : float
        Counter-clockwise angle of the local x axis from east, in degrees.
    ground_z : float
        NGF-IGN69 elevation of the top of the ground-floor slab (local z = 0).
    """

    origin: tuple[float, float]
    rotation_deg: float
    ground_z: float


@dataclass(frozen=True)
class Room:
    code: str
    name: str
    use: str
    level: Level
    polygon: Polygon  # local metres, net of walls

    @property
    def area(self) -> float:
        return self.polygon.area


@dataclass(frozen=True)
class Wall:
    id: str
    level: Level
    kind: str  # exterior, courtyard, corridor, partition, parapet
    start: tuple[float, float]
    end: tuple[float, float]
    thickness: float
    base: float  # above the level's floor
    height: float

    @property
    def axis(self) -> LineString:
        return LineString([self.start, self.end])

    @property
    def direction(self) -> np.ndarray:
        v = np.subtract(self.end, self.start)
        return v / np.hypot(*v)

    @property
    def polygon(self) -> Polygon:
        return self.axis.buffer(self.thickness / 2, cap_style="flat")


@dataclass(frozen=True)
class Door:
    id: str
    level: Level
    wall_id: str
    center: tuple[float, float]
    width: float
    height: float
    connects: tuple[str, ...]  # room names; one name for an exterior door
    exterior: bool


@dataclass(frozen=True)
class Window:
    id: str
    level: Level
    wall_id: str
    center: tuple[float, float]
    width: float
    height: float
    sill: float


@dataclass(frozen=True)
class StairFlight:
    """Straight flight; its last riser is the edge of the landing or slab it reaches."""

    x0: float
    x1: float
    y_start: float  # first riser
    y_step: float  # signed going, + walks north
    z_start: float  # above the level's floor
    risers: int
    riser: float


@dataclass(frozen=True)
class Stair:
    level: Level
    flights: tuple[StairFlight, StairFlight]
    landing: Polygon
    landing_z: float


@dataclass(frozen=True)
class TownHall:
    levels: tuple[Level, ...]
    rooms: tuple[Room, ...]
    walls: tuple[Wall, ...]
    doors: tuple[Door, ...]
    windows: tuple[Window, ...]
    stairs: tuple[Stair, ...]
    offsets: tuple[float, ...] = (0.0,)  # local x of each pavilion's origin (one for the sample's town hall)

    def slabs(self, level: Level) -> list[Polygon]:
        """Floor slab outlines of ``level``, one per pavilion."""
        return [shapely.affinity.translate(self.slab(level), dx) if dx else self.slab(level) for dx in self.offsets]

    def slab(self, level: Level) -> Polygon:
        """Floor slab outline of ``level``, open over the stair flights except at the bottom."""
        floor = footprint_local()
        if level.index == self.levels[0].index:
            return floor
        x0, x1 = STAIR_X
        well = box(x0 + PARTITION / 2, EXTERIOR_WALL, x1 - PARTITION / 2, _STAIR_WELL_Y)
        return orient(floor.difference(well))




def _band_cells(band: str, items: list) -> list[tuple[Polygon, str, str]]:
    """Cells of one wing band on the wall axes, from its list of splits."""
    lo = {"S": _EA, "N": _EA, "W": _PY0, "E": _PY0}[band]
    hi = {"S": WIDTH - _EA, "N": WIDTH - _EA, "W": _PY1, "E": _PY1}[band]
    across = {"S": (_EA, _PY0), "N": (_PY1, DEPTH - _EA), "W": (_EA, _PX0), "E": (_PX1, WIDTH - _EA)}[band]
    cells, start = [], lo
    for item in items:
        end, name, use = (*item, "office")[:3]
        end = hi if end is None else float(end)
        if band in "SN":
            cells.append((box(start, across[0], end, across[1]), name, use))
        else:
            cells.append((box(across[0], start, across[1], end), name, use))
        start = end
    return cells


def _corridor_cells() -> list[tuple[Polygon, str, str]]:
    # Split on the courtyard wall's inner faces so each segment is a rectangle.
    y0, y1 = _CY0 - COURTYARD_WALL, _CY1 + COURTYARD_WALL
    return [
        (box(_PX0, _PY0, _PX1, y0), "Couloir Sud", "circulation"),
        (box(_PX0, y1, _PX1, _PY1), "Couloir Nord", "circulation"),
        (box(_PX0, y0, _CX0 - COURTYARD_WALL, y1), "Couloir Ouest", "circulation"),
        (box(_CX1 + COURTYARD_WALL, y0, _PX1, y1), "Couloir Est", "circulation"),
    ]


def _walls(level: Level, programme: dict[str, list]) -> list[Wall]:
    h, t, c, p = level.clear_height, EXTERIOR_WALL, COURTYARD_WALL, CORRIDOR_WALL
    x0, y0, x1, y1 = COURTYARD_BOUNDS
    # Butt joints: the south and north walls run the full length, the others stop at their faces.
    spec = [
        ("ext-S", "exterior", (0, _EA), (WIDTH, _EA), t),
        ("ext-N", "exterior", (WIDTH, DEPTH - _EA), (0, DEPTH - _EA), t),
        ("ext-W", "exterior", (_EA, DEPTH - t), (_EA, t), t),
        ("ext-E", "exterior", (WIDTH - _EA, t), (WIDTH - _EA, DEPTH - t), t),
        ("court-S", "courtyard", (x0 - c, y0 - _CA), (x1 + c, y0 - _CA), c),
        ("court-N", "courtyard", (x1 + c, y1 + _CA), (x0 - c, y1 + _CA), c),
        ("court-W", "courtyard", (x0 - _CA, y1), (x0 - _CA, y0), c),
        ("court-E", "courtyard", (x1 + _CA, y0), (x1 + _CA, y1), c),
        ("corr-S", "corridor", (t, _PY0), (WIDTH - t, _PY0), p),
        ("corr-N", "corridor", (t, _PY1), (WIDTH - t, _PY1), p),
        ("corr-W", "corridor", (_PX0, _PY0 + p / 2), (_PX0, _PY1 - p / 2), p),
        ("corr-E", "corridor", (_PX1, _PY0 + p / 2), (_PX1, _PY1 - p / 2), p),
    ]
    spans = {"S": (t, _PY0 - p / 2), "N": (_PY1 + p / 2, DEPTH - t),
             "W": (t, _PX0 - p / 2), "E": (_PX1 + p / 2, WIDTH - t)}
    for band, items in programme.items():
        a, b = spans[band]
        for end, *_ in items[:-1]:
            pts = ((end, a), (end, b)) if band in "SN" else ((a, end), (b, end))
            spec.append((f"part-{band}-{end:g}", "partition", *pts, PARTITION))
    walls = [Wall(i, level, k, tuple(map(float, s)), tuple(map(float, e)), th, 0.0, h) for i, k, s, e, th in spec]
    return walls


def _parapets(level: Level) -> list[Wall]:
    return [Wall(f"parapet-{w.id}", level, "parapet", w.start, w.end, w.thickness, level.height, PARAPET)
            for w in _walls(level, {}) if w.kind in ("exterior", "courtyard")]


def _rooms(level: Level, walls: list[Wall], cells: list[tuple[Polygon, str, str]]) -> list[Room]:
    solid = shapely.union_all([w.polygon for w in walls])
    # Snap to the micrometre so float noise of the wall faces leaves no slivers.
    polys = shapely.simplify(shapely.set_precision(shapely.difference([c[0] for c in cells], solid), 1e-6), 0)
    return [Room(f"{level.code}-{i + 1:02d}", name, use, level, orient(poly))
            for i, (poly, (_, name, use)) in enumerate(zip(polys, cells))]


def _wall_at(walls: list[Wall], pt: Point) -> Wall:
    return next(w for w in walls if w.kind != "parapet" and w.axis.distance(pt) < 1e-6)


def _door_between(walls: list[Wall], cells: dict[str, Polygon], rooms: dict[str, Room], a: str, b: str) -> Door | None:
    """Door centred on the clear part of the shared edge of cells ``a`` and ``b``, if it fits."""
    edge = cells[a].intersection(cells[b])
    if edge.length < 1e-6:
        return None
    axis = 0 if edge.bounds[1] == edge.bounds[3] else 1  # coordinate that varies along the edge
    ra, rb = rooms[a].polygon.bounds, rooms[b].polygon.bounds
    lo = max(edge.bounds[axis], ra[axis], rb[axis])
    hi = min(edge.bounds[axis + 2], ra[axis + 2], rb[axis + 2])
    big = any(rooms[r].area > 60 and rooms[r].use in ("meeting", "reception") for r in (a, b))
    width = 1.8 if big else 1.2 if "Escalier A" in (a, b) else 0.9
    if hi - lo < width + 0.2:
        return None
    mid = (lo + hi) / 2
    center = (mid, edge.bounds[1]) if axis == 0 else (edge.bounds[0], mid)
    wall = _wall_at(walls, Point(center))
    level = rooms[a].level
    return Door("", level, wall.id, center, width, 2.5 if width > 1 else 2.1, (a, b), False)


def _doors(walls: list[Wall], cells: dict[str, Polygon], rooms: dict[str, Room]) -> list[Door]:
    level = next(iter(rooms.values())).level
    corridors = [n for n in cells if n.startswith("Couloir")]
    doors: list[Door] = []
    for name in cells:
        if name in corridors:
            continue
        # The longest shared edge with a corridor gets the door.
        options = [d for c in corridors if (d := _door_between(walls, cells, rooms, name, c))]
        doors.append(max(options, key=lambda d: cells[name].intersection(cells[d.connects[1]]).length))
    doors += [_door_between(walls, cells, rooms, a, b) for a, b in ROOM_DOORS.get(level.code, [])]
    by_id = {w.id: w for w in walls}
    for room, wall_id, at, width, height in EXTERIOR_DOORS.get(level.code, []):
        w = by_id[wall_id]
        center = (at, w.start[1]) if w.start[1] == w.end[1] else (w.start[0], at)
        doors.append(Door("", level, wall_id, center, width, height, (room,), True))
    return [replace(d, id=f"{level.code}-D{i + 1:02d}") for i, d in enumerate(doors)]


def _windows(level: Level, walls: list[Wall], doors: list[Door]) -> list[Window]:
    if level.code not in WINDOWS:
        return []
    sill, height = WINDOWS[level.code]
    windows: list[Window] = []
    for wall in (w for w in walls if w.kind in WINDOW_WIDTH):
        width = WINDOW_WIDTH[wall.kind]
        axis = 0 if wall.start[1] == wall.end[1] else 1
        facade = (0.0, WIDTH if axis == 0 else DEPTH) if wall.kind == "exterior" else \
            (COURTYARD_BOUNDS[axis], COURTYARD_BOUNDS[axis + 2])
        centres = np.arange(facade[0] + WINDOW_RHYTHM / 2, facade[1], WINDOW_RHYTHM)
        others = [w.polygon for w in walls if w is not wall] + \
                 [_span(wall, d.center, d.width) for d in doors if d.wall_id == wall.id]
        for c in centres:
            center = (float(c), wall.start[1]) if axis == 0 else (wall.start[0], float(c))
            slot = _span(wall, center, width + 0.2, across=0.02)
            if shapely.area(shapely.intersection(slot, others)).max(initial=0.0) > 1e-6:
                continue  # a partition or a door meets the wall there
            windows.append(Window(f"{level.code}-W{len(windows) + 1:03d}", level, wall.id, center, width, height, sill))
    return windows


def _span(wall: Wall, center: tuple[float, float], length: float, across: float = 0.0) -> Polygon:
    """Rectangle of ``length`` along ``wall`` centred on ``center``, across its whole thickness."""
    d = wall.direction * length / 2
    line = LineString([np.subtract(center, d), np.add(center, d)])
    return line.buffer(wall.thickness / 2 + across, cap_style="flat")


def _stair(level: Level) -> Stair:
    """Half-turn stair from ``level`` to the next; flights end on the well's edge on every level."""
    risers = 2 * math.ceil(level.height / 0.18 / 2)
    riser, going, m = level.height / risers, 0.28, risers // 2
    x0, x1 = STAIR_X[0] + PARTITION / 2 + 0.1, STAIR_X[1] - PARTITION / 2 - 0.1
    width = (x1 - x0 - 0.25) / 2
    run = (m - 1) * going
    landing_y = _STAIR_WELL_Y - run  # the half landing takes what the shorter flights leave
    up_to_landing = StairFlight(x0, x0 + width, _STAIR_WELL_Y, -going, 0.0, m, riser)
    up_to_floor = StairFlight(x1 - width, x1, landing_y, going, m * riser, m, riser)
    return Stair(level, (up_to_landing, up_to_floor), box(x0, EXTERIOR_WALL, x1, landing_y), m * riser)


@cache
def build_model() -> TownHall:
    """Build the whole town hall in local coordinates.

    Returns
    -------
    TownHall
        Levels, rooms, walls, doors, windows and stairs; cached, as the model is
        immutable and does not depend on the site.
    """
    rooms, walls, doors, windows = [], [], [], []
    for level in LEVELS:
        prog = PROGRAMME[level.code]
        cells = [c for band, items in prog.items() for c in _band_cells(band, items)] + _corridor_cells()
        lw = _walls(level, prog)
        lrooms = _rooms(level, lw, cells)
        cell_of = {name: poly for poly, name, _ in cells}
        ldoors = _doors(lw, cell_of, {r.name: r for r in lrooms})
        rooms += lrooms
        walls += lw
        doors += ldoors
        windows += _windows(level, lw, ldoors)
    walls += _parapets(LEVELS[-1])
    stairs = tuple(_stair(level) for level in LEVELS[:-1])
    return TownHall(LEVELS, tuple(rooms), tuple(walls), tuple(doors), tuple(windows), stairs)


def footprint_local() -> Polygon:
    """Outer outline with the courtyard as a hole, local metres."""
    return orient(Polygon(box(0, 0, WIDTH, DEPTH).exterior, [box(*COURTYARD_BOUNDS).exterior.coords[::-1]]))


def to_l93(geoms, site: TownHallSite):
    """Move local geometries to Lambert-93: rotate about the local origin, then translate.

    Parameters
    ----------
    geoms : shapely.Geometry or numpy.ndarray of them
        Geometries in the local frame (metres).
    site : TownHallSite
        Position of the local frame.

    Returns
    -------
    shapely.Geometry or numpy.ndarray
        Same shape as ``geoms``, in EPSG:2154.
    """
    a = math.radians(site.rotation_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return shapely.transform(geoms, lambda xy: xy @ rot.T + np.asarray(site.origin))


def footprint(site: TownHallSite) -> Polygon:
    """Building footprint in EPSG:2154.

    Parameters
    ----------
    site : TownHallSite
        Position of the building.

    Returns
    -------
    shapely.Polygon
        Outer walls' outline with the courtyard as its one interior ring.
    """
    return to_l93(footprint_local(), site)


def height_above_ground() -> float:
    """Top of the roof parapet above the ground-floor slab, metres."""
    top = LEVELS[-1]
    return top.elevation + top.height + PARAPET


def roof_elevation(site: TownHallSite) -> float:
    """Absolute elevation of the top of the flat roof, parapet included.

    Parameters
    ----------
    site : TownHallSite
        Position of the building.

    Returns
    -------
    float
        NGF-IGN69 metres.
    """
    return site.ground_z + height_above_ground()


def floor_z(site: TownHallSite, level: Level) -> float:
    """Absolute NGF-IGN69 elevation of the finished floor of ``level``."""
    return site.ground_z + level.elevation


def rooms_l93(site: TownHallSite) -> np.ndarray:
    """Room polygons in EPSG:2154.

    Parameters
    ----------
    site : TownHallSite
        Position of the building.

    Returns
    -------
    numpy.ndarray
        Polygons in the order of ``build_model().rooms``.
    """
    return to_l93(np.array([r.polygon for r in build_model().rooms], dtype=object), site)


def room_truth(site: TownHallSite, model: TownHall | None = None) -> list[dict]:
    """Ground truth of every room, from the model the IFC and GeoJSON writers use.

    Parameters
    ----------
    site : TownHallSite
        Position of the building.
    model : TownHall, optional
        The building; the sample's town hall (:func:`build_model`) by default.

    Returns
    -------
    list of dict
        One dict per room with ``level`` (name), ``level_index``, ``code``, ``name``,
        ``use``, ``area_m2`` (net floor area, to 0.001 m²),
        ``floor_z`` (absolute NGF-IGN69) and ``height_m`` (clear height).

    Examples
    --------
    >>> site = TownHallSite((651180.0, 6861150.0), 0.0, 36.0)
    >>> next(r for r in room_truth(site) if r["name"] == "Salle des fêtes")["use"]
    'reception'
    """
    return [
        {"level": r.level.name, "level_index": r.level.index, "code": r.code, "name": r.name, "use": r.use,
         "area_m2": round(r.area, 3), "floor_z": round(floor_z(site, r.level), 3),
         "height_m": round(r.level.clear_height, 3)}
        for r in (model or build_model()).rooms
    ]
