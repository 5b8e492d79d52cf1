"""The server tests' city and real server: layers, source frames, publication, ``lutece serve`` in a subprocess.

A module of its own (not conftest) so that test modules import it by a name
that no other test folder uses; ``conftest.py`` holds the fixtures.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

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


def start_server(city: City, folder: Path, workers: int = 2, port: int | None = None,
                 own_group: bool = False) -> RunningServer:
    """A real ``lutece serve`` on ``port`` (default: a free one), once its /healthz answers.

    ``own_group`` starts it in a process group of its own, so that a test can
    kill the server and its workers at once (a crash, not a clean stop).
    """
    import requests

    port = port or free_port()
    log = folder / f"server-{port}-{time.monotonic_ns()}.log"
    command = [sys.executable, "-m", "server.cli", "--config", str(city.config_path), "serve",
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=folder,
                                   start_new_session=own_group, env={**os.environ, "PYTHONPATH": str(ROOT)})
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
    if own_group:
        os.killpg(process.pid, signal.SIGKILL)  # its workers too
    else:
        process.kill()
    raise AssertionError(f"the server did not start: {log.read_text(errors='replace')}")


