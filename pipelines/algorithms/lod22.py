"""LoD2.2 shells: the roof planes intersected and fitted to the footprint, walls down to the ground.

The roof is the lowest of the planes at each point (:class:`~pipelines.algorithms.roof_planes.RoofFit`),
so the face of plane i is the footprint cut by the half-planes where plane i is below every other one: a
convex cell per plane, intersected with the footprint. The faces' vertices are put on every edge they
touch (no T-junction), every vertex takes the roof's height there (one height per vertex, shared by the
faces meeting at it), the walls follow the footprint's boundary with those vertices, and the floor is the
footprint at ground height: a closed shell, oriented outwards, which the caller checks.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.geometry.polygon import orient

from pipelines.algorithms.roof_planes import RoofFit
from pipelines.algorithms.shells import triangulate

SNAP = 1e-3  # metres: vertices closer than this are one


def lod22_shell(polygon: Polygon, fit: RoofFit, ground: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices (n, 3), triangles (m, 3) and their surface (0 ground, 1 roof, 2 wall) of one footprint polygon."""
    polygon = orient(shapely.set_precision(polygon, SNAP), 1.0)
    faces = [face for face in _roof_faces(polygon, fit) if face.area > 1e-4]
    points = np.unique(np.round(np.concatenate([shapely.get_coordinates(f) for f in faces]
                                               + [shapely.get_coordinates(polygon)]) / SNAP).astype(np.int64), axis=0)
    points = points * SNAP
    faces = [_with_vertices(face, points) for face in faces]
    footprint = _with_vertices(polygon, points)
    top, bottom = _Weld(), _Weld()
    rings = [np.asarray(r.coords)[:-1, :2] for r in (footprint.exterior, *footprint.interiors)]
    roof = [(face, _flat(face)) for face in faces]
    roof_indices = [top.indices(xy) for _, xy in roof]
    ring_top = [top.indices(xy) for xy in rings]
    offset = len(top.points)  # the floor's vertices follow the roof's
    triangles, kinds = [], []
    for (face, xy), indices in zip(roof, roof_indices):
        local = triangulate(face, xy)
        triangles.append(indices[local])
        kinds.append(np.full(len(local), 1))
    floor_xy = _flat(footprint)
    floor = triangulate(footprint, floor_xy)
    triangles.append(bottom.indices(floor_xy)[floor][:, ::-1] + offset)
    kinds.append(np.full(len(floor), 0))
    for xy, high in zip(rings, ring_top):
        low = bottom.indices(xy) + offset
        following = np.roll(np.arange(len(xy)), -1)
        walls = np.concatenate([np.column_stack([low, low[following], high[following]]),
                                np.column_stack([low, high[following], high])])
        triangles.append(walls)
        kinds.append(np.full(len(walls), 2))
    roof_xy, floor_xy = top.xy(), bottom.xy()
    vertices = np.concatenate([np.column_stack([roof_xy, fit.height(roof_xy[:, 0], roof_xy[:, 1])]),
                               np.column_stack([floor_xy, np.full(len(floor_xy), ground)])])
    return vertices, np.concatenate(triangles), np.concatenate(kinds)


class _Weld:
    """One level's vertices, found by their snapped (x, y)."""

    def __init__(self) -> None:
        self.points: dict[tuple[int, int], int] = {}

    def indices(self, xy: np.ndarray) -> np.ndarray:
        keys = [tuple(k) for k in np.round(xy / SNAP).astype(np.int64)]
        return np.array([self.points.setdefault(k, len(self.points)) for k in keys], dtype=np.int64)

    def xy(self) -> np.ndarray:
        return np.array(list(self.points), dtype=float).reshape(-1, 2) * SNAP


def _roof_faces(polygon: Polygon, fit: RoofFit) -> list[Polygon]:
    """Each plane's face: the footprint where that plane is the lowest."""
    xmin, ymin, xmax, ymax = polygon.bounds
    cell_box = np.array([[xmin - 1, ymin - 1], [xmax + 1, ymin - 1], [xmax + 1, ymax + 1], [xmin - 1, ymax + 1]])
    faces = []
    for i, plane in enumerate(fit.planes):
        cell = cell_box
        for j, other in enumerate(fit.planes):
            if i != j:
                cell = _clip(cell, plane - other, fit.centre)
                if len(cell) < 3:
                    break
        if len(cell) < 3:
            continue
        part = Polygon(cell).intersection(polygon)
        part = shapely.set_precision(part, SNAP)
        faces += [orient(p, 1.0) for p in shapely.get_parts(part) if isinstance(p, Polygon) and not p.is_empty]
    return faces


def _clip(ring: np.ndarray, difference: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The part of a convex ring where ``difference`` (a, b, c of plane_i - plane_j) is <= 0 (Sutherland-Hodgman)."""
    value = (ring[:, 0] - centre[0]) * difference[0] + (ring[:, 1] - centre[1]) * difference[1] + difference[2]
    out = []
    for k in range(len(ring)):
        a, b, va, vb = ring[k], ring[(k + 1) % len(ring)], value[k], value[(k + 1) % len(ring)]
        if va <= 0:
            out.append(a)
        if (va < 0 < vb) or (vb < 0 < va):
            out.append(a + (b - a) * (va / (va - vb)))
    return np.array(out).reshape(-1, 2)


def _with_vertices(polygon: Polygon, points: np.ndarray) -> Polygon:
    """The polygon with every point of ``points`` lying on one of its edges inserted there."""
    rings = []
    for ring in (polygon.exterior, *polygon.interiors):
        xy = np.round(np.asarray(ring.coords)[:-1, :2] / SNAP) * SNAP
        out = []
        for k in range(len(xy)):
            a, b = xy[k], xy[(k + 1) % len(xy)]
            out.append(a)
            edge = b - a
            length2 = float(edge @ edge)
            if length2 == 0:
                continue
            t = (points - a) @ edge / length2
            off = np.abs((points[:, 0] - a[0]) * edge[1] - (points[:, 1] - a[1]) * edge[0]) / np.sqrt(length2)
            inside = (t > 1e-9) & (t < 1 - 1e-9) & (off < SNAP / 2)
            out += list(points[inside][np.argsort(t[inside])])
        unique = [p for k, p in enumerate(out) if k == 0 or np.any(np.abs(p - out[k - 1]) > SNAP / 2)]
        rings.append(np.array(unique))
    return orient(Polygon(rings[0], rings[1:]), 1.0)


def _flat(polygon: Polygon) -> np.ndarray:
    return np.concatenate([np.asarray(r.coords)[:-1, :2] for r in (polygon.exterior, *polygon.interiors)])
