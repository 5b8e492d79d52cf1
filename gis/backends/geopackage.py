"""The embedded backend: one city folder, one GeoPackage, a content-addressed file store.

Layout of the city folder (``store.path``)::

    catalog.gpkg            GeoPackage (WAL journal):
                              lutece_meta      schema version (a GeoPackage attributes table)
                              lutece_layers    one row per layer, with its current version
                              lutece_versions  one row per retained version
                              lutece_changes   the change feed (seq AUTOINCREMENT)
                              lutece_pending   publications in progress (for conflicts and gc)
                              <layer>__v<N>    the features of each vector version, written by
                                               GDAL with the GeoPackage R-tree spatial index
    files/<sha256>/...      a raster (COG) or 3D Tiles folder of a version, by content
    files/.staging/<token>  copies in progress (renamed into place once whole)

A publication claims the layer (a row of ``lutece_pending``), writes its data
where no reader looks, then switches the layer's current version, inserts the
version and appends the change event in one ``BEGIN IMMEDIATE`` transaction.
A reader thus sees the old version or the new one; a killed publication
leaves only an unreferenced table or folder, which :meth:`gc` removes.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from gis.backends import gpkg_names
from gis.backends import gpkg_schema as schema
from gis.backends.base import Publication, SqlBackend
from gis.backends.files import FileStore
from gis.backends.gpkg_features import write_features
from gis.errors import StoreError
from gis.records import Version

log = logging.getLogger(__name__)

CATALOG = "catalog.gpkg"
BUSY_TIMEOUT_S = 60.0


class GeoPackageBackend(SqlBackend):
    """The city GIS in one folder: ``catalog.gpkg`` and ``files/``.

    Parameters
    ----------
    path
        The city folder.
    create
        Create the folder and an empty catalog when missing (else raise
        :class:`~gis.errors.StoreError`).
    """

    name = "geopackage"

    def __init__(self, path: Path | str, create: bool = True) -> None:
        self.root = Path(path)
        self.gpkg = self.root / CATALOG
        self.files = FileStore(self.root / "files")
        if not self.gpkg.is_file():
            if not create:
                raise StoreError(f"no city GIS in {self.root} (store.path); publish a layer to create it")
            self._create()
        with self._read():
            pass  # fail now, with a clear message, on a file that is not a Lutèce catalog

    # -- set-up -----------------------------------------------------------------------------------
    def _create(self) -> None:
        import pandas as pd
        import pyogrio

        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.root / f".catalog-{uuid.uuid4().hex}.gpkg"
        try:
            meta = pd.DataFrame({"key": ["schema_version"], "value": [schema.SCHEMA_VERSION]})
            pyogrio.write_dataframe(meta, partial, layer="lutece_meta", driver="GPKG")
            con = sqlite3.connect(partial)
            con.executescript(schema.TABLES)
            con.execute("PRAGMA journal_mode=WAL")
            con.close()
            try:
                os.link(partial, self.gpkg)  # atomic, and never replaces a catalog created meanwhile
            except FileExistsError:
                pass
        finally:
            partial.unlink(missing_ok=True)

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A connection of Python's SQLite, open only while used (see :func:`_exclusive`)."""
        with _exclusive(self.gpkg):
            try:
                con = sqlite3.connect(self.gpkg, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            except sqlite3.Error as exc:
                raise StoreError(f"{self.gpkg}: cannot open the catalog ({exc})") from None
            try:
                con.row_factory = sqlite3.Row
                _check_catalog(self.gpkg, con)
                yield con
            finally:
                con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (``BEGIN IMMEDIATE``)."""
        with self._read() as con:
            try:
                con.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreError(f"{self.gpkg}: cannot write the catalog ({exc})") from None
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # -- what the SQL protocol needs (see SqlBackend) ---------------------------------------------
    _reading = _read
    _writing = _write

    def _run(self, cur: sqlite3.Connection, statement: str, params: tuple = ()) -> sqlite3.Cursor:
        return cur.execute(statement, params)

    def _json(self, value):
        return json.dumps(value, ensure_ascii=False)

    def _drop_table(self, cur: sqlite3.Connection, table: str) -> bool:
        schema.drop_table(cur, table)
        return True

    def _version_tables(self, cur: sqlite3.Connection) -> set[str]:
        return schema.version_tables(cur)

    # -- reading and writing features -------------------------------------------------------------
    def read_vector(self, version: Version, bbox=None):
        """The version's features, through GDAL's SQL on its table (hidden from GDAL's list of layers).

        A bbox is first narrowed by the table's R-tree, then GDAL's own test decides, as for a layer.
        """
        import pyogrio

        table = version.storage.removeprefix("table:")
        query = f"SELECT * FROM {schema.quote(table)}"
        if bbox is not None:
            with self._read() as con:
                query += gpkg_names.rtree_filter(con, table, bbox)
        with _exclusive(self.gpkg):
            return pyogrio.read_dataframe(self.gpkg, sql=query + " ORDER BY rowid", bbox=bbox)

    def store_vector(self, publication: Publication, frame, wkb=None) -> str:
        """Write the features as a new table of the catalog, with its R-tree, through GDAL.

        The geometries go as ``wkb`` when given (see :mod:`gis.backends.gpkg_features`).
        """
        table = schema.table_name(publication.layer_id, publication.number)
        storage = f"table:{table}"
        self._claim_storage(publication, storage)
        with self._write() as con:
            schema.drop_table(con, table)  # a killed publication's leftover
        with _exclusive(self.gpkg), _gdal_write_pragmas():
            write_features(frame, wkb, self.gpkg, table)
        with self._write() as con:
            gpkg_names.hide_table(con, table)
        return storage

    # -- what a desktop GIS sees (see gis.backends.gpkg_names) ------------------------------------
    def _switch_name(self, cur: sqlite3.Connection, presentation, storage: str | None) -> None:
        table = storage.removeprefix("table:") if storage and storage.startswith("table:") else None
        gpkg_names.switch(cur, presentation, table)

    def check_name(self, layer_id: str) -> None:
        with self._read() as con:
            gpkg_names.check_name(con, layer_id)

    def vector_summary(self, version: Version, columns: tuple[str, ...]) -> tuple[str | None, dict]:
        with self._read() as con:
            return gpkg_names.summary(con, version.storage.removeprefix("table:"), columns)

    def given_style(self, layer_id: str):
        with self._read() as con:
            return gpkg_names.given_style(con, layer_id)

    def open_in_qgis(self, layer) -> str:
        return f"{self.gpkg.resolve()}|layername={layer.id}"


def _check_catalog(path: Path, con: sqlite3.Connection) -> None:
    try:
        (application_id,) = con.execute("PRAGMA application_id").fetchone()
        con.execute("SELECT 1 FROM lutece_layers LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a Lutèce catalog ({exc}); check store.path") from None
    if application_id != 0x47504B47:
        raise StoreError(f"{path}: not a GeoPackage; check store.path")


_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Serialise, within this process, every use of the catalog file by either SQLite library.

    GDAL (pyogrio) bundles its own SQLite; two SQLite libraries with the same
    file open in one process break each other's POSIX locks and can corrupt
    it (sqlite.org/howtocorrupt.html, 2.2.1). So Python's connections are
    opened per operation and never overlap a GDAL read or write of the same
    file in this process. Other processes are kept apart by SQLite's own locks.
    """
    key = str(Path(path).resolve())
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(key, threading.RLock())
    with lock:
        yield


@contextmanager
def _gdal_write_pragmas() -> Iterator[None]:
    """GDAL's SQLite connection waits for the catalog's write lock instead of failing at once, and does not sync.

    ``synchronous=NORMAL`` (WAL journal): GDAL's commit of the version's
    table does not wait for the disk; the catalog commit that makes the
    version current (Python's connection, ``FULL``) syncs the WAL holding
    both, and checkpoints always sync. So the data is as durable as the
    catalog entry that points at it.
    """
    import pyogrio

    previous = pyogrio.get_gdal_config_option("OGR_SQLITE_PRAGMA")
    pyogrio.set_gdal_config_options(
        {"OGR_SQLITE_PRAGMA": f"busy_timeout={int(BUSY_TIMEOUT_S * 1000)},synchronous=NORMAL"})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_SQLITE_PRAGMA": previous})
