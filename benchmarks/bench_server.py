"""Benchmark of the OGC API server against vanilla pygeoapi 0.21, on loopback, with wrk.

Builds a layer of N buildings (default 100,000 polygons with ten attributes),
publishes it into a fresh city GIS on each backend, and serves it twice with
the same gunicorn settings (``--workers``, sync workers):

- ours: ``server.wsgi:application()`` (our Features provider, vector tiles,
  access control on: every request goes through the keys and the visibility rule);
- stock: ``pygeoapi.flask_app:APP`` with pygeoapi's own providers on the same
  data: SQLiteGPKG on a copy of the city's GeoPackage (it writes into the file
  it serves, so never the catalog itself), PostgreSQL on the version's table
  in PostGIS, and MVT-postgresql for the tiles on PostGIS (pygeoapi has no
  tile provider that builds tiles from a GeoPackage: n/a).

Cases, each for ``--duration`` seconds with ``--connections`` connections
(wrk's Lua picks a new random target per request):

- items: ``/collections/buildings/items?bbox=<random 150 m box>&limit=100``;
- item: ``/collections/buildings/items/<random id>``;
- tile: ``/collections/buildings/tiles/WebMercatorQuad/16/<row>/<col>`` of a random z16 tile over the layer.

The table gives requests/s, p50/p95/p99 latency, errors (socket errors and
non-2xx answers), and ours/stock throughput. Targets (issue 11): 0 errors,
items >= 20x stock SQLiteGPKG and >= 2x stock PostgreSQL, p95 < 100 ms.

Each case is preceded by ``--warmup`` seconds of the same load, not measured
(each worker imports, connects and fills its caches first).

``--in-process N`` also times N items requests through our app alone
(Flask's test client in a child process: no HTTP, no queue), the CPU cost
per request that bounds what 2 workers can serve.

On a shared machine, ``--rounds N`` runs each case N times with the servers
interleaved (A B A B ...): the table gives each server's median and the
ours/stock ratio per round (median and range), with the load average seen.
``--before TREE`` also serves our app from another source tree (e.g.
``git archive`` of the previous commit): the ours/before column is the gain
of a change under the same load.

Usage: .venv/bin/python benchmarks/bench_server.py [--features 100000] [--duration 30] [--connections 32]
       [--warmup 5] [--workers 2] [--backends geopackage,postgis] [--cases items,item,tile] [--in-process N]
       [--rounds N] [--before TREE] [--no-stock]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer

from gis.backends import open_backend
from gis.catalog.service import Catalog
from gis.testing.postgres import PostgresCluster, free_port

HERE = Path(__file__).resolve().parent
LAYER = "buildings"
CASES = ("items", "item", "tile")


def buildings(count: int, seed: int = 0) -> gpd.GeoDataFrame:
    """Rectangles of 8-20 m on a 25 m grid near Paris, with ten attributes."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(count)))
    index = np.arange(count)
    x = 645000.0 + (index % side) * 25.0
    y = 6855000.0 + (index // side) * 25.0
    width, depth = rng.uniform(8, 20, count), rng.uniform(8, 20, count)
    uses = np.array(["habitation", "commerce", "bureaux", "équipement", "industrie"])
    roofs = np.array(["zinc", "ardoise", "terrasse", "tuile"])
    return gpd.GeoDataFrame({
        "building_id": [f"B{i:07d}" for i in index],
        "height_m": np.round(rng.uniform(6, 35, count), 2),
        "floors": rng.integers(1, 10, count).astype("int32"),
        "ground_m": np.round(rng.uniform(28, 60, count), 2),
        "area_m2": np.round(width * depth, 1),
        "year": rng.integers(1850, 2024, count).astype("int32"),
        "usage": uses[rng.integers(0, len(uses), count)],
        "roof": roofs[rng.integers(0, len(roofs), count)],
        "commune": np.full(count, "75105"),
        "points": rng.integers(50, 5000, count).astype("int32"),
    }, geometry=shapely.box(x, y, x + width, y + depth), crs="EPSG:2154")


# -- the city and the two servers ---------------------------------------------------------------------


def publish(store: dict, frame: gpd.GeoDataFrame) -> str:
    """Publish the buildings into a new city; return the version's table name."""
    with Catalog(open_backend(store), crs="EPSG:2154") as catalog:
        published = catalog.publish(frame, LAYER, licence="ODbL-1.0", access="open", title="Bâtiments")
    return published.version.storage.removeprefix("table:")


def lutece_yml(folder: Path, store: dict, name: str = "ours") -> Path:
    """Our server's configuration; each of our servers has its own tile cache (none builds the other's tiles)."""
    path = folder / f"lutece-{name}.yml"
    lines = ["store:"] + [f"  {key}: {json.dumps(value)}" for key, value in store.items()]
    path.write_text("\n".join(lines) + f"\nserver:\n  max_items: 1000\n  tile_cache: {json.dumps(str(folder / f'tiles-{name}'))}\n",
                    encoding="utf-8")
    return path


def stock_config(folder: Path, port: int, backend: str, table: str, store: dict, cluster, database) -> Path:
    """A pygeoapi configuration serving the same table with pygeoapi's own providers."""
    import yaml

    if backend == "geopackage":
        copy = folder / "stock.gpkg"
        shutil.copyfile(Path(store["path"]) / "catalog.gpkg", copy)
        providers = [{"type": "feature", "name": "SQLiteGPKG", "data": str(copy), "id_field": "fid",
                      "table": table}]
    else:
        data = {"host": "127.0.0.1", "port": cluster.port, "dbname": database, "user": "postgres",
                "search_path": ["lutece_data", "public"]}
        providers = [{"type": "feature", "name": "PostgreSQL", "data": data, "id_field": "lutece_fid",
                      "table": table, "geom_field": "geometry"},
                     {"type": "tile", "name": "MVT-postgresql", "data": data, "id_field": "lutece_fid",
                      "table": table, "geom_field": "geometry",
                      "options": {"zoom": {"min": 0, "max": 20}},
                      "format": {"name": "pbf", "mimetype": "application/vnd.mapbox-vector-tile"}}]
    config = {
        "server": {"bind": {"host": "127.0.0.1", "port": port}, "url": f"http://127.0.0.1:{port}",
                   "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8", "languages": ["en-US"],
                   "pretty_print": False, "limits": {"default_items": 10, "max_items": 1000},
                   "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"}},
        "logging": {"level": "ERROR"},
        "metadata": {"identification": {"title": "stock", "description": "stock", "keywords": ["x"],
                                        "keywords_type": "theme", "terms_of_service": "", "url": ""},
                     "license": {"name": "ODbL", "url": ""}, "provider": {"name": "x", "url": ""},
                     "contact": {"name": "x", "position": "x", "address": "x", "city": "x", "stateorprovince": "x",
                                 "postalcode": "x", "country": "x", "phone": "x", "fax": "x", "email": "x",
                                 "url": "x", "hours": "x", "instructions": "x", "role": "pointOfContact"}},
        "resources": {LAYER: {"type": "collection", "title": "Buildings", "description": "Buildings",
                              "keywords": ["buildings"], "links": [],
                              "extents": {"spatial": {"bbox": [-180, -90, 180, 90],
                                                      "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
                              "providers": providers}},
    }
    path = folder / "pygeoapi.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


class Gunicorn:
    """A gunicorn server in its own process group, stopped (SIGTERM, then SIGKILL) at the end."""

    def __init__(self, target: str, port: int, workers: int, env: dict, log: Path, chdir: Path = HERE) -> None:
        self.port, self.log = port, log
        # gunicorn puts its --chdir first on sys.path: the tree whose code it serves
        command = [str(Path(sys.executable).parent / "gunicorn"), target, "--chdir", str(chdir),
                   "--bind", f"127.0.0.1:{port}",
                   "--workers", str(workers), "--worker-class", "sync", "--timeout", "60", "--keep-alive", "5",
                   "--log-level", "warning"]
        # (it also puts the launching folder, $PWD, first: started from the tree itself)
        self.process = subprocess.Popen(command, env={**os.environ, **env, "PWD": str(chdir)}, cwd=chdir,
                                        stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self, path: str, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not answer {path}: {self.log.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


# -- load --------------------------------------------------------------------------------------------

LUA = """
math.randomseed(%(seed)d)
local kind = "%(kind)s"
function request()
  local path
  if kind == "items" then
    local x = %(west)f + math.random() * (%(east)f - %(west)f - %(dx)f)
    local y = %(south)f + math.random() * (%(north)f - %(south)f - %(dy)f)
    path = string.format("/collections/%(layer)s/items?bbox=%%.6f,%%.6f,%%.6f,%%.6f&limit=100&f=json",
                         x, y, x + %(dx)f, y + %(dy)f)
  elseif kind == "item" then
    path = string.format("/collections/%(layer)s/items/%%d?f=json", math.random(1, %(count)d))
  else
    path = string.format("/collections/%(layer)s/tiles/WebMercatorQuad/16/%%d/%%d%(tile_query)s",
                         math.random(%(row0)d, %(row1)d), math.random(%(col0)d, %(col1)d))
  end
  return wrk.format("GET", path)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %%d, "seconds": %%f, "p50": %%f, "p95": %%f, "p99": %%f, ' ..
    '"socket": %%d, "status": %%d}\\n', summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(95) / 1e3, latency:percentile(99) / 1e3, e.connect + e.read + e.write + e.timeout,
    e.status))
end
"""


def z16_range(bounds) -> tuple[int, int, int, int]:
    n = 2 ** 16

    def tile(lon, lat):
        return (int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n), int((lon + 180) / 360 * n))

    top, left = tile(bounds[0], bounds[3])
    bottom, right = tile(bounds[2], bounds[1])
    return top, bottom, left, right


def run_wrk(url: str, kind: str, bounds, count: int, duration: int, connections: int, folder: Path,
            tile_query: str = "") -> dict:
    west, south, east, north = bounds
    row0, row1, col0, col1 = z16_range(bounds)
    script = folder / f"{kind}.lua"
    script.write_text(LUA % {"seed": 42, "kind": kind, "west": west, "east": east, "south": south, "north": north,
                             "dx": 0.002, "dy": 0.00135, "layer": LAYER, "count": count, "row0": row0, "row1": row1,
                             "col0": col0, "col1": col1, "tile_query": tile_query})
    result = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--timeout", "30s",
                             "-s", str(script), url], capture_output=True, text=True, timeout=duration + 120)
    line = next((l for l in result.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {result.stdout[-2000:]} {result.stderr[-2000:]}")
    data = json.loads(line.removeprefix("RESULT "))
    data["rps"] = data["requests"] / data["seconds"]
    data["errors"] = data["socket"] + data["status"]
    return data


def in_process(config: Path, bounds, requests: int) -> float:
    """CPU milliseconds per items request through our app alone (Flask's test client, no HTTP, no queue).

    In a child process: the app reads the GeoPackage with Python's sqlite3,
    and this process has written it with GDAL.
    """
    code = ("import sys, bench_server as b; "
            "print(b.measure_items(sys.argv[1], [float(v) for v in sys.argv[2:6]], int(sys.argv[6])))")
    done = subprocess.run([sys.executable, "-c", code, str(config), *map(str, bounds), str(requests)], cwd=HERE,
                          capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])})
    if done.returncode != 0:
        raise RuntimeError(f"the in-process measure failed: {done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def measure_items(config: str, bounds: list[float], requests: int) -> float:
    """Best of 3 rounds of ``requests`` random items requests (limit=100, the wrk case's box): CPU ms each."""
    import random

    from gis.config import load_config
    from server.app import create_app

    client = create_app(load_config(Path(config))).test_client()
    rng = random.Random(42)
    west, south, east, north = bounds
    urls = []
    for _ in range(requests):
        x, y = rng.uniform(west, east - 0.002), rng.uniform(south, north - 0.00135)
        urls.append(f"/collections/{LAYER}/items?bbox={x:.6f},{y:.6f},{x + 0.002:.6f},{y + 0.00135:.6f}&limit=100")
    for url in urls[:20]:  # imports, connections, caches
        assert client.get(url).status_code == 200
    rounds = []
    for _ in range(3):
        started = time.process_time()
        for url in urls:
            client.get(url)
        rounds.append((time.process_time() - started) / requests * 1000)
    return min(rounds)


# -- one backend -------------------------------------------------------------------------------------


def bench_backend(backend: str, frame, args, folder: Path, cluster) -> list[dict]:
    """Every case on every server of ``backend``, interleaved: per case, ``--rounds`` rounds of each server in turn.

    All servers run at once (idle ones cost nothing but their memory), so a
    round measures them back to back under the same load of the machine.
    """
    database = None
    store = {"backend": backend, "path": str(folder / "city")}
    if backend == "postgis":
        database = "bench_server"
        cluster.create_database(database)
        store["dsn"] = cluster.tcp_dsn(database)
    table = publish(store, frame)
    bounds = Transformer.from_crs(2154, 4326, always_xy=True).transform_bounds(*frame.total_bounds)
    config = lutece_yml(folder, store)
    rows = []
    if args.in_process:
        cost = in_process(config, bounds, args.in_process)
        print(f"{backend}: items in-process {cost:.2f} ms CPU per request (ours, best of 3 x {args.in_process})",
              file=sys.stderr, flush=True)
        rows.append({"backend": backend, "server": "ours", "case": "items", "in_process": cost})
    servers = start_servers(backend, args, folder, store, table, cluster, database)
    try:
        for case in args.cases:
            for round_ in range(1, args.rounds + 1):
                for name, (server, tile_query) in servers.items():
                    if case == "tile" and name == "stock" and backend == "geopackage":
                        if round_ == 1:
                            rows.append({"backend": backend, "server": name, "case": case, "na": True})
                        continue
                    print(f"{backend} {case} round {round_} {name} ...", file=sys.stderr, flush=True)
                    url = f"http://127.0.0.1:{server.port}"
                    query = tile_query if case == "tile" else ""
                    if args.warmup:  # every worker imports, connects and fills its caches first (not measured)
                        run_wrk(url, case, bounds, len(frame), args.warmup, args.connections, folder, query)
                    result = run_wrk(url, case, bounds, len(frame), args.duration, args.connections, folder, query)
                    rows.append({"backend": backend, "server": name, "case": case, "round": round_,
                                 "load": os.getloadavg()[0], **result})
                    # sync workers still answer the requests queued by wrk's closed connections: let them drain,
                    # or the next case measures the previous one's backlog
                    server.wait(f"/collections/{LAYER}/items/1?f=json", timeout=300)
    finally:
        for server, _query in servers.values():
            server.stop()
    return rows


def start_servers(backend: str, args, folder: Path, store: dict, table: str, cluster, database) -> dict:
    """name -> (running Gunicorn, tile query): ours, ``before`` (ours from ``--before``'s tree) and stock."""
    planned = {"ours": ("server.wsgi:application()", {"LUTECE_CONFIG": str(lutece_yml(folder, store, "ours")),
                                                      "PYTHONPATH": str(HERE.parent), "_tree": HERE.parent}, "")}
    if args.before:
        tree = Path(args.before).resolve()
        planned["before"] = ("server.wsgi:application()",
                             {"LUTECE_CONFIG": str(lutece_yml(folder, store, "before")), "PYTHONPATH": str(tree),
                              "_tree": tree}, "")
    if not args.no_stock:
        port = free_port()
        stock = stock_config(folder, port, backend, table, store, cluster, database)
        openapi = folder / "stock-openapi.yml"
        script = ("import sys, pathlib, stock_pygeoapi as s; "
                  "pathlib.Path(sys.argv[2]).write_text(s.openapi_document(sys.argv[1]))")
        made = subprocess.run([sys.executable, "-c", script, str(stock), str(openapi)], cwd=HERE,
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(HERE)})
        if made.returncode != 0:
            raise RuntimeError(f"pygeoapi's OpenAPI document failed: {made.stderr[-3000:]}")
        planned["stock"] = ("stock_pygeoapi:APP", {"PYGEOAPI_CONFIG": str(stock), "PYGEOAPI_OPENAPI": str(openapi),
                                                   "PYTHONPATH": str(HERE), "_port": port}, "?f=mvt")
    servers = {}
    try:
        for name, (target, env, tile_query) in planned.items():
            port = env.pop("_port", None) or free_port()
            tree = env.pop("_tree", HERE)
            server = Gunicorn(target, port, args.workers, env, folder / f"{name}-{backend}.log", chdir=tree)
            servers[name] = (server, tile_query)
            server.wait(f"/collections/{LAYER}/items/1?f=json")
    except BaseException:
        for server, _query in servers.values():
            server.stop()
        raise
    return servers


def _median(values: list[float]) -> float:
    return float(np.median(values))


def table(rows: list[dict], args) -> str:
    """One line per backend, case and server (the median of its rounds), ratios per round with their range."""
    lines = [f"bench_server: {args.features} buildings, {args.connections} connections, {args.duration} s per case "
             f"and round, {args.rounds} round(s) interleaved, {args.workers} gunicorn sync workers each, wrk on "
             f"loopback; load average (1 min) during the runs: {_load_range(rows)}",
             f"{'backend':<11}{'case':<7}{'server':<7}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
             f"{'errors':>8}{'ours/stock':>22}{'ours/before':>22}"]
    done = set()
    for row in rows:
        if "in_process" in row:
            lines.append(f"{row['backend']:<11}{'items':<7}{'ours':<7}   in-process: {row['in_process']:.2f} ms CPU "
                         f"per request (Flask's test client, no HTTP)")
            continue
        if row.get("na"):
            lines.append(f"{row['backend']:<11}{row['case']:<7}{row['server']:<7}"
                         f"   n/a (pygeoapi has no provider building tiles from a GeoPackage)")
            continue
        key = (row["backend"], row["case"], row["server"])
        if key in done:
            continue
        done.add(key)
        same = [r for r in rows if (r["backend"], r["case"], r["server"]) == key and "rps" in r]
        ratios = {other: _ratios(rows, row["backend"], row["case"], other, args.duration)
                  for other in ("stock", "before")} if row["server"] == "ours" else {}
        lines.append(f"{row['backend']:<11}{row['case']:<7}{row['server']:<7}"
                     f"{_median([r['rps'] for r in same]):>9.1f}{_median([r['p50'] for r in same]):>9.1f}"
                     f"{_median([r['p95'] for r in same]):>9.1f}{_median([r['p99'] for r in same]):>9.1f}"
                     f"{sum(r['errors'] for r in same):>8d}{ratios.get('stock', ''):>22}{ratios.get('before', ''):>22}")
    return "\n".join(lines)


def _ratios(rows: list[dict], backend: str, case: str, other: str, duration: int) -> str:
    """ours/other throughput per round: the median and, over several rounds, the range (``n/a``: no such server)."""
    def of(server):
        return {r["round"]: r["rps"] for r in rows if (r["backend"], r["case"], r["server"]) == (backend, case, server)
                and "rps" in r}

    ours, theirs = of("ours"), of(other)
    if not theirs:
        return "n/a" if other == "stock" else ""
    ratios = [ours[n] / theirs[n] if theirs[n] else math.inf for n in sorted(ours) if n in theirs]
    if not ratios:
        return "n/a"
    text = f"{_median(ratios):.1f}x" if all(map(math.isfinite, ratios)) else f">{max(ours.values()) * duration:.0f}x"
    if len(ratios) > 1 and all(map(math.isfinite, ratios)):
        text += f" ({min(ratios):.1f}-{max(ratios):.1f})"
    return text


def _load_range(rows: list[dict]) -> str:
    loads = [r["load"] for r in rows if "load" in r]
    return f"{min(loads):.1f}-{max(loads):.1f}" if loads else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--features", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=5, help="seconds of unmeasured load before each case")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backends", default="geopackage,postgis")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--rounds", type=int, default=1, help="rounds of each case, the servers interleaved")
    parser.add_argument("--before", metavar="TREE",
                        help="also serve our app from another source tree (e.g. a worktree of the previous commit)")
    parser.add_argument("--no-stock", action="store_true", help="leave stock pygeoapi out")
    parser.add_argument("--in-process", type=int, default=0, metavar="N",
                        help="also time N items requests through our app in-process (CPU ms per request)")
    args = parser.parse_args()
    args.cases = [c for c in args.cases.split(",") if c]
    if shutil.which("wrk") is None:
        sys.exit("Error: wrk is not installed; run 'apt-get install wrk' (or bash .ci/system-deps.sh as root)")
    frame = buildings(args.features)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        for backend in args.backends.split(","):
            folder = Path(tmp) / backend
            folder.mkdir()
            cluster = None
            if backend == "postgis":
                cluster = PostgresCluster()
                cluster.start()
            try:
                rows += bench_backend(backend, frame, args, folder, cluster)
            finally:
                if cluster is not None:
                    cluster.stop()
    print(table(rows, args))
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
