"""Running a pipeline whose writers are ``writers.3dtiles``: one subtree per lidar file, one root tileset.

Each file is read once and converted for every writer by a task on the
pipeline's executor (in-process or Dask, :mod:`pipelines.executors`) into
the work folder, each writer's subtree under a key of the
file's sha256, the writer's options, the geoid grid's sha256 and the
software version: a rerun after one file changed converts only that file and
writes the root again. The product folder is assembled from the subtrees
(hard links, no copy) next to the output and appears in one rename, with its
lineage sidecar; a product whose job key is unchanged is left as it is.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from gis import __version__
from gis.errors import InputError
from pipelines.cache import WORK
from pipelines.executors import TaskContext, executor_for
from pipelines.lineage import digest, file_sha256, made_by, software_versions
from pipelines.plan import Plan
from pipelines.runner import RunResult

Progress = Callable[..., None]


def is_tiles3d(plan: Plan) -> bool:
    """Whether the plan's writers convert whole files into 3D Tiles (refusing a mix with other writers)."""
    whole = [getattr(writer, "whole_files", False) for writer in plan.writers]
    if any(whole) and not all(whole):
        raise InputError(f"{plan.spec.source}: writers.3dtiles cannot share a pipeline with other writers yet; "
                         "run the 3D Tiles writers in a pipeline of their own")
    if any(whole) and any(stage.kind == "filter" for stage in plan.stages):
        raise InputError(f"{plan.spec.source}: writers.3dtiles reads the lidar files as they are; remove the "
                         "filters from this pipeline (the products leave noise classes out themselves)")
    return any(whole)


def run_tiles3d(plan: Plan, workers: int = 0, scheduler: str | None = None,
                progress: Progress | None = None) -> RunResult:
    """Run a plan whose writers are all ``writers.3dtiles``; see the module docstring."""
    from tiles.job import check_distinct_names, check_file, street_corridors_reaching

    progress = progress or (lambda *_: None)
    started = time.perf_counter()
    output = plan.spec.output
    if plan.reader.options.crs_override:  # the tiler places each file by its header's CRS (tiles/geo.py)
        raise InputError("--crs-override: the 3D Tiles writers place each file by the CRS its header states; "
                         "write the right CRS into the files (e.g. pdal translate or las2las) and run again")
    work = output / WORK / "3dtiles"
    work.mkdir(parents=True, exist_ok=True)
    jobs = plan.plan_tiles()  # every header checked: points, scales, CRS, the same CRS everywhere
    paths = [job.path for job in jobs]
    check_distinct_names(paths)
    hashes = {path: file_sha256(path, output / WORK / "hashes.json") for path in paths}
    crs_in = plan.reader.options.crs_in
    tasks = []
    for writer in plan.writers:  # everything each writer can refuse, before any conversion
        settings = writer.options.tiler(crs_in)
        model = settings.model()
        headers = [check_file(path, settings, model) for path in paths]
        corridor = street_corridors_reaching(settings, headers)
        keys = {path: digest({"file": hashes[path], "tiler": settings.describe(), "geoid": model.grid_sha256,
                               "lutece": __version__}) for path in paths}
        tasks.append((writer, settings, corridor, keys))
    # One task per file that some writer still needs: the file is read once for all of them.
    todo = [path for path in paths if any(not (work / keys[path] / "done.json").is_file() for *_, keys in tasks)]
    executor = executor_for(workers, scheduler)
    failures: list[str] = []
    try:
        shared = executor.share([(settings, corridor, keys) for _, settings, corridor, keys in tasks])
        for done, outcome in enumerate(executor.map(convert_task, todo, shared, work,
                                                    task_threads=2 if len(todo) == 1 else 1,
                                                    key=lambda path: f"3dtiles-{hashes[path]}"), start=1):
            progress("tiles", done, len(todo))
            if outcome.error is not None:
                failures.append(f"{outcome.item}: {outcome.error}")
    finally:
        executor.close()
    if failures:
        raise InputError(failures[0] + (f" ({len(failures)} files failed; the others' work is kept, rerun after "
                                        "fixing)" if len(failures) > 1 else ""))
    products, skipped = [], []
    for writer, settings, _, keys in tasks:
        target, written = assemble(plan, writer, settings, keys, hashes, work)
        (products if written else skipped).append(target)
    current = {key for _, _, _, keys in tasks for key in keys.values()}
    for folder in work.iterdir():
        if folder.name not in current:
            shutil.rmtree(folder, ignore_errors=True)
    total = sum(job.point_count for job in jobs)
    return RunResult(products, len(paths), len(paths) - len(todo), total, time.perf_counter() - started, skipped)


def convert_task(path: Path, writers: list[tuple], work: Path, *, needed: dict, context: TaskContext) -> str:
    """Convert one lidar file for every writer whose subtree is not done: into ``work/<key>/``, marked done."""
    from tiles.job import convert_cloud, subtree_name
    from tiles.pointcloud import read_cloud

    cloud = None
    for settings, corridor, keys in writers:
        folder = work / keys[path]
        if (folder / "done.json").is_file():
            continue
        shutil.rmtree(folder, ignore_errors=True)  # leftovers of a run killed half-way
        folder.mkdir(parents=True)
        context.tell(f"{path.name}: {settings.product.product}")
        if cloud is None:
            cloud = read_cloud(path, settings.crs_in)
        subtree = convert_cloud(cloud, path.name, settings, folder / subtree_name(path), corridor, context.threads)
        record = {"file": str(path), "subtree": None if subtree is None else asdict(subtree)}
        (folder / "done.json").write_text(json.dumps(record), encoding="utf-8")
    return path.name


def assemble(plan: Plan, writer, settings, keys: dict[Path, str], hashes: dict[Path, str],
             work: Path) -> tuple[Path, bool]:
    """The writer's product folder from its subtrees; (its path, False when the same job already made it)."""
    from tiles.job import join_subtrees, subtree_name
    from tiles.tileset import Subtree, write_json

    output = plan.spec.output
    target = output / writer.filename()
    sidecar = target.with_name(target.name + ".lineage.json")
    job_key = digest({"keys": sorted(keys.values()), "writer": writer.describe()})
    if target.is_dir() and made_by(target, job_key):
        return target, False
    records = [json.loads((work / keys[path] / "done.json").read_text()) for path in keys]
    subtrees = [Subtree(**record["subtree"]) for record in records if record["subtree"] is not None]
    if not subtrees:
        raise InputError(f"stage '{writer.tag}': the {settings.product.product} product keeps no point of the "
                         "input files" + ("; the street corridors hold none" if settings.product.streets else ""))
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        for path in keys:
            source = work / keys[path] / subtree_name(path)
            if source.is_dir():
                shutil.copytree(source, partial / subtree_name(path), copy_function=os.link)
        lineage = {"inputs": [{"path": str(path), "sha256": hashes[path]} for path in keys],
                   "stages": [stage.describe() for stage in (plan.reader, writer)], "software": software_versions(),
                   "heights": settings.model().describe(), "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        join_subtrees(subtrees, partial, settings, {"job_key": job_key})
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    old = target.with_name(target.name + ".old")
    if target.exists():
        target.rename(old)
    partial.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    write_json({"pipeline": plan.spec.name, "job_key": job_key, "product": target.name, "layers": {writer.layer(): lineage}}, sidecar)
    return target, True

