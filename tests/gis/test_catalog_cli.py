"""``lutece publish``, ``lutece layers ...`` and ``lutece gc`` against a store from the configuration."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from catalog_products import store_yaml
from gis.cli import cli


@pytest.fixture
def lutece(store, tmp_path):
    config = tmp_path / "lutece.yml"
    config.write_text(store_yaml({**store, "retention": 3}))

    def run(*args: str):
        # A wide terminal, so that Rich's tables show every cell on one line.
        return CliRunner().invoke(cli, ["--config", str(config), *map(str, args)], env={"COLUMNS": "400"})

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


# Catalog text written to break a terminal: Rich markup (a closing tag with no opening one crashed
# `layers list`), HTML, emoji codes, ANSI escapes, a carriage return, OSC, 8-bit CSI, a bidi override.
HOSTILE = {
    "title": "Limite [/x] [bold red]rouge[/bold red] :warning:",
    "description": "<script>alert('x')</script> \x1b[31mrouge\x1b[0m",
    "keywords": ["[link=https://evil.example]clic[/link]", "cr\rreturn", "bidi\u202eevil"],
    "note": "note [/] \x1b]0;owned\x07 \x9b2J <b>gras</b>",
}
# What a table must show: the same text, its control characters as visible escapes (written by hand).
SHOWN_TITLE = "Limite [/x] [bold red]rouge[/bold red] :warning:"
SHOWN_NOTE = "note [/] \\x1b]0;owned\\x07 \\x9b2J <b>gras</b>"
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]")


def test_catalog_text_is_shown_literally_by_every_layers_command(lutece, district_gpkg):
    keywords = [arg for keyword in HOSTILE["keywords"] for arg in ("--keyword", keyword)]
    result = lutece("publish", district_gpkg, "--layer", "trees", "--source-layer", "trees", "--licence",
                    "etalab-2.0", "--access", "open", "--title", HOSTILE["title"], "--description",
                    HOSTILE["description"], "--note", HOSTILE["note"], *keywords)
    assert result.exit_code == 0, result.output
    outputs = {}
    for command in (["list"], ["list", "--json"], ["show", "trees"], ["history", "trees"],
                    ["history", "trees", "--json"], ["changes"]):
        result = lutece("layers", *command)
        assert result.exit_code == 0, (command, result.output, result.exception)
        assert not RAW_CONTROL.search(result.output), (command, result.output)
        outputs[" ".join(command)] = result.output
    assert SHOWN_TITLE in outputs["list"]
    assert SHOWN_NOTE in outputs["history trees"]
    # JSON escapes what could drive a terminal, and reads back as the exact text published.
    [listed] = json.loads(outputs["list --json"])
    assert listed["title"] == HOSTILE["title"]
    shown = json.loads(outputs["show trees"])
    assert (shown["title"], shown["description"], shown["keywords"]) == (
        HOSTILE["title"], HOSTILE["description"], HOSTILE["keywords"])
    [version] = json.loads(outputs["history trees --json"])
    assert version["note"] == HOSTILE["note"]
    assert [json.loads(line)["layer"] for line in outputs["changes"].splitlines()] == ["trees"]


@pytest.mark.parametrize("option, value, message", [
    ("--title", "a\x00b", "Error: title: contains a NUL character (\\x00); remove it"),
    ("--keyword", "a\x00b", "Error: keywords: contains a NUL character"),
    ("--note", "bad \udcff byte", "Error: note: 'bad \\udcff byte' is not valid UTF-8 text"),
])
def test_text_the_backends_cannot_store_alike_is_refused(lutece, district_gpkg, option, value, message):
    result = lutece("publish", district_gpkg, "--layer", "trees", "--source-layer", "trees", "--licence",
                    "etalab-2.0", "--access", "open", option, value)
    assert result.exit_code == 1 and message in result.output, result.output
    assert result.output.count("\n") == 1
    assert lutece("layers", "list", "--json").output.strip() == "[]"


def test_an_error_quoting_outside_text_is_one_line(lutece, district_gpkg, tmp_path):
    product = tmp_path / "trees.gpkg"
    product.write_bytes(district_gpkg.read_bytes())
    sidecar = {"layers": {"trees": {"inputs": [{"path": "cadastre\n\x1b[2Jfake.gpkg", "licence": "ODbL-1.0"}]}}}
    (tmp_path / "trees.gpkg.lineage.json").write_text(json.dumps(sidecar))
    result = lutece("publish", product, "--layer", "trees", "--source-layer", "trees", "--licence",
                    "etalab-2.0", "--access", "open")
    assert result.exit_code == 1 and result.output.startswith("Error: "), result.output
    assert result.output.count("\n") == 1 and not RAW_CONTROL.search(result.output)
    assert "cadastre\\n\\x1b[2Jfake.gpkg" in result.output
