"""The tasks of a run, each a module-level function that an executor can run anywhere.

- :func:`decode_file`: decode one lidar file into the work folder (once per file);
- :func:`process_tile`: one tile (its points plus a halo from its neighbours)
  through the filters, then every writer's part of it;
- :func:`tile_task`: :func:`process_tile` in the shape of an executor's map task.

Planning is in :mod:`pipelines.plan` and merging the parts into the products
in :mod:`pipelines.merge`; both run in the driver.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.cache import decoded_folder, tile_folder, write_tile_summary
from pipelines.executors import TaskContext
from pipelines.plan import Plan, needed_files
from pipelines.stages.base import Stage
from pipelines.stages.readers import TileJob


def decode_file(plan: Plan, job: TileJob, hashes: dict[Path, str], work: Path) -> Path:
    """Decode one file into the work folder unless an earlier run already did (same file, CRS and halo)."""
    target = decoded_folder(plan, job, hashes, work)
    if not target.exists():
        plan.reader.decode(job, plan.crs, target)
    return target


def needed_density(writer: Stage) -> float:
    """Pulses/m2 a writer's product needs: its own ``needed_density``, else one pulse per cell of its surfaces."""
    if getattr(writer, "needed_density", None) is not None:
        return float(writer.needed_density)
    return 1.0 / writer.resolution**2


def _warn_if_too_sparse(tile, writer: Stage, density: float) -> None:
    need = needed_density(writer)
    if density < need:
        product = writer.filename() if writer.filename().endswith(".tif") else f"the {writer.layer()} layer"
        tile.warn(writer.tag, f"{density:.2f} pulses/m2, below the {need:g} that {product} needs: "
                              "written all the same, from fewer points than it is made for")


def tile_lineage(plan: Plan, writer: Stage, job: TileJob, key: str, work: Path) -> dict[str, Any]:
    """The lineage of one tile's part: as a product's, its inputs narrowed to the tile's own files."""
    from pipelines.lineage import file_sha256
    from pipelines.merge import product_lineage

    # The run hashed every file before the tiles started: these come from its cache.
    hashes = {other.path: file_sha256(other.path, work / "hashes.json") for other in plan.jobs}
    lineage = product_lineage(plan, writer, hashes, key)
    files = {str(path) for path in needed_files(job)}
    lineage["inputs"] = [item for item in lineage["inputs"] if item["path"] in files]
    return lineage


def tile_task(job: TileJob, plan: Plan, keys: dict[Path, str], work: Path, *,
              needed: dict[Path, Path], context: TaskContext) -> dict[str, Any]:
    """Process one tile as a map task: ``needed`` holds its files' decoded points, by path."""
    return process_tile(plan, job, keys[job.path], needed, work, on_stage=context.tell, writer_threads=context.threads)


def process_tile(plan: Plan, job: TileJob, key: str, decoded: dict[Path, Path], work: Path,
                 on_stage: Callable[[str], None] | None = None, writer_threads: int = 1) -> dict[str, Any]:
    """Run one tile through the filters and write every writer's part; return the tile's summary.

    ``on_stage`` is told the tag of each stage as it starts (for progress).
    Writers only read the filters' points and the surfaces drawn from them,
    so ``writer_threads`` of them run at once: the native code they spend
    most of their time in (numpy, numba, GEOS, GDAL) releases the GIL.
    """
    folder = tile_folder(work, key)
    if folder.exists():
        shutil.rmtree(folder)  # the leftovers of a run killed before this tile finished
    folder.mkdir(parents=True)
    from pipelines.surfaces import TileSurfaces  # scipy: imported while the first files decode

    started = time.perf_counter()
    tile = plan.reader.assemble(job, decoded, plan.crs)
    density = tile.pulse_density()  # measured once, before the filters and the writers' threads use it
    for writer in plan.writers:
        _warn_if_too_sparse(tile, writer, density)
    values = {plan.reader.tag: tile}
    surfaces: dict[tuple[str, float], TileSurfaces] = {}
    subsets: dict[str, dict] = {}  # the point subsets of each stage's points, shared by its resolutions
    writes = []
    for stage in plan.stages[1:]:
        source = values[stage.spec.inputs[0]]
        values[stage.tag] = source  # writers pass their points on, as PDAL's do
        if stage.kind == "filter":
            if on_stage is not None:
                on_stage(stage.tag)
            values[stage.tag] = stage.process(source)
            continue
        memo = (plan.points_of(stage), stage.resolution)
        if memo not in surfaces:
            surfaces[memo] = TileSurfaces(source, stage.resolution, job.halo, subsets.setdefault(memo[0], {}))
        writes.append((stage, surfaces[memo]))

    def write(stage: Stage, tile_surfaces: TileSurfaces) -> str:
        if on_stage is not None:
            on_stage(stage.tag)
        if getattr(stage, "wants_lineage", False):  # a file per tile that carries its own lineage (writers.las)
            return str(stage.tile_part(tile_surfaces, folder, lineage=tile_lineage(plan, stage, job, key, work)))
        return str(stage.tile_part(tile_surfaces, folder))

    with ThreadPoolExecutor(max_workers=writer_threads, thread_name_prefix="lutece-writer") as pool:
        parts = dict(zip([stage.tag for stage, _ in writes], pool.map(lambda item: write(*item), writes)))
    shown = values[plan.points_of(plan.writers[0])]
    classes = np.bincount(shown.classification[shown.own_points()], minlength=256)  # each input point once
    core = shown.xyz[shown.in_core()]
    summary = {"tile": job.name, "points": int(job.point_count), "parts": parts,
               "classes": {int(c): int(n) for c, n in enumerate(classes) if n},
               "density": round(density, 3), "seconds": round(time.perf_counter() - started, 2),
               "z_range": [float(core[:, 2].min()), float(core[:, 2].max())] if len(core) else None,
               "warnings": [{"tile": job.name, **warning} for warning in tile.warnings], "used": tile.used}
    write_tile_summary(folder, summary)
    return summary
