"""OGC API Features on both backends, in process (Flask's test client); the truth is the source files.

Feature ids are the rows' primary keys, 1..N in the order the product held
them, so feature ``i`` is row ``i - 1`` of the source frame.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from live_city import EVENT_TIMES, LAYERS, source_frame

TO_CRS84 = Transformer.from_crs("EPSG:2154", "OGC:CRS84", always_xy=True)
TO_3857 = Transformer.from_crs("EPSG:2154", "EPSG:3857", always_xy=True)


@pytest.fixture(scope="module")
def client(city):
    from server.app import create_app

    app = create_app(city.config(), follow=False)
    yield app.test_client()
    app.extensions["lutece"].close()


@pytest.fixture(scope="module")
def buildings(city):
    return source_frame(city.district, "buildings")


def get_json(client, path: str, status: int = 200, **kwargs) -> dict:
    response = client.get(path, **kwargs)
    assert response.status_code == status, (path, response.data[:500])
    return json.loads(response.data)


def all_items(client, collection: str, query: str = "", **kwargs) -> list[dict]:
    """Every feature, following the next links (ten at a time, the configured default)."""
    features, url = [], f"/collections/{collection}/items?{query}"
    while url:
        page = get_json(client, url, **kwargs)
        features += page["features"]
        url = next((link["href"].split("://", 1)[1].split("/", 1)[1] for link in page["links"]
                    if link["rel"] == "next"), None)
        url = "/" + url if url else None
    return features


def test_open_collections_only_for_anonymous_callers(client):
    ids = {c["id"] for c in get_json(client, "/collections")["collections"]}
    layers = ids - {"catalog_records"}  # the catalog's records collection is no layer
    assert layers == {name for name, spec in LAYERS.items() if spec[0] == "open"} | {"notes", "events"}


@pytest.mark.parametrize("name", ["buildings", "streets"])
def test_every_feature_once_through_next_links(client, city, name):
    source = source_frame(city.district, name)
    features = all_items(client, name)
    assert sorted(f["id"] for f in features) == list(range(1, len(source) + 1))
    first = get_json(client, f"/collections/{name}/items?limit=3")
    assert first["numberMatched"] == len(source) and first["numberReturned"] == 3


def test_limit_is_clamped_to_the_maximum_and_offset_pages(client, buildings):
    page = get_json(client, "/collections/buildings/items?limit=1000000")
    assert page["numberReturned"] == 50  # server.max_items of the test city
    page = get_json(client, "/collections/buildings/items?limit=5&offset=110")
    assert [f["id"] for f in page["features"]] == [111, 112, 113, 114, 115]
    rels = {link["rel"] for link in page["links"]}
    assert "prev" in rels and "next" not in rels
    assert get_json(client, "/collections/buildings/items?offset=5000")["features"] == []


def test_number_matched_on_every_shape_of_page(client, buildings):
    """numberMatched is the count of the matches whether the page is full, short, empty or only counted.

    (PostGIS counts only a full page, an empty one past the start and hits:
    a short page tells the count by itself.)
    """
    box = (651100.0, 6861100.0, 651250.0, 6861220.0)
    truth = int(shapely.intersects(buildings.geometry.values, shapely.box(*box)).sum())
    assert truth > 4
    query = "/collections/buildings/items?bbox=" + ",".join(map(str, box)) \
        + "&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/2154"
    shapes = {"short": "&limit=50", "full": f"&limit={truth - 2}", "short past the start": "&limit=50&offset=3",
              "exact end": f"&limit={truth - 3}&offset=3", "empty past the end": f"&offset={truth + 5}"}
    for shape, page in shapes.items():
        answer = get_json(client, query + page)
        assert answer["numberMatched"] == truth, shape
    assert get_json(client, query + "&resulttype=hits")["numberMatched"] == truth
    assert get_json(client, "/collections/buildings/items?resulttype=hits")["numberMatched"] == len(buildings)


def test_geometries_and_attributes_in_each_crs(client, buildings):
    fid = 17
    row = buildings.iloc[fid - 1]
    native = get_json(client, f"/collections/buildings/items/{fid}?crs=http://www.opengis.net/def/crs/EPSG/0/2154")
    assert shapely.equals_exact(shapely.geometry.shape(native["geometry"]), row.geometry, tolerance=1e-6)
    assert native["properties"]["building_id"] == row["building_id"]
    assert native["properties"]["height_m"] == pytest.approx(row["height_m"])
    default = get_json(client, f"/collections/buildings/items/{fid}")
    expected = shapely.transform(row.geometry, lambda xy: np.column_stack(TO_CRS84.transform(xy[:, 0], xy[:, 1])))
    assert shapely.equals_exact(shapely.geometry.shape(default["geometry"]), expected, tolerance=1e-9)
    mercator = get_json(client, f"/collections/buildings/items?limit=1&offset={fid - 1}"
                                f"&crs=http://www.opengis.net/def/crs/EPSG/0/3857")
    expected = shapely.transform(row.geometry, lambda xy: np.column_stack(TO_3857.transform(xy[:, 0], xy[:, 1])))
    assert shapely.equals_exact(shapely.geometry.shape(mercator["features"][0]["geometry"]), expected, tolerance=1e-3)


def test_bbox_in_crs84_and_in_lambert93(client, buildings):
    box = (651100.0, 6861100.0, 651250.0, 6861220.0)
    truth = {i + 1 for i in np.flatnonzero(shapely.intersects(buildings.geometry.values, shapely.box(*box)))}
    assert 0 < len(truth) < len(buildings)
    lambert = all_items(client, "buildings", "bbox=" + ",".join(map(str, box))
                        + "&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/2154")
    assert {f["id"] for f in lambert} == truth
    # pygeoapi takes a CRS84 box to Lambert-93 by its corners (as for every provider); the true box is
    # turned by the meridian convergence (~0.5 degree here, ~1 m over 150 m): compare away from its edges
    lon0, lat0 = TO_CRS84.transform(box[0], box[1])
    lon1, lat1 = TO_CRS84.transform(box[2], box[3])
    found = {f["id"] for f in all_items(client, "buildings", f"bbox={lon0},{lat0},{lon1},{lat1}")}
    geometries = buildings.geometry.values
    inner = {i + 1 for i in np.flatnonzero(shapely.intersects(geometries, shapely.box(*box).buffer(-2)))}
    outer = {i + 1 for i in np.flatnonzero(shapely.intersects(geometries, shapely.box(*box).buffer(2)))}
    assert inner <= found <= outer and inner != outer


def test_properties_sortby_and_equality(client, buildings):
    page = get_json(client, "/collections/buildings/items?properties=building_id,height_m&sortby=-height_m&limit=5")
    assert [set(f["properties"]) for f in page["features"]] == [{"building_id", "height_m"}] * 5
    tallest = buildings.sort_values("height_m", ascending=False, kind="stable")["height_m"].head(5).tolist()
    assert [f["properties"]["height_m"] for f in page["features"]] == pytest.approx(tallest)
    kind = buildings["kind"].iloc[0]
    matched = get_json(client, f"/collections/buildings/items?kind={kind}&limit=1")["numberMatched"]
    assert matched == int((buildings["kind"] == kind).sum())


def test_cql2_text_and_json(client, buildings):
    expected = {i + 1 for i in np.flatnonzero(((buildings["height_m"] > 18) & (buildings["roof_type"] != "flat"))
                                              .to_numpy())}
    found = all_items(client, "buildings", "filter=height_m > 18 AND roof_type <> 'flat'")
    assert {f["id"] for f in found} == expected and expected
    body = {"op": "and", "args": [{"op": ">", "args": [{"property": "height_m"}, 18]},
                                  {"op": "<>", "args": [{"property": "roof_type"}, "flat"]}]}
    response = client.post("/collections/buildings/items?limit=50", data=json.dumps(body),
                           content_type="application/query-cql-json")
    assert response.status_code == 200, response.data[:300]
    page = json.loads(response.data)
    assert page["numberMatched"] == len(expected)
    assert [f["id"] for f in page["features"]] == sorted(expected)[:50]
    prefix = buildings["building_id"].iloc[0][:3]
    like = all_items(client, "buildings", f"filter=building_id LIKE '{prefix}%'")
    assert len(like) == int(buildings["building_id"].str.startswith(prefix).sum())


def test_cql2_spatial_filter(client, buildings):
    area = shapely.box(651150, 6861150, 651300, 6861300)
    lon0, lat0 = TO_CRS84.transform(651150, 6861150)
    lon1, lat1 = TO_CRS84.transform(651300, 6861300)
    polygon = f"POLYGON(({lon0} {lat0},{lon1} {lat0},{lon1} {lat1},{lon0} {lat1},{lon0} {lat0}))"
    found = {f["id"] for f in all_items(client, "buildings", f"filter=INTERSECTS(geometry,{polygon})")}
    cql2 = {f["id"] for f in all_items(client, "buildings", f"filter=S_INTERSECTS(geometry,{polygon})")}
    assert cql2 == found  # CQL2 text's spelling, and ECQL's
    # the polygon's edges are straight in CRS84, curved a little in Lambert-93: compare away from the edges
    inner, outer = area.buffer(-0.5), area.buffer(0.5)
    geometries = buildings.geometry.values
    assert {i + 1 for i in np.flatnonzero(shapely.intersects(geometries, inner))} <= found
    assert found <= {i + 1 for i in np.flatnonzero(shapely.intersects(geometries, outer))}


def test_collection_links_its_licence(client):
    links = get_json(client, "/collections/buildings")["links"]
    assert {"rel": "license", "href": "https://opendatacommons.org/licenses/odbl/1-0/"}.items() <= \
        next(link for link in links if link["rel"] == "license").items()


def test_item_queryables_and_schema(client, buildings):
    assert get_json(client, "/collections/buildings/items/99999", status=404)["code"] == "NotFound"
    assert get_json(client, "/collections/buildings/items/abc", status=404)["code"] == "NotFound"
    queryables = get_json(client, "/collections/buildings/queryables")["properties"]
    assert queryables["height_m"]["type"] == "number" and queryables["building_id"]["type"] == "string"
    assert set(queryables) == {"geometry", *[c for c in buildings.columns if c != "geometry"]}
    assert get_json(client, "/collections/buildings/schema")["properties"]


def test_html_escapes_attribute_values(client):
    page = client.get("/collections/notes/items?f=html").data.decode()
    item = client.get("/collections/notes/items/1?f=html").data.decode()
    for html in (page, item):
        assert "<script>alert" not in html and "onmouseover=\"alert" not in html
        assert "alert" in html  # the value is there, escaped


@pytest.mark.parametrize("value, expected", [
    ("2024-05-01", [0, 1]),  # a date: its whole day
    ("2024-05-01T10:00:00Z", [0]),  # an instant
    ("2024-05-01T12:00:00Z/2024-06-15", [1, 2, 3]),  # bounds included, the end date to its end
    ("../2024-05-01T23:30:00Z", [0, 1]),
    ("2024-06-01/..", [3, 4]),
])
def test_datetime_on_the_time_property(client, value, expected):
    page = get_json(client, f"/collections/events/items?datetime={value}")
    assert sorted(f["id"] - 1 for f in page["features"]) == expected
    times = [page["features"][i]["properties"]["seen"] for i in range(len(expected))]
    assert all(t[:10] in {EVENT_TIMES[i][:10] for i in expected} for t in times)


def test_temporal_extent_and_bad_datetime(client):
    extent = get_json(client, "/collections/events")["extent"]["temporal"]["interval"][0]
    assert extent[0].startswith("2024-05-01T00:00:00") and extent[1].startswith("2025-01-01T23:59:59")
    assert get_json(client, "/collections/events/items?datetime=1990-01-01", status=400)["code"]
    assert get_json(client, "/collections/events/items?datetime=yesterday", status=400)["code"]


def test_serve_refuses_a_busy_port_in_one_line(city):
    import socket

    from click.testing import CliRunner

    from gis.cli import cli
    from server.cli import serve

    cli.add_command(serve)  # as the lutece.commands entry point does once installed
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["--config", str(city.config_path), "serve", "--port", str(port)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot listen on 127.0.0.1:") and "Traceback" not in result.output
