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
import uuid

import pytest

from gis.testing.postgres import PostgresCluster, missing_binaries
from live_city import (BACKENDS, EVENT_TIMES, HOSTILE, LAYERS, ROOT, City, RunningServer,  # noqa: F401 (re-exported)
                       _write_config, free_port, publish_city, source_frame, start_server)

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
