"""Fixtures of the delivery routes' tests: an empty city on each backend, a 3D Tiles folder, a real HTTP server.

Test modules take them with ``from delivery_support import *`` and publish
the layers they need (open, shared, internal); the delivery routes run alone
behind a real threaded HTTP server on loopback (werkzeug's), with anonymous
visibility (:func:`open_only`), reached with a real client. The routes inside
the whole app, with keys, are tested in ``test_delivery_leaks.py``.
"""

from __future__ import annotations

import json
import struct
import threading
import uuid
from pathlib import Path

import pytest

from gis.backends import open_backend
from gis.catalog.service import Catalog
from server.routes.delivery import DeliveryRoutes
from server.routes.http import Delivery

BACKENDS = ["geopackage", "postgis"]
CRS = "EPSG:2154"
ACCESS_LEVELS = {"open": "etalab-2.0", "shared": "restricted", "internal": "restricted"}


def _store(request, folder: Path) -> dict:
    store = {"backend": request.param, "path": str(folder / "city"), "retention": 3}
    if request.param == "postgis":
        server = request.getfixturevalue("server_postgis")  # the server tests' cluster (conftest.py)
        database = f"t_{uuid.uuid4().hex[:16]}"
        server.create_database(database)
        request.addfinalizer(lambda: server.drop_database(database))
        store["dsn"] = server.dsn(database)
    return store


@pytest.fixture(scope="module", params=BACKENDS)
def city(request, tmp_path_factory):
    """A catalog on each backend (one per test module), closed at the end."""
    store = _store(request, tmp_path_factory.mktemp("city"))
    with Catalog(open_backend(store), crs=CRS, retention=store["retention"]) as catalog:
        yield catalog


def write_tileset(folder: Path, seed: int = 0) -> Path:
    """A small hand-made point-cloud 3D Tiles 1.1 folder: a root .pnts, a child .pnts, a subtree, a .glb.

    ``seed`` changes the content (so two calls give two versions).
    """
    (folder / "tiles").mkdir(parents=True, exist_ok=True)
    for name, count in (("root.pnts", 16), ("tiles/child.pnts", 40)):
        positions = struct.pack(f"<{count * 3}f", *[(seed + i) * 0.5 for i in range(count * 3)])
        feature = json.dumps({"POINTS_LENGTH": count, "POSITION": {"byteOffset": 0}}).encode()
        feature += b" " * (-len(feature) % 8)
        header = struct.pack("<4sIIIIII", b"pnts", 1, 28 + len(feature) + len(positions), len(feature),
                             len(positions), 0, 0)
        (folder / name).write_bytes(header + feature + positions)
    (folder / "tiles" / "0.subtree").write_bytes(b"subt" + bytes(20 + seed))
    (folder / "tiles" / "mesh.glb").write_bytes(b"glTF" + struct.pack("<II", 2, 12) + bytes(seed))
    box = [4201000.0, 171000.0, 4779000.0, 100.0, 0, 0, 0, 100.0, 0, 0, 0, 100.0]
    tileset = {"asset": {"version": "1.1"}, "geometricError": 50,
               "root": {"boundingVolume": {"box": box}, "geometricError": 10, "refine": "ADD",
                        "content": {"uri": "root.pnts"},
                        "children": [{"boundingVolume": {"box": box}, "geometricError": 0,
                                      "content": {"uri": "tiles/child.pnts"}},
                                     {"boundingVolume": {"box": box}, "geometricError": 0,
                                      "content": {"uri": "tiles/mesh.glb"}}]},
               "padding": "x" * 2000}  # big enough for gzip to matter
    (folder / "tileset.json").write_text(json.dumps(tileset))
    return folder


def publish_3dtiles(catalog: Catalog, folder: Path, layer_id: str, access: str, kind: str = "pointcloud-3dtiles"):
    return catalog.publish(folder, layer_id, kind=kind, licence=ACCESS_LEVELS[access], access=access,
                           title=f"Nuage {layer_id}")


def open_only(catalog: Catalog):
    """Anonymous visibility (open layers only), for routes tested without keys."""
    def visible_layer(request, layer_id):
        layer = catalog.backend.find_layer(layer_id) if _is_slug(layer_id) else None
        return layer if layer is not None and layer.access == "open" and layer.current_version else None

    return visible_layer


def _is_slug(value: str) -> bool:
    from gis.records import check_layer_id
    from gis.errors import InputError

    try:
        check_layer_id(value)
    except InputError:
        return False
    return True


class LiveServer:
    """A real threaded HTTP server on loopback around a WSGI app."""

    def __init__(self, app) -> None:
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def delivery_app(catalog: Catalog, visible_layer=None):
    """The delivery routes alone as a WSGI app (the not-found answer for anything else)."""
    delivery = Delivery(catalog=lambda: catalog, visible_layer=visible_layer or open_only(catalog))
    return DeliveryRoutes(delivery).wsgi()


def raw_get(url: str, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """A GET sending ``path`` exactly as given (no client-side normalisation of ``..`` or escapes)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


__all__ = ["city", "write_tileset", "publish_3dtiles", "open_only", "LiveServer",
           "delivery_app", "raw_get", "BACKENDS", "CRS", "ACCESS_LEVELS"]
