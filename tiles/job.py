"""A conversion job: each lidar file becomes one subtree, and one root tileset joins them.

The subtrees are independent (each in a local frame of its own, written in a
folder of its own), so they can be converted in parallel, on any executor,
and one can be rebuilt alone; the root tileset references each subtree's own
tileset.json. Everything the job can refuse is refused before any work:
the output folder exists, an input is unreadable or has no CRS, the product
needs a streets layer, the geoid grid is missing or does not cover a file.
The output appears whole, in one rename, or not at all.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

import laspy
import numpy as np
import pyproj

from gis.errors import InputError, OutputExistsError
from gis.lidar_files import lidar_files
from tiles.geo import HeightModel, Placement, frame_at
from tiles.pointcloud import PointCloud, read_cloud, tile_cloud
from tiles.products import ProductOptions, select, street_corridors
from tiles.survey import survey_crs
from tiles.tileset import SPECS, Subtree, box_corners, join, write_json


@dataclass(frozen=True)
class TilerSettings:
    """Everything that decides a tileset's content (its lineage and its cache key)."""

    product: ProductOptions = field(default_factory=ProductOptions)
    spec: str = "1.1"
    max_points: int = 50_000
    heights: str = "orthometric"
    geoid: str | None = None
    crs_in: str | None = None

    def __post_init__(self) -> None:
        if self.spec not in SPECS:
            raise InputError(f"--spec {self.spec}: use one of {', '.join(SPECS)} (1.0 writes pnts for older clients)")
        if self.max_points < 1000:
            raise InputError(f"--max-points {self.max_points}: must be at least 1000")

    def model(self) -> HeightModel:
        return HeightModel.resolve(self.heights, self.geoid)

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "product": asdict(self.product)}


def input_files(inputs: list[str]) -> list[Path]:
    """LAS/LAZ files of files, folders and glob patterns, each once, whose subtrees do not collide."""
    files = lidar_files(inputs)
    check_distinct_names(files)
    return files


def check_distinct_names(files: list[Path]) -> None:
    """Refuse two files whose subtrees would share a folder (the same name in two folders)."""
    seen: dict[str, Path] = {}
    for path in files:
        other = seen.setdefault(subtree_name(path), path)
        if other != path:
            raise InputError(f"{other} and {path} would make the same subtree '{subtree_name(path)}'; "
                             "rename one of them")


@dataclass(frozen=True)
class FileHeader:
    path: Path
    crs: pyproj.CRS
    bounds: tuple[float, float, float, float]
    points: int


def check_file(path: Path, settings: TilerSettings, model: HeightModel) -> FileHeader:
    """Read one file's header and refuse what cannot be tiled: no points, no CRS, a geoid not covering it."""
    try:
        with laspy.open(path) as reader:
            header = reader.header
    except (laspy.errors.LaspyException, ValueError, OSError) as exc:
        raise InputError(f"{path}: not a readable LAS/LAZ file ({exc}); check the file or re-export it") from None
    if header.point_count == 0:
        raise InputError(f"{path}: the file holds no points; remove it from the job")
    survey = survey_crs(header, path, settings.crs_in)
    factor = survey.xy_to_metres
    bounds = (float(header.mins[0]) * factor, float(header.mins[1]) * factor,
              float(header.maxs[0]) * factor, float(header.maxs[1]) * factor)
    placement = Placement(survey.crs, model)
    try:
        placement.check_covers(bounds)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    return FileHeader(path, survey.crs, bounds, header.point_count)


def convert_file(path: Path, settings: TilerSettings, folder: Path, corridor=None, threads: int = 2) -> Subtree | None:
    """One lidar file's subtree, written into ``folder`` (appearing whole); None when the product keeps no point."""
    return convert_cloud(read_cloud(path, settings.crs_in), path.name, settings, folder, corridor, threads)


def convert_cloud(cloud: PointCloud, source: str, settings: TilerSettings, folder: Path, corridor=None,
                  threads: int = 2) -> Subtree | None:
    """The subtree of a lidar file already read (``source`` its name), as :func:`convert_file` writes it."""
    keep = select(cloud, settings.product, corridor)
    if len(keep) == 0:
        return None
    placement = Placement(cloud.crs, settings.model())
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    metadata = {"source": source, "crs": cloud.crs.to_string(), "product": settings.product.product,
                **{k: v for k, v in placement.model.describe().items() if v is not None}}
    try:
        subtree = tile_cloud(cloud, partial, placement, settings.spec, settings.max_points, metadata, threads,
                             keep=None if len(keep) == len(cloud) else keep)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return replace(subtree, uri=f"{folder.name}/tileset.json")


def join_subtrees(subtrees: list[Subtree], out: Path, settings: TilerSettings, extra: dict[str, Any]) -> Path:
    """The root tileset.json of ``out`` over its subtrees (their URIs relative to ``out``)."""
    centres = np.array([box_corners(sub.box).mean(axis=0) for sub in subtrees])
    frame = frame_at(centres.mean(axis=0))
    model = settings.model()
    metadata = {"product": settings.product.product, "points": sum(s.points for s in subtrees),
                "tiles": len(subtrees), **{k: v for k, v in model.describe().items() if v is not None}, **extra}
    document = join(subtrees, frame, settings.spec, metadata)
    write_json(document, out / "tileset.json")
    return out / "tileset.json"


def street_corridors_reaching(settings: TilerSettings, headers: list[FileHeader]):
    """The street corridors of a streets product (None for the others); refused when they miss every file."""
    if settings.product.product != "streets":
        return None
    import shapely

    corridor = street_corridors(settings.product, headers[0].crs)
    if not any(corridor.intersects(shapely.box(*h.bounds)) for h in headers):
        raise InputError(f"--streets {settings.product.streets}: the street corridors do not reach the lidar "
                         f"({', '.join(h.path.name for h in headers)}); check that both cover the same place")
    return corridor


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class JobResult:
    output: Path
    points: int
    tiles: int
    skipped: list[Path]


def convert(inputs: list[str], out: Path, settings: TilerSettings, overwrite: bool = False,
            tell: Callable[[str], None] | None = None) -> JobResult:
    """Convert lidar files into one tileset folder ``out`` (the CLI's direct conversion)."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: already exists; choose another folder or pass --overwrite")
    files = input_files(inputs)
    model = settings.model()
    headers = [check_file(path, settings, model) for path in files]
    corridor = street_corridors_reaching(settings, headers)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        subtrees, skipped = [], []
        for header in headers:
            if tell:
                tell(f"{header.path.name}: {header.points:,} points")
            subtree = convert_file(header.path, settings, partial / subtree_name(header.path), corridor)
            (subtrees.append(subtree) if subtree is not None else skipped.append(header.path))
        if not subtrees:
            raise InputError(f"the {settings.product.product} product keeps no point of "
                             f"{', '.join(h.path.name for h in headers)}" + (
                                 "; the street corridors hold none" if corridor is not None else ""))
        lineage = {"inputs": [{"path": str(h.path), "sha256": sha256(h.path)} for h in headers],
                   "tiler": settings.describe(), "heights": model.describe(), "software": software(),
                   "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        join_subtrees(subtrees, partial, settings, {})
        sidecar = partial.with_name(out.name + ".lineage.json.partial")
        sidecar.write_text(json.dumps(lineage, indent=1), encoding="utf-8")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    sidecar.replace(out.with_name(out.name + ".lineage.json"))
    return JobResult(out, sum(s.points for s in subtrees), len(subtrees), skipped)


def software() -> dict[str, str]:
    return {name: version(name) for name in ("lutece", "py3dtiles", "pyproj", "laspy", "numpy")} | {
        "PROJ": pyproj.proj_version_str}


def subtree_name(path: Path) -> str:
    """The folder of a lidar file's subtree: its name, safe in a URI."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in path.stem)
