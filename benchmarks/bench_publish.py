"""Benchmark of publication into the city GIS, against a plain write of the same GeoDataFrame.

Builds a layer of N building-like polygons (default 100,000) with a few
attributes, then times side by side in the same run, best of ``--repeat``:

- plain: the GeoDataFrame written with pyogrio into a new GeoPackage (the floor);
- publication: ``Catalog.publish`` of that GeoPackage into an embedded city GIS
  (gates, checksum, the version's table with its R-tree, the atomic switch);
- on PostGIS (a throw-away PostgreSQL cluster, as the tests start): a plain
  CREATE TABLE + COPY of the same rows as EWKB, and the publication.

The target of issue 4 is publication / plain <= 1.5.
Usage: .venv/bin/python benchmarks/bench_publish.py [--features 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from gis.backends.geopackage import GeoPackageBackend
from gis.catalog.service import Catalog


def buildings(count: int, seed: int = 0) -> gpd.GeoDataFrame:
    """Rectangles of 8-20 m on a 25 m grid near Paris, with heights and names."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(count)))
    index = np.arange(count)
    x = 640000.0 + (index % side) * 25.0
    y = 6850000.0 + (index // side) * 25.0
    width, depth = rng.uniform(8, 20, count), rng.uniform(8, 20, count)
    geometry = shapely.box(x, y, x + width, y + depth)
    return gpd.GeoDataFrame({
        "building_id": [f"B{i:07d}" for i in index], "height_m": np.round(rng.uniform(6, 35, count), 2),
        "use": rng.choice(["logement", "bureau", "commerce", "équipement"], count),
    }, geometry=geometry, crs="EPSG:2154")


def best_of(repeat: int, function) -> float:
    times = []
    for attempt in range(repeat):
        start = time.perf_counter()
        function(attempt)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    frame = buildings(args.features)
    with tempfile.TemporaryDirectory(prefix="lutece-bench-publish-") as tmp:
        Path(tmp).chmod(0o755)  # the PostgreSQL server runs as postgres
        tmp = Path(tmp)
        plain = best_of(args.repeat, lambda n: frame.to_file(tmp / f"plain{n}.gpkg", engine="pyogrio"))
        product = tmp / "plain0.gpkg"
        catalog = Catalog(GeoPackageBackend(tmp / "city"), retention=args.repeat + 1)
        published = best_of(args.repeat, lambda n: catalog.publish(
            product, "buildings", licence="ODbL-1.0", access="open", title="Bâtiments", note=f"run {n}"))
        catalog.close()
        postgis = postgis_figures(frame, tmp, args.repeat)
    print(f"{args.features:,} polygons, best of {args.repeat}")
    print(f"{'case':48} {'seconds':>8} {'ratio':>7}")
    print(f"{'plain pyogrio write of the GeoDataFrame (GPKG)':48} {plain:8.2f} {1.0:7.2f}")
    print(f"{'publication into the GeoPackage city GIS':48} {published:8.2f} {published / plain:7.2f}")
    if postgis is None:
        print("PostGIS: skipped (no PostgreSQL 15 binaries; `make test` installs them)")
        return
    copy, published_pg = postgis
    print(f"{'plain CREATE TABLE + COPY (PostGIS)':48} {copy:8.2f} {1.0:7.2f}")
    print(f"{'publication into the PostGIS city GIS':48} {published_pg:8.2f} {published_pg / copy:7.2f}")


def postgis_figures(frame: gpd.GeoDataFrame, tmp: Path, repeat: int) -> tuple[float, float] | None:
    """(plain COPY seconds, publication seconds) on a throw-away cluster, or None without PostgreSQL."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "gis"))
    from postgis_server import PostgresCluster, missing_binaries

    if missing_binaries():
        return None
    import psycopg

    from gis.backends.postgis import PostGISBackend

    cluster = PostgresCluster()
    try:
        cluster.start()
        cluster.create_database("bench")
        dsn = cluster.dsn("bench")
        rows = list(zip(frame["building_id"], frame["height_m"].tolist(), frame["use"],
                        shapely.to_wkb(frame.geometry.values, hex=True, include_srid=True)))

        def copy(attempt: int) -> None:
            with psycopg.connect(dsn) as con:
                con.execute(f"CREATE TABLE plain{attempt} (building_id text, height_m float8, use text, "
                            "geom geometry(Polygon, 2154))")
                with con.cursor().copy(f"COPY plain{attempt} FROM STDIN") as stream:
                    for row in rows:
                        stream.write_row(row)

        plain = best_of(repeat, copy)
        product = tmp / "plain0.gpkg"
        catalog = Catalog(PostGISBackend({"dsn": dsn, "path": str(tmp / "pg-files")}), retention=repeat + 1)
        published = best_of(repeat, lambda n: catalog.publish(
            product, "buildings", licence="ODbL-1.0", access="open", title="Bâtiments", note=f"run {n}"))
        catalog.close()
        return plain, published
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
