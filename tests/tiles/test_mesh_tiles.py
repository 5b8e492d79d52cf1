"""The mesh writer (tiles/mesh.py): valid glTF, metadata read back as written, sound quadtree, exact placement."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyproj
import pytest
from tiles_support import validate_gltf

from tiles.geo import HeightModel, Placement
from tiles.mesh import FeatureMeshes, read_glb, write_mesh_tileset
from tiles.tileset import check_tileset, iter_tiles

LAMBERT93_PROJ = "+proj=lcc +lat_0=46.5 +lon_0=3 +lat_1=49 +lat_2=44 +x_0=700000 +y_0=6600000 +ellps=GRS80"
# a closed unit cube, counter-clockwise seen from outside
CUBE_VERTICES = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], float)
CUBE_FACES = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
                       [1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]])
COUNT = 1200
MAX_FEATURES = 100


@pytest.fixture(scope="module")
def boxes() -> FeatureMeshes:
    """COUNT boxes scattered over 1 km of Paris (Lambert-93), with text, integer and float attributes."""
    rng = np.random.default_rng(4)
    origins = np.column_stack([651000 + rng.uniform(0, 1000, COUNT), 6861000 + rng.uniform(0, 1000, COUNT),
                               rng.uniform(30, 40, COUNT)])
    sizes = np.column_stack([rng.uniform(5, 20, COUNT), rng.uniform(5, 20, COUNT), rng.uniform(6, 30, COUNT)])
    vertices = (CUBE_VERTICES[None] * sizes[:, None] + origins[:, None]).reshape(-1, 3)
    faces = (CUBE_FACES[None] + 8 * np.arange(COUNT)[:, None, None]).reshape(-1, 3)
    rmse = rng.uniform(0, 0.3, COUNT)
    rmse[::7] = np.nan  # not computed for some
    properties = pd.DataFrame({"id": [f"75105000AB{i:04d}-é" for i in range(COUNT)], "height": sizes[:, 2],
                               "points": rng.integers(0, 10_000, COUNT), "rmse": rmse,
                               "roof_type": rng.choice(["flat", "gable", ""], COUNT), "date": ""})
    return FeatureMeshes(vertices, faces, np.repeat(np.arange(COUNT), 12), properties)


@pytest.fixture(scope="module")
def tileset(boxes, tmp_path_factory):
    out = tmp_path_factory.mktemp("mesh") / "buildings"
    placement = Placement(pyproj.CRS("EPSG:2154"), HeightModel.resolve())
    write_mesh_tileset(boxes, placement, out, max_features=MAX_FEATURES, metadata={"product": "test"})
    return out


def test_every_glb_passes_the_khronos_validator(tileset):
    files = sorted(tileset.glob("*.glb"))
    assert len(files) >= COUNT / MAX_FEATURES
    verdicts = validate_gltf(files)
    assert [v for v in verdicts if v["errors"] or v["warnings"]] == []


def test_metadata_read_back_equals_the_input(tileset, boxes):
    tables = [read_glb(path.read_bytes()).table for path in sorted(tileset.glob("*.glb"))]
    read = pd.concat(tables).set_index("id").sort_index()
    expected = boxes.properties.set_index("id").sort_index()
    assert len(read) == COUNT and read.index.is_unique  # every feature once
    pd.testing.assert_frame_equal(read[expected.columns], expected, check_dtype=False)


def test_each_triangle_carries_its_feature(tileset, boxes):
    for path in sorted(tileset.glob("*.glb")):
        content = read_glb(path.read_bytes())
        assert len(content.table) <= MAX_FEATURES
        per_feature = np.bincount(content.feature_ids, minlength=len(content.table))
        assert (per_feature == 36).all()  # 12 triangles of 3 vertices, none lost to another feature
        heights = content.table["height"].to_numpy()
        z = content.positions[:, 2]
        spans = np.array([np.ptp(z[content.feature_ids == f]) for f in range(len(content.table))])
        assert np.allclose(spans, heights, atol=5e-3)  # the local frame is level at its origin only (curvature)


def test_tileset_structure_and_geometric_error_per_level(tileset):
    report = check_tileset(tileset / "tileset.json")
    assert report.problems == []
    assert report.contents == len(list(tileset.glob("*.glb")))
    document = json.loads((tileset / "tileset.json").read_text())
    assert document["asset"]["version"] == "1.1"
    assert document["asset"]["extras"]["lutece"]["geoid"] == "EGM96 (egm96_15.gtx)"
    for tile, _ in iter_tiles(document["root"]):
        for child in tile.get("children", []):
            expected = tile["geometricError"] / 2 if child.get("children") else 0.0
            assert child["geometricError"] == pytest.approx(expected)
        assert ("content" in tile) == (not tile.get("children"))


def test_vertices_are_placed_by_proj_through_the_geoid(tileset, boxes):
    """Every decoded vertex, through the tileset's transforms, is an input vertex placed by PROJ and EGM96."""
    contents = []
    check_tileset(tileset / "tileset.json", contents)
    reference = pyproj.Transformer.from_pipeline(
        f"+proj=pipeline +step +inv {LAMBERT93_PROJ} +step +proj=vgridshift +grids=/usr/share/proj/egm96_15.gtx "
        "+multiplier=1 +step +proj=cart +ellps=GRS80")
    expected = np.column_stack(reference.transform(*boxes.vertices.T))
    from scipy.spatial import cKDTree

    distance, _ = cKDTree(expected).query(np.concatenate([c.ecef for c in contents]))
    assert distance.max() < 0.01
