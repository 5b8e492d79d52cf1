"""Generate the whole synthetic district into one folder, atomically.

Everything is written into a hidden staging folder next to the output and
moved into place only once complete, so an interrupted run leaves no partial
district behind and ``--overwrite`` never loses the old one before the new
one exists. ``manifest.json`` records the parameters, the counts and the
sha256 of every file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import laspy
import numpy as np

from gis import asprs
from gis.errors import InputError, OutputExistsError
from pipelines.synthetic import ifc, indoor, lidar, vectors
from pipelines.synthetic.scene import DEFAULT_ORIGIN, Scene, build_scene

Progress = Callable[[str, int, int], None]  # (step, done, total)

FILES = {
    "district.laz": "Classified lidar, LAS 1.4 LAZ, Lambert-93 + NGF-IGN69 (WKT VLR)",
    "district-unclassified.laz": "Central crop of the lidar with every point class 1 (unclassified)",
    "district-nocrs.laz": "Central crop of the lidar with no CRS in the header",
    "district.gpkg": "City layers: buildings_cadastre, streets, trees, river, boundary (EPSG:2154)",
    "hotel-de-ville.ifc": "Plans of the town hall, IFC4, georeferenced with IfcMapConversion to EPSG:2154",
    "hotel-de-ville-indoor.geojson": "The town hall's rooms and doors per level (EPSG:2154)",
    "truth.gpkg": "Ground truth: footprints with heights and roof types, trees, rooms",
    "truth-dtm.tif": "Ground truth: terrain at 0.5 m (NGF-IGN69, water flattened)",
    "manifest.json": "Parameters, counts and checksums of this folder",
}


@dataclass(frozen=True)
class DistrictSpec:
    """What to generate: a square district of ``size`` metres at ``density`` pulses/m2."""

    size: float = 400.0
    density: float = 10.0
    seed: int = 0
    point_format: int = 6
    origin: tuple[float, float] = DEFAULT_ORIGIN
    variant_size: float = 150.0  # edge of the central crop the lidar variants hold; 0: the whole district

    def variant_bounds(self) -> tuple[float, float, float, float]:
        """The central square the test variants of the lidar cover."""
        x0, y0 = self.origin
        half = (self.size if self.variant_size <= 0 else min(self.variant_size, self.size)) / 2
        cx, cy = x0 + self.size / 2, y0 + self.size / 2
        return (cx - half, cy - half, cx + half, cy + half)

    def check(self) -> None:
        """Refuse values that cannot make a district, naming the parameter."""
        if not 200.0 <= self.size <= 20000.0:
            raise InputError(f"--size {self.size:g}: the district must be 200 to 20000 metres wide "
                             "(the river, the quays and the town hall's block need 200 m)")
        if not 0.0 < self.density <= 100.0:
            raise InputError(f"--density {self.density:g}: give 0 < points per m2 <= 100 (IGN LiDAR HD is 10)")
        if self.variant_size < 0:
            raise InputError(f"--variant-size {self.variant_size:g}: give 0 (whole district) or a positive size in metres")
        if self.point_format not in (6, 7, 8):
            raise InputError(f"--point-format {self.point_format}: LAS 1.4 point format 6, 7 or 8 is needed")


def generate_district(out: Path, spec: DistrictSpec = DistrictSpec(), overwrite: bool = False,
                      progress: Progress | None = None) -> dict:
    """Write the district into ``out``; return its manifest.

    Raises
    ------
    OutputExistsError
        When ``out`` exists and ``overwrite`` is false.
    InputError
        When a parameter of ``spec`` is out of range.
    """
    check_request(out, spec, overwrite)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    staging.chmod(0o777 & ~_current_umask())  # mkdtemp makes it private; the district is not
    try:
        manifest = _generate_into(staging, spec, progress or (lambda *_: None))
        _swap_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def check_request(out: Path, spec: DistrictSpec, overwrite: bool) -> None:
    """Refuse bad parameters and an existing output before any work starts."""
    spec.check()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} exists and is not a folder; remove it or choose another folder")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} already exists; pass --overwrite to replace it or choose another folder")


def _generate_into(folder: Path, spec: DistrictSpec, progress: Progress) -> dict:
    progress("scene", 0, 1)
    scene = build_scene(spec.size, spec.seed, spec.origin)
    progress("scene", 1, 1)
    settings = lidar.LidarSettings(density=spec.density, point_format=spec.point_format)
    cell_count = int(np.ceil(spec.size / settings.cell)) ** 2
    done = iter(range(1, cell_count + 1))
    classes = lidar.write_district_laz(scene, folder / "district.laz", settings, spec.seed,
                                       progress=lambda _: progress("lidar", next(done), cell_count))
    progress("variants", 0, 2)
    crop = spec.variant_bounds()
    write_variant(folder / "district.laz", folder / "district-unclassified.laz", crop, unclassify=True)
    progress("variants", 1, 2)
    write_variant(folder / "district.laz", folder / "district-nocrs.laz", crop, drop_crs=True)
    progress("variants", 2, 2)
    progress("vectors", 0, 3)
    layers = vectors.write_district_vectors(scene, folder / "district.gpkg")
    progress("vectors", 1, 3)
    truth = vectors.write_truth(scene, folder / "truth.gpkg")
    progress("vectors", 2, 3)
    vectors.write_truth_dtm(scene, folder / "truth-dtm.tif")
    progress("vectors", 3, 3)
    progress("plans", 0, 1)
    if scene.townhall_site is not None:
        ifc.write_ifc(scene.townhall_site, folder / "hotel-de-ville.ifc")
        indoor.write_indoor_geojson(scene.townhall_site, folder / "hotel-de-ville-indoor.geojson")
    progress("plans", 1, 1)
    manifest = _manifest(folder, spec, scene, classes, layers, truth)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def write_variant(source: Path, target: Path, bounds: tuple[float, float, float, float],
                  unclassify: bool = False, drop_crs: bool = False, chunk: int = 1_000_000) -> None:
    """Copy the points of a LAZ file inside ``bounds``, every class set to 1 or the CRS removed."""
    xmin, ymin, xmax, ymax = bounds
    with laspy.open(source) as reader:
        header = reader.header
        if drop_crs:
            header = _header_without_crs(header)
        with laspy.open(target, mode="w", header=header, do_compress=True) as writer:
            for points in reader.chunk_iterator(chunk):
                x, y = np.asarray(points.x), np.asarray(points.y)
                points = points[(x >= xmin) & (x < xmax) & (y >= ymin) & (y < ymax)]
                if unclassify:
                    points.classification[:] = asprs.UNCLASSIFIED
                writer.write_points(points)


def _header_without_crs(source: laspy.LasHeader) -> laspy.LasHeader:
    header = laspy.LasHeader(point_format=source.point_format, version=source.version)
    header.scales, header.offsets = source.scales, source.offsets
    header.system_identifier, header.generating_software = source.system_identifier, source.generating_software
    header.creation_date = source.creation_date
    return header


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _swap_into_place(staging: Path, out: Path) -> None:
    """Replace ``out`` by ``staging`` so that one of the two complete folders always exists."""
    if not out.exists():
        staging.rename(out)
        return
    backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    backup.rmdir()
    out.rename(backup)
    staging.rename(out)
    shutil.rmtree(backup, ignore_errors=True)


def _manifest(folder: Path, spec: DistrictSpec, scene: Scene, classes: dict[int, int],
              layers: dict[str, int], truth: dict[str, int]) -> dict:
    points = sum(classes.values())
    return {
        "generator": "lutece sample generate",
        "parameters": {**asdict(spec), "origin": list(spec.origin)},
        "command": f"lutece sample generate OUT --size {spec.size:g} --density {spec.density:g} "
                   f"--seed {spec.seed} --point-format {spec.point_format} --variant-size {spec.variant_size:g}",
        "variant_extent": list(spec.variant_bounds()),
        "crs": {"horizontal": "EPSG:2154", "vertical": "EPSG:5720 (NGF-IGN69 height)"},
        "extent": list(scene.boundary.bounds),
        "lidar": {
            "points": points,
            "points_per_m2": round(points / scene.boundary.area, 2),
            "classes": {f"{code} {asprs.name(code)}": n for code, n in sorted(classes.items())},
        },
        "scene": {"buildings": len(scene.buildings), "trees": len(scene.trees), "streets": len(scene.streets),
                  "blocks": len(scene.blocks), "cars": len(scene.cars)},
        "layers": {"district.gpkg": layers, "truth.gpkg": truth},
        "files": {name: {"description": FILES[name], **_file_facts(folder / name)}
                  for name in FILES if name != "manifest.json" and (folder / name).exists()},
    }


def _file_facts(path: Path) -> dict:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}
