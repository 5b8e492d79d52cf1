"""Benchmark of ``lutece mirror``: the first sync of 50 layers against a plain download, then one change.

Publishes the sample district's products under ``--layers`` ids (default 50:
the truth DTM as a COG, the truth footprints and the truth trees, in turn;
each copy made distinct, a tag of the COG or a column of the features, so
that no two files are the same bytes), serves them with ``lutece serve`` on
loopback (gunicorn, 2 workers), warms the server (one ``/catalog`` builds
the downloads; one unmeasured sync and one plain download let each worker
build its catalogue, as it does once after each change), then, in each of
``--rounds`` rounds, one after the other
(plain then mirror in odd rounds, mirror then plain in even ones, so that
neither always runs first on a machine whose load drifts):

- plain: a sequential download of every file of the catalogue with one
  ``requests.Session`` into a fresh folder (no checksum, no staging);
- mirror: ``lutece mirror``'s first sync into a fresh folder (the change
  feed, the catalogue, ``--downloads`` files at once, each verified by
  sha256, then all synced to disk and committed).

It prints each round's times and ratio (plain seconds / mirror seconds), the
range of the ratios, their median and the load average, then MB/s of each
(best round) and their ratio, then publishes a new
version of one layer and prints the requests (downloads, and the others:
the change feed, which describes the changed dataset), bytes and time of
the next sync, and of a sync when nothing changed.
Targets (issue 13): first sync >= 0.8x the plain download; one changed layer
costs one download plus at most one conditional request per other dataset
(one request in all when the change feed is used).

Usage: .venv/bin/python benchmarks/bench_mirror.py [--layers 50] [--rounds 6] [--downloads 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from gis.backends import open_backend
from gis.catalog.service import Catalog
from gis.mirror.dcat import parse_catalog
from gis.mirror.sync import sync
from gis.testing.postgres import free_port

ROOT = Path(__file__).resolve().parents[1]
DISTRICT = ROOT / "sample_data" / "district"


def publish(catalog: Catalog, folder: Path, count: int) -> None:
    import geopandas as gpd
    import rasterio
    from rasterio.shutil import copy

    footprints = gpd.read_file(DISTRICT / "truth.gpkg", layer="footprints", engine="pyogrio")
    trees = gpd.read_file(DISTRICT / "truth.gpkg", layer="trees", engine="pyogrio")
    for index in range(count):
        layer = f"couche-{index:02d}"
        if index % 3 == 0:
            path = folder / f"{layer}.tif"
            shutil.copyfile(DISTRICT / "truth-dtm.tif", path)
            with rasterio.open(path, "r+") as raster:  # distinct bytes
                raster.update_tags(COPY=str(index))
            copy(path, folder / f"{layer}-cog.tif", driver="COG")
            catalog.publish(folder / f"{layer}-cog.tif", layer, licence="etalab-2.0", access="open", title=layer)
        else:
            frame = (footprints if index % 3 == 1 else trees).assign(copy=index)
            catalog.publish(frame, layer, licence="ODbL-1.0", access="open", title=layer)


def start_server(config: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "server.cli", "--config", str(config), "serve", "--port",
                                str(port), "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not start")


def plain_download(urls: list[str], folder: Path) -> float:
    folder.mkdir(parents=True)
    session = requests.Session()
    started = time.perf_counter()
    for url in urls:
        with session.get(url, stream=True, timeout=60) as response, open(folder / url.rsplit("/", 1)[1], "wb") as out:
            response.raise_for_status()
            for chunk in response.iter_content(1 << 20):
                out.write(chunk)
    return time.perf_counter() - started


def mirror_sync(source: str, target: Path, downloads: int, files: int) -> float:
    report = sync(source, target, downloads=downloads)
    assert len(report.downloaded) == files
    return report.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--downloads", type=int, default=4, help="the mirror's files at once (lutece mirror --downloads)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-mirror-"))
    server = None
    try:
        store = {"backend": "geopackage", "path": str(work / "city")}
        config = work / "lutece.yml"
        config.write_text(f"store:\n  path: {store['path']}\n", encoding="utf-8")
        started = time.perf_counter()
        with Catalog(open_backend(store)) as catalog:
            publish(catalog, work, args.layers)
        print(f"published {args.layers} layers in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        port = free_port()
        source = f"http://127.0.0.1:{port}"
        server = start_server(config, port)
        started = time.perf_counter()
        body = requests.get(f"{source}/catalog", timeout=600).content  # builds the downloads once
        print(f"first /catalog (downloads built) in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        files = [spec for dataset in parse_catalog(body, source).values() for spec in dataset.files]
        total = sum(spec.size for spec in files)
        started = time.perf_counter()
        sync(source, work / "warm-up")  # each worker builds its catalogue once (not the harvester's cost)
        plain_download([spec.url for spec in files], work / "warm-up-plain")
        print(f"warm-up (one sync, one plain download) in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        plain, mirrored = [], []
        print(f"\n{len(files)} files, {total / 1e6:.1f} MB, {args.rounds} rounds, the mirror {args.downloads} "
              f"files at once\n\n{'round':<8}{'first':<8}{'plain s':>10}{'mirror s':>10}{'ratio':>8}{'load 1 min':>12}")
        for round_ in range(args.rounds):
            runs = {"plain": lambda: plain_download([spec.url for spec in files], work / f"plain-{round_}"),
                    "mirror": lambda: mirror_sync(source, work / f"mirror-{round_}", args.downloads, len(files))}
            order = ["plain", "mirror"] if round_ % 2 == 0 else ["mirror", "plain"]
            seconds = {name: runs[name]() for name in order}
            plain.append(seconds["plain"])
            mirrored.append(seconds["mirror"])
            print(f"{round_ + 1:<8}{order[0]:<8}{plain[-1]:>10.2f}{mirrored[-1]:>10.2f}{plain[-1] / mirrored[-1]:>8.2f}"
                  f"{os.getloadavg()[0]:>12.1f}", flush=True)
        ratios = [a / b for a, b in zip(plain, mirrored)]
        print(f"ratio per round: {min(ratios):.2f} to {max(ratios):.2f}, median {statistics.median(ratios):.2f}; "
              f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} (1, 5, 15 min) on {os.cpu_count()} cores")
        print(f"\nbest of {args.rounds} rounds\n{'case':<28}{'seconds':>10}{'MB/s':>10}{'ratio':>10}")
        best_plain, best_mirror = min(plain), min(mirrored)
        print(f"{'plain sequential download':<28}{best_plain:>10.2f}{total / 1e6 / best_plain:>10.1f}{1.0:>10.2f}")
        print(f"{'lutece mirror, first sync':<28}{best_mirror:>10.2f}{total / 1e6 / best_mirror:>10.1f}"
              f"{best_plain / best_mirror:>10.2f}")
        print("target: first sync >= 0.8x the plain sequential download")
        target = work / "mirror-0"
        idle = sync(source, target)
        with Catalog(open_backend(store)) as catalog:
            import geopandas as gpd

            trees = gpd.read_file(DISTRICT / "truth.gpkg", layer="trees", engine="pyogrio")
            catalog.publish(trees.assign(copy=-1), "couche-02")
        changed = sync(source, target)
        print(f"\n{'sync':<28}{'requests':>10}{'downloads':>10}{'others':>8}{'bytes':>12}{'seconds':>10}")
        for name, report in (("nothing changed", idle), ("one layer changed", changed)):
            others = report.requests - len(report.downloaded)
            print(f"{name:<28}{report.requests:>10}{len(report.downloaded):>10}{others:>8}{report.bytes:>12}"
                  f"{report.seconds:>10.2f}")
        print("target: one changed layer costs its downloads plus one request in all (the change feed)")
        print(f"\nchanged files: {', '.join(changed.downloaded)}")
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
