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
        # the stable names (views) of the current layers and QGIS's styles table are the catalog's own
        names = {row[0] for row in con.execute("SELECT id FROM lutece_layers WHERE current_version IS NOT NULL")}
    finally:
        con.close()
    tables = {s.removeprefix("table:") for s in storages if s.startswith("table:")}
    # the catalog's own tables: lutece_<name> without a version's __v<N> (other modules may add some)
    catalog = {name for name in relations | contents
               if name.startswith("lutece_") and not re.search(r"__v[0-9]+$", name)}
    own = {name for name in relations if name.startswith(("gpkg_", "sqlite_")) or name in catalog}
    rtrees = {name for name in relations if name.startswith("rtree_")}
    data = ((relations - own - rtrees) | (contents - catalog) | geometry_columns) - names - {"layer_styles"}
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


# -- stored data and checksums, checked independently of the code that wrote them ---------------------
_STRUCT = {"bool": "?", "int8": "b", "int16": "h", "int32": "i", "int64": "q", "uint8": "B", "uint16": "H",
           "uint32": "I", "uint64": "Q", "float32": "f", "float64": "d"}


def reference_checksum(frame) -> str:
    """A vector version's checksum as the README defines it, computed value by value in plain Python.

    Attributes in order (numbers and booleans: ``name\\0dtype\\0`` and their
    little-endian values; text: ``name\\0str\\0`` and the values joined by
    ``\\x1f``, a missing one as ``\\x00``), then ``geometry\\0geometry\\0``,
    each geometry's WKB length (32-bit) and the WKBs (little-endian, empty
    for a null geometry). Written apart from :func:`gis.checksums.sha256_frame`
    (struct and str instead of numpy buffers) for the columns the tests use.
    """
    import hashlib
    import struct

    digest = hashlib.sha256()
    geometry = frame.geometry.name
    for name in frame.columns:
        if name == geometry:
            continue
        column = frame[name]
        code = _STRUCT.get(str(column.dtype))
        if code is not None:
            digest.update(f"{name}\0{column.dtype}\0".encode("utf-8"))
            digest.update(b"".join(struct.pack("<" + code, value) for value in column.tolist()))
            continue
        assert column.dtype.kind not in "mM", "reference_checksum does not cover times"
        texts = ["\x00" if _missing(value) else str(value) for value in column.tolist()]
        digest.update(f"{name}\0str\0".encode("utf-8") + "\x1f".join(texts).encode("utf-8"))
    wkbs = [b"" if shape is None else shape.wkb for shape in frame.geometry]  # little-endian on this machine
    digest.update(b"geometry\0geometry\0")
    digest.update(b"".join(struct.pack("<I", len(wkb)) for wkb in wkbs))
    digest.update(b"".join(wkbs))
    return digest.hexdigest()


def _missing(value) -> bool:
    import pandas as pd

    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def stored_table(catalog, version) -> tuple[list[str], dict[str, list], list[bytes | None]]:
    """A vector version's table read straight from the store: column names, values, geometries' WKB.

    GeoPackage: GDAL's own reading of the table (pyogrio's Arrow reader, by SQL: version tables are not listed);
    PostGIS: psycopg, the geometries as PostGIS' ``ST_AsBinary``.
    """
    table = version.storage.removeprefix("table:")
    backend = catalog.backend
    if backend.name == "geopackage":
        import pyogrio

        meta, data = pyogrio.read_arrow(backend.gpkg, sql=f'SELECT * FROM "{table}" ORDER BY rowid')
        wkb_column = meta["geometry_name"] or "wkb_geometry"
        names = [name for name in data.column_names if name != wkb_column]
        return names, {name: data[name].to_pylist() for name in names}, data[wkb_column].to_pylist()
    import psycopg

    with psycopg.connect(backend.dsn) as con:
        columns = [row[0] for row in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema='lutece_data' "
            "AND table_name=%s ORDER BY ordinal_position", (table,))]
        names = [name for name in columns if name not in ("lutece_fid", "geometry")]
        select = ", ".join(f'"{name}"' for name in names)
        rows = con.execute(f'SELECT {select + ", " if names else ""}ST_AsBinary(geometry) '
                           f'FROM lutece_data."{table}" ORDER BY lutece_fid').fetchall()
    values = {name: [row[index] for row in rows] for index, name in enumerate(names)}
    return names, values, [None if row[-1] is None else bytes(row[-1]) for row in rows]


def assert_stored(catalog, version, source) -> None:
    """The stored table of ``version`` holds ``source``'s attributes and geometries, in order."""
    import shapely

    names, values, wkbs = stored_table(catalog, version)
    attributes = [name for name in source.columns if name != source.geometry.name]
    assert names == attributes
    for name in attributes:
        expected = [None if _missing(value) else value for value in source[name].tolist()]
        assert [None if _missing(value) else value for value in values[name]] == expected, name
    stored = shapely.from_wkb(np.array(wkbs, dtype=object))
    assert len(stored) == len(source)
    assert shapely.equals_exact(stored, np.asarray(source.geometry.values), tolerance=0).all()
