"""Airborne lidar of the synthetic district, written as LAS 1.4 / LAZ.

Pulses fall uniformly at the requested density; each pulse returns from the
highest surface under it (roof, tree crown, car, shrub, water or ground),
tree crowns giving up to three returns per pulse (crown top, inside the
crown, ground). Walls get sparse facade points, a few pulses are noise (birds
above, multipath below). Classes follow ASPRS as IGN LiDAR HD uses them.

The district is produced cell by cell (100 m by default), each cell with its
own generator seeded by the seed and the cell, so memory stays bounded
whatever the district's size and a cell's points never depend on the others.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import laspy
import numpy as np
import pyproj
import shapely

from gis.asprs import (BUILDING, GROUND, HIGH_VEGETATION, LOW_VEGETATION, MEDIUM_VEGETATION, NOISE, UNCLASSIFIED,
                       WATER)
from pipelines.synthetic.scene import Scene
from pipelines.synthetic.terrain import WATER_Z

# Lambert-93 with NGF-IGN69 heights, as a compound CRS in the WKT VLR.
CRS = pyproj.CRS("EPSG:2154+5720")
HEADER_DATE = datetime.date(2026, 1, 1)  # fixed so that the same seed gives identical bytes
MANSARD_SLOPE = 2.0  # rise per metre of the steep lower part of a mansard roof
SURFACE_SIGMA = 0.03  # metres, the ranging noise on hard surfaces


@dataclass(frozen=True)
class LidarSettings:
    """How the district is scanned."""

    density: float = 10.0  # pulses per m2
    point_format: int = 6
    cell: float = 100.0
    facade_ratio: float = 0.08  # facade points per m2 of wall, per pulse per m2
    water_return_ratio: float = 0.3  # water absorbs most pulses
    noise_ratio: float = 2e-4


class SceneIndex:
    """Spatial indexes and flat arrays of the scene, built once for all cells."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        buildings = scene.buildings
        self.footprints = shapely.STRtree([b.footprint for b in buildings])
        self.eave = np.array([b.eave_z for b in buildings])
        self.top = np.array([b.top_z for b in buildings])
        self.ground = np.array([b.ground_z for b in buildings])
        self.roof_type = np.array([b.roof_type for b in buildings])
        self.facades = np.array([b.facades for b in buildings], dtype=object)
        self.ridges = np.array([b.ridge if b.ridge is not None else shapely.Point() for b in buildings], dtype=object)
        self.half_span = np.array([b.footprint.area / b.ridge.length / 2 if b.ridge is not None else 1.0 for b in buildings])
        trees = scene.trees
        self.tree_xy = np.array([(t.x, t.y) for t in trees]).reshape(-1, 2)
        self.tree_ground = np.array([t.ground_z for t in trees])
        self.tree_height = np.array([t.height for t in trees])
        self.tree_radius = np.array([t.crown_radius for t in trees])
        self.tree_base = np.array([t.crown_base for t in trees])
        self.cars = shapely.STRtree(scene.cars) if scene.cars else None
        self.shrubs = shapely.STRtree([s for s, _ in scene.shrubs]) if scene.shrubs else None
        self.shrub_height = np.array([h for _, h in scene.shrubs])
        self.segments, self.segment_building = _facade_segments(buildings)


def _facade_segments(buildings) -> tuple[np.ndarray, np.ndarray]:
    """Every straight piece of outer wall as (x1, y1, x2, y2), with its building index."""
    rows, owners = [], []
    for index, building in enumerate(buildings):
        for part in shapely.get_parts(shapely.line_merge(building.facades)) if not building.facades.is_empty else []:
            coords = shapely.get_coordinates(part)
            if len(coords) >= 2:
                rows.append(np.hstack([coords[:-1], coords[1:]]))
                owners.append(np.full(len(coords) - 1, index))
    if not rows:
        return np.empty((0, 4)), np.empty(0, dtype=int)
    return np.vstack(rows), np.concatenate(owners)


def cells(scene: Scene, cell: float) -> Iterator[tuple[int, int, tuple[float, float, float, float]]]:
    """The cells that cover the district, row by row from the south-west."""
    x0, y0 = scene.origin
    count = int(np.ceil(scene.size / cell))
    for j in range(count):
        for i in range(count):
            xmin, ymin = x0 + i * cell, y0 + j * cell
            yield i, j, (xmin, ymin, min(xmin + cell, x0 + scene.size), min(ymin + cell, y0 + scene.size))


def sample_cell(index: SceneIndex, bounds, settings: LidarSettings, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """All the points of one cell as a dict of equal-length arrays."""
    xmin, ymin, xmax, ymax = bounds
    count = rng.poisson(settings.density * (xmax - xmin) * (ymax - ymin))
    x, y = rng.uniform(xmin, xmax, count), rng.uniform(ymin, ymax, count)
    south, north = index.scene.river_banks
    in_water = (y >= south) & (y <= north)
    keep = ~in_water | (rng.random(count) < settings.water_return_ratio)
    x, y, in_water = x[keep], y[keep], in_water[keep]
    pulses = _first_surfaces(index, x, y, in_water, rng)
    parts = [_returns(index, pulses, rng), _facade_points(index, bounds, settings, rng)]
    points = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    _add_noise(points, settings.noise_ratio, rng)
    return points


def _first_surfaces(index: SceneIndex, x, y, in_water, rng) -> dict[str, np.ndarray]:
    """For each pulse: the ground height, the top surface's height and its class."""
    count = len(x)
    ground = index.scene.ground(x, y)
    z = ground + rng.normal(0.0, SURFACE_SIGMA, count)
    z[in_water] = WATER_Z + rng.normal(0.0, 0.02, in_water.sum())
    label = np.where(in_water, WATER, GROUND)
    points = shapely.points(x, y)
    roof = _max_per_point(count, *_roof_heights(index, points, x, y))
    on_roof = np.isfinite(roof)
    z[on_roof] = roof[on_roof] + rng.normal(0.0, SURFACE_SIGMA, on_roof.sum())
    label[on_roof] = BUILDING
    if index.cars is not None:
        hit = np.unique(index.cars.query(points, predicate="intersects")[0])
        hit = hit[~on_roof[hit]]
        z[hit] = ground[hit] + rng.uniform(1.3, 1.6, len(hit))
        label[hit] = UNCLASSIFIED
    crown_top, crown_bottom, crown_share = _crowns(index, x, y, count)
    shrub_top = _shrubs(index, points, ground, count, rng)
    return {"x": x, "y": y, "ground": ground, "z": z, "label": label, "crown_top": crown_top,
            "crown_bottom": crown_bottom, "crown_share": crown_share, "shrub_top": shrub_top}


def _roof_heights(index: SceneIndex, points, x, y) -> tuple[np.ndarray, np.ndarray]:
    point_of, building = index.footprints.query(points, predicate="intersects")
    heights = index.top[building].copy()
    kind = index.roof_type[building]
    mansard = kind == "mansard"
    if mansard.any():
        inset = shapely.distance(points[point_of[mansard]], index.facades[building[mansard]])
        rise = index.top[building[mansard]] - index.eave[building[mansard]]
        heights[mansard] = index.eave[building[mansard]] + np.minimum(inset * MANSARD_SLOPE, rise)
    pitched = kind == "pitched"
    if pitched.any():
        b = building[pitched]
        off_ridge = shapely.distance(points[point_of[pitched]], index.ridges[b])
        share = np.clip(1.0 - off_ridge / index.half_span[b], 0.0, 1.0)
        heights[pitched] = index.eave[b] + (index.top[b] - index.eave[b]) * share
    return point_of, heights


def _max_per_point(count: int, point_of: np.ndarray, values: np.ndarray) -> np.ndarray:
    result = np.full(count, -np.inf)
    np.maximum.at(result, point_of, values)
    return result


def _crowns(index: SceneIndex, x, y, count) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top and bottom of the highest crown over each pulse (an ellipsoid per tree).

    Trees are few and pulses many, so each tree takes its pulses from the
    x-sorted pulses by binary search instead of building a geometry per pulse.
    """
    top = np.full(count, -np.inf)
    bottom = np.full(count, np.inf)
    share = np.zeros(count)
    if not len(index.tree_radius) or not count:
        return top, bottom, share
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    tx, ty, radius = index.tree_xy[:, 0], index.tree_xy[:, 1], index.tree_radius
    near = (tx + radius >= sorted_x[0]) & (tx - radius <= sorted_x[-1]) & (ty + radius >= y.min()) & (ty - radius <= y.max())
    for tree in np.flatnonzero(near):
        lo, hi = np.searchsorted(sorted_x, [tx[tree] - radius[tree], tx[tree] + radius[tree]])
        candidates = order[lo:hi]
        off_axis = np.hypot(x[candidates] - tx[tree], y[candidates] - ty[tree]) / radius[tree]
        inside = off_axis < 1.0
        pulses, off_axis = candidates[inside], off_axis[inside]
        base = index.tree_ground[tree] + index.tree_base[tree]
        half = (index.tree_height[tree] - index.tree_base[tree]) / 2
        cap = np.sqrt(1.0 - off_axis**2) * half
        top[pulses] = np.maximum(top[pulses], base + half + cap)
        bottom[pulses] = np.minimum(bottom[pulses], base + half - cap)
        share[pulses] = np.maximum(share[pulses], 1.0 - off_axis)
    return top, bottom, share


def _shrubs(index: SceneIndex, points, ground, count, rng) -> np.ndarray:
    top = np.full(count, -np.inf)
    if index.shrubs is None:
        return top
    point_of, shrub = index.shrubs.query(points, predicate="intersects")
    np.maximum.at(top, point_of, ground[point_of] + index.shrub_height[shrub] * rng.uniform(0.6, 1.0, len(shrub)))
    return top


def _returns(index: SceneIndex, p: dict[str, np.ndarray], rng) -> dict[str, np.ndarray]:
    """Turn pulses into returns: one per pulse, up to three under tree crowns."""
    z, label, ground = p["z"].copy(), p["label"].copy(), p["ground"]
    below_z, below_label = z.copy(), label.copy()  # what the last return finds under foliage
    in_crown = np.isin(label, [GROUND, WATER]) & np.isfinite(p["crown_top"])  # quay trees overhang the river
    in_shrub = (label == GROUND) & ~in_crown & np.isfinite(p["shrub_top"])
    first = np.where(in_crown, np.maximum(p["crown_top"] - rng.exponential(0.3, len(z)), p["crown_bottom"]), z)
    first = np.where(in_shrub, p["shrub_top"], first)
    layered = in_crown | in_shrub
    label = np.where(layered, _vegetation_class(first - ground), label)
    # Inside the crown: a second return between the crown's bottom and the first return.
    second = in_crown & (rng.random(len(z)) < 0.55)
    second_z = rng.uniform(np.where(second, p["crown_bottom"], 0.0), np.where(second, first, 1.0))
    # Through the foliage to the ground, more often near the crown's edge.
    reaches_ground = (in_crown & (rng.random(len(z)) < 0.75 - 0.4 * p["crown_share"])) | (in_shrub & (rng.random(len(z)) < 0.3))
    returns = 1 + second + reaches_ground
    base = {"x": p["x"], "y": p["y"], "pulse_returns": returns}
    parts = [
        {**base, "z": np.where(layered, first, z), "classification": label, "return_number": np.ones(len(z), int)},
        _subset(base, second, second_z, _vegetation_class(second_z - ground), 2),
        _subset(base, reaches_ground, below_z, below_label, 2 + second),
    ]
    points = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    points["number_of_returns"] = points.pop("pulse_returns")
    return points


def _subset(base, mask, z, classification, return_number) -> dict[str, np.ndarray]:
    return_number = np.broadcast_to(return_number, mask.shape)
    return {"x": base["x"][mask], "y": base["y"][mask], "pulse_returns": base["pulse_returns"][mask],
            "z": z[mask], "classification": classification[mask], "return_number": return_number[mask]}


def _vegetation_class(height_above_ground: np.ndarray) -> np.ndarray:
    return np.select([height_above_ground < 0.5, height_above_ground < 1.5], [LOW_VEGETATION, MEDIUM_VEGETATION],
                     HIGH_VEGETATION)


def _facade_points(index: SceneIndex, bounds, settings: LidarSettings, rng) -> dict[str, np.ndarray]:
    """Sparse points on outer walls, for the wall pieces whose middle lies in this cell."""
    xmin, ymin, xmax, ymax = bounds
    seg = index.segments
    mid_x, mid_y = (seg[:, 0] + seg[:, 2]) / 2, (seg[:, 1] + seg[:, 3]) / 2
    mine = (mid_x >= xmin) & (mid_x < xmax) & (mid_y >= ymin) & (mid_y < ymax)
    seg, owner = seg[mine], index.segment_building[mine]
    length = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
    wall = np.clip(index.eave[owner] - index.ground[owner], 0.0, None)
    counts = rng.poisson(length * wall * settings.facade_ratio * settings.density)
    which = np.repeat(np.arange(len(seg)), counts)
    t = rng.random(len(which))
    x = seg[which, 0] + t * (seg[which, 2] - seg[which, 0]) + rng.normal(0.0, 0.03, len(which))
    y = seg[which, 1] + t * (seg[which, 3] - seg[which, 1]) + rng.normal(0.0, 0.03, len(which))
    b = owner[which]
    z = rng.uniform(index.ground[b] + 0.5, index.eave[b])
    ones = np.ones(len(which), int)
    return {"x": x, "y": y, "z": z, "classification": np.full(len(which), BUILDING),
            "return_number": ones, "number_of_returns": ones}


def _add_noise(points: dict[str, np.ndarray], ratio: float, rng) -> None:
    """Mark a few returns as noise: birds well above, multipath echoes below."""
    count = len(points["z"])
    chosen = np.flatnonzero(rng.random(count) < ratio)
    above = rng.random(len(chosen)) < 0.6
    points["z"][chosen] += np.where(above, rng.uniform(15.0, 60.0, len(chosen)), -rng.uniform(2.0, 10.0, len(chosen)))
    points["classification"][chosen] = NOISE
    points["return_number"][chosen] = 1
    points["number_of_returns"][chosen] = 1


STRIP_WIDTH, SCAN_LINE = 25.0, 0.3  # metres
INTENSITY_BY_CLASS = np.zeros(256)
INTENSITY_BY_CLASS[[GROUND, BUILDING, UNCLASSIFIED, WATER, LOW_VEGETATION, MEDIUM_VEGETATION, HIGH_VEGETATION, NOISE]] = \
    [900, 1400, 1800, 150, 700, 650, 600, 300]
COLOUR_BY_CLASS = np.zeros((256, 3))
COLOUR_BY_CLASS[[GROUND, BUILDING, UNCLASSIFIED, WATER, LOW_VEGETATION, MEDIUM_VEGETATION, HIGH_VEGETATION, NOISE]] = [
    (110, 110, 105), (135, 140, 150), (160, 40, 40), (40, 70, 90), (90, 130, 60), (80, 120, 55), (70, 110, 50),
    (255, 255, 255)]


def to_record(points: dict[str, np.ndarray], header: laspy.LasHeader, cell_id: int,
              rng: np.random.Generator) -> laspy.ScaleAwarePointRecord:
    """Fill a laspy point record in scan order, with plausible sensor fields.

    Points are ordered as a scanner records them (flight strips of 25 m, scan
    lines across them, back and forth), which is also what LAZ compresses best.
    """
    x_local = points["x"] - header.offsets[0]
    strip = (x_local // STRIP_WIDTH).astype(np.int64)
    line = (points["y"] // SCAN_LINE).astype(np.int64)
    across = (x_local % STRIP_WIDTH) * np.where(line % 2, -1.0, 1.0)
    order = np.lexsort((points["return_number"], across, line, strip))
    count = len(order)
    record = laspy.ScaleAwarePointRecord.zeros(count, header=header)
    for name in ("x", "y", "z", "classification", "return_number", "number_of_returns"):
        record[name] = points[name][order]
    strip = strip[order]
    classes = np.asarray(record.classification)
    record.intensity = np.clip(INTENSITY_BY_CLASS[classes] + rng.normal(0, 12, count), 0, 65535).astype(np.uint16)
    record.point_source_id = (strip % 60 + 1).astype(np.uint16)
    # A pulse every 10 microseconds in scan order; the returns of one pulse share its time.
    pulse = np.cumsum(np.asarray(record.return_number) == 1) - 1
    record.gps_time = 3.3e8 + cell_id * 10.0 + pulse * 1e-5
    # Whole degrees across the strip (LAS 1.4 counts in 0.006 degree steps): precise enough, and compact.
    degrees = np.round((x_local[order] % STRIP_WIDTH) / STRIP_WIDTH * 40.0 - 20.0)
    record.scan_angle = np.round(degrees / 0.006).astype(np.int16)
    if "red" in record.point_format.dimension_names:
        rgb = np.clip(COLOUR_BY_CLASS[classes] + rng.normal(0, 6, (count, 3)), 0, 255).astype(np.uint16) * 256
        record.red, record.green, record.blue = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    return record


def make_header(scene: Scene, settings: LidarSettings, with_crs: bool = True) -> laspy.LasHeader:
    """A LAS 1.4 header in Lambert-93 (+ NGF-IGN69), 1 cm scale like IGN's tiles."""
    header = laspy.LasHeader(point_format=settings.point_format, version="1.4")
    header.scales = np.array([0.01, 0.01, 0.01])
    header.offsets = np.array([np.floor(scene.origin[0] / 1000) * 1000, np.floor(scene.origin[1] / 1000) * 1000, 0.0])
    header.system_identifier = "Lutece synthetic district"
    header.generating_software = "lutece sample generate"
    header.creation_date = HEADER_DATE
    if with_crs:
        header.add_crs(CRS)
    return header


def write_district_laz(scene: Scene, path: Path, settings: LidarSettings, seed: int,
                       progress: Callable[[int], None] | None = None) -> dict[int, int]:
    """Scan the whole district into one LAZ file; return the point count per class."""
    index = SceneIndex(scene)
    header = make_header(scene, settings)
    counts = np.zeros(256, dtype=np.int64)
    with laspy.open(path, mode="w", header=header, do_compress=True) as writer:
        for i, j, bounds in cells(scene, settings.cell):
            rng = np.random.default_rng([seed, 3, i, j])
            points = sample_cell(index, bounds, settings, rng)
            record = to_record(points, writer.header, j * 1000 + i, rng)
            writer.write_points(record)
            counts += np.bincount(record.classification, minlength=256)
            if progress is not None:
                progress(len(record))
    return {int(code): int(n) for code, n in enumerate(counts) if n}
