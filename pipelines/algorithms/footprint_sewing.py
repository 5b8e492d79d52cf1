"""Join the pieces of a building that the tiles of a job cut apart.

A tile sees its neighbours' points only within the halo. A building reaching
further than the halo on both sides of a tile edge therefore comes out of
each tile as a piece cut at the halo's limit, and each tile keeps its piece
(its representative point lies in the tile's core). The two pieces overlap
over the band both tiles saw, twice the halo wide, while distinct buildings
only touch (squared outlines of attached buildings may overlap by a few
decimetres). So footprints overlapping by more than a share of the smaller
one are pieces of one building: :func:`sew_footprints` joins them.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from pipelines.algorithms.linked import linked_groups

MIN_OVERLAP = 0.2  # pieces of one building overlap by more than this share of the smaller one
_TIDY = 0.01  # metres


def sew_footprints(frame: gpd.GeoDataFrame, min_overlap: float = MIN_OVERLAP) -> gpd.GeoDataFrame:
    """The footprints with the pieces of each building joined into one.

    A joined building's polygon is the union of its pieces; its attributes
    combine theirs: ``roof_z_min`` and ``roof_z_max`` the lowest and highest,
    ``ground_z`` and ``roof_z_median`` their means weighted by the pieces'
    areas (the medians of the whole building are not known without its
    points), ``height_m`` and ``area_m2`` recomputed, ``point_count`` the sum
    less the points counted twice (in proportion to the overlap).

    Parameters
    ----------
    frame : geopandas.GeoDataFrame
        Footprints of several tiles, with the columns of
        :func:`~pipelines.algorithms.footprints.extract_footprints`.
    min_overlap : float
        Share of the smaller footprint two pieces of one building overlap by at least.
    """
    pairs = _overlapping_pairs(frame.geometry.values, min_overlap)
    if pairs is None:
        return frame
    groups = linked_groups(len(frame), *pairs)
    alone = np.zeros(len(frame), dtype=bool)
    alone[[members[0] for members in groups if len(members) == 1]] = True
    joined = [_join(frame.iloc[members]) for members in groups if len(members) > 1]
    return gpd.GeoDataFrame(pd.concat([frame[alone], *joined], ignore_index=True), crs=frame.crs)


def _overlapping_pairs(polygons: np.ndarray, min_overlap: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The pairs of footprints that are pieces of one building; None when no two overlap enough."""
    if len(polygons) < 2:
        return None
    first, second = shapely.STRtree(polygons).query(polygons, predicate="intersects")
    pairs = first < second
    first, second = first[pairs], second[pairs]
    overlap = shapely.area(shapely.intersection(polygons[first], polygons[second]))
    areas = shapely.area(polygons)
    linked = overlap > min_overlap * np.minimum(areas[first], areas[second])
    return (first[linked], second[linked]) if linked.any() else None


def _join(pieces: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One building from its pieces (see :func:`sew_footprints`)."""
    # The pieces' walls differ by millimetres where they meet: simplifying by a centimetre drops those steps.
    polygon = shapely.simplify(shapely.union_all(pieces.geometry.values), _TIDY, preserve_topology=True)
    if polygon.geom_type != "Polygon":  # pieces that overlap make one polygon; keep its main part if not
        parts = shapely.get_parts(polygon)
        polygon = parts[np.argmax(shapely.area(parts))]
    areas = shapely.area(pieces.geometry.values)
    weights = areas / areas.sum()
    row = {name: pieces[name].iloc[0] for name in pieces.columns if name != pieces.geometry.name}
    ground = pieces["ground_z"].to_numpy(dtype=float)
    known = np.isfinite(ground)
    row.update(
        ground_z=float(np.average(ground[known], weights=weights[known])) if known.any() else np.nan,
        roof_z_min=float(pieces["roof_z_min"].min()), roof_z_max=float(pieces["roof_z_max"].max()),
        roof_z_median=float(np.average(pieces["roof_z_median"].to_numpy(dtype=float), weights=weights)),
        area_m2=float(polygon.area),
        point_count=int(round(pieces["point_count"].sum() * polygon.area / areas.sum())))
    row["height_m"] = row["roof_z_max"] - row["ground_z"]
    return gpd.GeoDataFrame({name: [value] for name, value in row.items()},
                            geometry=gpd.GeoSeries([polygon], crs=pieces.crs), crs=pieces.crs)
