"""CRS and units of real surveys: the shipped lidar-to-2d pipeline gives the same products, in metres in the
working CRS, whatever CRS form and unit the file carries; data a CRS cannot hold is one clear error.

The oracle is the metre version of the same district crop (the sample district's generator output),
run through the same pipeline: the feet and northing-first versions are made from it by PROJ in this test
(always_xy, as LAS stores easting in X), so the products must agree within 1 cm. The crop's points sit
2.5 mm off the cm lattice, so that the few hundredths of a millimetre a round trip through feet costs never
move a point across a raster cell's edge.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import laspy
import numpy as np
import pyproj
import pytest
import rasterio
from click.testing import CliRunner

from gis.cli import cli
from gis.lidar_crs import header_crs, heights_of

US_FOOT = 1200 / 3937
WINDOW = (651000.3, 6861160.3, 651100.3, 6861220.3)  # 100 x 60 m: an axis swap would show
SHIFT = 0.0025  # metres off the cm lattice
LAMBERT_2154 = "EPSG:2154"

# A Lambert conic in US survey feet with heights in US survey feet, as a WKT1 compound CRS without any EPSG code
# (what some producers write): its projection differs from Lambert-93's, so the horizontal needs a real reprojection.
FEET_WKT = (
    'COMPD_CS["Conic (ftUS) + NGF-IGN69 height (ftUS)",'
    'PROJCS["Test conic (US survey feet)",GEOGCS["RGF93",DATUM["Reseau_Geodesique_Francais_1993",'
    'SPHEROID["GRS 1980",6378137,298.257222101]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
    'PROJECTION["Lambert_Conformal_Conic_2SP"],PARAMETER["standard_parallel_1",48.25],'
    'PARAMETER["standard_parallel_2",49.75],PARAMETER["latitude_of_origin",{lat0}],'
    'PARAMETER["central_meridian",{lon0}],PARAMETER["false_easting",3280833.3333],'
    'PARAMETER["false_northing",656166.6667],UNIT["US survey foot",0.304800609601219],'
    'AXIS["Easting",EAST],AXIS["Northing",NORTH]],'
    'VERT_CS["NGF-IGN69 height (ftUS)",VERT_DATUM["Nivellement General de la France - IGN69",2005],'
    'UNIT["US survey foot",0.304800609601219],AXIS["Gravity-related height",UP]]]')
PARIS_FEET = FEET_WKT.format(lat0=49, lon0=3)
CAROLINA_FEET = FEET_WKT.format(lat0=35.25, lon0=-79)  # the same numbers read in North Carolina
# ETRS89 / LCC Europe: axes northing, easting. Not LAEA Europe (EPSG:3035): PROJ's inverse of it is good to 0.4 mm
# only, enough to move a corner cell's centre across the outline of the DTM's TIN (3 cm in that cell).
NORTHING_FIRST = "EPSG:3034"


def write_crop(path: Path, xyz: np.ndarray, source: laspy.LasData, wkt: str, scale: float) -> Path:
    header = laspy.LasHeader(point_format=6, version="1.4")
    header.scales = np.array([scale, scale, scale])
    header.offsets = np.floor(xyz.min(axis=0))
    header.vlrs.append(laspy.vlrs.known.WktCoordinateSystemVlr(wkt))
    header.global_encoding.wkt = True
    data = laspy.LasData(header)
    data.x, data.y, data.z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    for name in ("classification", "return_number", "number_of_returns", "intensity"):
        data[name] = source[name]
    data.write(path)
    return path


@pytest.fixture(scope="module")
def crops(district, tmp_path_factory) -> dict[str, Path]:
    """The metre crop and its feet and northing-first versions, made from it by PROJ."""
    folder = tmp_path_factory.mktemp("crs")
    cloud = laspy.read(district / "district.laz")
    x, y = np.asarray(cloud.x), np.asarray(cloud.y)
    inside = (x >= WINDOW[0]) & (x < WINDOW[2]) & (y >= WINDOW[1]) & (y < WINDOW[3])
    points = cloud.points[inside]
    metres = np.column_stack([np.asarray(points.x) + SHIFT, np.asarray(points.y) + SHIFT, np.asarray(points.z)])
    kept = laspy.LasData(cloud.header, points)
    to_feet = pyproj.Transformer.from_crs(LAMBERT_2154, pyproj.CRS.from_wkt(PARIS_FEET).sub_crs_list[0], always_xy=True)
    to_lcc = pyproj.Transformer.from_crs(LAMBERT_2154, NORTHING_FIRST, always_xy=True)
    feet = np.column_stack([*to_feet.transform(metres[:, 0], metres[:, 1]), metres[:, 2] / US_FOOT])
    lcc = np.column_stack([*to_lcc.transform(metres[:, 0], metres[:, 1]), metres[:, 2]])
    return {
        "metres": write_crop(folder / "metres.las", metres, kept, pyproj.CRS("EPSG:2154+5720").to_wkt("WKT1_GDAL"), 1e-4),
        "feet": write_crop(folder / "feet.las", feet, kept, PARIS_FEET, 1e-5),
        "northing_first": write_crop(folder / "lcc.las", lcc, kept, pyproj.CRS(NORTHING_FIRST).to_wkt(), 1e-5),
        "carolina": write_crop(folder / "carolina.las", feet, kept, CAROLINA_FEET, 1e-5),
    }


def run(*arguments: str, config: Path | None = None) -> SimpleNamespace:
    """`lutece pipeline run` in-process: its exit code and stderr."""
    head = ["-q"] + (["--config", str(config)] if config else [])
    result = CliRunner().invoke(cli, [*head, "pipeline", "run", *arguments])
    return SimpleNamespace(returncode=result.exit_code, stderr=result.stderr)


@pytest.fixture(scope="module")
def products(crops, tmp_path_factory) -> dict[str, Path]:
    """The shipped lidar-to-2d pipeline's products of the three versions, in the working CRS EPSG:2154."""
    out = {}
    for name in ("metres", "feet", "northing_first"):
        out[name] = tmp_path_factory.mktemp(f"products-{name}")
        result = run("lidar-to-2d", "--input", str(crops[name]), "--output", str(out[name]))
        assert result.returncode == 0, result.stderr
    return out


def test_the_feet_file_is_read_as_feet(crops):
    with laspy.open(crops["feet"]) as reader:
        crs = header_crs(reader.header, crops["feet"])
    assert crs.to_epsg() is None and crs.is_compound
    heights = heights_of(crs)
    assert heights.to_metres == pytest.approx(US_FOOT) and not heights.assumed


@pytest.mark.parametrize("version", ["feet", "northing_first"])
def test_dtm_equals_the_metre_version(products, version):
    for name in ("dtm_0.5m.tif", "dtm_1m.tif"):
        with rasterio.open(products["metres"] / name) as ref, rasterio.open(products[version] / name) as got:
            assert got.crs.to_epsg() == 2154
            assert got.res == pytest.approx(ref.res, abs=1e-9)  # cells in metres, not feet
            if version == "feet":  # the same projection's meridian: the same extent
                assert tuple(got.bounds) == pytest.approx(tuple(ref.bounds), abs=0.01)
            else:  # rotated: the tile's box holds the metre version's, on the same lattice
                assert got.bounds.left <= ref.bounds.left and got.bounds.right >= ref.bounds.right
                assert got.bounds.bottom <= ref.bounds.bottom and got.bounds.top >= ref.bounds.top
                assert (ref.bounds.left - got.bounds.left) / ref.res[0] == pytest.approx(
                    round((ref.bounds.left - got.bounds.left) / ref.res[0]), abs=1e-6)
            window = got.window(*ref.bounds)
            expected, found = ref.read(1), got.read(1, window=window.round_offsets().round_lengths())
            assert found.shape == expected.shape
            both = np.isfinite(expected) & np.isfinite(found)
            assert both.sum() > 0.95 * expected.size
            assert np.abs(found[both] - expected[both]).max() <= 0.01, name  # metres, not feet


@pytest.mark.parametrize("version", ["feet", "northing_first"])
def test_footprints_equal_the_metre_version(products, version):
    ref = gpd.read_file(products["metres"] / "layers.gpkg", layer="footprints")
    got = gpd.read_file(products[version] / "layers.gpkg", layer="footprints")
    assert len(ref) >= 5 and len(got) == len(ref)
    assert got.crs.to_epsg() == 2154
    for polygon, height in zip(ref.geometry, ref["height_m"]):
        match = got[got.geometry.representative_point().within(polygon)]
        assert len(match) == 1
        assert match.geometry.iloc[0].hausdorff_distance(polygon) <= 0.01
        assert abs(match["height_m"].iloc[0] - height) <= 0.01  # metres, not feet


def test_lineage_says_the_input_crs_and_height_unit(products):
    lineage = json.loads((products["feet"] / "dtm_1m.tif.lineage.json").read_text())["layers"]["dtm_1m"]
    source = lineage["inputs"][0]
    assert source["crs"] == "Conic (ftUS) + NGF-IGN69 height (ftUS)" and source["heights"]["to_metres"] == pytest.approx(US_FOOT)
    assert lineage["crs"] == "EPSG:2154"


def test_outside_the_working_crs_area_is_one_error(crops, tmp_path):
    out = tmp_path / "out"
    result = run("lidar-to-2d", "--input", str(crops["carolina"]), "--output", str(out))
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    for fragment in ("carolina.las", "Test conic", "Lambert-93", "EPSG:2154", "crs: auto"):
        assert fragment in result.stderr
    assert not any(out.glob("*.tif")) and not any(out.glob("*.gpkg"))


DTM_ONLY = """
name: dtm-only
output: {output}
pipeline:
  - {{type: readers.las, tag: read, filename: {input}}}
  - {{type: writers.dtm, tag: dtm, resolution: 1.0}}
"""


def test_crs_auto_works_in_the_files_crs_in_metres(crops, products, tmp_path):
    config = tmp_path / "lutece.yml"
    config.write_text("crs: auto\n", encoding="utf-8")
    pipeline = tmp_path / "p.yml"
    pipeline.write_text(DTM_ONLY.format(output=tmp_path / "out", input=crops["carolina"]), encoding="utf-8")
    result = run(str(pipeline), config=config)
    assert result.returncode == 0, result.stderr
    with rasterio.open(tmp_path / "out" / "dtm_1m.tif") as got, rasterio.open(products["metres"] / "dtm_1m.tif") as ref:
        crs = pyproj.CRS.from_wkt(got.crs.to_wkt())
        assert "Test conic" in crs.name and all(axis.unit_name == "metre" for axis in crs.axis_info)
        assert got.res == (1.0, 1.0)
        width, height = got.bounds.right - got.bounds.left, got.bounds.top - got.bounds.bottom
        assert 100 <= width <= 103 and 60 <= height <= 63  # metres (in feet it would be 328 x 197)
        values, expected = got.read(1), ref.read(1)
        assert np.nanmin(values) == pytest.approx(np.nanmin(expected), abs=0.05)  # heights in metres
        assert np.nanmax(values) == pytest.approx(np.nanmax(expected), abs=0.05)


TREES_ONLY = """
name: trees-only
output: {output}
pipeline:
  - {{type: readers.las, tag: read, filename: {inputs}}}
  - {{type: writers.trees, tag: trees, resolution: 0.5}}
"""


def test_tiles_reprojected_into_a_rotated_crs_find_each_tree_once(crops, products, tmp_path):
    """Two halves of the northing-first crop: rotated into EPSG:2154 their boxes overlap, the trees do not double."""
    cloud = laspy.read(crops["northing_first"])
    middle = np.median(np.asarray(cloud.x))
    halves = []
    for name, keep in (("west", np.asarray(cloud.x) < middle), ("east", np.asarray(cloud.x) >= middle)):
        part = laspy.LasData(cloud.header, cloud.points[keep].copy())
        part.write(tmp_path / f"{name}.las")
        halves.append(str(tmp_path / f"{name}.las"))
    pipeline = tmp_path / "trees.yml"
    pipeline.write_text(TREES_ONLY.format(output=tmp_path / "out", inputs=halves), encoding="utf-8")
    result = run(str(pipeline))
    assert result.returncode == 0, result.stderr
    expected = gpd.read_file(products["metres"] / "layers.gpkg", layer="trees")
    found = gpd.read_file(tmp_path / "out" / "layers.gpkg", layer="trees")
    assert len(expected) >= 10
    assert len(found) == len(expected)
    assert found.geometry.distance(expected.geometry.union_all()).max() <= 0.01


def test_the_public_lineage_in_the_cog_says_the_height_unit(products):
    with rasterio.open(products["feet"] / "dtm_1m.tif") as dtm:
        public = json.loads(dtm.tags()["LUTECE_LINEAGE"])
    assert public["inputs"][0]["file"] == "feet.las" and "/" not in json.dumps(public["inputs"])
    assert public["inputs"][0]["heights"]["unit"] == "US survey foot"
