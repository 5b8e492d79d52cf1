"""Running a pipeline: plan, decode each file once, process tiles, merge products.

The work is split by lidar tile. Phase 1 decodes each input file once into
the work folder; phase 2 runs every tile (its points plus a halo from its
neighbours) through the filters and writes each writer's part; phase 3
mosaics or joins the parts into the products. Phases 1 and 2 run in-process
or on Dask (a LocalCluster with ``workers``, or an existing cluster at
``scheduler``); the result is the same.

Resumable and idempotent: a tile's parts live under a key hashing its input
files (sha256), the stages and the software version, and a product records
the key of the job that made it. A rerun with the same inputs and parameters
does no work; a run killed half-way redoes only the tiles not finished; a
tile that fails leaves the others' work in place, and no product is written
until every tile has succeeded.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyproj

from gis import __version__
from gis.errors import InputError
from pipelines.lineage import file_sha256, software_versions
from pipelines.registry import resolve
from pipelines.spec import PipelineSpec
from pipelines.stages.base import Stage
from pipelines.stages.readers import TileJob

Progress = Callable[..., None]  # (phase, done, total[, detail])
WORK = ".lutece-work"
# In-process, two threads run a tile's writers (after its filters), or two tiles at a time when the pipeline has
# a single writer; numpy, GEOS, GDAL and open3d release the GIL. (A Dask worker runs one tile, one writer at a time.)
THREADS = 2


@dataclass
class Plan:
    """A validated pipeline: its stages built, and the tiles once the data has been looked at."""

    spec: PipelineSpec
    stages: list[Stage]
    crs: pyproj.CRS
    jobs: list[TileJob] = field(default_factory=list)

    @property
    def reader(self) -> Stage:
        return self.stages[0]

    @property
    def writers(self) -> list[Stage]:
        return [stage for stage in self.stages if stage.kind == "writer"]


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


def build_plan(spec: PipelineSpec, crs: str = "EPSG:2154") -> Plan:
    """Build and check every stage without touching data (what ``--validate`` does)."""
    stages = [resolve(stage.type)(stage) for stage in spec.stages]
    kinds = [stage.kind for stage in stages]
    if kinds[0] != "reader" or kinds.count("reader") != 1:
        raise InputError(f"{spec.source}: a pipeline starts with exactly one reader (readers.las)")
    if "writer" not in kinds:
        raise InputError(f"{spec.source}: the pipeline has no writer, so it would produce nothing; add writers.*")
    for stage in stages[1:]:
        if len(stage.spec.inputs) != 1:
            raise InputError(f"stage '{stage.tag}' takes exactly one input, not {list(stage.spec.inputs)}")
    rasters = [w.filename() for w in stages if w.kind == "writer" and w.filename().endswith(".tif")]
    twice = {name for name in rasters if rasters.count(name) > 1}
    if twice:
        raise InputError(f"{spec.source}: two raster writers write {sorted(twice)[0]}; give one a filename or another resolution")
    try:
        working = pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError:
        raise InputError(f"working CRS {crs}: not a CRS pyproj knows; set crs: in lutece.yml") from None
    return Plan(spec=spec, stages=stages, crs=working)


def run_pipeline(plan: Plan, workers: int = 0, scheduler: str | None = None,
                 progress: Progress | None = None) -> RunResult:
    """Run a validated plan; see the module docstring."""
    progress = progress or (lambda *_: None)
    started = time.perf_counter()
    output = plan.spec.output
    work = output / WORK
    (work / "points").mkdir(parents=True, exist_ok=True)
    plan.jobs = plan.reader.plan(plan.crs)
    hashes = {job.path: file_sha256(job.path, work / "hashes.json") for job in plan.jobs}
    keys = {job.path: tile_key(plan, job, hashes) for job in plan.jobs}
    todo = [job for job in plan.jobs if not _tile_done(work, keys[job.path])]
    executor = _executor(workers, scheduler)
    try:
        failures = executor(plan, todo, keys, hashes, work, progress)
    finally:
        getattr(executor, "close", lambda: None)()
    if failures:
        first = failures[0]
        others = f" ({len(failures)} of {len(plan.jobs)} tiles failed; the others' work is kept, rerun after fixing)" \
            if len(plan.jobs) > 1 else ""
        raise InputError(f"{first}{others}")
    products, skipped = merge_products(plan, keys, hashes, work, progress)
    _prune_work(work, set(keys.values()))
    result = RunResult(products, len(plan.jobs), len(plan.jobs) - len(todo),
                       sum(job.point_count for job in plan.jobs), time.perf_counter() - started, skipped,
                       _class_counts(work, keys))
    if products:
        from pipelines.report import RunFigures, write_report  # only with something to show

        result.report = write_report(output, RunFigures(plan.spec.name, result.tiles, result.tiles_reused,
                                                        result.points, result.seconds, result.classes, products))
    return result


def _prune_work(work: Path, current: set[str]) -> None:
    """After a complete run keep only what a rerun with the same inputs needs: this run's tiles."""
    shutil.rmtree(work / "points", ignore_errors=True)
    for folder in (work / "tiles").iterdir() if (work / "tiles").is_dir() else []:
        if folder.name not in current:
            shutil.rmtree(folder, ignore_errors=True)


def _class_counts(work: Path, keys: dict[Path, str]) -> dict[int, int]:
    totals: dict[int, int] = {}
    for key in keys.values():
        summary = json.loads((work / "tiles" / key / "done.json").read_text(encoding="utf-8"))
        for code, count in summary.get("classes", {}).items():
            totals[int(code)] = totals.get(int(code), 0) + count
    return totals


def tile_key(plan: Plan, job: TileJob, hashes: dict[Path, str]) -> str:
    """What a tile's parts depend on: its files' content, the stages, the CRS and the software."""
    neighbours = sorted(hashes[path] for path in job.neighbours)
    payload = {"tile": hashes[job.path], "neighbours": neighbours, "halo": job.halo, "crs": plan.crs.to_wkt(),
               "stages": [stage.describe() for stage in plan.stages[1:]], "lutece": __version__}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _tile_done(work: Path, key: str) -> bool:
    return (work / "tiles" / key / "done.json").is_file()


def process_tile(plan: Plan, job: TileJob, key: str, decoded: dict[Path, Path], work: Path,
                 on_stage: Callable[[str], None] | None = None, writer_threads: int = 1) -> dict[str, Any]:
    """Run one tile through the filters and write every writer's part; return the tile's summary.

    ``on_stage`` is told the tag of each stage as it starts (for progress).
    Writers only read the filters' points and the surfaces drawn from them,
    so ``writer_threads`` of them run at once: the native code they spend
    most of their time in (numpy, numba, GEOS, GDAL) releases the GIL.
    """
    folder = work / "tiles" / key
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
        memo = (_points_of(plan, stage), stage.resolution)
        if memo not in surfaces:
            surfaces[memo] = TileSurfaces(source, stage.resolution, job.halo, subsets.setdefault(memo[0], {}))
        writes.append((stage, surfaces[memo]))

    def write(stage: Stage, tile_surfaces: TileSurfaces) -> str:
        if on_stage is not None:
            on_stage(stage.tag)
        return str(stage.tile_part(tile_surfaces, folder))

    with ThreadPoolExecutor(max_workers=writer_threads, thread_name_prefix="lutece-writer") as pool:
        parts = dict(zip([stage.tag for stage, _ in writes], pool.map(lambda item: write(*item), writes)))
    shown = values[_points_of(plan, plan.writers[0])]
    classes = np.bincount(shown.classification[shown.in_core()], minlength=256)
    summary = {"tile": job.name, "points": int(job.point_count), "parts": parts,
               "classes": {int(c): int(n) for c, n in enumerate(classes) if n}}
    (folder / "done.json").write_text(json.dumps(summary), encoding="utf-8")
    return summary


def _points_of(plan: Plan, writer: Stage) -> str:
    """The tag of the stage whose points a writer gets (writers pass their input on)."""
    by_tag = {stage.tag: stage for stage in plan.stages}
    tag = writer.spec.inputs[0]
    while by_tag[tag].kind == "writer":
        tag = by_tag[tag].spec.inputs[0]
    return tag


def decode_file(plan: Plan, job: TileJob, hashes: dict[Path, str], work: Path) -> Path:
    """Decode one file into the work folder unless an earlier run already did (same file, CRS and halo)."""
    key = hashlib.sha256(f"{hashes[job.path]} {plan.crs.to_wkt()} {job.halo!r}".encode()).hexdigest()[:24]
    target = work / "points" / key
    if not target.exists():
        plan.reader.decode(job, plan.crs, target)
    return target


def _needed_files(job: TileJob) -> list[Path]:
    return [job.path, *job.neighbours]


def _in_process(plan, todo, keys, hashes, work, progress) -> list[str]:
    """Run the tiles in this process, decoding the files ahead in a thread.

    The LAZ decoder releases the GIL, so the next files decode while tiles are
    processed; a tile starts as soon as its own file and its neighbours' are
    ready. ``THREADS`` threads go to the writers of one tile, or to as many
    tiles as the writers leave room for: two at a time with a single writer,
    else one (one tile's points in memory at a time, as in a 1-tile job).
    """
    by_path = {job.path: job for job in plan.jobs}
    needed = sorted({path for job in todo for path in _needed_files(job)})
    order = {path: rank for rank, path in enumerate(needed)}
    failures: list[str] = []
    decoded: dict[Path, Path] = {}
    writer_threads = min(THREADS, len(plan.writers))
    tiles = _TileThreads(THREADS // writer_threads, len(todo), failures, progress)
    decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lutece-decode")
    try:
        pending = {path: decoder.submit(decode_file, plan, by_path[path], hashes, work) for path in needed}
        import pipelines.surfaces  # noqa: F401  (its scipy loads while the first files decode)
        for job in sorted(todo, key=lambda job: max(order[path] for path in _needed_files(job))):
            for path in _needed_files(job):
                _collect(path, pending, decoded, failures, progress, len(needed))
            if not all(path in decoded for path in _needed_files(job)):
                tiles.advance()  # a file it needs failed: the failure is filed
                continue
            on_stage = functools.partial(tiles.tell, job.name)
            tiles.start(job, functools.partial(process_tile, plan, job, keys[job.path], decoded, work,
                                               on_stage=on_stage, writer_threads=writer_threads))
        tiles.wait_all()
    finally:
        decoder.shutdown(wait=True, cancel_futures=True)  # on Ctrl-C, no decoding of files no tile will use
        tiles.shutdown()
    return list(dict.fromkeys(failures))


class _TileThreads:
    """Tiles processed in threads, at most ``slots`` at a time; files their errors and tells the progress."""

    def __init__(self, slots: int, total: int, failures: list[str], progress: Progress) -> None:
        self.slots, self.total, self.failures, self.progress = slots, total, failures, progress
        self.pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="lutece-tile")
        self.running: dict[Future, TileJob] = {}
        self.finished = 0

    def start(self, job: TileJob, process: Callable[[], Any]) -> None:
        while len(self.running) >= self.slots:
            self._collect_one()
        self.running[self.pool.submit(self._run, process)] = job

    def tell(self, tile: str, stage: str) -> None:
        self.progress("tiles", self.finished, self.total, f"{tile}: {stage}")

    def advance(self) -> None:
        """One more tile done, or given up."""
        self.finished += 1
        self.progress("tiles", self.finished, self.total)

    def wait_all(self) -> None:
        while self.running:
            self._collect_one()

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _run(process: Callable[[], Any]) -> None:
        try:
            process()
        finally:
            _release_free_memory()

    def _collect_one(self) -> None:
        done, _ = wait(self.running, return_when=FIRST_COMPLETED)
        for future in done:
            job = self.running.pop(future)
            try:
                future.result()
            except InputError as exc:
                self.failures.append(f"{job.path}: {exc}")
            self.advance()


def _release_free_memory() -> None:
    """Give the memory freed by a tile back to the system (glibc keeps it in its per-thread arenas).

    The writer and decoder threads each allocate in an arena of their own;
    without this the resident size creeps up tile after tile (peak RSS of
    the 9-tile benchmark job 1.21x the 1-tile job's, 1.08-1.16x with it).
    A no-op where the C library is not glibc.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _collect(path: Path, pending: dict, decoded: dict[Path, Path], failures: list[str], progress, total: int) -> None:
    """Wait for a file's decoding (once) and file its result or its error."""
    future = pending.pop(path, None)
    if future is None:
        return
    try:
        decoded[path] = future.result()
    except InputError as exc:
        failures.append(str(exc))
    progress("decode", total - len(pending), total)


def _executor(workers: int, scheduler: str | None):
    if workers <= 0 and not scheduler:
        return _in_process
    from pipelines.distributed import DaskExecutor

    return DaskExecutor(workers=workers, scheduler=scheduler)


def merge_products(plan: Plan, keys: dict[Path, str], hashes: dict[Path, str], work: Path,
                   progress: Progress) -> tuple[list[Path], list[Path]]:
    """Mosaic or join each writer's parts into its product, unless the same job already made it.

    Products are merged two at a time: GDAL and GEOS release the GIL, so a
    COG's overviews are computed while another product is written.
    """
    summaries = [json.loads((work / "tiles" / keys[job.path] / "done.json").read_text()) for job in plan.jobs]
    groups: dict[str, list[Stage]] = {}
    for writer in plan.writers:
        groups.setdefault(writer.filename(), []).append(writer)
    made: dict[Path, bool] = {}
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="lutece-merge") as pool:
        # The GeoPackage of vector layers first: the longest merge, it overlaps the COGs'.
        by_length = sorted(groups.values(), key=lambda writers: writers[0].filename().endswith(".tif"))
        futures = [pool.submit(_merge_product, plan, writers, summaries, keys, hashes) for writers in by_length]
        for done, future in enumerate(as_completed(futures), start=1):
            target, written = future.result()
            made[target] = written
            progress("products", done, len(groups))
    order = [plan.spec.output / filename for filename in groups]
    return [t for t in order if made[t]], [t for t in order if not made[t]]


def _merge_product(plan: Plan, writers: list[Stage], summaries: list[dict], keys: dict[Path, str],
                   hashes: dict[Path, str]) -> tuple[Path, bool]:
    """Merge one product (the writers sharing its file); (its path, False when the same job already made it)."""
    from pipelines.products import read_vector_parts, write_layers

    output = plan.spec.output
    target = output / writers[0].filename()
    job_key = _job_key(writers, keys)
    lineage = {writer.layer(): product_lineage(plan, writer, hashes, job_key) for writer in writers}
    sidecar = target.with_name(target.name + ".lineage.json")
    if target.exists() and sidecar.exists() and json.loads(sidecar.read_text()).get("job_key") == job_key:
        return target, False
    if target.suffix == ".tif":
        parts = [Path(summary["parts"][writers[0].tag]) for summary in summaries]
        writers[0].merge(parts, output, lineage[writers[0].layer()])
    else:
        layers = {writer.layer(): writer.sew(read_vector_parts(
            [Path(s["parts"][writer.tag]) for s in summaries], plan.crs.to_string())) for writer in writers}
        write_layers(layers, target, lineage)
    _write_json(sidecar, {"job_key": job_key, "product": target.name, "layers": lineage})
    return target, True


def _job_key(writers: list[Stage], keys: dict[Path, str]) -> str:
    payload = {"tiles": sorted(keys.values()), "writers": [writer.describe() for writer in writers]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def product_lineage(plan: Plan, writer: Stage, hashes: dict[Path, str], job_key: str) -> dict[str, Any]:
    """Inputs with their sha256, the chain of stages that made the product, software, time."""
    chain, tag = [], writer.tag
    by_tag = {stage.tag: stage for stage in plan.stages}
    while tag in by_tag:
        stage = by_tag[tag]
        chain.insert(0, stage.describe())
        tag = stage.spec.inputs[0] if stage.spec.inputs else None
    return {
        "pipeline": plan.spec.name, "pipeline_file": plan.spec.source, "job_key": job_key,
        "crs": plan.crs.to_string(),
        "inputs": [{"path": str(job.path), "sha256": hashes[job.path], "points": job.point_count} for job in plan.jobs],
        "stages": chain, "software": software_versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _write_json(path: Path, data: dict) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(partial, path)
