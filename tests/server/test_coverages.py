"""Coverages and map previews of raster layers through a real HTTP server, on both backends.

The oracle is the COG read by rasterio: a subset's values are the COG's own
values on the subset's grid, and its grid covers the asked box by less than a pixel.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import rasterio
import requests
from rasterio.windows import from_bounds

from delivery_support import *  # noqa: F401,F403
from delivery_support import LiveServer, delivery_app, raw_get

EPSG2154 = "http://www.opengis.net/def/crs/EPSG/0/2154"


@pytest.fixture(scope="module")
def cog(tmp_path_factory, district):
    from rasterio.shutil import copy

    path = tmp_path_factory.mktemp("cog") / "dtm.tif"
    copy(district / "truth-dtm.tif", path, driver="COG", overview_resampling="average")
    return path


@pytest.fixture(scope="module")
def served(city, cog):
    city.publish(cog, "mnt", licence="etalab-2.0", access="open", title="MNT")
    city.publish(cog, "mnt-partenaires", licence="restricted", access="shared", title="MNT partenaires")
    with LiveServer(delivery_app(city)) as server:
        yield {"url": server.url, "city": city}


def source_values(cog, bounds) -> np.ndarray:
    with rasterio.open(cog) as source:
        window = from_bounds(*bounds, transform=source.transform)
        return source.read(1, window=window.round_offsets().round_lengths())


def check_subset(cog, body: bytes, asked) -> None:
    with rasterio.open(io.BytesIO(body)) as subset, rasterio.open(cog) as source:
        assert subset.crs == source.crs and subset.res == source.res
        left, bottom, right, top = subset.bounds
        pixel = source.res[0]
        assert left <= asked[0] < left + pixel and right - pixel < asked[2] <= right
        assert bottom <= asked[1] < bottom + pixel and top - pixel < asked[3] <= top
        assert np.array_equal(subset.read(1), source_values(cog, subset.bounds))


def test_coverage_subset_by_bbox_in_the_native_crs(served, cog):
    asked = (651100.3, 6861150.2, 651180.7, 6861210.9)
    response = requests.get(f"{served['url']}/collections/mnt/coverage",
                            params={"bbox": ",".join(map(str, asked)), "bbox-crs": EPSG2154})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("image/tiff")
    check_subset(cog, response.content, asked)


def test_coverage_subset_by_bbox_in_crs84(served, cog):
    from pyproj import Transformer

    west, south = Transformer.from_crs(2154, 4326, always_xy=True).transform(651100, 6861150)
    east, north = Transformer.from_crs(2154, 4326, always_xy=True).transform(651200, 6861250)
    response = requests.get(f"{served['url']}/collections/mnt/coverage", params={"bbox": f"{west},{south},{east},{north}"})
    assert response.status_code == 200
    with rasterio.open(io.BytesIO(response.content)) as subset:
        left, bottom, right, top = subset.bounds
        assert left <= 651100 and right >= 651200 and bottom <= 6861150 and top >= 6861250
        assert np.array_equal(subset.read(1), source_values(cog, subset.bounds))


def test_owslib_coverage_client(served, cog):
    from owslib.ogcapi.coverages import Coverages

    client = Coverages(served["url"])
    body = client.coverage("mnt", subset=[("x", 651120, 651160), ("y", 6861180, 6861220)]).read()
    check_subset(cog, body, (651120, 6861180, 651160, 6861220))


def test_whole_coverage_and_png(served, cog):
    for query in ("", "?bbox=-1e308,-1e308,1e308,1e308&bbox-crs=EPSG:2154"):
        whole = requests.get(f"{served['url']}/collections/mnt/coverage{query}")
        with rasterio.open(io.BytesIO(whole.content)) as subset, rasterio.open(cog) as source:
            assert subset.bounds == source.bounds and np.array_equal(subset.read(1), source.read(1))
    picture = requests.get(f"{served['url']}/collections/mnt/coverage", params={"f": "png", "subset": "x(651100:651200),y(6861150:6861250)"})
    assert picture.headers["Content-Type"] == "image/png" and picture.content[:8] == b"\x89PNG\r\n\x1a\n"
    with rasterio.open(io.BytesIO(picture.content)) as png:
        grey = png.read(1).astype(float)
    values = source_values(cog, (651100, 6861150, 651200, 6861250)).astype(float)
    assert grey.shape == values.shape
    assert np.corrcoef(grey.ravel(), values.ravel())[0, 1] > 0.99  # a picture of the same terrain


def test_map_preview(served, cog):
    response = requests.get(f"{served['url']}/collections/mnt/map", params={"width": 300, "height": 200})
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    with rasterio.open(io.BytesIO(response.content)) as png:
        assert (png.width, png.height, png.count) == (300, 200, 2)
    default = requests.get(f"{served['url']}/collections/mnt/map")
    with rasterio.open(io.BytesIO(default.content)) as png, rasterio.open(cog) as source:
        assert max(png.width, png.height) == 512
        assert abs(png.width / png.height - source.width / source.height) < 0.01
    again = requests.get(f"{served['url']}/collections/mnt/map", headers={"If-None-Match": default.headers["ETag"]})
    assert again.status_code == 304


def test_a_map_covers_exactly_its_bbox_transparent_beyond_the_raster(served, cog):
    """A map tile at the raster's edge (the web viewer's) is a picture of the whole box, not of the part inside."""
    with rasterio.open(cog) as source:
        left, bottom, right, top = source.bounds
    asked = (left - 100.0, bottom + 100.0, left + 100.0, bottom + 300.0)  # the west half is outside
    response = requests.get(f"{served['url']}/collections/mnt/map", params={
        "bbox": ",".join(map(str, asked)), "bbox-crs": EPSG2154, "width": 200, "height": 200})
    assert response.status_code == 200
    with rasterio.open(io.BytesIO(response.content)) as png:
        alpha = png.read(2)
    assert (alpha[:, :98] == 0).all() and (alpha[:, 102:] == 255).all()


WEB_MERCATOR_HALF = 20037508.342789244  # the WebMercatorQuad's half side, metres


def web_mercator_tile(zoom: int, column: int, row: int) -> tuple[float, float, float, float]:
    """The EPSG:3857 box of a WebMercatorQuad tile (OGC Two Dimensional Tile Matrix Set)."""
    side = 2 * WEB_MERCATOR_HALF / 2 ** zoom
    west, north = -WEB_MERCATOR_HALF + column * side, WEB_MERCATOR_HALF - row * side
    return west, north - side, west + side, north


def expected_tile(source: np.ndarray, origin, box, size: int, shift=(0.0, 0.0)) -> np.ndarray:
    """The tile a correct map draws: each tile pixel's centre taken through PROJ to Lambert-93 and read from the
    1 m source by bilinear interpolation; ``shift`` moves the centres by a fraction of a tile pixel."""
    from pyproj import Transformer
    from scipy.ndimage import map_coordinates

    west, south, east, north = box
    pixel = (east - west) / size
    columns, rows = np.meshgrid(np.arange(size) + 0.5 + shift[0], np.arange(size) + 0.5 + shift[1])
    x, y = Transformer.from_crs(3857, 2154, always_xy=True).transform(west + columns * pixel, north - rows * pixel)
    return map_coordinates(source.astype(float), [origin[1] - y - 0.5, x - origin[0] - 0.5], order=1)


@pytest.fixture(scope="module")
def noise(served, tmp_path_factory):
    """A 1 m Lambert-93 raster of random bytes (every pixel a landmark), published as ``bruit``."""
    from rasterio.transform import from_origin

    origin = (651000.0, 6861300.0)
    values = np.random.default_rng(16).integers(0, 256, (200, 200), dtype=np.uint8)
    path = tmp_path_factory.mktemp("noise") / "noise.tif"
    with rasterio.open(path, "w", driver="COG", width=200, height=200, count=1, dtype="uint8", crs="EPSG:2154",
                       transform=from_origin(*origin, 1.0, 1.0)) as out:
        out.write(values, 1)
    served["city"].publish(path, "bruit", licence="etalab-2.0", access="open", title="Bruit")
    return values, origin


def test_web_map_tiles_land_within_half_a_pixel(served, noise):
    """Two adjacent WebMercatorQuad tiles (as MapLibre asks for them) match, in every 64-pixel block, the raster
    read through PROJ at their pixel centres better than the same read half a pixel off in any direction: no
    shift, rotation or stretch, so no step at the seams."""
    from pyproj import Transformer

    values, origin = noise
    lon, lat = Transformer.from_crs(2154, 4326, always_xy=True).transform(origin[0] + 100, origin[1] - 100)
    x, y = Transformer.from_crs(4326, 3857, always_xy=True).transform(lon, lat)
    zoom, side = 19, 2 * WEB_MERCATOR_HALF / 2 ** 19  # 0.2 m ground pixels, finer than the raster's 1 m
    column, row = int((x + WEB_MERCATOR_HALF) // side), int((WEB_MERCATOR_HALF - y) // side)
    for tile in ((zoom, column, row), (zoom, column + 1, row)):
        box = web_mercator_tile(*tile)
        response = requests.get(f"{served['url']}/collections/bruit/map", params={
            "bbox": ",".join(map(repr, box)), "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
            "width": 256, "height": 256})
        assert response.status_code == 200 and response.headers["Content-Crs"].endswith("/EPSG/0/3857>")
        with rasterio.open(io.BytesIO(response.content)) as png:
            drawn, alpha = png.read(1).astype(float), png.read(2)
        assert (alpha == 255).all()
        shifts = ((0, 0), (0.5, 0), (-0.5, 0), (0, 0.5), (0, -0.5))
        error = np.stack([block_error(drawn, expected_tile(values, origin, box, 256, shift)) for shift in shifts])
        misplaced = np.argwhere(error.argmin(axis=0) != 0)  # blocks better matched half a pixel off
        assert not len(misplaced), (tile, misplaced.tolist(), error[:, misplaced[0][0], misplaced[0][1]])


def block_error(drawn: np.ndarray, expected: np.ndarray, block: int = 64) -> np.ndarray:
    """Mean absolute difference per block of the tile: a rotated or stretched picture is off in some blocks only."""
    difference = np.abs(drawn - expected)
    count = drawn.shape[0] // block
    return difference.reshape(count, block, count, block).mean(axis=(1, 3))


def test_terrain_heights_above_the_ellipsoid_in_coverage_json(served, cog):
    """A DTM in EPSG:4979 (what a 3D globe's terrain reads): at each CRS84 sample, the COG's height there (bilinear)
    plus the geoid separation the 3D Tiles placement adds, within 5 cm; nodata beyond the raster is null."""
    import pyproj
    from scipy.ndimage import map_coordinates

    from tiles.geo import HeightModel, Placement

    to_lonlat = pyproj.Transformer.from_crs(2154, 4326, always_xy=True)
    (west, east), (south, north) = to_lonlat.transform([651120, 651300], [6861100, 6861280])
    response = requests.get(f"{served['url']}/collections/mnt/coverage", params={
        "f": "covjson", "bbox": f"{west},{south},{east},{north}", "crs": "http://www.opengis.net/def/crs/EPSG/0/4979",
        "scale-size": "x(7),y(5)"})
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/prs.coverage+json"
    document = response.json()
    axes = document["domain"]["axes"]
    lon = np.linspace(axes["x"]["start"], axes["x"]["stop"], axes["x"]["num"])
    lat = np.linspace(axes["y"]["start"], axes["y"]["stop"], axes["y"]["num"])
    assert (lon[0], lon[-1], lat[0]) == pytest.approx((west + (east - west) / 14, east - (east - west) / 14,
                                                       north - (north - south) / 10), abs=1e-12)
    heights = np.array(document["ranges"]["band1"]["values"], dtype=float).reshape(5, 7)
    lon, lat = np.meshgrid(lon, lat)
    x, y = pyproj.Transformer.from_crs(4326, 2154, always_xy=True).transform(lon, lat)
    with rasterio.open(cog) as source:
        values = source.read(1).astype(float)
        col, row = ~source.transform * (x, y)
    orthometric = map_coordinates(values, [row - 0.5, col - 0.5], order=1)
    separation = Placement(pyproj.CRS("EPSG:2154"), HeightModel.resolve()).separation(x.ravel(), y.ravel())
    assert np.abs(heights - orthometric - separation.reshape(5, 7)).max() < 0.05
    beyond = requests.get(f"{served['url']}/collections/mnt/coverage", params={
        "f": "covjson", "bbox": f"{west - 0.01},{south},{east},{north}", "crs": "EPSG:4979", "scale-size": "x(4),y(2)"})
    assert beyond.json()["ranges"]["band1"]["values"][0] is None


def test_ellipsoidal_heights_are_for_terrains_only(served, noise):
    status, _, body = raw_get(served["url"], "/collections/bruit/coverage?bbox=2.33,48.85,2.34,48.86&crs=EPSG:4979"
                                             "&scale-size=x(2),y(2)")
    assert status == 400 and "terrain" in json.loads(body)["description"]


@pytest.mark.parametrize("query", [
    "bbox=1,2,3", "bbox=1,2,3,4,5", "bbox=nan,0,1,1", "bbox=2.5,48.9,2.3,48.8", "bbox=0,0,200,95",
    "bbox=a,b,c,d", "bbox=651100,6860950,651200,6861050&bbox-crs=EPSG:99999999",
    "bbox=651100,6860950,651200,6861050&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/2154x",
    "bbox=0,0,1,1&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/2154", "f=xml", "subset=x(1:2)", "subset=z(1:2),y(1:2)",
    "subset=x(a:b),y(1:2)", "bbox=0,0,1,1&subset=x(1:2),y(1:2)", "crs=EPSG:4979&scale-size=x(2),y(2)",
    "bbox=2.33,48.85,2.34,48.86&scale-size=x(0),y(2)", "bbox=2.33,48.85,2.34,48.86&scale-size=2", "f=covjson",
])
def test_bad_coverage_requests_are_400_with_an_ogc_exception(served, query):
    status, _, body = raw_get(served["url"], f"/collections/mnt/coverage?{query}")
    assert status == 400, (query, status, body[:200])
    assert json.loads(body)["code"] == "InvalidParameterValue"


@pytest.mark.parametrize("query", ["width=0", "width=1000000000", "width=1e9", "height=-1", "f=jpeg", "bbox=1,1,1,1"])
def test_bad_map_requests_are_400_with_an_ogc_exception(served, query):
    status, _, body = raw_get(served["url"], f"/collections/mnt/map?{query}")
    assert status == 400, (query, status, body[:200])
    assert json.loads(body)["code"] == "InvalidParameterValue"


def test_unseen_rasters_answer_as_nonexistent_ones(served):
    for path in ("/collections/{id}/coverage", "/collections/{id}/coverage?bbox=1,2,3",
                 "/collections/{id}/map?width=10"):
        unseen = raw_get(served["url"], path.format(id="mnt-partenaires"))
        missing = raw_get(served["url"], path.format(id="inexistant"))
        assert unseen[0] == missing[0] == 404 and unseen[2] == missing[2]
