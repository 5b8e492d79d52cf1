"""Closed shells of prisms: triangle meshes (for glTF) and CityJSON 2.0 solids with semantic surfaces.

A prism's exterior ring is counter-clockwise and its holes clockwise seen from above (shapely's
``orient(polygon, 1.0)``), so that every face is counter-clockwise seen from outside: the floor is the
polygon reversed, the roof the polygon, each wall the quad (a, b, b', a') of a ring edge a -> b.
Floor, roof and walls share their vertices: each prism is a closed 2-manifold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import Polygon

GROUND_SURFACE, ROOF_SURFACE, WALL_SURFACE = 0, 1, 2  # semantic surfaces, as CityJSON's semantics' values index them


@dataclass
class Prism:
    """A vertical prism: a polygon (holes allowed) extruded from ``base`` to ``top``."""

    polygon: Polygon
    base: float
    top: float

    @property
    def volume(self) -> float:
        return self.polygon.area * (self.top - self.base)


@dataclass
class Building:
    """One reconstructed building: its attributes and its shells per LoD."""

    attributes: dict
    footprint: Polygon
    lod12: list[Prism] = field(default_factory=list)  # one per polygon of the footprint
    lod13: list[Prism] = field(default_factory=list)  # one per height part
    lod22: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # vertices, triangles, surface of each
    _lod12_mesh: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def shell(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The highest LoD's closed mesh (vertices, triangles), None at LoD0."""
        if self.lod22 is not None:
            return self.lod22[0], self.lod22[1]
        if not self.lod13:
            return None
        return self.lod12_mesh() if self.lod13 is self.lod12 else building_mesh(self.lod13)

    def lod12_mesh(self) -> tuple[np.ndarray, np.ndarray]:
        """The LoD1.2 prisms' mesh (an inner tile's coarse content, and the shell of a building left at
        LoD1.2), made once for both."""
        if self._lod12_mesh is None:
            self._lod12_mesh = building_mesh(self.lod12)
        return self._lod12_mesh


def _rings(prism: Prism) -> list[np.ndarray]:
    """The prism's rings (exterior first), each (n, 2) without the closing vertex."""
    polygon = prism.polygon
    return [np.asarray(ring.coords)[:-1, :2] for ring in (polygon.exterior, *polygon.interiors)]


def prism_mesh(prism: Prism) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (2n, 3) and triangles (counter-clockwise from outside) of a closed prism."""
    rings = _rings(prism)
    flat = np.concatenate(rings)
    count = len(flat)
    vertices = np.concatenate([np.column_stack([flat, np.full(count, prism.base)]),
                               np.column_stack([flat, np.full(count, prism.top)])])
    roof = triangulate(prism.polygon, flat)
    walls = []
    start = 0
    for ring in rings:
        a = start + np.arange(len(ring))
        b = start + (np.arange(len(ring)) + 1) % len(ring)
        walls += [np.column_stack([a, b, b + count]), np.column_stack([a, b + count, a + count])]
        start += len(ring)
    faces = np.concatenate([roof[:, ::-1], roof + count, *walls])
    return vertices, faces


def triangulate(polygon, flat: np.ndarray) -> np.ndarray:
    """Triangles (k, 3) of a polygon as indices into ``flat`` (its rings' vertices), counter-clockwise.

    GEOS's constrained Delaunay triangulation uses the polygon's own vertices only, so each corner of a
    triangle is found among them; holes stay open.
    """
    index = {(float(x), float(y)): i for i, (x, y) in enumerate(flat)}
    triangles = shapely.get_parts(shapely.constrained_delaunay_triangles(polygon))
    corners = shapely.get_coordinates(triangles).reshape(len(triangles), 4, 2)[:, :3]
    faces = np.array([[index[(float(x), float(y))] for x, y in corner] for corner in corners], dtype=np.int64)
    a, b, c = (flat[faces[:, i]] for i in range(3))
    clockwise = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]) < 0
    faces[clockwise] = faces[clockwise][:, ::-1]
    return faces


def self_intersections(vertices: np.ndarray, faces: np.ndarray) -> int:
    """How many pairs of triangles of a mesh cross each other (open3d's test; triangles sharing an edge or
    a corner are not counted): 0 for a shell that is a proper solid's boundary."""
    from pipelines.algorithms.lean_open3d import o3d

    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(np.asarray(vertices, dtype=np.float64)),
                                     o3d.utility.Vector3iVector(np.asarray(faces, dtype=np.int32)))
    return len(np.asarray(mesh.get_self_intersecting_triangles()))


def crossing_prisms(prisms: list[Prism]) -> str | None:
    """Why one of the prisms' shells intersects itself, None when none does."""
    for prism in prisms:
        crossings = self_intersections(*prism_mesh(prism))
        if crossings:
            return f"a prism's shell intersects itself ({crossings} pairs of triangles cross)"
    return None


def building_mesh(prisms: list[Prism]) -> tuple[np.ndarray, np.ndarray]:
    """The prisms of a building as one mesh of closed shells (vertices, faces)."""
    vertices, faces, offset = [], [], 0
    for prism in prisms:
        v, f = prism_mesh(prism)
        vertices.append(v)
        faces.append(f + offset)
        offset += len(v)
    return np.concatenate(vertices), np.concatenate(faces)


# --- CityJSON ------------------------------------------------------------------------------------


class CityJsonVertices:
    """CityJSON's shared vertex list: integers of ``scale`` metres from ``translate``, each stored once."""

    def __init__(self, translate: np.ndarray, scale: float = 0.001) -> None:
        self.translate, self.scale = translate, scale
        self.index: dict[tuple[int, int, int], int] = {}

    def add(self, points: np.ndarray) -> list[int]:
        integers = np.rint((points - self.translate) / self.scale).astype(np.int64)
        return [self.index.setdefault(tuple(map(int, p)), len(self.index)) for p in integers]

    def document(self) -> list[list[int]]:
        return [list(p) for p in self.index]


def prism_solid(prism: Prism, vertices: CityJsonVertices) -> tuple[list, list[int]]:
    """One solid's shell as CityJSON boundaries (faces of rings of vertex indices) and its semantics' values."""
    rings = _rings(prism)
    bottom = [vertices.add(np.column_stack([r, np.full(len(r), prism.base)])) for r in rings]
    top = [vertices.add(np.column_stack([r, np.full(len(r), prism.top)])) for r in rings]
    faces = [[ring[::-1] for ring in bottom], top]
    values = [GROUND_SURFACE, ROOF_SURFACE]
    for low, high in zip(bottom, top):
        for i in range(len(low)):
            j = (i + 1) % len(low)
            faces.append([[low[i], low[j], high[j], high[i]]])
            values.append(WALL_SURFACE)
    return [faces], values


def building_object(building: Building, vertices: CityJsonVertices) -> dict:
    """A CityJSON ``Building`` with the LoDs it reached (0: the footprint at ground height)."""
    attributes = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in building.attributes.items()}
    surfaces = [{"type": "GroundSurface"}, {"type": "RoofSurface"}, {"type": "WallSurface"}]
    geometry = []
    if building.lod12:
        for lod, prisms in (("1.2", building.lod12), ("1.3", building.lod13)):
            solids = [prism_solid(p, vertices) for p in prisms]
            if len(solids) == 1:  # CityJSON's Building takes a Solid or a CompositeSolid (parts sharing walls)
                geometry.append({"type": "Solid", "lod": lod, "boundaries": solids[0][0],
                                 "semantics": {"surfaces": surfaces, "values": [solids[0][1]]}})
            else:
                geometry.append({"type": "CompositeSolid", "lod": lod, "boundaries": [s[0] for s in solids],
                                 "semantics": {"surfaces": surfaces, "values": [[s[1]] for s in solids]}})
        if building.lod22 is not None:
            geometry.append(_lod22_solid(building.lod22, vertices, surfaces))
    else:
        ground = building.attributes["ground"]
        z = 0.0 if np.isnan(ground) else ground
        polygons = getattr(building.footprint, "geoms", [building.footprint])
        boundaries = [[vertices.add(np.column_stack([np.asarray(r.coords)[:-1, :2], np.full(len(r.coords) - 1, z)]))
                       for r in (p.exterior, *p.interiors)] for p in polygons]
        geometry.append({"type": "MultiSurface", "lod": "0", "boundaries": boundaries})
    return {"type": "Building", "attributes": attributes, "geometry": geometry}


def _lod22_solid(shell, vertices: CityJsonVertices, surfaces: list[dict]) -> dict:
    """The LoD2.2 shell as a CityJSON Solid of triangles, each with its semantic surface."""
    points, triangles, kinds = shell
    index = np.array(vertices.add(points))
    return {"type": "Solid", "lod": "2.2", "boundaries": [[[list(map(int, index[t]))] for t in triangles]],
            "semantics": {"surfaces": surfaces, "values": [[int(k) for k in kinds]]}}


def cityjson_document(buildings: list[Building], crs_epsg: int | None) -> dict:
    """A CityJSON 2.0 document of the buildings (ids as the CityObjects' keys)."""
    corners = np.array([b.footprint.bounds for b in buildings])
    grounds = np.array([b.attributes["ground"] for b in buildings], dtype=float)
    translate = np.array([corners[:, 0].min(), corners[:, 1].min(), float(np.nanmin(grounds)) if
                          np.isfinite(grounds).any() else 0.0])
    vertices = CityJsonVertices(translate)
    objects = {b.attributes["id"]: building_object(b, vertices) for b in buildings}
    metadata = {"referenceSystem": f"https://www.opengis.net/def/crs/EPSG/0/{crs_epsg}"} if crs_epsg else {}
    return {"type": "CityJSON", "version": "2.0",
            "transform": {"scale": [vertices.scale] * 3, "translate": translate.tolist()},
            "metadata": metadata, "CityObjects": objects, "vertices": vertices.document()}
