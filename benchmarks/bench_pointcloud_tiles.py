"""Benchmark of the point-cloud tiler against py3dtiles' own converter, on the same LAZ.

Generates a district with ``lutece sample generate`` (default 720 m x 720 m at
10 pulses/m2, about 5.5 million points; kept in ``--keep`` for later runs) and
converts its LAZ, in turn, with:

- ``py3dtiles convert --srs_out 4978 --extra-fields classification
  --extra-fields intensity`` (its own process pool, ``--jobs`` = the CPUs);
- ``lutece tiles pointcloud`` (the full product: every class but noise, with
  classification, intensity and return number per point, the geoid applied).

Both write 3D Tiles 1.1 (glTF) by default (``--spec 1.0``: pnts). Each run is
a fresh process tree; its wall time gives points/s of input, and its peak RSS
is the largest sum of the RSS of the process and all its children, sampled
every 20 ms. Rounds alternate the two tools; the table shows each round and
the median of the ratios taken within each round.

Usage: .venv/bin/python benchmarks/bench_pointcloud_tiles.py [--size 720] [--density 10] [--keep DIR]
       [--rounds 2] [--spec 1.1]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import laspy
import psutil

BIN = Path(sys.executable).parent


def generate(folder: Path, size: float, density: float) -> Path:
    laz = folder / "district.laz"
    if not laz.is_file():
        subprocess.run([str(BIN / "lutece"), "-q", "sample", "generate", str(folder), "--size", str(size),
                        "--density", str(density), "--overwrite"], check=True)
    return laz


def measure(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of the whole process tree of ``command``."""
    started = time.perf_counter()
    process = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        total = 0
        try:
            for member in [process, *process.children(recursive=True)]:
                try:
                    total += member.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
        except psutil.NoSuchProcess:
            pass
        peak = max(peak, total)
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{command[0]} failed: {process.stderr.read().decode()[-2000:]}")
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=720.0)
    parser.add_argument("--density", type=float, default=10.0)
    parser.add_argument("--keep", type=Path, help="folder where the generated district is kept between runs")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--spec", choices=["1.0", "1.1"], default="1.1")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-3dtiles-"))
    try:
        district = args.keep or scratch / "district"
        laz = generate(district, args.size, args.density)
        points = laspy.open(laz).header.point_count
        print(f"{laz}: {points:,} points; 3D Tiles {args.spec}; {psutil.cpu_count()} CPUs", flush=True)
        tools = {
            "py3dtiles convert": lambda out: [str(BIN / "py3dtiles"), "convert", str(laz), "--out", str(out),
                                              "--srs_out", "4978", "--extra-fields", "classification",
                                              "--extra-fields", "intensity", "--spec-version", args.spec],
            "lutece tiles pointcloud": lambda out: [str(BIN / "lutece"), "-q", "tiles", "pointcloud", str(laz),
                                                    str(out), "--product", "full", "--spec", args.spec],
        }
        results: dict[str, list[tuple[float, int]]] = {name: [] for name in tools}
        for round_ in range(args.rounds):
            for name, command in tools.items():
                out = scratch / f"out-{round_}-{name.split()[0]}"
                results[name].append(measure(command(out)))
                shutil.rmtree(out, ignore_errors=True)
                seconds, peak = results[name][-1]
                print(f"round {round_ + 1}  {name:<24} {seconds:7.1f} s  {points / seconds / 1e6:5.2f} M points/s  "
                      f"peak RSS {peak / 2**20:6.0f} MiB", flush=True)
        base, ours = results["py3dtiles convert"], results["lutece tiles pointcloud"]
        speed = [b[0] / o[0] for b, o in zip(base, ours)]
        memory = [o[1] / b[1] for b, o in zip(base, ours)]
        print()
        print(f"{'tool':<26}{'M points/s (best)':>18}{'peak RSS MiB (max)':>20}")
        for name, runs in results.items():
            print(f"{name:<26}{points / min(s for s, _ in runs) / 1e6:>18.2f}{max(r for _, r in runs) / 2**20:>20.0f}")
        print(f"speed ratio lutece/py3dtiles, per round: {', '.join(f'{r:.2f}' for r in speed)} "
              f"(median {statistics.median(speed):.2f}; target >= 2)")
        print(f"peak RSS ratio lutece/py3dtiles, per round: {', '.join(f'{r:.2f}' for r in memory)} "
              f"(median {statistics.median(memory):.2f}; target <= 1)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
