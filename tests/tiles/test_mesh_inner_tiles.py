"""Inner tiles with content (issue 14): a viewer far away draws the largest features, coarsely, before the leaves.

Boxes of random sizes are tiled with coarse meshes (the same boxes at half their height, so that a coarse
content is told from a leaf's): every inner tile gets a content of at most ``max_features`` coarse
features, the largest under it by their size as generated (the oracle), each with its own attributes;
the leaves are as without coarse meshes; the tileset passes the structural checks and the Khronos
validator.
"""

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

CUBE_VERTICES = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], float)
CUBE_FACES = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
                       [1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]])
COUNT, MAX_FEATURES = 600, 50


def boxes(origins: np.ndarray, sizes: np.ndarray, properties: pd.DataFrame) -> FeatureMeshes:
    vertices = (CUBE_VERTICES[None] * sizes[:, None] + origins[:, None]).reshape(-1, 3)
    faces = (CUBE_FACES[None] + 8 * np.arange(len(sizes))[:, None, None]).reshape(-1, 3)
    return FeatureMeshes(vertices, faces, np.repeat(np.arange(len(sizes)), 12), properties)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    rng = np.random.default_rng(14)
    origins = np.column_stack([651000 + rng.uniform(0, 800, COUNT), 6861000 + rng.uniform(0, 800, COUNT),
                               rng.uniform(30, 40, COUNT)])
    sizes = np.column_stack([rng.uniform(4, 30, COUNT), rng.uniform(4, 30, COUNT), rng.uniform(6, 30, COUNT)])
    properties = pd.DataFrame({"id": [f"B{i:04d}" for i in range(COUNT)], "height": sizes[:, 2]})
    fine = boxes(origins, sizes, properties)
    coarse = boxes(origins, sizes * [1, 1, 0.5], properties)
    out = tmp_path_factory.mktemp("inner") / "tiles"
    write_mesh_tileset(fine, Placement(pyproj.CRS("EPSG:2154"), HeightModel.resolve()), out,
                       max_features=MAX_FEATURES, coarse=coarse)
    return out, sizes


def leaves_under(tile: dict) -> list[str]:
    if not tile.get("children"):
        return [tile["content"]["uri"]]
    return [uri for child in tile["children"] for uri in leaves_under(child)]


def test_every_inner_tile_draws_the_largest_features_under_it(written):
    out, sizes = written
    root = json.loads((out / "tileset.json").read_text())["root"]
    inner = [tile for tile, _ in iter_tiles(root) if tile.get("children")]
    assert len(inner) >= 3
    area = sizes[:, 0] * sizes[:, 1]
    for tile in inner:
        assert tile.get("refine", root["refine"]) == "REPLACE"
        content = read_glb((out / tile["content"]["uri"]).read_bytes())
        under = [int(i[1:]) for uri in leaves_under(tile) for i in read_glb((out / uri).read_bytes()).table["id"]]
        expected = sorted(np.array(under)[np.argsort(-area[under], kind="stable")[:MAX_FEATURES]])
        drawn = sorted(int(i[1:]) for i in content.table["id"])
        assert drawn == expected
        assert np.allclose(content.table["height"], sizes[[int(i[1:]) for i in content.table["id"]], 2])
        spans = np.array([np.ptp(content.positions[content.feature_ids == f, 2]) for f in range(len(content.table))])
        assert np.allclose(spans, content.table["height"] / 2, atol=5e-3)  # the coarse meshes, not the fine


def test_leaves_hold_every_feature_once_and_the_tileset_is_sound(written):
    out, _ = written
    root = json.loads((out / "tileset.json").read_text())["root"]
    ids = [i for uri in leaves_under(root) for i in read_glb((out / uri).read_bytes()).table["id"]]
    assert sorted(ids) == [f"B{i:04d}" for i in range(COUNT)]
    assert check_tileset(out / "tileset.json").problems == []
    verdicts = validate_gltf(sorted(out.glob("*.glb")))
    assert [v for v in verdicts if v["errors"]] == []
