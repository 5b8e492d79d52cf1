"""The storey tileset writer (tiles/interior.py): one tile per storey, its elements and their metadata, placed
as the mesh tilesets are."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyproj
import pytest
from tiles_support import validate_gltf

from gis.errors import InputError
from tiles.geo import HeightModel, Placement
from tiles.interior import write_storey_tileset
from tiles.mesh import FeatureMeshes, encode_glb, read_glb, write_mesh_tileset
from tiles.tileset import check_tileset

# a closed unit cube, counter-clockwise seen from outside
CUBE_VERTICES = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], float)
CUBE_FACES = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
                       [1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]])
STOREYS = pd.DataFrame({"level": [1, -1, 0], "name": ["R+1", "Sous-sol", "Rez-de-chaussée"],
                        "elevation": [39.72, 32.92, 36.12]})  # not in level order on purpose
ROOMS_PER_STOREY = 12
HEIGHT = 3.0
ORIGIN = (651200.0, 6861300.0)  # Lambert-93, Paris


@pytest.fixture(scope="module")
def elements() -> FeatureMeshes:
    """Per storey: a row of rooms (4 m x 5 m boxes), a wall along them and a door; Lambert-93 / NGF-IGN69."""
    boxes, rows = [], []
    for level, name, elevation in STOREYS.itertuples(index=False):
        for i in range(ROOMS_PER_STOREY):
            boxes.append(((ORIGIN[0] + 4 * i, ORIGIN[1], elevation), (3.8, 5.0, HEIGHT)))
            rows.append({"class": "room", "name": f"Bureau {level}.{i:02d}", "use": ["office", "meeting"][i % 2],
                         "area": 3.8 * 5.0, "height": HEIGHT, "global_id": f"3kR{level + 1}{i:03d}xYz$é"})
        boxes.append(((ORIGIN[0], ORIGIN[1] - 0.2, elevation), (4 * ROOMS_PER_STOREY, 0.2, HEIGHT)))
        rows.append({"class": "wall", "name": "", "use": "", "area": np.nan, "height": HEIGHT,
                     "global_id": f"0wA{level + 1}"})
        boxes.append(((ORIGIN[0] + 1, ORIGIN[1] - 0.25, elevation), (0.9, 0.3, 2.1)))
        rows.append({"class": "door", "name": "", "use": "", "area": np.nan, "height": 2.1,
                     "global_id": f"0dO{level + 1}"})
        for row in rows[-ROOMS_PER_STOREY - 2:]:
            row.update(level=level, level_name=name, floor_elevation=elevation, fire_zone=f"ZF{abs(level)}")
    origins, sizes = np.array([b[0] for b in boxes]), np.array([b[1] for b in boxes])
    vertices = (CUBE_VERTICES[None] * sizes[:, None] + origins[:, None]).reshape(-1, 3)
    faces = (CUBE_FACES[None] + 8 * np.arange(len(boxes))[:, None, None]).reshape(-1, 3)
    return FeatureMeshes(vertices, faces, np.repeat(np.arange(len(boxes)), 12), pd.DataFrame(rows))


@pytest.fixture(scope="module")
def placement() -> Placement:
    return Placement(pyproj.CRS("EPSG:2154"), HeightModel.resolve())


@pytest.fixture(scope="module")
def tileset(elements, placement, tmp_path_factory):
    out = tmp_path_factory.mktemp("interior") / "hotel-de-ville"
    subtree = write_storey_tileset(elements, STOREYS, placement, out, metadata={"product": "test"})
    assert subtree.uri == "hotel-de-ville/tileset.json" and subtree.points == len(elements)
    return out


def test_one_child_tile_per_storey_in_level_order(tileset):
    document = json.loads((tileset / "tileset.json").read_text())
    root = document["root"]
    assert document["asset"]["version"] == "1.1"
    assert "content" not in root and root["geometricError"] > 0  # a viewer refines the root to show storeys
    assert [child["content"]["uri"] for child in root["children"]] == ["storey_m1.glb", "storey_0.glb",
                                                                        "storey_1.glb"]
    assert all(child["geometricError"] == 0 and child["refine"] == "ADD" for child in root["children"])
    assert sorted(p.name for p in tileset.iterdir()) == ["storey_0.glb", "storey_1.glb", "storey_m1.glb",
                                                         "tileset.json"]


def test_every_storey_volume_contains_its_content(tileset):
    report = check_tileset(tileset / "tileset.json")
    assert report.problems == []
    assert report.contents == 3


def test_every_glb_passes_the_khronos_validator(tileset):
    verdicts = validate_gltf(sorted(tileset.glob("*.glb")))
    assert len(verdicts) == 3
    assert [v for v in verdicts if v["errors"] or v["warnings"]] == []


def test_each_storey_holds_exactly_its_elements(tileset, elements):
    floors = {}
    for level in STOREYS["level"]:
        name = f"storey_{'m' if level < 0 else ''}{abs(level)}.glb"
        content = read_glb((tileset / name).read_bytes())
        expected = elements.properties[elements.properties["level"] == level].reset_index(drop=True)
        pd.testing.assert_frame_equal(content.table[expected.columns], expected, check_dtype=False)
        assert (np.bincount(content.feature_ids) == 36).all()  # 12 triangles of each box, none lost
        assert np.ptp(content.positions[:, 2]) == pytest.approx(HEIGHT, abs=2e-3)
        floors[level] = content.positions[:, 2].min()
    elevation = STOREYS.set_index("level")["elevation"]
    for level in (-1, 1):  # storeys stacked as in the input (a 50 m building: no visible curvature)
        assert floors[level] - floors[0] == pytest.approx(elevation[level] - elevation[0], abs=2e-3)


def test_storeys_are_listed_for_a_storey_picker(tileset):
    lutece = json.loads((tileset / "tileset.json").read_text())["asset"]["extras"]["lutece"]
    assert lutece["storeys"] == [
        {"level": -1, "name": "Sous-sol", "elevation": 32.92, "uri": "storey_m1.glb"},
        {"level": 0, "name": "Rez-de-chaussée", "elevation": 36.12, "uri": "storey_0.glb"},
        {"level": 1, "name": "R+1", "elevation": 39.72, "uri": "storey_1.glb"}]
    assert lutece["product"] == "test" and lutece["geoid"] == "EGM96 (egm96_15.gtx)"
    assert lutece["crs"] == "EPSG:2154"


def test_placement_is_the_mesh_tilesets_and_proj_s(tileset, elements, placement, tmp_path):
    """The same frame as write_mesh_tileset's, and each element where PROJ and EGM96 put its vertices."""
    shells = tmp_path / "as-shells"
    write_mesh_tileset(elements, placement, shells, max_features=len(elements))
    frames = [json.loads((path / "tileset.json").read_text())["root"]["transform"] for path in (tileset, shells)]
    assert frames[0] == frames[1]
    contents = []
    check_tileset(tileset / "tileset.json", contents)
    corners = elements.vertices[elements.faces].reshape(-1, 3)
    exact = placement.to_ecef(*corners.T).reshape(-1, 36, 3)  # 12 flat triangles per box, in face order
    expected = pd.DataFrame(exact.mean(axis=1), index=elements.properties["global_id"])
    for content in contents:
        ids = read_glb(content.path.read_bytes()).table["global_id"]
        got = pd.DataFrame(content.ecef).groupby(content.attributes["feature_id"]).mean()
        got.index = ids[got.index]
        assert np.abs(got.to_numpy() - expected.loc[got.index].to_numpy()).max() < 1e-3


def test_an_element_off_every_storey_is_refused_before_writing(elements, placement, tmp_path):
    with pytest.raises(InputError, match="level 1 is not a storey"):
        write_storey_tileset(elements, STOREYS[STOREYS["level"] != 1], placement, tmp_path / "out")
    broken = FeatureMeshes(elements.vertices, elements.faces, elements.face_feature,
                           elements.properties.drop(columns=["level_name"]))
    with pytest.raises(InputError, match="no column level_name"):
        write_storey_tileset(broken, STOREYS, placement, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_level_is_a_32_bit_integer_a_cesium_style_can_compare(tileset):
    """CesiumJS reads INT64 properties as BigInt, and a storey filter ``${level} === -1`` never matches a BigInt."""
    raw = (tileset / "storey_m1.glb").read_bytes()
    length = int.from_bytes(raw[12:16], "little")
    schema = json.loads(raw[20:20 + length])["extensions"]["EXT_structural_metadata"]["schema"]
    assert schema["classes"]["element"]["properties"]["level"] == {"type": "SCALAR", "componentType": "INT32"}


def test_integers_beyond_32_bits_stay_int64():
    table = pd.DataFrame({"cadastre": [2**40 + 7, -3], "level": [0, 1]})
    raw = encode_glb(CUBE_VERTICES, CUBE_FACES, np.repeat([0, 1], 6), table)
    pd.testing.assert_frame_equal(read_glb(raw).table, table)


def test_a_storey_with_nothing_to_draw_is_listed_without_a_tile(elements, placement, tmp_path):
    """Its elements stay in no content (there is none), its listing says so, the other storeys are written."""
    level_one = np.flatnonzero(elements.properties["level"] == 1)
    kept = ~np.isin(elements.face_feature, level_one)
    faceless = FeatureMeshes(elements.vertices, elements.faces[kept], elements.face_feature[kept],
                             elements.properties)
    write_storey_tileset(faceless, STOREYS, placement, tmp_path / "out")
    document = json.loads((tmp_path / "out" / "tileset.json").read_text())
    assert [child["content"]["uri"] for child in document["root"]["children"]] == ["storey_m1.glb", "storey_0.glb"]
    assert document["asset"]["extras"]["lutece"]["storeys"][2] == {"level": 1, "name": "R+1", "elevation": 39.72,
                                                                   "uri": None}
    assert check_tileset(tmp_path / "out" / "tileset.json").problems == []
