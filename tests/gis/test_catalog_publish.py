"""Publication, reading back, versions, rollback, retention, withdraw, reclassify, change feed."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
import rasterio

from catalog_products import assert_no_orphans, assert_stored, orphans, reference_checksum, write_product
from gis.checksums import sha256_tree
from gis.errors import InputError, LayerNotFound, PublishConflict


def publish_cadastre(catalog, district_gpkg, **options):
    options = {"licence": "ODbL-1.0", "access": "open", **options}
    return catalog.publish(district_gpkg, "buildings", source_layer="buildings_cadastre", **options)


def test_publish_and_read_back_a_vector_layer(catalog, district_gpkg, cadastre):
    result = publish_cadastre(catalog, district_gpkg, title="Bâtiments (cadastre)", title_en="Buildings",
                              keywords=["bâti", "cadastre"], theme="buildings", producer="Service du cadastre",
                              note="first load")
    layer, version = result.layer, result.version
    assert (layer.id, layer.kind, layer.crs, layer.current_version) == ("buildings", "vector", "EPSG:2154", 1)
    assert layer.title == "Bâtiments (cadastre)" and layer.keywords == ("bâti", "cadastre")
    assert layer.extent == pytest.approx(tuple(cadastre.total_bounds))
    assert version.features == len(cadastre) and version.note == "first load" and "@" in version.publisher
    assert version.lineage["publication"]["source_layer"] == "buildings_cadastre"
    frame = catalog.read("buildings")
    assert len(frame) == len(cadastre) and frame.crs == cadastre.crs
    assert sorted(frame["cadastre_id"]) == sorted(cadastre["cadastre_id"])
    assert frame.geometry.geom_equals_exact(cadastre.geometry, 0).all()
    assert_stored(catalog, version, cadastre)
    assert version.checksum == reference_checksum(cadastre)
    assert len(catalog.read("buildings", bbox=tuple(cadastre.iloc[0].geometry.bounds))) >= 1


def test_vector_versions_are_geopackage_tables_with_an_rtree_index(catalog, district_gpkg, store):
    publish_cadastre(catalog, district_gpkg)
    if store["backend"] != "geopackage":
        pytest.skip("GeoPackage storage only")
    con = sqlite3.connect(f"{store['path']}/catalog.gpkg")
    extensions = con.execute("SELECT table_name, extension_name FROM gpkg_extensions").fetchall()
    assert ("buildings__v1", "gpkg_rtree_index") in extensions
    assert con.execute('SELECT count(*) FROM "rtree_buildings__v1_geom"').fetchone()[0] == 107
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_versions_rollback_and_retention(catalog, district_gpkg, tmp_path, cadastre):
    smaller = write_product(cadastre.iloc[:50], tmp_path / "smaller.gpkg")
    publish_cadastre(catalog, district_gpkg)
    catalog.publish(smaller, "buildings", note="fifty")
    assert catalog.layer("buildings").current_version == 2 and len(catalog.read("buildings")) == 50
    event = catalog.rollback("buildings")
    assert (event.action, event.version, event.previous_version) == ("rollback", 1, 2)
    assert len(catalog.read("buildings")) == 107
    catalog.rollback("buildings", to=2)
    assert len(catalog.read("buildings")) == 50
    for _ in range(3):  # retention 3: versions 1 and 2 go, their data with them
        catalog.publish(smaller, "buildings", force=True)
    assert [v.number for v in catalog.history("buildings")] == [3, 4, 5]
    with pytest.raises(LayerNotFound, match="no version 1"):
        catalog.rollback("buildings", to=1)
    assert len(catalog.read("buildings", number=3)) == 50
    assert_no_orphans(catalog)


def test_withdraw_and_reclassify(catalog, district_gpkg):
    publish_cadastre(catalog, district_gpkg)
    event = catalog.withdraw("buildings")
    assert (event.version, event.previous_version) == (None, 1)
    assert catalog.layer("buildings").withdrawn
    with pytest.raises(LayerNotFound, match="withdrawn"):
        catalog.read("buildings")
    catalog.rollback("buildings")
    assert catalog.layer("buildings").current_version == 1
    event = catalog.reclassify("buildings", "internal", licence="restricted")
    assert (event.access_before, event.access_after, event.licence) == ("open", "internal", "restricted")
    assert catalog.layer("buildings").licence == "restricted"


def test_change_feed_has_strictly_increasing_sequence_numbers(catalog, district_gpkg):
    publish_cadastre(catalog, district_gpkg)
    publish_cadastre(catalog, district_gpkg, force=True)
    catalog.reclassify("buildings", "shared")
    catalog.rollback("buildings")
    catalog.withdraw("buildings")
    events = catalog.events()
    assert [e.action for e in events] == ["publish", "publish", "reclassify", "rollback", "withdraw"]
    seqs = [e.seq for e in events]
    assert all(a < b for a, b in zip(seqs, seqs[1:]))
    assert [(e.access_before, e.access_after) for e in events][:3] == [(None, "open"), ("open", "open"),
                                                                       ("open", "shared")]
    assert catalog.events(after=seqs[2]) == events[3:]
    assert catalog.events(after=seqs[0], limit=1) == events[1:2]
    json.dumps([e.to_dict() for e in events])


def test_publish_a_cog_raster(catalog, cog):
    result = catalog.publish(cog, "dtm", licence="etalab-2.0", access="open", title="MNT 0,5 m")
    assert result.layer.kind == "raster" and result.version.storage.startswith(f"files:{result.version.checksum}/")
    path = catalog.path("dtm")
    assert path.read_bytes() == cog.read_bytes()
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 2154
    again = catalog.publish(cog, "dtm", force=True)  # same content: the folder is shared, not copied twice
    assert catalog.path("dtm") == path and again.version.number == 2


def test_publishing_the_same_data_again_changes_nothing(catalog, district_gpkg, cog):
    first = publish_cadastre(catalog, district_gpkg, title="Bâtiments")
    catalog.publish(cog, "dtm", licence="etalab-2.0", access="open")
    seq = catalog.events()[-1].seq
    again = publish_cadastre(catalog, district_gpkg, title="Bâtiments", note="nightly rerun")
    same_raster = catalog.publish(cog, "dtm")
    assert again.event is None and again.version == first.version and same_raster.event is None
    assert catalog.events(after=seq) == [] and [v.number for v in catalog.history("buildings")] == [1]
    # Another title, licence or access level, or a forced publication, makes a new version.
    assert publish_cadastre(catalog, district_gpkg, title="Emprises").version.number == 2
    assert publish_cadastre(catalog, district_gpkg, access="shared").version.number == 3
    assert publish_cadastre(catalog, district_gpkg, force=True).version.number == 4


def test_publish_a_3dtiles_folder(catalog, tileset):
    result = catalog.publish(tileset, "buildings-3d", licence="etalab-2.0", access="open")
    assert result.layer.kind == "mesh-3dtiles" and result.version.checksum == sha256_tree(tileset)
    root = catalog.path("buildings-3d")
    assert root.name == "tileset.json" and (root.parent / "tiles" / "1.glb").is_file()
    assert result.version.lineage["publication"]["gates"]["tiles"] == 2


def test_the_expected_version_is_checked(catalog, district_gpkg):
    publish_cadastre(catalog, district_gpkg)
    with pytest.raises(PublishConflict, match="version 1, not version 3"):
        publish_cadastre(catalog, district_gpkg, expected_version=3)
    with pytest.raises(PublishConflict, match="not a new layer"):
        publish_cadastre(catalog, district_gpkg, expected_version=None)
    assert catalog.layer("buildings").current_version == 1 and len(catalog.events()) == 1
    assert_no_orphans(catalog)


def test_unknown_layer_and_kind_change(catalog, district_gpkg, cog):
    with pytest.raises(LayerNotFound, match="no layer 'nothing'"):
        catalog.layer("nothing")
    publish_cadastre(catalog, district_gpkg)
    with pytest.raises(InputError, match="is a vector layer"):
        catalog.publish(cog, "buildings")
    with pytest.raises(InputError, match="not a slug"):
        catalog.publish(cog, "Bad_Id", licence="etalab-2.0", access="open")


def test_leftovers_are_found_in_the_store_itself(catalog, district_gpkg, cog, cadastre):
    """The no-orphan check lists what the store holds (not what gc reports): it sees leftovers, and gc clears them."""
    publish_cadastre(catalog, district_gpkg)
    raster = catalog.publish(cog, "dtm", licence="etalab-2.0", access="open").version
    assert_no_orphans(catalog)
    backend = catalog.backend
    if backend.name == "geopackage":
        write_product(cadastre.iloc[:3], backend.gpkg, layer="buildings__v9")  # a killed publication's table
    else:
        import psycopg

        with psycopg.connect(backend.dsn) as con:
            con.execute('CREATE TABLE lutece_data."buildings__v9" (lutece_fid bigint PRIMARY KEY)')
    stray = backend.files.root / ("0" * 64)
    stray.mkdir()
    (stray / "dtm.tif").write_bytes(b"II*\0")
    staged = backend.files.root / ".staging" / "deadbeef"
    staged.mkdir(parents=True)
    (staged / "part").write_bytes(b"x")
    found = orphans(catalog)
    assert "buildings__v9" in found["tables"] and found["files"] == ["0" * 64] and found["staging"] == ["deadbeef"]
    catalog.gc()
    assert_no_orphans(catalog)
    kept = catalog.path("dtm").parent
    shutil.rmtree(kept)  # data a version references, gone
    assert orphans(catalog)["missing"] == [raster.storage.removeprefix("files:").split("/")[0]]
