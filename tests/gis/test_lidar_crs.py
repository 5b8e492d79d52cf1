"""Every CRS form a LAS header may carry, read the same way: WKT (OGC, ESRI, compound, no EPSG code) and
GeoTIFF keys (EPSG codes, a user-defined projection, vertical units); heights' unit; the area-of-use error."""

from __future__ import annotations

import struct
from pathlib import Path

import laspy
import numpy as np
import pyproj
import pytest

from gis.errors import InputError
from gis.lidar_crs import check_area_of_use, header_crs, heights_of, in_metres

US_FOOT = 1200 / 3937
PARIS = (651000.0, 6861000.0)  # Lambert-93

CONIC_FEET_WKT = (
    'COMPD_CS["Conic (ftUS) + NGF-IGN69 height (ftUS)",'
    'PROJCS["Test conic (US survey feet)",GEOGCS["RGF93",DATUM["Reseau_Geodesique_Francais_1993",'
    'SPHEROID["GRS 1980",6378137,298.257222101]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
    'PROJECTION["Lambert_Conformal_Conic_2SP"],PARAMETER["standard_parallel_1",48.25],'
    'PARAMETER["standard_parallel_2",49.75],PARAMETER["latitude_of_origin",49],PARAMETER["central_meridian",3],'
    'PARAMETER["false_easting",3280833.3333],PARAMETER["false_northing",656166.6667],'
    'UNIT["US survey foot",0.304800609601219],AXIS["Easting",EAST],AXIS["Northing",NORTH]],'
    'VERT_CS["NGF-IGN69 height (ftUS)",VERT_DATUM["Nivellement General de la France - IGN69",2005],'
    'UNIT["US survey foot",0.304800609601219],AXIS["Gravity-related height",UP]]]')

# The same CRS as GeoTIFF keys (GeoTIFF 1.1 key ids): user-defined projection, its parameters in the doubles.
CONIC_FEET_KEYS = [
    (1024, 0, 1, 1), (1025, 0, 1, 1), (2048, 0, 1, 4171),  # projected model, pixel is area, RGF93 geographic
    (3072, 0, 1, 32767), (3074, 0, 1, 32767), (3075, 0, 1, 8), (3076, 0, 1, 9003),  # user-defined LCC 2SP, ftUS
    (3078, 34736, 1, 0), (3079, 34736, 1, 1), (3084, 34736, 1, 2), (3085, 34736, 1, 3),
    (3086, 34736, 1, 4), (3087, 34736, 1, 5),
    (4096, 0, 1, 5720), (4099, 0, 1, 9003),  # NGF-IGN69 height, heights in US survey feet
]
CONIC_FEET_DOUBLES = [48.25, 49.75, 3.0, 49.0, 3280833.3333, 656166.6667]


def write_with_vlrs(path: Path, vlrs: list, wkt: bool = False) -> Path:
    header = laspy.LasHeader(point_format=6 if wkt else 1, version="1.4" if wkt else "1.2")
    header.scales = np.array([0.01, 0.01, 0.01])
    for vlr in vlrs:
        header.vlrs.append(vlr)
    if wkt:
        header.global_encoding.wkt = True
    data = laspy.LasData(header)
    data.x, data.y, data.z = np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([0.0, 1.0])
    data.write(path)
    return path


def geokeys(keys, doubles=None) -> list:
    directory = [1, 1, 0, len(keys)] + [value for key in keys for value in key]
    vlrs = [laspy.VLR("LASF_Projection", 34735, record_data=struct.pack(f"<{len(directory)}H", *directory))]
    if doubles:
        vlrs.append(laspy.VLR("LASF_Projection", 34736, record_data=struct.pack(f"<{len(doubles)}d", *doubles)))
    return vlrs


def crs_of(path: Path) -> pyproj.CRS:
    with laspy.open(path) as reader:
        return header_crs(reader.header, path)


def paris_in(crs: pyproj.CRS) -> tuple[float, float]:
    flat = crs.sub_crs_list[0] if crs.is_compound else crs
    return pyproj.Transformer.from_crs("EPSG:2154", flat, always_xy=True).transform(*PARIS)


def test_wkt1_compound_in_feet_without_epsg(tmp_path):
    path = write_with_vlrs(tmp_path / "wkt.las", [laspy.vlrs.known.WktCoordinateSystemVlr(CONIC_FEET_WKT)], wkt=True)
    crs = crs_of(path)
    assert crs.is_compound and crs.to_epsg() is None
    heights = heights_of(crs)
    assert heights.to_metres == pytest.approx(US_FOOT) and heights.vertical.startswith("NGF-IGN69") and not heights.assumed


def test_geotiff_keys_of_a_user_defined_projection_equal_its_wkt(tmp_path):
    path = write_with_vlrs(tmp_path / "keys.las", geokeys(CONIC_FEET_KEYS, CONIC_FEET_DOUBLES))
    crs = crs_of(path)
    reference = pyproj.CRS.from_wkt(CONIC_FEET_WKT)
    assert paris_in(crs) == pytest.approx(paris_in(reference), abs=1e-6)  # feet: same projection, same unit
    heights = heights_of(crs)
    assert heights.to_metres == pytest.approx(US_FOOT), "VerticalUnitsGeoKey says US survey feet"
    assert "NGF-IGN69" in heights.vertical


def test_geotiff_keys_with_epsg_codes_and_vertical_units(tmp_path):
    # NAD83(2011) / North Carolina (ftUS) with NAVD88 heights in US survey feet, as US surveys deliver them
    path = write_with_vlrs(tmp_path / "nc.las", geokeys([(1024, 0, 1, 1), (3072, 0, 1, 6543), (4096, 0, 1, 5703),
                                                         (4099, 0, 1, 9003)]))
    crs = crs_of(path)
    assert crs.sub_crs_list[0].to_epsg() == 6543
    assert heights_of(crs).to_metres == pytest.approx(US_FOOT) and "NAVD88" in heights_of(crs).vertical


def test_laspy_geokeys_of_lambert93(tmp_path):
    header = laspy.LasHeader(point_format=1, version="1.2")
    header.add_crs(pyproj.CRS("EPSG:2154"))
    data = laspy.LasData(header)
    data.x, data.y, data.z = np.array([PARIS[0]]), np.array([PARIS[1]]), np.array([35.0])
    data.write(tmp_path / "l93.las")
    crs = crs_of(tmp_path / "l93.las")
    assert crs.to_epsg() == 2154
    assert heights_of(crs).to_metres == 1.0 and heights_of(crs).assumed  # no vertical CRS: the horizontal unit


def test_esri_wkt(tmp_path):
    esri = pyproj.CRS("EPSG:2154").to_wkt("WKT1_ESRI")
    path = write_with_vlrs(tmp_path / "esri.las", [laspy.vlrs.known.WktCoordinateSystemVlr(esri)], wkt=True)
    assert paris_in(crs_of(path)) == pytest.approx(PARIS, abs=1e-6)


def test_no_crs_and_unreadable_crs(tmp_path):
    assert crs_of(write_with_vlrs(tmp_path / "none.las", [])) is None
    bad = write_with_vlrs(tmp_path / "bad.las", [laspy.vlrs.known.WktCoordinateSystemVlr('PROJCS["broken",')], wkt=True)
    with pytest.raises(InputError, match="bad.las: the CRS in the header cannot be interpreted.*--crs-override"):
        crs_of(bad)


def test_a_2d_crs_in_international_feet_has_heights_in_feet():
    heights = heights_of(pyproj.CRS("EPSG:2222"))  # NAD83 / Arizona East (ft)
    assert heights.to_metres == pytest.approx(0.3048) and heights.assumed


def test_in_metres_is_the_same_projection():
    feet = pyproj.CRS.from_wkt(CONIC_FEET_WKT)
    metres = in_metres(feet)
    assert all(axis.unit_name == "metre" for axis in metres.axis_info) and len(metres.axis_info) == 2
    x_ft, y_ft = paris_in(feet)
    x_m, y_m = pyproj.Transformer.from_crs(feet.sub_crs_list[0], metres, always_xy=True).transform(x_ft, y_ft)
    assert (x_m, y_m) == pytest.approx((x_ft * US_FOOT, y_ft * US_FOOT), abs=1e-6)
    lambert = pyproj.CRS("EPSG:2154")
    assert in_metres(lambert) is lambert


def test_outside_the_area_of_use_names_both_crss_and_the_fix():
    carolina = pyproj.CRS("EPSG:6543")
    x, y = pyproj.Transformer.from_crs("EPSG:4326", carolina, always_xy=True).transform(-79.0, 35.5)
    with pytest.raises(InputError) as caught:
        check_area_of_use("tile.las", carolina, (x, y, x + 1000, y + 1000), pyproj.CRS("EPSG:2154"))
    message = str(caught.value)
    for fragment in ("tile.las", "North Carolina", "Lambert-93", "EPSG:2154", "crs: auto", "EPSG:32617"):
        assert fragment in message
    check_area_of_use("tile.las", carolina, (x, y, x + 1000, y + 1000), pyproj.CRS("EPSG:32617"))  # inside: no error

