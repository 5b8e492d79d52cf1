"""``lutece publish``, ``lutece layers ...`` and ``lutece gc`` against a store from the configuration."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from conftest import store_yaml
from gis.cli import cli


@pytest.fixture
def lutece(store, tmp_path):
    config = tmp_path / "lutece.yml"
    config.write_text(store_yaml({**store, "retention": 3}))

    def run(*args: str):
        return CliRunner().invoke(cli, ["--config", str(config), *map(str, args)])

    return run


def test_publish_list_history_rollback_gc(lutece, district_gpkg, cog, tmp_path):
    result = lutece("publish", district_gpkg, "--layer", "buildings", "--source-layer", "buildings_cadastre",
                    "--title", "Bâtiments", "--licence", "ODbL-1.0", "--access", "open", "--note", "first")
    assert result.exit_code == 0, result.output
    assert "buildings: version 1 published (open, ODbL-1.0, 107 features" in result.output
    assert lutece("publish", cog, "--layer", "dtm", "--licence", "etalab-2.0", "--access", "open").exit_code == 0
    result = lutece("publish", district_gpkg, "--layer", "buildings", "--source-layer", "buildings_cadastre")
    assert result.exit_code == 0 and "buildings: unchanged, version 1 already holds this data" in result.output
    assert lutece("publish", district_gpkg, "--layer", "buildings", "--source-layer", "buildings_cadastre",
                  "--on-invalid", "fix", "--force").exit_code == 0
    listed = json.loads(lutece("layers", "list", "--json").output)
    assert [(layer["id"], layer["current_version"]) for layer in listed] == [("buildings", 2), ("dtm", 1)]
    shown = json.loads(lutece("layers", "show", "buildings").output)
    assert shown["licence_uri"] == "https://opendatacommons.org/licenses/odbl/1-0/" and shown["title"] == "Bâtiments"
    history = json.loads(lutece("layers", "history", "buildings", "--json").output)
    assert [v["number"] for v in history] == [1, 2] and history[0]["note"] == "first"
    assert "version 1 is current again" in lutece("layers", "rollback", "buildings").output
    assert "open -> shared" in lutece("layers", "reclassify", "dtm", "--access", "shared").output
    assert "withdrawn" in lutece("layers", "withdraw", "dtm").output
    changes = [json.loads(line) for line in lutece("layers", "changes", "--after", "3").output.splitlines()]
    assert [c["action"] for c in changes] == ["rollback", "reclassify", "withdraw"]
    result = lutece("gc")
    assert result.exit_code == 0 and "removed 0 tables" in result.output


@pytest.mark.parametrize("args, message", [
    (["layers", "show", "nothing"], "Error: no city GIS in"),
    (["publish", "{gpkg}", "--layer", "x", "--licence", "etalab-2.0", "--access", "open"], "choose one with --source-layer"),
    (["publish", "{gpkg}", "--layer", "x", "--source-layer", "trees", "--licence", "restricted", "--access", "open"],
     "an open layer needs an open licence"),
    (["publish", "{gpkg}", "--layer", "x", "--source-layer", "trees"], "give its licence and access level"),
])
def test_bad_input_is_one_error_line(lutece, district_gpkg, args, message):
    result = lutece(*[a.replace("{gpkg}", str(district_gpkg)) for a in args])
    assert result.exit_code == 1, result.output
    assert message in result.output and result.output.count("\n") == 1 and "Traceback" not in result.output


def test_unknown_layer_after_creation(lutece, district_gpkg):
    lutece("publish", district_gpkg, "--layer", "trees", "--source-layer", "trees", "--licence", "etalab-2.0",
           "--access", "open")
    result = lutece("layers", "rollback", "nothing")
    assert result.exit_code == 1 and "Error: no layer 'nothing' in the catalog" in result.output
    assert lutece("publish", district_gpkg, "--layer", "trees", "--licence", "GPL").exit_code == 2
