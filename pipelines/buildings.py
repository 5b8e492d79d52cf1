"""Running a pipeline of building stages: footprints and the job's points to shells, tiles, CityJSON, a layer.

The lidar files are decoded by the reader as in any run (headers checked, points in the working CRS,
cached in the work folder), their core points gathered, and ``filters.buildings`` reconstructs every
footprint at once. Everything that can be refused is refused before anything is written (the footprints
file, its CRS, invalid or empty footprints, a geoid grid that does not cover them); each product is
written under a ``.partial`` name and renamed into place only once all of them are written, so a failed
run leaves no partial tileset. Each product's lineage records a key of the inputs' checksums and the stages'
options: a rerun with the same ones reads no point and leaves the products as they are.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from gis import __version__
from gis.errors import InputError
from pipelines.cache import WORK
from pipelines.lineage import digest, file_sha256, made_by, software_versions
from pipelines.plan import Plan, needed_files
from pipelines.runner import RunResult

Progress = Callable[..., None]
CHUNK = 250  # footprints per task at most, on Dask: a task's result crosses to the driver


def is_buildings(plan: Plan) -> bool:
    """Whether the plan is a building pipeline (one ``filters.buildings`` feeding building writers only)."""
    marked = [stage for stage in plan.stages[1:] if getattr(stage, "buildings", False)]
    if not marked:
        return False
    filters = [stage for stage in plan.stages[1:] if stage.kind == "filter"]
    if len(filters) != 1 or not getattr(filters[0], "buildings", False):
        raise InputError(f"{plan.spec.source}: a building pipeline has one filter, filters.buildings, right after "
                         "the reader (the points are read as classified)")
    others = [writer.tag for writer in plan.writers if not getattr(writer, "buildings", False)]
    if others:
        raise InputError(f"{plan.spec.source}: writer '{others[0]}' cannot share a pipeline with filters.buildings; "
                         "run it in a pipeline of its own")
    return True


def run_buildings(plan: Plan, workers: int = 0, scheduler: str | None = None,
                  progress: Progress | None = None) -> RunResult:
    """Run a building pipeline: in this process, or in chunks of footprints on Dask (``workers`` > 1 or a
    ``scheduler``), with the same buildings in the same order either way."""
    from pipelines.algorithms.roofs import attribute_frame, check_footprints

    progress = progress or (lambda *_: None)
    started = time.perf_counter()
    stage = next(s for s in plan.stages[1:] if s.kind == "filter")
    options = stage.options
    jobs = plan.plan_tiles()  # every header checked before any point is read; settles crs: auto
    footprints = check_footprints(_read_footprints(options), plan.crs, options.footprints)
    if options.id_field is not None and options.id_field not in footprints.columns:
        raise InputError(f"stage '{stage.tag}': option 'id_field': {options.footprints} has no column "
                         f"'{options.id_field}'; its columns are {', '.join(map(str, footprints.columns[:-1]))}")
    placements = {writer.tag: _placement(writer, plan, footprints.total_bounds) for writer in plan.writers
                  if writer.spec.type == "writers.buildings3d"}
    work = plan.spec.output / WORK
    (work / "points").mkdir(parents=True, exist_ok=True)
    hashes = {job.path: file_sha256(job.path, work / "hashes.json") for job in jobs}
    job_key = digest({"lidar": sorted(hashes.values()), "footprints": file_sha256(Path(options.footprints)),
                       "stages": [s.describe() for s in plan.stages[1:]], "crs": plan.crs.to_wkt(),
                       "lutece": __version__})
    targets = [plan.spec.output / writer.filename() for writer in plan.writers]
    if all(made_by(target, job_key) for target in targets):  # the same inputs and options made them
        return RunResult([], len(jobs), len(jobs), sum(job.point_count for job in jobs),
                         time.perf_counter() - started, targets)
    xyz, classification = _points(plan, jobs, hashes, work, progress)
    from pipelines.readers.las import survey_date

    lidar_date = options.lidar_date or survey_date([job.path for job in jobs])  # the option wins: a known date
    buildings = reconstruct_buildings(footprints, xyz, classification, options.id_field, options.roof_options(),
                                      lidar_date, workers, scheduler)
    progress("buildings", len(buildings), len(buildings))
    layer = attribute_frame(buildings, plan.crs)
    output = plan.spec.output
    partials: list[tuple[Path, Path]] = []
    try:
        for writer in plan.writers:
            target = output / writer.filename()
            partial = target.with_name(target.stem + ".partial" + target.suffix)  # GDAL goes by the suffix
            _remove(partial)
            _write(writer, buildings, layer, partial, placements.get(writer.tag), plan)
            partials.append((partial, target))
    except BaseException:
        for partial, _ in partials:
            _remove(partial)
        raise
    lineage = {"inputs": [{"path": str(p), "sha256": h} for p, h in hashes.items()]
               + [{"path": str(Path(options.footprints).resolve()), "layer": options.footprints_layer}],
               "stages": [s.describe() for s in plan.stages], "software": software_versions(),
               "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    for partial, target in partials:
        _remove(target)
        os.replace(partial, target)
        sidecar = target.with_name(target.name + ".lineage.json")
        sidecar.write_text(json.dumps({"pipeline": plan.spec.name, "job_key": job_key, "product": target.name, "layers": {target.stem: lineage}},
                                      indent=1), encoding="utf-8")
    codes, counts = np.unique(classification, return_counts=True)
    result = RunResult([target for _, target in partials], len(jobs), 0, len(xyz), time.perf_counter() - started, [],
                       {int(c): int(n) for c, n in zip(codes, counts)})
    from pipelines.report import RunFigures, write_report

    result.report = write_report(output, RunFigures(plan.spec.name, result.tiles, 0, result.points, result.seconds,
                                                    result.classes, result.products, report_tables(layer)))
    return result


def report_tables(layer) -> list:
    """The run report's building tables: the LoDs reached, and every footprint that disagrees with the lidar."""
    from pipelines.report import Table

    lods = layer.groupby("lod")["lod_reason"].agg(["size", lambda r: r.value_counts().index[0]])
    reached = Table("Buildings: LoD reached", ["LoD", "buildings", "most frequent reason"],
                    [[lod, str(row.iloc[0]), row.iloc[1]] for lod, row in lods.iterrows()])
    odd = layer[layer["footprint_shifted"] | layer["footprint_partial"] | (layer["footprint_check"] != "ok")]
    disagree = Table("Footprints that disagree with the lidar (reported, not changed)",
                     ["id", "coverage", "outside m2", "shift dx, dy (m)", "check"],
                     [[str(r["id"]), f"{r['footprint_coverage']:.0%}", f"{r['outside_area']:.0f}",
                       f"{r['shift_x']:+.1f}, {r['shift_y']:+.1f}", r["footprint_check"]] for _, r in odd.iterrows()],
                     f"{len(odd)} of {len(layer)} footprints: {int(layer['footprint_shifted'].sum())} shifted, "
                     f"{int(layer['footprint_partial'].sum())} missing a part (building points outside them)")
    return [reached, disagree]


def _read_footprints(options):
    import geopandas as gpd
    import pyogrio

    path = Path(options.footprints)
    if not path.is_file():
        raise InputError(f"footprints {path}: no such file; give a GeoPackage of building footprints with "
                         "--stage.buildings.footprints=PATH")
    try:
        return gpd.read_file(path, layer=options.footprints_layer)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as exc:
        raise InputError(f"footprints {path}: cannot read layer {options.footprints_layer!r} ({exc}); "
                         "check the file and --stage.buildings.footprints_layer") from None


def _placement(writer, plan: Plan, bounds: np.ndarray):
    from tiles.geo import HeightModel, Placement

    placement = Placement(plan.crs, HeightModel.resolve(writer.options.heights, writer.options.geoid))
    placement.check_covers(tuple(float(v) for v in bounds))
    return placement


def _points(plan: Plan, jobs, hashes: dict[Path, str], work: Path, progress: Progress):
    """Every file's core points (working CRS): coordinates and classes, decoded through the reader's cache."""
    from pipelines.tasks import decode_file

    decoded = {}
    for done, job in enumerate(jobs, 1):
        decoded[job.path] = decode_file(plan, job, hashes, work)
        progress("decode", done, len(jobs))
    xyz, classes = [], []
    for job in jobs:
        tile = plan.reader.assemble(job, {path: decoded[path] for path in needed_files(job)}, plan.crs)
        core = tile.in_core()
        xyz.append(tile.xyz[core])
        classes.append(tile.classification[core])
    return np.concatenate(xyz), np.concatenate(classes)


def reconstruct_buildings(footprints, xyz, classification, id_field: str | None, roof_options,
                          lidar_date: str | None = None, workers: int = 0, scheduler: str | None = None) -> list:
    """The buildings of every footprint, in the footprints' order; on Dask, in chunks of consecutive footprints.

    Each worker receives every point once (a footprint's checks may look far around it on sparse lidar, so
    a chunk's points cannot be cut by a fixed margin without changing its buildings).
    """
    from pipelines.algorithms.roofs import footprint_jobs, point_index, reconstruct_chunk
    from pipelines.executors import executor_for

    jobs = footprint_jobs(footprints, id_field, roof_options)
    points = point_index(xyz, classification)
    if workers <= 1 and not scheduler:
        return reconstruct_chunk(jobs, points, roof_options, lidar_date)
    size = max(1, min(CHUNK, -(-len(jobs) // (4 * max(workers, 1)))))  # a few chunks per worker, to even the load
    chunks = [(start, jobs[start:start + size]) for start in range(0, len(jobs), size)]
    executor = executor_for(workers, scheduler)
    try:
        shared = executor.share(points)
        parts = {}
        for outcome in executor.map(_chunk_task, chunks, shared, roof_options, lidar_date):
            if outcome.error is not None:
                raise outcome.error
            parts[outcome.item[0]] = outcome.value
    finally:
        executor.close()
    return [building for start, _ in chunks for building in parts[start]]


def _chunk_task(chunk, points, roof_options, lidar_date, *, needed, context) -> list:
    """An executor's map task: the buildings of one chunk (its first row, its footprint jobs)."""
    from pipelines.algorithms.roofs import reconstruct_chunk

    return reconstruct_chunk(chunk[1], points, roof_options, lidar_date)


def _write(writer, buildings, layer, partial: Path, placement, plan: Plan) -> None:
    kind = writer.spec.type
    if kind == "writers.buildings2d":
        layer.to_file(partial, layer=writer.options.layer, driver="GPKG")
    elif kind == "writers.cityjson":
        from pipelines.algorithms.shells import cityjson_document

        partial.write_text(json.dumps(cityjson_document(buildings, plan.crs.to_epsg()), separators=(",", ":")),
                           encoding="utf-8")
    else:
        from tiles.mesh import write_mesh_tileset

        meshes = feature_meshes(buildings, layer)
        if meshes is None:
            raise InputError(f"stage '{writer.tag}': no footprint has enough roof points for a shell; no tileset")
        write_mesh_tileset(meshes, placement, partial, max_features=writer.options.max_features,
                           coarse=feature_meshes(buildings, layer, coarse=True),
                           metadata={"product": "buildings", "source": "lutece lidar-to-buildings"})


def feature_meshes(buildings, layer, coarse: bool = False):
    """The shells of the buildings that have one (their highest LoD, or their LoD1.2 prisms if ``coarse``),
    with their attributes; None if none."""
    from tiles.mesh import FeatureMeshes

    shelled = [i for i, b in enumerate(buildings) if b.lod13]
    if not shelled:
        return None
    vertices, faces, owner, offset = [], [], [], 0
    for feature, index in enumerate(shelled):
        v, f = buildings[index].lod12_mesh() if coarse else buildings[index].shell()
        vertices.append(v)
        faces.append(f + offset)
        owner.append(np.full(len(f), feature))
        offset += len(v)
    properties = layer.drop(columns=layer.geometry.name).iloc[shelled].reset_index(drop=True)
    return FeatureMeshes(np.concatenate(vertices), np.concatenate(faces), np.concatenate(owner), properties)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
