"""The district's vector layers and its ground truth, as GeoPackages and a raster.

``district.gpkg`` is what a city would hold: a cadastre whose footprints are
imperfect (a few shifted by 1-2 m, a few missing), street centrelines with
widths, a tree inventory with heights rounded to the metre, the river and the
district boundary. ``truth.gpkg`` and ``truth-dtm.tif`` hold what the lidar
was made from, to measure the pipelines' accuracy against.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
import rasterio.windows
import shapely
from rasterio.transform import Affine

from pipelines.synthetic import townhall
from pipelines.synthetic.scene import Scene

CRS = "EPSG:2154"
DTM_RESOLUTION = 0.5
MISSING_RATIO, SHIFTED_RATIO = 0.03, 0.05
FIXED_DATE = "2026-01-01T00:00:00.000Z"


def cadastre_errors(scene: Scene) -> pd.DataFrame:
    """Which true buildings the cadastre misses or shifts, and by how much (deterministic)."""
    rng = np.random.default_rng([scene.seed, 4])
    count = len(scene.buildings)
    draw = rng.random(count)
    kind = np.where(draw < MISSING_RATIO, "missing", np.where(draw < MISSING_RATIO + SHIFTED_RATIO, "shifted", "exact"))
    kind[[b.kind == "townhall" for b in scene.buildings]] = "exact"  # the town hall is surveyed
    distance = np.where(kind == "shifted", rng.uniform(1.0, 2.0, count), 0.0)
    angle = rng.uniform(0, 2 * np.pi, count)
    return pd.DataFrame({"building_id": [b.id for b in scene.buildings], "status": kind,
                         "dx": distance * np.cos(angle), "dy": distance * np.sin(angle), "offset_m": distance})


def write_district_vectors(scene: Scene, path: Path) -> dict[str, int]:
    """Write the city-side layers; return the feature count per layer."""
    errors = cadastre_errors(scene)
    present = errors["status"] != "missing"
    footprints = gpd.GeoSeries([b.footprint for b in scene.buildings], crs=CRS)[present.to_numpy()]
    shifted = errors[present]
    cadastre = gpd.GeoDataFrame({
        "cadastre_id": [f"75105000AB{i:04d}" for i in range(len(shifted))],
        "commune": "75105",
    }, geometry=[shapely.affinity.translate(g, dx, dy) for g, dx, dy in zip(footprints, shifted["dx"], shifted["dy"])], crs=CRS)
    streets = gpd.GeoDataFrame({
        "name": [s.name for s in scene.streets], "kind": [s.kind for s in scene.streets],
        "width_m": [round(s.width, 1) for s in scene.streets],
    }, geometry=[s.centreline for s in scene.streets], crs=CRS)
    rng = np.random.default_rng([scene.seed, 5])
    jitter = rng.normal(0.0, 0.3, (len(scene.trees), 2))
    inventory = gpd.GeoDataFrame({
        "tree_id": [t.id for t in scene.trees], "species": [t.species for t in scene.trees],
        "height_m": [float(round(t.height)) for t in scene.trees],
    }, geometry=gpd.points_from_xy([t.x + dx for t, (dx, _) in zip(scene.trees, jitter)],
                                   [t.y + dy for t, (_, dy) in zip(scene.trees, jitter)]), crs=CRS)
    boundary = gpd.GeoDataFrame({"name": ["Quartier synthétique de Lutèce"], "area_m2": [scene.boundary.area]},
                                geometry=[scene.boundary], crs=CRS)
    river = gpd.GeoDataFrame({"name": ["La Seine (synthétique)"], "water_z": [30.0]}, geometry=[scene.river], crs=CRS)
    layers = {"buildings_cadastre": cadastre, "streets": streets, "trees": inventory, "boundary": boundary, "river": river}
    return _write_layers(layers, path)


def write_truth(scene: Scene, path: Path) -> dict[str, int]:
    """Write the true footprints, trees and rooms; return the feature count per layer."""
    errors = cadastre_errors(scene).set_index("building_id")
    buildings = scene.buildings
    footprints = gpd.GeoDataFrame({
        "building_id": [b.id for b in buildings], "kind": [b.kind for b in buildings],
        "roof_type": [b.roof_type for b in buildings], "ground_z": [b.ground_z for b in buildings],
        "eave_z": [b.eave_z for b in buildings], "top_z": [b.top_z for b in buildings],
        "height_m": [round(b.height, 2) for b in buildings], "area_m2": [round(b.footprint.area, 2) for b in buildings],
        "cadastre": [errors.loc[b.id, "status"] for b in buildings],
        "cadastre_offset_m": [round(float(errors.loc[b.id, "offset_m"]), 2) for b in buildings],
    }, geometry=[b.footprint for b in buildings], crs=CRS)
    trees = gpd.GeoDataFrame({
        "tree_id": [t.id for t in scene.trees], "species": [t.species for t in scene.trees],
        "height_m": [t.height for t in scene.trees], "crown_radius_m": [t.crown_radius for t in scene.trees],
        "crown_base_m": [t.crown_base for t in scene.trees], "ground_z": [t.ground_z for t in scene.trees],
        "top_z": [round(t.ground_z + t.height, 2) for t in scene.trees],
    }, geometry=gpd.points_from_xy([t.x for t in scene.trees], [t.y for t in scene.trees]), crs=CRS)
    layers = {"footprints": footprints, "trees": trees}
    if scene.townhall_site is not None:
        site = scene.townhall_site
        layers["rooms"] = gpd.GeoDataFrame(townhall.room_truth(site), geometry=list(townhall.rooms_l93(site)), crs=CRS)
    return _write_layers(layers, path)


def _write_layers(layers: dict[str, gpd.GeoDataFrame], path: Path) -> dict[str, int]:
    # GDAL stamps each table with the current time unless told otherwise; a fixed
    # date keeps the GeoPackage byte-for-byte the same for the same seed.
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_DATE})
    try:
        for name, frame in layers.items():
            frame.to_file(path, layer=name, driver="GPKG", engine="pyogrio")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
    return {name: len(frame) for name, frame in layers.items()}


def write_truth_dtm(scene: Scene, path: Path, resolution: float = DTM_RESOLUTION, rows_per_block: int = 256) -> tuple[int, int]:
    """The true terrain sampled at cell centres, as a tiled, compressed GeoTIFF.

    Written a band of rows at a time, so memory does not grow with the district.
    """
    x0, y0 = scene.origin
    size = int(round(scene.size / resolution))
    centres = (np.arange(size) + 0.5) * resolution
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": "float32", "crs": CRS,
               "transform": Affine(resolution, 0.0, x0, 0.0, -resolution, y0 + scene.size), "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate", "predictor": 3, "nodata": -9999.0}
    with rasterio.open(path, "w", **profile) as dataset:
        for first in range(0, size, rows_per_block):
            rows = centres[first:first + rows_per_block]
            xs, ys = np.meshgrid(x0 + centres, y0 + scene.size - rows)
            window = rasterio.windows.Window(0, first, size, len(rows))
            dataset.write(scene.ground(xs, ys).astype(np.float32), 1, window=window)
        dataset.update_tags(description="True terrain of the synthetic district (NGF-IGN69 heights, water flattened)")
    return size, size
