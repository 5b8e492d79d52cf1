"""Raster writers: DTM, DSM, nDSM, hillshade and point density as Cloud Optimized GeoTIFFs.

Each tile writes the core window of its surface (computed with the halo);
the merge mosaics the parts into one COG per product.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipelines.stages.base import Stage, positive

if TYPE_CHECKING:  # scipy and rasterio load when a tile is processed, not when a pipeline is checked
    from pipelines.surfaces import TileSurfaces


@dataclass
class RasterOptions:
    resolution: float = 0.5
    filename: str | None = None

    def __post_init__(self) -> None:
        positive("resolution", self.resolution)


@dataclass
class HillshadeOptions(RasterOptions):
    resolution: float = 1.0
    azimuth: float = 315.0
    altitude: float = 45.0


@dataclass
class DensityOptions(RasterOptions):
    resolution: float = 1.0


class RasterWriter(Stage):
    """Base of the raster writers: ``surface`` picks the array from the tile's surfaces."""

    kind = "writer"
    product = "raster"
    Options = RasterOptions

    @property
    def resolution(self) -> float:
        return self.options.resolution

    def filename(self) -> str:
        return self.options.filename or f"{self.product}_{self.options.resolution:g}m.tif"

    @abstractmethod
    def surface(self, surfaces: TileSurfaces) -> np.ndarray:
        """The tile's array this writer writes (each raster writer picks its own)."""

    def tile_part(self, surfaces: TileSurfaces, folder: Path) -> Path:
        from pipelines.products import write_part

        data = surfaces.core(self.surface(surfaces))
        return write_part(data, surfaces.core_grid, surfaces.crs, folder / f"{self.tag}.tif")

    def layer(self) -> str:
        """The key of this product in its lineage file (a raster file holds one product)."""
        return self.tag

    def merge(self, parts: list[Path], output: Path, lineage: dict) -> Path:
        from gis.catalog.public import public_lineage
        from pipelines.products import merge_cog

        # The file is what gets served: it carries the public lineage (no folder, user or host);
        # the full one stays in the product's .lineage.json sidecar.
        tags = {"LUTECE_LINEAGE": json.dumps(public_lineage(lineage))}
        return merge_cog(parts, output / self.filename(), tags)


class DtmWriter(RasterWriter):
    product = "dtm"

    def surface(self, surfaces: TileSurfaces) -> np.ndarray:
        return surfaces.dtm


class DsmWriter(RasterWriter):
    product = "dsm"

    def surface(self, surfaces: TileSurfaces) -> np.ndarray:
        return surfaces.dsm


class NdsmWriter(RasterWriter):
    product = "ndsm"

    def surface(self, surfaces: TileSurfaces) -> np.ndarray:
        return surfaces.ndsm


class HillshadeWriter(RasterWriter):
    product = "hillshade"
    Options = HillshadeOptions

    def surface(self, surfaces: TileSurfaces) -> np.ndarray:
        from pipelines.surfaces import hillshade

        return hillshade(surfaces.dtm, surfaces.resolution, self.options.azimuth, self.options.altitude)


class DensityWriter(RasterWriter):
    product = "density"
    Options = DensityOptions
    needed_density = 0.0  # it is what shows a survey's density

    def surface(self, surfaces: TileSurfaces) -> np.ndarray:
        return surfaces.density
