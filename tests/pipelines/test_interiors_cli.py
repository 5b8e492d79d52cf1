"""``lutece tiles interior PLAN OUT``: found by ``lutece tiles`` through its entry-point group (tiles/ does not
import pipelines/), a whole tileset or none, one error line for bad plans."""

from __future__ import annotations

import json

import ifcopenshell
from click.testing import CliRunner
from interiors_support import SENSITIVE_ROOMS, without_georeferencing

from gis.cli import cli
from tiles.tileset import check_tileset


def _run(*args: str):
    return CliRunner().invoke(cli, ["-q", "tiles", *args])


def test_tiles_lists_interior():
    result = CliRunner().invoke(cli, ["tiles", "--help"])
    assert result.exit_code == 0 and "interior" in result.output and "pointcloud" in result.output


def test_indoor_plans_to_an_open_tileset(district, tmp_path):
    out = tmp_path / "interior"
    result = _run("interior", str(district / "hotel-de-ville-indoor.geojson"), str(out), "--profile", "open")
    assert result.exit_code == 0, result.output
    assert "102 rooms" in result.output and "profile open" in result.output
    report = check_tileset(out / "tileset.json")
    assert report.problems == [] and report.contents == 5
    lineage = json.loads((tmp_path / "interior.lineage.json").read_text(encoding="utf-8"))
    assert lineage["profile"] == "open"
    raw = b"".join(p.read_bytes() for p in out.iterdir())
    assert not [name for name in SENSITIVE_ROOMS.values() if name.encode() in raw]
    again = _run("interior", str(district / "hotel-de-ville-indoor.geojson"), str(out))
    assert again.exit_code == 1 and "--overwrite" in again.output


def test_bad_plans_leave_no_tileset(district, tmp_path):
    model = without_georeferencing(ifcopenshell.open(str(district / "hotel-de-ville.ifc")))
    plans = tmp_path / "plans.ifc"
    model.write(str(plans))
    out = tmp_path / "interior"
    result = _run("interior", str(plans), str(out))
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: ") and "--origin" in lines[0]
    assert not out.exists() and not (tmp_path / "interior.partial").exists()
    bad = tmp_path / "bad.ifc"
    bad.write_text("hello", encoding="utf-8")
    result = _run("interior", str(bad), str(out))
    assert result.exit_code == 1 and "not an IFC" in result.output and not out.exists()
