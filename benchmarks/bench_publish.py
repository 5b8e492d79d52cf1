"""Benchmark of publication into the city GIS, against a plain write of the same GeoDataFrame.

Builds a layer of N building-like polygons (default 100,000) with a few
attributes, then times side by side in the same run, best of ``--repeat``:

- plain: the GeoDataFrame written with pyogrio into a new GeoPackage (the floor);
- publication: ``Catalog.publish`` of that GeoPackage into an embedded city GIS
  (gates, checksum, the version's table with its R-tree, the atomic switch).

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
        tmp = Path(tmp)
        plain = best_of(args.repeat, lambda n: frame.to_file(tmp / f"plain{n}.gpkg", engine="pyogrio"))
        product = tmp / "plain0.gpkg"
        catalog = Catalog(GeoPackageBackend(tmp / "city"), retention=args.repeat + 1)
        published = best_of(args.repeat, lambda n: catalog.publish(
            product, "buildings", licence="ODbL-1.0", access="open", title="Bâtiments", note=f"run {n}"))
        catalog.close()
    print(f"{args.features:,} polygons, best of {args.repeat}")
    print(f"{'case':48} {'seconds':>8} {'ratio':>7}")
    print(f"{'plain pyogrio write of the GeoDataFrame (GPKG)':48} {plain:8.2f} {1.0:7.2f}")
    print(f"{'publication into the GeoPackage city GIS':48} {published:8.2f} {published / plain:7.2f}")


if __name__ == "__main__":
    main()
