"""The synthetic district as geometry: streets, blocks, buildings, trees, river.

Everything here is plain data in Lambert-93 (EPSG:2154) metres, made
deterministically from a seed: the lidar, the vectors and the ground truth
are all drawn from one :class:`Scene`. The layout follows Haussmann's Paris:
a street grid with boulevards, perimeter blocks of attached buildings around
courtyards (flat, pitched and mansard roofs, a few taller ones), street
trees, a square, a river with quays, and one town hall with an inner
courtyard whose plans :mod:`pipelines.synthetic.townhall` describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon, box

from pipelines.synthetic import townhall
from pipelines.synthetic.terrain import ground_height

DEFAULT_ORIGIN = (651000.0, 6861000.0)
RIVER_OFFSET, RIVER_WIDTH = 15.0, 45.0  # from the south edge of the district
QUAY_WIDTH = 20.0
TOWNHALL_MARGIN = 5.0

ROOF_TYPES = ("mansard", "pitched", "flat")
ROOF_TYPE_WEIGHTS = (0.5, 0.25, 0.25)
BOULEVARD_SPECIES = ("Platanus x hispanica", "Platanus x hispanica", "Aesculus hippocastanum",
                     "Tilia tomentosa", "Celtis australis")
STREET_SPECIES = ("Sophora japonica", "Acer platanoides", "Tilia cordata", "Pyrus calleryana")
PARK_SPECIES = ("Quercus robur", "Fraxinus excelsior", "Aesculus hippocastanum", "Paulownia tomentosa")
STREET_NAMES = ("Clovis", "des Arènes", "Sainte-Geneviève", "du Cardinal-Lemoine", "Monge", "Descartes",
                "Mouffetard", "Lacépède", "Linné", "Cuvier", "Jussieu", "Buffon", "Censier", "Daubenton")
BOULEVARD_NAMES = ("de Lutèce", "Saint-Marcel", "de Port-Royal", "Arago", "Saint-Germain", "de l'Hôpital")


@dataclass(frozen=True)
class Building:
    """One building with its true footprint and roof."""

    id: str
    footprint: Polygon
    ground_z: float
    eave_z: float
    top_z: float
    roof_type: str
    facades: shapely.Geometry  # the footprint's outer walls, party walls excluded
    ridge: LineString | None = None
    kind: str = "haussmann"
    block: int = -1

    @property
    def height(self) -> float:
        return self.top_z - self.ground_z

    @property
    def roof_height(self) -> float:
        return self.top_z - self.eave_z


@dataclass(frozen=True)
class Tree:
    id: str
    x: float
    y: float
    ground_z: float
    height: float
    crown_radius: float
    crown_base: float  # height of the crown's lowest point above ground
    species: str


@dataclass(frozen=True)
class Street:
    name: str
    kind: str  # boulevard | street | quay
    width: float
    centreline: LineString


@dataclass
class Scene:
    """The whole district; see the module docstring."""

    origin: tuple[float, float]
    size: float
    seed: int
    boundary: Polygon
    river: Polygon
    river_banks: tuple[float, float]
    streets: list[Street] = field(default_factory=list)
    blocks: list[Polygon] = field(default_factory=list)
    buildings: list[Building] = field(default_factory=list)
    trees: list[Tree] = field(default_factory=list)
    square: Polygon | None = None
    townhall_site: townhall.TownHallSite | None = None
    cars: list[Polygon] = field(default_factory=list)
    shrubs: list[tuple[Polygon, float]] = field(default_factory=list)
    _building_index: shapely.STRtree | None = field(default=None, repr=False)
    _index_size: int = field(default=-1, repr=False)

    def ground(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """True ground height (NGF-IGN69) at the given coordinates."""
        return ground_height(x, y, self.origin, self.river_banks)

    def ground_at(self, x: float, y: float) -> float:
        return float(self.ground(np.array(x), np.array(y)))


def build_scene(size: float = 400.0, seed: int = 0, origin: tuple[float, float] = DEFAULT_ORIGIN) -> Scene:
    """Lay out a district of ``size`` x ``size`` metres from ``seed``.

    The same arguments always give the same scene.
    """
    rng = np.random.default_rng([seed, 1])
    x0, y0 = origin
    south, north = y0 + RIVER_OFFSET, y0 + RIVER_OFFSET + RIVER_WIDTH
    scene = Scene(
        origin=origin, size=size, seed=seed,
        boundary=box(x0, y0, x0 + size, y0 + size),
        river=box(x0, south, x0 + size, north),
        river_banks=(south, north),
    )
    scene.streets.append(Street("Quai de la Tournelle", "quay", QUAY_WIDTH,
                                LineString([(x0, north + QUAY_WIDTH / 2), (x0 + size, north + QUAY_WIDTH / 2)])))
    columns, x_streets = _axis(x0, x0 + size, rng, (75.0, 110.0))
    rows, y_streets = _axis(north + QUAY_WIDTH, y0 + size, rng, (62.0, 95.0))
    _add_streets(scene, x_streets, y_streets, north + QUAY_WIDTH)
    scene.blocks = [box(cx0, cy0, cx1, cy1) for cy0, cy1 in rows for cx0, cx1 in columns]
    special = _place_townhall_and_square(scene)
    for index, block in enumerate(scene.blocks):
        if index not in special:
            _add_haussmann_block(scene, block, index, rng)
    _add_street_trees(scene, rng)
    _add_quay_trees(scene, rng)
    _add_courtyard_greenery(scene, rng)
    _add_cars(scene, rng)
    return scene


def _axis(start: float, end: float, rng: np.random.Generator,
          block_range: tuple[float, float]) -> tuple[list[tuple[float, float]], list[tuple[float, float, str]]]:
    """Alternate streets and blocks along one axis; every third street is a boulevard."""
    blocks: list[tuple[float, float]] = []
    streets: list[tuple[float, float, str]] = []
    position, index = start, 0
    while True:
        kind = "boulevard" if index % 3 == 1 else "street"
        width = 30.0 if kind == "boulevard" else float(rng.uniform(12.0, 16.0))
        if position + width > end:
            break
        streets.append((position + width / 2, width, kind))
        low = position + width
        length = min(float(rng.uniform(*block_range)), end - 12.0 - low)  # the last block shrinks to fit
        if length < block_range[0]:
            break
        blocks.append((low, low + length))
        position, index = low + length, index + 1
    return blocks, streets


def _add_streets(scene: Scene, x_streets, y_streets, land_south: float) -> None:
    x0, y0 = scene.origin
    names = iter(STREET_NAMES)
    boulevards = iter(BOULEVARD_NAMES)
    for centre, width, kind in x_streets:
        name = f"Boulevard {next(boulevards)}" if kind == "boulevard" else f"Rue {next(names)}"
        line = LineString([(centre, land_south - QUAY_WIDTH / 2), (centre, y0 + scene.size)])
        scene.streets.append(Street(name, kind, width, line))
    for centre, width, kind in y_streets:
        name = f"Boulevard {next(boulevards)}" if kind == "boulevard" else f"Rue {next(names)}"
        scene.streets.append(Street(name, kind, width, LineString([(x0, centre), (x0 + scene.size, centre)])))


def _place_townhall_and_square(scene: Scene) -> set[int]:
    """The block nearest the centre that fits gets the town hall; a neighbour becomes the square."""
    centre = scene.boundary.centroid
    local = townhall.footprint(townhall.TownHallSite(origin=(0.0, 0.0), rotation_deg=0.0, ground_z=0.0))
    minx, miny, maxx, maxy = local.bounds
    fits = [i for i, block in enumerate(scene.blocks)
            if _width(block) >= maxx - minx + 2 * TOWNHALL_MARGIN and _depth(block) >= maxy - miny + 2 * TOWNHALL_MARGIN]
    if not fits:
        return set()
    chosen = min(fits, key=lambda i: scene.blocks[i].centroid.distance(centre))
    block = scene.blocks[chosen]
    cx, cy = block.centroid.x, block.centroid.y
    origin = (cx - (minx + maxx) / 2, cy - (miny + maxy) / 2)
    site = townhall.TownHallSite(origin=origin, rotation_deg=0.0, ground_z=round(scene.ground_at(cx, cy), 2))
    scene.townhall_site = site
    footprint = townhall.footprint(site)
    top = townhall.roof_elevation(site)
    scene.buildings.append(Building(
        id="B0000", footprint=footprint, ground_z=site.ground_z, eave_z=top, top_z=top,
        roof_type="flat", facades=footprint.boundary, kind="townhall", block=chosen,
    ))
    others = [i for i in range(len(scene.blocks)) if i != chosen]
    if not others:
        return {chosen}
    square = min(others, key=lambda i: scene.blocks[i].distance(block) + scene.blocks[i].centroid.distance(centre) / 1e3)
    scene.square = scene.blocks[square]
    _add_square(scene, scene.square)
    return {chosen, square}


def _width(polygon: Polygon) -> float:
    minx, _, maxx, _ = polygon.bounds
    return maxx - minx


def _depth(polygon: Polygon) -> float:
    _, miny, _, maxy = polygon.bounds
    return maxy - miny


def _add_haussmann_block(scene: Scene, block: Polygon, index: int, rng: np.random.Generator) -> None:
    """Attached buildings of one depth around a courtyard, split into lots."""
    depth = float(rng.uniform(12.0, 15.0))
    minx, miny, maxx, maxy = block.bounds
    strips = [  # (rectangle, True when the lots follow x)
        (box(minx, miny, maxx, miny + depth), True),
        (box(minx, maxy - depth, maxx, maxy), True),
        (box(minx, miny + depth, minx + depth, maxy - depth), False),
        (box(maxx - depth, miny + depth, maxx, maxy - depth), False),
    ]
    lots: list[tuple[Polygon, bool]] = []
    for strip, along_x in strips:
        lots.extend((lot, along_x) for lot in _split_strip(strip, along_x, rng))
    union = shapely.union_all([lot for lot, _ in lots])
    previous_height = None
    for lot, along_x in lots:
        height = _lot_height(rng, previous_height)
        previous_height = height
        others = union.difference(lot.buffer(0.01))
        facades = lot.boundary.difference(others.buffer(0.05))
        scene.buildings.append(_lot_building(scene, lot, along_x, height, facades, index, rng))


def _split_strip(strip: Polygon, along_x: bool, rng: np.random.Generator) -> list[Polygon]:
    """Cut a strip into lots 12-22 m wide, sometimes with a 3 m passage between two."""
    minx, miny, maxx, maxy = strip.bounds
    start, end = (minx, maxx) if along_x else (miny, maxy)
    lots, position = [], start
    while end - position > 0.5:
        width = float(rng.uniform(12.0, 22.0))
        stop = end if end - (position + width) < 8.0 else position + width
        lots.append(box(position, miny, stop, maxy) if along_x else box(minx, position, maxx, stop))
        position = stop
        if stop < end and rng.random() < 0.15 and end - stop > 12.0:
            position += 3.0  # a passage into the courtyard
    return lots


def _lot_height(rng: np.random.Generator, previous: float | None) -> float:
    """15-25 m, a few towers of 30-36 m; neighbours differ by 1.2 m at least."""
    if rng.random() < 0.05:
        return float(rng.uniform(30.0, 36.0))
    for _ in range(20):
        height = float(rng.uniform(15.0, 25.0))
        if previous is None or abs(height - previous) >= 1.2:
            return height
    return height


def _lot_building(scene: Scene, lot: Polygon, along_x: bool, height: float, facades,
                  block: int, rng: np.random.Generator) -> Building:
    roof_type = "flat" if height > 28.0 else str(rng.choice(ROOF_TYPES, p=ROOF_TYPE_WEIGHTS))
    roof_height = {"flat": 0.0, "mansard": float(rng.uniform(3.0, 4.5)), "pitched": float(rng.uniform(3.0, 5.0))}[roof_type]
    ground = round(scene.ground_at(lot.centroid.x, lot.centroid.y), 2)
    top = round(ground + height, 2)
    minx, miny, maxx, maxy = lot.bounds
    ridge = None
    if roof_type == "pitched":
        cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
        ridge = LineString([(minx, cy), (maxx, cy)]) if along_x else LineString([(cx, miny), (cx, maxy)])
    return Building(
        id=f"B{len(scene.buildings):04d}", footprint=lot, ground_z=ground, eave_z=round(top - roof_height, 2),
        top_z=top, roof_type=roof_type, facades=facades, ridge=ridge, block=block,
    )


def _add_square(scene: Scene, square: Polygon) -> None:
    """A public square: lawns with shrubs and a loose grid of park trees."""
    rng = np.random.default_rng([scene.seed, 2])
    inner = square.buffer(-6.0)
    minx, miny, maxx, maxy = inner.bounds
    for x in np.arange(minx + 4.0, maxx - 3.0, 14.0):
        for y in np.arange(miny + 4.0, maxy - 3.0, 14.0):
            jitter = rng.uniform(-2.0, 2.0, size=2)
            _add_tree(scene, float(x + jitter[0]), float(y + jitter[1]), rng, PARK_SPECIES, (10.0, 22.0))
    for _ in range(int(inner.area / 180.0)):
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        scene.shrubs.append((Point(x, y).buffer(float(rng.uniform(1.5, 3.0)), quad_segs=4), float(rng.uniform(0.3, 1.6))))


def _add_tree(scene: Scene, x: float, y: float, rng: np.random.Generator, species_pool, height_range,
              max_radius: float = 6.0) -> None:
    height = float(rng.uniform(*height_range))
    # Crowns are pruned clear of facades, as city arborists do; a tree with no room is not planted.
    radius = float(min(max_radius, height * rng.uniform(0.2, 0.3), _room_to_buildings(scene, x, y) - 0.5))
    if radius < 1.5 or _too_close_to_trunk(scene, x, y):
        return
    scene.trees.append(Tree(
        id=f"T{len(scene.trees):05d}", x=round(x, 2), y=round(y, 2), ground_z=round(scene.ground_at(x, y), 2),
        height=round(height, 2), crown_radius=round(radius, 2), crown_base=round(height * float(rng.uniform(0.3, 0.45)), 2),
        species=str(rng.choice(species_pool)),
    ))


def _too_close_to_trunk(scene: Scene, x: float, y: float, spacing: float = 4.0) -> bool:
    return any(abs(t.x - x) < spacing and abs(t.y - y) < spacing and np.hypot(t.x - x, t.y - y) < spacing
               for t in scene.trees)


def _room_to_buildings(scene: Scene, x: float, y: float) -> float:
    """Distance from a trunk to the nearest building, or infinity when there is none."""
    if not scene.buildings:
        return np.inf
    if scene._index_size != len(scene.buildings):  # rebuilt only when buildings were added
        scene._building_index = shapely.STRtree([b.footprint for b in scene.buildings])
        scene._index_size = len(scene.buildings)
    _, distance = scene._building_index.query_nearest(Point(x, y), return_distance=True)
    return float(distance[0])


def _add_street_trees(scene: Scene, rng: np.random.Generator) -> None:
    """Rows of trees on both sides of boulevards and on one side of wide streets, not in crossings."""
    carriageways = shapely.STRtree([s.centreline.buffer(s.width / 2 - 3.0, cap_style="flat") for s in scene.streets])
    plantable = scene.boundary.buffer(-2.0)
    for index, street in enumerate(scene.streets):
        if street.kind == "boulevard":
            inset = street.width / 2 - 5.5
            offsets, pool, heights, spacing = (-inset, inset), BOULEVARD_SPECIES, (14.0, 24.0), 9.0
        elif street.kind == "street" and street.width >= 14.0 and rng.random() < 0.7:
            offsets, pool, heights, spacing = (street.width / 2 - 4.0,), STREET_SPECIES, (7.0, 13.0), 8.0
        else:
            continue
        for offset in offsets:
            row = street.centreline.offset_curve(offset)
            for distance in np.arange(spacing / 2, row.length, spacing):
                point = row.interpolate(distance)
                crossing = set(carriageways.query(point, predicate="within").tolist()) - {index}
                if plantable.contains(point) and not crossing:
                    _add_tree(scene, point.x, point.y, rng, pool, heights, max_radius=4.5)


def _add_quay_trees(scene: Scene, rng: np.random.Generator) -> None:
    _, north = scene.river_banks
    x0, _ = scene.origin
    for x in np.arange(x0 + 6.0, x0 + scene.size - 4.0, 10.0):
        _add_tree(scene, float(x), north + 4.0, rng, BOULEVARD_SPECIES, (14.0, 22.0), max_radius=4.5)


def _add_courtyard_greenery(scene: Scene, rng: np.random.Generator) -> None:
    """Some courtyards hold a tree or a planted bed."""
    for index, block in enumerate(scene.blocks):
        lots = [b.footprint for b in scene.buildings if b.block == index and b.kind == "haussmann"]
        if not lots:
            continue
        courtyard = block.difference(shapely.union_all(lots)).buffer(-1.0)
        if courtyard.is_empty:
            continue
        centre = courtyard.representative_point()
        if rng.random() < 0.5:
            _add_tree(scene, centre.x, centre.y, rng, STREET_SPECIES, (8.0, 14.0), max_radius=4.0)
        elif courtyard.area > 60.0:
            scene.shrubs.append((centre.buffer(float(rng.uniform(2.0, 4.0)), quad_segs=4), float(rng.uniform(0.2, 1.2))))


def _add_cars(scene: Scene, rng: np.random.Generator) -> None:
    """Parked cars along the kerbs (unclassified points in the lidar), clear of tree crowns."""
    crowns = shapely.STRtree([Point(t.x, t.y).buffer(t.crown_radius) for t in scene.trees]) if scene.trees else None
    for street in scene.streets:
        offset = street.width / 2 - (8.5 if street.kind == "boulevard" else 3.5)
        row = street.centreline.offset_curve(offset)
        for distance in np.arange(3.0, row.length - 3.0, 6.0):
            if rng.random() > 0.55:
                continue
            centre = row.interpolate(distance)
            ahead = row.interpolate(min(distance + 1.0, row.length))
            angle = np.degrees(np.arctan2(ahead.y - centre.y, ahead.x - centre.x))
            car = shapely.affinity.rotate(box(-2.2, -0.9, 2.2, 0.9), angle, origin=(0, 0))
            car = shapely.affinity.translate(car, centre.x, centre.y)
            if crowns is not None and len(crowns.query(car, predicate="intersects")):
                continue
            if scene.boundary.buffer(-1.0).contains(car):
                scene.cars.append(car)
