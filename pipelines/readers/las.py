"""Open LAS/LAZ tiles through laspy (lazrs) and describe them, with clear errors.

``inspect_lidar`` reads the header and streams the points once in chunks, so
a tile of any size is described in bounded memory: point count checked
against the header, bounds, CRS (parsed by pyproj from the WKT or GeoTIFF
keys VLRs) and the class histogram.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import laspy
import numpy as np
import pyproj

from gis.errors import InputError
from gis.lidar_crs import header_crs

CHUNK = 1_000_000


@dataclass(frozen=True)
class LidarInfo:
    """What a lidar tile holds."""

    path: Path
    version: str
    point_format: int
    point_count: int
    scales: tuple[float, float, float]
    bounds: tuple[float, float, float, float, float, float]  # xmin, ymin, zmin, xmax, ymax, zmax
    crs: pyproj.CRS | None
    classes: dict[int, int] = field(default_factory=dict)

    @property
    def horizontal_crs(self) -> pyproj.CRS | None:
        """The 2D part of the CRS (the first sub-CRS of a compound one)."""
        if self.crs is None:
            return None
        return self.crs.sub_crs_list[0] if self.crs.is_compound else self.crs


def open_lidar(path: Path, fields: laspy.DecompressionSelection = laspy.DecompressionSelection.all()
               ) -> laspy.LasReader:
    """Open a LAS/LAZ file for streaming, turning laspy's errors into one clear line.

    ``fields`` are the layers of a LAZ 1.4 file (point formats 6-10) to
    decompress; the others read as zeros. Other point formats are decompressed whole.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such lidar file")
    try:
        return laspy.open(path, decompression_selection=fields)
    except (laspy.errors.LaspyException, ValueError, OSError) as exc:
        raise InputError(f"{path}: not a readable LAS/LAZ file ({exc}); check the file or re-download it") from None


def read_crs(header: laspy.LasHeader, path: Path) -> pyproj.CRS | None:
    """The CRS of the header's WKT or GeoTIFF keys VLRs, or None when it has none (see :mod:`gis.lidar_crs`)."""
    return header_crs(header, path)


def read_chunks(reader: laspy.LasReader, path: Path, size: int = CHUNK) -> Iterator[laspy.ScaleAwarePointRecord]:
    """The file's points in chunks; one clear error when the records end early or cannot be decoded."""
    seen = 0
    try:
        for chunk in reader.chunk_iterator(size):
            seen += len(chunk)
            yield chunk
    except (laspy.errors.LaspyException, ValueError, OSError, RuntimeError) as exc:
        raise InputError(f"{path}: the point records cannot be read after {seen} points ({exc}); "
                         "the file is truncated or corrupt: re-download or re-export it") from None
    if seen != reader.header.point_count:
        raise InputError(f"{path}: the header announces {reader.header.point_count} points but the file holds "
                         f"{seen}; the file is truncated or its header is wrong: re-export it")


def inspect_lidar(path: Path) -> LidarInfo:
    """Describe one LAS/LAZ tile, reading every point once in chunks.

    Raises
    ------
    InputError
        When the file is not LAS/LAZ, is truncated, or holds fewer points than its header says.
    """
    path = Path(path)
    with open_lidar(path) as reader:
        header = reader.header
        crs = read_crs(header, path)
        counts = np.zeros(256, dtype=np.int64)
        mins, maxs = np.full(3, np.inf), np.full(3, -np.inf)
        for points in read_chunks(reader, path):
            xyz = np.column_stack([points.x, points.y, points.z])
            if len(xyz):
                mins, maxs = np.minimum(mins, xyz.min(axis=0)), np.maximum(maxs, xyz.max(axis=0))
            counts += np.bincount(np.asarray(points.classification), minlength=256)
    return LidarInfo(
        path=path, version=str(header.version), point_format=header.point_format.id,
        point_count=int(counts.sum()), scales=tuple(float(s) for s in header.scales),
        bounds=(*mins.tolist(), *maxs.tolist()), crs=crs, classes={code: int(n) for code, n in enumerate(counts) if n},
    )


GPS_EPOCH = np.datetime64("1980-01-06T00:00:00", "s")
ADJUSTED_OFFSET = 1e9  # adjusted standard GPS time = GPS seconds - 1e9 (LAS 1.2+, global encoding bit 0)
DATE_SAMPLE = 10_000  # points read for their GPS time: a tile is flown within minutes


def survey_days(path: Path) -> tuple[str, str] | None:
    """The first and last day (ISO) a tile was surveyed: from its points' adjusted standard GPS time when
    the header says it is (week-seconds GPS time names no day), else the header's file creation day
    (which producers set to the processing day more often than the flight's); None when neither is there."""
    with open_lidar(path) as reader:
        header = reader.header
        if header.global_encoding.gps_time_type and "gps_time" in header.point_format.dimension_names \
                and header.point_count:
            seconds = np.asarray(reader.read_points(min(DATE_SAMPLE, header.point_count)).gps_time)
            days = [str((GPS_EPOCH + np.timedelta64(int(t + ADJUSTED_OFFSET), "s")).astype("datetime64[D]"))
                    for t in (seconds.min(), seconds.max())]
            return days[0], days[1]
        day = header.creation_date
        return (day.isoformat(), day.isoformat()) if day is not None else None


def survey_date(paths: list[Path]) -> str:
    """The survey's date over tiles as ISO 8601: one day, or an interval ``first/last``; "" when unknown."""
    spans = [span for span in (survey_days(path) for path in paths) if span is not None]
    if not spans:
        return ""
    first, last = min(s[0] for s in spans), max(s[1] for s in spans)
    return first if first == last else f"{first}/{last}"
