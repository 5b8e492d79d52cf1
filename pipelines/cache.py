"""The work folder that makes runs resumable: what each tile's parts and each decoded file are kept under.

A tile's parts live in ``tiles/<key>/`` under a key hashing its input files
(sha256), the stages, the CRS and the software version, and count as done
once its ``done.json`` exists. A rerun with the same inputs and parameters
finds them; a run killed half-way redoes only the tiles not finished.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from gis import __version__
from pipelines.lineage import digest
from pipelines.plan import Plan
from pipelines.stages.readers import TileJob

WORK = ".lutece-work"


def tile_key(plan: Plan, job: TileJob, hashes: dict[Path, str]) -> str:
    """What a tile's parts depend on: its files' content, the stages, the CRS and the software."""
    neighbours = sorted(hashes[path] for path in job.neighbours)
    payload = {"tile": hashes[job.path], "neighbours": neighbours, "halo": job.halo, "crs": plan.crs.to_wkt(),
               "source_crs": job.source_crs, "z_to_metres": job.z_to_metres,
               "stages": [stage.describe() for stage in plan.stages[1:]], "lutece": __version__}
    return digest(payload)


def job_key(writers: list, keys: dict[Path, str]) -> str:
    """What a product depends on: every tile's key and its writers."""
    return digest({"tiles": sorted(keys.values()), "writers": [writer.describe() for writer in writers]})


def decoded_folder(plan: Plan, job: TileJob, hashes: dict[Path, str], work: Path) -> Path:
    """Where a file's decoded points go: a key of its content, the CRS and the halo."""
    key = hashlib.sha256(f"{hashes[job.path]} {plan.crs.to_wkt()} {job.halo!r} {job.source_crs} {job.z_to_metres!r}"
                         .encode()).hexdigest()[:24]
    return work / "points" / key


def tile_folder(work: Path, key: str) -> Path:
    return work / "tiles" / key


def tile_summary(work: Path, key: str) -> dict:
    """What a finished tile recorded: its parts, points and class counts."""
    return json.loads((tile_folder(work, key) / "done.json").read_text(encoding="utf-8"))


def write_tile_summary(folder: Path, summary: dict) -> None:
    """Mark a tile done (written last, once its parts are complete)."""
    (folder / "done.json").write_text(json.dumps(summary), encoding="utf-8")


def tile_done(work: Path, key: str) -> bool:
    return (tile_folder(work, key) / "done.json").is_file()


def prune_work(work: Path, current: set[str]) -> None:
    """After a complete run keep only what a rerun with the same inputs needs: this run's tiles."""
    shutil.rmtree(work / "points", ignore_errors=True)
    for folder in (work / "tiles").iterdir() if (work / "tiles").is_dir() else []:
        if folder.name not in current:
            shutil.rmtree(folder, ignore_errors=True)


def class_counts(work: Path, keys: dict[Path, str]) -> dict[int, int]:
    """Points per ASPRS class over the tiles' cores."""
    totals: dict[int, int] = {}
    for key in keys.values():
        for code, count in tile_summary(work, key).get("classes", {}).items():
            totals[int(code)] = totals.get(int(code), 0) + count
    return totals

