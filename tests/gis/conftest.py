"""Fixtures of the city GIS tests: a fresh store per test on each backend, and products to publish.

Every catalog test takes ``catalog`` (or ``store``), parametrised over
:data:`BACKENDS`, so that the PostGIS backend joins the same suite by adding
its name here.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from catalog_products import store_yaml  # noqa: F401 (imported from here by some tests)
from gis.backends import open_backend
from gis.catalog.service import Catalog
from gis.testing.postgres import PostgresCluster, missing_binaries

BACKENDS = ["geopackage", "postgis"]
CRS = "EPSG:2154"
# Tests that write their own lutece.yml from store["backend"] and store["path"] only: on PostGIS that file
# lacks store.dsn (required by the schema). They run on PostGIS in test_postgis.py with store_yaml(store).




@pytest.fixture(scope="session")
def postgis_server():
    """A throw-away PostgreSQL 15 + PostGIS cluster for the session, stopped at the end even on failure.

    In CI (``CI=true``) missing binaries fail the run: ``make test`` installs
    them through .ci/system-deps.sh. Elsewhere the PostGIS runs are skipped.
    """
    missing = missing_binaries()
    if missing:
        message = f"PostgreSQL 15 + PostGIS 3 not installed ({missing}); run 'bash .ci/system-deps.sh' as root"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    cluster = PostgresCluster()  # its own folder under /tmp, which the postgres user can enter
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path) -> dict:
    """The ``store`` section of a configuration for a new, empty city GIS."""
    store = {"backend": request.param, "path": str(tmp_path / "city"), "retention": 3}
    if request.param != "postgis":
        yield store
        return
    server = request.getfixturevalue("postgis_server")
    database = f"t_{uuid.uuid4().hex[:16]}"
    server.create_database(database)
    try:
        yield {**store, "dsn": server.dsn(database)}
    finally:
        server.drop_database(database)


@pytest.fixture
def catalog(store):
    with Catalog(open_backend(store), crs=CRS, retention=store["retention"]) as opened:
        yield opened


@pytest.fixture(scope="session")
def district_gpkg(district: Path) -> Path:
    return district / "district.gpkg"


@pytest.fixture(scope="session")
def cadastre(district_gpkg: Path):
    import geopandas as gpd

    return gpd.read_file(district_gpkg, layer="buildings_cadastre", engine="pyogrio")


@pytest.fixture(scope="session")
def cog(tmp_path_factory, district: Path) -> Path:
    """A COG made from the district's truth DTM (which itself is a plain GeoTIFF)."""
    from rasterio.shutil import copy

    path = tmp_path_factory.mktemp("cog") / "dtm.tif"
    copy(district / "truth-dtm.tif", path, driver="COG", overview_resampling="average")
    return path


@pytest.fixture(scope="session")
def tileset(tmp_path_factory) -> Path:
    """A small 3D Tiles folder: a root with two content tiles, one in an external tileset."""
    folder = tmp_path_factory.mktemp("tiles") / "buildings-3d"
    (folder / "tiles").mkdir(parents=True)
    (folder / "tiles" / "0.glb").write_bytes(b"glTF" + bytes(60))
    (folder / "tiles" / "1.glb").write_bytes(b"glTF" + bytes(80))
    box = {"box": [651200, 6861200, 40, 200, 0, 0, 0, 200, 0, 0, 0, 40]}
    (folder / "tiles" / "sub.json").write_text(json.dumps({
        "asset": {"version": "1.1"}, "geometricError": 10,
        "root": {"boundingVolume": box, "geometricError": 0, "content": {"uri": "1.glb"}}}))
    (folder / "tileset.json").write_text(json.dumps({
        "asset": {"version": "1.1"}, "geometricError": 100,
        "root": {"boundingVolume": box, "geometricError": 50, "refine": "ADD",
                 "content": {"uri": "tiles/0.glb"},
                 "children": [{"boundingVolume": box, "geometricError": 10, "content": {"uri": "tiles/sub.json"}}]}}))
    return folder

