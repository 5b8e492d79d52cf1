"""3D Tiles delivery through a real HTTP server: versioned URLs, media types, ETags, ranges, gzip, traversal."""

from __future__ import annotations

import gzip
import json

import pytest
import requests

from delivery_support import *  # noqa: F401,F403
from delivery_support import LiveServer, delivery_app, publish_3dtiles, raw_get, write_tileset


@pytest.fixture(scope="module")
def served(city, tmp_path_factory):
    """The city with an open tileset (two versions), a shared and an internal one, behind a live server."""
    folder = tmp_path_factory.mktemp("tilesets")
    first = publish_3dtiles(city, write_tileset(folder / "v1", seed=1), "nuage", "open")
    second = publish_3dtiles(city, write_tileset(folder / "v2", seed=2), "nuage", "open")
    publish_3dtiles(city, write_tileset(folder / "s", seed=3), "nuage-partenaires", "shared")
    publish_3dtiles(city, write_tileset(folder / "i", seed=4), "nuage-interne", "internal", kind="mesh-3dtiles")
    with LiveServer(delivery_app(city)) as server:
        yield {"url": server.url, "first": first.version, "second": second.version, "source": folder / "v2",
               "city": city}


def test_collection_links_to_the_current_versioned_tileset(served):
    document = requests.get(f"{served['url']}/collections/nuage").json()
    sha = served["second"].checksum
    tileset = [link for link in document["links"] if link["rel"] == "original"]
    assert tileset and tileset[0]["href"].endswith(f"/collections/nuage/3dtiles/{sha}/tileset.json")
    assert tileset[0]["type"] == "application/json+3dtiles"
    west, south, east, north = document["extent"]["spatial"]["bbox"][0]
    assert 2.2 < west < east < 2.5 and 48.7 < south < north < 49.0  # the box's ECEF centre is in Paris
    entry = requests.get(f"{served['url']}/collections/nuage/3dtiles", allow_redirects=False)
    assert entry.status_code == 307 and entry.headers["Location"] == tileset[0]["href"]


def test_files_with_their_media_types_and_immutable_caching(served):
    base = f"{served['url']}/collections/nuage/3dtiles/{served['second'].checksum}"
    source = served["source"]
    for path, media_type in (("tileset.json", "application/json"), ("root.pnts", "application/octet-stream"),
                             ("tiles/child.pnts", "application/octet-stream"),
                             ("tiles/0.subtree", "application/octet-stream"),
                             ("tiles/mesh.glb", "model/gltf-binary")):
        response = requests.get(f"{base}/{path}", headers={"Accept-Encoding": "identity"})
        assert response.status_code == 200, path
        assert response.headers["Content-Type"].split(";")[0] == media_type
        assert response.content == (source / path).read_bytes()
        assert "immutable" in response.headers["Cache-Control"]
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["ETag"].startswith('"')  # strong


def test_an_older_retained_version_stays_served(served):
    base = f"{served['url']}/collections/nuage/3dtiles/{served['first'].checksum}"
    response = requests.get(f"{base}/root.pnts")
    assert response.status_code == 200 and response.content != b""


def test_etag_and_304(served):
    url = f"{served['url']}/collections/nuage/3dtiles/{served['second'].checksum}/root.pnts"
    first = requests.get(url)
    again = requests.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    other = requests.get(f"{served['url']}/collections/nuage/3dtiles/{served['first'].checksum}/root.pnts")
    assert other.headers["ETag"] != first.headers["ETag"]


def test_range_requests(served):
    url = f"{served['url']}/collections/nuage/3dtiles/{served['second'].checksum}/tiles/child.pnts"
    whole = (served["source"] / "tiles" / "child.pnts").read_bytes()
    response = requests.get(url, headers={"Range": "bytes=10-29"})
    assert response.status_code == 206
    assert response.content == whole[10:30]
    assert response.headers["Content-Range"] == f"bytes 10-29/{len(whole)}"
    tail = requests.get(url, headers={"Range": "bytes=-8"})
    assert tail.status_code == 206 and tail.content == whole[-8:]
    beyond = requests.get(url, headers={"Range": f"bytes={len(whole) + 10}-"})
    assert beyond.status_code == 416


def test_json_is_gzipped_when_accepted(served):
    url = f"{served['url']}/collections/nuage/3dtiles/{served['second'].checksum}/tileset.json"
    status, headers, body = raw_get(served["url"], url.removeprefix(served["url"]), {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    plain = (served["source"] / "tileset.json").read_bytes()
    assert gzip.decompress(body) == plain and len(body) < len(plain)
    assert "Accept-Encoding" in headers["Vary"]
    status, headers, body = raw_get(served["url"], url.removeprefix(served["url"]))
    assert status == 200 and "Content-Encoding" not in headers and body == plain
    again = requests.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": headers["ETag"]})
    assert again.status_code == 200  # the plain representation's ETag is not the gzip one's


def test_preflight_allows_keys_and_ranges(served):
    response = requests.options(f"{served['url']}/collections/nuage/3dtiles/{served['second'].checksum}/root.pnts")
    assert response.status_code == 204
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "Range" in response.headers["Access-Control-Allow-Headers"]


@pytest.mark.parametrize("path", [
    "../../../catalog.gpkg", "%2e%2e/%2e%2e/catalog.gpkg", "%2e%2e%2f%2e%2e%2fcatalog.gpkg", "..%2f..%2fetc/passwd",
    "/etc/passwd", "%2fetc%2fpasswd", "tiles/../../x", "root.pnts%00.json", "tiles/./child.pnts", "tiles//child.pnts",
    "..\\..\\catalog.gpkg", "%5c..%5ccatalog.gpkg",
])
def test_path_traversal_is_refused_with_an_ogc_exception(served, path):
    prefix = f"/collections/nuage/3dtiles/{served['second'].checksum}/"
    status, headers, body = raw_get(served["url"], prefix + path)
    assert 400 <= status < 500, (path, status)
    document = json.loads(body)
    assert document["code"] in ("InvalidParameterValue", "NotFound")
    assert "Traceback" not in body.decode() and "/" not in document["description"]


@pytest.mark.parametrize("path", ["/collections/nuage/3dtiles/abc/root.pnts",
                                  "/collections/nuage/3dtiles/" + "0" * 64 + "/root.pnts",
                                  "/collections/nuage/3dtiles/{sha}/nothing.pnts"])
def test_unknown_versions_and_files_are_404(served, path):
    status, _, body = raw_get(served["url"], path.format(sha=served["second"].checksum))
    assert status == 404 and json.loads(body)["code"] == "NotFound"


def test_unseen_tilesets_answer_as_nonexistent_ones(served):
    city = served["city"]
    for layer_id in ("nuage-partenaires", "nuage-interne"):
        sha = city.version(layer_id).checksum
        for path in (f"/collections/{layer_id}/3dtiles", f"/collections/{layer_id}/3dtiles/{sha}/tileset.json",
                     f"/collections/{layer_id}/3dtiles/{sha}/../../x"):
            unseen = raw_get(served["url"], path)
            missing = raw_get(served["url"], path.replace(layer_id, "nuage-inexistant"))
            assert unseen[0] == missing[0] == 404
            assert unseen[2] == missing[2]
