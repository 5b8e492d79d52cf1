"""``readers.las``: LAS 1.2-1.4 / LAZ tiles as one job, validated, reprojected, tiled with a halo.

The job is split by input file (a lidar tile). Planning reads the headers
only, and refuses before any work what cannot be processed: no points, a
scale of 0, absurd bounds, no CRS (without ``crs_in``), a ``crs_in`` over the
header's CRS (without ``crs_override``), a CRS that is not projected, tiles in
different CRSs, data outside the working CRS's area of use. Each file is then
decoded once into a plain numpy array in the working CRS, heights in metres
(``decode``; the CRS rules are in :mod:`gis.lidar_crs`); a tile's points are its own file plus
the points of its neighbours that fall within ``halo`` metres of its edges
(``assemble``), so that tile edges leave no seams in the products.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import laspy
import numpy as np
import pyproj

from gis.errors import InputError
from gis.lidar_crs import check_area_of_use, heights_of, horizontal, in_metres
from gis.lidar_files import lidar_files
from pipelines.readers.las import open_lidar, read_chunks, read_crs
from pipelines.stages.base import PointTile, Stage

ATTRIBUTES = np.dtype([("classification", "u1"), ("return_number", "u1"), ("number_of_returns", "u1")])
# The LAZ 1.4 layers holding ATTRIBUTES and coordinates; the others (intensity, GPS time, colours...) are
# not decompressed: a quarter of the decoding time of an IGN tile.
DECODED = (laspy.DecompressionSelection.XY_RETURNS_CHANNEL | laspy.DecompressionSelection.Z
           | laspy.DecompressionSelection.CLASSIFICATION)
ABSURD = 1e8  # metres: no projected coordinate on Earth is this large


@dataclass
class LasOptions:
    filename: list[str] = field(default_factory=list)  # files, folders or glob patterns
    crs_in: str | None = None  # CRS of files whose header has none
    crs_override: bool = False  # crs_in replaces the header's CRS too
    halo: float = 20.0  # metres borrowed from the neighbours around each tile (lutece.yml's tiling.halo by default)

    def __post_init__(self) -> None:
        if not self.filename:
            raise ValueError("option 'filename' is required (a LAS/LAZ file, a folder or a glob pattern)")
        if self.halo < 0:
            raise ValueError(f"option 'halo' must be >= 0, not {self.halo}")


@dataclass(frozen=True)
class TileJob:
    """One tile: its file, its core bounds in the working CRS, and the files around it."""

    name: str
    path: Path
    core: tuple[float, float, float, float]
    neighbours: tuple[Path, ...]
    halo: float
    source_crs: str
    point_count: int
    neighbour_cores: tuple[tuple[float, float, float, float], ...] = ()
    z_to_metres: float = 1.0  # the factor of the file's height unit (0.3048006 for US survey feet)
    heights: str = "metre"  # the file's height unit, as said in the lineage


class LasReader(Stage):
    kind = "reader"
    Options = LasOptions

    def files(self) -> list[Path]:
        """The input files, folders expanded to their .las/.laz, sorted, each once."""
        return lidar_files(self.options.filename, f" (stage '{self.tag}', option filename)")

    def auto_crs(self) -> pyproj.CRS:
        """``crs: auto``: the inputs' projected CRS with its axes in metres (their heights are converted apart)."""
        crss = {path: crs for path, (_, crs) in self._headers().items()}
        _refuse_mixed_crs(crss)
        return in_metres(next(iter(crss.values())))

    def plan(self, working_crs: pyproj.CRS) -> list[TileJob]:
        """Check every header and return the tiles; raises before any point is read."""
        headers = self._headers()
        crss = {path: crs for path, (_, crs) in headers.items()}
        _refuse_mixed_crs(crss)
        for path, (header, crs) in headers.items():
            if not _same_horizontal(crs, working_crs):
                check_area_of_use(path, crs, (*header.mins[:2], *header.maxs[:2]), working_crs)
        cores = {path: _core_bounds(header, crs, working_crs) for path, (header, crs) in headers.items()}
        jobs = []
        for path, core in cores.items():
            halo_box = _grow(core, self.options.halo)
            neighbours = tuple(other for other, bounds in cores.items() if other != path and _touch(bounds, halo_box))
            jobs.append(TileJob(name=path.stem, path=path, core=core, neighbours=neighbours,
                                halo=self.options.halo, source_crs=crss[path].to_wkt(),
                                point_count=headers[path][0].point_count,
                                neighbour_cores=tuple(cores[other] for other in neighbours),
                                z_to_metres=heights_of(crss[path]).to_metres, heights=heights_of(crss[path]).unit))
        return jobs

    def _headers(self) -> dict[Path, tuple[laspy.LasHeader, pyproj.CRS]]:
        return {path: _checked_header(path, self.options.crs_in, self.options.crs_override) for path in self.files()}

    def decode(self, job: TileJob, working_crs: pyproj.CRS, target: Path) -> Path:
        """Decode one tile's file once into the folder ``target``, in the working CRS.

        ``xyz.npy`` and ``attributes.npy`` hold every point; ``edge_*.npy``
        the points within the halo of the core's edges, the only ones a
        neighbour can borrow, so that assembling a tile reads a band of each
        neighbour rather than the whole file.
        """
        xyz, attributes = read_points(job.path)
        source = pyproj.CRS.from_wkt(job.source_crs)
        if not _same_horizontal(source, working_crs):
            # always_xy: LAS stores easting in X whatever the CRS's axis order (EPSG:3035 and 2180 say northing first)
            transformer = pyproj.Transformer.from_crs(horizontal(source), working_crs, always_xy=True)
            xyz[:, 0], xyz[:, 1] = transformer.transform(xyz[:, 0], xyz[:, 1])
        if job.z_to_metres != 1.0:
            xyz[:, 2] *= job.z_to_metres
        edge = ~_inside(xyz, _grow(job.core, -job.halo)) if job.halo > 0 else np.zeros(len(xyz), dtype=bool)
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for name, array in (("xyz", xyz), ("attributes", attributes), ("edge_xyz", xyz[edge]),
                            ("edge_attributes", attributes[edge])):
            np.save(partial / f"{name}.npy", array)
        partial.replace(target)
        return target

    def assemble(self, job: TileJob, decoded: dict[Path, Path], working_crs: pyproj.CRS) -> PointTile:
        """The tile's own points plus its neighbours' points within the halo."""
        xyz_parts = [np.load(decoded[job.path] / "xyz.npy")]
        attribute_parts = [np.load(decoded[job.path] / "attributes.npy")]
        halo_box = _grow(job.core, job.halo)
        for neighbour, core in zip(job.neighbours, job.neighbour_cores):
            # Tiles that merely touch lend their edge band; overlapping ones (flight strips) their whole file.
            prefix = "" if _touch(halo_box, _grow(core, -job.halo)) else "edge_"
            xyz = np.load(decoded[neighbour] / f"{prefix}xyz.npy")
            near = _inside(xyz, halo_box)
            xyz_parts.append(xyz[near])
            attribute_parts.append(np.load(decoded[neighbour] / f"{prefix}attributes.npy")[near])
        xyz = np.concatenate(xyz_parts) if len(xyz_parts) > 1 else xyz_parts[0]
        attributes = np.concatenate(attribute_parts) if len(attribute_parts) > 1 else attribute_parts[0]
        return PointTile(
            xyz=xyz, classification=attributes["classification"].copy(),
            return_number=attributes["return_number"].copy(),
            number_of_returns=attributes["number_of_returns"].copy(), crs=working_crs, core=job.core, name=job.name,
            own=len(xyz_parts[0]))


def read_points(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """All the points of a file: (n, 3) coordinates and ATTRIBUTES, with one-line errors for bad records."""
    with open_lidar(path, DECODED) as reader:
        header = reader.header
        count = header.point_count
        xyz = np.empty((count, 3))
        attributes = np.empty(count, dtype=ATTRIBUTES)
        start = 0
        for chunk in read_chunks(reader, path):
            end = min(start + len(chunk), count)  # a file holding more records than announced fails after the loop
            used = end - start
            for axis, name in enumerate("XYZ"):  # scaled straight into place: no temporary float columns
                column = xyz[start:end, axis]
                np.multiply(chunk[name][:used], header.scales[axis], out=column)
                column += header.offsets[axis]
            for name in ATTRIBUTES.names:
                attributes[name][start:end] = chunk[name][:used]
            start = end
    extremes = [reduce(xyz[:, axis]) for axis in range(3) for reduce in (np.min, np.max)] if count else [0.0]
    if not np.all(np.isfinite(extremes)) or np.max(np.abs(extremes)) > ABSURD:  # NaN propagates into min and max
        raise InputError(f"{path}: some coordinates are NaN or absurd (beyond {ABSURD:g} m); "
                         "check the header's scales and offsets and re-export the file")
    return xyz, attributes


def _checked_header(path: Path, crs_in: str | None, override: bool = False) -> tuple[laspy.LasHeader, pyproj.CRS]:
    with open_lidar(path) as reader:
        header = reader.header
    if header.point_count == 0:
        raise InputError(f"{path}: the file holds no points; remove it from the job")
    scales, offsets = np.asarray(header.scales), np.asarray(header.offsets)
    if not np.all(np.isfinite(scales)) or np.any(scales == 0):
        raise InputError(f"{path}: a scale factor of the header is {scales.tolist()}, which cannot encode "
                         "coordinates; the file is corrupt: re-export it")
    bounds = np.concatenate([header.mins, header.maxs])
    if not np.all(np.isfinite(offsets)) or not np.all(np.isfinite(bounds)) or np.abs(bounds).max() > ABSURD:
        raise InputError(f"{path}: the header's bounds {bounds.tolist()} are NaN or absurd; re-export the file")
    crs = read_crs(header, path)
    given = _parse_crs(crs_in, "--crs-in") if crs_in is not None else None
    if crs is not None and given is not None and not override and not _agree(crs, given):
        raise InputError(f"{path}: --crs-in {crs_in} ({given.name}) given but the header states another CRS "
                         f"({crs.name}); drop --crs-in to use the header's, or add --crs-override to replace it")
    if crs is None or (given is not None and override):
        if given is None:
            raise InputError(f"{path}: the header has no CRS; pass --crs-in EPSG:2154 (or the CRS of the survey)")
        crs = given
    if not horizontal(crs).is_projected:
        kind = "geographic (degrees)" if horizontal(crs).is_geographic else "not a projected CRS"
        raise InputError(f"{path}: the CRS {crs.name} is {kind}; reproject the file to a projected "
                         "CRS such as EPSG:2154 first")
    return header, crs


def _parse_crs(text: str, where: str) -> pyproj.CRS:
    try:
        return pyproj.CRS.from_user_input(text)
    except pyproj.exceptions.CRSError:
        raise InputError(f"{where} {text}: not a CRS pyproj knows; give an authority code such as EPSG:2154") from None


def _agree(stated: pyproj.CRS, given: pyproj.CRS) -> bool:
    """--crs-in says nothing else than the header: the same horizontal CRS, and the same vertical if it gives one."""
    if not _same_horizontal(stated, given):
        return False
    return not given.is_compound or stated.equals(given, ignore_axis_order=True)


def _same_horizontal(a: pyproj.CRS, b: pyproj.CRS) -> bool:
    return horizontal(a).equals(horizontal(b), ignore_axis_order=True)


def _refuse_mixed_crs(crss: dict[Path, pyproj.CRS]) -> None:
    first_path, first = next(iter(crss.items()))
    for path, crs in crss.items():
        if not _same_horizontal(crs, first):
            raise InputError(f"tiles in different CRSs: {first_path.name} is {horizontal(first).name}, "
                             f"{path.name} is {horizontal(crs).name}; run one job per CRS or reproject the tiles first")


def _core_bounds(header: laspy.LasHeader, crs: pyproj.CRS, working: pyproj.CRS) -> tuple[float, float, float, float]:
    xmin, ymin, xmax, ymax = header.mins[0], header.mins[1], header.maxs[0], header.maxs[1]
    if not _same_horizontal(crs, working):
        transformer = pyproj.Transformer.from_crs(horizontal(crs), working, always_xy=True)
        xmin, ymin, xmax, ymax = transformer.transform_bounds(xmin, ymin, xmax, ymax)
    # Whole metres outwards: tiles cut at round coordinates (IGN's kilometres) share their edges exactly.
    return (float(np.floor(xmin)), float(np.floor(ymin)), float(np.ceil(xmax)), float(np.ceil(ymax)))


def _grow(bounds, distance: float) -> tuple[float, float, float, float]:
    xmin, ymin, xmax, ymax = bounds
    return (xmin - distance, ymin - distance, xmax + distance, ymax + distance)


def _inside(xyz: np.ndarray, box) -> np.ndarray:
    """The points in [xmin, xmax) x [ymin, ymax); none when the box is empty."""
    xmin, ymin, xmax, ymax = box
    x, y = xyz[:, 0], xyz[:, 1]
    return (x >= xmin) & (x < xmax) & (y >= ymin) & (y < ymax)


def _touch(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
