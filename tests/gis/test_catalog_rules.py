"""Licence rules and publication gates: each refusal is one clear error and leaves the catalog unchanged."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
import rasterio
import shapely
from rasterio.shutil import copy as rio_copy

from catalog_products import assert_unchanged, write_product
from gis.backends.files import FileStore
from gis.catalog.licences import LICENCES, check_licence_rules
from gis.checksums import sha256_tree
from gis.errors import LicenceError, ProductError


def test_licences_have_canonical_uris():
    assert LICENCES["ODbL-1.0"].uri == "https://opendatacommons.org/licenses/odbl/1-0/"
    assert LICENCES["etalab-2.0"].uri == "https://www.etalab.gouv.fr/licence-ouverte-open-licence/"
    assert LICENCES["CC-BY-4.0"].uri == "https://creativecommons.org/licenses/by/4.0/"
    assert not LICENCES["restricted"].open


@pytest.mark.parametrize("licence, access, message", [
    ("restricted", "open", "an open layer needs an open licence"),
    ("WTFPL", "open", "unknown licence 'WTFPL'"),
    ("etalab-2.0", "public", "unknown access level 'public'"),
])
def test_bad_licence_or_access_is_refused(catalog, district_gpkg, licence, access, message):
    with pytest.raises(LicenceError, match=message):
        catalog.publish(district_gpkg, "trees", source_layer="trees", licence=licence, access=access)
    assert catalog.layers() == []
    assert_unchanged(catalog)


def test_odbl_share_alike_names_the_input(catalog, district_gpkg, tmp_path):
    product = tmp_path / "footprints.gpkg"
    shutil.copy(district_gpkg, product)
    lineage = {"inputs": [{"path": "lidar/district.laz", "licence": "etalab-2.0"},
                          {"path": "cadastre/buildings.gpkg", "licence": "ODbL-1.0"}]}
    product.with_name("footprints.gpkg.lineage.json").write_text(
        json.dumps({"layers": {"buildings_cadastre": lineage}}), encoding="utf-8")
    with pytest.raises(LicenceError, match="derived from cadastre/buildings.gpkg, licensed ODbL-1.0"):
        catalog.publish(product, "footprints", source_layer="buildings_cadastre", licence="etalab-2.0", access="open")
    assert_unchanged(catalog)
    result = catalog.publish(product, "footprints", source_layer="buildings_cadastre", licence="ODbL-1.0",
                             access="open")
    assert result.version.lineage["inputs"][1]["licence"] == "ODbL-1.0"
    with pytest.raises(LicenceError, match="share-alike"):
        catalog.reclassify("footprints", "shared", licence="restricted")
    catalog.reclassify("footprints", "internal", licence="restricted")  # not public use: allowed


def test_share_alike_follows_catalog_layers_named_in_the_lineage(catalog, district_gpkg):
    catalog.publish(district_gpkg, "cadastre", source_layer="buildings_cadastre", licence="ODbL-1.0", access="open")
    with pytest.raises(LicenceError, match="derived from cadastre"):
        catalog.publish(district_gpkg, "blocks", source_layer="boundary", licence="CC-BY-4.0", access="open",
                        lineage={"inputs": [{"layer": "cadastre"}]})


def test_licence_rules_without_a_catalog():
    """Each rule decides alone: the same inputs pass or are refused by the licence and access level only."""
    odbl_input = [{"path": "a", "licence": "ODbL-1.0"}, {"path": "b"}]  # b: licence unknown, not checked
    assert check_licence_rules("x", "ODbL-1.0", "open", odbl_input) is None
    with pytest.raises(LicenceError, match=r"layer x: derived from a, licensed ODbL-1.0 \(share-alike\), "
                                           r"it must be published under ODbL-1.0, not etalab-2.0"):
        check_licence_rules("x", "etalab-2.0", "open", odbl_input)
    with pytest.raises(LicenceError, match="derived from a"):
        check_licence_rules("x", "restricted", "shared", odbl_input)  # shared with partners: still public use
    assert check_licence_rules("x", "restricted", "internal", odbl_input) is None  # never served: allowed
    with pytest.raises(LicenceError, match="an open layer needs an open licence, not restricted"):
        check_licence_rules("x", "restricted", "open")
    assert check_licence_rules("x", "etalab-2.0", "open", [{"path": "b"}, {"layer": "c", "licence": None}]) is None


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_missing_crs_is_refused(catalog, cadastre, tmp_path):
    product = write_product(cadastre.set_crs(None, allow_override=True), tmp_path / "nocrs.gpkg")
    with pytest.raises(ProductError, match="has no CRS"):
        catalog.publish(product, "buildings", licence="ODbL-1.0", access="open")
    assert_unchanged(catalog)


def test_another_crs_is_refused(catalog, cadastre, tmp_path):
    product = write_product(cadastre.to_crs("EPSG:4326"), tmp_path / "wgs84.gpkg")
    with pytest.raises(ProductError, match="CRS is EPSG:4326, not the declared EPSG:2154"):
        catalog.publish(product, "buildings", licence="ODbL-1.0", access="open")
    assert_unchanged(catalog)


def invalid_product(cadastre, tmp_path):
    frame = cadastre.copy()
    bowtie = shapely.Polygon([(651100, 6861100), (651110, 6861110), (651110, 6861100), (651100, 6861110)])
    frame.loc[[3, 7], "geometry"] = bowtie
    return write_product(frame, tmp_path / "invalid.gpkg")


def test_invalid_geometries_raise_with_count_and_first_feature(catalog, cadastre, tmp_path):
    product = invalid_product(cadastre, tmp_path)
    with pytest.raises(ProductError, match=r"2 invalid or empty geometries, the first in feature 4 \(Self-inter"):
        catalog.publish(product, "buildings", licence="ODbL-1.0", access="open")
    assert_unchanged(catalog)


def test_invalid_geometries_are_fixed_on_request(catalog, cadastre, tmp_path):
    product = invalid_product(cadastre, tmp_path)
    result = catalog.publish(product, "buildings", licence="ODbL-1.0", access="open", on_invalid="fix")
    assert result.version.lineage["publication"]["gates"]["fixed"] == 2
    frame = catalog.read("buildings")
    assert len(frame) == len(cadastre) and frame.is_valid.all()


def test_empty_layer_is_refused_unless_allowed(catalog, cadastre, tmp_path):
    product = write_product(cadastre.iloc[:0], tmp_path / "empty.gpkg")
    with pytest.raises(ProductError, match="no features; publish with --allow-empty"):
        catalog.publish(product, "buildings", licence="ODbL-1.0", access="open")
    assert_unchanged(catalog)
    result = catalog.publish(product, "buildings", licence="ODbL-1.0", access="open", allow_empty=True)
    assert result.version.features == 0 and len(catalog.read("buildings")) == 0


def test_non_utf8_attribute_is_refused(catalog, cadastre, tmp_path):
    product = write_product(cadastre, tmp_path / "latin1.gpkg", SPATIAL_INDEX="NO")
    con = sqlite3.connect(product)
    con.execute("UPDATE data SET commune = CAST(X'5061726973E9' AS TEXT) WHERE fid = 5")
    con.commit()
    con.close()
    with pytest.raises(ProductError, match="attribute 'commune' of feature 5 is not UTF-8"):
        catalog.publish(product, "buildings", licence="ODbL-1.0", access="open")
    assert_unchanged(catalog)


def test_raster_must_be_a_cog(catalog, district, tmp_path):
    with pytest.raises(ProductError, match="not a Cloud-Optimised GeoTIFF"):
        catalog.publish(district / "truth-dtm.tif", "dtm", licence="etalab-2.0", access="open")
    plain, wrong = tmp_path / "plain.tif", tmp_path / "wrong-crs.tif"
    with rasterio.open(district / "truth-dtm.tif") as src:
        profile, data = {**src.profile, "crs": "EPSG:3857"}, src.read()
    with rasterio.open(plain, "w", **profile) as dst:
        dst.write(data)
    rio_copy(plain, wrong, driver="COG")
    with pytest.raises(ProductError, match="not the declared EPSG:2154"):
        catalog.publish(wrong, "dtm", licence="etalab-2.0", access="open")
    assert_unchanged(catalog)


def test_3dtiles_content_must_exist(catalog, tileset, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tileset, broken)
    (broken / "tiles" / "1.glb").unlink()
    with pytest.raises(ProductError, match="content 1.glb does not exist"):
        catalog.publish(broken, "buildings-3d", licence="etalab-2.0", access="open")
    (broken / "tileset.json").write_text("{not json")
    with pytest.raises(ProductError, match="not a readable tileset.json"):
        catalog.publish(broken, "buildings-3d", licence="etalab-2.0", access="open")
    assert_unchanged(catalog)


def _stored_files(catalog) -> list[Path]:
    """Every file under the store's ``files/`` folder (checksum folders and staging alike)."""
    root = catalog.backend.files.root
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def _outside_file(tmp_path) -> Path:
    """A system file when there is one (the case the review reproduced), else a file beside the product."""
    system = Path("/etc/hostname")
    if system.is_file() and os.access(system, os.R_OK):
        return system
    secret = tmp_path / "secret.txt"
    secret.write_text("not part of any product\n")
    return secret


def test_3dtiles_symlink_to_an_outside_file_is_refused(catalog, tileset, tmp_path):
    """A link that no tile references, to a system file: refused, nothing copied or hashed."""
    product = tmp_path / "linked"
    shutil.copytree(tileset, product)
    outside = _outside_file(tmp_path)
    (product / "tiles" / "hostname").symlink_to(outside)
    with pytest.raises(ProductError, match=r"tiles/hostname is a symbolic link to .*, outside the product"):
        catalog.publish(product, "buildings-3d", licence="etalab-2.0", access="open")
    with pytest.raises(ProductError, match="outside the product"):
        sha256_tree(product)  # the checksum never reads the outside file
    assert _stored_files(catalog) == []
    assert_unchanged(catalog)


def test_3dtiles_symlink_to_an_outside_folder_is_refused(catalog, tileset, tmp_path):
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "key.txt").write_text("secret")
    product = tmp_path / "linked"
    shutil.copytree(tileset, product)
    (product / "tiles" / "private").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ProductError, match="outside the product"):
        catalog.publish(product, "buildings-3d", licence="etalab-2.0", access="open")
    assert _stored_files(catalog) == []
    assert_unchanged(catalog)


def test_filestore_copies_only_the_products_own_files(tmp_path, tileset):
    """The file store refuses a link outside even when called without the catalog's checksum first."""
    product = tmp_path / "linked"
    shutil.copytree(tileset, product)
    (product / "tiles" / "hostname").symlink_to(_outside_file(tmp_path))
    store = FileStore(tmp_path / "files")
    with pytest.raises(ProductError, match="outside the product"):
        store.put(product, "0" * 64, "token")
    assert not [p for p in store.root.rglob("*") if p.is_file()]


def test_3dtiles_symlink_to_a_file_inside_is_stored_as_that_file(catalog, tileset, tmp_path):
    product = tmp_path / "aliased"
    shutil.copytree(tileset, product)
    (product / "tiles" / "alias.glb").symlink_to("0.glb")
    tileset_json = json.loads((product / "tileset.json").read_text())
    tileset_json["root"]["content"]["uri"] = "tiles/alias.glb"
    (product / "tileset.json").write_text(json.dumps(tileset_json))
    result = catalog.publish(product, "buildings-3d", licence="etalab-2.0", access="open")
    stored = catalog.path("buildings-3d").parent
    alias = stored / "tiles" / "alias.glb"
    assert alias.is_file() and not alias.is_symlink()
    assert alias.read_bytes() == (tileset / "tiles" / "0.glb").read_bytes()
    assert all(not p.is_symlink() for p in stored.rglob("*"))
    assert result.version.checksum == sha256_tree(stored)


@pytest.mark.parametrize("uri", ["../../x.glb", "../outside.glb", "/etc/hostname", "https://example.org/0.glb"])
def test_3dtiles_content_outside_the_product_is_named_so(catalog, tileset, tmp_path, uri):
    product = tmp_path / "product" / "escaping"
    shutil.copytree(tileset, product)
    (tmp_path / "product" / "outside.glb").write_bytes(b"glTF" + bytes(20))  # exists, but not in the product
    tileset_json = json.loads((product / "tileset.json").read_text())
    tileset_json["root"]["content"]["uri"] = uri
    (product / "tileset.json").write_text(json.dumps(tileset_json))
    with pytest.raises(ProductError, match=f"content {re.escape(uri)} lies outside the product"):
        catalog.publish(product, "buildings-3d", licence="etalab-2.0", access="open")
    assert_unchanged(catalog)
