"""What the mirror tests share: a small city of small layers of every kind, a server on a fixed port, helpers."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from live_city import ROOT, City, RunningServer, free_port, start_server

KINDS = ("vector", "raster", "mesh-3dtiles", "cityjson")
OPEN_LICENCES = ("ODbL-1.0", "etalab-2.0", "CC-BY-4.0")


def make_product(folder: Path, kind: str, seed: int, big: bool = False):
    """A small product of ``kind`` whose content depends on ``seed`` (a frame, a COG path, a tileset folder,
    a CityJSON file)."""
    rng = np.random.default_rng(seed)
    if kind == "cityjson":
        from gis.testing.cityjson import write_cityjson

        return write_cityjson(folder / f"model-{seed}.city.json", count=int(rng.integers(1, 4)), seed=seed)
    if kind == "vector":
        import geopandas as gpd
        from shapely.geometry import Point

        count = int(rng.integers(3, 12))
        return gpd.GeoDataFrame({"rank": np.arange(count), "value": rng.random(count)},
                                geometry=[Point(651000 + float(x), 6861000 + float(y))
                                          for x, y in rng.random((count, 2)) * 300], crs="EPSG:2154")
    if kind == "raster":
        import rasterio
        from rasterio.shutil import copy
        from rasterio.transform import from_origin

        size = 2048 if big else 32  # 16 MB of float32 noise: long enough to be interrupted on loopback
        plain, path = folder / f"plain-{seed}.tif", folder / f"cog-{seed}.tif"
        data = rng.random((size, size)).astype("float32") * 100  # incompressible: a big one stays big
        with rasterio.open(plain, "w", driver="GTiff", width=size, height=size, count=1, dtype="float32",
                           crs="EPSG:2154", transform=from_origin(651000, 6861400, 0.5, 0.5)) as out:
            out.write(data, 1)
        copy(plain, path, driver="COG")
        plain.unlink()
        return path
    tileset = folder / f"tiles-{seed}"
    (tileset / "tiles").mkdir(parents=True, exist_ok=True)
    (tileset / "tiles" / "0.glb").write_bytes(b"glTF" + rng.bytes(64))
    box = [651200, 6861200, 40, 200, 0, 0, 0, 200, 0, 0, 0, 40]
    (tileset / "tileset.json").write_text(json.dumps({
        "asset": {"version": "1.1"}, "geometricError": 100,
        "root": {"boundingVolume": {"box": box}, "geometricError": 0, "content": {"uri": "tiles/0.glb"}}}))
    return tileset


def start_on(city: City, folder: Path, port: int, workers: int = 2) -> RunningServer:
    """A real ``lutece serve`` on ``port`` (so that a restarted server has the mirror's source URL),
    in a process group of its own (so that a test can kill it and its workers at once)."""
    return start_server(city, folder, workers, port=port, own_group=True)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL a process and its children (a server and its workers: a crash, not a clean stop)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


def mirror_command(source: str, target: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", "from gis.mirror.cli import mirror; mirror()", "--source", source,
            "--target", str(target), *extra]


def run_mirror(source: str, target: Path, *extra: str, preexec_fn=None) -> subprocess.CompletedProcess:
    """``lutece mirror`` in a child process (as a portal's cron runs it)."""
    return subprocess.run(mirror_command(source, target, *extra), capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=preexec_fn)


def snapshot(target: Path) -> dict[str, str]:
    """Every file of the mirror a portal publishes (not its hidden records), by relative path -> sha256."""
    found = {}
    for path in sorted(target.rglob("*")):
        relative = path.relative_to(target).as_posix()
        if path.is_file() and not relative.startswith(".lutece-mirror"):
            found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


__all__ = ["KINDS", "OPEN_LICENCES", "free_port", "kill_group", "make_product", "mirror_command", "run_mirror",
           "snapshot", "start_on"]
