"""Vector writers: contours, building footprints, trees and canopy as GeoPackage layers.

Each tile computes its features with the halo's points and keeps those that
belong to its core (a representative point inside it, or the part of a line
or polygon inside it); the merge joins the tiles' parts, sewing contours,
canopy and the buildings larger than the halo across tile edges, and writes
every layer of one GeoPackage at once.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path

import contourpy
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import ndimage

from gis.asprs import BUILDING, HIGH_VEGETATION
from pipelines.density import scaled, scaled_count
from pipelines.products import write_vector_part
from pipelines.stages.base import Stage, positive
from pipelines.surfaces import TileSurfaces


# A tile with this many points of the class a vector product is drawn from should give features.
EXPECTED_POINTS = 200


@dataclass
class VectorOptions:
    resolution: float = 0.5  # of the surfaces the features are drawn from
    filename: str = "layers.gpkg"
    layer: str | None = None

    def __post_init__(self) -> None:
        positive("resolution", self.resolution)


@dataclass
class ContourOptions(VectorOptions):
    resolution: float = 1.0
    interval: float = 1.0
    smoothing: float = 1.0  # Gaussian sigma in cells, so that survey noise draws no contour loops
    min_length: float = 10.0  # metres; shorter closed loops are dropped

    def __post_init__(self) -> None:
        super().__post_init__()
        positive("interval", self.interval)
        if self.smoothing < 0 or self.min_length < 0:
            raise ValueError("options 'smoothing' and 'min_length' must be >= 0")


@dataclass
class FootprintOptions(VectorOptions):
    # None: the reference value (IGN LiDAR HD's density) scaled with the tile's density (README: density)
    cluster_distance: float | None = None  # 1.5 m: DBSCAN radius of the building points
    min_points: int | None = None  # 30: DBSCAN's neighbours of a core point (fewer once the distance stops growing)
    min_area: float = 20.0  # m2: smallest footprint kept
    height_step: float = 1.0  # m: a roof height jump between two attached buildings
    simplify: float = 0.5  # m: outline simplification

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cluster_distance is not None:
            positive("cluster_distance", self.cluster_distance)
        if self.min_points is not None and self.min_points < 1:
            raise ValueError(f"option 'min_points' must be >= 1, not {self.min_points}")
        positive("height_step", self.height_step)
        if self.min_area < 0 or self.simplify < 0:
            raise ValueError("options 'min_area' and 'simplify' must be >= 0")


@dataclass
class TreeOptions(VectorOptions):
    min_height: float = 3.0  # m: lowest tree top
    smoothing: float = 0.5  # m: Gaussian smoothing of the canopy height model
    # None: 1.5 m scaled with the tile's density; tops closer than this are one tree (the variable window
    # of Popescu & Wynne is never narrower), so that sparse echoes in one crown do not make several trees
    min_spacing: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        positive("min_height", self.min_height)
        if self.smoothing < 0:
            raise ValueError(f"option 'smoothing' must be >= 0, not {self.smoothing}")
        if self.min_spacing is not None and self.min_spacing < 0:
            raise ValueError(f"option 'min_spacing' must be >= 0, not {self.min_spacing}")


class VectorWriter(Stage):
    kind = "writer"
    product = "vector"
    Options = VectorOptions

    @property
    def resolution(self) -> float:
        return self.options.resolution

    def filename(self) -> str:
        return self.options.filename

    def layer(self) -> str:
        return self.options.layer or self.product

    @abstractmethod
    def features(self, surfaces: TileSurfaces) -> gpd.GeoDataFrame:
        """The tile's features this writer writes (each vector writer makes its own)."""

    def tile_part(self, surfaces: TileSurfaces, folder: Path) -> Path:
        return write_vector_part(self.features(surfaces), folder / f"{self.tag}.gpkg")

    def sew(self, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """Join what the tiles cut apart (nothing to do by default)."""
        return frame


def _in_core(frame: gpd.GeoDataFrame, core) -> gpd.GeoDataFrame:
    xmin, ymin, xmax, ymax = core
    anchor = frame.geometry.representative_point()
    return frame[(anchor.x >= xmin) & (anchor.x < xmax) & (anchor.y >= ymin) & (anchor.y < ymax)].reset_index(drop=True)


class ContoursWriter(VectorWriter):
    """Contour lines of the DTM every ``interval`` metres (contourpy), sewn across tiles."""

    product = "contours"
    Options = ContourOptions

    def features(self, surfaces: TileSurfaces) -> gpd.GeoDataFrame:
        dtm = surfaces.dtm
        if self.options.smoothing > 0 and np.isfinite(dtm).all():
            dtm = ndimage.gaussian_filter(dtm, self.options.smoothing, mode="nearest")
        dtm = np.ma.masked_invalid(dtm)
        xs, ys = surfaces.grid.centres()
        crs = surfaces.crs
        if dtm.count() < 4:
            return gpd.GeoDataFrame({"elevation": []}, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
        interval = self.options.interval
        levels = np.arange(np.ceil(dtm.min() / interval) * interval, dtm.max() + interval / 2, interval)
        generator = contourpy.contour_generator(xs, ys, dtm, line_type=contourpy.LineType.Separate)
        lines, elevations = [], []
        for level in levels:
            for coords in generator.lines(float(level)):
                closed = len(coords) > 2 and np.allclose(coords[0], coords[-1])
                length = np.hypot(*np.diff(coords, axis=0).T).sum() if len(coords) >= 2 else 0.0
                if len(coords) >= 2 and not (closed and length < self.options.min_length):
                    lines.append(shapely.linestrings(coords))
                    elevations.append(round(float(level), 3))
        clipped = shapely.clip_by_rect(np.array(lines, dtype=object), *surfaces.tile.core)
        frame = gpd.GeoDataFrame({"elevation": elevations}, geometry=clipped, crs=crs)
        return frame[~frame.geometry.is_empty].explode(ignore_index=True)

    def sew(self, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        if frame.empty:
            return frame
        merged = frame.dissolve(by="elevation", as_index=False)
        merged["geometry"] = shapely.line_merge(merged.geometry.values)
        merged = merged.explode(ignore_index=True)
        merged["length_m"] = merged.geometry.length.round(2)
        return merged


class FootprintsWriter(VectorWriter):
    """Building footprints from the building points, with ground and roof heights."""

    product = "footprints"
    Options = FootprintOptions
    needed_density = 1.0  # pulses/m2: outlines to about a metre

    def features(self, surfaces: TileSurfaces) -> gpd.GeoDataFrame:
        from pipelines.algorithms.footprints import extract_footprints

        tile, o = surfaces.tile, self.options
        density = tile.pulse_density()
        building = tile.classification == BUILDING
        distance, least = scaled(o.cluster_distance, 1.5, density), scaled_count(o.min_points, 30, density)
        tile.record(self.tag, cluster_distance=distance, min_points=least)
        frame = extract_footprints(tile.xyz[building], surfaces.dtm_raster, crs=surfaces.crs,
                                   cluster_distance=distance, min_points=least, min_area=o.min_area,
                                   height_step=o.height_step, simplify=o.simplify)
        frame = _in_core(frame, tile.core)
        expected = np.count_nonzero(building & tile.in_core())
        if frame.empty and expected >= EXPECTED_POINTS:
            tile.warn(self.tag, f"no footprint although {expected:,} points of the tile are building-class; "
                                "check the building class or lower cluster_distance / min_points")
        return frame

    def sew(self, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """Join the pieces of the buildings reaching further than the halo across a tile edge."""
        from pipelines.algorithms.footprint_sewing import sew_footprints

        return sew_footprints(frame)


class TreesWriter(VectorWriter):
    """Tree tops with height and crown radius, from the canopy height model."""

    product = "trees"
    Options = TreeOptions
    needed_density = 2.0  # pulses/m2: a crown of a few metres needs several echoes

    def features(self, surfaces: TileSurfaces) -> gpd.GeoDataFrame:
        from pipelines.algorithms.trees import detect_trees, popescu_deciduous_window

        tile, o = surfaces.tile, self.options
        spacing = scaled(o.min_spacing, 1.5, tile.pulse_density())
        tile.record(self.tag, min_spacing=spacing)
        frame = _in_core(detect_trees(surfaces.raster(surfaces.chm), crs=surfaces.crs, min_height=o.min_height,
                                      smoothing=o.smoothing,
                                      window=lambda h: np.maximum(popescu_deciduous_window(h), spacing)), tile.core)
        expected = np.count_nonzero((tile.classification == HIGH_VEGETATION) & tile.in_core())
        if frame.empty and expected >= EXPECTED_POINTS:
            tile.warn(self.tag, f"no tree although {expected:,} points of the tile are high vegetation")
        return frame

    def sew(self, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """One tree where the cores of two tiles overlap (flight strips; tiles reprojected into a rotated CRS).

        Both tiles see the same points there, on the same grid lattice, so they find the same top.
        """
        if frame.empty:
            return frame
        spot = pd.Series(list(zip(np.round(frame.geometry.x, 2), np.round(frame.geometry.y, 2))), index=frame.index)
        return frame[~spot.duplicated()].reset_index(drop=True)


class CanopyWriter(VectorWriter):
    """Canopy cover polygons, cut at the tile's core and dissolved across tiles."""

    product = "canopy"

    def features(self, surfaces: TileSurfaces) -> gpd.GeoDataFrame:
        from pipelines.algorithms.trees import canopy_polygons

        frame = canopy_polygons(surfaces.raster(surfaces.chm), crs=surfaces.crs)
        frame["geometry"] = shapely.clip_by_rect(frame.geometry.values, *surfaces.tile.core)
        return frame[~frame.geometry.is_empty].reset_index(drop=True)

    def sew(self, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        if frame.empty:
            return frame
        parts = _dissolve_overlapping(shapely.buffer(frame.geometry.values, 0.01))
        return gpd.GeoDataFrame({"area_m2": np.round(shapely.area(parts), 2)}, geometry=parts, crs=frame.crs)


def _dissolve_overlapping(polygons: np.ndarray) -> np.ndarray:
    """The parts of the union of ``polygons``, uniting only those that intersect (those cut by tile edges).

    What ``get_parts(union_all(polygons))`` gives, 7x faster on a district's
    canopy, where most polygons lie inside one tile and intersect no other.
    """
    from pipelines.algorithms.linked import linked_groups

    members = linked_groups(len(polygons), *shapely.STRtree(polygons).query(polygons, predicate="intersects"))
    return np.concatenate([shapely.get_parts(shapely.union_all(polygons[m])) if len(m) > 1 else polygons[m]
                           for m in members])
