"""Point-cloud tilesets of the sample district: valid glTF, sound structure, placed exactly, nothing lost."""

from __future__ import annotations

import json

import geopandas as gpd
import laspy
import numpy as np
import pyproj
import pytest
import shapely
from tiles_support import MAX_POINTS, validate_gltf
from scipy.spatial import cKDTree

from gis.asprs import NOISES, TERRAIN
from tiles.tileset import check_tileset, iter_tiles

LAMBERT93_PROJ = "+proj=lcc +lat_0=46.5 +lon_0=3 +lat_1=49 +lat_2=44 +x_0=700000 +y_0=6600000 +ellps=GRS80"


@pytest.fixture(scope="module")
def source(district):
    """The sample district's points as laspy reads them: the oracle of what the tiles must hold."""
    las = laspy.read(district / "district.laz")
    return {"xyz": np.column_stack([las.x, las.y, las.z]), "classification": np.asarray(las.classification),
            "intensity": np.asarray(las.intensity), "return_number": np.asarray(las.return_number)}


@pytest.fixture(scope="module")
def decoded(tilesets):
    """Every tileset checked, with its decoded contents."""
    result = {}
    for name, folder in tilesets.items():
        contents = []
        report = check_tileset(folder / "tileset.json", contents)
        result[name] = (report, contents)
    return result


def gathered(contents, name):
    return np.concatenate([c.attributes[name] for c in contents])


@pytest.mark.slow
def test_every_glb_passes_the_khronos_validator(tilesets):
    files = sorted(tilesets["full"].rglob("*.glb")) + sorted(tilesets["terrain"].rglob("*.glb"))
    assert len(files) > 20
    verdicts = validate_gltf(files)
    assert len(verdicts) == len(files)
    failing = [v for v in verdicts if v["errors"]]
    assert not failing, failing[:3]


@pytest.mark.parametrize("product", ["full", "streets", "terrain"])
def test_tileset_structure(tilesets, decoded, product):
    report, contents = decoded[product]
    assert report.problems == []
    assert report.contents == len(contents) > 0
    assert report.max_depth >= 3  # the root tileset, a subtree, and an octree below it
    assert max(len(c.ecef) for c in contents) <= MAX_POINTS
    document = json.loads((tilesets[product] / "tileset.json").read_text())
    assert document["asset"]["version"] == ("1.0" if product == "streets" else "1.1")
    subtree = json.loads((tilesets[product] / document["root"]["children"][0]["content"]["uri"]).read_text())
    for tile, _ in iter_tiles(subtree["root"]):
        assert {"boundingVolume", "geometricError", "refine", "content"} <= set(tile)
        for child in tile.get("children", []):
            if child.get("children"):  # an inner tile: its sampling grid is half its parent's
                assert child["geometricError"] == pytest.approx(tile["geometricError"] / 2)
            else:
                assert child["geometricError"] < tile["geometricError"]


def test_attributes_survive_the_full_product(decoded, source):
    _, contents = decoded["full"]
    kept = ~np.isin(source["classification"], NOISES)
    classes = gathered(contents, "classification")
    assert len(classes) == kept.sum()  # nothing lost, nothing duplicated
    assert np.array_equal(np.bincount(classes, minlength=256), np.bincount(source["classification"][kept], minlength=256))
    assert np.array_equal(np.bincount(gathered(contents, "intensity"), minlength=65536),
                          np.bincount(source["intensity"][kept], minlength=65536))
    assert np.array_equal(np.bincount(gathered(contents, "return_number"), minlength=16),
                          np.bincount(source["return_number"][kept], minlength=16))


@pytest.mark.parametrize("product", ["full", "streets"])  # glb (1.1) and pnts (1.0)
def test_decoded_points_land_within_a_centimetre_of_the_source(decoded, source, product):
    """Each decoded point, through its tile transforms, is a source point placed by PROJ through EGM96."""
    _, contents = decoded[product]
    reference = pyproj.Transformer.from_pipeline(
        f"+proj=pipeline +step +inv {LAMBERT93_PROJ} +step +proj=vgridshift +grids=/usr/share/proj/egm96_15.gtx +multiplier=1 "
        "+step +proj=cart +ellps=GRS80")
    ecef = np.column_stack(reference.transform(*source["xyz"].T))
    tree = cKDTree(ecef)
    points = np.concatenate([c.ecef for c in contents])
    distance, nearest = tree.query(points, k=2, distance_upper_bound=0.05)
    assert np.max(distance[:, 0]) < 0.01
    # where no second source point lies within 1 cm, the match is unambiguous: one decoded point per source
    # point, carrying that point's attributes
    clear = distance[:, 1] > 0.01
    assert clear.mean() > 0.99
    assert len(np.unique(nearest[clear, 0])) == clear.sum()
    for name in ("classification", "intensity", "return_number"):
        assert np.array_equal(gathered(contents, name)[clear], source[name][nearest[clear, 0]])


def test_streets_product_holds_the_corridors(district, decoded, source):
    _, contents = decoded["streets"]
    streets = gpd.read_file(district / "district.gpkg", layer="streets")
    reach = streets["width_m"].to_numpy() / 2 + 2.0  # the default margin
    xyz, classes = source["xyz"], source["classification"]
    points = shapely.points(xyz[:, 0], xyz[:, 1])
    # distance to each centreline, compared with its reach: the corridor without building any buffer polygon
    slack = np.min([shapely.distance(points, line) - r for line, r in zip(streets.geometry, reach)], axis=0)
    usable = ~np.isin(classes, NOISES)
    surely_in, maybe_in = usable & (slack < -0.05), usable & (slack < 0.05)
    count = len(gathered(contents, "classification"))
    assert surely_in.sum() <= count <= maybe_in.sum()
    assert 0.2 * len(xyz) < count < 0.8 * len(xyz)
    assert not np.isin(gathered(contents, "classification"), NOISES).any()


def test_terrain_product_is_ground_and_water_one_point_per_metre(decoded, source):
    _, contents = decoded["terrain"]
    classes = gathered(contents, "classification")
    assert set(np.unique(classes)) <= set(TERRAIN)
    terrain = np.isin(source["classification"], TERRAIN)
    cells = np.unique(np.floor(source["xyz"][terrain, :2]).astype(np.int64), axis=0)
    assert len(classes) == len(cells)


def test_the_height_model_is_in_the_metadata_and_the_lineage(tilesets):
    document = json.loads((tilesets["full"] / "tileset.json").read_text())
    assert document["metadata"]["properties"]["geoid"] == "EGM96 (egm96_15.gtx)"
    assert document["asset"]["extras"]["lutece"]["heights"] == "orthometric"
    lineage = json.loads(tilesets["full"].with_name("full.lineage.json").read_text())
    assert lineage["heights"]["geoid"] == "EGM96 (egm96_15.gtx)"
    assert len(lineage["heights"]["geoid_sha256"]) == 64
    assert len(lineage["inputs"][0]["sha256"]) == 64


def test_colours_survive(tmp_path):
    """A survey with RGB (point format 7): COLOR_0 holds its colours (16-bit LAS colours, top byte)."""
    from tiles.job import TilerSettings, convert

    rng = np.random.default_rng(5)
    header = laspy.LasHeader(point_format=7, version="1.4")
    header.scales, header.offsets = [0.01] * 3, [651000, 6861000, 0]
    header.add_crs(pyproj.CRS("EPSG:2154"))
    las = laspy.LasData(header)
    n = 30_000
    las.x, las.y, las.z = rng.uniform(651000, 651100, n), rng.uniform(6861000, 6861100, n), rng.uniform(30, 40, n)
    las.classification = np.full(n, 2, np.uint8)
    colours = rng.integers(0, 256, (n, 3)).astype(np.uint16)
    las.red, las.green, las.blue = (colours * 257).T
    las.write(tmp_path / "rgb.laz")
    out = convert([str(tmp_path / "rgb.laz")], tmp_path / "rgb", TilerSettings(max_points=5000)).output
    contents = []
    assert check_tileset(out / "tileset.json", contents).problems == []
    decoded = np.concatenate([c.attributes["rgb"] for c in contents])
    expected = colours.astype(np.uint8)
    assert len(decoded) == n
    assert np.array_equal(decoded[np.lexsort(decoded.T)], expected[np.lexsort(expected.T)])


def test_a_survey_in_us_feet_is_tiled_in_metres(tmp_path):
    """A compound CRS in US survey feet, horizontal and vertical (North Carolina's state plane + NAVD88 in
    ftUS): each decoded point within 1 cm of where PROJ places the same point given in metres (the same
    projection's metre version, EPSG:32119), its height taken to metres before the geoid is added."""
    from tiles.job import TilerSettings, convert

    us_foot = 1200 / 3937
    rng = np.random.default_rng(11)
    n = 20_000
    metres = np.column_stack([rng.uniform(600000, 600200, n), rng.uniform(200000, 200150, n), rng.uniform(100, 130, n)])
    header = laspy.LasHeader(point_format=6, version="1.4")
    header.scales, header.offsets = [0.001] * 3, [1968500, 656000, 0]
    header.add_crs(pyproj.CRS("EPSG:2264+6360"))
    las = laspy.LasData(header)
    las.x, las.y, las.z = (metres / us_foot).T
    las.classification = np.full(n, 2, np.uint8)
    las.write(tmp_path / "feet.laz")
    out = convert([str(tmp_path / "feet.laz")], tmp_path / "feet", TilerSettings(max_points=5000)).output
    contents = []
    assert check_tileset(out / "tileset.json", contents).problems == []
    to_lonlat = pyproj.Transformer.from_crs("EPSG:32119", "EPSG:4326", always_xy=True)
    to_ecef = pyproj.Transformer.from_pipeline(
        "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
        "+step +proj=vgridshift +grids=/usr/share/proj/egm96_15.gtx +multiplier=1 +step +proj=cart +ellps=WGS84")
    stored = np.column_stack([las.x, las.y, las.z]) * us_foot  # the file's points, as quantised, in metres
    lon, lat = to_lonlat.transform(stored[:, 0], stored[:, 1])
    expected = np.column_stack(to_ecef.transform(lon, lat, stored[:, 2]))
    points = np.concatenate([c.ecef for c in contents])
    assert len(points) == n
    distance, _ = cKDTree(expected).query(points)
    assert distance.max() < 0.01
