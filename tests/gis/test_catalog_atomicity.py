"""Concurrency and crash safety of publication: separate processes, killed with SIGKILL at random moments."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from catalog_products import tiled, write_product
from gis.backends import open_backend
from gis.checksums import sha256_file, sha256_frame, sha256_tree
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


def _kill_at_random_moments(target, runs: list[tuple], longest: float, rng: random.Random,
                            check: Callable[[int], int]) -> tuple[int, int]:
    """Start ``target(*args)`` in a process for each of ``runs`` and kill -9 it after up to ``longest`` seconds.

    ``check(previous)`` looks at the catalog after each kill and returns the
    current version (``previous`` or the next). Returns the last current
    version and how many kills came after the commit.
    """
    current, committed = 2, 0
    for args in runs:
        process = FORK.Process(target=target, args=args)
        process.start()
        time.sleep(rng.uniform(0.0, longest))
        os.kill(process.pid, signal.SIGKILL)
        process.join()
        new = check(current)
        committed += new != current
        current = new
    return current, committed


def _publish_once(store, product) -> None:
    _open(store).publish(product, "buildings", note="may be killed", force=True)  # a new version of the same data


def _check_intact(store: dict, previous: int) -> int:
    with _open(store) as catalog:
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
    current, committed = _kill_at_random_moments(
        _publish_once, [(store, midsize)] * KILLS, duration * 1.6, rng,
        lambda previous: _check_intact(store, previous))
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


def _file_products(kind: str, cog: Path, tileset: Path, folder: Path, count: int) -> list[Path]:
    """``count`` rasters or 3D Tiles folders, each with other content: each publication copies a new folder."""
    import shutil

    import numpy as np
    import rasterio
    from rasterio.shutil import copy as rio_copy

    products = []
    if kind == "raster":
        with rasterio.open(cog) as src:
            profile, data = src.profile, src.read()
        profile.update(driver="GTiff", tiled=False, compress="deflate")
        profile.pop("blockxsize", None), profile.pop("blockysize", None)
        for index in range(count):
            plain, product = folder / f"plain{index}.tif", folder / f"dtm{index}.tif"
            with rasterio.open(plain, "w", **profile) as dst:
                dst.write(data + np.float32(index) / 100)
            rio_copy(plain, product, driver="COG")
            products.append(product)
        return products
    payload = np.random.default_rng(0).bytes(4_000_000)  # a few MB to copy and flush
    for index in range(count):
        product = folder / f"tiles{index}"
        shutil.copytree(tileset, product)
        (product / "tiles" / "0.glb").write_bytes(b"glTF" + index.to_bytes(4, "little") + payload)
        products.append(product)
    return products


def _publish_file(store, product) -> None:
    _open(store).publish(product, "files", note="may be killed")


def _check_files_intact(store: dict, kind: str, previous: int) -> int:
    with _open(store) as catalog:
        layer = catalog.layer("files")
        assert layer.current_version in (previous, previous + 1)
        for number in {previous, layer.current_version}:
            version, path = catalog.version("files", number), catalog.path("files", number)
            assert (sha256_file(path) if kind == "raster" else sha256_tree(path.parent)) == version.checksum
    return layer.current_version


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["raster", "3dtiles"])
def test_kill_9_during_file_publications_leaves_the_catalog_intact(store, kind, cog, tileset, tmp_path):
    """Rasters and 3D Tiles folders: copied to a staging folder, flushed, renamed into place, then committed."""
    rng = random.Random(5)
    products = _file_products(kind, cog, tileset, tmp_path, KILLS + 2)
    with _open(store) as catalog:
        first = catalog.publish(products[0], "files", licence="etalab-2.0", access="open")
    started = time.perf_counter()
    process = FORK.Process(target=_publish_file, args=(store, products[1]))  # a whole run, as the killed ones
    process.start()
    process.join()
    duration = time.perf_counter() - started
    assert process.exitcode == 0
    current, committed = _kill_at_random_moments(
        _publish_file, [(store, product) for product in products[2:]], duration * 1.2, rng,
        lambda previous: _check_files_intact(store, kind, previous))
    assert committed < KILLS  # kills land before (and, depending on timing, after) the commit
    with _open(store) as catalog:
        catalog.gc()
        assert_no_orphans(catalog, store)
        again = catalog.publish(products[0], "files").version  # dead claims taken over
        assert again.number > current and again.checksum == first.version.checksum
    _check_files_intact(store, kind, again.number)
    print(f"{kind}: {KILLS} kills over a {duration:.2f} s publication: {committed} after the commit")


def assert_no_orphans(catalog: Catalog, store: dict) -> None:
    assert catalog.gc().removed == 0
    if store["backend"] != "geopackage":
        return
    from gis.backends.gpkg_schema import version_tables

    con = sqlite3.connect(Path(store["path"]) / "catalog.gpkg")
    referenced = {r[0].removeprefix("table:") for r in con.execute("SELECT storage FROM lutece_versions")
                  if r[0].startswith("table:")}
    assert version_tables(con) == referenced
    assert con.execute("SELECT count(*) FROM lutece_pending").fetchone() == (0,)
    con.close()
    assert not list((Path(store["path"]) / "files").glob(".staging/*"))
