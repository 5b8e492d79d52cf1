"""readers.indoor's algorithm: the sample town hall's indoor GeoJSON, and plans that overlap or self-intersect."""

from __future__ import annotations

import json

import numpy as np
import pyproj
import pytest
from interiors_support import WORKING_CRS, truth_rooms

from gis.errors import InputError
from pipelines.algorithms.indoor import read_indoor

CRS = pyproj.CRS(WORKING_CRS)


def test_every_room_once_with_its_area_and_level(district):
    interior = read_indoor(district / "hotel-de-ville-indoor.geojson", CRS)
    truth = truth_rooms(district).set_index("code")
    rooms = interior.rooms().set_index("global_id")
    assert sorted(rooms.index) == sorted(truth.index)
    truth = truth.loc[rooms.index]
    assert (rooms["name"] == truth["name"]).all() and (rooms["level"] == truth["level_index"]).all()
    assert np.all(np.abs(rooms.geometry.area / truth["area_m2"] - 1) <= 0.01)
    assert np.all(np.abs(rooms["area"] / truth["area_m2"] - 1) <= 0.01)
    assert list(interior.storeys["level"]) == [-1, 0, 1, 2, 3]
    assert np.allclose(interior.storeys.set_index("level")["elevation"],
                       truth.groupby("level_index")["floor_z"].first().loc[[-1, 0, 1, 2, 3]])
    assert (interior.elements["class"] == "door").sum() == 90
    # each room's prism: from its floor to its clear height
    for feature in (0, 50):
        z = interior.vertices[interior.faces[interior.face_feature == feature]].reshape(-1, 3)[:, 2]
        row = interior.elements.iloc[feature]
        assert np.isclose(z.min(), row["floor_elevation"]) and np.isclose(z.max(), row["floor_elevation"] + row["height"])


def _plans_with(district, tmp_path, change) -> object:
    document = json.loads((district / "hotel-de-ville-indoor.geojson").read_text(encoding="utf-8"))
    change([f for f in document["features"] if f["properties"]["feature_type"] == "room"])
    path = tmp_path / "plans.geojson"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _overlap(rooms):
    """SS-02 stretched 1 m west, into its neighbour SS-01."""
    ring = rooms[1]["geometry"]["coordinates"][0]
    west = min(x for x, _ in ring)
    rooms[1]["geometry"]["coordinates"][0] = [[x - 1.0 if x == west else x, y] for x, y in ring]


def _bowtie(rooms):
    x, y = rooms[2]["geometry"]["coordinates"][0][0]
    rooms[2]["geometry"]["coordinates"] = [[[x, y], [x + 5, y + 5], [x + 5, y], [x, y + 5], [x, y]]]


@pytest.mark.parametrize("change,code,reason", [(_overlap, "SS-02", "overlaps room SS-01"),
                                                (_bowtie, "SS-03", "Self-intersection")])
def test_bad_rooms_are_an_error_or_a_reported_skip(district, tmp_path, change, code, reason):
    path = _plans_with(district, tmp_path, change)
    with pytest.raises(InputError, match=reason) as error:
        read_indoor(path, CRS)
    assert code in str(error.value) and "on_invalid" in str(error.value) and "\n" not in str(error.value)
    interior = read_indoor(path, CRS, on_invalid="skip")
    assert [(s.global_id, reason in s.reason) for s in interior.skipped] == [(code, True)]
    assert len(interior.rooms()) == 101 and code not in set(interior.elements["global_id"])


def test_plans_without_crs_or_properties(tmp_path):
    path = tmp_path / "plans.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {
        "feature_type": "room", "level": "RDC", "level_index": 0, "floor_z": 35.0},
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [4, 0], [4, 4], [0, 0]]]}}]}), encoding="utf-8")
    interior = read_indoor(path, pyproj.CRS("EPSG:4326"))  # GeoJSON without a crs member is CRS84
    assert len(interior.rooms()) == 1
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {
        "name": "x"}, "geometry": {"type": "Point", "coordinates": [0, 0]}}]}), encoding="utf-8")
    with pytest.raises(InputError, match="feature_type"):
        read_indoor(path, CRS)
    with pytest.raises(InputError, match="no such plans file"):
        read_indoor(tmp_path / "missing.geojson", CRS)
