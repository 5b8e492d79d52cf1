"""The shipped pipeline lidar-to-3dtiles: subtrees per lidar file on the executor, one root, only changes rebuilt."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import geopandas as gpd
import laspy
import numpy as np
import pytest
import shapely
from tiles_support import validate_gltf

from gis.asprs import NOISES
from pipelines.cli import shipped_pipelines
from pipelines.plan import build_plan
from pipelines.spec import load_pipeline
from pipelines.tiles3d import is_tiles3d, run_tiles3d
from tiles.tileset import check_tileset


def shipped(inputs: list[Path], output: Path, streets: Path) -> object:
    changes = {tag: {"max_points": 20_000} for tag in ("full", "streets", "terrain")}
    changes["streets"]["streets"] = str(streets)
    changes["read"] = {"filename": [str(p) for p in inputs]}
    spec = load_pipeline(shipped_pipelines()["lidar-to-3dtiles"], changes)
    spec = type(spec)(spec.name, spec.stages, output, spec.source)
    plan = build_plan(spec)
    assert is_tiles3d(plan)
    return plan


def split_in_two(source: Path, folder: Path) -> list[Path]:
    """The west and east halves of a lidar file, as two lidar tiles."""
    las = laspy.read(source)
    middle = (las.header.mins[0] + las.header.maxs[0]) / 2
    halves = []
    for name, mask in (("west", las.x < middle), ("east", las.x >= middle)):
        part = laspy.LasData(las.header)
        part.points = las.points[np.asarray(mask)]
        part.write(folder / f"{name}.laz")
        halves.append(folder / f"{name}.laz")
    return halves


def file_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def halves(district, tmp_path_factory) -> list[Path]:
    return split_in_two(district / "district.laz", tmp_path_factory.mktemp("halves"))


@pytest.mark.slow
def test_two_tiles_joined_and_only_a_changed_one_rebuilt(district, halves, tmp_path):
    output = tmp_path / "products"
    streets = district / "district.gpkg"
    first = run_tiles3d(shipped(halves, output, streets))
    assert [p.name for p in first.products] == ["pointcloud_full", "pointcloud_streets", "pointcloud_terrain"]
    source = laspy.read(district / "district.laz")
    contents = []
    report = check_tileset(output / "pointcloud_full" / "tileset.json", contents)
    assert report.problems == []
    root = json.loads((output / "pointcloud_full" / "tileset.json").read_text())
    assert [c["content"]["uri"] for c in root["root"]["children"]] == ["west/tileset.json", "east/tileset.json"]
    classes = np.concatenate([c.attributes["classification"] for c in contents])
    kept = ~np.isin(np.asarray(source.classification), NOISES)
    assert np.array_equal(np.bincount(classes, minlength=256), np.bincount(source.classification[kept], minlength=256))
    for name in ("pointcloud_streets", "pointcloud_terrain"):
        assert check_tileset(output / name / "tileset.json").problems == []
    lineage = json.loads((output / "pointcloud_full.lineage.json").read_text())["layers"]["full"]
    assert {Path(i["path"]).name for i in lineage["inputs"]} == {"west.laz", "east.laz"}
    assert lineage["heights"]["geoid"] == "EGM96 (egm96_15.gtx)"

    again = run_tiles3d(shipped(halves, output, streets))
    assert again.tiles_reused == 2 and again.products == []

    before = file_hashes(output / "pointcloud_full")
    east = laspy.read(halves[1])
    removed_kept = int(not np.isin(east.classification[0], NOISES))
    east.points = east.points[1:]  # one point fewer in the east tile
    east.write(halves[1])
    third = run_tiles3d(shipped(halves, output, streets))
    assert third.tiles_reused == 1 and len(third.products) == 3
    after = file_hashes(output / "pointcloud_full")
    west = {name for name in before if name.startswith("west/")}
    assert west and all(after[name] == before[name] for name in west)  # the unchanged subtree as it was
    assert after["tileset.json"] != before["tileset.json"]
    total = sum(json.loads((output / "pointcloud_full" / f"{half}/tileset.json").read_text())["asset"]["extras"]
                ["lutece"]["points"] for half in ("west", "east"))
    assert total == kept.sum() - removed_kept


@pytest.mark.slow
def test_dask_gives_the_same_tileset(district, halves, tmp_path):
    streets = district / "district.gpkg"
    in_process = run_tiles3d(shipped(halves, tmp_path / "a", streets), workers=0)
    on_dask = run_tiles3d(shipped(halves, tmp_path / "b", streets), workers=2)
    assert len(in_process.products) == len(on_dask.products) == 3
    for name in ("pointcloud_terrain", "pointcloud_streets"):
        a, b = file_hashes(tmp_path / "a" / name), file_hashes(tmp_path / "b" / name)
        assert a == b


@pytest.mark.ign
@pytest.mark.slow
def test_real_ign_tiles_through_the_shipped_pipeline(ign_tiles, tmp_path):
    """IGN LiDAR HD tiles: every product passes the structure checks, every .glb the validator."""
    streets = tmp_path / "streets.gpkg"
    lines = []
    for tile in ign_tiles:
        header = laspy.open(tile).header
        y = (header.mins[1] + header.maxs[1]) / 2
        lines.append(shapely.LineString([(header.mins[0], y), (header.maxs[0], y)]))
    gpd.GeoDataFrame({"width_m": [20.0] * len(lines)}, geometry=lines, crs="EPSG:2154").to_file(streets, layer="streets")
    output = tmp_path / "products"
    result = run_tiles3d(shipped(ign_tiles, output, streets))
    assert len(result.products) == 3
    total = sum(laspy.open(t).header.point_count for t in ign_tiles)
    noise = 0
    for tile in ign_tiles:
        noise += int(np.isin(np.asarray(laspy.read(tile).classification), NOISES).sum())
    for product in result.products:
        contents = []
        report = check_tileset(product / "tileset.json", contents)
        assert report.problems == [], (product.name, report.problems[:3])
        if product.name == "pointcloud_full":
            assert report.points == total - noise
    glbs = sorted((output / "pointcloud_full").rglob("*.glb"))
    failing = [v for v in validate_gltf(glbs) if v["errors"]]
    assert not failing, failing[:3]


def test_the_pipeline_refuses_before_any_work(district, tmp_path):
    """A 3D Tiles writer among raster writers, a streets file that does not exist: refused, nothing written."""
    from gis.errors import InputError
    from pipelines.spec import parse_pipeline

    mixed = parse_pipeline(f"""
pipeline:
  - {{type: readers.las, filename: {district / 'district.laz'}}}
  - {{type: writers.3dtiles, tag: full}}
  - {{type: writers.dsm, tag: dsm}}
""")
    with pytest.raises(InputError, match="cannot share a pipeline with other writers"):
        is_tiles3d(build_plan(mixed))
    output = tmp_path / "products"
    plan = shipped([district / "district.laz"], output, tmp_path / "no-streets.gpkg")
    with pytest.raises(InputError, match="no-streets.gpkg: no such file"):
        run_tiles3d(plan)
    assert not any(p.name.startswith("pointcloud") for p in output.iterdir())
