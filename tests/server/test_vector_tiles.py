"""Vector tiles (OGC API Tiles, WebMercatorQuad, MVT) through a real HTTP server, on both backends.

The oracle is the sample district's cadastre read with geopandas and projected
by geopandas, not the server's code: a tile holds exactly the buildings that
meet it (or its 64-pixel buffer), with their geometry to within the MVT's
pixel.
"""

from __future__ import annotations

import gzip
import json
import math

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pytest
import requests
import shapely

from delivery_support import *  # noqa: F401,F403
from delivery_support import LiveServer, delivery_app, raw_get

EXTENT, BUFFER, HALF = 4096, 64, 20037508.342789244


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """(row, col) of the WebMercatorQuad tile holding a point (the slippy-map formula)."""
    n = 2 ** z
    col = int((lon + 180) / 360 * n)
    row = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return row, col


def tile_bounds(z: int, row: int, col: int) -> tuple[float, float, float, float]:
    size = 2 * HALF / 2 ** z
    return -HALF + col * size, HALF - (row + 1) * size, -HALF + (col + 1) * size, HALF - row * size


@pytest.fixture(scope="module")
def cadastre(district):
    return gpd.read_file(district / "district.gpkg", layer="buildings_cadastre", engine="pyogrio")


@pytest.fixture(scope="module")
def served(city, cadastre, district):
    trees = gpd.read_file(district / "district.gpkg", layer="trees", engine="pyogrio")
    city.publish(cadastre, "batiments", licence="ODbL-1.0", access="open", title="Bâtiments")
    city.publish(trees, "arbres", licence="restricted", access="shared", title="Arbres")
    with LiveServer(delivery_app(city)) as server:
        yield {"url": server.url, "city": city}


def decoded_features(data: bytes, bounds) -> dict[int, shapely.Geometry]:
    """The features of an MVT as id -> geometry in EPSG:3857."""
    layers = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    minx, _, maxx, maxy = bounds
    scale = (maxx - minx) / EXTENT
    out = {}
    for feature in layers["batiments"]["features"]:
        geometry = shapely.geometry.shape(feature["geometry"])
        for polygon in getattr(geometry, "geoms", [geometry]):  # MVT: exterior rings have a positive area
            assert shapely.is_ccw(polygon.exterior), feature["id"]  # in tile coordinates (y down)
        out[feature["id"]] = shapely.transform(
            geometry, lambda c: np.column_stack([minx + c[:, 0] * scale, maxy - c[:, 1] * scale]))
    return out


@pytest.mark.parametrize("z", [16, 17])
def test_a_tile_holds_the_buildings_that_meet_it_with_their_geometry(served, cadastre, z):
    mercator = cadastre.to_crs("EPSG:3857")
    lon, lat = cadastre.to_crs("EPSG:4326").geometry.union_all().centroid.coords[0]
    row, col = tile_of(lon, lat, z)
    bounds = tile_bounds(z, row, col)
    response = requests.get(f"{served['url']}/collections/batiments/tiles/WebMercatorQuad/{z}/{row}/{col}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    features = decoded_features(response.content, bounds)
    pixel = (bounds[2] - bounds[0]) / EXTENT
    inner = shapely.box(*bounds)
    outer = shapely.box(bounds[0] - BUFFER * pixel, bounds[1] - BUFFER * pixel,
                        bounds[2] + BUFFER * pixel, bounds[3] + BUFFER * pixel)
    must = {i + 1 for i in np.flatnonzero(mercator.intersects(inner).to_numpy())}
    may = {i + 1 for i in np.flatnonzero(mercator.intersects(outer).to_numpy())}
    assert len(must) > 5
    assert must <= set(features) <= may
    for fid in must:
        expected = shapely.clip_by_rect(mercator.geometry.iloc[fid - 1], *outer.bounds)
        got = features[fid]
        assert shapely.hausdorff_distance(expected, got) < 2 * pixel, fid
        assert abs(got.area - expected.area) <= 0.02 * expected.area + expected.length * pixel


def test_tile_attributes_are_the_features_attributes(served, cadastre):
    lon, lat = cadastre.to_crs("EPSG:4326").geometry.union_all().centroid.coords[0]
    row, col = tile_of(lon, lat, 16)
    data = requests.get(f"{served['url']}/collections/batiments/tiles/WebMercatorQuad/16/{row}/{col}").content
    layer = mapbox_vector_tile.decode(data)["batiments"]
    columns = [c for c in cadastre.columns if c != "geometry"]
    for feature in layer["features"][:20]:
        source = cadastre.iloc[feature["id"] - 1]
        for column in columns:
            value = source[column]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                assert column not in feature["properties"]
            elif isinstance(value, float):
                assert feature["properties"][column] == pytest.approx(value, rel=1e-6)
            else:
                assert feature["properties"][column] == value


def test_tilesets_metadata(served):
    tilesets = requests.get(f"{served['url']}/collections/batiments/tiles").json()["tilesets"]
    assert tilesets[0]["tileMatrixSetURI"].endswith("/WebMercatorQuad") and tilesets[0]["dataType"] == "vector"
    template = next(link["href"] for link in tilesets[0]["links"] if link["rel"] == "item")
    assert template.endswith("/collections/batiments/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}")
    document = requests.get(f"{served['url']}/collections/batiments/tiles/WebMercatorQuad").json()
    assert document["layers"][0]["id"] == "batiments"


def test_etag_304_and_gzip(served, cadastre):
    lon, lat = cadastre.to_crs("EPSG:4326").geometry.union_all().centroid.coords[0]
    row, col = tile_of(lon, lat, 15)
    path = f"/collections/batiments/tiles/WebMercatorQuad/15/{row}/{col}"
    status, headers, plain = raw_get(served["url"], path)
    assert status == 200 and headers["Cache-Control"] == "no-cache" and headers["ETag"].startswith('"')
    status, zipped_headers, zipped = raw_get(served["url"], path, {"Accept-Encoding": "gzip"})
    assert zipped_headers["Content-Encoding"] == "gzip" and gzip.decompress(zipped) == plain
    status, _, body = raw_get(served["url"], path, {"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""


def test_a_new_version_is_served_at_once(served, cadastre, tmp_path):
    city = served["city"]
    lon, lat = cadastre.to_crs("EPSG:4326").geometry.union_all().centroid.coords[0]
    row, col = tile_of(lon, lat, 14)
    url = f"{served['url']}/collections/batiments/tiles/WebMercatorQuad/14/{row}/{col}"
    before = requests.get(url)
    assert len(mapbox_vector_tile.decode(before.content)["batiments"]["features"]) == len(cadastre)
    try:
        city.publish(cadastre.iloc[::2], "batiments", note="half")
        after = requests.get(url)
        assert len(mapbox_vector_tile.decode(after.content)["batiments"]["features"]) == len(cadastre.iloc[::2])
        assert after.headers["ETag"] != before.headers["ETag"]
    finally:
        city.rollback("batiments")
    assert requests.get(url).content == before.content


def test_a_wall_thinner_than_a_pixel_keeps_its_polygon(served, tmp_path):
    """A polygon whose 1 cm spike folds into a line at low zooms (make_valid: polygon + line, which MVT cannot
    encode) is served as its polygon, the square the spike leaves (was a 500)."""
    x0, y0 = 651100.0, 6861100.0
    wall = shapely.Polygon([(x0, y0), (x0 + 20, y0), (x0 + 20, y0 + 10), (x0 + 50, y0 + 10), (x0 + 50, y0 + 10.01),
                            (x0 + 20, y0 + 10.01), (x0 + 20, y0 + 20), (x0, y0 + 20)])
    served["city"].publish(gpd.GeoDataFrame({"name": ["mur"]}, geometry=[wall], crs="EPSG:2154"), "murs",
                           licence="etalab-2.0", access="open", title="Murs")
    lon, lat = gpd.GeoSeries([wall.centroid], crs="EPSG:2154").to_crs("EPSG:4326").iloc[0].coords[0]
    for z in (12, 14, 16):
        row, col = tile_of(lon, lat, z)
        response = requests.get(f"{served['url']}/collections/murs/tiles/WebMercatorQuad/{z}/{row}/{col}")
        assert response.status_code == 200, (z, response.text[:200])
        [feature] = mapbox_vector_tile.decode(response.content)["murs"]["features"]
        assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon"), z


def test_an_empty_tile_is_an_empty_200(served):
    response = requests.get(f"{served['url']}/collections/batiments/tiles/WebMercatorQuad/10/0/0")
    assert response.status_code == 200 and response.content == b""


@pytest.mark.parametrize("path", ["WebMercatorQuad/-1/0/0", "WebMercatorQuad/abc/0/0", "WebMercatorQuad/3/8/0",
                                  "WebMercatorQuad/3/0/99", "WebMercatorQuad/25/0/0", "WorldCRS84Quad/1/0/0",
                                  "..%2f..%2fcatalog.gpkg/1/0/0", "WebMercatorQuad/1/0/0%00", "WebMercatorQuad/1e9/0/0"])
def test_bad_tile_requests_are_4xx_with_an_ogc_exception(served, path):
    status, _, body = raw_get(served["url"], f"/collections/batiments/tiles/{path}")
    assert 400 <= status < 500, (path, status)
    assert json.loads(body)["code"] in ("InvalidParameterValue", "NotFound")


def test_unseen_layers_answer_as_nonexistent_ones(served):
    for path in ("/collections/{id}/tiles", "/collections/{id}/tiles/WebMercatorQuad",
                 "/collections/{id}/tiles/WebMercatorQuad/16/22550/33198", "/collections/{id}/tiles/Bad/1/0/0"):
        unseen = raw_get(served["url"], path.format(id="arbres"))
        missing = raw_get(served["url"], path.format(id="inexistant"))
        assert unseen[0] == missing[0] == 404 and unseen[2] == missing[2]


def test_tiles_are_shared_through_the_cache_folder_per_version(served, cadastre, tmp_path):
    from server.routes.delivery import DeliveryRoutes
    from server.routes.http import Delivery

    from delivery_support import open_only

    city = served["city"]
    lon, lat = cadastre.to_crs("EPSG:4326").geometry.union_all().centroid.coords[0]
    row, col = tile_of(lon, lat, 16)
    path = f"/collections/batiments/tiles/WebMercatorQuad/16/{row}/{col}"

    def worker():  # a worker of its own: an empty memory cache, the shared folder
        return DeliveryRoutes(Delivery(lambda: city, open_only(city), tile_cache=tmp_path)).wsgi()

    with LiveServer(worker()) as first:
        built = requests.get(first.url + path).content
    version = city.version("batiments")
    cached = tmp_path / "batiments" / f"{version.number}-{version.checksum}" / "16" / str(row) / f"{col}.mvt"
    assert cached.read_bytes() == built
    cached.write_bytes(b"\x1a\x00")  # an empty layer message: only the cache can give this
    with LiveServer(worker()) as second:
        assert requests.get(second.url + path).content == b"\x1a\x00"
    try:
        city.publish(cadastre.iloc[::3], "batiments", note="a third")
        with LiveServer(worker()) as third:
            fresh = requests.get(third.url + path).content
        assert fresh != b"\x1a\x00"
        assert len(mapbox_vector_tile.decode(fresh)["batiments"]["features"]) < len(decoded_ids(built))
    finally:
        city.rollback("batiments")


def decoded_ids(data: bytes) -> list[int]:
    return [f["id"] for f in mapbox_vector_tile.decode(data)["batiments"]["features"]]
