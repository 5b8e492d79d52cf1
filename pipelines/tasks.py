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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.cache import decoded_folder, tile_folder, write_tile_summary
from pipelines.executors import TaskContext
from pipelines.plan import Plan
from pipelines.stages.base import Stage
from pipelines.stages.readers import TileJob


def decode_file(plan: Plan, job: TileJob, hashes: dict[Path, str], work: Path) -> Path:
    """Decode one file into the work folder unless an earlier run already did (same file, CRS and halo)."""
    target = decoded_folder(plan, job, hashes, work)
    if not target.exists():
        plan.reader.decode(job, plan.crs, target)
    return target


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

    values = {plan.reader.tag: plan.reader.assemble(job, decoded, plan.crs)}
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
        return str(stage.tile_part(tile_surfaces, folder))

    with ThreadPoolExecutor(max_workers=writer_threads, thread_name_prefix="lutece-writer") as pool:
        parts = dict(zip([stage.tag for stage, _ in writes], pool.map(lambda item: write(*item), writes)))
    shown = values[plan.points_of(plan.writers[0])]
    classes = np.bincount(shown.classification[shown.in_core()], minlength=256)
    summary = {"tile": job.name, "points": int(job.point_count), "parts": parts,
               "classes": {int(c): int(n) for c, n in enumerate(classes) if n}}
    write_tile_summary(folder, summary)
    return summary
