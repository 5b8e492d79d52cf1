"""Stable layer names in the catalog GeoPackage: one view per vector layer on its current version's table.

GDAL's spatial-view recipe: the view ``buildings`` selects ``*`` from
``buildings__v3`` (its ``fid`` included, which GDAL takes as the view's
FID), is registered in ``gpkg_contents`` and ``gpkg_geometry_columns``, and
declares an R-tree (``gpkg_extensions``) whose conventional name
``rtree_buildings_geometry`` is a view of the version table's R-tree: a
bbox read through the view is answered by that index
(``fid IN (SELECT id FROM rtree_buildings_geometry WHERE ...)``).

Everything here runs inside the caller's transaction, the one that makes a
version current, so the name, its metadata (``gpkg_metadata``) and its style
(``layer_styles``, the table QGIS reads) switch with the catalog or not at all.

Version tables stay GeoPackage feature tables for Lutèce (``gpkg_geometry_columns``)
but their ``gpkg_contents`` type is ``lutece_version``: GDAL and QGIS do not list
them, and since ``layer_styles`` is a registered attributes table, GDAL's default
(``LIST_ALL_TABLES=AUTO``) does not list unregistered tables either.
"""

from __future__ import annotations

import re
import sqlite3

from gis.backends.gpkg_schema import VERSION_TABLE, quote
from gis.errors import InputError
from gis.qgis.presentation import DEFAULT_STYLE, GDAL_METADATA_URI, QGIS_METADATA_URI, Presentation, Style

HIDDEN_TYPE = "lutece_version"
OUR_VIEW = re.compile(r'AS SELECT \* FROM "[a-z0-9_]+__v[0-9]+"$')
RTREE_URI = "http://www.geopackage.org/spec120/#extension_rtree"
METADATA_URI = "http://www.geopackage.org/spec120/#extension_metadata"

TABLES = f"""
CREATE TABLE IF NOT EXISTS gpkg_extensions (
    table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL, definition TEXT NOT NULL, scope TEXT NOT NULL,
    CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name));
CREATE TABLE IF NOT EXISTS gpkg_geometry_columns (
    table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL,
    z TINYINT NOT NULL, m TINYINT NOT NULL, CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
    CONSTRAINT uk_gc_table_name UNIQUE (table_name),
    CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
    CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));
CREATE TABLE IF NOT EXISTS gpkg_metadata (
    id INTEGER CONSTRAINT m_pk PRIMARY KEY ASC NOT NULL,
    md_scope TEXT NOT NULL DEFAULT 'dataset',
    md_standard_uri TEXT NOT NULL,
    mime_type TEXT NOT NULL DEFAULT 'text/xml',
    metadata TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS gpkg_metadata_reference (
    reference_scope TEXT NOT NULL,
    table_name TEXT,
    column_name TEXT,
    row_id_value INTEGER,
    timestamp DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    md_file_id INTEGER NOT NULL,
    md_parent_id INTEGER,
    CONSTRAINT crmr_mfi_fk FOREIGN KEY (md_file_id) REFERENCES gpkg_metadata(id),
    CONSTRAINT crmr_mpi_fk FOREIGN KEY (md_parent_id) REFERENCES gpkg_metadata(id));
CREATE TABLE IF NOT EXISTS layer_styles (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    f_table_catalog TEXT(256), f_table_schema TEXT(256), f_table_name TEXT(256), f_geometry_column TEXT(256),
    styleName TEXT(30), styleQML TEXT, styleSLD TEXT, useAsDefault BOOLEAN, description TEXT, owner TEXT(30),
    ui TEXT(30), update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));
INSERT OR IGNORE INTO gpkg_extensions VALUES ('gpkg_metadata', NULL, 'gpkg_metadata', '{METADATA_URI}', 'read-write');
INSERT OR IGNORE INTO gpkg_extensions VALUES
    ('gpkg_metadata_reference', NULL, 'gpkg_metadata', '{METADATA_URI}', 'read-write');
"""


def prepare(con: sqlite3.Connection) -> None:
    """Create the metadata and style tables when missing; hide the internal tables from GDAL's listing."""
    exists = con.execute("SELECT 1 FROM gpkg_contents WHERE table_name='layer_styles'").fetchone()
    if exists:
        return
    for statement in TABLES.split(";"):
        if statement.strip():
            con.execute(statement)
    con.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) "
                "VALUES ('layer_styles', 'attributes', 'layer_styles', 'QGIS styles of the layers', 0)")
    con.execute("DELETE FROM gpkg_contents WHERE table_name='lutece_meta'")  # internal: not a layer
    con.execute("DELETE FROM gpkg_ogr_contents WHERE table_name='lutece_meta'")
    for (table,) in con.execute("SELECT table_name FROM gpkg_contents WHERE data_type='features'").fetchall():
        if VERSION_TABLE.match(table):
            hide_table(con, table)


def hide_table(con: sqlite3.Connection, table: str) -> None:
    """Keep a version table out of GDAL's and QGIS's layer lists (it stays readable by name through SQL)."""
    con.execute("UPDATE gpkg_contents SET data_type=?, identifier=table_name WHERE table_name=?",
                (HIDDEN_TYPE, table))


def check_name(con: sqlite3.Connection, name: str) -> None:
    """Refuse a stable name that is already a table or view of the GeoPackage other than our layer view."""
    row = con.execute("SELECT type, sql FROM sqlite_master WHERE lower(name)=lower(?) AND type IN ('table', 'view')",
                      (name,)).fetchone()
    if row is not None and not (row[0] == "view" and OUR_VIEW.search(row[1] or "")):
        raise InputError(f"layer id {name!r} is the name of a {row[0]} already in the city GeoPackage "
                         f"(not a Lutèce layer view); choose another layer id")


def switch(con: sqlite3.Connection, presentation: Presentation, table: str | None) -> None:
    """Point the layer's name at ``table`` (a version table), or remove it (``table`` None: withdrawn)."""
    prepare(con)
    name = presentation.layer_id
    check_name(con, name)
    _drop_name(con, name)
    geometry = None
    if table is not None:
        geometry = _create_view(con, name, table, presentation)
        _write_metadata(con, name, presentation)
    if presentation.style is not None and (table is not None or presentation.kind != "vector"):
        write_style(con, name, geometry, presentation)


def _drop_name(con: sqlite3.Connection, name: str) -> None:
    row = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name=?", (name,)).fetchone()
    if row is not None:
        con.execute(f"DROP VIEW IF EXISTS {quote(f'rtree_{name}_{row[0]}')}")
    con.execute(f"DROP VIEW IF EXISTS {quote(name)}")
    for table in ("gpkg_extensions", "gpkg_geometry_columns", "gpkg_contents"):
        con.execute(f"DELETE FROM {table} WHERE table_name=?", (name,))
    ids = [md for (md,) in con.execute("SELECT md_file_id FROM gpkg_metadata_reference WHERE table_name=?", (name,))]
    con.execute("DELETE FROM gpkg_metadata_reference WHERE table_name=?", (name,))
    con.executemany("DELETE FROM gpkg_metadata WHERE id=?", [(md,) for md in ids])


def _create_view(con: sqlite3.Connection, name: str, table: str, presentation: Presentation) -> str:
    geometry, geometry_type, srs_id, z, m = con.execute(
        "SELECT column_name, geometry_type_name, srs_id, z, m FROM gpkg_geometry_columns WHERE table_name=?",
        (table,)).fetchone()
    con.execute(f"CREATE VIEW {quote(name)} AS SELECT * FROM {quote(table)}")
    bounds = con.execute("SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name=?",
                         (table,)).fetchone() or (None,) * 4
    con.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, description, last_change, "
                "min_x, min_y, max_x, max_y, srs_id) VALUES (?, 'features', ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, _identifier(con, presentation), presentation.abstract or presentation.title,
                 _gpkg_time(presentation.published), *bounds, srs_id))
    con.execute("INSERT INTO gpkg_geometry_columns VALUES (?, ?, ?, ?, ?, ?)", (name, geometry, geometry_type,
                                                                               srs_id, z, m))
    rtree = f"rtree_{table}_{geometry}"
    if con.execute("SELECT 1 FROM sqlite_master WHERE name=?", (rtree,)).fetchone():
        con.execute(f"CREATE VIEW {quote(f'rtree_{name}_{geometry}')} AS SELECT * FROM {quote(rtree)}")
        con.execute("INSERT INTO gpkg_extensions VALUES (?, ?, 'gpkg_rtree_index', ?, 'write-only')",
                    (name, geometry, RTREE_URI))
    return geometry


def _identifier(con: sqlite3.Connection, presentation: Presentation) -> str:
    """The title, unless another layer has it (gpkg_contents' identifiers are unique)."""
    taken = con.execute("SELECT 1 FROM gpkg_contents WHERE identifier=?", (presentation.title,)).fetchone()
    return f"{presentation.title} ({presentation.layer_id})" if taken else presentation.title


def _gpkg_time(published: str | None) -> str:
    """A catalog time (ISO 8601, +00:00) as GeoPackage writes it (``...Z``, milliseconds)."""
    if not published:
        return ""
    return published[:23].replace("+00:00", "") + "Z"


def _write_metadata(con: sqlite3.Connection, name: str, presentation: Presentation) -> None:
    for uri, document in ((GDAL_METADATA_URI, presentation.gdal_metadata()),
                          (QGIS_METADATA_URI, presentation.qgis_metadata())):
        md = con.execute("INSERT INTO gpkg_metadata (md_scope, md_standard_uri, mime_type, metadata) "
                         "VALUES ('dataset', ?, 'text/xml', ?)", (uri, document)).lastrowid
        con.execute("INSERT INTO gpkg_metadata_reference (reference_scope, table_name, timestamp, md_file_id) "
                    "VALUES ('table', ?, ?, ?)", (name, _gpkg_time(presentation.published), md))


def given_style(con: sqlite3.Connection, name: str) -> Style | None:
    """The style given for the layer (not the default), if any."""
    if not con.execute("SELECT 1 FROM sqlite_master WHERE name='layer_styles'").fetchone():
        return None
    row = con.execute("SELECT styleQML, styleSLD, description FROM layer_styles WHERE f_table_name=? "
                      "AND owner='lutece' AND description<>?", (name, DEFAULT_STYLE)).fetchone()
    return Style(row[0], row[1], row[2]) if row else None


def write_style(con: sqlite3.Connection, name: str, geometry: str | None, presentation: Presentation) -> None:
    """The layer's default row of ``layer_styles``; a given style stays until another is given."""
    style = presentation.style
    kept = con.execute("SELECT description FROM layer_styles WHERE f_table_name=? AND owner='lutece'",
                       (name,)).fetchone()
    if style.is_default and kept is not None and kept[0] != style.note:
        con.execute("UPDATE layer_styles SET f_geometry_column=? WHERE f_table_name=? AND owner='lutece'",
                    (geometry, name))
        return
    con.execute("DELETE FROM layer_styles WHERE f_table_name=? AND owner='lutece'", (name,))
    con.execute("INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, "
                "styleName, styleQML, styleSLD, useAsDefault, description, owner) "
                "VALUES ('', '', ?, ?, ?, ?, ?, 1, ?, 'lutece')",
                (name, geometry, name, style.qml, style.sld, style.note))


def rtree_filter(con: sqlite3.Connection, table: str, bbox) -> str:
    """`` WHERE rowid IN (<R-tree query>)`` for a bbox on a version table ('' without an R-tree)."""
    row = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name=?", (table,)).fetchone()
    rtree = f"rtree_{table}_{row[0]}" if row else None
    if rtree is None or not con.execute("SELECT 1 FROM sqlite_master WHERE name=?", (rtree,)).fetchone():
        return ""
    minx, miny, maxx, maxy = (float(value) for value in bbox)
    return (f" WHERE rowid IN (SELECT id FROM {quote(rtree)} WHERE maxx >= {minx!r} AND minx <= {maxx!r} "
            f"AND maxy >= {miny!r} AND miny <= {maxy!r})")


def summary(con: sqlite3.Connection, table: str, columns: tuple[str, ...]) -> tuple[str | None, dict]:
    """The table's geometry type name and the (min, max) of those of ``columns`` it has as numbers."""
    row = con.execute("SELECT geometry_type_name FROM gpkg_geometry_columns WHERE table_name=?", (table,)).fetchone()
    numeric = {name for _cid, name, kind, *_rest in con.execute(f"PRAGMA table_info({quote(table)})")
               if (kind or "").upper() in ("REAL", "DOUBLE", "FLOAT", "INTEGER", "MEDIUMINT", "SMALLINT", "TINYINT")}
    ranges = {}
    for name in (name for name in columns if name in numeric):
        low, high = con.execute(f"SELECT min({quote(name)}), max({quote(name)}) FROM {quote(table)}").fetchone()
        if low is not None:
            ranges[name] = (float(low), float(high))
    return (row[0] if row else None), ranges
