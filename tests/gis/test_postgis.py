"""What is particular to the PostGIS backend, on the throw-away server of :mod:`gis.testing.postgres`.

The shared suite (CLI and kill -9 tests included) runs on PostGIS through
the ``store`` parametrisation of conftest.py; this module holds what only
PostGIS has: GIST indexes, readers in open transactions, a server that is down.
"""

from __future__ import annotations

import time
import uuid

import pytest
from click.testing import CliRunner

from catalog_products import assert_no_orphans, store_yaml
from gis.backends import open_backend
from gis.backends.postgis import DATA_SCHEMA
from gis.catalog.service import Catalog
from gis.cli import cli
from gis.testing.postgres import free_port


@pytest.fixture
def store(postgis_server, tmp_path):
    database = f"t_{uuid.uuid4().hex[:16]}"
    postgis_server.create_database(database)
    try:
        yield {"backend": "postgis", "path": str(tmp_path / "city"), "retention": 3,
               "dsn": postgis_server.dsn(database)}
    finally:
        postgis_server.drop_database(database)


def _connect(store):
    import psycopg

    return psycopg.connect(store["dsn"])


def test_versions_are_tables_with_a_gist_index(catalog, district_gpkg, store, cadastre):
    catalog.publish(district_gpkg, "buildings", source_layer="buildings_cadastre", licence="ODbL-1.0", access="open")
    with _connect(store) as con:
        (count,) = con.execute(f'SELECT count(*) FROM {DATA_SCHEMA}."buildings__v1"').fetchone()
        indexes = [row[0] for row in con.execute("SELECT indexdef FROM pg_indexes WHERE schemaname=%s "
                                                 "AND tablename='buildings__v1'", (DATA_SCHEMA,))]
        (srid,) = con.execute(f"SELECT Find_SRID('{DATA_SCHEMA}', 'buildings__v1', 'geometry')").fetchone()
        statistics = {row[0] for row in con.execute("SELECT attname FROM pg_stats WHERE schemaname=%s "
                                                    "AND tablename='buildings__v1'", (DATA_SCHEMA,))}
        fids = [row[0] for row in con.execute(f'SELECT lutece_fid FROM {DATA_SCHEMA}."buildings__v1" '
                                              f'ORDER BY lutece_fid')]
    assert count == len(cadastre) and srid == 2154
    assert any("USING gist (geometry)" in index for index in indexes), indexes
    assert any("UNIQUE INDEX buildings__v1_pkey" in index and "(lutece_fid)" in index for index in indexes)
    assert {"lutece_fid", "cadastre_id", "commune", "geometry"} <= statistics  # ANALYZEd for the planner
    assert fids == list(range(1, len(cadastre) + 1))


def test_a_reader_in_a_transaction_keeps_reading_through_a_swap(store, district_gpkg, cadastre, tmp_path):
    """No dropped relation under a running query: the swap drops nothing; retention leaves a held table to gc."""
    from catalog_products import write_product

    smaller = write_product(cadastre.iloc[:50], tmp_path / "smaller.gpkg")
    with Catalog(open_backend(store), crs="EPSG:2154", retention=1) as catalog:
        catalog.publish(district_gpkg, "buildings", source_layer="buildings_cadastre", licence="ODbL-1.0",
                        access="open")
        reader = _connect(store)
        try:
            reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            (storage,) = reader.execute("SELECT v.storage FROM lutece.layers l JOIN lutece.versions v "
                                        "ON v.layer_id=l.id AND v.number=l.current_version").fetchone()
            table = storage.removeprefix("table:")
            reader.execute(f'DECLARE features CURSOR FOR SELECT cadastre_id FROM {DATA_SCHEMA}."{table}" '
                           f"ORDER BY lutece_fid")
            first = reader.execute("FETCH 10 FROM features").fetchall()
            started = time.perf_counter()
            result = catalog.publish(smaller, "buildings")  # retention 1: version 1 is forgotten at once
            assert time.perf_counter() - started < 10  # never waits for the reader
            assert result.version.number == 2 and len(catalog.read("buildings")) == 50
            assert [v.number for v in catalog.history("buildings")] == [2]
            rest = reader.execute("FETCH ALL FROM features").fetchall()
            assert len(first) + len(rest) == len(cadastre)
            again = reader.execute(f'SELECT count(*) FROM {DATA_SCHEMA}."{table}"').fetchone()
            assert again == (len(cadastre),)
            reader.execute("COMMIT")
        finally:
            reader.close()
        report = catalog.gc()  # the reader is gone: version 1's table goes now
        assert report.tables == ["buildings__v1"]
        assert_no_orphans(catalog)


def test_a_new_reader_of_the_old_version_gets_it_until_gc(catalog, store, district_gpkg, cadastre, tmp_path):
    from catalog_products import write_product

    smaller = write_product(cadastre.iloc[:50], tmp_path / "smaller.gpkg")
    catalog.publish(district_gpkg, "buildings", source_layer="buildings_cadastre", licence="ODbL-1.0", access="open")
    old = catalog.version("buildings")
    catalog.publish(smaller, "buildings")
    assert len(catalog.backend.read_vector(old)) == len(cadastre)  # retained: intact after the swap
    assert len(catalog.read("buildings", bbox=tuple(cadastre.total_bounds))) == 50


def test_a_down_server_is_one_error_line(tmp_path):
    port = free_port()  # nothing listens there
    store = {"backend": "postgis", "dsn": f"host=127.0.0.1 port={port} dbname=gis user=gis",
             "path": str(tmp_path / "city")}
    config = tmp_path / "lutece.yml"
    config.write_text(store_yaml(store))
    for args in (["layers", "list"], ["gc"]):
        result = CliRunner().invoke(cli, ["--config", str(config), *args])
        assert result.exit_code == 1, result.output
        assert result.output.startswith(f"Error: cannot connect to PostGIS at 127.0.0.1:{port}/gis")
        assert "start the server" in result.output and "store.dsn" in result.output
        assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert not (tmp_path / "city").exists()


def test_publish_to_a_down_server_changes_nothing(tmp_path, district_gpkg):
    config = tmp_path / "lutece.yml"
    config.write_text(store_yaml({"backend": "postgis", "path": str(tmp_path / "city"),
                                  "dsn": f"host=127.0.0.1 port={free_port()} dbname=gis user=gis"}))
    result = CliRunner().invoke(cli, ["--config", str(config), "publish", str(district_gpkg), "--layer", "trees",
                                      "--source-layer", "trees", "--licence", "etalab-2.0", "--access", "open"])
    assert result.exit_code == 1 and result.output.startswith("Error: cannot connect to PostGIS")
    assert result.output.count("\n") == 1
