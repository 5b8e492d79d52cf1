"""Reading a vector version's table of the catalog GeoPackage with Python's sqlite3 (never GDAL).

Python's sqlite3 and GDAL each carry their own SQLite, and two copies must
never hold the same file in one process (sqlite.org/howtocorrupt.html
2.2.1): the server process therefore reads ``catalog.gpkg`` only through
Python's sqlite3, the catalog's tables and the features alike, and decodes
the GeoPackage geometry blob itself. Connections are read-only, one per
thread, kept open; every request reads inside one transaction, so it sees
one state of the file (WAL snapshot) whatever is published meanwhile.

bbox queries go through the table's R-tree (``rtree_<table>_<column>``);
single items through the primary key; CQL2's spatial tests call
``lutece_spatial`` (shapely) registered on each connection.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
_local = threading.local()


def wkb_of(blob: bytes | None) -> bytes | None:
    """The WKB inside a GeoPackage geometry blob (None for NULL or an empty geometry)."""
    if blob is None:
        return None
    blob = bytes(blob)
    if blob[:2] != b"GP":
        return blob  # plain WKB (not written by GDAL, but tolerated)
    flags = blob[3]
    if flags & 0b10000:
        return None  # empty geometry
    envelope = _ENVELOPE_BYTES.get((flags >> 1) & 0b111)
    if envelope is None:
        raise ValueError("bad GeoPackage geometry envelope indicator")
    return blob[8 + envelope:]


def geometries(blobs: list) -> np.ndarray:
    """shapely geometries of GeoPackage blobs, decoded in one vectorised call."""
    import shapely

    return shapely.from_wkb(np.array([wkb_of(blob) for blob in blobs], dtype=object))


def _spatial(op: str, blob: bytes | None, wkb: bytes) -> int:
    """``lutece_spatial(op, geometry, wkb)``: shapely's predicate ``op`` (registered on each connection)."""
    import shapely

    data = wkb_of(blob)
    if data is None:
        return 0
    return int(bool(getattr(shapely, op)(shapely.from_wkb(data), _cached_geometry(wkb))))


_GEOMETRY_CACHE: dict[bytes, object] = {}


def _cached_geometry(wkb: bytes):
    """The filter's geometry, decoded and prepared once per query (not once per row)."""
    import shapely

    geometry = _GEOMETRY_CACHE.get(wkb)
    if geometry is None:
        if len(_GEOMETRY_CACHE) > 64:
            _GEOMETRY_CACHE.clear()
        geometry = shapely.from_wkb(wkb)
        shapely.prepare(geometry)
        _GEOMETRY_CACHE[wkb] = geometry
    return geometry


def connection(path: Path | str) -> sqlite3.Connection:
    """This thread's read-only connection to ``path`` (opened once)."""
    key = str(path)
    cache = getattr(_local, "connections", None)
    if cache is None:
        cache = _local.connections = {}
    con = cache.get(key)
    if con is None:
        uri = Path(key).resolve().as_uri() + "?mode=ro"
        con = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None, check_same_thread=True)
        con.execute("PRAGMA query_only=1")
        con.create_function("lutece_spatial", 3, _spatial, deterministic=True)
        cache[key] = con
    return con


@contextmanager
def snapshot(path: Path | str) -> Iterator[sqlite3.Connection]:
    """A read transaction on ``path``: every query inside sees the same state of the file."""
    con = connection(path)
    con.execute("BEGIN")
    try:
        yield con
    finally:
        con.execute("COMMIT")


def describe(path: Path | str, table: str) -> dict:
    """The table's columns, primary key, geometry column and R-tree name, read from the GeoPackage."""
    with snapshot(path) as con:
        row = con.execute("SELECT column_name, geometry_type_name, srs_id FROM gpkg_geometry_columns "
                          "WHERE lower(table_name)=lower(?)", (table,)).fetchone()
        if row is None:
            raise LookupError(f"{table}: not a feature table of {path}")
        geometry, geometry_type, srs_id = row
        columns = con.execute(f'PRAGMA table_info("{table}")').fetchall()
        rtree = f"rtree_{table}_{geometry}"
        has_rtree = con.execute("SELECT 1 FROM sqlite_master WHERE name=?", (rtree,)).fetchone() is not None
    pk = next((name for _cid, name, _type, _nn, _default, is_pk in columns if is_pk), None)
    attributes = [(name, (kind or "").upper()) for _cid, name, kind, *_rest in columns
                  if name not in (pk, geometry)]
    return {"geometry": geometry, "geometry_type": geometry_type, "srid": srs_id, "pk": pk,
            "attributes": attributes, "rtree": rtree if has_rtree else None}
