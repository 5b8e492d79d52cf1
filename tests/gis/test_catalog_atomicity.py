"""Concurrency and crash safety of publication: separate processes, killed with SIGKILL at random moments."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from catalog_products import tiled, write_product
from gis.backends import open_backend
from gis.catalog.products import sha256_frame
from gis.catalog.service import Catalog
from conftest import store_yaml
from gis.cli import cli
from gis.errors import PublishConflict

FORK = multiprocessing.get_context("fork")  # children start at once, without re-importing GDAL and geopandas
KILLS = 20


def _open(store: dict) -> Catalog:
    return Catalog(open_backend(store), crs="EPSG:2154", retention=store["retention"])


def _publish(store, product, layer_id, expected, barrier, results) -> None:
    catalog = _open(store)
    barrier.wait(timeout=30)
    try:
        result = catalog.publish(product, layer_id, licence="ODbL-1.0", access="open", expected_version=expected)
        results.put((layer_id, "ok", result.version.number))
    except PublishConflict as exc:
        results.put((layer_id, "conflict", str(exc)))


def _race(store, jobs):
    barrier, results = FORK.Barrier(len(jobs)), FORK.Queue()
    processes = [FORK.Process(target=_publish, args=(store, product, layer_id, expected, barrier, results))
                 for product, layer_id, expected in jobs]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    return sorted(outcomes)


@pytest.fixture(scope="module")
def midsize(tmp_path_factory, cadastre) -> Path:
    """About 6,400 buildings: the district's cadastre 60 times over."""
    return write_product(tiled(cadastre, 60), tmp_path_factory.mktemp("midsize") / "buildings.gpkg")


def test_two_publishers_on_the_same_layer_one_conflicts(store, district_gpkg, midsize):
    with _open(store) as catalog:
        catalog.publish(district_gpkg, "buildings", source_layer="buildings_cadastre", licence="ODbL-1.0",
                        access="open")
    outcomes = _race(store, [(midsize, "buildings", 1), (midsize, "buildings", 1)])
    assert [o[1] for o in outcomes] == ["conflict", "ok"], outcomes
    assert "buildings" in outcomes[0][2] and "nothing was changed" in outcomes[0][2]
    with _open(store) as catalog:
        assert [v.number for v in catalog.history("buildings")] == [1, 2]
        assert len(catalog.read("buildings", 1)) == 107 and len(catalog.read("buildings")) > 6000
        assert [e.version for e in catalog.events()] == [1, 2]
        assert catalog.gc().removed == 0


def test_two_publishers_on_different_layers_both_succeed(store, midsize):
    outcomes = _race(store, [(midsize, "buildings-a", None), (midsize, "buildings-b", None)])
    assert outcomes == [("buildings-a", "ok", 1), ("buildings-b", "ok", 1)]
    with _open(store) as catalog:
        assert [layer.id for layer in catalog.layers()] == ["buildings-a", "buildings-b"]
        assert all(len(catalog.read(layer_id)) > 6000 for layer_id in ("buildings-a", "buildings-b"))


def _publish_once(store, product) -> None:
    _open(store).publish(product, "buildings", note="may be killed", force=True)  # a new version of the same data


def _check_intact(catalog: Catalog, store: dict, previous: int) -> int:
    layer = catalog.layer("buildings")
    assert layer.current_version in (previous, previous + 1)
    for number in {previous, layer.current_version}:
        version = catalog.version("buildings", number)
        assert sha256_frame(catalog.read("buildings", number)) == version.checksum
    if store["backend"] == "geopackage":
        con = sqlite3.connect(Path(store["path"]) / "catalog.gpkg")
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        con.close()
    return layer.current_version


@pytest.mark.slow
def test_kill_9_at_random_moments_leaves_the_catalog_intact(store, midsize, tmp_path):
    rng = random.Random(4)
    with _open(store) as catalog:
        first = catalog.publish(midsize, "buildings", licence="ODbL-1.0", access="open")
        duration = catalog.publish(midsize, "buildings", force=True).seconds
    current, committed = 2, 0
    for _ in range(KILLS):
        process = FORK.Process(target=_publish_once, args=(store, midsize))
        process.start()
        time.sleep(rng.uniform(0.0, duration * 1.6))
        os.kill(process.pid, signal.SIGKILL)
        process.join()
        with _open(store) as catalog:
            new = _check_intact(catalog, store, current)
        committed += new != current
        current = new
    assert committed < KILLS  # kills land before (and, depending on timing, after) the commit
    config = tmp_path / "lutece.yml"
    config.write_text(store_yaml({**store, "retention": 3}))
    result = CliRunner().invoke(cli, ["--config", str(config), "gc"])
    assert result.exit_code == 0, result.output
    with _open(store) as catalog:
        assert_no_orphans(catalog, store)
        assert catalog.publish(midsize, "buildings", force=True).version.number > current  # dead claims taken over
        assert catalog.version("buildings").checksum == first.version.checksum
    print(f"{KILLS} kills over a {duration:.2f} s publication: {committed} after the commit")


def assert_no_orphans(catalog: Catalog, store: dict) -> None:
    assert catalog.gc().removed == 0
    if store["backend"] != "geopackage":
        return
    from gis.backends.gpkg_schema import version_tables

    con = sqlite3.connect(Path(store["path"]) / "catalog.gpkg")
    referenced = {r[0].removeprefix("table:") for r in con.execute("SELECT storage FROM lutece_versions")}
    assert version_tables(con) == referenced
    assert con.execute("SELECT count(*) FROM lutece_pending").fetchone() == (0,)
    con.close()
    assert not list((Path(store["path"]) / "files").glob(".staging/*"))
