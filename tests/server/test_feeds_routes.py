"""The open-data feeds through the real server (gunicorn, 2 workers) on each backend.

/catalog (DCAT-AP, JSON-LD and Turtle), /changes and /downloads: they list
the open layers only, whatever key a request carries, answer conditional
requests with 304 and ranges with 206, and a hidden layer's download URL
answers byte for byte as a missing layer's.
"""

from __future__ import annotations

import hashlib
import json

import pytest


from live_city import LAYERS

pytestmark = pytest.mark.slow

OPEN = {name for name, spec in LAYERS.items() if spec[0] == "open"} | {"notes", "events"}  # as publish_city does
HIDDEN = {name for name, spec in LAYERS.items() if spec[0] != "open"}


@pytest.fixture(scope="module")
def trees_key(city, server):
    from gis.backends.keys import KeyStore

    with city.catalog() as catalog:
        key, _record = KeyStore(catalog.backend).create("Arbres & Co", ["trees"])
    return key


def _datasets(body: bytes, fmt: str) -> dict:
    import rdflib
    from rdflib.namespace import DCAT, DCTERMS

    graph = rdflib.Graph().parse(data=body, format=fmt)
    spdx = rdflib.Namespace("http://spdx.org/rdf/terms#")
    found = {}
    for node in graph.subjects(rdflib.RDF.type, DCAT.Dataset):
        files = {}
        for distribution in graph.objects(node, DCAT.distribution):
            url = graph.value(distribution, DCAT.downloadURL)
            if url is not None:
                checksum = graph.value(graph.value(distribution, spdx.checksum), spdx.checksumValue)
                files[str(url)] = (int(graph.value(distribution, DCAT.byteSize)), str(checksum))
        found[str(graph.value(node, DCTERMS.identifier))] = files
    return found


def test_the_catalogue_lists_the_open_layers_in_both_syntaxes_whatever_the_key(server, trees_key):
    for headers, fmt in (({}, "json-ld"), ({"Accept": "text/turtle"}, "turtle")):
        for key in (None, trees_key):
            response = server.get("/catalog", key=key, headers=headers)
            assert response.status_code == 200
            assert response.headers["Content-Type"].startswith("application/ld+json" if fmt == "json-ld"
                                                               else "text/turtle")
            assert set(_datasets(response.content, fmt)) == OPEN
            for hidden in HIDDEN:
                assert hidden.encode() not in response.content and hidden.title().encode() not in response.content
    assert set(_datasets(server.get("/catalog?f=ttl").content, "turtle")) == OPEN
    assert server.get("/catalog?f=xml").status_code == 400


def test_downloads_match_their_checksums_and_serve_ranges_and_304(server):
    import requests

    datasets = _datasets(server.get("/catalog").content, "json-ld")
    urls = {url: spec for files in datasets.values() for url, spec in files.items()}
    assert len(urls) == 2 * len(OPEN)  # a GeoPackage and a GeoJSON per vector layer
    for url, (size, sha) in urls.items():
        response = requests.get(url, timeout=60)
        assert response.status_code == 200 and len(response.content) == size
        assert hashlib.sha256(response.content).hexdigest() == sha
        etag = response.headers["ETag"]
        assert not etag.startswith("W/") and response.headers["Last-Modified"]
        assert requests.get(url, headers={"If-None-Match": etag}, timeout=30).status_code == 304
        part = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=30)
        assert part.status_code == 206 and part.content == response.content[100:200]
    import pyogrio

    gpkg = next(url for url in urls if url.endswith("buildings-v1.gpkg"))
    frame = pyogrio.read_dataframe(f"/vsicurl/{gpkg}")
    assert len(frame) == 115  # truth.gpkg's footprints


def test_a_hidden_layer_download_answers_as_a_missing_one(server, trees_key):
    missing = server.get("/downloads/no-such-layer/1/no-such-layer-v1.gpkg")
    assert missing.status_code == 404
    for layer in HIDDEN:
        for key in (None, trees_key):
            response = server.get(f"/downloads/{layer}/1/{layer}-v1.gpkg", key=key)
            assert (response.status_code, response.content) == (404, missing.content)
    assert server.get("/downloads/buildings/2/buildings-v2.gpkg").status_code == 404  # not a current version


def test_the_change_feed_tells_the_open_layers_only(server, trees_key):
    response = server.get("/changes?since=0", key=trees_key)
    page = response.json()
    assert {event["layer"] for event in page["events"]} == OPEN
    assert [event["seq"] for event in page["events"]] == list(range(1, len(OPEN) + 1))
    assert page["next"] == page["last"] == len(OPEN)
    for hidden in HIDDEN:
        assert hidden not in response.text
    # each dataset an event names is described as the catalogue describes it: no second request for a mirror
    catalogue = _datasets(server.get("/catalog").content, "json-ld")
    assert set(page["datasets"]) == OPEN
    for layer, document in page["datasets"].items():
        assert _datasets(json.dumps(document).encode(), "json-ld") == {layer: catalogue[layer]}
    assert server.get("/changes?since=1&limit=1").json()["datasets"].keys() == {page["events"][1]["layer"]}
    again = server.get("/changes?since=0", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    assert server.get("/changes?since=1&limit=1").json()["events"][0]["seq"] == 2
    for bad in ("since=-1", "since=abc", "since=99", "limit=0"):
        assert server.get(f"/changes?{bad}").status_code == 400, bad
