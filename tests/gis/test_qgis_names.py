"""The city GIS as QGIS sees it: stable names on the current version, styles, metadata, on both backends.

Oracles: the frames the tests generate (ids, heights, geometries), GDAL's own
reading (pyogrio on the GeoPackage; ogr2ogr's PostgreSQL driver on PostGIS),
psycopg, and an XML parser for the styles.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from contextlib import closing
from pathlib import Path
from xml.etree import ElementTree as ET

import geopandas as gpd
import numpy as np
import pytest
import shapely
from click.testing import CliRunner

from catalog_products import store_yaml
from gis.cli import cli
from gis.errors import InputError
from qgis_readers import listed_names, read_psycopg, read_stable

ROOT = Path(__file__).resolve().parents[2]
META = dict(licence="ODbL-1.0", access="open", theme="buildings", title="Bâtiments", description="Emprises au sol")


def buildings(count: int, first: int = 0, height: float = 10.0) -> gpd.GeoDataFrame:
    """``count`` squares on a row, ids from ``first``, heights from ``height`` upwards."""
    index = np.arange(first, first + count)
    x = 651000.0 + index * 30.0
    return gpd.GeoDataFrame({"bid": index.astype("int64"), "height_m": height + np.arange(count) * 0.5},
                            geometry=shapely.box(x, 6861000.0, x + 12.0, 6861012.0), crs="EPSG:2154")


def assert_reads(frame, expected) -> None:
    frame = frame.sort_values("bid").reset_index(drop=True)
    assert frame.crs.to_epsg() == 2154
    assert frame["bid"].tolist() == expected["bid"].tolist()
    assert np.allclose(frame["height_m"], expected["height_m"])
    assert shapely.equals(np.asarray(frame.geometry.values), np.asarray(expected.geometry.values)).all()


def test_the_stable_name_reads_the_current_version_through_every_change(catalog, tmp_path):
    first, second = buildings(40), buildings(25, first=100, height=30.0)
    catalog.publish(first, "buildings", **META)
    assert listed_names(catalog) - {"layer_styles"} == {"buildings"}  # no version table, no lutece_ table
    assert_reads(read_stable(catalog, "buildings", tmp_path), first)
    catalog.publish(second, "buildings")
    assert_reads(read_stable(catalog, "buildings", tmp_path), second)
    box = (651000.0 + 110 * 30, 6861000.0, 651000.0 + 114 * 30 + 1, 6861005.0)
    wanted = second[second.intersects(shapely.box(*box))]
    assert len(wanted) == 5
    assert_reads(read_stable(catalog, "buildings", tmp_path, bbox=box), wanted)
    if catalog.backend.name == "geopackage":  # GDAL found the R-tree declared for the view
        import pyogrio

        assert pyogrio.read_info(catalog.backend.gpkg, layer="buildings")["capabilities"]["fast_spatial_filter"]
    catalog.rollback("buildings")
    assert_reads(read_stable(catalog, "buildings", tmp_path), first)
    if catalog.backend.name == "postgis":
        assert read_psycopg(catalog, "buildings") == (first["bid"].tolist(), 2154)
    catalog.withdraw("buildings")
    assert "buildings" not in listed_names(catalog)
    catalog.rollback("buildings", to=2)
    assert_reads(read_stable(catalog, "buildings", tmp_path), second)


def test_a_reader_holding_the_name_reads_one_version_whole(catalog, store, tmp_path):
    """GDAL streams the old version by batches while another process (GeoPackage) or thread (PostGIS) publishes."""
    old, new = buildings(60), buildings(30, first=500, height=50.0)
    catalog.publish(old, "buildings", **META)
    if catalog.backend.name == "geopackage":
        import pyogrio

        config = tmp_path / "lutece.yml"
        config.write_text(store_yaml(store))
        product = tmp_path / "new.gpkg"
        new.to_file(product, engine="pyogrio")
        with pyogrio.open_arrow(catalog.backend.gpkg, layer="buildings", batch_size=10, use_pyarrow=True) as source:
            _meta, reader = source
            batches = [reader.read_next_batch()]
            subprocess.run([sys.executable, "-m", "gis", "--config", str(config), "publish", str(product),
                            "--layer", "buildings"], check=True, cwd=tmp_path, capture_output=True,
                           env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
            batches += list(reader)
        seen = [value for batch in batches for value in batch.column("bid").to_pylist()]
    else:
        import psycopg

        with psycopg.connect(catalog.backend.dsn) as con, con.cursor(name="held") as cur:
            cur.execute("SELECT bid FROM city.buildings ORDER BY bid")
            seen = [row[0] for row in cur.fetchmany(10)]
            publisher = threading.Thread(target=catalog.publish, args=(new, "buildings"))
            publisher.start()
            publisher.join(timeout=1.0)
            assert publisher.is_alive()  # the switch waits for the reader
            seen += [row[0] for row in cur.fetchall()]
            con.commit()
        publisher.join(timeout=60)
    assert seen == old["bid"].tolist()
    assert_reads(read_stable(catalog, "buildings", tmp_path), new)


def _styles(catalog) -> dict[str, tuple[str, str | None, str]]:
    backend = catalog.backend
    if backend.name == "geopackage":
        import sqlite3

        with closing(sqlite3.connect(backend.gpkg)) as con:  # closed at once: GDAL's SQLite opens this file too
            rows = con.execute("SELECT f_table_name, styleQML, styleSLD, description FROM layer_styles").fetchall()
    else:
        import psycopg

        with psycopg.connect(backend.dsn) as con:
            rows = con.execute("SELECT f_table_name, styleqml::text, stylesld::text, description "
                               "FROM public.layer_styles WHERE f_table_schema='city'").fetchall()
    return {name: (qml, sld, note) for name, qml, sld, note in rows}


def test_default_styles_from_kind_and_theme_and_a_given_qml(catalog, tmp_path, cog):
    contours = gpd.GeoDataFrame({"elevation": [31.0, 32.0, 35.0]}, crs="EPSG:2154", geometry=[
        shapely.LineString([(651000, 6861000 + i), (651100, 6861000 + i)]) for i in range(3)])
    trees = gpd.GeoDataFrame({"height_m": [8.0, 12.0], "crown_radius_m": [2.0, 4.5]}, crs="EPSG:2154",
                             geometry=shapely.points([(651000, 6861000), (651050, 6861050)]))
    catalog.publish(buildings(20), "buildings", **META)
    catalog.publish(contours, "contours", licence="etalab-2.0", access="open", theme="elevation")
    catalog.publish(trees, "trees", licence="restricted", access="shared", theme="vegetation")
    catalog.publish(cog, "dtm", licence="etalab-2.0", access="open", theme="elevation")
    styles = _styles(catalog)
    assert set(styles) == {"buildings", "contours", "trees", "dtm"}
    parsed = {name: ET.fromstring(qml.encode()) for name, (qml, _sld, _note) in styles.items()}
    for name, (_qml, sld, _note) in styles.items():
        assert ET.fromstring(sld.encode()).tag.endswith("StyledLayerDescriptor")
    renderer = parsed["buildings"].find("renderer-v2")
    assert (renderer.get("type"), renderer.get("attr")) == ("graduatedSymbol", "height_m")
    bounds = [(float(r.get("lower")), float(r.get("upper"))) for r in renderer.iter("range")]
    assert bounds[0][0] == 10.0 and bounds[-1][1] == 19.5  # the data's range (heights 10 to 19.5)
    assert parsed["contours"].find("renderer-v2").get("attr") == "elevation"
    size = next(o for o in parsed["trees"].iter("Option") if o.get("name") == "expression")
    assert size.get("value") == '2 * "crown_radius_m"'  # the crown's diameter, in map units
    assert parsed["dtm"].find("pipe/rasterrenderer").get("type") == "singlebandpseudocolor"

    given = tmp_path / "mine.qml"
    given.write_text("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
                     "<qgis version=\"3.34.0\"><renderer-v2 type=\"singleSymbol\"/></qgis>")
    catalog.publish(buildings(20, height=40.0), "buildings", style=given)
    assert _styles(catalog)["buildings"][0] == given.read_text()
    catalog.publish(buildings(21), "buildings")  # a later version keeps the given style
    assert _styles(catalog)["buildings"][0] == given.read_text()


def test_metadata_as_gdal_shows_it(catalog, tmp_path):
    catalog.publish(buildings(5), "buildings", keywords=["bâti", "cadastre"], **META)
    catalog.publish(buildings(6), "buildings")
    catalog.reclassify("buildings", "shared")  # the metadata follows the access level
    version = catalog.version("buildings")
    if catalog.backend.name == "geopackage":
        import pyogrio

        items = pyogrio.read_info(catalog.backend.gpkg, layer="buildings")["layer_metadata"]
        assert items["TITLE"] == "Bâtiments" and items["ABSTRACT"] == "Emprises au sol"
        assert items["LICENCE"].startswith("ODbL-1.0") and items["ACCESS"] == "shared"
        assert items["KEYWORDS"] == "bâti, cadastre" and items["VERSION"] == "2"
        assert items["PUBLISHED"] == version.published
        qgis = next(value for key, value in items.items() if key.startswith("GPKG_METADATA_ITEM"))
        assert ET.fromstring(qgis.split("\n", 1)[1]).findtext("title") == "Bâtiments"
    else:
        import psycopg

        with psycopg.connect(catalog.backend.dsn) as con:
            (comment,) = con.execute("SELECT obj_description('city.buildings'::regclass)").fetchone()
        assert comment.startswith("Bâtiments\n\nEmprises au sol\n")
        for line in ("access: shared", "version: 2", f"published: {version.published}", "keywords: bâti, cadastre"):
            assert line in comment.splitlines()


def test_file_layers_have_a_stable_path(catalog, cog, tileset, tmp_path):
    import rasterio
    import rasterio.shutil

    other = tmp_path / "other.tif"
    with rasterio.open(cog) as source:
        profile, data = source.profile, source.read()
    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", **{**profile, "driver": "GTiff"}) as target:
        target.write(data + 1)
    rasterio.shutil.copy(plain, other, driver="COG")
    catalog.publish(cog, "dtm", licence="etalab-2.0", access="open", theme="elevation")
    stable = Path(catalog.open_in_qgis("dtm"))
    assert stable.name == "dtm.tif" and stable.resolve() == catalog.path("dtm").resolve()
    assert stable.with_suffix(".qml").is_file()
    given = tmp_path / "terrain.qml"
    given.write_text('<qgis version="3.34.0"><pipe/></qgis>')
    catalog.publish(other, "dtm", kind="raster", style=given)
    with rasterio.open(stable) as reopened:
        assert float(reopened.read(1)[0, 0]) == float(data[0, 0, 0] + 1)
    catalog.rollback("dtm")
    with rasterio.open(stable) as reopened:
        assert float(reopened.read(1)[0, 0]) == float(data[0, 0, 0])
    assert stable.with_suffix(".qml").read_text() == given.read_text()  # the given style stays
    stable.unlink()  # as a kill between the switch and the link would leave it
    catalog.gc()
    assert stable.resolve() == catalog.path("dtm").resolve()
    catalog.withdraw("dtm")
    assert not stable.exists() and not stable.is_symlink()
    catalog.publish(tileset, "buildings-3d", kind="mesh-3dtiles", licence="etalab-2.0", access="open")
    tiles = Path(catalog.open_in_qgis("buildings-3d"))
    assert tiles == tiles.parent.parent / "buildings-3d" / "tileset.json"
    assert tiles.read_bytes() == (tileset / "tileset.json").read_bytes()


def test_bad_input_clear_errors(store, catalog, tmp_path):
    config = tmp_path / "lutece.yml"
    config.write_text(store_yaml(store))
    product = tmp_path / "b.gpkg"
    buildings(3).to_file(product, engine="pyogrio")
    not_qml = tmp_path / "style.sld"
    not_qml.write_text('<StyledLayerDescriptor version="1.0.0"/>')
    result = CliRunner().invoke(cli, ["--config", str(config), "publish", str(product), "--layer", "buildings",
                                      "--licence", "ODbL-1.0", "--access", "open", "--style", str(not_qml)])
    assert result.exit_code == 1 and "not a QGIS style file (QML)" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and catalog.layers() == []
    with pytest.raises(InputError, match="internal table"):
        catalog.publish(buildings(3), "layer-styles", **META)
    _make_table(catalog, "roads")
    with pytest.raises(InputError, match="roads.*choose another layer id"):
        catalog.publish(buildings(3), "roads", **META)
    assert catalog.layers() == [] and catalog.events() == []
    catalog.publish(buildings(3), "buildings", **META)
    result = CliRunner().invoke(cli, ["--config", str(config), "layers", "open-in-qgis", "buildings"])
    expected = f"{catalog.backend.gpkg.resolve()}|layername=buildings" if store["backend"] == "geopackage" \
        else "table=\"city\".\"buildings\" (geometry)"
    assert result.exit_code == 0 and expected in result.output


def _make_table(catalog, name: str) -> None:
    """A table an analyst saved into the store by hand."""
    if catalog.backend.name == "geopackage":
        import sqlite3

        with closing(sqlite3.connect(catalog.backend.gpkg, isolation_level=None)) as con:  # closed before GDAL writes
            con.execute(f'CREATE TABLE "{name}" (id INTEGER PRIMARY KEY)')
    else:
        import psycopg

        with psycopg.connect(catalog.backend.dsn) as con:
            con.execute("CREATE SCHEMA IF NOT EXISTS city")
            con.execute(f'CREATE TABLE city."{name}" (id integer)')
