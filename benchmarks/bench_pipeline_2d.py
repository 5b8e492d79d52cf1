"""Benchmark of the lidar-to-2D pipeline, against the LAZ decode floor and a plain numpy DSM.

Generates a district (default 1000 m x 1000 m at 10 pulses/m2, about 11
million points), cuts it into 3 x 3 tiles as a survey delivers them, and
prints side by side, from the same run:

- laspy/lazrs LAZ decode of the nine tiles alone (the floor);
- a plain numpy single-pass DSM: decode, then one max per 0.5 m cell;
- this pipeline's raster stage (readers.las + writers.dsm);
- the whole 2D product set (the shipped lidar-to-2d pipeline), in-process
  and on a Dask LocalCluster of 2 workers;
- the peak RSS of a 1-tile and of the 9-tile job (whole product set).

Each case runs in its own process; rates are points per second of input.
The short cases (floor, baseline, raster stage) run several rounds in turn
and their ratios to the floor are taken within each round.
Usage: .venv/bin/python benchmarks/bench_pipeline_2d.py [--size 1000] [--density 10] [--keep DIR] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import laspy
import numpy as np

from pipelines.synthetic.generate import DistrictSpec, generate_district

HERE = Path(__file__).resolve().parent


def cut_into_tiles(source: Path, folder: Path, per_side: int = 3) -> list[Path]:
    """Cut a LAZ file into per_side x per_side tiles, streaming it once per tile row."""
    folder.mkdir(parents=True, exist_ok=True)
    with laspy.open(source) as reader:
        header = reader.header
        xmin, ymin, xmax, ymax = header.mins[0], header.mins[1], header.maxs[0], header.maxs[1]
    edges_x = np.round(np.linspace(np.floor(xmin), np.ceil(xmax), per_side + 1))  # whole metres, as surveys cut
    edges_y = np.round(np.linspace(np.floor(ymin), np.ceil(ymax), per_side + 1))
    writers = {}
    try:
        for i in range(per_side):
            for j in range(per_side):
                writers[i, j] = laspy.open(folder / f"tile_{i}_{j}.laz", mode="w", header=header, do_compress=True)
        with laspy.open(source) as reader:
            for points in reader.chunk_iterator(2_000_000):
                col = np.clip(np.searchsorted(edges_x, points.x, side="right") - 1, 0, per_side - 1)
                row = np.clip(np.searchsorted(edges_y, points.y, side="right") - 1, 0, per_side - 1)
                for (i, j), writer in writers.items():
                    mask = (col == i) & (row == j)
                    if mask.any():
                        writer.write_points(points[mask])
    finally:
        for writer in writers.values():
            writer.close()
    return sorted(folder.glob("tile_*.laz"))


def measured(code: str, *args: str) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of ``code`` in a fresh process; VmHWM ignores the parent's size at fork."""
    wrapper = ("import time, sys; t0 = time.perf_counter(); " + code +
               "; elapsed = time.perf_counter() - t0; "
               "rss = next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')); "
               "print(elapsed, rss)")
    result = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"benchmark case failed:\n{result.stderr}")
    seconds, rss_kb = result.stdout.split()[-2:]
    return float(seconds), int(rss_kb) / 1024


DECODE = ("import laspy; [laspy.read(p) for p in sys.argv[1:]]")
NUMPY_DSM = ("import laspy, numpy as np\n"
             "for p in sys.argv[1:]:\n"
             "    d = laspy.read(p); x, y, z = np.asarray(d.x), np.asarray(d.y), np.asarray(d.z)\n"
             "    c = np.floor((x - x.min()) / 0.5).astype(np.int64); r = np.floor((y.max() - y) / 0.5).astype(np.int64)\n"
             "    w = c.max() + 1; dsm = np.full((r.max() + 1) * w, -np.inf); np.maximum.at(dsm, r * w + c, z)")


def pipeline_case(pipeline: str, tiles: list[Path], output: Path, workers: int = 0) -> str:
    return ("from pathlib import Path; from pipelines.spec import load_pipeline; "
            "from pipelines.runner import build_plan, run_pipeline; from pipelines.cli import _pipeline_path; "
            f"spec = load_pipeline(_pipeline_path({pipeline!r}), {{'read': {{'filename': {[str(t) for t in tiles]!r}}}}}); "
            f"spec = type(spec)(spec.name, spec.stages, Path({str(output)!r}), spec.source); "
            f"run_pipeline(build_plan(spec), workers={workers})")


RASTER_ONLY = """name: raster-stage
pipeline:
  - {type: readers.las, tag: read, filename: none}
  - {type: writers.dsm, tag: dsm, resolution: 0.5}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=1000.0)
    parser.add_argument("--density", type=float, default=10.0)
    parser.add_argument("--keep", type=Path, help="keep the generated tiles here and reuse them next time")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the short cases (default 3)")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="lutece-bench-2d-"))
    tiles = sorted((root / "tiles").glob("tile_*.laz"))
    if len(tiles) != 9:
        generate_district(root / "district", DistrictSpec(size=args.size, density=args.density), overwrite=True)
        tiles = cut_into_tiles(root / "district" / "district.laz", root / "tiles")
    points = sum(laspy.open(t).header.point_count for t in tiles)
    one = [tiles[4]]
    one_points = laspy.open(one[0]).header.point_count
    raster_pipeline = root / "raster-stage.yml"
    raster_pipeline.write_text(RASTER_ONLY, encoding="utf-8")

    # The short cases run --rounds times, in turn, each in a fresh output folder: the machine's speed drifts
    # by 15-30 %, so a ratio is taken within each round and the median of those ratios reported.
    short = {"floor: laspy/lazrs LAZ decode": lambda out: measured(DECODE, *map(str, tiles)),
             "baseline: plain numpy single-pass DSM 0.5 m": lambda out: measured(NUMPY_DSM, *map(str, tiles)),
             "pipeline: raster stage (readers.las + writers.dsm)":
                 lambda out: measured(pipeline_case(str(raster_pipeline), tiles, out))}
    rounds = {name: [] for name in short}
    for _ in range(args.rounds):
        for name, case in short.items():
            with tempfile.TemporaryDirectory(dir=root) as out:
                rounds[name].append(case(Path(out) / "products"))
    long = {"pipeline: whole 2D product set, in-process": (tiles, 0),
            "pipeline: whole 2D product set, Dask 2 workers": (tiles, 2),
            "pipeline: whole 2D product set, 1 tile": (one, 0)}
    once = {}
    for name, (inputs, workers) in long.items():
        with tempfile.TemporaryDirectory(dir=root) as out:
            once[name] = measured(pipeline_case("lidar-to-2d", inputs, Path(out) / "products", workers=workers))
    floor = [seconds for seconds, _ in rounds["floor: laspy/lazrs LAZ decode"]]

    print(f"{points:,} points in 9 tiles ({args.size:g} m district at {args.density:g} pulses/m2); 1 tile: {one_points:,}")
    print(f"{'case':52} {'seconds':>8} {'Mpts/s':>8} {'vs floor':>9} {'peak MB':>8}")
    for name, results in rounds.items():
        seconds = [s for s, _ in results]
        ratios = [f / s for f, s in zip(floor, seconds)]
        print(f"{name:52} {statistics.median(seconds):8.1f} {points / statistics.median(seconds) / 1e6:8.2f} "
              f"{statistics.median(ratios):9.2f} {max(r for _, r in results):8.0f}   [{min(ratios):.2f}-{max(ratios):.2f}]")
    for name, (seconds, rss) in once.items():
        count = one_points if "1 tile" in name else points
        ratio = (count / seconds) / (points / statistics.median(floor))
        print(f"{name:52} {seconds:8.1f} {count / seconds / 1e6:8.2f} {ratio:9.2f} {rss:8.0f}")
    nine, single = once["pipeline: whole 2D product set, in-process"][1], once["pipeline: whole 2D product set, 1 tile"][1]
    print(f"peak RSS, 9-tile job / 1-tile job: {nine:.0f} / {single:.0f} MB = {nine / single:.2f}")
    print(f"(first three cases: median of {args.rounds} rounds; vs floor: median of the ratios within each round, "
          "[lowest-highest])")
    print(json.dumps({"rounds": {name: [{"seconds": s, "peak_mb": r} for s, r in results] for name, results in rounds.items()},
                      "once": {name: {"seconds": s, "peak_mb": r} for name, (s, r) in once.items()}, "points": points}))


if __name__ == "__main__":
    main()
