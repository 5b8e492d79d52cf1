"""Merging: each writer's tile parts into its product, with the product's lineage.

Runs in the driver once every tile has succeeded. A product records the key
of the job that made it (:func:`pipelines.cache.job_key`), so a rerun with
the same inputs and parameters leaves it as it is.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from pipelines.cache import job_key, tile_summary
from pipelines.lineage import made_by, software_versions
from pipelines.plan import Plan, input_crs
from pipelines.stages.base import Stage


def merge_products(plan: Plan, keys: dict[Path, str], hashes: dict[Path, str], work: Path,
                   progress: Callable[..., None]) -> tuple[list[Path], list[Path]]:
    """Mosaic or join each writer's parts into its product, unless the same job already made it.

    Products are merged two at a time: GDAL and GEOS release the GIL, so a
    COG's overviews are computed while another product is written. Returns
    the products written and those left as they were.
    """
    summaries = [tile_summary(work, keys[job.path]) for job in plan.jobs]
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
    key = job_key(writers, keys)
    lineage = {writer.layer(): product_lineage(plan, writer, hashes, key) for writer in writers}
    for writer in writers:
        chain = {stage["tag"] for stage in lineage[writer.layer()]["stages"]}
        lineage[writer.layer()]["warnings"] = [warning for summary in summaries
                                               for warning in summary.get("warnings", []) if warning["stage"] in chain]
        # Each tile's density and the values its density-scaled options took (the stages list them as None).
        lineage[writer.layer()]["tiles"] = [
            {"tile": summary.get("tile"), "density": summary.get("density"),
             "used": {tag: values for tag, values in summary.get("used", {}).items() if tag in chain}}
            for summary in summaries]
    sidecar = target.with_name(target.name + ".lineage.json")
    if made_by(target, key):
        return target, False
    if hasattr(writers[0], "merge"):  # rasters, point clouds: one writer's parts make the product
        parts = [Path(summary["parts"][writers[0].tag]) for summary in summaries]
        writers[0].merge(parts, output, lineage[writers[0].layer()])
    else:
        layers = {writer.layer(): writer.sew(read_vector_parts(
            [Path(s["parts"][writer.tag]) for s in summaries], plan.crs.to_string())) for writer in writers}
        write_layers(layers, target, lineage)
    _write_json(sidecar, {"pipeline": plan.spec.name, "job_key": key, "product": target.name, "layers": lineage})
    return target, True


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
        "inputs": [{"path": str(job.path), "sha256": hashes[job.path], "points": job.point_count, **input_crs(job)}
                   for job in plan.jobs],
        "stages": chain, "software": software_versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _write_json(path: Path, data: dict) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(partial, path)
