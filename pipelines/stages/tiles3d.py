"""``writers.3dtiles``: a point-cloud tileset (3D Tiles) of the job's lidar files.

Unlike the raster and vector writers, it does not take a tile's points with a
halo: each lidar file becomes one subtree of the tileset (``tiles.job``),
converted on the pipeline's executor, and the subtrees are joined under one
root tileset (:mod:`pipelines.tiles3d` drives it). Options are those of
``lutece tiles pointcloud``; nothing is read or checked on disk before the run
but the option values.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.stages.base import Stage


@dataclass
class Tiles3dOptions:
    product: str = "full"  # full | streets | terrain
    spec: str = "1.1"  # 1.1: glTF content; 1.0: pnts
    streets: str | None = None  # vector file of street centrelines (product streets)
    streets_layer: str = "streets"
    width_field: str = "width_m"
    margin: float = 2.0  # metres added to each side of a street corridor
    spacing: float = 1.0  # terrain: one point per cell of this size
    max_points: int = 50_000  # most points in one tile
    heights: str = "orthometric"  # orthometric (the geoid is added) | ellipsoidal
    geoid: str | None = None  # geoid grid (default: EGM96 from proj-data)
    filename: str | None = None  # the tileset folder in the output (default: the stage's tag)

    def __post_init__(self) -> None:
        self.tiler(crs_in=None)  # refuses bad values now, with the stage's tag added by build_options

    def tiler(self, crs_in: str | None):
        from tiles.job import TilerSettings
        from tiles.products import ProductOptions

        return TilerSettings(
            product=ProductOptions(product=self.product, streets=self.streets, streets_layer=self.streets_layer,
                                   width_field=self.width_field, margin=self.margin, spacing=self.spacing),
            spec=self.spec, max_points=self.max_points, heights=self.heights, geoid=self.geoid, crs_in=crs_in)


class Tiles3dWriter(Stage):
    kind = "writer"
    Options = Tiles3dOptions
    whole_files = True  # converts each lidar file whole, not tiles with a halo (see pipelines.tiles3d)

    def filename(self) -> str:
        return self.options.filename or self.tag

    def layer(self) -> str:
        return self.tag
