"""Plan views of element meshes: horizontal sections as polygons, and the axis line of a door.

A floor plan is a horizontal cut: a room's outline is its space solid cut just
above its floor, a wall's the wall cut at the plan's cut height (so doors and
windows open it, as on an architect's plan). The cut of a closed mesh is a set
of closed rings; the even-odd rule turns them into polygons with holes.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon

SNAP = 1e-6  # metres: section segments are snapped to this grid before they are joined into rings


def section(vertices: np.ndarray, faces: np.ndarray, z: float):
    """The polygon(s) where the plane at height ``z`` cuts the closed mesh; None when it misses it."""
    corners = vertices[faces]  # (m, 3, 3)
    above = corners[:, :, 2] > z
    crossing = above.any(axis=1) & ~above.all(axis=1)
    if not crossing.any():
        return None
    corners, above = corners[crossing], above[crossing]
    # Each crossing triangle has two edges whose ends are on either side of the plane: one segment.
    points = []
    for a, b in ((0, 1), (1, 2), (2, 0)):
        cut = above[:, a] != above[:, b]
        p, q = corners[:, a], corners[:, b]
        t = np.where(cut, (z - p[:, 2]) / np.where(cut, q[:, 2] - p[:, 2], 1.0), np.nan)
        points.append(p[:, :2] + t[:, None] * (q[:, :2] - p[:, :2]))
    stacked = np.stack(points, axis=1)  # (k, 3 edges, 2)
    valid = ~np.isnan(stacked[:, :, 0])
    segments = stacked[valid].reshape(-1, 2, 2)  # exactly two valid edges per crossing triangle
    segments = np.round(segments / SNAP) * SNAP
    lines = shapely.linestrings(segments)
    lines = lines[shapely.length(lines) > SNAP]
    merged = shapely.line_merge(shapely.union_all(lines))  # union: noded where rings touch
    faces_found = list(shapely.get_parts(shapely.polygonize(shapely.get_parts(merged))))
    if not faces_found:
        return None
    return even_odd(faces_found)


def even_odd(faces: list[Polygon]):
    """The faces of an arrangement inside an odd number of rings (a hole's face is inside two)."""
    result = None
    for face in faces:
        ring = Polygon(face.exterior)
        result = ring if result is None else shapely.symmetric_difference(result, ring)
    return shapely.make_valid(shapely.normalize(result)) if result is not None else None


def footprint(vertices: np.ndarray, faces: np.ndarray):
    """The mesh seen from above: the union of its triangles' projections (for what no cut meets)."""
    corners = vertices[faces][:, :, :2]
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    corners = corners[np.abs(cross) > 1e-9]
    if not len(corners):
        return None
    rings = np.concatenate([corners, corners[:, :1]], axis=1)
    return shapely.union_all(shapely.polygons(rings), grid_size=SNAP)


def axis_lines(points: list[np.ndarray]) -> list[LineString | None]:
    """Per point set, the long middle line of the smallest rectangle around it seen from above (a door's width);
    None where the points are all on a line. Every set in a few vectorised calls (doors and windows by thousands).
    """
    if not points:
        return []
    owner = np.repeat(np.arange(len(points)), [len(p) for p in points])
    clouds = shapely.multipoints(np.concatenate([p[:, :2] for p in points]), indices=owner)
    rectangles = shapely.minimum_rotated_rectangle(shapely.convex_hull(clouds))
    lines: list[LineString | None] = [None] * len(points)
    flat = shapely.get_type_id(rectangles) == shapely.GeometryType.POLYGON
    if not flat.any():
        return lines
    corners = shapely.get_coordinates(shapely.get_exterior_ring(rectangles[flat])).reshape(-1, 5, 2)[:, :4]
    sides = np.linalg.norm(np.roll(corners, -1, axis=1) - corners, axis=2)
    first = np.argmax(sides[:, :2], axis=1)  # the first of the two long sides: corners i, i + 1
    rows = np.arange(len(corners))[:, None]
    a, b, c, d = (corners[rows, (first[:, None] + k) % 4][:, 0] for k in (0, 1, 3, 2))  # c, d: the opposite side
    for index, line in zip(np.flatnonzero(flat), shapely.linestrings(np.stack([(a + c) / 2, (b + d) / 2], axis=1))):
        lines[index] = line
    return lines
