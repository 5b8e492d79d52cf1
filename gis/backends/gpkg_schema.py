"""The catalog tables of the GeoPackage backend and its data tables.

The catalog tables carry no geometry, so they are plain SQLite tables of the
GeoPackage, created and used through Python's ``sqlite3``; every spatial table
is written by GDAL (pyogrio), which keeps the GeoPackage R-tree index. Rows
and records convert in :mod:`gis.backends.base`, the same on every SQL backend.
"""

from __future__ import annotations

import re
import sqlite3

SCHEMA_VERSION = "1"

TABLES = """
CREATE TABLE IF NOT EXISTS lutece_layers (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    title_en TEXT,
    description TEXT NOT NULL DEFAULT '',
    description_en TEXT,
    keywords TEXT NOT NULL DEFAULT '[]',
    theme TEXT,
    producer TEXT,
    kind TEXT NOT NULL,
    crs TEXT,
    extent TEXT,
    update_frequency TEXT,
    licence TEXT NOT NULL,
    access TEXT NOT NULL,
    current_version INTEGER,
    last_version INTEGER NOT NULL DEFAULT 0,
    revision INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lutece_versions (
    layer_id TEXT NOT NULL REFERENCES lutece_layers(id),
    number INTEGER NOT NULL,
    checksum TEXT NOT NULL,
    storage TEXT NOT NULL,
    publisher TEXT NOT NULL,
    published TEXT NOT NULL,
    kind TEXT NOT NULL,
    crs TEXT,
    extent TEXT,
    features INTEGER,
    note TEXT NOT NULL DEFAULT '',
    lineage TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (layer_id, number)
);
CREATE TABLE IF NOT EXISTS lutece_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    layer_id TEXT NOT NULL,
    action TEXT NOT NULL,
    version INTEGER,
    previous_version INTEGER,
    access_before TEXT,
    access_after TEXT,
    licence TEXT,
    time TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lutece_pending (
    token TEXT PRIMARY KEY,
    layer_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    storage TEXT,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started TEXT NOT NULL
);
"""

# Data tables of versions: <layer id with - as _>__v<number>.
VERSION_TABLE = re.compile(r"^[a-z0-9_]+__v[0-9]+$")
_GPKG_TABLE_REFS = ("gpkg_extensions", "gpkg_geometry_columns", "gpkg_ogr_contents", "gpkg_data_columns",
                    "gpkg_metadata_reference", "gpkg_contents")


def table_name(layer_id: str, number: int) -> str:
    """The data table of a vector version, e.g. ``hotel_de_ville__v3``."""
    return f"{layer_id.replace('-', '_')}__v{number}"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def drop_table(con: sqlite3.Connection, table: str) -> None:
    """Drop a GDAL-written table, its R-tree index and its GeoPackage metadata rows (inside the caller's transaction).

    Dropping needs no spatial SQL function: the table's triggers go with it,
    and the R-tree virtual table only needs SQLite's R-tree module.
    """
    existing = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "gpkg_extensions" in existing:
        for (column,) in con.execute("SELECT column_name FROM gpkg_extensions WHERE table_name=? "
                                     "AND extension_name='gpkg_rtree_index'", (table,)).fetchall():
            con.execute(f"DROP TABLE IF EXISTS {quote(f'rtree_{table}_{column}')}")
    con.execute(f"DROP TABLE IF EXISTS {quote(table)}")
    for reference in _GPKG_TABLE_REFS:
        if reference in existing:
            con.execute(f"DELETE FROM {reference} WHERE lower(table_name)=lower(?)", (table,))


def version_tables(con: sqlite3.Connection) -> set[str]:
    """Every data table of a version present in the GeoPackage (in sqlite_master or gpkg_contents)."""
    names = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    names |= {name for (name,) in con.execute("SELECT table_name FROM gpkg_contents")}
    return {name for name in names if VERSION_TABLE.match(name)}
