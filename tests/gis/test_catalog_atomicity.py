"""Concurrency and crash safety of publication: separate processes, killed with SIGKILL at named phases and at random.

Each crash test kills publications of one kind (vector, raster, 3D Tiles, CityJSON) on
one backend at every named phase of :mod:`kill_harness` three times, and a
gc three times, and then at random moments drawn from a seed that changes
every run (printed; ``LUTECE_KILL_SEED`` replays one). The child reports the
phase it reached; the test asserts how many kills landed in each. After each
kill the current version is the previous one (or the new one, once the
switch is committed), every version it may be is read back and compared
with the product that was published as it (not with the checksum the
publication computed), and after ``gc`` the store holds no table, folder,
staged copy or claim that no version references (read from the store).
"""

from __future__ import annotations

import filecmp
import os
import random
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from catalog_products import assert_no_orphans, store_yaml, tiled, write_product
from gis.backends import open_backend
from gis.catalog.service import Catalog
from gis.cli import cli
from gis.errors import PublishConflict
from kill_harness import FORK, PUBLICATION_PHASES, kill_at

NAMED_KILLS = 3  # per phase
RANDOM_KILLS = 5
LAYER = "crash"


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
        assert_no_orphans(catalog)


def test_two_publishers_on_different_layers_both_succeed(store, midsize):
    outcomes = _race(store, [(midsize, "buildings-a", None), (midsize, "buildings-b", None)])
    assert outcomes == [("buildings-a", "ok", 1), ("buildings-b", "ok", 1)]
    with _open(store) as catalog:
        assert [layer.id for layer in catalog.layers()] == ["buildings-a", "buildings-b"]
        assert all(len(catalog.read(layer_id)) > 6000 for layer_id in ("buildings-a", "buildings-b"))
        assert_no_orphans(catalog)


def _seed() -> int:
    """A seed that changes every run, unless LUTECE_KILL_SEED replays one."""
    return int(os.environ.get("LUTECE_KILL_SEED") or int.from_bytes(os.urandom(4), "little"))


class Products:
    """Products of one kind, each with other content (so each publication writes new data), made on demand."""

    def __init__(self, kind: str, folder: Path, cadastre, cog: Path, tileset: Path) -> None:
        self.kind, self.folder, self.tileset = kind, folder, tileset
        self.made: dict[int, object] = {}
        if kind == "vector":
            self.base = tiled(cadastre, 8)  # 856 buildings
        elif kind == "raster":
            import rasterio
            from rasterio.windows import Window

            with rasterio.open(cog) as src:
                window = Window(0, 0, 256, 256)
                self.data = src.read(window=window)
                self.profile = {**src.profile, "width": 256, "height": 256,
                                "transform": src.window_transform(window), "driver": "GTiff", "tiled": False}
            for key in ("blockxsize", "blockysize"):
                self.profile.pop(key, None)

    def __getitem__(self, index: int):
        if index not in self.made:
            self.made[index] = self._make(index)
        return self.made[index]

    def _make(self, index: int):
        if self.kind == "vector":
            frame = self.base.copy()
            frame.insert(0, "variant", index)
            frame["height_m"] = (frame.index % 17).astype("float64") + index / 4
            return frame
        if self.kind == "raster":
            import numpy as np
            import rasterio
            from rasterio.shutil import copy as rio_copy

            plain, product = self.folder / f"plain{index}.tif", self.folder / f"dtm{index}.tif"
            with rasterio.open(plain, "w", **self.profile) as dst:
                dst.write(self.data + np.float32(index) / 100)
            rio_copy(plain, product, driver="COG")
            return product
        if self.kind == "cityjson":
            from gis.testing.cityjson import write_cityjson

            return write_cityjson(self.folder / f"model{index}.city.json", count=40, seed=index)
        product = self.folder / f"tiles{index}"
        shutil.copytree(self.tileset, product)
        (product / "tiles" / "0.glb").write_bytes(b"glTF" + index.to_bytes(4, "little") + os.urandom(200_000))
        return product

    def assert_stored(self, catalog: Catalog, number: int, index: int) -> None:
        """Version ``number`` holds product ``index``: values and geometries, or the files' bytes."""
        if self.kind == "vector":
            frame, source = catalog.read(LAYER, number), self[index]
            attributes = [name for name in source.columns if name != "geometry"]
            assert list(frame.columns) == [*attributes, "geometry"]
            for name in attributes:
                assert frame[name].tolist() == source[name].tolist(), (number, index, name)
            assert frame.geometry.geom_equals_exact(source.geometry, 0).all(), (number, index)
            return
        stored = catalog.path(LAYER, number)
        if self.kind in ("raster", "cityjson"):
            assert filecmp.cmp(stored, self[index], shallow=False), (number, index)
            return
        folder, source = stored.parent, self[index]
        files = sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
        assert all(filecmp.cmp(folder / f, source / f, shallow=False) for f in files), (number, index)


class CrashRun:
    """Publications of one kind on one store, killed one after another; what each version holds is kept."""

    def __init__(self, store: dict, products: Products) -> None:
        self.store, self.products = store, products
        self.holds: dict[int, int] = {}  # version number -> index of the product it holds
        self.next = 0

    def open(self) -> Catalog:
        return Catalog(open_backend(self.store), crs="EPSG:2154", retention=self.store["retention"])

    def publish(self) -> None:
        index, self.next = self.next, self.next + 1
        with self.open() as catalog:
            result = catalog.publish(self.products[index], LAYER, licence="etalab-2.0", access="open")
        self.holds[result.version.number] = index

    def kill_publication(self, phase: str | None, delay: float | None = None, collect: bool = True) -> str:
        """Kill a publication of a new product at ``phase`` (or after ``delay``); check; return where it landed."""
        index, self.next = self.next, self.next + 1
        product = self.products[index]
        with self.open() as catalog:
            before = catalog.layer(LAYER)
        markers, self.seconds = kill_at(lambda catalog: catalog.publish(product, LAYER, note="may be killed"),
                                        self.open, phase, delay)
        reached = markers[-1] if markers else "not started"
        with self.open() as catalog:
            current = catalog.layer(LAYER).current_version
            if reached in ("after-switch", "release", "done") or (current != before.current_version
                                                       and phase is None and reached == "before-switch"):
                assert current == before.last_version + 1, (reached, markers)  # switched: the new version
                self.holds[current] = index
            else:
                assert current == before.current_version, (reached, markers)
            self.check(catalog, {before.current_version, current}, collect)
        return reached

    def kill_gc(self) -> str:
        markers, _seconds = kill_at(lambda catalog: catalog.gc(), self.open, "gc")
        with self.open() as catalog:
            self.check(catalog, {catalog.layer(LAYER).current_version}, collect=True)
        return markers[-1]

    def check(self, catalog: Catalog, numbers: set[int], collect: bool) -> None:
        """Each of ``numbers`` reads back as the product published as it; after gc, no orphan."""
        for number in numbers:
            self.products.assert_stored(catalog, number, self.holds[number])
        if self.store["backend"] == "geopackage":
            con = sqlite3.connect(Path(self.store["path"]) / "catalog.gpkg")
            assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            con.close()
        if collect:
            catalog.gc()
            assert_no_orphans(catalog)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["vector", "raster", "3dtiles", "cityjson"])
def test_kill_9_at_each_phase_and_at_random_moments(store, kind, cadastre, cog, tileset, tmp_path):
    """Publications killed at every named phase (3 times each), gc killed 3 times, then at random moments."""
    seed = _seed()
    print(f"kill -9 {kind} on {store['backend']}: random moments from seed {seed} (LUTECE_KILL_SEED={seed} replays)")
    run = CrashRun(store, Products(kind, tmp_path, cadastre, cog, tileset))
    run.publish()
    run.publish()
    landed = Counter()
    for phase in PUBLICATION_PHASES:
        for _ in range(NAMED_KILLS):
            landed[run.kill_publication(phase)] += 1
    for _ in range(NAMED_KILLS):
        landed[run.kill_publication("before-switch", collect=False)] += 1  # leaves a whole, unreferenced copy
        landed[run.kill_gc()] += 1
    assert landed == {"before-claim": 3, "data-write": 3, "before-switch": 6, "after-switch": 3, "release": 3,
                      "gc": 3}, landed

    run.kill_publication("done")  # a whole publication in a child, to scale the random delays
    duration = run.seconds
    rng = random.Random(seed)
    at_random = Counter(run.kill_publication(None, delay=rng.uniform(0.0, duration)) for _ in range(RANDOM_KILLS))
    print(f"  a publication takes {duration:.2f} s; random kills landed at {dict(at_random)}")
    assert sum(at_random.values()) == RANDOM_KILLS

    config = tmp_path / "lutece.yml"  # the operator's gc, then a publication takes over
    config.write_text(store_yaml(store))
    result = CliRunner().invoke(cli, ["--config", str(config), "gc"])
    assert result.exit_code == 0, result.output
    run.publish()
    with run.open() as catalog:
        assert_no_orphans(catalog)
        run.products.assert_stored(catalog, catalog.layer(LAYER).current_version, run.next - 1)


@pytest.mark.slow
def test_a_killed_claim_is_taken_over_without_gc(store, cadastre, cog, tileset, tmp_path):
    """A publication killed while its data is written does not block the next one; gc then clears its leftovers."""
    run = CrashRun(store, Products("vector", tmp_path, cadastre, cog, tileset))
    run.publish()
    assert run.kill_publication("data-write", collect=False) == "data-write"
    assert run.kill_publication("before-switch", collect=False) == "before-switch"
    run.publish()
    with run.open() as catalog:
        assert catalog.layer(LAYER).current_version == 2  # the dead claims' number, their leftovers replaced
        run.products.assert_stored(catalog, 2, run.next - 1)
        run.products.assert_stored(catalog, 1, 0)
        catalog.gc()
        assert_no_orphans(catalog)
