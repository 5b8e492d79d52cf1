"""No served byte names a publisher, a host or a folder of the store (issue 10: the public view of a lineage).

An open layer is published with a distinctive publisher, a lineage full of
absolute paths and a note naming a folder; the real server (gunicorn) is
then crawled anonymously from its landing page, the OpenAPI document, the
DCAT catalogue, the change feed and the records, following every link it
gives (JSON ``href`` and HTML ``href``/``src``) on its own host, in JSON and
HTML. Every body, binary downloads included, is searched for the
publisher's user and host names and the store's absolute path. The oracle
is the text we put in, not the code that filters it.
"""

from __future__ import annotations

import re
import socket
import time
from urllib.parse import urljoin, urlsplit

import geopandas as gpd
import pytest
from shapely.geometry import Point

from live_city import start_server

USER, HOST = "zoe-private", "atelier-sig-42"
SECRET_FOLDER = "/srv/chantiers/zoe-private/lidar-2026"
LINEAGE = {
    "pipeline": "lidar-to-2d",
    "inputs": [{"path": f"{SECRET_FOLDER}/0651_6861.laz", "sha256": "cd" * 32, "licence": "etalab-2.0"}],
    "stages": [{"type": "readers.las", "options": {"filename": [f"{SECRET_FOLDER}/0651_6861.laz"]}},
               {"type": "writers.trees", "options": {"output": f"{SECRET_FOLDER}/products"}}],
    "publisher": f"{USER}@{HOST}", "host": HOST, "user": USER,
}
STARTS = ["/", "/collections", "/openapi?f=json", "/conformance", "/catalog", "/catalog?f=ttl",
          "/changes?since=0", "/collections/catalog_records/items", "/collections/kiosques/items?f=html",
          "/collections/kiosques/items?f=json"]
MAX_PAGES = 400
HREF = re.compile(r"""(?:href|src)\s*=\s*["']([^"'#]+)""")


def published_kiosks(city) -> None:
    frame = gpd.GeoDataFrame({"name": ["kiosque 1", "kiosque 2"]},
                             geometry=[Point(651150, 6861150), Point(651160, 6861160)], crs="EPSG:2154")
    with city.catalog() as catalog:
        catalog.publish(frame, "kiosques", licence="etalab-2.0", access="open", title="Kiosques",
                        publisher=f"{USER}@{HOST}", lineage=LINEAGE, note=f"refait depuis {SECRET_FOLDER}")


def links_of(body: bytes, base: str) -> list[str]:
    """Absolute URLs of the server anywhere in a text body (JSON, JSON-LD, Turtle, HTML), and HTML's relative links."""
    text = body.decode("utf-8", errors="replace")
    absolute = re.findall(re.escape(base) + r"""[^\s"'<>\\]*""", text)
    return absolute + HREF.findall(text)


def crawl(server) -> dict[str, bytes]:
    """Every page reachable from the start points on the server's own host: url -> body."""
    own = urlsplit(server.url).netloc
    queue = [server.url + path for path in STARTS]
    bodies: dict[str, bytes] = {}
    while queue and len(bodies) < MAX_PAGES:
        url = queue.pop(0)
        if url in bodies or urlsplit(url).netloc != own:
            continue
        response = server.get(url[len(server.url):])
        bodies[url] = response.content
        if response.status_code != 200:
            continue
        if not _is_text(response.headers.get("Content-Type", "")):
            continue
        for link in links_of(response.content, server.url):
            absolute = urljoin(url, link.replace("&amp;", "&"))
            if "{" not in absolute and absolute not in bodies:
                queue.append(absolute)
    return bodies


def _is_text(content_type: str) -> bool:
    return any(kind in content_type for kind in ("json", "html", "text", "xml", "turtle", "yaml"))


@pytest.fixture(scope="module")
def crawled(city, tmp_path_factory):
    published_kiosks(city)
    running = start_server(city, tmp_path_factory.mktemp("crawl"))
    try:
        deadline = time.monotonic() + 10
        while running.get("/collections/kiosques").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        yield city, crawl(running)
    finally:
        running.stop()


def test_the_crawl_reaches_the_layer_its_lineage_and_its_downloads(crawled):
    """The sweep below means something only if it saw the layer's pages, records and files."""
    _city, bodies = crawled
    urls = list(bodies)
    assert len(urls) >= 40, urls
    assert any("/collections/kiosques/items" in url for url in urls)
    assert any("catalog_records/items/kiosques" in url for url in urls), "the layer's record was not reached"
    assert any("/downloads/kiosques/" in url for url in urls), "no download of the layer was reached"
    assert any(b"lidar-to-2d" in body or b"readers.las" in body for body in bodies.values()), \
        "no served page carries the lineage at all"


def test_no_served_byte_names_the_publisher_a_host_or_a_store_folder(crawled):
    city, bodies = crawled
    secrets = [USER, HOST, SECRET_FOLDER, "/srv/chantiers", str(city.config_path.parent), city.store["path"],
               socket.gethostname()]
    leaks = [(url, secret) for url, body in bodies.items() for secret in secrets
             if secret and secret.encode() in body]
    assert not leaks, leaks[:10]
