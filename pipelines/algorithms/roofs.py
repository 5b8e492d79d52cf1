"""Building shells from footprints and classified lidar: LoD1.2 prisms and LoD1.3 height parts.

For each footprint:

- ground: a plane fitted to the ground and water points of the box ``ground_radius`` around the footprint
  (the lidar sees no ground under a roof), evaluated at the footprint's centroid, i.e. the terrain under
  the building as a DTM would give it;
- roof points: the building-class points inside the footprint shrunk by ``edge_margin`` (walls and eaves
  of neighbours left out); roof heights min/median/max are their 2nd, 50th and 98th percentiles (robust
  to a stray echo);
- LoD1.2: one prism from the ground to the ``roof_percentile`` of the roof points (3DBAG's choice: 70);
- LoD1.3: the footprint split where the roof steps: the roof points' heights on a grid of ``cell``
  metres, neighbouring cells joined while their heights differ by less than ``step``; parts smaller than
  ``min_part_area`` go to the nearest large one; each part a prism at its own percentile.

A footprint with fewer than ``min_points`` roof points stays at LoD0 with the reason. A footprint that
disagrees with the lidar (shifted, missing a part: :mod:`footprint_check`) is reported in its attributes,
never moved. LoD2.2: roof planes (:mod:`roof_planes`) give the roof type
and the RMSE of the roof points to the planar roof they make, and :mod:`lod22` fits them to the footprint
with walls down to the ground; a shell that is not closed and oriented outwards, or a roof below the
ground, leaves the building at LoD1.3 with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Polygon
from shapely.geometry.polygon import orient

from gis.errors import InputError
from pipelines.algorithms.footprint_batch import check_batch
from pipelines.algorithms.footprint_check import (EDGE, CheckOptions, CheckShapes, FootprintCheck, check_footprint,
                                                  check_shapes, grown, no_points_check, unchecked)
from pipelines.algorithms.roof_batch import PointIndex, ground_heights, in_boxes, percentiles, split_points
from pipelines.algorithms.roof_planes import fit_roof
from pipelines.algorithms.shells import Building, Prism, crossing_prisms, self_intersections

NEAR = 1.5  # metres: building points read this much beyond the checks' margin and shift (a point's reach
# up to it, i.e. 1.1 points/m2 or more, needs no second read)


@dataclass(frozen=True)
class RoofOptions:
    """The reconstruction's parameters (each a ``filters.buildings`` option)."""

    roof_percentile: float = 70.0  # LoD1.2/1.3 roof height: this percentile of the roof points
    ground_radius: float = 15.0  # metres around the footprint where ground points are taken
    edge_margin: float = 0.5  # metres: the footprint shrunk by this before taking roof points
    min_points: int = 10  # fewer roof points: the building stays at LoD0
    step: float = 2.0  # metres: a roof height step this large splits the footprint (LoD1.3)
    cell: float = 1.0  # metres: the grid on which roof steps are found
    min_part_area: float = 20.0  # m2: smaller LoD1.3 parts join their nearest large neighbour
    min_coverage: float = 0.8  # share of the footprint's cells with building points, below which it is reported
    check_margin: float = 3.0  # metres around the footprint where building points outside it are reported
    max_shift: float = 3.0  # metres: the largest shift of a footprint looked for
    shift_gain: float = 0.03  # a shift is reported when it puts this much more of the footprint on its points
    partial_share: float = 0.1  # building points outside the footprint on this share of its area: a part missing
    check_footprints: bool = True  # false: no footprint check (about 0.45 ms of CPU per building, 40 % of LoD1.2)
    max_rmse: float = 0.5  # metres: roof planes fitting the roof points worse than this give no LoD2.2
    lod: str | float = "2.2"  # the highest LoD to build: 1.2, 1.3 or 2.2

    def __post_init__(self) -> None:
        if not 0 <= self.roof_percentile <= 100:
            raise ValueError(f"option 'roof_percentile' must be within 0..100, not {self.roof_percentile}")
        for name in ("ground_radius", "step", "cell", "min_part_area", "max_rmse", "check_margin", "max_shift",
                     "shift_gain", "partial_share"):
            if not getattr(self, name) > 0:
                raise ValueError(f"option '{name}' must be > 0, not {getattr(self, name)}")
        object.__setattr__(self, "lod", str(self.lod))  # 1.2 written as a number in YAML
        if self.lod not in ("1.2", "1.3", "2.2"):
            raise ValueError(f"option 'lod' must be 1.2, 1.3 or 2.2, not {self.lod}")
        if self.edge_margin < 0 or self.min_points < 1 or not 0 <= self.min_coverage <= 1:
            raise ValueError("options 'edge_margin' >= 0, 'min_points' >= 1 and 'min_coverage' within 0..1")

    def check_options(self) -> CheckOptions:
        return CheckOptions(self.check_margin, self.max_shift, self.shift_gain, self.partial_share, self.min_coverage)


def reconstruct(footprints: gpd.GeoDataFrame, xyz: np.ndarray, classification: np.ndarray, id_column: str | None,
                options: RoofOptions, survey_date: str | None = None) -> list[Building]:
    """Reconstruct every footprint (already in the points' CRS and valid) from the classified points."""
    return reconstruct_chunk(footprint_jobs(footprints, id_column, options), point_index(xyz, classification),
                             options, survey_date)


def footprint_jobs(footprints: gpd.GeoDataFrame, id_column: str | None,
                   options: RoofOptions) -> list[tuple[str, Polygon, np.ndarray]]:
    """Each footprint's identifier, geometry and neighbouring footprints grown by the checks' EDGE (those
    its checks look at), found by one query of a spatial index for all footprints."""
    geometries = footprints.geometry.to_numpy()
    reach = max(options.check_margin, options.max_shift) + EDGE + 10.0  # + a sparse lidar's point reach
    bounds = shapely.bounds(geometries)
    boxes = shapely.box(bounds[:, 0] - reach, bounds[:, 1] - reach, bounds[:, 2] + reach, bounds[:, 3] + reach)
    row, near = shapely.STRtree(geometries).query(boxes)
    order = np.lexsort((near, row))  # by footprint, its neighbours in the layer's order
    row, near = row[order], near[order]
    keep = row != near
    edges = grown(geometries, EDGE)
    shapely.prepare(edges)
    neighbours = np.split(edges[near[keep]], np.cumsum(np.bincount(row[keep], minlength=len(geometries)))[:-1])
    identifiers = ([str(value) for value in footprints[id_column].tolist()] if id_column
                   else [f"building-{row}" for row in range(len(geometries))])
    return list(zip(identifiers, geometries, neighbours))


def point_index(xyz: np.ndarray, classification: np.ndarray) -> PointIndex:
    """The job's ground and building points, indexed for the footprints' queries (shared by every chunk)."""
    return PointIndex(xyz, classification)


def reconstruct_chunk(jobs: list[tuple[str, Polygon, np.ndarray]], points: PointIndex, options: RoofOptions,
                      survey_date: str | None = None) -> list[Building]:
    """The buildings of ``jobs`` (from :func:`footprint_jobs`), in their order: each depends on its job and
    the points alone, so chunks of the jobs reconstructed apart and joined give the same buildings. The
    footprints' buffers, points, ground planes and roof heights are made for a batch of footprints at once
    (shapely's and numpy's vectorised calls; :mod:`roof_batch`)."""
    buildings = []
    for start in range(0, len(jobs), BATCH):
        buildings.extend(_batch(jobs[start:start + BATCH], points, options, survey_date))
    return buildings


BATCH = 500  # footprints whose points are gathered at once (a few tens of MB of candidates)


def _batch(jobs, points: PointIndex, options: RoofOptions, survey_date: str | None) -> list[Building]:
    parts = [[orient(p, 1.0) for p in getattr(footprint, "geoms", [footprint])] for _, footprint, _ in jobs]
    oriented = np.empty(len(jobs), dtype=object)
    oriented[:] = [shapely.MultiPolygon(p) if len(p) > 1 else p[0] for p in parts]
    inner = shapely.buffer(oriented, -options.edge_margin, quad_segs=16)
    shapely.prepare(inner)  # each tested against its roof's points
    shapes = check_shapes(oriented, options.check_margin) if options.check_footprints else [None] * len(jobs)
    found, (near, owner, on_roof, fetched) = _points_of(oriented, inner, points, options)
    checked = [None] * len(jobs)
    if options.check_footprints:  # the plain checks for the whole batch, the others footprint by footprint
        density = np.bincount(owner[on_roof], minlength=len(jobs)) / np.maximum(shapely.area(inner), 1e-9)
        checked = check_batch(oriented, shapes, [others for _, _, others in jobs], near, owner, on_roof, fetched,
                              density, options.check_options())
    return [_one(_Footprint(identifier, polygons, footprint, roof_area, checks, others), near, check, points,
                 options, survey_date)
            for (identifier, _, others), polygons, footprint, roof_area, checks, near, check
            in zip(jobs, parts, oriented, inner, shapes, found, checked)]


class _Points(NamedTuple):
    """What :func:`_one` needs of the points around one footprint."""

    ground: float  # the terrain's height under it (NaN: no ground point near)
    near: np.ndarray  # the building points of the box ``fetched``
    on_roof: np.ndarray  # which of them are roof points (inside the footprint shrunk by edge_margin)
    fetched: tuple  # the box the building points were read from
    heights: np.ndarray  # the roof points' 2nd, 50th, 98th and roof_percentile-th percentiles


def _points_of(footprints: np.ndarray, inner: np.ndarray, points: PointIndex,
               options: RoofOptions) -> tuple[list[_Points], tuple]:
    """For each footprint, its ground height (a plane through the ground points of the box ground_radius
    around it: none lie under the roof) and its building points: those around it read once for the roof
    and for the checks, which look up to check_margin or max_shift and a point's reach around it; and those
    points joined (points, owners, on the roof, the boxes they were read from)."""
    count = len(footprints)
    bounds = shapely.bounds(footprints)
    radius = options.ground_radius
    ground, owner = points.in_boxes(bounds + [-radius, -radius, radius, radius], "terrain")
    centres = shapely.get_coordinates(shapely.centroid(footprints))
    heights = ground_heights(ground, owner, centres)
    grow = max(options.check_margin, options.max_shift) + NEAR
    inner_bounds = shapely.bounds(inner)
    fetched = bounds + [-grow, -grow, grow, grow] if options.check_footprints else inner_bounds.copy()
    empty = shapely.is_empty(inner)  # a footprint thinner than twice edge_margin: no roof point
    fetched[empty] = bounds[empty]
    near, owner = points.in_boxes(fetched, "building")
    near, owner = near[~empty[owner]], owner[~empty[owner]]
    on_roof = in_boxes(near, inner_bounds[owner])
    on_roof[on_roof] = shapely.contains_xy(inner[owner[on_roof]], near[on_roof, 0], near[on_roof, 1])
    roof_heights = percentiles(near[on_roof, 2], owner[on_roof], count, [2, 50, 98, options.roof_percentile])
    found = [_Points(float(g), n, r, tuple(box), h) for g, n, r, box, h
             in zip(heights, split_points(near, owner, count), split_points(on_roof, owner, count), fetched.tolist(),
                    roof_heights)]
    return found, (near, owner, on_roof, fetched)


class _Footprint(NamedTuple):
    """One footprint as :func:`_one` reconstructs it."""

    identifier: str
    polygons: list[Polygon]  # its parts, exterior rings counter-clockwise
    shape: Polygon | shapely.MultiPolygon  # those parts as one geometry
    inner: Polygon  # shrunk by edge_margin: where the roof points are taken
    checks: CheckShapes | None  # what the footprint checks need of it (None: not checked)
    others: np.ndarray  # the neighbouring footprints grown by EDGE


def in_bounds(points: np.ndarray, bounds) -> np.ndarray:
    """Which points lie inside the box (xmin, ymin, xmax, ymax), borders included."""
    xmin, ymin, xmax, ymax = bounds
    x, y = points[:, 0], points[:, 1]
    return (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)


def _contains(bounds, box) -> bool:
    return box[0] <= bounds[0] and box[1] <= bounds[1] and bounds[2] <= box[2] and bounds[3] <= box[3]


def _one(job: _Footprint, found: _Points, check: FootprintCheck | None, points: PointIndex, options: RoofOptions,
         survey_date: str | None) -> Building:
    polygons, footprint, inner = job.polygons, job.shape, job.inner
    attributes = {"id": job.identifier, "footprint_area": footprint.area, "lidar_date": survey_date or ""}
    near, on_roof, fetched, ground = found.near, found.on_roof, found.fetched, found.ground
    roof = near[on_roof]
    area_inner = max(inner.area, 1e-9)
    attributes.update(ground=ground, point_count=len(roof), point_density=len(roof) / area_inner)
    building = Building(attributes, footprint)
    if job.checks is None:
        attributes.update(unchecked())
    elif len(roof) and check is not None:  # checked with its batch
        attributes.update(check.attributes(options.min_coverage))
    elif len(roof):
        def building_points_in(box):  # from the points read above when the box lies within them, with
            # those on the roof (inside the footprint shrunk by edge_margin)
            if not _contains(box, fetched):
                read = points.in_box(box, "building")
                return read, np.zeros(len(read), dtype=bool)
            keep = in_bounds(near, box)
            return near[keep], on_roof[keep]

        checked = check_footprint(footprint, job.checks, job.others, building_points_in, len(roof) / area_inner,
                                  options.check_options())
        attributes.update(checked.attributes(options.min_coverage))
    else:
        attributes.update(no_points_check())
    if len(roof) < options.min_points or np.isnan(ground):
        why = (f"{len(roof)} roof points in the footprint (at least {options.min_points} needed)"
               if len(roof) < options.min_points else f"no ground point within {options.ground_radius} m")
        attributes.update(lod="0", lod_reason=f"LoD0: {why}", roof_min=np.nan, roof_median=np.nan, roof_max=np.nan,
                          height=np.nan, volume=np.nan, roof_type="unknown", rmse=np.nan, roof_planes=0, parts=0)
        return building
    roof_min, roof_median, roof_max, top = (float(h) for h in found.heights)
    building.lod12 = [Prism(p, ground, top) for p in polygons]
    if options.lod == "1.2":  # asked for prisms only: LoD1.3 is the same prism, no roof plane is looked for
        building.lod13, fit = building.lod12, None
    else:
        building.lod13 = _height_parts(polygons, roof, ground, options)
        fit = fit_roof(roof) if options.lod == "2.2" else None
    # The LoD1.2 prisms are not checked: the footprints were validated (check_footprints), and a valid
    # polygon's prism cannot cross itself (its triangles tile the polygon, its walls follow rings that do
    # not cross); the LoD1.3 parts, cut from a raster, and the LoD2.2 shells are.
    split_crossing = crossing_prisms(building.lod13) if building.lod13 is not building.lod12 else None
    if split_crossing is not None:  # the split's parts fall back to the LoD1.2 prism, which is sound
        building.lod13 = building.lod12
    if options.lod != "2.2":
        building.lod22, why_not = None, f"not asked for (option lod: {options.lod})"
    elif fit is not None and fit.rmse > options.max_rmse:
        building.lod22, why_not = None, (f"the roof planes fit the roof points with an RMSE of {fit.rmse:.2f} m, "
                                         f"above max_rmse {options.max_rmse} m (a roof shape they do not model)")
    else:
        building.lod22, why_not = _lod22(polygons, fit, ground)
    if building.lod22 is not None:
        lod, reason, volume = "2.2", "LoD2.2 is the highest LoD built", closed_volume(*building.lod22[:2])
    elif options.lod == "1.2":
        lod, reason, volume = "1.2", f"LoD1.3 and LoD2.2 {why_not}", sum(p.volume for p in building.lod12)
    elif options.lod == "1.3":
        lod, reason, volume = "1.3", f"LoD2.2 {why_not}", sum(p.volume for p in building.lod13)
    else:
        lod, reason, volume = "1.3", f"LoD2.2 failed: {why_not}", sum(p.volume for p in building.lod13)
    if split_crossing is not None:
        reason += f"; LoD1.3 is the LoD1.2 prism: its split {split_crossing.removeprefix('a prism')}"
    attributes.update(lod=lod, lod_reason=reason, roof_min=roof_min, roof_median=roof_median,
                      roof_max=roof_max, height=top - ground, volume=volume,
                      roof_type="unknown" if fit is None else fit.roof_type, rmse=np.nan if fit is None else fit.rmse,
                      roof_planes=0 if fit is None else len(fit.planes), parts=len(building.lod13))
    return building


def _lod22(polygons: list[Polygon], fit, ground: float):
    """The LoD2.2 shell of every polygon of the footprint joined, or (None, why not)."""
    from pipelines.algorithms.lod22 import lod22_shell

    if fit is None:
        return None, "no roof plane holds enough roof points"
    vertices, faces, kinds, offset = [], [], [], 0
    for polygon in polygons:
        try:
            v, f, k = lod22_shell(polygon, fit, ground)
        except (ValueError, KeyError, IndexError, shapely.errors.GEOSException) as exc:
            return None, f"the roof planes cannot be fitted to the footprint ({exc})"
        problem = shell_problem(v, f)
        crossings = self_intersections(v, f) if problem is None else 0
        if crossings:  # a roof crossing its floor or a wall folding over: a shell no solid has
            problem = f"the shell intersects itself ({crossings} pairs of triangles cross)"
        elif problem is None and v[:, 2].min() < ground:
            problem = "the roof planes dip below the ground"
        if problem is not None:
            return None, problem
        vertices.append(v)
        faces.append(f + offset)
        kinds.append(k)
        offset += len(v)
    return (np.concatenate(vertices), np.concatenate(faces), np.concatenate(kinds)), None


def shell_problem(vertices: np.ndarray, faces: np.ndarray) -> str | None:
    """Why a triangle mesh is not a closed shell oriented outwards (each edge once each way, volume > 0)."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    if (edges[:, 0] == edges[:, 1]).any():
        return "a degenerate triangle"
    directed, counts = np.unique(edges, axis=0, return_counts=True)
    if (counts > 1).any():
        return "an edge used twice in one direction (inconsistent winding or non-manifold)"
    reverse = np.unique(edges[:, ::-1], axis=0)
    if len(directed) != len(reverse) or not np.array_equal(directed, np.unique(np.concatenate([directed, reverse]), axis=0)):
        return "an open edge (the shell is not closed)"
    if closed_volume(vertices, faces) <= 0:
        return "the shell is oriented inwards"
    return None


def closed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """The signed volume of a closed triangle mesh (divergence theorem), positive when oriented outwards."""
    centred = vertices - vertices.mean(axis=0)
    a, b, c = (centred[faces[:, i]] for i in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6)


def _height_parts(polygons: list[Polygon], roof: np.ndarray, ground: float, options: RoofOptions) -> list[Prism]:
    """LoD1.3: the footprint cut where the roof steps by ``step`` or more; one prism per part."""
    from rasterio import features, transform
    from scipy import ndimage
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    footprint = shapely.MultiPolygon(polygons) if len(polygons) > 1 else polygons[0]
    cell = options.cell
    xmin, ymin, xmax, ymax = footprint.bounds
    width, height = int(np.ceil((xmax - xmin) / cell)) + 1, int(np.ceil((ymax - ymin) / cell)) + 1
    col = np.clip(((roof[:, 0] - xmin) / cell).astype(int), 0, width - 1)
    row = np.clip(((ymax - roof[:, 1]) / cell).astype(int), 0, height - 1)
    flat = row * width + col
    sums = np.bincount(flat, roof[:, 2], width * height)
    counts = np.bincount(flat, minlength=width * height)
    surface = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan).reshape(height, width)
    filled = ~np.isnan(surface)
    # cells joined to their right and lower neighbours when both hold points within `step` of each other
    index = np.arange(width * height).reshape(height, width)
    edges = []
    for a, b, za, zb in ((index[:, :-1], index[:, 1:], surface[:, :-1], surface[:, 1:]),
                         (index[:-1], index[1:], surface[:-1], surface[1:])):
        joined = ~np.isnan(za) & ~np.isnan(zb) & (np.abs(za - zb) < options.step)
        edges.append((a[joined], b[joined]))
    source = np.concatenate([e[0] for e in edges])
    target = np.concatenate([e[1] for e in edges])
    graph = coo_matrix((np.ones(len(source)), (source, target)), shape=(width * height,) * 2)
    _, labels = connected_components(graph, directed=False)
    labels = labels.reshape(height, width)
    sizes = np.bincount(labels[filled], minlength=labels.max() + 1) * cell * cell
    large = filled & (sizes[labels] >= options.min_part_area)
    if not large.any():
        return [Prism(p, ground, float(np.percentile(roof[:, 2], options.roof_percentile))) for p in polygons]
    # every other cell takes the label of the nearest cell of a large part
    _, (near_row, near_col) = ndimage.distance_transform_edt(~large, return_indices=True)
    labels = labels[near_row, near_col].astype(np.int32)
    if len(np.unique(labels)) == 1:
        return [Prism(p, ground, float(np.percentile(roof[:, 2], options.roof_percentile))) for p in polygons]
    affine = transform.from_origin(xmin, ymax, cell, cell)
    point_label = labels[row, col]
    prisms = []
    for shape, value in features.shapes(labels, transform=affine):
        part = shapely.geometry.shape(shape).intersection(footprint)
        z = roof[point_label == value, 2]
        top = float(np.percentile(z, options.roof_percentile)) if len(z) else float(np.percentile(roof[:, 2], 50))
        for piece in getattr(part, "geoms", [part]):
            if isinstance(piece, Polygon) and piece.area > 0.5:
                prisms.append(Prism(orient(shapely.remove_repeated_points(piece, 1e-3), 1.0), ground, top))
    return prisms


def attribute_frame(buildings: list[Building], crs) -> gpd.GeoDataFrame:
    """The 2D layer: one footprint per building with every attribute."""
    rows = [b.attributes for b in buildings]
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=[b.footprint for b in buildings], crs=crs)


def check_footprints(footprints: gpd.GeoDataFrame, points_crs, source: str) -> gpd.GeoDataFrame:
    """Footprints in the points' CRS, refusing an empty layer, a layer without CRS and invalid polygons."""
    if len(footprints) == 0:
        raise InputError(f"{source}: the footprints layer is empty; give a layer with building footprints")
    if footprints.crs is None:
        raise InputError(f"{source}: the footprints layer has no CRS; assign one (e.g. ogr2ogr -a_srs EPSG:2154)")
    if not footprints.crs.equals(points_crs):
        footprints = footprints.to_crs(points_crs)
    kinds = set(footprints.geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise InputError(f"{source}: footprints must be polygons, not {', '.join(sorted(kinds - {'Polygon', 'MultiPolygon'}))}")
    invalid = ~footprints.is_valid
    if invalid.any():
        first = footprints.index[invalid][0]
        reason = shapely.is_valid_reason(footprints.geometry[invalid].iloc[0])
        raise InputError(f"{source}: {int(invalid.sum())} footprint(s) are invalid, the first (feature {first}): "
                         f"{reason}; repair them (e.g. ST_MakeValid, QGIS 'Fix geometries') and run again")
    return footprints
