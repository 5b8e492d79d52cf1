"""The CRS of a lidar file and its units: every form a LAS header may carry, read the same way by every reader.

A LAS file states its CRS as an OGC WKT VLR (LAS 1.4; compound or not, often
without any EPSG code) or as GeoTIFF keys (LAS 1.0-1.4: an EPSG code, or a
user-defined projection from its parameters, plus linear and vertical units).
laspy parses the WKT and the keys' EPSG codes only, so the keys are handed to
GDAL's libgeotiff, which interprets every form of them (through a 1-pixel TIFF
in memory carrying the same three tags). Heights are converted to metres by
the factor of the vertical axis; horizontal units are the reprojection's business.
The pipelines and the 3D Tiles conversion share this module (imports run
pipelines -> tiles -> gis).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import laspy
import numpy as np
import pyproj

from gis.errors import InputError

GEOKEY_DIRECTORY, GEO_DOUBLES, GEO_ASCII = 34735, 34736, 34737
MODEL_PIXEL_SCALE, MODEL_TIEPOINT = 33550, 33922
WKT_RECORD = 2112
VERTICAL_UNITS_KEY = 4099


@dataclass(frozen=True)
class Heights:
    """What the file's z values are: their unit, its factor to metres, and their vertical CRS (if stated)."""

    unit: str
    to_metres: float
    vertical: str | None  # the vertical CRS's name, None when the file states none
    assumed: bool  # True when no vertical unit is stated and the horizontal one is taken (the LAS convention)

    def describe(self) -> dict:
        return {"unit": self.unit, "to_metres": self.to_metres, "vertical_crs": self.vertical, "assumed": self.assumed}


def header_crs(header: laspy.LasHeader, path) -> pyproj.CRS | None:
    """The CRS stated by the header (WKT VLR first, else GeoTIFF keys), or None when it states none.

    Raises
    ------
    InputError
        A CRS record that neither pyproj nor GDAL can interpret.
    """
    records = [*header.vlrs, *(header.evlrs or [])]
    projection = [r for r in records if r.user_id == "LASF_Projection"]
    wkt = next((r for r in projection if r.record_id == WKT_RECORD), None)
    try:
        if wkt is not None and _text(_record_bytes(wkt)):
            return pyproj.CRS.from_wkt(_text(_record_bytes(wkt)))
        keys = {r.record_id: _record_bytes(r) for r in projection
                if r.record_id in (GEOKEY_DIRECTORY, GEO_DOUBLES, GEO_ASCII)}
        if GEOKEY_DIRECTORY in keys:
            return _geokeys_crs(keys)
    except (pyproj.exceptions.CRSError, ValueError, RuntimeError) as exc:
        raise InputError(f"{path}: the CRS in the header cannot be interpreted ({exc}); "
                         "give the survey's CRS with --crs-in CODE --crs-override") from None
    return None


def horizontal(crs: pyproj.CRS) -> pyproj.CRS:
    """The 2D part of a CRS (the first component of a compound one)."""
    return crs.sub_crs_list[0] if crs.is_compound else crs


def heights_of(crs: pyproj.CRS) -> Heights:
    """The unit of the z values: the vertical CRS's, else a 3D CRS's up axis, else the horizontal unit.

    LAS files whose CRS is 2D carry heights in the horizontal unit (US state-plane surveys in feet
    have their heights in feet), so that unit is taken and said to be assumed.
    """
    if crs.is_compound and len(crs.sub_crs_list) > 1:
        vertical = crs.sub_crs_list[1]
        axis = vertical.axis_info[0]
        return Heights(axis.unit_name, axis.unit_conversion_factor, vertical.name, False)
    if len(crs.axis_info) == 3:
        axis = crs.axis_info[2]
        return Heights(axis.unit_name, axis.unit_conversion_factor, None, False)
    axis = horizontal(crs).axis_info[0]
    return Heights(axis.unit_name, axis.unit_conversion_factor, None, True)


def in_metres(crs: pyproj.CRS) -> pyproj.CRS:
    """The projected CRS's horizontal part with its axes in metres (itself when they already are).

    The projection is the same (PROJ converts the false easting's unit), so the transformation from the
    file's CRS is a pure change of unit: what ``crs: auto`` works in.
    """
    flat = horizontal(crs)
    if all(axis.unit_name == "metre" for axis in flat.axis_info):
        return flat
    from pyproj.crs import ProjectedCRS

    return ProjectedCRS(conversion=flat.coordinate_operation, geodetic_crs=flat.geodetic_crs,
                        name=f"{flat.name} (metres)")


def is_metric(crs: pyproj.CRS) -> bool:
    return all(axis.unit_name == "metre" for axis in horizontal(crs).axis_info)


def check_area_of_use(path, source: pyproj.CRS, bounds: tuple[float, float, float, float],
                      working: pyproj.CRS) -> None:
    """Refuse data lying outside the working CRS's area of use (reprojected there, it would be nonsense).

    ``bounds`` are (xmin, ymin, xmax, ymax) in ``source``. A working CRS that states no area
    (a custom one) is not checked.
    """
    area = working.area_of_use
    if area is None:
        return
    flat = horizontal(source)
    # WGS 84 degrees from Greenwich: a CRS's own geodetic CRS may count from Paris, in grads (NTF)
    to_degrees = pyproj.Transformer.from_crs(flat, "EPSG:4326", always_xy=True)
    west, south, east, north = to_degrees.transform_bounds(*bounds)
    if not np.all(np.isfinite([west, south, east, north])):
        raise InputError(f"{path}: its bounds cannot be placed on the Earth in its CRS {flat.name}; "
                         "check the CRS in the header (or give it with --crs-in CODE --crs-override)")
    if west >= area.west and east <= area.east and south >= area.south and north <= area.north:
        return
    raise InputError(
        f"{path}: the data (lon {west:.2f} to {east:.2f}, lat {south:.2f} to {north:.2f} in its CRS {flat.name}) "
        f"lies outside the area of use of the working CRS {working.name} ({_code(working)}: {area.name.rstrip('.')}); "
        f"set crs: auto in lutece.yml to work in the file's own CRS in metres, or a CRS covering the data"
        f"{_suggestion(west, south, east, north)}")


def _suggestion(west: float, south: float, east: float, north: float) -> str:
    from pyproj.aoi import AreaOfInterest
    from pyproj.database import query_utm_crs_info

    found = query_utm_crs_info(datum_name="WGS 84", area_of_interest=AreaOfInterest(west, south, east, north))
    return f" such as EPSG:{found[0].code} ({found[0].name})" if found else ""


def _code(crs: pyproj.CRS) -> str:
    authority = crs.to_authority()
    return ":".join(authority) if authority else "no EPSG code"


def _record_bytes(record) -> bytes:
    """A VLR's payload, whether laspy parsed it into a known record or left it raw."""
    if hasattr(record, "record_data_bytes"):
        return record.record_data_bytes()
    return bytes(record.record_data)


def _text(data: bytes) -> str:
    return data.split(b"\0", 1)[0].decode("utf-8", errors="replace").strip()


def _geokeys_crs(keys: dict[int, bytes]) -> pyproj.CRS | None:
    """The CRS GDAL reads from the GeoTIFF keys, with the vertical unit key applied."""
    import rasterio
    import tifffile
    from rasterio.io import MemoryFile

    directory = np.frombuffer(keys[GEOKEY_DIRECTORY], dtype="<u2")
    # a pixel scale and tie point make the TIFF georeferenced (GDAL warns about one that is not)
    tags = [(MODEL_PIXEL_SCALE, "d", 3, (1.0, 1.0, 0.0), True), (MODEL_TIEPOINT, "d", 6, (0.0,) * 6, True),
            (GEOKEY_DIRECTORY, "H", len(directory), directory.tolist(), True)]
    if GEO_DOUBLES in keys:
        doubles = np.frombuffer(keys[GEO_DOUBLES][: len(keys[GEO_DOUBLES]) // 8 * 8], dtype="<f8")
        tags.append((GEO_DOUBLES, "d", len(doubles), doubles.tolist(), True))
    if GEO_ASCII in keys:
        tags.append((GEO_ASCII, "s", 0, keys[GEO_ASCII].split(b"\0", 1)[0].decode("latin-1"), True))
    tiff = io.BytesIO()
    tifffile.imwrite(tiff, np.zeros((1, 1), np.uint8), extratags=tags)
    with rasterio.Env(GTIFF_REPORT_COMPD_CS=True), MemoryFile(tiff.getvalue()) as memory, memory.open() as dataset:
        if dataset.crs is None:
            return None
        crs = pyproj.CRS.from_wkt(dataset.crs.to_wkt(version="WKT2_2019"))
    return _with_vertical_unit(crs, _key_value(directory, VERTICAL_UNITS_KEY))


def _key_value(directory: np.ndarray, key: int) -> int | None:
    """The value of a short GeoKey stored in the directory itself (location 0)."""
    entries = directory[4: 4 + 4 * int(directory[3])].reshape(-1, 4)
    found = entries[(entries[:, 0] == key) & (entries[:, 1] == 0)]
    return int(found[0, 3]) if len(found) else None


def _with_vertical_unit(crs: pyproj.CRS, unit_code: int | None) -> pyproj.CRS:
    """Apply VerticalUnitsGeoKey, which GDAL leaves out when the vertical CRS is an EPSG code.

    Files of US surveys state NAVD88 (EPSG:5703, in metres) with heights in US survey feet;
    the vertical CRS becomes the same datum in that unit, without the EPSG code it no longer matches.
    """
    if unit_code is None or not (crs.is_compound and len(crs.sub_crs_list) > 1):
        return crs
    from pyproj.database import get_units_map

    units = {unit.code: unit for unit in get_units_map(auth_name="EPSG", category="linear").values()}
    unit = units.get(str(unit_code))
    vertical = crs.sub_crs_list[1]
    if unit is None or vertical.axis_info[0].unit_name == unit.name:
        return crs
    document = crs.to_json_dict()
    component = document["components"][1]
    component.pop("id", None)
    component["name"] = f"{vertical.name} ({unit.name})"
    for axis in component["coordinate_system"]["axis"]:
        axis["unit"] = {"type": "LinearUnit", "name": unit.name, "conversion_factor": unit.conv_factor,
                        "id": {"authority": "EPSG", "code": int(unit.code)}}
    document.pop("id", None)
    document["name"] = f"{document['components'][0]['name']} + {component['name']}"
    return pyproj.CRS.from_json_dict(document)
