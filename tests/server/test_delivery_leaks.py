"""The leak sweep of the delivery route families, through the real server (gunicorn, 2 workers), with real keys.

Every path of :data:`delivery_routes.DELIVERY_ROUTES`, for every shared and
internal layer of the kinds it serves, asked anonymously, with a wrong key,
with a revoked key and with a key for another layer, answers byte for byte
as for a layer that does not exist (status, content type, body). The same
paths with the right key do serve the shared layer, so the sweep can fail.
Also: the records list only what the caller may see, and a layer reclassified
open -> shared while the server runs disappears from every family.
"""

from __future__ import annotations

import time

import pytest

from delivery_routes import DELIVERY_ROUTES
from delivery_support import write_tileset
from gis.testing.cityjson import write_cityjson

MISSING = "inexistante"
KINDS = {"raster": "mnt", "pointcloud-3dtiles": "nuage", "cityjson": "bati3d"}


@pytest.fixture(scope="module")
def delivered(city, server, tmp_path_factory, district):
    """The test city plus rasters, 3D Tiles and CityJSON of each access level, and keys, published while the
    server runs."""
    from rasterio.shutil import copy

    from gis.backends.keys import KeyStore

    folder = tmp_path_factory.mktemp("delivery")
    cog = folder / "dtm.tif"
    copy(district / "truth-dtm.tif", cog, driver="COG")
    layers = {}
    with city.catalog() as catalog:
        for access, licence in (("open", "etalab-2.0"), ("shared", "restricted"), ("internal", "restricted")):
            suffix = "" if access == "open" else f"-{access}"
            catalog.publish(cog, f"mnt{suffix}", licence=licence, access=access, title=f"MNT {access}")
            tiles = write_tileset(folder / f"nuage{suffix}", seed=len(suffix))
            catalog.publish(tiles, f"nuage{suffix}", kind="pointcloud-3dtiles", licence=licence, access=access,
                            title=f"Nuage {access}")
            model = write_cityjson(folder / f"bati3d{suffix}.city.json", seed=len(suffix))
            catalog.publish(model, f"bati3d{suffix}", licence=licence, access=access, title=f"Bâti 3D {access}")
        catalog.publish(cog, "mnt-reclasse", licence="etalab-2.0", access="open", title="MNT reclassé")
        for layer in catalog.layers():
            layers[layer.id] = (layer.kind, layer.access, catalog.version(layer.id).checksum)
        store = KeyStore(catalog.backend)
        right, _ = store.create("acme", ["trees", "mnt-shared", "nuage-shared", "bati3d-shared", "mnt-reclasse"], None)
        other, _ = store.create("globex", ["rooms"], None)
        revoked, record = store.create("initech", ["trees", "mnt-shared", "nuage-shared", "bati3d-shared"], None)
        store.revoke(record.key_id)
    wait_until_every_worker_sees(server, right)
    yield {"server": server, "layers": layers, "keys": {"right": right, "other": other, "revoked": revoked},
           "city": city, "folder": folder}


def wait_until_every_worker_sees(server, key: str, timeout: float = 30.0) -> None:
    """Wait until the last publications and keys are served, in 8 answers in a row: each gunicorn worker
    follows the change feed and the keys on its own, and one answering does not mean the other does (a
    loaded machine once left one worker behind, failing a later test)."""
    deadline, in_a_row = time.monotonic() + timeout, 0
    while time.monotonic() < deadline and in_a_row < 8:
        seen = (server.get("/collections/nuage/3dtiles", allow_redirects=False).status_code == 307
                and server.get("/collections/mnt-shared/map?width=1", key=key).status_code == 200
                and server.get("/collections/nuage-shared/3dtiles", key=key, allow_redirects=False).status_code == 307
                and server.get("/collections/bati3d-shared/cityjson", key=key).status_code == 200)
        in_a_row = in_a_row + 1 if seen else 0
        if not seen:
            time.sleep(0.2)


def ask(server, path: str, key: str | None):
    """The answer as compared; requests accepts gzip, so the gzipped variants are swept too."""
    response = server.get(path, key=key, allow_redirects=False)
    return (response.status_code, response.headers.get("Content-Type"), response.headers.get("Content-Encoding"),
            response.content)


def hidden_layers(delivered, kinds) -> list[str]:
    return [layer_id for layer_id, (kind, access, _) in delivered["layers"].items()
            if kind in kinds and access in ("shared", "internal")]


@pytest.mark.parametrize("family,kinds,template", DELIVERY_ROUTES, ids=[t for _, _, t in DELIVERY_ROUTES])
@pytest.mark.parametrize("caller", ["anonymous", "wrong", "revoked", "other"])
def test_unseen_layers_answer_as_nonexistent_ones(delivered, family, kinds, template, caller):
    key = {"anonymous": None, "wrong": "not-a-key-at-all", "revoked": delivered["keys"]["revoked"],
           "other": delivered["keys"]["other"]}[caller]
    server = delivered["server"]
    hidden = hidden_layers(delivered, kinds)
    assert hidden
    missing = ask(server, template.format(id=MISSING, sha="0" * 64), key)
    assert missing[0] == 404
    for layer_id in hidden:
        if caller == "other" and layer_id == "rooms":
            continue  # the layer that key does open
        sha = delivered["layers"][layer_id][2]
        assert ask(server, template.format(id=layer_id, sha=sha), key) == missing, (layer_id, caller)


@pytest.mark.parametrize("family,kinds,template", DELIVERY_ROUTES, ids=[t for _, _, t in DELIVERY_ROUTES])
def test_the_right_key_opens_the_shared_layer(delivered, family, kinds, template):
    if ".." in template:
        pytest.skip("a traversal is refused whoever asks")
    server = delivered["server"]
    shared = [layer_id for layer_id in hidden_layers(delivered, kinds) if layer_id.endswith("-shared")
              or delivered["layers"][layer_id][0] == "vector" and layer_id == "trees"]
    for layer_id in shared:
        sha = delivered["layers"][layer_id][2]
        status = ask(server, template.format(id=layer_id, sha=sha), delivered["keys"]["right"])[0]
        assert status in (200, 307, 400), (layer_id, status)  # 400: a path that is bad on purpose
        assert status != 404


def test_records_list_only_what_the_caller_may_see(delivered):
    server = delivered["server"]
    anonymous = {r["id"] for r in server.get("/collections/catalog_records/items?limit=100").json()["features"]}
    partner = {r["id"] for r in server.get("/collections/catalog_records/items?limit=100",
                                           key=delivered["keys"]["right"]).json()["features"]}
    opened = {i for i, (_, access, _) in delivered["layers"].items() if access == "open"}
    assert anonymous == opened
    assert partner == opened | {"trees", "mnt-shared", "nuage-shared", "bati3d-shared"}


def test_a_layer_reclassified_while_served_disappears_from_every_family(delivered):
    server = delivered["server"]
    paths = ["/collections/mnt-reclasse/coverage?bbox=651100,6861100,651110,6861110&bbox-crs=EPSG:2154",
             "/collections/mnt-reclasse/map?width=10", "/collections/catalog_records/items/mnt-reclasse"]
    assert all(server.get(path).status_code == 200 for path in paths)
    with delivered["city"].catalog() as catalog:
        catalog.reclassify("mnt-reclasse", "shared", licence="restricted")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(server.get(p).status_code != 404 for p in paths * 2):
        time.sleep(0.2)
    for path in paths:
        for _ in range(4):  # both workers
            assert ask(server, path, None) == ask(server, path.replace("mnt-reclasse", MISSING), None)
        assert server.get(path, key=delivered["keys"]["right"]).status_code == 200


def test_owslib_finds_the_records_and_the_coverages_in_the_listing(delivered):
    from owslib.ogcapi.coverages import Coverages
    from owslib.ogcapi.records import Records

    url = delivered["server"].url
    assert Records(url).records() == ["catalog_records"]
    items = Records(url).collection_items("catalog_records", limit=100)
    assert "mnt" in {record["id"] for record in items["features"]}
    assert set(Coverages(url).coverages()) >= {"mnt"} and "mnt-shared" not in Coverages(url).coverages()
    partner = Coverages(url, headers={"X-API-Key": delivered["keys"]["right"]})
    assert "mnt-shared" in partner.coverages()


def test_vector_collections_link_their_tiles(delivered):
    server = delivered["server"]
    listing = server.get("/collections").json()["collections"]
    buildings = next(c for c in listing if c["id"] == "buildings")
    link = next(l for l in buildings["links"] if l["rel"].endswith("tilesets-vector"))
    assert server.get(link["href"].removeprefix(server.url)).json()["tilesets"][0]["dataType"] == "vector"
    assert any(l["rel"].endswith("tilesets-vector") for l in server.get("/collections/buildings").json()["links"])


def test_a_cityjson_layer_is_served_listed_described_and_hidden_when_shared(delivered, tmp_path):
    """The CityJSON file as published (bytes, media type, ETag, Last-Modified, 304, ranges, gzip), in the listing, the
    record, the OpenAPI document (schemathesis on its path) and the DCAT catalogue; the shared one only with a key."""
    import gzip
    import hashlib
    import subprocess
    import sys

    server, folder, right = delivered["server"], delivered["folder"], delivered["keys"]["right"]
    published = (folder / "bati3d.city.json").read_bytes()
    checksum = delivered["layers"]["bati3d"][2]  # the catalog's
    answer = server.get("/collections/bati3d/cityjson", headers={"Accept-Encoding": "identity"})
    assert answer.status_code == 200 and answer.content == published and "Content-Encoding" not in answer.headers
    assert answer.headers["Content-Type"] == "application/city+json"
    assert answer.headers["ETag"] == f'"{checksum}"' and answer.headers["Last-Modified"]
    assert answer.headers["Vary"] == "Accept-Encoding" and answer.headers["Cache-Control"] == "no-cache"
    # gzipped when accepted (twice: made, then from the cache folder): its own ETag, the same bytes once decoded
    for _ in range(2):
        packed = server.get("/collections/bati3d/cityjson", headers={"Accept-Encoding": "gzip"}, stream=True)
        raw = packed.raw.read(decode_content=False)
        assert packed.headers["Content-Encoding"] == "gzip" and int(packed.headers["Content-Length"]) == len(raw)
        assert hashlib.sha256(gzip.decompress(raw)).hexdigest() == checksum
        assert packed.headers["ETag"] == f'"{checksum}-gzip"' and packed.headers["Vary"] == "Accept-Encoding"
        assert packed.headers["Cache-Control"] == "no-cache"
        assert packed.headers["Content-Type"] == "application/city+json"
    for encoding, etag in (("identity", answer.headers["ETag"]), ("gzip", packed.headers["ETag"])):
        again = server.get("/collections/bati3d/cityjson", headers={"If-None-Match": etag, "Accept-Encoding": encoding})
        assert again.status_code == 304 and again.headers["ETag"] == etag, encoding
    crossed = server.get("/collections/bati3d/cityjson", headers={"If-None-Match": answer.headers["ETag"],
                                                                  "Accept-Encoding": "gzip"})
    assert crossed.status_code == 200  # the identity's ETag does not validate the gzipped representation
    # a range is of the uncompressed bytes, whatever the client accepts
    ranged = server.get("/collections/bati3d/cityjson", headers={"Range": "bytes=10-29", "Accept-Encoding": "gzip"})
    assert ranged.status_code == 206 and ranged.content == published[10:30] and "Content-Encoding" not in ranged.headers
    shared = server.get("/collections/bati3d-shared/cityjson", key=right)  # requests accepts gzip by default
    assert shared.headers["Content-Encoding"] == "gzip" and shared.headers["Cache-Control"] == "private, no-cache"
    assert shared.content == (folder / "bati3d-shared.city.json").read_bytes()
    # listed (with its file's link) for those who may see it only
    def listed(key=None):
        return {c["id"]: c for c in server.get("/collections", key=key).json()["collections"]}
    anonymous, partner = listed(), listed(right)
    assert "bati3d-shared" not in anonymous and "bati3d-internal" not in partner and "bati3d-shared" in partner
    for collection in (anonymous["bati3d"], server.get("/collections/bati3d").json()):
        link = next(l for l in collection["links"] if l["type"] == "application/city+json")
        # its size given: pygeoapi would HEAD the server itself for it, and drop the link if that failed
        assert link["href"].endswith("/collections/bati3d/cityjson") and link["length"] == len(published)
    assert "HEAD /collections/bati3d/cityjson" not in server.log.read_text(errors="replace")
    record = server.get("/collections/catalog_records/items/bati3d").json()
    assert any(l.get("type") == "application/city+json" for l in record["links"])
    # the open-data download (anonymous only) and its DCAT distribution
    download = server.get("/downloads/bati3d/1/bati3d-v1.city.json")
    assert download.content == published and download.headers["Content-Type"] == "application/city+json"
    assert server.get("/downloads/bati3d-shared/1/bati3d-shared-v1.city.json", key=right).status_code == 404
    catalogue = server.get("/catalog?f=ttl").text
    assert "application/city+json" in catalogue and "bati3d-v1.city.json" in catalogue and "bati3d-shared" not in catalogue
    # the OpenAPI document declares the file, and what it declares is what is answered
    paths = server.get("/openapi?f=json").json()["paths"]
    assert "/collections/bati3d/cityjson" in paths and "/collections/bati3d-shared/cityjson" not in paths
    report = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi", "--url", server.url,
         "--include-path-regex", "cityjson", "--checks", "not_a_server_error,status_code_conformance,"
         "content_type_conformance,response_schema_conformance", "--max-examples", "2", "--no-color",
         "--generation-deterministic"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert report.returncode == 0 and "Tested: 1" in report.stdout, report.stdout[-3000:]
