"""The catalog as OGC API Records through a real HTTP server, on both backends, read with OWSLib."""

from __future__ import annotations

import json
import socket

import geopandas as gpd
import pytest
import requests

from delivery_support import *  # noqa: F401,F403
from delivery_support import LiveServer, delivery_app, raw_get

pytest.importorskip("gis.catalog.public", reason="the public view of lineages (gis/catalog/public.py) is not merged yet")

ITEMS = "/collections/catalog_records/items"
SECRET_LINEAGE = {"pipeline": "lidar-to-2d",
                  "inputs": [{"path": "/home/alice/chantier/0651_6861.laz", "sha256": "ab" * 32}],
                  "stages": [{"type": "readers.las", "options": {"filename": "/home/alice/chantier/0651_6861.laz"}},
                             {"type": "writers.footprints", "options": {}}],
                  "publisher": "alice@gis-07", "host": "gis-07"}


@pytest.fixture(scope="module")
def cadastre(district):
    return gpd.read_file(district / "district.gpkg", layer="buildings_cadastre", engine="pyogrio")


@pytest.fixture(scope="module")
def served(city, cadastre, district, tmp_path_factory):
    from rasterio.shutil import copy

    cog = tmp_path_factory.mktemp("cog") / "dtm.tif"
    copy(district / "truth-dtm.tif", cog, driver="COG")
    city.publish(cadastre, "batiments", licence="ODbL-1.0", access="open", title="Bâtiments", theme="buildings",
                 keywords=["bâti", "cadastre"], lineage=SECRET_LINEAGE, note="made in /home/alice/chantier")
    city.publish(cog, "mnt", licence="etalab-2.0", access="open", title="Terrain")
    city.publish(cadastre.iloc[:10], "batiments-partenaires", licence="restricted", access="shared", title="Privé")
    with LiveServer(delivery_app(city)) as server:
        yield {"url": server.url, "city": city, "cog": cog}


def test_one_record_per_visible_layer_read_with_owslib(served):
    from owslib.ogcapi.records import Records

    client = Records(served["url"])
    found = client.collection_items("catalog_records")
    assert {record["id"] for record in found["features"]} == {"batiments", "mnt"}
    assert found["numberMatched"] == 2
    record = client.collection_item("catalog_records", "batiments")
    assert record["properties"]["license"] == "ODbL-1.0"
    assert record["properties"]["lutece:access"] == "open"
    assert record["properties"]["title"] == "Bâtiments" and "cadastre" in record["properties"]["keywords"]
    licence = next(link for link in record["links"] if link["rel"] == "license")
    assert licence["href"].startswith("http")
    assert any(link["href"].endswith("/collections/batiments/items") for link in record["links"])


def test_record_extent_and_version(served, cadastre):
    record = requests.get(f"{served['url']}{ITEMS}/batiments").json()
    west, south, east, north = cadastre.to_crs("OGC:CRS84").total_bounds
    ring = record["geometry"]["coordinates"][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    assert min(xs) <= west + 1e-7 and max(xs) >= east - 1e-7 and min(ys) <= south + 1e-7 and max(ys) >= north - 1e-7
    version = record["properties"]["lutece:version"]
    assert version["number"] == 1 and version["sha256"] == served["city"].version("batiments").checksum
    assert version["features"] == len(cadastre)


def test_lineage_is_summarised_without_paths_or_people(served, tmp_path_factory):
    status, _, body = raw_get(served["url"], ITEMS)
    text = body.decode()
    record = next(r for r in json.loads(text)["features"] if r["id"] == "batiments")
    lineage = record["properties"]["lutece:lineage"]
    assert lineage["pipeline"] == "lidar-to-2d"
    assert lineage["inputs"][0]["file"] == "0651_6861.laz" and lineage["inputs"][0]["sha256"] == "ab" * 32
    assert lineage["stages"] == ["readers.las", "writers.footprints"]
    for secret in ("/home/alice", "alice@", "gis-07", f"@{socket.gethostname()}", str(served["cog"].parent),
                   str(tmp_path_factory.getbasetemp())):
        assert secret not in text, secret


def test_search_paging_and_filters(served):
    first = requests.get(f"{served['url']}{ITEMS}", params={"limit": 1}).json()
    assert first["numberReturned"] == 1 and first["numberMatched"] == 2
    following = next(link["href"] for link in first["links"] if link["rel"] == "next")
    second = requests.get(following).json()
    assert {first["features"][0]["id"], second["features"][0]["id"]} == {"batiments", "mnt"}
    assert not any(link["rel"] == "next" for link in second["links"])
    assert [r["id"] for r in requests.get(f"{served['url']}{ITEMS}", params={"q": "cadastre"}).json()["features"]] \
        == ["batiments"]
    far = requests.get(f"{served['url']}{ITEMS}", params={"bbox": "10,40,11,41"}).json()
    assert far["numberMatched"] == 0
    near = requests.get(f"{served['url']}{ITEMS}", params={"bbox": "2.2,48.7,2.5,49.0"}).json()
    assert {r["id"] for r in near["features"]} == {"batiments", "mnt"}
    clamped = requests.get(f"{served['url']}{ITEMS}", params={"limit": 10 ** 9}).json()
    assert clamped["numberReturned"] == 2


@pytest.mark.parametrize("query", ["limit=-1", "limit=0", "limit=abc", "limit=nan", "offset=-5", "bbox=1,2,3",
                                   "bbox=2,49,1,48", "bbox=nan,1,2,3", "bbox=0,0,200,1"])
def test_bad_searches_are_400_with_an_ogc_exception(served, query):
    status, _, body = raw_get(served["url"], f"{ITEMS}?{query}")
    assert status == 400 and json.loads(body)["code"] == "InvalidParameterValue"


def test_an_unseen_record_answers_as_a_nonexistent_one(served):
    for layer_id in ("batiments-partenaires", "..%2f..%2fetc", "<script>"):
        unseen = raw_get(served["url"], f"{ITEMS}/{layer_id}")
        missing = raw_get(served["url"], f"{ITEMS}/inexistant")
        assert unseen[0] == missing[0] == 404 and unseen[2] == missing[2]
