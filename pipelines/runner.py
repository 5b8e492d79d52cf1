"""Running a pipeline: plan, decode each file once, process tiles, merge products.

The work is split by lidar tile. Phase 1 decodes each input file once into
the work folder; phase 2 runs every tile (its points plus a halo from its
neighbours) through the filters and writes each writer's part; phase 3
mosaics or joins the parts into the products. Phases 1 and 2 are tasks
(:mod:`pipelines.tasks`) run by an executor (:mod:`pipelines.executors`):
in-process, or on Dask (a LocalCluster with ``workers``, or an existing
cluster at ``scheduler``); the result is the same. Phase 3 runs here
(:mod:`pipelines.merge`).

Resumable and idempotent (:mod:`pipelines.cache`): a tile's parts live under
a key hashing its input files (sha256), the stages and the software version,
and a product records the key of the job that made it. A rerun with the same
inputs and parameters does no work; a run killed half-way redoes only the
tiles not finished; a tile that fails leaves the others' work in place, and
no product is written until every tile has succeeded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gis.errors import InputError
from pipelines.cache import WORK, class_counts, prune_work, tile_done, tile_key, tile_summary
from pipelines.executors import Executor, executor_for
from pipelines.lineage import file_sha256
from pipelines.merge import merge_products
from pipelines.plan import Plan, build_plan, crs_summary, needed_files
from pipelines.stages.readers import TileJob
from pipelines.tasks import decode_file, tile_task

__all__ = ["THREADS", "Plan", "RunResult", "build_plan", "run_pipeline"]

Progress = Callable[..., None]  # (phase, done, total[, detail])
# In-process, two threads run a tile's writers (after its filters), or two tiles at a time when the pipeline has
# a single writer; numpy, GEOS, GDAL and open3d release the GIL. (A Dask worker runs one tile, one writer at a time.)
THREADS = 2


@dataclass
class RunResult:
    products: list[Path]
    tiles: int
    tiles_reused: int
    points: int
    seconds: float
    skipped_products: list[Path]
    classes: dict[int, int] = field(default_factory=dict)
    report: Path | None = None
    crs: dict = field(default_factory=dict)  # the working CRS and each input's CRS and height unit (crs_summary)
    summary: str | None = None  # a run that is not about points says what it did (interiors)
    skipped_elements: list[dict] = field(default_factory=list)  # elements of building plans left out, and why
    tile_summaries: list[dict] = field(default_factory=list)  # per tile: points, density, seconds, warnings

    @property
    def warnings(self) -> list[dict[str, str]]:
        """Every tile's warnings: {tile, stage, message}."""
        return [warning for summary in self.tile_summaries for warning in summary.get("warnings", [])]


def run_pipeline(plan: Plan, workers: int = 0, scheduler: str | None = None,
                 progress: Progress | None = None) -> RunResult:
    """Run a validated plan; see the module docstring."""
    progress = progress or (lambda *_: None)
    started = time.perf_counter()
    output = plan.spec.output
    work = output / WORK
    (work / "points").mkdir(parents=True, exist_ok=True)
    plan.plan_tiles()
    hashes = {job.path: file_sha256(job.path, work / "hashes.json") for job in plan.jobs}
    keys = {job.path: tile_key(plan, job, hashes) for job in plan.jobs}
    todo = [job for job in plan.jobs if not tile_done(work, keys[job.path])]
    executor = executor_for(workers, scheduler, threads=THREADS)
    try:
        failures = _run_tiles(executor, plan, todo, keys, hashes, work, progress)
    finally:
        executor.close()
    if failures:
        first = failures[0]
        others = f" ({len(failures)} of {len(plan.jobs)} tiles failed; the others' work is kept, rerun after fixing)" \
            if len(plan.jobs) > 1 else ""
        raise InputError(f"{first}{others}")
    products, skipped = merge_products(plan, keys, hashes, work, progress)
    prune_work(work, set(keys.values()))
    result = RunResult(products, len(plan.jobs), len(plan.jobs) - len(todo),
                       sum(job.point_count for job in plan.jobs), time.perf_counter() - started, skipped,
                       class_counts(work, keys), crs=crs_summary(plan),
                       tile_summaries=[tile_summary(work, keys[job.path]) for job in plan.jobs])
    if products:
        from pipelines.report import RunFigures, write_report  # only with something to show

        result.report = write_report(output, RunFigures(plan.spec.name, result.tiles, result.tiles_reused,
                                                        result.points, result.seconds, result.classes, products,
                                                        crs=plan.crs, tiles_table=result.tile_summaries,
                                                        extent=_extent(plan), crs_facts=_input_crs_facts(result.crs)))
    return result


def _input_crs_facts(summary: dict) -> dict[str, str]:
    """The inputs' CRSs and height units (:func:`pipelines.plan.crs_summary`) as report rows, alike files together."""
    groups: dict[str, list[str]] = {}
    for name, facts in summary.get("inputs", {}).items():
        heights = facts.get("heights", {})
        factor = heights.get("to_metres")
        text = f"{facts.get('crs')}; heights in {heights.get('unit') or 'an unstated unit'}"
        if factor not in (None, 1, 1.0):
            text += f", times {factor:g} to metres"
        groups.setdefault(text, []).append(name)
    return {(f"input CRS ({names[0]})" if len(names) == 1 else f"input CRS ({len(names)} files)"): text
            for text, names in groups.items()}


def _extent(plan: Plan) -> tuple[float, float, float, float]:
    """The union of the tiles' cores."""
    cores = [job.core for job in plan.jobs]
    return (min(c[0] for c in cores), min(c[1] for c in cores), max(c[2] for c in cores), max(c[3] for c in cores))


def _run_tiles(executor: Executor, plan: Plan, todo: list[TileJob], keys: dict[Path, str],
               hashes: dict[Path, str], work: Path, progress: Progress) -> list[str]:
    """Decode the files the tiles to do need, then process those tiles; the user errors, once each.

    Files are decoded in path order and a tile starts once its own file and
    its neighbours' are decoded, the tiles in the order their last file comes.
    A tile's writers may run side by side (``task_threads``): in-process, a
    pipeline with a single writer runs two tiles at a time, one with several
    writers one tile at a time, its writers two at a time.
    """
    by_path = {job.path: job for job in plan.jobs}
    needed = sorted({path for job in todo for path in needed_files(job)})
    order = {path: rank for rank, path in enumerate(needed)}
    shared = executor.share(plan)
    decoded_count = 0

    def decoded_one() -> None:
        nonlocal decoded_count
        decoded_count += 1
        progress("decode", decoded_count, len(needed))

    decoded = {path: executor.submit(decode_file, shared, by_path[path], hashes, work, key=f"decode-{hashes[path]}",
                                     on_done=decoded_one) for path in needed}
    import pipelines.surfaces  # noqa: F401  (its scipy loads while the first files decode)

    finished = 0
    failures: list[str] = []
    outcomes = executor.map(
        tile_task, sorted(todo, key=lambda job: max(order[path] for path in needed_files(job))), shared, keys, work,
        needs=lambda job: {path: decoded[path] for path in needed_files(job)},
        task_threads=len(plan.writers), key=lambda job: f"tile-{keys[job.path]}",
        tell=lambda job, stage: progress("tiles", finished, len(todo), f"{job.name}: {stage}"))
    for outcome in outcomes:
        if outcome.error is not None:
            failures.append(str(outcome.error) if outcome.need_failed else f"{outcome.item.path}: {outcome.error}")
        finished += 1
        progress("tiles", finished, len(todo))
    return list(dict.fromkeys(failures))
