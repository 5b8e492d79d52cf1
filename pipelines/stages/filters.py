"""Filters on a tile's points: noise removal, ground classification, building/vegetation separation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gis.asprs import ABOVE_GROUND, GROUND, NOISE, NOISES, TERRAIN, UNCLASSIFIED
from pipelines.density import scaled, spacing_scale
from pipelines.stages.base import PointTile, Stage, positive


@dataclass
class NoiseOptions:
    neighbours: int = 8
    std_ratio: float = 3.0
    voxel: float | None = None  # m; 0 runs the test on every point; None: 1 m scaled with the density

    def __post_init__(self) -> None:
        positive("neighbours", self.neighbours)
        positive("std_ratio", self.std_ratio)
        if self.voxel is not None and self.voxel < 0:
            raise ValueError(f"option 'voxel' must be >= 0 (0: every point), not {self.voxel}")


class NoiseFilter(Stage):
    """Statistical outlier removal (open3d): isolated points are classed 7 (noise), not deleted.

    The test runs on one point per occupied ``voxel`` (the centroid of its
    points) and each point takes its voxel's verdict. A bird or a multipath
    echo is alone in its voxel, far from the others, so it is still found;
    a dense surface is not thinned into false outliers at its edges, and the
    test costs a fraction of the per-point one (see the README's figures).
    """

    Options = NoiseOptions

    def process(self, tile: PointTile) -> PointTile:
        from pipelines.algorithms.lean_open3d import o3d

        candidates = np.flatnonzero(~np.isin(tile.classification, NOISES))
        xyz = tile.xyz[candidates]
        voxel = scaled(self.options.voxel, 1.0, tile.pulse_density())
        tile.record(self.tag, voxel=voxel)
        voxel_of, representatives = _voxel_centroids(xyz, voxel)
        if len(representatives) <= self.options.neighbours:
            return tile
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(representatives))
        _, kept = cloud.remove_statistical_outlier(nb_neighbors=self.options.neighbours, std_ratio=self.options.std_ratio)
        outlier_voxels = np.ones(len(representatives), dtype=bool)
        outlier_voxels[np.asarray(kept, dtype=np.int64)] = False
        classification = tile.classification.copy()
        classification[candidates[outlier_voxels[voxel_of]]] = NOISE
        tile.classification = classification
        return tile


def _voxel_centroids(xyz: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """(voxel of each point, centroid of each occupied voxel); every point its own voxel when size is 0."""
    if size == 0 or len(xyz) == 0:
        return np.arange(len(xyz)), xyz
    import pandas as pd

    columns = [xyz[:, axis] for axis in range(3)]
    key = np.zeros(len(xyz), dtype=np.int64)
    for column in columns:
        low = column.min()
        key *= int((column.max() - low) / size) + 1
        key += ((column - low) / size).astype(np.int64)
    # factorize hashes instead of sorting: a third of np.unique's time on a tile
    voxel_of, _ = pd.factorize(key, sort=False)
    count = int(voxel_of.max()) + 1
    points = np.bincount(voxel_of, minlength=count)
    return voxel_of, np.column_stack([np.bincount(voxel_of, column, count) / points for column in columns])


@dataclass
class GroundOptions:
    mode: str = "auto"  # auto: only when the input has no ground class; always; never
    cell: float | None = None  # m; None: 1 m scaled with the density
    slope: float = 0.15
    window: float | None = None  # m; None: 18 m times the square root of the density's scale
    threshold: float = 0.5
    scalar: float = 1.25

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "always", "never"):
            raise ValueError(f"option 'mode' must be auto, always or never, not {self.mode!r}")
        for name in ("cell", "window"):
            if getattr(self, name) is not None:
                positive(name, getattr(self, name))


class GroundFilter(Stage):
    """Ground classification with SMRF (Pingel et al. 2013) when the input lacks a ground class."""

    Options = GroundOptions

    def needed(self, tile: PointTile) -> bool:
        if self.options.mode == "never":
            return False
        return self.options.mode == "always" or not np.any(tile.classification == GROUND)

    def process(self, tile: PointTile) -> PointTile:
        if not self.needed(tile):
            return tile
        from pipelines.algorithms.ground import classify_ground

        usable = ~np.isin(tile.classification, NOISES)
        o = self.options
        density = tile.pulse_density()
        # The opening needs a few cells' steps to tell a roof from a hill: with cells of s metres the window
        # grows as sqrt(s), so that it keeps 18 / sqrt(s) steps.
        window = o.window if o.window is not None else 18.0 * spacing_scale(density) ** 0.5
        cell = scaled(o.cell, 1.0, density)
        tile.record(self.tag, cell=cell, window=window)
        ground = classify_ground(tile.xyz[usable], cell=cell, slope=o.slope, window=window,
                                 elevation_threshold=o.threshold, elevation_scalar=o.scalar)
        classification = tile.classification.copy()
        classification[usable & (classification == GROUND)] = UNCLASSIFIED
        classification[np.flatnonzero(usable)[ground]] = GROUND
        tile.classification = classification
        return tile


# The classification's distances grow as the density's scale to this power, not 1: its neighbourhoods then
# hold more points on sparse tiles (15 at 0.3 pulses/m2), and the flatness allowed grows likewise (on the
# 0.3 pulses/m2 IGN tile, radius 6.3 m and 0.99 found 59 % of the buildings' points, 4 m and 0.97 91 %).
NEIGHBOURHOOD_POWER = 0.75


@dataclass
class ClassifyOptions:
    mode: str = "auto"  # auto: only when the input has no building nor vegetation class; always; never
    cell: float | None = None  # of the terrain the heights above ground are taken from; None: 1 m scaled
    min_height: float = 2.0
    # None: the reference value (IGN LiDAR HD's density) scaled with the tile's density
    radius: float | None = None  # 1.0 m: neighbourhood of a point's local geometry
    cluster_distance: float | None = None  # 1.5 m: flat points this close are one roof segment
    area_cell: float | None = None  # 0.5 m: cells on which roof areas and small objects are counted
    facade_distance: float | None = None  # 0.75 m: farthest a facade point lies from its roof, in plan
    planarity_threshold: float | None = None  # 0.99: 1 - the scattering a flat point has at most
    min_building_area: float = 20.0

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "always", "never"):
            raise ValueError(f"option 'mode' must be auto, always or never, not {self.mode!r}")
        for name in ("cell", "radius", "cluster_distance", "area_cell", "facade_distance"):
            if getattr(self, name) is not None:
                positive(name, getattr(self, name))
        if self.planarity_threshold is not None and not 0 <= self.planarity_threshold <= 1:
            raise ValueError(f"option 'planarity_threshold' must lie in [0, 1], not {self.planarity_threshold}")
        if self.min_building_area < 0:
            raise ValueError(f"option 'min_building_area' must be >= 0, not {self.min_building_area}")


class ClassifyFilter(Stage):
    """Buildings and vegetation from height above ground and local geometry (open3d), when classes are missing."""

    Options = ClassifyOptions

    def needed(self, tile: PointTile) -> bool:
        if self.options.mode == "never":
            return False
        return self.options.mode == "always" or not np.any(np.isin(tile.classification, ABOVE_GROUND))

    def process(self, tile: PointTile) -> PointTile:
        if not self.needed(tile):
            return tile
        from pipelines.algorithms.classify import classify_above_ground
        from pipelines.algorithms.ground import dtm_from_ground
        from pipelines.raster import Grid, Raster

        classification = tile.classification.copy()
        ground = np.isin(classification, TERRAIN)
        candidates = ~ground & ~np.isin(classification, NOISES)
        if ground.sum() < 3 or not candidates.any():
            return tile
        xyz = tile.xyz
        cell = scaled(self.options.cell, 1.0, tile.pulse_density())
        grid = Grid.covering((xyz[:, 0].min(), xyz[:, 1].min(), xyz[:, 0].max(), xyz[:, 1].max()), cell)
        terrain = Raster(dtm_from_ground(xyz[ground, 0], xyz[ground, 1], xyz[ground, 2], grid), grid, tile.crs.to_string())
        above = xyz[candidates, 2] - terrain.sample(xyz[candidates, 0], xyz[candidates, 1])
        o, density = self.options, tile.pulse_density()
        flat = o.planarity_threshold if o.planarity_threshold is not None else \
            1.0 - 0.01 * spacing_scale(density) ** NEIGHBOURHOOD_POWER
        used = {"cell": cell, "planarity_threshold": flat,
                "radius": scaled(o.radius, 1.0, density, NEIGHBOURHOOD_POWER),
                "cluster_distance": scaled(o.cluster_distance, 1.5, density, NEIGHBOURHOOD_POWER),
                "area_cell": scaled(o.area_cell, 0.5, density, NEIGHBOURHOOD_POWER),
                "facade_distance": scaled(o.facade_distance, 0.75, density, NEIGHBOURHOOD_POWER)}
        tile.record(self.tag, **used)
        classification[candidates] = classify_above_ground(
            xyz[candidates], np.nan_to_num(above), min_height=o.min_height, planarity_threshold=flat,
            radius=used["radius"], cluster_distance=used["cluster_distance"], cell=used["area_cell"],
            facade_distance=used["facade_distance"], min_building_area=o.min_building_area)
        tile.classification = classification
        return tile
