"""plans-to-interiors on the sample town hall, broken and given sensitive rooms on purpose: every room once in
each product, areas and storeys as the truth says, valid glTF, tiles' metadata equal to the 2D layers, the
skipped elements in the run report, and no sensitive value in any byte of the open products."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import ifcopenshell
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from interiors_support import (
    ADDED_ROOMS,
    PERSON,
    SENSITIVE_ROOMS,
    break_elements,
    truth_rooms,
    validate_gltf,
    with_sensitive_content,
)

from gis.cli import cli
from tiles.mesh import read_glb
from tiles.tileset import check_tileset

PROFILES = ("full", "open")


@pytest.fixture(scope="module")
def run(district, tmp_path_factory):
    """The shipped pipeline on the sample IFC with three broken elements and sensitive rooms added."""
    folder = tmp_path_factory.mktemp("interiors")
    model = ifcopenshell.open(str(district / "hotel-de-ville.ifc"))
    broken = break_elements(model)
    with_sensitive_content(model)
    plans = folder / "hotel-de-ville.ifc"
    model.write(str(plans))
    output = folder / "products"
    result = CliRunner().invoke(cli, ["-q", "pipeline", "run", "plans-to-interiors", "--input", str(plans),
                                      "--output", str(output)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    spaces = {s.GlobalId: s.LongName for s in model.by_type("IfcSpace")}
    return {"output": output, "broken": broken, "spaces": spaces, "stdout": result.output}


def _tiles(run, profile: str) -> pd.DataFrame:
    folder = run["output"] / f"interior_{profile}"
    return pd.concat([read_glb(p.read_bytes()).table for p in sorted(folder.glob("*.glb"))], ignore_index=True)


def _layer(run, profile: str, name: str) -> gpd.GeoDataFrame:
    return gpd.read_file(run["output"] / f"indoor_{profile}.gpkg", layer=name)


def test_every_room_once_in_each_product(run):
    expected = sorted(set(run["spaces"]) - set(run["broken"]))  # the space without geometry is skipped
    for profile in PROFILES:
        tiles = _tiles(run, profile)
        assert sorted(tiles.loc[tiles["class"] == "room", "global_id"]) == expected
        assert sorted(_layer(run, profile, "rooms")["global_id"]) == expected


def test_room_areas_and_storeys_as_the_truth(run, district):
    truth = truth_rooms(district).set_index("code")
    rooms = _layer(run, "full", "rooms")
    codes = rooms["global_id"].map(run["spaces"])
    assert np.all(np.abs(rooms.geometry.area.to_numpy() / truth.loc[codes, "area_m2"].to_numpy() - 1) <= 0.01)
    assert np.all(np.abs(rooms["area"].to_numpy() / truth.loc[codes, "area_m2"].to_numpy() - 1) <= 0.01)
    floors = truth.groupby("level_index")["floor_z"].first()
    for profile in PROFILES:
        document = json.loads((run["output"] / f"interior_{profile}" / "tileset.json").read_text(encoding="utf-8"))
        storeys = document["asset"]["extras"]["lutece"]["storeys"]
        assert [s["level"] for s in storeys] == [-1, 0, 1, 2, 3]
        assert np.allclose([s["elevation"] for s in storeys], floors.loc[[-1, 0, 1, 2, 3]], atol=1e-3)
        assert document["asset"]["extras"]["lutece"]["profile"] == profile


def test_tilesets_are_sound_and_every_glb_valid(run):
    files = []
    for profile in PROFILES:
        folder = run["output"] / f"interior_{profile}"
        report = check_tileset(folder / "tileset.json")  # contents inside their boxes, children in parents
        assert report.problems == [] and report.contents == 5
        files += sorted(folder.glob("*.glb"))
    verdicts = validate_gltf(files)
    assert [v for v in verdicts if v["errors"]] == []


@pytest.mark.parametrize("profile", PROFILES)
def test_tiles_metadata_equals_the_2d_layers(run, profile):
    tiles = _tiles(run, profile).set_index("global_id")
    for name, kind in (("rooms", "room"), ("walls", "wall"), ("doors", "door")):
        layer = pd.DataFrame(_layer(run, profile, name).drop(columns="geometry")).set_index("global_id")
        read = tiles.loc[layer.index, layer.columns]
        assert (read["class"] == kind).all()
        for column in layer.columns:
            if pd.api.types.is_float_dtype(layer[column]):
                assert np.allclose(read[column], layer[column], equal_nan=True), column
            else:
                assert (read[column].astype(str) == layer[column].astype(str)).all(), column


def test_skipped_elements_listed_in_the_run_report(run):
    report = (run["output"] / "report.html").read_text(encoding="utf-8")
    for guid, what in run["broken"].items():  # each with its reason: placement, geometry, boolean
        assert guid in report and guid in run["stdout"]
        line = next(line for line in run["stdout"].splitlines() if guid in line)
        assert what in line, line
    lineage = json.loads((run["output"] / "interior_open.lineage.json").read_text(encoding="utf-8"))
    assert lineage["profile"] == "open" and lineage["layers"]["interior_open"]["skipped"] == 3


def _forms(value: str) -> list[bytes]:
    """A text as it may be stored: UTF-8, lower case, JSON's \\u escapes."""
    escaped = json.dumps(value)[1:-1]
    return sorted({form.encode() for form in (value, value.lower(), escaped, escaped.lower())})


def test_open_profile_leaks_no_sensitive_value(run):
    values = [*SENSITIVE_ROOMS.values(), *ADDED_ROOMS.values(), "Martin", *PERSON,
              "police", "informatique", "serveurs", "régie", "crèche"]
    output = run["output"]
    open_files = [p for p in output.rglob("*") if p.is_file() and ("_open" in p.name or "_open" in p.parent.name
                                                                  or p.name == "report.html")]
    assert len(open_files) >= 10
    leaks = [(p.name, v) for p in open_files for v in values for form in _forms(v) if form in p.read_bytes().lower()]
    assert leaks == []
    # the full profile does keep them (so the search can find what it looks for)
    full = b"".join(p.read_bytes() for p in (output / "indoor_full.gpkg", *sorted((output / "interior_full").glob("*.glb"))))
    assert all(v.encode() in full for v in [*SENSITIVE_ROOMS.values(), *ADDED_ROOMS.values()])
    rooms = _layer(run, "open", "rooms")
    assert (rooms["name"] != "").all() and "restricted" in set(rooms["use"])


@pytest.mark.parametrize("case", ["not_ifc", "truncated", "no_georeferencing"])
def test_bad_plans_are_one_error_and_no_product(case, district, tmp_path):
    plans = tmp_path / "plans.ifc"
    if case == "not_ifc":
        plans.write_bytes(b"\x89PNG\r\n\x1a\n not a model")
    elif case == "truncated":
        raw = (district / "hotel-de-ville.ifc").read_bytes()
        plans.write_bytes(raw[: len(raw) * 2 // 3])
    else:
        from interiors_support import without_georeferencing

        without_georeferencing(ifcopenshell.open(str(district / "hotel-de-ville.ifc"))).write(str(plans))
    output = tmp_path / "products"
    result = CliRunner().invoke(cli, ["-q", "pipeline", "run", "plans-to-interiors", "--input", str(plans),
                                      "--output", str(output)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and str(plans) in lines[0]
    assert not output.exists() or not [p for p in output.iterdir() if p.name != ".lutece-work"]


def test_overlapping_rooms_in_plans_are_an_error(district, tmp_path):
    document = json.loads((district / "hotel-de-ville-indoor.geojson").read_text(encoding="utf-8"))
    rooms = [f for f in document["features"] if f["properties"]["feature_type"] == "room"]
    rooms[1]["geometry"] = rooms[0]["geometry"]
    plans = tmp_path / "plans.geojson"
    plans.write_text(json.dumps(document), encoding="utf-8")
    pipeline = tmp_path / "indoor.yml"
    pipeline.write_text(f"pipeline:\n  - {{type: readers.indoor, filename: {plans}}}\n"
                        "  - {type: writers.interior3d, filename: interior}\n", encoding="utf-8")
    output = tmp_path / "products"
    result = CliRunner().invoke(cli, ["-q", "pipeline", "run", str(pipeline), "--output", str(output)])
    assert result.exit_code == 1 and "overlaps room" in result.output and "Traceback" not in result.output
    assert not (output / "interior").exists()


def test_published_and_served_as_the_city_gis_layers(run, tmp_path):
    """The catalog takes the interior (mesh-3dtiles) and its rooms; the server serves the open ones, a storey's
    rooms by level, and answers for the shared (full) interior as for a layer that does not exist."""
    from gis.catalog import Catalog
    from gis.config import load_config
    from server.app import create_app

    config_file = tmp_path / "lutece.yml"
    config_file.write_text(f"store:\n  path: {tmp_path / 'city'}\n", encoding="utf-8")
    config = load_config(config_file)
    output = run["output"]
    with Catalog.from_config(config) as catalog:
        catalog.publish(output / "interior_open", "hdv-interior", kind="mesh-3dtiles", licence="etalab-2.0",
                        access="open", title="Intérieur")
        catalog.publish(output / "interior_full", "hdv-interior-full", kind="mesh-3dtiles", licence="restricted",
                        access="shared", title="Intérieur complet")
        catalog.publish(output / "indoor_open.gpkg", "hdv-rooms", source_layer="rooms", licence="etalab-2.0",
                        access="open", title="Pièces")
    client = create_app(config, follow=False).test_client()
    entry = client.get("/collections/hdv-interior/3dtiles")
    assert entry.status_code == 307
    tileset = client.get(entry.headers["Location"])
    assert tileset.status_code == 200 and len(tileset.get_json()["root"]["children"]) == 5
    storey = client.get(entry.headers["Location"].replace("tileset.json", "storey_2.glb"))
    assert storey.status_code == 200 and storey.mimetype == "model/gltf-binary"
    assert storey.data == (output / "interior_open" / "storey_2.glb").read_bytes()
    items = client.get("/collections/hdv-rooms/items?level=2&f=json&limit=1000").get_json()
    tiles = _tiles(run, "open")
    expected = set(tiles.loc[(tiles["class"] == "room") & (tiles["level"] == 2), "global_id"])
    assert {f["properties"]["global_id"] for f in items["features"]} == expected
    assert client.get("/collections/hdv-interior-full/3dtiles").status_code == 404
