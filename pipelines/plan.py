"""Planning a run: build and check every stage before any data is touched (what ``--validate`` does)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path

import pyproj

from gis.errors import InputError
from gis.lidar_crs import is_metric
from pipelines.registry import resolve
from pipelines.spec import PipelineSpec
from pipelines.stages.base import Stage
from pipelines.stages.readers import TileJob


@dataclass
class Plan:
    """A validated pipeline: its stages built, and the tiles once the data has been looked at."""

    spec: PipelineSpec
    stages: list[Stage]
    crs: pyproj.CRS | None  # None for ``crs: auto`` until the headers are read (plan_tiles)
    jobs: list[TileJob] = field(default_factory=list)

    def plan_tiles(self) -> list[TileJob]:
        """Check every header (before any point is read), settle ``crs: auto`` from them, and list the tiles."""
        if self.crs is None:
            self.crs = self.reader.auto_crs()
        self.jobs = self.reader.plan(self.crs)
        return self.jobs

    @property
    def reader(self) -> Stage:
        return self.stages[0]

    @property
    def writers(self) -> list[Stage]:
        return [stage for stage in self.stages if stage.kind == "writer"]

    def points_of(self, writer: Stage) -> str:
        """The tag of the stage whose points a writer gets (writers pass their input on)."""
        by_tag = {stage.tag: stage for stage in self.stages}
        tag = writer.spec.inputs[0]
        while by_tag[tag].kind == "writer":
            tag = by_tag[tag].spec.inputs[0]
        return tag


def build_plan(spec: PipelineSpec, crs: str = "EPSG:2154", halo: float | None = None) -> Plan:
    """Build and check every stage without touching data (what ``--validate`` does).

    ``crs`` is the working CRS (``auto``: the inputs' own, in metres); ``halo`` the reader's halo
    where the pipeline file sets none (lutece.yml's ``tiling.halo``).
    """

    classes = [resolve(stage.type, f"{spec.source}: stage '{stage.tag}'") for stage in spec.stages]
    first = spec.stages[0]
    if halo is not None and "halo" not in first.options and "halo" in _option_names(classes[0]):
        spec = replace(spec, stages=(replace(first, options={**first.options, "halo": halo}), *spec.stages[1:]))
    stages = [stage_class(stage) for stage_class, stage in zip(classes, spec.stages)]
    # A writer turned off (enabled: false) is checked, then left out of the run.
    stages = [stage for stage in stages if getattr(stage.options, "enabled", True)]
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
    return Plan(spec=spec, stages=stages, crs=working_crs(crs))


def _option_names(stage_class: type[Stage]) -> set[str]:
    options = getattr(stage_class, "Options", None)
    return {f.name for f in fields(options)} if is_dataclass(options) else set()


def working_crs(crs: str) -> pyproj.CRS | None:
    """The working CRS of ``crs:`` in lutece.yml: projected, in metres; None for ``auto``."""
    if crs == "auto":
        return None
    try:
        working = pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError:
        raise InputError(f"working CRS {crs}: not a CRS pyproj knows; set crs: in lutece.yml") from None
    if not working.is_projected or not is_metric(working):
        units = ", ".join(sorted({axis.unit_name for axis in working.axis_info}))
        raise InputError(f"working CRS {crs} ({working.name}) is not projected in metres ({units}); "
                         "set crs: in lutece.yml to a projected CRS in metres, or crs: auto for the inputs' own CRS in metres")
    return working


LEGACY = "(a pipeline of an earlier release)"


def refuse_foreign_products(plan: Plan) -> None:
    """Refuse, before any work, to replace a product that no earlier run of this pipeline wrote (without --overwrite).

    A product's ``.lineage.json`` names the pipeline that wrote it; a file without one, or written by
    another pipeline (or by hand), is not this pipeline's to replace.
    """
    for writer in plan.writers:
        target = plan.spec.output / writer.filename()
        if target.exists() and written_by(target) not in (plan.spec.name, LEGACY):
            raise InputError(f"{target}: exists and no earlier run of the pipeline '{plan.spec.name}' wrote it; "
                             "choose another --output, move it away, or pass --overwrite to replace it")


def written_by(target: Path) -> str | None:
    """The pipeline named by a product's lineage sidecar, or None (no sidecar, unreadable, no name)."""
    try:
        lineage = json.loads(target.with_name(target.name + ".lineage.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(lineage, dict):
        return None
    layers = [layer for layer in (lineage.get("layers") or {}).values() if isinstance(layer, dict)]
    named = lineage.get("pipeline") or next((layer.get("pipeline") for layer in layers if layer.get("pipeline")), None)
    if named is None and lineage.get("job_key") and lineage.get("product") == target.name:
        return LEGACY  # a pipeline of an earlier release, which named no pipeline in the buildings' and 3D Tiles' sidecars
    return named


def input_crs(job: TileJob) -> dict:
    """What a tile's file said of its CRS and heights, for the lineage and the run report."""
    return {"crs": pyproj.CRS.from_wkt(job.source_crs).name,
            "heights": {"unit": job.heights, "to_metres": job.z_to_metres}}


def crs_summary(plan: Plan) -> dict:
    """The run's CRS facts: the working CRS (name, code or none) and each input's CRS and height unit."""
    authority = plan.crs.to_authority() if plan.crs is not None else None
    return {"working": {"name": plan.crs.name if plan.crs is not None else None,
                        "code": ":".join(authority) if authority else None, "unit": "metre"},
            "inputs": {job.path.name: input_crs(job) for job in plan.jobs}}


def needed_files(job: TileJob) -> list[Path]:
    """The files a tile's points come from: its own and its neighbours' (for the halo)."""
    return [job.path, *job.neighbours]
