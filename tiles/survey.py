"""The CRS of a lidar file as the tiler works in it: the file's projection, in metres, heights in metres.

A survey in US feet (horizontal and vertical) is placed on the globe by PROJ
from its own projection, but the tiler's lengths (the terrain product's
spacing, the street corridors' margins, the octree's cells and geometric
errors) are metres, and so are the heights the geoid is added to. The tiler
therefore takes the file's coordinates into the same projection with metre
axes (a change of unit only: a projected CRS's easting and northing, false
origin included, scale with their unit) and its heights into metres, by the
factors :mod:`gis.lidar_crs` reads from the CRS, the reader the 2D pipeline
shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import laspy
import pyproj

from gis.errors import InputError
from gis.lidar_crs import header_crs, heights_of, horizontal, in_metres


@dataclass(frozen=True)
class SurveyCRS:
    """The working CRS of one file's points and the factors taking its x, y and z there."""

    crs: pyproj.CRS  # the file's horizontal CRS with metre axes
    xy_to_metres: float
    z_to_metres: float
    stated: pyproj.CRS  # the CRS the header states (or --crs-in), as the lineage names it


def survey_crs(header: laspy.LasHeader, path: Path, crs_in: str | None) -> SurveyCRS:
    """The header's CRS (WKT or GeoTIFF keys), else ``crs_in``; one clear error when neither, or both disagree."""
    stated = header_crs(header, path)
    if stated is None:
        if crs_in is None:
            raise InputError(f"{path}: the header has no CRS; pass --crs-in EPSG:2154 (or the CRS of the survey)")
        stated = _user_crs(crs_in)
    elif crs_in is not None and not _same_crs(stated, _user_crs(crs_in)):
        raise InputError(f"{path}: --crs-in {crs_in} given but the header states another CRS ({stated.name}); "
                         "the tiles are placed by the header's CRS: drop --crs-in, or write the right CRS into the file")
    flat = horizontal(stated)
    if not flat.is_projected:
        raise InputError(f"{path}: the CRS {flat.name} is not projected; reproject the survey into a projected CRS "
                         "such as EPSG:2154 (LAS coordinates in degrees cannot be tiled)")
    return SurveyCRS(crs=in_metres(stated), xy_to_metres=flat.axis_info[0].unit_conversion_factor,
                     z_to_metres=heights_of(stated).to_metres, stated=stated)


def _user_crs(given: str) -> pyproj.CRS:
    try:
        return pyproj.CRS.from_user_input(given)
    except pyproj.exceptions.CRSError:
        raise InputError(f"--crs-in {given}: not a CRS pyproj knows; give an authority code such as EPSG:2154") from None


def _same_crs(stated: pyproj.CRS, other: pyproj.CRS) -> bool:
    """--crs-in names the header's CRS (its horizontal part, when --crs-in gives no vertical)."""
    flat = stated.sub_crs_list[0] if stated.is_compound and not other.is_compound else stated
    return flat.equals(other, ignore_axis_order=True)
