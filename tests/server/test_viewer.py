"""The web viewer in a real headless Chromium (Debian's, driven by playwright) against a real ``lutece serve``.

One server and one browser for the module; the city (``viewer_city.py``) has a
layer of every kind. Screenshots are kept under the test's tmp folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from live_city import City, _write_config, start_server
from viewer_city import BUILDING_ATTRIBUTES, SHARED_LAYER, publish_viewer_city

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
BACKGROUND_2D = (0xEE, 0xF1, 0xF3)  # map2d.js BACKGROUND
SKY, GLOBE = (0xCF, 0xD8, 0xDC), (0xDF, 0xE4, 0xE8)  # scene3d.js: the scene's background, the bare globe
TOWN_HALL = "B0000"
INTERIOR = "town-hall"  # viewer_city.py: the town hall's indoor plans as a storey tileset
GROUND_BROWN = (0xA0, 0x52, 0x2D)  # scene3d.js CLASS_COLOURS[2]


@pytest.fixture(scope="module")
def served(tmp_path_factory, district):
    folder = tmp_path_factory.mktemp("viewer-city")
    store = {"backend": "geopackage", "path": str(folder / "city"), "retention": 3}
    city = City("geopackage", store, _write_config(folder, store, "server:\n  poll_interval: 0.5\n"), district)
    with city.catalog() as catalog:
        publish_viewer_city(catalog, district, folder)
    key = city.lutece("keys", "create", "--partner", "voirie", "--layers", SHARED_LAYER).stdout.splitlines()[0].strip()
    server = start_server(city, folder)
    if server.get("/viewer").status_code == 503:
        server.stop()
        pytest.fail("the viewer's libraries are not installed: run `make setup` (or bash "
                    "server/viewer/install_libraries.sh build/viewer/lib)", pytrace=False)
    yield {"url": server.url, "key": key, "district": district}
    server.stop()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed (.ci/system-deps.sh installs it)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        # one context: its pages share the HTTP cache, so the immutable libraries load once per module
        context = launched.new_context(viewport={"width": 900, "height": 600})
        yield context
        context.close()
        launched.close()


class Session:
    """One page of the viewer with every console message, failed request and response it saw."""

    def __init__(self, browser, url: str) -> None:
        self.page = browser.new_page()
        self.errors: list[str] = []
        self.responses: list[tuple[int, str]] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed {r.url} {r.failure}"))
        self.page.on("response", lambda r: self.responses.append((r.status, r.url)))
        self.page.goto(url)

    def wait(self, flag: str) -> None:
        self.page.wait_for_function(f"window.lutece && window.lutece.{flag}", timeout=150_000)

    def shot(self, path: Path, selector: str) -> np.ndarray:
        import rasterio  # GDAL reads PNG

        self.page.locator(selector).screenshot(path=str(path))
        with rasterio.open(path) as image:
            return np.moveaxis(image.read()[:3], 0, -1).astype(int)

    def shot_until(self, path: Path, selector: str, test, timeout: float = 30.0) -> np.ndarray:
        """Screenshots until ``test(pixels)`` holds; the last one fails the test when it never does."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            pixels = self.shot(path, selector)
            if test(pixels) or time.monotonic() > deadline:
                assert test(pixels), f"{path.name}: not drawn as expected within {timeout} s"
                return pixels
            self.page.wait_for_timeout(500)

    def close(self) -> None:
        self.page.close()


def _near(pixels: np.ndarray, colour: tuple[int, int, int], tolerance: int = 40) -> float:
    """The share of pixels within ``tolerance`` (sum of channel differences) of ``colour``."""
    return float((np.abs(pixels - np.array(colour)).sum(axis=2) < tolerance).mean())


def drawn_fraction(pixels: np.ndarray, background: tuple[int, int, int]) -> float:
    """The share of pixels farther than a little from the background colour."""
    return float((np.abs(pixels - np.array(background)).sum(axis=2) > 30).mean())


def _centroid_lonlat(district: Path, building_id: str) -> tuple[float, float, dict]:
    import geopandas as gpd

    footprints = gpd.read_file(district / "truth.gpkg", layer="footprints", engine="pyogrio")
    row = footprints[footprints["building_id"] == building_id].iloc[0]
    point = gpd.GeoSeries([row.geometry.representative_point()], crs=footprints.crs).to_crs("EPSG:4326").iloc[0]
    return point.x, point.y, row


def _click_centre(session: Session, selector: str) -> dict[str, str]:
    box = session.page.locator(selector).bounding_box()
    session.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    return _attributes(session)


def test_the_city_in_2d_and_3d_every_kind_drawn_a_building_clicked(served, browser, tmp_path):
    """One page (one Cesium start-up): over the town hall, 2D then 3D, every layer kind, clicks, the terrain (the
    DTM's heights above the ellipsoid where the tilesets stand), point colours."""
    lon, lat, truth = _centroid_lonlat(served["district"], TOWN_HALL)
    session = Session(browser, f"{served['url']}/viewer#map=18/{lat}/{lon}&cam={lon},{lat},600,0,-90")
    session.wait("ready2d")
    map_pixels = session.shot(tmp_path / "viewer-2d.png", "#map2d canvas")
    assert drawn_fraction(map_pixels, BACKGROUND_2D) > 0.3  # the DTM's map tiles and the footprints
    shown = _click_centre(session, "#map2d canvas")  # the footprints' vector tile feature
    assert shown["building_id"] == TOWN_HALL and shown["kind"] == truth["kind"]

    session.page.click("#mode-3d")
    session.wait("ready3d")
    scene_pixels = session.shot(tmp_path / "viewer-3d.png", "#scene3d canvas")
    assert min(drawn_fraction(scene_pixels, SKY), drawn_fraction(scene_pixels, GLOBE)) > 0.1
    shown = _click_centre(session, "#scene3d canvas")  # the building tileset's feature metadata
    for name in BUILDING_ATTRIBUTES:
        expected = truth[name]
        assert name in shown, name
        assert (shown[name] == str(expected) if isinstance(expected, str)
                else abs(float(shown[name]) - float(expected)) < 1e-6), name

    assert abs(_terrain_height(session, lon, lat) - _ellipsoidal_dtm(served["district"], lon, lat)) < 1.0

    ground = _near(scene_pixels, GROUND_BROWN)  # the terrain's points by class: ground (ASPRS 2) in its colour
    assert ground > 0.02
    recoloured = {}
    drawn = drawn_fraction(scene_pixels, GLOBE)
    for mode in ("intensity", "height"):  # a new colour reopens the point tileset: wait for its frame, the
        # class colours gone and the points drawn again (between the two, a frame shows the bare globe)
        session.page.select_option("#point-colour", mode)
        recoloured[mode] = session.shot_until(
            tmp_path / f"viewer-3d-{mode}.png", "#scene3d canvas",
            lambda pixels: _near(pixels, GROUND_BROWN) < ground / 20 and drawn_fraction(pixels, GLOBE) > drawn / 2)
    assert np.abs(recoloured["intensity"] - recoloured["height"]).sum(axis=2).mean() > 5  # greys vs a ramp

    assert session.errors == []
    assert [(status, url) for status, url in session.responses if status >= 400] == []
    ok = [url for status, url in session.responses if status in (200, 304)]
    for kind, pattern in {"vector tiles": "/collections/buildings/tiles/WebMercatorQuad/",
                          "raster map": "/collections/dtm/map?", "point cloud": "/collections/terrain-3d/3dtiles/",
                          "mesh": "/collections/buildings-3d/3dtiles/",
                          "terrain": "/collections/dtm/coverage?f=covjson&crs="}.items():
        assert any(pattern in url for url in ok), kind
    assert any(url.endswith(".glb") and "/buildings-3d/" in url for url in ok)
    assert any(url.endswith(".glb") and "/terrain-3d/" in url for url in ok)
    credits = session.page.locator("#attribution").inner_text()
    assert "ODbL" in credits and "partag" in credits.lower()  # share-alike stated for the ODbL layer
    session.close()


TERRAIN_HEIGHT = """async ([lon, lat]) => {
  const [point] = await Cesium.sampleTerrain(window.lutece.scene.viewer.terrainProvider, 17,
                                             [Cesium.Cartographic.fromDegrees(lon, lat)]);
  return point.height;
}"""


def _terrain_height(session: Session, lon: float, lat: float) -> float:
    """The 3D view's terrain height at a point (metres above the ellipsoid), sampled as Cesium draws it."""
    return session.page.evaluate(TERRAIN_HEIGHT, [lon, lat])


def _ellipsoidal_dtm(district: Path, lon: float, lat: float) -> float:
    """The truth DTM's height at a point plus the geoid separation the tilesets were placed with (tiles.geo)."""
    import pyproj
    import rasterio

    from tiles.geo import HeightModel, Placement

    x, y = pyproj.Transformer.from_crs(4326, 2154, always_xy=True).transform(lon, lat)
    with rasterio.open(district / "truth-dtm.tif") as dtm:
        height = float(next(dtm.sample([(x, y)]))[0])
    separation = Placement(pyproj.CRS("EPSG:2154"), HeightModel.resolve()).separation(np.array([x]), np.array([y]))
    return height + float(separation[0])


def _attributes(session: Session) -> dict[str, str]:
    session.page.wait_for_selector("#attributes:not([hidden])", timeout=20_000)
    rows = session.page.locator("#attributes-table tr")
    return {rows.nth(i).locator("th").inner_text(): rows.nth(i).locator("td").inner_text()
            for i in range(rows.count())}


def test_anonymous_never_sees_a_shared_layer_and_a_partner_key_shows_it(served, browser):
    anonymous = Session(browser, f"{served['url']}/viewer")
    anonymous.wait("ready2d")
    listed = anonymous.page.eval_on_selector_all("#layers li", "items => items.map(i => i.dataset.layer)")
    assert SHARED_LAYER not in listed and "buildings" in listed
    assert not [url for _status, url in anonymous.responses if f"/{SHARED_LAYER}" in url]
    anonymous.close()
    partner = Session(browser, f"{served['url']}/viewer#key={served['key']}")
    partner.wait("ready2d")
    partner.page.wait_for_timeout(500)
    listed = partner.page.eval_on_selector_all("#layers li", "items => items.map(i => i.dataset.layer)")
    assert SHARED_LAYER in listed
    tiles = [status for status, url in partner.responses if f"/collections/{SHARED_LAYER}/tiles/" in url]
    assert tiles and set(tiles) <= {200, 304}
    assert "key=" not in partner.page.evaluate("location.href")  # the key never stays in a shareable URL
    assert partner.errors == []
    partner.close()


def test_the_view_is_kept_in_the_url(served, browser):
    session = Session(browser, f"{served['url']}/viewer#layers=buildings,streets&lang=en")
    session.wait("ready2d")
    assert session.page.locator("#panel h2").inner_text() == "Layers"
    session.page.locator("#layers li[data-layer=streets] input").uncheck()
    session.page.wait_for_timeout(200)
    fragment = session.page.evaluate("location.hash")
    assert "layers=buildings&" in fragment + "&" and "map=" in fragment and "lang=en" in fragment
    session.close()
    again = Session(browser, f"{served['url']}/viewer{fragment}")
    again.wait("ready2d")
    checked = again.page.eval_on_selector_all("#layers li input:checked",
                                              "boxes => boxes.map(b => b.closest('li').dataset.layer)")
    assert checked == ["buildings"]
    again.close()


def test_viewer_files_are_versioned_and_immutable(served):
    import re

    import requests

    page = requests.get(f"{served['url']}/viewer")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-cache"
    urls = re.findall(r'(?:href|src)="(/viewer/[^"]+)"', page.text)
    urls += [f"{u}/maplibre-gl.mjs" for u in re.findall(r'maplibre: "([^"]+)"', page.text)]
    urls += [f"{u}/Cesium.js" for u in re.findall(r'cesium: "([^"]+)"', page.text)]
    assert len(urls) >= 5
    for url in urls:
        response = requests.get(served["url"] + url)
        assert response.status_code == 200, url
        assert "immutable" in response.headers["Cache-Control"], url
    assert requests.get(f"{served['url']}/viewer/lib/cesium@0.0.0/Cesium.js").status_code == 404
    assert requests.get(f"{served['url']}/viewer/app/0000/main.js").status_code == 404
    assert json.loads(requests.get(f"{served['url']}/viewer/lib/x/..%2F..%2Fsecret").text)["code"] == "NotFound"


FEATURES_BY_STOREY = """(layer) => {
  const tileset = window.lutece.scene.tilesets.get(layer), out = [];
  const visit = (tile) => {
    const content = tile.content;
    for (let i = 0; i < (content?.featuresLength || 0); i++) {
      const feature = content.getFeature(i);
      out.push([feature.getProperty("level"), feature.show && tileset.show, feature.getProperty("class")]);
    }
    tile.children.forEach(visit);
  };
  visit(tileset.root);
  return out;
}"""


def _features_once(session: Session, expected, timeout: float = 30.0) -> list:
    """The interior's (level, shown) pairs once every one is as ``expected`` says (a style applies within frames)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        features = session.page.evaluate(FEATURES_BY_STOREY, INTERIOR)
        if (features and all(expected(level, show) for level, show, _ in features)) or time.monotonic() > deadline:
            return features
        session.page.wait_for_timeout(300)


def test_the_storey_picker_shows_one_storey_of_the_interior(served, browser):
    import geopandas as gpd

    rooms = gpd.read_file(served["district"] / "truth.gpkg", layer="rooms", engine="pyogrio")
    session = Session(browser, f"{served['url']}/viewer#mode=3d&layers={INTERIOR}")
    session.wait("ready3d")
    options = session.page.eval_on_selector_all("#storey option", "options => options.map(o => o.value)")
    assert options == ["all", *map(str, sorted(rooms["level_index"].unique())), "shell"]
    session.page.select_option("#storey", "2")
    features = _features_once(session, lambda level, show: show == (level == 2))
    assert len([f for f in features if f[2] == "room"]) == len(rooms)  # every storey's tile loaded
    shown = [(level, kind) for level, show, kind in features if show]
    assert shown and {level for level, _ in shown} == {2}
    assert len([kind for _, kind in shown if kind == "room"]) == int((rooms["level_index"] == 2).sum())
    assert "storey=2" in session.page.evaluate("location.hash")
    session.page.select_option("#storey", "shell")
    assert not any(show for _level, show, _ in _features_once(session, lambda level, show: not show))
    assert session.errors == []
    session.close()
