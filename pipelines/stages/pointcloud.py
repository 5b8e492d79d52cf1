"""``writers.las``: the classified point cloud, one LAZ 1.4 file per lidar tile, with its lineage.

An analyst checks and reuses the ground and building classes the pipeline
computed: each tile's own points (those of its file, never the halo, so no
point is written twice) are written as they leave the filters (coordinates, returns and the
pipeline's classes, point format 6) with the working CRS as a WKT VLR and the
public view of the lineage (file names and sha256 of the inputs, the chain of
stages with their options, software) as JSON in a ``LUTECE``/1 extended VLR.
The product is a folder, ``classified/`` by default, holding ``TILE.laz``.

COPC is not written yet: laspy reads COPC but writes LAZ only, and copclib
(the tests' COPC writer) leaves building the octree to its caller; a COPC is
one ``pdal translate`` away.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipelines.stages.base import Stage

if TYPE_CHECKING:
    from pipelines.surfaces import TileSurfaces

LINEAGE_USER_ID = "LUTECE"
LINEAGE_RECORD_ID = 1
SCALE = 0.001  # metres: IGN delivers centimetres; a millimetre keeps reprojected coordinates as computed


@dataclass
class LasWriterOptions:
    filename: str = "classified"  # the product folder, one TILE.laz per lidar tile
    compress: bool = True  # LAZ (lazrs); false: plain LAS
    enabled: bool = True  # false: the pipeline runs without this writer (--stage.las.enabled=false)


class LasWriter(Stage):
    """The points of each tile's core with the pipeline's classes, as LAZ with a lineage VLR."""

    kind = "writer"
    product = "pointcloud"
    wants_lineage = True  # tasks.process_tile hands tile_part the tile's lineage
    resolution = 1.0  # no surface is used; the runner groups writers by resolution
    needed_density = 0.0  # any cloud can be written
    Options = LasWriterOptions

    def filename(self) -> str:
        return self.options.filename

    def layer(self) -> str:
        return self.tag

    def tile_part(self, surfaces: TileSurfaces, folder: Path, lineage: dict | None = None) -> Path:
        tile = surfaces.tile
        suffix = ".laz" if self.options.compress else ".las"
        return write_classified(tile.subset(tile.own_points()), folder / f"{self.tag}-{tile.name}{suffix}", lineage or {})

    def merge(self, parts: list[Path], output: Path, lineage: dict) -> Path:
        """Gather the tiles' files into the product folder (hard links: no copy), replacing it in one rename."""
        target = output / self.filename()
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for part in parts:
            name = part.name.removeprefix(f"{self.tag}-")
            try:
                os.link(part, partial / name)
            except OSError:  # another file system, or links not allowed
                shutil.copyfile(part, partial / name)
        if target.exists():
            old = target.with_name(target.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            target.replace(old)
            partial.replace(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            partial.replace(target)
        return target


def write_classified(tile, path: Path, lineage: dict) -> Path:
    """Write a :class:`~pipelines.stages.base.PointTile`'s points as LAS 1.4 point format 6, atomically."""
    import laspy

    from gis.catalog.public import public_lineage

    header = laspy.LasHeader(point_format=6, version="1.4")
    header.scales = np.full(3, SCALE)
    header.offsets = np.floor(tile.xyz.min(axis=0)) if len(tile) else np.zeros(3)
    header.add_crs(tile.crs)
    record = json.dumps(public_lineage(lineage), ensure_ascii=False).encode()
    from laspy.vlrs.vlrlist import VLRList

    header.evlrs = VLRList([laspy.VLR(user_id=LINEAGE_USER_ID, record_id=LINEAGE_RECORD_ID,
                                      description="lutece lineage (JSON)", record_data=record)])
    data = laspy.LasData(header)
    data.x, data.y, data.z = tile.xyz[:, 0], tile.xyz[:, 1], tile.xyz[:, 2]
    data.classification = tile.classification
    data.return_number = np.clip(tile.return_number, 1, 15)
    data.number_of_returns = np.clip(tile.number_of_returns, 1, 15)
    partial = path.with_name(path.name + ".partial")
    data.write(partial, do_compress=path.suffix == ".laz")
    partial.replace(path)
    return path


def read_lineage(path: Path) -> dict | None:
    """The lineage a ``writers.las`` file carries (None when it has none)."""
    import laspy

    with laspy.open(path) as reader:
        for record in [*reader.header.vlrs, *(reader.header.evlrs or [])]:
            if record.user_id == LINEAGE_USER_ID and record.record_id == LINEAGE_RECORD_ID:
                return json.loads(record.record_data)
    return None
