"""Benchmark of the building reconstruction and mesh tiling, beside a plain trimesh export (the floor).

A synthetic district is generated here: ``--buildings`` rectangular buildings on a grid (30 m apart,
12-20 m x 8-14 m), each with a flat, gable, hip or mansard roof, its roof points at ``--density`` per m2
with 3 cm of noise, and ground points around at a tenth of that. Each case runs in a fresh process (its
peak RSS is that process's own) on the same data:

- ``floor``: the LoD1.2 prisms of the true heights extruded by trimesh (``extrude_polygon``), joined and
  exported as one glb: the least any LoD1.2 writer has to do;
- ``lod1.2``: ``reconstruct`` with ``lod=1.2`` (ground plane, roof percentile), then the quadtree tileset
  (``tiles.mesh.write_mesh_tileset``, EGM96 applied);
- ``lod2.2``: the same with roof planes and LoD2.2 shells (the default);
- ``CASE@N`` (e.g. ``lod2.2@2``): that case reconstructed in chunks on N Dask workers (a LocalCluster, its
  start-up counted in the reconstruction time; the CPU column is the driver's alone).

The table gives each case's wall time split into reconstruction and tiling, buildings/s and peak RSS,
and the ratio of the LoD1.2 case to the floor (issue 14's targets: LoD1.2 under 3x the floor, LoD2.2 at
least 50 buildings/s on 2 cores).

- ``lod1.2-unchecked`` (not by default): ``lod1.2`` without the footprint checks (``check_footprints: false``);
- ``tiling`` (not by default): the true LoD1.2 prisms tiled, with inner tiles' contents, no reconstruction
  and no points generated: ``--buildings 100000 --cases floor,tiling`` is the issue's 100,000 buildings.

Usage: .venv/bin/python benchmarks/bench_buildings.py [--buildings 10000] [--density 4] [--keep DIR]
       [--cases floor,lod1.2,lod2.2,lod2.2@2,tiling] [--rounds 3]

The table gives, per case, buildings/s of the reconstruction alone and of reconstruction and tiling, the
medians over ``--rounds`` rounds (the cases interleaved in each), the ratio to the floor of the same round
with its range, CPU seconds, peak RSS, and the load average seen during the run (a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PITCH = 30.0
ROOFS = ("flat", "gable", "hip", "mansard")


def generate(folder: Path, count: int, density: float, seed: int = 7, points: bool = True) -> None:
    """The district's points (npz, unless ``points`` is false) and footprints (GeoPackage) in Lambert-93."""
    import geopandas as gpd
    import shapely

    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(count)))
    col, row = np.arange(count) % side, np.arange(count) // side
    x0, y0 = 650000 + col * PITCH, 6860000 + row * PITCH
    width, depth = rng.uniform(12, 20, count), rng.uniform(8, 14, count)
    ground, height = rng.uniform(30, 40, count), rng.uniform(8, 25, count)
    kinds = rng.integers(0, len(ROOFS), count)
    xyz, classes = [], []
    for i in range(count if points else 0):
        n = int(density * width[i] * depth[i])
        u, v = rng.uniform(0, width[i], n), rng.uniform(0, depth[i], n)
        edge = np.minimum(np.minimum(u, width[i] - u), np.minimum(v, depth[i] - v))
        rise = {"flat": np.zeros(n), "gable": 0.6 * np.minimum(v, depth[i] - v), "hip": 0.6 * edge,
                "mansard": np.minimum(2.0 * edge, 3.0)}[ROOFS[kinds[i]]]
        xyz.append(np.column_stack([x0[i] + u, y0[i] + v, ground[i] + height[i] + rise + rng.normal(0, 0.03, n)]))
        classes.append(np.full(n, 6, np.uint8))
        g = rng.uniform(-5, PITCH - 5, (int(density / 10 * PITCH * PITCH), 2))
        away = (g[:, 0] < -0.3) | (g[:, 0] > width[i] + 0.3) | (g[:, 1] < -0.3) | (g[:, 1] > depth[i] + 0.3)
        g = g[away]
        xyz.append(np.column_stack([x0[i] + g[:, 0], y0[i] + g[:, 1], np.full(len(g), ground[i])]))
        classes.append(np.full(len(g), 2, np.uint8))
    if points:
        np.savez(folder / "points.npz", xyz=np.concatenate(xyz), classification=np.concatenate(classes))
    boxes = shapely.box(x0, y0, x0 + width, y0 + depth)
    gpd.GeoDataFrame({"id": [f"B{i:06d}" for i in range(count)], "ground": ground, "height": height},
                     geometry=boxes, crs="EPSG:2154").to_file(folder / "footprints.gpkg", layer="footprints")


def cpu_seconds() -> float:
    """This process's CPU time (user and system): on a machine shared with other jobs, steadier than wall time."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_case(case: str, folder: Path) -> dict:
    """One case in this process; its timings, its CPU time from the start of the timed part, its peak RSS."""
    figures = _run_case(case, folder)
    figures["cpu"] = cpu_seconds() - figures.pop("cpu_start")
    return figures


def _run_case(case: str, folder: Path) -> dict:
    import geopandas as gpd

    footprints = gpd.read_file(folder / "footprints.gpkg", layer="footprints")
    out = Path(tempfile.mkdtemp(dir=folder))
    if case == "floor":
        import trimesh

        cpu, started = cpu_seconds(), time.perf_counter()
        meshes = [trimesh.creation.extrude_polygon(polygon, height).apply_translation([0, 0, base])
                  for polygon, base, height in zip(footprints.geometry, footprints["ground"], footprints["height"])]
        trimesh.util.concatenate(meshes).export(out / "floor.glb")
        return {"case": case, "reconstruct": 0.0, "tiling": time.perf_counter() - started, "cpu_start": cpu,
                "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    import pyproj

    if case == "tiling":
        return tiling_case(footprints, out, cpu_seconds())
    from pipelines.algorithms.roofs import RoofOptions, attribute_frame
    from pipelines.buildings import feature_meshes, reconstruct_buildings
    from tiles.geo import HeightModel, Placement
    from tiles.mesh import write_mesh_tileset

    points = np.load(folder / "points.npz")
    xyz, classification = points["xyz"], points["classification"]
    cpu, started = cpu_seconds(), time.perf_counter()  # after the imports and the reading, as for the floor
    kind, _, workers = case.partition("@")  # lod2.2@2: on 2 Dask workers
    lod, _, unchecked = kind.removeprefix("lod").partition("-")  # lod1.2-unchecked: no footprint checks
    buildings = reconstruct_buildings(footprints, xyz, classification, "id",
                                      RoofOptions(lod=lod, check_footprints=not unchecked), workers=int(workers or 0))
    built = time.perf_counter()
    layer = attribute_frame(buildings, footprints.crs)
    placement = Placement(pyproj.CRS("EPSG:2154"), HeightModel.resolve())
    write_mesh_tileset(feature_meshes(buildings, layer), placement, out / "tiles",
                       coarse=feature_meshes(buildings, layer, coarse=True))
    lods = layer["lod"].value_counts().to_dict()
    return {"case": case, "reconstruct": built - started, "tiling": time.perf_counter() - built, "cpu_start": cpu,
            "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "lods": lods}


def tiling_case(footprints, out: Path, cpu: float) -> dict:
    """The true LoD1.2 prisms tiled (they are their own coarse meshes for the inner tiles): the quadtree alone."""
    import pyproj

    from pipelines.algorithms.shells import Prism, building_mesh
    from tiles.geo import HeightModel, Placement
    from tiles.mesh import FeatureMeshes, write_mesh_tileset

    started = time.perf_counter()
    vertices, faces, owner, offset = [], [], [], 0
    for feature, (polygon, base, height) in enumerate(zip(footprints.geometry, footprints["ground"],
                                                          footprints["height"])):
        v, f = building_mesh([Prism(polygon, base, base + height)])
        vertices.append(v)
        faces.append(f + offset)
        owner.append(np.full(len(f), feature))
        offset += len(v)
    meshes = FeatureMeshes(np.concatenate(vertices), np.concatenate(faces), np.concatenate(owner),
                           footprints.drop(columns="geometry").reset_index(drop=True))
    built = time.perf_counter()
    placement = Placement(pyproj.CRS("EPSG:2154"), HeightModel.resolve())
    write_mesh_tileset(meshes, placement, out / "tiles", coarse=meshes)
    tiles = len(list((out / "tiles").glob("*.glb")))
    return {"case": "tiling", "reconstruct": built - started, "tiling": time.perf_counter() - built, "cpu_start": cpu,
            "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "lods": f"{tiles} glb contents"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buildings", type=int, default=10_000)
    parser.add_argument("--density", type=float, default=4.0)
    parser.add_argument("--keep", type=Path, help="folder keeping the generated district between runs")
    parser.add_argument("--cases", default="floor,lod1.2,lod2.2",
                        help="the cases to run, in turn; 'tiling' tiles the true prisms alone (no points needed: "
                             "--buildings 100000 --cases floor,tiling measures the quadtree at the issue's scale)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the cases this many times, interleaved; the table gives medians and each ratio's "
                             "range (the ratio to the floor of the same round)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # a child: one case, its figures as JSON
        print(json.dumps(run_case(args.case, args.keep)))
        return
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-buildings-"))
    folder.mkdir(parents=True, exist_ok=True)
    needs_points = any(case.startswith("lod") for case in args.cases.split(","))
    if not (folder / "footprints.gpkg").is_file() or (needs_points and not (folder / "points.npz").is_file()):
        started = time.perf_counter()
        generate(folder, args.buildings, args.density, points=needs_points)
        print(f"generated {args.buildings:,} buildings in {time.perf_counter() - started:.1f} s", flush=True)
    results: dict[str, list[dict]] = {}
    loads = [os.getloadavg()]
    for round_ in range(1, args.rounds + 1):  # the cases interleaved, round after round (a shared machine)
        for case in args.cases.split(","):
            run = subprocess.run([sys.executable, __file__, "--case", case, "--keep", str(folder)], check=True,
                                 capture_output=True, text=True)
            r = json.loads(run.stdout.splitlines()[-1])
            results.setdefault(case, []).append(r)
            print(f"round {round_} {case:<17} reconstruct {r['reconstruct']:7.1f} s  tiling {r['tiling']:6.1f} s  "
                  f"CPU {r['cpu']:6.1f} s  peak RSS {r['rss'] / 2**20:6.0f} MiB  {r.get('lods', '')}", flush=True)
            loads.append(os.getloadavg())
    print_table(results, args.buildings, loads)


def print_table(results: dict[str, list[dict]], count: int, loads: list[tuple]) -> None:
    """Each case's medians over the rounds, and its ratios to the floor of the same round (their range)."""
    floors = results.get("floor")
    print(f"\n{count:,} buildings, {len(next(iter(results.values())))} round(s); load average (1 min) during the run "
          f"{min(load[0] for load in loads):.1f}-{max(load[0] for load in loads):.1f} on {os.cpu_count()} cores")
    print(f"{'case':<18}{'reconstr. b/s':>14}{'total b/s':>10}{'tiling s':>9}{'total s':>9}{'peak RSS MiB':>13}"
          f"{'x floor (range)':>20}{'CPU s':>8}{'CPU x floor (range)':>22}")
    for case, runs in results.items():
        totals = [r["reconstruct"] + r["tiling"] for r in runs]
        rebuild = float(np.median([r["reconstruct"] for r in runs]))
        wall = _ratios(totals, [f["tiling"] for f in floors]) if floors else [float("nan")]
        cpu = _ratios([r["cpu"] for r in runs], [f["cpu"] for f in floors]) if floors else [float("nan")]
        rate = f"{count / rebuild:,.0f}" if rebuild else "-"
        print(f"{case:<18}{rate:>14}{count / np.median(totals):>10,.0f}"
              f"{np.median([r['tiling'] for r in runs]):>9.1f}{np.median(totals):>9.1f}"
              f"{max(r['rss'] for r in runs) / 2**20:>13.0f}"
              f"{_span(wall):>20}{np.median([r['cpu'] for r in runs]):>8.1f}{_span(cpu):>22}")


def _ratios(values: list[float], floors: list[float]) -> list[float]:
    return [value / floor for value, floor in zip(values, floors)]


def _span(ratios: list[float]) -> str:
    """The median ratio, and its range over the rounds when there are several."""
    median = f"{np.median(ratios):.2f}"
    return median if len(ratios) == 1 else f"{median} ({min(ratios):.2f}-{max(ratios):.2f})"

if __name__ == "__main__":
    main()
