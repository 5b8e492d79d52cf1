"""Benchmark of the IFC interiors conversion beside py3dtiles 12's own IFC conversion of the same files.

Two inputs: the sample district's town hall (``sample_data/district/hotel-de-ville.ifc``, 5 storeys, 102
spaces) and a larger IFC made by the sample generator's code, the town hall's pavilions in a row as one
building (``--pavilions``, 10 by default: 5 storeys, 1,020 spaces; :mod:`pipelines.synthetic.pavilions`,
generated into ``--keep`` once). Conversions of each, each a fresh child process:

- ``pipeline``: ``lutece pipeline run plans-to-interiors`` (IFC read through ifcopenshell's geometry
  iterator, georeferenced by the IfcMapConversion; one tile per storey by ``tiles.interior``, EGM96 applied)
  with all its four products: the storey tilesets of the full and the open profile and their 2D indoor
  GeoPackages; the full tileset is the one examined;
- ``tiles``: ``lutece tiles interior IFC OUT``, the one tileset, at its default settings (``--workers 0``: one
  geometry process per available core);
- ``py3dtiles``: ``py3dtiles convert IFC --spec-version 1.1 --srs_in 2154 --srs_out 4978`` (its IFC tiler:
  one tile per spatial element, glTF with per-mesh extras).

The table gives each conversion's wall time, its CPU time (user + system of the whole process tree: on a
shared machine, the steadier figure), its peak RSS (the sum over its process tree, sampled every 20 ms:
py3dtiles works in worker processes), the tiles written, how many properties an element carries, how many
of the generator's rooms (the ground truth, :func:`pipelines.synthetic.townhall.room_truth`) can be found
in the output with their name, use, level and area (within 1 %), how far the tileset lies from the IFC's
map position, and whether storeys are tiles of their own. A property counts where a viewer reads it: on
the room's feature or, for the level, on the storey tile above it. Issue 15's target: no slower than
py3dtiles while keeping every room's name, use, level and area.

Conversions run in rounds (``--rounds``, 3 by default), interleaved: every conversion of a round on one
input, then the other input, the order reversed every other round, so that a shared machine's changing
load falls on all of them; each round's ratio to py3dtiles' time is printed, with the load average.

Usage: .venv/bin/python benchmarks/bench_interiors.py [--pavilions 10] [--rounds 3] [--keep DIR]
       [--cases tiles,pipeline,py3dtiles]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "district" / "hotel-de-ville.ifc"
LUTECE = [sys.executable, "-m", "gis"]
PY3DTILES = [sys.executable, "-c", "import sys; from py3dtiles.command_line import main; sys.exit(main())"]
SITE = (651180.0, 6861150.0, 36.0)  # where the larger building stands (Lambert-93, NGF-IGN69)
AREA_TOLERANCE = 0.01
FIELDS = ("name", "use", "level", "area")


def commands(case: str, ifc: Path, out: Path) -> list[str]:
    """The command line of one conversion."""
    if case == "pipeline":
        return [*LUTECE, "-q", "pipeline", "run", "plans-to-interiors", "--input", str(ifc), "--output", str(out)]
    if case == "tiles":
        return [*LUTECE, "-q", "tiles", "interior", str(ifc), str(out)]
    return [*PY3DTILES, "convert", str(ifc), "--out", str(out), "--spec-version", "1.1", "--srs_in", "2154",
            "--srs_out", "4978", "--jobs", str(os.cpu_count())]


def tileset_of(case: str, out: Path) -> Path:
    """The folder of the tileset a case wrote (the pipeline's full profile: every attribute kept)."""
    return out / "interior_full" if case == "pipeline" else out


def run_measured(command: list[str], log: Path) -> tuple[float, float, int]:
    """Wall time, CPU time (user + system of the whole process tree) and peak RSS (sum over the tree)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("w") as output:
        started = time.perf_counter()
        process = psutil.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=log.parent)
        peak = 0
        while process.poll() is None:
            peak = max(peak, _tree_rss(process))
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[3:])} failed ({process.returncode}):\n{log.read_text()[-3000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return elapsed, cpu, peak


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


# --- what each output keeps -----------------------------------------------------------------------


def _glb_json(path: Path) -> dict:
    raw = path.read_bytes()
    length = struct.unpack_from("<I", raw, 12)[0]
    return json.loads(raw[20:20 + length])


def _tiles(tile: dict, ancestors: tuple = ()) -> Iterator[tuple[dict, tuple]]:
    yield tile, ancestors
    for child in tile.get("children", []):
        yield from _tiles(child, (*ancestors, tile))


def lutece_keeps(out: Path) -> dict:
    """Per room of the output (class room): its name, use, level and area; tiles and properties."""
    from tiles.mesh import read_glb

    document = json.loads((out / "tileset.json").read_text())
    tiles = list(_tiles(document["root"]))
    tables = [read_glb((out / tile["content"]["uri"]).read_bytes()).table for tile, _ in tiles if "content" in tile]
    storeys = document["asset"]["extras"]["lutece"].get("storeys", [])
    rooms = [row for table in tables for row in table[table["class"] == "room"].to_dict("records")]
    return {"tiles": len(tiles), "storey_tiles": f"yes ({len(storeys)} tiles, one per storey)",
            "properties": max(len(table.columns) for table in tables),
            "rooms": [{"name": r["name"], "use": r["use"], "level": r["level"], "area": r["area"]} for r in rooms]}


def py3dtiles_keeps(out: Path) -> dict:
    """Per IfcSpace feature of the output: its properties; the level from the storey tile above it."""
    document = json.loads((out / "tileset.json").read_text())
    tiles = list(_tiles(document["root"]))
    rooms, counts, storeys = [], [], 0
    for tile, ancestors in tiles:
        structure = (tile.get("extras", {}).get("properties") or {}).get("spatialStructure", {})
        storeys += structure.get("class") == "IfcBuildingStorey"
        if "content" not in tile:
            continue
        level = next((a["extras"]["properties"]["spatialStructure"]["name"] for a in reversed(ancestors)
                      if a.get("extras", {}).get("properties", {}).get("spatialStructure", {}).get("class")
                      == "IfcBuildingStorey"), None)
        for mesh in _glb_json(out / tile["content"]["uri"]).get("meshes", []):
            extras = mesh.get("extras") or {}
            counts.append(len(extras))
            if extras.get("class") == "IfcSpace":
                values = {key: value for key, value in {**structure, **extras}.items() if key != "name"}
                rooms.append({"name": extras.get("name"), "level_name": level, "values": values})
    return {"tiles": len(tiles), "storey_tiles": f"yes ({storeys} tiles, spaces as their children)",
            "properties": max(counts, default=0), "rooms": rooms}


def offset_km(out: Path, site: tuple[float, float, float]) -> float:
    """How far (km) the centre of the tileset's root volume is from the building's site (IfcMapConversion)."""
    import numpy as np
    import pyproj

    root = json.loads((out / "tileset.json").read_text())["root"]
    transform = np.array(root.get("transform", np.identity(4).ravel())).reshape(4, 4, order="F")
    centre = transform @ np.append(root["boundingVolume"]["box"][:3], 1.0)
    site_ecef = pyproj.Transformer.from_crs("EPSG:2154", "EPSG:4978", always_xy=True).transform(*site)
    return float(np.linalg.norm(centre[:3] - np.array(site_ecef))) / 1000


def kept(case: str, found: dict, truth: list[dict]) -> dict[str, int]:
    """How many true rooms the output holds with each field right (a room found once, by level and name)."""
    counts = dict.fromkeys(("found", *FIELDS), 0)
    for room in truth:
        if case != "py3dtiles":
            same = [r for r in found["rooms"] if r["name"] == room["name"] and r["level"] == room["level_index"]]
            if len(same) != 1:
                continue
            counts["found"] += 1
            counts["name"] += 1
            counts["level"] += 1
            counts["use"] += same[0]["use"] == room["use"]
            counts["area"] += abs(same[0]["area"] - room["area_m2"]) <= AREA_TOLERANCE * room["area_m2"]
        else:
            named = [r for r in found["rooms"] if r["name"] == room["name"]]
            same = [r for r in named if r["level_name"] == room["level"]]
            if not named:
                continue
            counts["found"] += 1
            counts["name"] += 1
            counts["level"] += len(same) == 1
            values = [v for r in (same or named) for v in r["values"].values()]
            counts["use"] += room["use"] in values
            counts["area"] += any(isinstance(v, float) and abs(v - room["area_m2"]) <= AREA_TOLERANCE * room["area_m2"]
                                  for v in values)
    return counts


# --- inputs ---------------------------------------------------------------------------------------


def map_origin(ifc: Path) -> tuple[float, float, float]:
    """Where an IFC's IfcMapConversion puts its origin (Lambert-93, NGF-IGN69)."""
    import ifcopenshell

    conversion = ifcopenshell.open(str(ifc)).by_type("IfcMapConversion")[0]
    return conversion.Eastings, conversion.Northings, conversion.OrthogonalHeight


def inputs(folder: Path, pavilions: int) -> dict[str, tuple[Path, list[dict]]]:
    """The two IFC files and their rooms' truth; the larger one generated into ``folder`` once."""
    from pipelines.synthetic.ifc import write_ifc
    from pipelines.synthetic.pavilions import build_complex
    from pipelines.synthetic.townhall import TownHallSite, build_model, room_truth

    site = TownHallSite(SITE[:2], 0.0, SITE[2])  # the truth's names, uses, levels and areas do not depend on it
    big = folder / f"pavilions-{pavilions}.ifc"
    if not big.is_file():
        started = time.perf_counter()
        write_ifc(site, big.with_suffix(".partial"), build_complex(pavilions))
        big.with_suffix(".partial").replace(big)
        print(f"generated {big.name} in {time.perf_counter() - started:.0f} s", flush=True)
    return {"town hall": (SAMPLE, room_truth(site)),
            f"{pavilions} pavilions": (big, room_truth(site, build_complex(pavilions)))}


def load() -> str:
    """The load averages (1, 5, 15 min) as uptime prints them."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def convert(case: str, ifc: Path, truth: list[dict], folder: Path, origin) -> dict:
    """One conversion, measured, and what its output keeps."""
    out = Path(tempfile.mkdtemp(dir=folder)) / "out"
    seconds, cpu, rss = run_measured(commands(case, ifc, out), out.parent / "log.txt")
    tileset = tileset_of(case, out)
    found = py3dtiles_keeps(tileset) if case == "py3dtiles" else lutece_keeps(tileset)
    found["offset"] = offset_km(tileset, origin)
    return {"seconds": seconds, "cpu": cpu, "rss": rss, "found": found, "counts": kept(case, found, truth)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pavilions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every conversion, interleaved")
    parser.add_argument("--keep", type=Path, help="folder keeping the generated IFC between runs")
    parser.add_argument("--cases", default="tiles,pipeline,py3dtiles", help="the conversions of a round "
                        "(tiles: lutece tiles interior; pipeline: plans-to-interiors, its four products; py3dtiles)")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-interiors-"))
    folder.mkdir(parents=True, exist_ok=True)
    cases = args.cases.split(",")
    files = inputs(folder, args.pavilions)
    origins = {ifc: map_origin(ifc) for ifc, _ in files.values()}
    print(f"load average before: {load()}", flush=True)
    results: dict[tuple[str, str], list[dict]] = {}
    for number in range(args.rounds):
        for name, (ifc, truth) in files.items():
            order = cases if number % 2 == 0 else cases[::-1]  # A B C, C B A...: no case always runs first
            for case in order:
                result = convert(case, ifc, truth, folder, origins[ifc])
                result["load"] = load()
                results.setdefault((name, case), []).append(result)
                print(f"round {number + 1} {name:<14}{case:<10}{result['seconds']:7.1f} s  CPU {result['cpu']:6.1f} s"
                      f"  peak RSS {result['rss'] / 2**20:6.0f} MiB  load {result['load']}", flush=True)
    print(f"load average after: {load()}\n")
    print_rounds(files, cases, results, args.rounds)
    print_kept(files, cases, results)
    print_verdicts(files, cases, results)


def print_rounds(files: dict, cases: list[str], results: dict, rounds: int) -> None:
    """Per input and round: each conversion's wall time, CPU, peak RSS, and ours over py3dtiles' (same round)."""
    print(f"{'input':<14}{'round':>6}  {'conversion':<11}{'time s':>8}{'CPU s':>8}{'peak RSS MiB':>13}"
          f"{'time / py3dtiles':>18}{'CPU / py3dtiles':>17}  load (1, 5, 15 min) after")
    for name in files:
        for number in range(rounds):
            theirs = results.get((name, "py3dtiles"), [None] * rounds)[number]
            for case in cases:
                result = results[(name, case)][number]
                ratio = cpu_ratio = ""
                if theirs is not None and case != "py3dtiles":
                    ratio = f"{result['seconds'] / theirs['seconds']:.2f}"
                    cpu_ratio = f"{result['cpu'] / theirs['cpu']:.2f}"
                print(f"{name:<14}{number + 1:>6}  {case:<11}{result['seconds']:>8.1f}{result['cpu']:>8.1f}"
                      f"{result['rss'] / 2**20:>13.0f}{ratio:>18}{cpu_ratio:>17}  {result['load']}")
    print()


def print_kept(files: dict, cases: list[str], results: dict) -> None:
    """What each output keeps (the same in every round: the first round's, checked against the others)."""
    print(f"{'input':<14}{'conversion':<11}{'rooms':>6}{'tiles':>7}{'props/element':>14}  "
          f"{'rooms kept: found name use level area':<38}{'from map origin km':>19}  storeys as tiles")
    for name, (_, truth) in files.items():
        for case in cases:
            first, *others = results[(name, case)]
            same = all(other["counts"] == first["counts"] for other in others)
            found, counts = first["found"], first["counts"]
            kept_text = " ".join(f"{counts[key]:>{len(key)}}" for key in ("found", *FIELDS))
            print(f"{name:<14}{case:<11}{len(truth):>6}{found['tiles']:>7}{found['properties']:>14}  {'':<12}"
                  f"{kept_text:<26}{found['offset']:>19,.1f}  {found['storey_tiles']}"
                  f"{'' if same else '  (NOT the same in every round)'}")
    print()


def print_verdicts(files: dict, cases: list[str], results: dict) -> None:
    """Issue 15's target per input and conversion of ours: every room kept, and no slower than py3dtiles."""
    for name, (_, truth) in files.items():
        theirs = results.get((name, "py3dtiles"))
        for case in (c for c in cases if c != "py3dtiles"):
            if theirs is None:
                continue
            ours = results[(name, case)]
            ratios = [o["seconds"] / t["seconds"] for o, t in zip(ours, theirs)]
            faster = sum(ratio <= 1.0 for ratio in ratios)
            everything = all(o["counts"][key] == len(truth) for o in ours for key in ("found", *FIELDS))
            print(f"{name}, {case}: {min(ratios):.2f}-{max(ratios):.2f}x py3dtiles' time (median "
                  f"{sorted(ratios)[len(ratios) // 2]:.2f}; no slower in {faster} of {len(ratios)} rounds), "
                  f"peak RSS {max(o['rss'] for o in ours) / 2**20:.0f} MiB against "
                  f"{max(t['rss'] for t in theirs) / 2**20:.0f}; "
                  f"{'every room kept with its name, use, level and area' if everything else 'rooms missing'}; "
                  f"target {'met' if everything and faster == len(ratios) else 'NOT met'}")


if __name__ == "__main__":
    main()
