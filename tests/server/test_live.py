"""A real server (``lutece serve``: gunicorn, 2 workers) on each backend, read by real clients.

GDAL's OGC API Features driver (through pyogrio's bundled GDAL) and OWSLib
read the collections; the leak sweep asks every route family for every
non-open layer as every kind of unwelcome caller and compares the answers,
byte for byte, with those for a layer that does not exist; keys are made and
revoked with the real CLI; live reload, bad input and the clean shutdown are
checked on the running server.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from live_city import HOSTILE, LAYERS, source_frame

pytestmark = pytest.mark.slow

OPEN = sorted([name for name, spec in LAYERS.items() if spec[0] == "open"] + ["notes", "events"])
HIDDEN = ["trees", "rooms", "boundary"]  # shared, shared, internal
MISSING = "no-such-layer"
GDAL_TYPES = {"Polygon": "Polygon", "LineString": "LineString", "Point": "Point"}


@pytest.fixture(scope="module")
def keys(city, server):
    """Keys made with the real CLI: one for trees, one for rooms, one revoked; a made-up one."""
    trees = city.lutece("keys", "create", "--partner", "Arbres & Co", "--layers", "trees",
                        "--expires", "2999-12-31").stdout.strip()
    from gis.backends.keys import KeyStore

    with city.catalog() as catalog:
        store = KeyStore(catalog.backend)
        rooms, _record = store.create("Plans SA", ["rooms"])
        revoked, record = store.create("Ancien", ["trees", "rooms"])
        store.revoke(record.key_id)
    # every worker has the new keys: several answers in a row (each worker follows on its own)
    wait_until(lambda: all(server.get(f"/collections/{layer}", key=key).status_code == 200
                           for layer, key in (("trees", trees), ("rooms", rooms)) for _ in range(4)))
    wait_until(lambda: all(server.get("/collections/trees", key=revoked).status_code == 404 for _ in range(4)))
    return {"trees": trees, "rooms": rooms, "revoked": revoked, "wrong": "lutece_00000000_" + "x" * 32}


def wait_until(condition, timeout: float = 5.0) -> float:
    """Poll ``condition`` until true; return the seconds it took (fail after ``timeout``)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.1)
    return time.monotonic() - started


# -- real clients -------------------------------------------------------------------------------------
def test_gdal_reads_every_open_collection(server, city):
    import pyogrio

    listed = {name for name, _type in pyogrio.list_layers(f"OAPIF:{server.url}")}
    assert listed == set(OPEN) | {"catalog_records"}  # the catalog's records are GeoJSON features too
    for name in OPEN:
        source = source_frame(city.district, name)
        info = pyogrio.read_info(f"OAPIF:{server.url}", layer=name, force_feature_count=True)
        assert info["features"] == len(source), name
        assert info["geometry_type"] == source.geom_type.iloc[0], name
        assert info["crs"] == "EPSG:2154", name  # GDAL asks for the storage CRS the collection advertises
        frame = pyogrio.read_dataframe(f"OAPIF:{server.url}", layer=name)
        assert len(frame) == len(source)
        assert frame.total_bounds == pytest.approx(source.total_bounds, abs=1e-6), name
        if name == "notes":
            assert sorted(frame["text"]) == sorted(HOSTILE)


def test_gdal_reads_a_shared_collection_with_its_key(server, city, keys):
    import pyogrio

    options = {"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": keys["trees"]}  # Authorization: Bearer KEY
    try:
        pyogrio.set_gdal_config_options(options)
        listed = {name for name, _type in pyogrio.list_layers(f"OAPIF:{server.url}")}
        frame = pyogrio.read_dataframe(f"OAPIF:{server.url}", layer="trees")
    finally:
        pyogrio.set_gdal_config_options({name: None for name in options})
    assert listed == set(OPEN) | {"trees", "catalog_records"}
    source = source_frame(city.district, "trees")
    assert len(frame) == len(source) and set(frame.geom_type) == {"Point"}
    assert sorted(frame["tree_id"]) == sorted(source["tree_id"])


def test_owslib_lists_and_queries(server, city, keys):
    from owslib.ogcapi.features import Features

    anonymous = Features(server.url)
    assert {c["id"] for c in anonymous.collections()["collections"]} >= set(OPEN)
    assert "trees" not in {c["id"] for c in anonymous.collections()["collections"]}
    items = anonymous.collection_items("buildings", limit=5)
    assert items["numberReturned"] == 5 and items["numberMatched"] == len(source_frame(city.district, "buildings"))
    partner = Features(server.url, headers={"Authorization": f"Bearer {keys['trees']}"})
    assert "trees" in {c["id"] for c in partner.collections()["collections"]}
    assert partner.collection_queryables("trees")["properties"]["height_m"]["type"] == "number"
    assert partner.collection_item("trees", "1")["properties"]["tree_id"] == source_frame(city.district,
                                                                                           "trees")["tree_id"][0]


# -- the leak sweep -------------------------------------------------------------------------------------
ROUTE_FAMILIES = [
    "/collections/{id}", "/collections/{id}?f=html", "/collections/{id}?f=jsonld",
    "/collections/{id}/items", "/collections/{id}/items?f=html", "/collections/{id}/items?limit=1&bbox=2.3,48.8,2.4,48.9",
    "/collections/{id}/items?filter=height_m>1", "/collections/{id}/items/1", "/collections/{id}/items/1?f=html",
    "/collections/{id}/queryables", "/collections/{id}/queryables?f=html", "/collections/{id}/schema",
    "/collections/{id}/coverage", "/collections/{id}/map", "/collections/{id}/tiles",
    "/collections/{id}/tiles/WebMercatorQuad/16/33198/22548", "/collections/{id}/3dtiles",
    "/collections/catalog_records/items/{id}",
]


def answer(server, path: str, key: str | None) -> tuple[int, str, bytes]:
    response = server.get(path, key=key, allow_redirects=False)
    return response.status_code, response.headers.get("Content-Type", ""), response.content


def sweep(server, callers: dict[str, str | None], hidden: list[str]) -> None:
    """Every route family x every hidden id x every caller answers as for :data:`MISSING` (4 requests at a time)."""
    from concurrent.futures import ThreadPoolExecutor

    cases = [(who, key, route, layer_id) for who, key in callers.items() for route in ROUTE_FAMILIES
             for layer_id in [MISSING, *hidden]]
    with ThreadPoolExecutor(4) as pool:
        answers = dict(zip(cases, pool.map(lambda case: answer(server, case[2].format(id=case[3]), case[1]),
                                           cases)))
    for (who, key, route, layer_id), got in answers.items():
        missing = answers[(who, key, route, MISSING)]
        assert 400 <= missing[0] < 500, (route, missing)
        assert got == missing, (who, route, layer_id)
    for who, key in callers.items():
        listing = server.get("/collections", key=key).json()
        openapi = server.get("/openapi", key=key).text
        landing = server.get("/?f=html", key=key).text + server.get("/collections?f=html", key=key).text
        for layer_id in hidden:
            assert layer_id not in {c["id"] for c in listing["collections"]}, (who, layer_id)
            for document in (openapi, landing):
                assert f"/collections/{layer_id}" not in document and f'"{layer_id}"' not in document, (who, layer_id)


def test_no_hidden_layer_answers_unlike_a_missing_one(server, keys):
    callers = {"anonymous": None, "wrong key": keys["wrong"], "revoked key": keys["revoked"]}
    sweep(server, callers, HIDDEN)
    sweep(server, {"key for rooms": keys["rooms"]}, ["trees", "boundary"])
    sweep(server, {"key for trees": keys["trees"]}, ["rooms", "boundary"])
    # the sweep can fail: a key opens its layer, on the same routes
    assert answer(server, "/collections/trees/items/1", keys["trees"])[0] == 200
    assert answer(server, "/collections/trees/items/1", keys["rooms"]) == answer(server,
                                                                                f"/collections/{MISSING}/items/1",
                                                                                keys["rooms"])


def after_5_seconds(since: float) -> None:
    """Wait until 5 s after ``since``: by then every worker must have followed (each polls on its own)."""
    time.sleep(max(0.0, since + 5.0 - time.monotonic()))


def test_reclassified_layer_disappears_within_5_seconds(server, city):
    before = answer(server, "/collections/streets/items?limit=1", None)
    assert before[0] == 200
    with city.catalog() as catalog:
        catalog.reclassify("streets", "shared")
    changed = time.monotonic()
    try:
        took = wait_until(lambda: all(server.get("/collections/streets").status_code == 404 for _ in range(4)))
        after_5_seconds(changed)
        sweep(server, {"anonymous": None}, ["streets"])  # hundreds of requests: every worker answers
    finally:
        with city.catalog() as catalog:
            catalog.reclassify("streets", "open")
    wait_until(lambda: all(server.get("/collections/streets").status_code == 200 for _ in range(4)))
    assert took < 5


def test_revocation_within_5_seconds(server, city):
    from gis.backends.keys import KeyStore

    with city.catalog() as catalog:
        key, _record = KeyStore(catalog.backend).create("Éphémère", ["trees"])
    wait_until(lambda: all(server.get("/collections/trees", key=key).status_code == 200 for _ in range(4)))
    listed = json.loads(city.lutece("keys", "list", "--json").stdout)
    record = next(item for item in listed if item["partner"] == "Éphémère")
    assert key not in json.dumps(listed)
    city.lutece("keys", "revoke", record["id"])
    revoked = time.monotonic()
    took = wait_until(lambda: all(server.get("/collections/trees", key=key).status_code == 404 for _ in range(4)))
    assert took < 5
    after_5_seconds(revoked)
    assert all(server.get("/collections/trees/items/1", key=key).status_code == 404 for _ in range(12))
    log = server.log.read_text(errors="replace")
    assert key not in log and key[-24:] not in log  # the access log never holds a key


# -- live reload -------------------------------------------------------------------------------------------
def test_publication_reaches_every_worker_and_readers_see_one_version_whole(server, city):
    import geopandas as gpd
    from shapely.geometry import Point

    def version(marker: str, count: int):
        return gpd.GeoDataFrame({"text": [marker] * count, "rank": list(range(count))},
                                geometry=[Point(651100 + i, 6861100) for i in range(count)], crs="EPSG:2154")

    seen: list[tuple[int, set]] = []
    errors: list = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                response = server.get("/collections/notes/items?limit=50")
                page = response.json()
                if "numberMatched" not in page:
                    errors.append((response.status_code, response.text[:200]))
                    continue
                seen.append((page["numberMatched"], {f["properties"]["text"] for f in page["features"]}))
            except Exception as exc:  # noqa: BLE001 - collected and failed below
                errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    try:
        with city.catalog() as catalog:
            for round_ in range(3):
                catalog.publish(version("alpha", 7), "notes", note=f"alpha {round_}")
                time.sleep(0.3)
                catalog.publish(version("beta", 23), "notes", note=f"beta {round_}")
                published = time.monotonic()
                time.sleep(0.3)
        took = wait_until(lambda: all(server.get("/collections/notes/items?limit=1").json()["numberMatched"] == 23
                                      for _ in range(6)), timeout=5 - (time.monotonic() - published))
        after_5_seconds(published)
        assert all(server.get("/collections/notes/items?limit=1").json()["numberMatched"] == 23 for _ in range(12))
    finally:
        stop.set()
        for thread in readers:
            thread.join()
        with city.catalog() as catalog:
            catalog.publish(source_frame(city.district, "notes"), "notes", note="back")
    assert not errors and len(seen) > 10
    whole = {(7, frozenset({"alpha"})), (23, frozenset({"beta"})), (3, frozenset(HOSTILE))}
    assert {(matched, frozenset(texts)) for matched, texts in seen} <= whole
    assert took < 5


# -- bad input ---------------------------------------------------------------------------------------------
BAD = [
    "/collections/buildings/items?filter=height_m>1;DROP TABLE lutece_layers",
    "/collections/buildings/items?filter=building_id='x' OR 1=1--",
    "/collections/buildings/items?filter=nosuch=1",
    "/collections/buildings/items?filter=((((",
    "/collections/buildings/items?filter-lang=sql&filter=1=1",
    "/collections/buildings/items?sortby=height_m;DROP TABLE x",
    "/collections/buildings/items?sortby=\"height_m\"",
    "/collections/buildings/items?properties=building_id,\"x\" FROM lutece_layers --",
    "/collections/buildings/items?height_m=abc",
    "/collections/buildings/items/1 OR 1=1",
    "/collections/buildings/items/1;DROP TABLE x",
    "/collections/..%2f..%2fetc%2fpasswd/items",
    "/collections/%2e%2e%2f%2e%2e%2fcatalog/items",
    "/collections/buildings%00/items",
    "/collections//etc/passwd",
    "/collections/buildings/items?limit=-1",
    "/collections/buildings/items?limit=0",
    "/collections/buildings/items?limit=abc",
    "/collections/buildings/items?bbox=3,3,1,1",
    "/collections/buildings/items?bbox=1,2,3",
    "/collections/buildings/items?bbox=nan,nan,nan,nan",
    "/collections/buildings/items?bbox=1,2,3,inf",
    "/collections/buildings/items?bbox=-500,-100,500,100",
    "/collections/buildings/items?crs=http://www.opengis.net/def/crs/EPSG/0/9999999",
    "/collections/buildings/items?crs=EPSG:4326",
    "/collections/buildings/items?bbox=1,1,2,2&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/31370",
    "/collections/buildings/items?offset=-5",
    "/collections/buildings/items?offset=99999999999999999999999",
    "/collections/buildings/items?offset=1e9",
    "/collections/buildings/items?f=xml",
]


def test_bad_input_is_a_4xx_with_an_ogc_exception(server):
    for path in BAD:
        response = server.get(path)
        body = response.text
        assert 400 <= response.status_code < 500, (path, response.status_code, body[:300])
        assert "Traceback" not in body and 'File "' not in body, path
        if "json" in response.headers.get("Content-Type", ""):
            assert response.json().get("code"), path
    huge = server.get("/collections/buildings/items?limit=1000000000")
    assert huge.status_code == 200 and huge.json()["numberReturned"] == 50  # clamped, not refused
    assert server.get("/collections/buildings/items?offset=100000").json()["features"] == []
    for method in ("delete", "put"):
        import requests

        response = getattr(requests, method)(server.url + "/collections/buildings/items/1", timeout=10)
        assert response.status_code == 405 and response.json()["code"], method


def test_sql_injection_leaves_the_store_alone(server, city):
    with city.catalog() as catalog:
        assert {layer.id for layer in catalog.layers()} >= set(LAYERS)
    assert server.get("/collections/buildings/items?limit=1").status_code == 200


# -- operations --------------------------------------------------------------------------------------------
def test_health_and_access_log(server):
    health = server.get("/healthz").json()
    assert health["status"] == "ok" and health["store"] == "ok" and health["feed_position"] >= len(LAYERS)
    server.get("/collections/buildings/items?limit=2&trace=log-test&api_key=secret-in-query",
               key="lutece_zz_not-a-real-key")
    time.sleep(0.2)
    lines = [line for line in server.log.read_text(errors="replace").splitlines() if "lutece.access" in line]
    request_line = [line for line in lines if "trace=log-test" in line]
    assert len(request_line) == 1 and " 200 " in request_line[0]
    assert "secret-in-query" not in request_line[0] and "not-a-real-key" not in request_line[0]


def test_schemathesis_finds_no_5xx_and_conforming_answers(server, tmp_path):
    import subprocess
    import sys

    report = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi", "--url", server.url,
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
         "response_schema_conformance", "--max-examples", "4", "--phases", "examples,fuzzing",
         "--request-timeout", "20", "--generation-deterministic", "--no-color"],
        capture_output=True, text=True, timeout=150, cwd=tmp_path)
    assert report.returncode == 0, report.stdout[-4000:] + report.stderr[-2000:]


def test_sigterm_stops_cleanly(server):
    """Last of the module: SIGTERM stops the module's server with exit code 0 and no traceback."""
    assert server.get("/collections").status_code == 200
    assert server.stop() == 0
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log and "Shutting down" in log
