"""CityJSON 2.0 as a published kind: detection, gate, byte-identical storage, versions, gc, the CLI's refusals.

The oracle of the stored bytes is the file itself (its sha256 from hashlib, not
the catalog's helper); the oracle of validity is the official CityJSON 2.0
schema where ``../shared`` holds it (else that check skips).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from catalog_products import assert_no_orphans, assert_unchanged, store_yaml
from gis.cli import cli
from gis.errors import InputError, ProductError
from gis.testing.cityjson import box_buildings, write_cityjson

# ../shared/data beside the project (or $LUTECE_SHARED_DATA, e.g. from a git worktree elsewhere)
SHARED = Path(os.environ.get("LUTECE_SHARED_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data")
SCHEMA = SHARED / "cityjson-2.0" / "cityjson.min.schema.json"
OPEN = {"licence": "ODbL-1.0", "access": "open"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_publish_reads_back_byte_identical_with_its_checksum(catalog, tmp_path):
    source = write_cityjson(tmp_path / "batiments.city.json", count=3)
    result = catalog.publish(source, "batiments-3d", title="Bâtiments 3D (CityJSON 2.0)", theme="buildings", **OPEN)
    layer, version = result.layer, result.version
    assert (layer.kind, layer.crs, version.kind, version.features) == ("cityjson", "EPSG:2154", "cityjson", 3)
    assert version.checksum == sha256(source)
    stored = catalog.path("batiments-3d")
    assert stored.read_bytes() == source.read_bytes()
    assert layer.extent == pytest.approx((651000.0, 6861000.0, 651040.0, 6861010.0))  # 3 boxes of 10 m, 5 m apart
    link = Path(catalog.open_in_qgis("batiments-3d"))
    assert link.name == "batiments-3d.city.json" and link.read_bytes() == source.read_bytes()
    assert_no_orphans(catalog)


def test_the_published_bytes_validate_against_the_cityjson_2_0_schema(catalog, tmp_path):
    if not SCHEMA.is_file():
        pytest.skip(f"CityJSON 2.0 schema not found at {SCHEMA}")
    import jsonschema

    catalog.publish(write_cityjson(tmp_path / "batiments.city.json", count=3), "batiments-3d", **OPEN)
    document = json.loads(catalog.path("batiments-3d").read_bytes())
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    assert [error.message[:200] for error in validator.iter_errors(document)] == []
    document["CityObjects"]["batiment-1"]["type"] = "Batiment"  # the judge can fail
    assert any(validator.iter_errors(document))


def test_versions_rollback_retention_withdraw_and_gc(catalog, tmp_path):
    files = [write_cityjson(tmp_path / f"v{seed}.city.json", seed=seed) for seed in range(5)]
    for path in files:
        catalog.publish(path, "bati", **OPEN)
    assert catalog.publish(files[-1], "bati").event is None  # the same bytes again: unchanged
    assert [v.number for v in catalog.history("bati")] == [3, 4, 5]  # retention 3
    catalog.rollback("bati", to=3)
    assert catalog.path("bati").read_bytes() == files[2].read_bytes()
    catalog.withdraw("bati")
    link = Path(catalog.backend.files.root).parent / "current" / "bati.city.json"
    assert not link.exists() and not link.is_symlink()
    catalog.rollback("bati", to=5)
    assert link.read_bytes() == files[4].read_bytes()
    report = catalog.gc()
    assert report is not None
    assert_no_orphans(catalog)


@pytest.mark.parametrize("name,document,message", [
    ("broken.city.json", "{\"type\": \"CityJSON\", ", "not readable JSON"),
    ("feature.city.json", {"type": "CityJSONFeature", "CityObjects": {}}, "not a CityJSON document"),
    ("old.city.json", box_buildings(version="1.1"), "CityJSON version '1.1'"),
    ("nocrs.city.json", box_buildings(epsg=None), "no metadata.referenceSystem"),
    ("lambert93cc.city.json", box_buildings(epsg=3946), "not the declared EPSG:2154"),
    ("empty.city.json", {**box_buildings(), "CityObjects": {}, "vertices": []}, "no CityObjects"),
])
def test_the_gate_refuses_in_one_line_and_stores_nothing(catalog, tmp_path, name, document, message):
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    with pytest.raises(ProductError) as raised:
        catalog.publish(path, "bati", **OPEN)
    text = str(raised.value)
    assert message in text and str(path) in text and "\n" not in text
    assert_unchanged(catalog)
    assert catalog.backend.find_layer("bati") is None


def test_kind_detection(catalog, tmp_path):
    plain = write_cityjson(tmp_path / "model.json")  # a .json whose type is CityJSON
    assert catalog.publish(plain, "model", **OPEN).layer.kind == "cityjson"
    odd = write_cityjson(tmp_path / "model.cj")  # any name with --kind cityjson
    assert catalog.publish(odd, "odd", kind="cityjson", **OPEN).layer.kind == "cityjson"
    other = tmp_path / "tileset.json"
    other.write_text(json.dumps({"asset": {"version": "1.1"}}))
    with pytest.raises(InputError, match="must be CityJSON"):
        catalog.publish(other, "other", **OPEN)
    with pytest.raises(InputError, match="is a cityjson layer"):  # a layer keeps its kind
        catalog.publish(write_cityjson(tmp_path / "x.tif"), "model", kind=None, **OPEN)


def test_a_compound_crs_is_compared_by_its_horizontal_part(catalog, tmp_path):
    document = box_buildings()
    document["metadata"]["referenceSystem"] = "https://www.opengis.net/def/crs/EPSG/0/7415"  # RD New + NAP
    with pytest.raises(ProductError, match="EPSG:28992, not the declared EPSG:2154"):
        catalog.publish(write_cityjson(tmp_path / "nl.city.json", document), "nl", **OPEN)
    from gis.catalog.service import Catalog

    auto = Catalog(catalog.backend, crs=None)  # crs: auto: the layer's first CRS is its declared one
    assert auto.publish(write_cityjson(tmp_path / "nl2.city.json", document), "nl", **OPEN).layer.crs == "EPSG:7415"
    with pytest.raises(ProductError, match="not the declared EPSG:7415"):
        auto.publish(write_cityjson(tmp_path / "fr.city.json", seed=1), "nl")


def test_cli_publish_refuses_with_one_error_line_and_exit_1(store, tmp_path):
    config = tmp_path / "lutece.yml"
    config.write_text(store_yaml(store))
    path = write_cityjson(tmp_path / "old.city.json", box_buildings(version="1.1"))
    result = CliRunner().invoke(cli, ["--config", str(config), "publish", str(path), "--layer", "bati",
                                      "--licence", "ODbL-1.0", "--access", "open"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output
    assert "cjio" in lines[0] and str(path) in lines[0]
    good = write_cityjson(tmp_path / "good.city.json")
    result = CliRunner().invoke(cli, ["--config", str(config), "publish", str(good), "--layer", "bati",
                                      "--licence", "ODbL-1.0", "--access", "open"])
    assert result.exit_code == 0, result.output
    help_text = CliRunner().invoke(cli, ["publish", "--help"]).output
    assert "cityjson" in help_text


def test_licence_and_access_rules_are_those_of_every_layer(catalog, tmp_path):
    path = write_cityjson(tmp_path / "bati.city.json")
    with pytest.raises(InputError, match="open"):
        catalog.publish(path, "bati", licence="restricted", access="open")  # open needs an open licence
    assert_unchanged(catalog)
    shared = catalog.publish(path, "bati", licence="restricted", access="shared").layer
    assert (shared.access, shared.licence) == ("shared", "restricted")
    with pytest.raises(InputError, match="ODbL"):  # an ODbL input keeps its derived layer ODbL
        catalog.publish(write_cityjson(tmp_path / "derived.city.json", seed=1), "derived", licence="etalab-2.0",
                        access="open", lineage={"inputs": [{"layer": "cadastre", "licence": "ODbL-1.0"}]})
