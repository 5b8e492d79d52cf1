"""Planning a run: build and check every stage before any data is touched (what ``--validate`` does)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyproj

from gis.errors import InputError
from pipelines.registry import resolve
from pipelines.spec import PipelineSpec
from pipelines.stages.base import Stage
from pipelines.stages.readers import TileJob


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

    def points_of(self, writer: Stage) -> str:
        """The tag of the stage whose points a writer gets (writers pass their input on)."""
        by_tag = {stage.tag: stage for stage in self.stages}
        tag = writer.spec.inputs[0]
        while by_tag[tag].kind == "writer":
            tag = by_tag[tag].spec.inputs[0]
        return tag


def build_plan(spec: PipelineSpec, crs: str = "EPSG:2154") -> Plan:
    """Build and check every stage without touching data (what ``--validate`` does)."""
    stages = [resolve(stage.type, f"{spec.source}: stage '{stage.tag}'")(stage) for stage in spec.stages]
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


def needed_files(job: TileJob) -> list[Path]:
    """The files a tile's points come from: its own and its neighbours' (for the halo)."""
    return [job.path, *job.neighbours]
