"""The public view of the catalog: nothing meant for export names the publisher, a user, a host or a folder."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from catalog_products import store_yaml
from gis.catalog.public import file_name, public_layer, public_lineage, public_text, public_version
from gis.cli import cli

USER, HOST = "alice", "host-x"
PUBLISHER = f"{USER}@{HOST}"
TILE = "0651_6861.laz"
SHA = "ab" * 32


def full_lineage(home) -> dict:
    """A lineage as a pipeline on alice's machine writes it, and worse: absolute paths at every depth."""
    tile = str(home / "lidar" / TILE)
    return {
        "pipeline": "lidar-to-2d", "pipeline_file": str(home / "pipelines" / "lidar-to-2d.yml"),
        "job_key": "0123abcd", "crs": "EPSG:2154",
        "inputs": [{"path": tile, "sha256": SHA, "points": 1000, "publisher": PUBLISHER},
                   {"layer": "cadastre", "licence": "etalab-2.0"}],
        "stages": [
            {"type": "readers.las", "tag": "read", "inputs": [],
             "options": {"filename": [tile], "cache": {"folder": str(home / "cache"), "owner": USER,
                                                       "note": f"warmed by {PUBLISHER}"}}},
            {"type": "writers.dtm", "tag": "dtm", "inputs": ["read"],
             "options": {"resolution": 0.5, "output": str(home / "products"), "url": f"ssh://{HOST}/srv/x"}}],
        "software": {"lutece": "0.1.0", "GDAL": "3.6.2"},
        "created": "2026-12-03T12:00:00+00:00",
        "run": {"user": USER, "host": HOST, "cwd": str(home)},
        "publisher": PUBLISHER,
    }


def assert_public(text: str, *folders) -> None:
    lowered = text.lower()
    assert USER not in lowered and HOST not in lowered, text
    for folder in folders:
        assert str(folder) not in text, text


def test_public_lineage_keeps_file_names_sha256_stages_software_and_time(tmp_path):
    home = tmp_path / "home" / USER
    public = public_lineage(full_lineage(home))
    assert_public(json.dumps(public), tmp_path)
    assert public["inputs"] == [{"file": TILE, "sha256": SHA, "points": 1000},
                                {"layer": "cadastre", "licence": "etalab-2.0"}]
    assert public["pipeline_file"] == "lidar-to-2d.yml"
    assert [stage["tag"] for stage in public["stages"]] == ["read", "dtm"]
    assert public["stages"][0]["options"]["filename"] == [TILE]
    assert public["stages"][0]["options"]["cache"]["folder"] == "cache"
    assert public["stages"][1]["options"] == {"resolution": 0.5, "output": "products", "url": "x"}
    assert public["software"] == {"lutece": "0.1.0", "GDAL": "3.6.2"}
    assert public["created"] == "2026-12-03T12:00:00+00:00"
    assert "run" not in public and "publisher" not in public


@pytest.mark.parametrize("path, name", [
    ("/home/alice/lidar/a.laz", "a.laz"), ("C:\\Users\\alice\\a.laz", "a.laz"), ("/srv/city/", "city"),
    ("https://alice@data.example/tiles/a.laz?x=1", "a.laz"), ("tcp://host-x:8786", "(withheld)"),
    ("alice@host-x", "(withheld)"), (3, 3)])
def test_file_names(path, name):
    assert file_name(path) == name


def test_notes_keep_their_words_and_urls_but_not_folders_or_users():
    note = "rebuilt from /home/alice/products/dtm.tif by alice@host-x, see https://example.org/a/b and/or 1/2"
    assert public_text(note) == "rebuilt from dtm.tif by (withheld), see https://example.org/a/b and/or 1/2"


@pytest.fixture
def lutece(store, tmp_path):
    config = tmp_path / "lutece.yml"
    config.write_text(store_yaml(store))

    def run(*args: str):
        result = CliRunner().invoke(cli, ["--config", str(config), *map(str, args)], env={"COLUMNS": "400"})
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result.output

    return run


def test_no_public_output_names_the_publisher_or_a_folder(lutece, store, tmp_path, cog, district_gpkg, tileset):
    home = tmp_path / "home" / USER
    products = home / "products"
    products.mkdir(parents=True)
    shutil.copy(cog, products / "dtm.tif")
    shutil.copy(district_gpkg, products / "layers.gpkg")
    shutil.copytree(tileset, products / "buildings-3d")
    for product in ("dtm.tif", "layers.gpkg", "buildings-3d"):
        (products / f"{product}.lineage.json").write_text(json.dumps({"layers": {"x": full_lineage(home)}}))
    note = f"built in {products} by {PUBLISHER}"
    common = ["--licence", "etalab-2.0", "--access", "open", "--publisher", PUBLISHER, "--note", note]
    lutece("publish", products / "dtm.tif", "--layer", "dtm", *common)
    lutece("publish", products / "layers.gpkg", "--layer", "trees", "--source-layer", "trees", *common)
    lutece("publish", products / "layers.gpkg", "--layer", "trees", "--source-layer", "trees", "--force", *common)
    lutece("publish", products / "buildings-3d", "--layer", "buildings-3d", *common)
    lutece("layers", "rollback", "trees")

    outputs = {"list": lutece("layers", "list", "--json"), "changes": lutece("layers", "changes")}
    for layer in ("dtm", "trees", "buildings-3d"):
        outputs[f"show {layer}"] = lutece("layers", "show", layer)
        outputs[f"history {layer}"] = lutece("layers", "history", layer, "--json")
    from gis.backends import open_backend
    from gis.catalog import Catalog

    with Catalog(open_backend(store)) as catalog:
        for layer in catalog.layers():
            outputs[f"public_layer {layer.id}"] = json.dumps(public_layer(layer))
            for version in catalog.history(layer.id):
                outputs[f"public_version {layer.id} {version.number}"] = json.dumps(public_version(version))
                internal = version  # the full record keeps what the operator needs
                assert internal.publisher == PUBLISHER and str(home) in json.dumps(internal.lineage)

    for name, text in outputs.items():
        assert_public(text, tmp_path, store["path"])
    # Not vacuous: the public records say what was published, from which files, how and when.
    shown = json.loads(outputs["show trees"])
    assert shown["id"] == "trees" and shown["version"]["number"] == 1
    assert shown["version"]["lineage"]["inputs"][0] == {"file": TILE, "sha256": SHA, "points": 1000}
    assert shown["version"]["lineage"]["publication"]["product"] == "layers.gpkg"
    assert shown["version"]["note"] == f"built in products by (withheld)"
    assert len(outputs["changes"].splitlines()) == 5
    # The operator's own views still name the publisher.
    assert PUBLISHER in lutece("layers", "history", "trees")
    assert PUBLISHER in lutece("layers", "history", "trees", "--json", "--internal")
    assert str(products) in lutece("layers", "show", "dtm", "--internal")
