"""Fixtures of the server tests: a small city on each backend, and a real server (gunicorn) serving it.

The city (published through the catalog, as production does):

=============  ========  ===========  ==============================================
layer          access    geometry     from
=============  ========  ===========  ==============================================
buildings      open      Polygon      truth.gpkg footprints (115, with heights)
streets        open      LineString   district.gpkg streets (9)
trees          shared    Point        truth.gpkg trees (281)
rooms          shared    Polygon      truth.gpkg rooms (102)
boundary       internal  Polygon      district.gpkg boundary (1)
notes          open      Point        3 points whose text is HTML/JS/SQL
events         open      Point        5 points with a time (``seen``)
=============  ========  ===========  ==============================================
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gis.testing.postgres import PostgresCluster, missing_binaries

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ["geopackage", "postgis"]
LAYERS = {  # id -> (access, source file, source layer, OGR geometry type)
    "buildings": ("open", "truth.gpkg", "footprints", "Polygon"),
    "streets": ("open", "district.gpkg", "streets", "LineString"),
    "trees": ("shared", "truth.gpkg", "trees", "Point"),
    "rooms": ("shared", "truth.gpkg", "rooms", "Polygon"),
    "boundary": ("internal", "district.gpkg", "boundary", "Polygon"),
}
EVENT_TIMES = ["2024-05-01T10:00:00Z", "2024-05-01T23:30:00Z", "2024-05-02T08:00:00Z", "2024-06-15T12:00:00Z",
               "2025-01-01T00:00:00Z"]
HOSTILE = ["<script>alert('x')</script>", "'; DROP TABLE lutece_layers; --", "\" onmouseover=\"alert(1)"]


def source_frame(district: Path, name: str):
    import geopandas as gpd

    if name == "notes":
        from shapely.geometry import Point

        return gpd.GeoDataFrame({"text": HOSTILE, "rank": [1, 2, 3]},
                                geometry=[Point(651100 + 10 * i, 6861100) for i in range(3)], crs="EPSG:2154")
    if name == "events":
        import pandas as pd
        from shapely.geometry import Point

        seen = pd.to_datetime(EVENT_TIMES, utc=True)
        return gpd.GeoDataFrame({"name": [f"event {i}" for i in range(len(seen))], "seen": seen},
                                geometry=[Point(651100 + 5 * i, 6861150) for i in range(len(seen))], crs="EPSG:2154")
    _access, file, layer, _type = LAYERS[name]
    return gpd.read_file(district / file, layer=layer, engine="pyogrio")


def publish_city(catalog, district: Path) -> None:
    for name, (access, _file, _layer, _type) in LAYERS.items():
        licence = "ODbL-1.0" if access == "open" else "restricted"
        catalog.publish(source_frame(district, name), name, licence=licence, access=access, title=name.title())
    catalog.publish(source_frame(district, "notes"), "notes", licence="etalab-2.0", access="open", title="Notes")
    catalog.publish(source_frame(district, "events"), "events", licence="etalab-2.0", access="open",
                    title="Événements")


@pytest.fixture(scope="session")
def server_postgis():
    """A throw-away PostgreSQL + PostGIS cluster for the server tests (skipped where not installed)."""
    missing = missing_binaries()
    if missing:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL 15 + PostGIS 3 not installed ({missing})", pytrace=False)
        pytest.skip(f"PostgreSQL 15 + PostGIS 3 not installed ({missing})")
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class City:
    """A published city on one backend: its store section and its lutece.yml."""

    backend: str
    store: dict
    config_path: Path
    district: Path

    def catalog(self):
        from gis.backends import open_backend
        from gis.catalog.service import Catalog

        return Catalog(open_backend(self.store), crs="EPSG:2154", retention=self.store["retention"])

    def config(self):
        from gis.config import load_config

        return load_config(self.config_path)

    def lutece(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``lutece --config CITY ARGS`` (the server's commands included) in a subprocess."""
        command = [sys.executable, "-m", "server.cli", "--config", str(self.config_path), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.config_path.parent,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed: {result.stderr}")
        return result


def _write_config(folder: Path, store: dict, extra: str = "") -> Path:
    import json

    lines = ["store:"] + [f"  {key}: {json.dumps(value)}" for key, value in store.items()]
    path = folder / "lutece.yml"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


@pytest.fixture(scope="module", params=BACKENDS)
def city(request, tmp_path_factory, district) -> City:
    """The published test city on each backend (module-scoped: the servers of a module share it)."""
    folder = tmp_path_factory.mktemp(f"city-{request.param}")
    store = {"backend": request.param, "path": str(folder / "city"), "retention": 3}
    database = None
    if request.param == "postgis":
        cluster = request.getfixturevalue("server_postgis")
        database = f"s_{uuid.uuid4().hex[:16]}"
        cluster.create_database(database)
        store["dsn"] = cluster.dsn(database)
    config_path = _write_config(folder, store, "server:\n  max_items: 50\n  default_items: 10\n  poll_interval: 0.5\n")
    city = City(request.param, store, config_path, district)
    with city.catalog() as catalog:
        publish_city(catalog, district)
    yield city
    if database is not None:
        request.getfixturevalue("server_postgis").drop_database(database)


@dataclass
class RunningServer:
    """A real ``lutece serve`` (gunicorn, 2 workers) on a free port of 127.0.0.1."""

    url: str
    process: subprocess.Popen
    log: Path
    city: City
    _stopped: bool = field(default=False)

    def get(self, path: str, key: str | None = None, headers: dict | None = None, **kwargs):
        import requests

        headers = dict(headers or {})
        if key:
            headers["X-API-Key"] = key
        return requests.get(self.url + path, headers=headers, timeout=30, **kwargs)

    def stop(self) -> int:
        if not self._stopped:
            self.process.terminate()  # SIGTERM: the clean shutdown under test
            try:
                self.process.wait(timeout=30)
            finally:
                self._stopped = True
        return self.process.returncode


def start_server(city: City, folder: Path, workers: int = 2) -> RunningServer:
    import requests

    port = free_port()
    log = folder / f"server-{port}.log"
    command = [sys.executable, "-m", "server.cli", "--config", str(city.config_path), "serve",
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=folder,
                                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited ({process.returncode}): {log.read_text(errors='replace')}")
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                return RunningServer(url, process, log, city)
        except requests.RequestException:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"the server did not start: {log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def server(city, tmp_path_factory):
    running = start_server(city, tmp_path_factory.mktemp("server"))
    yield running
    running.stop()
    if running.process.returncode is None:
        running.process.kill()


@pytest.fixture(params=BACKENDS)
def catalog(request, tmp_path):
    """An empty catalog on each backend (a fresh database on PostGIS)."""
    from gis.backends import open_backend
    from gis.catalog.service import Catalog

    store = {"backend": request.param, "path": str(tmp_path / "city"), "retention": 3}
    database = None
    if request.param == "postgis":
        cluster = request.getfixturevalue("server_postgis")
        database = f"k_{uuid.uuid4().hex[:16]}"
        cluster.create_database(database)
        store["dsn"] = cluster.dsn(database)
    with Catalog(open_backend(store), crs="EPSG:2154", retention=3) as opened:
        yield opened
    if database is not None:
        request.getfixturevalue("server_postgis").drop_database(database)


@pytest.fixture(scope="session")
def cadastre(district):
    import geopandas as gpd

    return gpd.read_file(district / "district.gpkg", layer="buildings_cadastre", engine="pyogrio")
