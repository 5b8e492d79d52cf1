"""Running an interiors pipeline: one building's plans (IFC or indoor GeoJSON) to per-storey 3D Tiles and
2D indoor layers, in the release profiles the writers ask for.

The plans are read once; each writer applies its profile (:mod:`pipelines.algorithms.release`) and writes its
product under a ``.partial`` name. Everything that can be refused is refused before anything is written (the
plan file, a geoid grid missing, a profile's list unreadable); products are renamed into place only once all
of them are written, so a failed run leaves no partial tileset. Each product's lineage records the profile and
a key of the inputs' checksums and the stages' options: a rerun with the same ones reads nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from gis import __version__
from gis.errors import InputError
from pipelines.lineage import digest, file_sha256, made_by, software_versions
from pipelines.plan import Plan
from pipelines.runner import RunResult

Progress = Callable[..., None]
SOFTWARE = ("ifcopenshell", "pygltflib", "py3dtiles")


def is_interiors(plan: Plan) -> bool:
    """Whether the plan reads building plans (readers.ifc, readers.indoor), refusing other writers with them."""
    marked = [getattr(stage, "interiors", False) for stage in plan.stages]
    if not any(marked):
        return False
    if not marked[0]:
        raise InputError(f"{plan.spec.source}: writers.interior3d and writers.indoor2d take building plans; start "
                         "the pipeline with readers.ifc or readers.indoor")
    others = [stage.tag for stage, ok in zip(plan.stages, marked) if not ok]
    if others:
        raise InputError(f"{plan.spec.source}: stage '{others[0]}' cannot take building plans; an interiors pipeline "
                         "holds readers.ifc or readers.indoor and the writers interior3d and indoor2d")
    return True


def run_interiors(plan: Plan, workers: int = 0, scheduler: str | None = None,
                  progress: Progress | None = None) -> RunResult:
    """Run an interiors pipeline (in-process: the geometry iterator uses every core itself)."""
    from pipelines.algorithms.release import Rules

    progress = progress or (lambda *_: None)
    started = time.perf_counter()
    reader, output = plan.reader, plan.spec.output
    source = reader.path()
    if not source.is_file():
        raise InputError(f"stage '{reader.tag}': {source}: no such file; give the building's plans with --input")
    rules = {w.tag: Rules.load(w.options.sensitive, f"stage '{w.tag}': ") for w in plan.writers}
    # every geoid grid checked now; with crs: auto, the placement waits for the plans' CRS (below)
    placements = {w.tag: _placement(w, plan) for w in plan.writers if w.spec.type == "writers.interior3d"}
    job_key = digest({"plans": file_sha256(source), "stages": [s.describe() for s in plan.stages],
                       "rules": {tag: r.sha256 for tag, r in rules.items()}, "crs": plan.crs.to_wkt() if plan.crs is not None else "auto",
                       "lutece": __version__})
    targets = [output / writer.filename() for writer in plan.writers]
    if all(made_by(target, job_key) for target in targets):
        return RunResult([], 1, 1, 0, time.perf_counter() - started, targets, summary=f"{source.name}: up to date")
    progress("plans", 0, 1, source.name)
    interior = reader.read(plan.crs)
    progress("plans", 1, 1, source.name)
    if plan.crs is None:
        placements = {w.tag: _placement(w, plan, interior.crs) for w in plan.writers
                      if w.spec.type == "writers.interior3d"}
    output.mkdir(parents=True, exist_ok=True)
    partials: list[tuple[Path, Path]] = []
    try:
        for done, writer in enumerate(plan.writers, 1):
            target = output / writer.filename()
            partial = target.with_name(target.stem + ".partial" + target.suffix)  # GDAL goes by the suffix
            _remove(partial)
            lineage = _lineage(plan, writer, source, interior, rules[writer.tag])
            write_product(writer, interior, rules[writer.tag], partial, placements.get(writer.tag), lineage, job_key)
            partials.append((partial, target))
            progress("products", done, len(plan.writers))
    except BaseException:
        for partial, _ in partials:
            _remove(partial)
        raise
    for (partial, target), writer in zip(partials, plan.writers):
        _remove(target)
        os.replace(partial, target)
        lineage = _lineage(plan, writer, source, interior, rules[writer.tag])
        sidecar = target.with_name(target.name + ".lineage.json")
        sidecar.write_text(json.dumps({"job_key": job_key, "pipeline": plan.spec.name, "product": target.name,
                                       "profile": writer.options.profile,
                                       "layers": _layer_lineages(writer, lineage)}, indent=1), encoding="utf-8")
    from pipelines.interiors_report import write_report

    seconds = time.perf_counter() - started
    report = write_report(output, plan.spec.name, interior, [t for _, t in partials], seconds)
    rooms = int((interior.elements["class"] == "room").sum())
    summary = (f"{source.name}: {len(interior.elements)} elements ({rooms} rooms) on {len(interior.storeys)} storeys, "
               f"{len(interior.skipped)} skipped, in {seconds:.1f} s")
    return RunResult([t for _, t in partials], 1, 0, 0, seconds, [], report=report, summary=summary,
                     skipped_elements=[vars(s) for s in interior.skipped])


def write_product(writer, interior, rules, partial: Path, placement, lineage: dict, job_key: str) -> None:
    """Write one writer's product of ``interior`` in its profile to ``partial``."""
    from pipelines.algorithms.release import release

    released = release(interior, writer.options.profile, rules)
    if writer.spec.type == "writers.interior3d":
        from tiles.interior import write_storey_tileset

        write_storey_tileset(released.meshes(), released.storeys, placement, partial,
                             metadata={"product": "interior", "profile": writer.options.profile,
                                       "source": interior.source.name, "job_key": job_key})
    else:
        from pipelines.products import write_layers

        layers = {name: released.layer(kind) for name, kind in (("rooms", "room"), ("walls", "wall"),
                                                               ("doors", "door"))}
        write_layers(layers, partial, {name: lineage for name in layers})


def _lineage(plan: Plan, writer, source: Path, interior, rules) -> dict:
    return {"inputs": [{"path": str(source.resolve()), "sha256": file_sha256(source)}],
            "stages": [stage.describe() for stage in (plan.reader, writer)],
            "profile": writer.options.profile, "sensitive_list_sha256": rules.sha256,
            "georeferencing": interior.georeferencing, "skipped": len(interior.skipped),
            "software": software_versions(SOFTWARE),
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _layer_lineages(writer, lineage: dict) -> dict:
    if writer.spec.type == "writers.indoor2d":
        return {name: lineage for name in ("rooms", "walls", "doors")}
    return {writer.layer(): lineage}


def _placement(writer, plan: Plan, crs=None):
    from tiles.geo import HeightModel, Placement

    model = HeightModel.resolve(writer.options.heights, writer.options.geoid)  # a missing grid: refused now
    return Placement(crs or plan.crs, model) if (crs or plan.crs) is not None else None


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
