"""Buildings from a real IGN LiDAR HD tile with no cadastre: the lidar's own footprints as input (issue 14).

The shipped ``lidar-to-2d`` makes the footprints (``layers.gpkg``, layer ``footprints``) from the dense
tile of ``../shared/data/lidar`` (50 m x 50 m, 34 points/m2; the sparse one has too few points per roof
for a footprint), then the shipped ``lidar-to-buildings`` reconstructs them. The oracle is IGN's own
classification, which the reconstruction only reads through the footprints and the roof points:

- every shell (the tiles' glb, one feature per building) is closed, consistently wound and outward
  (trimesh), and so is every CityJSON solid;
- each building's modelled top (the shell's highest vertex) is within 1.5 m of the 90th percentile of
  IGN's building-class points inside its footprint, and its floor within 0.5 m of the median of IGN's
  ground points within 5 m of the footprint (the terrain at its foot on this flat tile: 20-22 m).
"""

from __future__ import annotations

import json

import geopandas as gpd
import laspy
import numpy as np
import pytest
import shapely
import trimesh
from click.testing import CliRunner

from gis.asprs import BUILDING, GROUND
from gis.cli import cli

pytestmark = pytest.mark.ign
MIN_DENSITY = 10.0  # points/m2: below it the lidar-to-2d footprints are too coarse to build on


@pytest.fixture(scope="module")
def dense_tile(ign_tiles):
    for tile in ign_tiles:
        header = laspy.open(tile).header
        area = np.prod(header.maxs[:2] - header.mins[:2])
        if header.point_count / area >= MIN_DENSITY:
            return tile
    pytest.skip(f"no IGN tile of {MIN_DENSITY} points/m2 or more")


@pytest.fixture(scope="module")
def built(dense_tile, tmp_path_factory):
    out = tmp_path_factory.mktemp("ign-buildings")
    runner = CliRunner()
    result = runner.invoke(cli, ["-q", "pipeline", "run", "lidar-to-2d", "--input", str(dense_tile),
                                 "--output", str(out / "2d"), "--stage.contours.interval=5.0"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["-q", "pipeline", "run", "lidar-to-buildings", "--input", str(dense_tile),
                                 "--output", str(out / "3d"),
                                 f"--stage.buildings.footprints={out / '2d' / 'layers.gpkg'}",
                                 "--stage.buildings.footprints_layer=footprints", "--stage.buildings.id_field="])
    assert result.exit_code == 0, result.output
    return out / "3d"


def test_every_lidar_footprint_is_a_closed_outward_shell(built):
    from tiles.mesh import read_glb

    layer = gpd.read_file(built / "buildings.gpkg")
    assert len(layer) >= 1 and (layer["lod"] != "0").all()
    print(layer[["id", "lod", "lod_reason", "roof_type", "height", "footprint_check"]].to_string())
    checked = 0
    for path in sorted((built / "buildings_3dtiles").glob("*.glb")):
        content = read_glb(path.read_bytes())
        for feature in range(len(content.table)):
            mine = np.flatnonzero(content.feature_ids == feature)
            mesh = trimesh.Trimesh(content.positions[mine], np.arange(len(mine)).reshape(-1, 3))
            assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
            checked += 1
    assert checked == len(layer)
    document = json.loads((built / "buildings.city.json").read_text())
    assert {g["lod"] for b in document["CityObjects"].values() for g in b["geometry"]} >= {"1.2", "1.3"}


def test_heights_agree_with_igns_classes(built, dense_tile):
    las = laspy.read(dense_tile)
    xyz, classes = np.column_stack([las.x, las.y, las.z]), np.asarray(las.classification)
    roofs, ground = xyz[classes == BUILDING], xyz[classes == GROUND]
    document = json.loads((built / "buildings.city.json").read_text())
    scale, translate = np.array(document["transform"]["scale"]), np.array(document["transform"]["translate"])
    vertices = np.array(document["vertices"]) * scale + translate
    layer = gpd.read_file(built / "buildings.gpkg").set_index("id")
    for identifier, building in document["CityObjects"].items():
        highest = max(building["geometry"], key=lambda g: float(g["lod"]))
        used = np.unique(np.array(list(_indices(highest["boundaries"]))))
        shell = vertices[used]
        footprint = layer.geometry[identifier]
        inside = roofs[shapely.contains_xy(footprint, roofs[:, 0], roofs[:, 1])]
        around = ground[shapely.contains_xy(footprint.buffer(5.0), ground[:, 0], ground[:, 1])]
        top, foot = np.percentile(inside[:, 2], 90), np.median(around[:, 2])
        print(f"{identifier}: shell {shell[:, 2].min():.2f}-{shell[:, 2].max():.2f} m, IGN ground {foot:.2f} m, "
              f"IGN roofs p90 {top:.2f} m")
        assert abs(shell[:, 2].max() - top) <= 1.5, identifier
        assert abs(shell[:, 2].min() - foot) <= 0.5, identifier


def _indices(boundaries):
    for item in boundaries:
        if isinstance(item, list):
            yield from _indices(item)
        else:
            yield item
