"""Benchmark of the sample district generator, against the LAZ write floor.

Generates a district (default 1000 m x 1000 m at 10 pulses/m2, about 11
million points) and prints, side by side from the same run:

- the floor: laspy/lazrs writing the very same points to LAZ, nothing else;
- the lidar alone (scene + scanning + LAZ), and the whole district (lidar,
  variants, vectors, truth, IFC), in points per second and as a ratio of the
  floor;
- the peak RSS of the lidar alone and of the whole district, for 400 m and
  for the large size, each in its own process: the lidar is made cell by
  cell, so its memory should barely grow with the district's area.

Usage: .venv/bin/python benchmarks/bench_sample_generate.py [--size 1000] [--density 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import laspy

from pipelines.synthetic import lidar
from pipelines.synthetic.generate import DistrictSpec, generate_district
from pipelines.synthetic.scene import build_scene


def timed(function, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def peak_rss(code: str, *args: str) -> float:
    """Peak RSS in MB of ``code`` run in a fresh Python process.

    Read from VmHWM, the high-water mark of the process's own memory map:
    ru_maxrss would also count the parent's size at fork time.
    """
    code += ("; print(next(line.split()[1] for line in open('/proc/self/status') "
             "if line.startswith('VmHWM:')))")
    output = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return int(output.stdout.split()[-1]) / 1024


def peak_rss_of_lidar(size: float, density: float, folder: Path) -> float:
    """Peak RSS of scanning a district's lidar alone (scene + cells + LAZ)."""
    return peak_rss(
        "import sys; from pathlib import Path; from pipelines.synthetic import lidar; "
        "from pipelines.synthetic.scene import build_scene; "
        f"lidar.write_district_laz(build_scene({size}, 0), Path(sys.argv[1]), lidar.LidarSettings(density={density}), 0)",
        str(folder / f"lidar-{size:g}.laz"))


def peak_rss_of_district(size: float, density: float, folder: Path) -> float:
    """Peak RSS of generating a whole district (the IFC writer's share does not grow with the area)."""
    return peak_rss(
        "import sys; from pathlib import Path; from pipelines.synthetic.generate import DistrictSpec, generate_district; "
        f"generate_district(Path(sys.argv[1]), DistrictSpec(size={size}, density={density}))",
        str(folder / f"district-{size:g}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=1000.0)
    parser.add_argument("--density", type=float, default=10.0)
    args = parser.parse_args()
    spec = DistrictSpec(size=args.size, density=args.density)
    with tempfile.TemporaryDirectory(prefix="lutece-bench-") as tmp:
        tmp = Path(tmp)
        scene_time, scene = timed(build_scene, spec.size, spec.seed, spec.origin)
        settings = lidar.LidarSettings(density=spec.density)
        lidar_time, classes = timed(lidar.write_district_laz, scene, tmp / "lidar.laz", settings, spec.seed)
        points = sum(classes.values())
        data = laspy.read(tmp / "lidar.laz")
        floor_time, _ = timed(data.write, tmp / "floor.laz")
        del data
        whole_time, manifest = timed(generate_district, tmp / "district", spec)
        rss = {(kind, size): measure(size, spec.density, tmp)
               for kind, measure in (("lidar", peak_rss_of_lidar), ("district", peak_rss_of_district))
               for size in (400.0, spec.size)}

    rate = lambda seconds: points / seconds / 1e6  # noqa: E731
    rows = [
        ("floor: laspy/lazrs LAZ write of the same points", floor_time, 1.0),
        ("lidar: scene + scanning + LAZ", scene_time + lidar_time, floor_time / (scene_time + lidar_time)),
        ("whole district: lidar, variants, vectors, truth, IFC", whole_time, floor_time / whole_time),
    ]
    print(f"District {spec.size:g} m x {spec.size:g} m, {points:,} points "
          f"({manifest['lidar']['points_per_m2']} per m2), {len(scene.buildings)} buildings, {len(scene.trees)} trees")
    print(f"{'case':55} {'seconds':>8} {'Mpts/s':>8} {'vs floor':>9}")
    for name, seconds, ratio in rows:
        print(f"{name:55} {seconds:8.1f} {rate(seconds):8.2f} {ratio:9.2f}")
    print(f"{'peak RSS (MB)':55} {'400 m':>8} {f'{spec.size:g} m':>8} {'ratio':>9}")
    for kind in ("lidar", "district"):
        small, large = rss[(kind, 400.0)], rss[(kind, spec.size)]
        print(f"{kind:55} {small:8.0f} {large:8.0f} {large / small:9.2f}")
    print(json.dumps({"points": points, "floor_s": floor_time, "lidar_s": scene_time + lidar_time,
                      "whole_s": whole_time, "peak_rss_mb": {f"{k} {s:g}": v for (k, s), v in rss.items()}}))


if __name__ == "__main__":
    main()
