"""Squaring building outlines: edges regularised to the building's dominant orientation.

An outline traced from a raster of roof cells is a staircase. Its edges are
grouped into lines along or across the dominant orientation (from the
minimum rotated rectangle, refined by the length-weighted median of the edge
directions), near-right angles are snapped, short oblique steps dropped, and
outer walls moved onto the facade points when there are enough of them.
Used by :mod:`pipelines.algorithms.footprints`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely

_SQUARE_TOLERANCE_DEG = 15.0
_WALL_BAND = 1.0  # facade points this close to a squared edge (m) ...
_WALL_END = 0.5  # ... and not within this of its ends ...
_MIN_WALL_POINTS = 8  # ... at least this many ...
_WALL_POINTS_PER_M = 2.0  # ... and this many per metre of edge move it onto their median

_ALONG, _ACROSS, _OBLIQUE = 0, 1, 2  # kinds of the lines of a squared ring


@dataclass
class _Line:
    """A line of a squared ring, in the building's frame."""

    kind: int  # _ALONG or _ACROSS the dominant orientation, or _OBLIQUE
    offset: float  # y of a line along, x of a line across
    weight: float  # length of the edges it stands for
    point: np.ndarray  # a point of an oblique line ...
    direction: np.ndarray  # ... and its direction

    @classmethod
    def axis(cls, kind: int, through: np.ndarray, weight: float = 0.0) -> _Line:
        offset = float(through[1] if kind == _ALONG else through[0])
        return cls(kind, offset, weight, through, np.array([1.0, 0.0] if kind == _ALONG else [0.0, 1.0]))

    def point_direction(self) -> tuple[np.ndarray, np.ndarray]:
        if self.kind == _ALONG:
            return np.array([0.0, self.offset]), self.direction
        if self.kind == _ACROSS:
            return np.array([self.offset, 0.0]), self.direction
        return self.point, self.direction


def square(polygon: shapely.Polygon, *, tolerance_deg: float = _SQUARE_TOLERANCE_DEG, merge: float = 1.0,
           walls: np.ndarray | None = None, outline: shapely.Polygon | None = None) -> shapely.Polygon:
    """``polygon`` with its near-orthogonal edges made parallel or normal to its dominant orientation.

    The dominant orientation is that of the longest side of the minimum
    rotated rectangle of ``outline`` (by default ``polygon``; pass the
    outline before simplification, whose straight walls are still exact),
    or the mean direction of the edges of ``polygon`` when more of them
    follow it (see :func:`_dominant_angle`). Edges within ``tolerance_deg``
    of it or of its normal are snapped to it; consecutive parallel edges
    less than ``merge`` apart become one, at their length-weighted mean
    position; oblique edges shorter than ``2 * merge`` (corners cut by the
    simplification) are dropped and longer ones keep their direction; the
    vertices are the intersections of consecutive edges. When ``walls`` (an
    (n, 2) array of facade points) is given, each snapped edge with enough
    of them along it is moved onto their median. Falls back to ``polygon``
    when the result is not valid or changes the area by more than 20 %.

    Parameters
    ----------
    polygon : shapely.Polygon
        The polygon to square (holes are squared too).
    tolerance_deg : float
        Largest angle (degrees) between an edge and the dominant orientation, or its normal, to snap it.
    merge : float
        Distance (m) under which consecutive parallel edges are merged.
    walls : numpy.ndarray, optional
        Facade points of the building, to put its walls on.
    outline : shapely.Polygon, optional
        The outline ``polygon`` was simplified from, for its minimum rotated rectangle.

    Returns
    -------
    shapely.Polygon
        The squared polygon, or ``polygon`` itself when squaring fails.

    Examples
    --------

    >>> shapely.set_precision(square(shapely.Polygon([(0, 0), (10, 0), (10, 8), (0, 8.2)])), 0.01).normalize().wkt
    'POLYGON ((0 0, 0 8.1, 10 8.1, 10 0, 0 0))'
    """
    if polygon.is_empty or polygon.geom_type != "Polygon":
        return polygon
    angle = _dominant_angle(polygon, _rectangle_angle(polygon if outline is None else outline),
                            math.radians(tolerance_deg))
    centre = np.asarray(polygon.centroid.coords[0])
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    in_frame = None if walls is None else (np.asarray(walls, dtype=float).reshape(-1, 2) - centre) @ rotation
    squared, fitted = [], []
    for index, ring in enumerate([polygon.exterior, *polygon.interiors]):
        lines = _ring_lines((shapely.get_coordinates(ring)[:-1] - centre) @ rotation, math.radians(tolerance_deg),
                            merge)
        plain = _vertices(lines) if lines else None
        if plain is None:
            if index == 0:
                return polygon
            continue  # a hole too small to square is dropped
        squared.append(plain @ rotation.T + centre)
        moved = _fit_to_walls(lines, plain, in_frame) if in_frame is not None and len(in_frame) else None
        fitted.append((plain if moved is None else moved) @ rotation.T + centre)
    for rings in (fitted, squared):
        result = shapely.Polygon(rings[0], rings[1:])
        if result.is_valid and abs(result.area - polygon.area) <= 0.2 * polygon.area:
            return result
    return polygon


def _rectangle_angle(polygon: shapely.Polygon) -> float:
    """Direction (radians) of the longest side of the minimum rotated rectangle."""
    corners = shapely.get_coordinates(shapely.minimum_rotated_rectangle(polygon))
    sides = np.diff(corners[:3], axis=0)
    longest = sides[np.argmax(np.hypot(sides[:, 0], sides[:, 1]))]
    return math.atan2(longest[1], longest[0]) if np.any(longest) else 0.0


def _dominant_angle(polygon: shapely.Polygon, rectangle: float, tolerance: float) -> float:
    """The orientation (radians) to square ``polygon`` to.

    Two candidates: ``rectangle``, the direction of the minimum rotated
    rectangle, and the length-weighted mean direction of the edges modulo 90
    degrees (the better one for L- or V-shaped buildings, whose rectangle is
    askew). The candidate with more edge length within ``tolerance`` of it
    (or of its normal) wins; the mean direction is then refined by the
    length-weighted median direction of those edges (a median, so that a
    short crooked edge does not tilt long straight ones).
    """
    edges = np.vstack([np.diff(shapely.get_coordinates(ring), axis=0)
                       for ring in [polygon.exterior, *polygon.interiors]])
    length = np.hypot(edges[:, 0], edges[:, 1])
    quadrupled = np.exp(4j * np.arctan2(edges[:, 1], edges[:, 0]))  # directions modulo 90 degrees
    mean = float(np.angle(np.sum(length * quadrupled))) / 4
    best, best_share = rectangle, -1.0
    for refine, candidate in ((False, rectangle), (True, mean)):
        deviation = np.angle(quadrupled * np.exp(-4j * candidate)) / 4
        near = np.abs(deviation) <= tolerance
        share = float(length[near].sum())
        if share > best_share + 1e-9:
            best_share = share
            best = candidate + (_weighted_median(deviation[near], length[near]) if refine else 0.0)
    return best


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value at which the cumulated weight of the sorted values reaches half the total (0 when empty)."""
    if len(values) == 0:
        return 0.0
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def _ring_lines(coords: np.ndarray, tolerance: float, merge: float) -> list[_Line] | None:
    """The lines of one ring (open, in the building's frame), snapped and merged; None when degenerate."""
    edges = np.roll(coords, -1, axis=0) - coords
    length = np.hypot(edges[:, 0], edges[:, 1])
    keep = length > 1e-9
    coords, edges, length = coords[keep], edges[keep], length[keep]
    if len(coords) < 3:
        return None
    direction = np.arctan2(edges[:, 1], edges[:, 0]) % math.pi
    kind = np.where(np.minimum(direction, math.pi - direction) <= tolerance, _ALONG,
                    np.where(np.abs(direction - math.pi / 2) <= tolerance, _ACROSS, _OBLIQUE))
    middle = coords + edges / 2
    lines: list[_Line] = []
    for k in range(len(coords)):
        if kind[k] == _OBLIQUE and length[k] < 2 * merge:
            continue  # a cut corner or a step left by the simplification of the traced cells
        line = _Line(int(kind[k]), float(middle[k, 1] if kind[k] == _ALONG else middle[k, 0]), float(length[k]),
                     coords[k], edges[k])
        if lines and line.kind != _OBLIQUE and lines[-1].kind == line.kind:
            if abs(lines[-1].offset - line.offset) <= merge:
                _absorb(lines[-1], line)
                continue
            lines.append(_Line.axis(1 - line.kind, coords[k]))  # a short connector between two parallel edges
        lines.append(line)
    while len(lines) > 3 and lines[0].kind != _OBLIQUE and lines[0].kind == lines[-1].kind:
        if abs(lines[0].offset - lines[-1].offset) > merge:
            lines.append(_Line.axis(1 - lines[0].kind, lines[0].point))
            break
        _absorb(lines[0], lines.pop())
    return lines if len(lines) >= 3 else None


def _absorb(line: _Line, other: _Line) -> None:
    """Merge ``other`` into the parallel ``line``, at their length-weighted mean offset."""
    total = line.weight + other.weight
    line.offset = (line.offset * line.weight + other.offset * other.weight) / total if total > 0 else line.offset
    line.weight = total


def _vertices(lines: list[_Line]) -> np.ndarray | None:
    """Where consecutive lines meet (vertex k between line k-1 and line k); None when two are parallel."""
    vertices = []
    for previous, line in zip([lines[-1], *lines[:-1]], lines):
        if previous.kind == _ALONG and line.kind == _ACROSS:
            vertices.append((line.offset, previous.offset))
            continue
        if previous.kind == _ACROSS and line.kind == _ALONG:
            vertices.append((previous.offset, line.offset))
            continue
        p, d = previous.point_direction()
        q, e = line.point_direction()
        cross = d[0] * e[1] - d[1] * e[0]
        if abs(cross) < 1e-6 * np.hypot(*d) * np.hypot(*e):
            return None
        t = ((q[0] - p[0]) * e[1] - (q[1] - p[1]) * e[0]) / cross
        vertices.append(tuple(p + t * d))
    return np.array(vertices)


def _fit_to_walls(lines: list[_Line], vertices: np.ndarray, walls: np.ndarray) -> np.ndarray | None:
    """Vertices after moving each snapped line onto the median of the wall points along it (None if none moved)."""
    moved = False
    columns = np.ascontiguousarray(walls.T)  # x and y of the points, each read once per line
    for k, line in enumerate(lines):
        if line.kind == _OBLIQUE:
            continue
        along, across = (0, 1) if line.kind == _ALONG else (1, 0)
        low, high = sorted((vertices[k][along], vertices[(k + 1) % len(lines)][along]))
        near = ((np.abs(columns[across] - line.offset) <= _WALL_BAND)
                & (columns[along] >= low + _WALL_END) & (columns[along] <= high - _WALL_END))
        if np.count_nonzero(near) >= max(_MIN_WALL_POINTS, _WALL_POINTS_PER_M * (high - low)):
            line.offset = _median(columns[across][near])
            moved = True
    return _vertices(lines) if moved else None


def _median(values: np.ndarray) -> float:
    """The median of a small array (np.median spends more time checking its arguments than sorting)."""
    ordered = np.sort(values)
    return float((ordered[(len(ordered) - 1) // 2] + ordered[len(ordered) // 2]) / 2)
