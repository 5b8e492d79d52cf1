"""Helpers that make products for the city GIS tests (imported by the test modules)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np


def store_yaml(store: dict) -> str:
    """The ``store:`` section of a lutece.yml for ``store`` (with ``dsn`` on PostGIS)."""
    import json

    lines = ["store:"] + [f"  {key}: {json.dumps(value)}" for key, value in store.items()]
    return "\n".join(lines) + "\n"


def assert_unchanged(catalog, events_before: int = 0) -> None:
    """Nothing was published: no new event, and nothing left behind (no table, file or claim; see :func:`orphans`)."""
    assert len(catalog.events()) == events_before
    assert_no_orphans(catalog)


def assert_no_orphans(catalog) -> None:
    """Every data table and file folder in the store is referenced by a version, and no claim is left.

    Asks the store itself (SQLite, PostgreSQL's catalogs, the file system), never gc.
    """
    found = orphans(catalog)
    assert found == {"tables": [], "files": [], "staging": [], "claims": [], "missing": []}, found


def orphans(catalog) -> dict[str, list[str]]:
    """What the store holds that no version references, read directly from the store.

    ``tables``: data tables (and their R-tree or index relations) of no version;
    ``files``: folders under ``files/`` of no version; ``staging``: anything
    under ``files/.staging``; ``claims``: publication claims still recorded;
    ``missing``: data a version references that is not there.
    """
    backend = catalog.backend
    if backend.name == "geopackage":
        storages, claims, tables, missing_tables = _geopackage_state(backend.gpkg)
    else:
        storages, claims, tables, missing_tables = _postgis_state(backend.dsn)
    referenced_files = {s.removeprefix("files:").split("/", 1)[0] for s in storages if s.startswith("files:")}
    root = Path(backend.files.root)
    present = {p.name for p in root.iterdir() if p.name != ".staging"} if root.is_dir() else set()
    staging = sorted(p.name for p in (root / ".staging").iterdir()) if (root / ".staging").is_dir() else []
    missing = sorted(missing_tables) + sorted(key for key in referenced_files if not (root / key).is_dir())
    return {"tables": sorted(tables), "files": sorted(present - referenced_files), "staging": staging,
            "claims": sorted(claims), "missing": missing}


def _geopackage_state(path: Path):
    """(version storages, claims, unreferenced data relations, referenced tables missing) of a catalog.gpkg."""
    import sqlite3

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        storages = [row[0] for row in con.execute("SELECT storage FROM lutece_versions")]
        claims = [row[0] for row in con.execute("SELECT token FROM lutece_pending")]
        relations = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        contents = {row[0] for row in con.execute("SELECT table_name FROM gpkg_contents")}
        geometry_columns = {row[0] for row in con.execute("SELECT table_name FROM gpkg_geometry_columns")}
    finally:
        con.close()
    tables = {s.removeprefix("table:") for s in storages if s.startswith("table:")}
    # the catalog's own tables: lutece_<name> without a version's __v<N> (other modules may add some)
    catalog = {name for name in relations | contents
               if name.startswith("lutece_") and not re.search(r"__v[0-9]+$", name)}
    own = {name for name in relations if name.startswith(("gpkg_", "sqlite_")) or name in catalog}
    rtrees = {name for name in relations if name.startswith("rtree_")}
    data = (relations - own - rtrees) | (contents - catalog) | geometry_columns
    unreferenced = data - tables
    # an R-tree (rtree_<table>_<column> and its _node/_parent/_rowid shadows) of no referenced table
    unreferenced |= {name for name in rtrees if not any(name.startswith(f"rtree_{table}_") for table in tables)}
    missing = tables - (relations & contents)
    return storages, claims, unreferenced, missing


def _postgis_state(dsn: str):
    """The same, from PostgreSQL's catalogs: every relation in schema lutece_data must belong to a version."""
    import psycopg

    with psycopg.connect(dsn) as con:
        storages = [row[0] for row in con.execute("SELECT storage FROM lutece.versions")]
        claims = [row[0] for row in con.execute("SELECT token FROM lutece.pending")]
        relations = {row[0] for row in con.execute("SELECT tablename FROM pg_tables WHERE schemaname='lutece_data'")}
        indexes = {(row[0], row[1]) for row in con.execute(
            "SELECT tablename, indexname FROM pg_indexes WHERE schemaname='lutece_data'")}
    tables = {s.removeprefix("table:") for s in storages if s.startswith("table:")}
    unreferenced = (relations - tables) | {index for table, index in indexes if table not in tables}
    return storages, claims, unreferenced, tables - relations


def write_product(frame, path: Path, layer: str = "data", **options) -> Path:
    """Write a GeoDataFrame as a one-layer GeoPackage product."""
    import pyogrio

    pyogrio.write_dataframe(frame, path, layer=layer, driver="GPKG", **options)
    return path


def tiled(frame, copies: int):
    """``copies`` copies of a layer side by side (a mid-size layer from the district's cadastre)."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    side = int(np.ceil(np.sqrt(copies)))
    parts = []
    for index in range(copies):
        offset = np.array([(index % side) * 400.0, (index // side) * 400.0])
        part = frame.copy()
        part["geometry"] = shapely.transform(part.geometry.values, lambda xy, o=offset: xy + o)
        part["cadastre_id"] = part["cadastre_id"] + f"-{index}"
        parts.append(part)
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=frame.crs)
