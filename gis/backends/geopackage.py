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

import logging
import os
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from gis.backends import gpkg_schema as schema
from gis.backends.base import Backend, GcReport, Publication, check_expected, check_revision, publisher_alive
from gis.backends.files import FileStore
from gis.backends.gpkg_features import write_features
from gis.records import ChangeEvent, Layer, Version, utc_now
from gis.errors import LayerNotFound, PublishConflict, StoreError

log = logging.getLogger(__name__)

CATALOG = "catalog.gpkg"
BUSY_TIMEOUT_S = 60.0


class GeoPackageBackend(Backend):
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

    # -- reading ----------------------------------------------------------------------------------
    def find_layer(self, layer_id: str) -> Layer | None:
        with self._read() as con:
            return self._row_layer(con, layer_id)

    def list_layers(self) -> list[Layer]:
        with self._read() as con:
            return [schema.layer_from_row(r) for r in con.execute("SELECT * FROM lutece_layers ORDER BY id")]

    def list_versions(self, layer_id: str) -> list[Version]:
        with self._read() as con:
            rows = con.execute("SELECT * FROM lutece_versions WHERE layer_id=? ORDER BY number", (layer_id,))
            return [schema.version_from_row(r) for r in rows]

    def get_version(self, layer_id: str, number: int) -> Version:
        with self._read() as con:
            row = con.execute("SELECT * FROM lutece_versions WHERE layer_id=? AND number=?",
                              (layer_id, number)).fetchone()
        if row is None:
            raise LayerNotFound(f"layer {layer_id} has no version {number} (never published or past retention); "
                                f"see 'lutece layers history {layer_id}'")
        return schema.version_from_row(row)

    def events(self, after: int = 0, limit: int | None = None) -> list[ChangeEvent]:
        with self._read() as con:
            rows = con.execute("SELECT * FROM lutece_changes WHERE seq>? ORDER BY seq LIMIT ?",
                               (after, -1 if limit is None else limit))
            return [schema.event_from_row(r) for r in rows]

    def read_vector(self, version: Version, bbox=None):
        import pyogrio

        with _exclusive(self.gpkg):
            return pyogrio.read_dataframe(self.gpkg, layer=version.storage.removeprefix("table:"), bbox=bbox)

    def files_path(self, version: Version) -> Path:
        return self.files.path(version.storage)

    # -- publication ------------------------------------------------------------------------------
    def begin_publication(self, layer_id: str, expected_version: int | None | str = "current") -> Publication:
        with self._write() as con:
            row = con.execute("SELECT current_version, last_version FROM lutece_layers WHERE id=?",
                              (layer_id,)).fetchone()
            current, last = (row["current_version"], row["last_version"]) if row else (None, 0)
            expected = current if expected_version == "current" else expected_version
            check_expected(layer_id, expected, current)
            for claim in con.execute("SELECT * FROM lutece_pending WHERE layer_id=?", (layer_id,)).fetchall():
                if publisher_alive(claim["pid"], claim["host"], claim["started"]):
                    raise PublishConflict(
                        f"layer {layer_id} is being published by process {claim['pid']} on {claim['host']} "
                        f"since {claim['started']}; nothing was changed, publish again once it is done")
                con.execute("DELETE FROM lutece_pending WHERE token=?", (claim["token"],))  # leftovers: gc
            base = self._row_layer(con, layer_id)
            publication = Publication(uuid.uuid4().hex, layer_id, last + 1, expected, base)
            con.execute("INSERT INTO lutece_pending (token, layer_id, number, storage, pid, host, started) "
                        "VALUES (?, ?, ?, NULL, ?, ?, ?)",
                        (publication.token, layer_id, publication.number, publication.pid, publication.host,
                         utc_now()))
        return publication

    def _claim_storage(self, publication: Publication, storage: str) -> None:
        with self._write() as con:
            updated = con.execute("UPDATE lutece_pending SET storage=? WHERE token=?", (storage, publication.token))
            if updated.rowcount != 1:
                raise PublishConflict(f"layer {publication.layer_id}: the publication's claim was lost; publish again")
            if storage.startswith("table:"):
                schema.drop_table(con, storage.removeprefix("table:"))  # a killed publication's leftover

    def store_vector(self, publication: Publication, frame, wkb=None) -> str:
        """Write the features as a new table of the catalog, with its R-tree, through GDAL.

        The geometries go as ``wkb`` when given (see :mod:`gis.backends.gpkg_features`).
        """
        table = schema.table_name(publication.layer_id, publication.number)
        storage = f"table:{table}"
        self._claim_storage(publication, storage)
        with _exclusive(self.gpkg), _gdal_write_pragmas():
            write_features(frame, wkb, self.gpkg, table)
        return storage

    def commit_publication(self, publication: Publication, layer: Layer, version: Version,
                           retention: int) -> ChangeEvent:
        with self._write() as con:
            if con.execute("SELECT 1 FROM lutece_pending WHERE token=?", (publication.token,)).fetchone() is None:
                raise PublishConflict(f"layer {layer.id}: the publication's claim was lost; publish again")
            before = self._row_layer(con, layer.id)
            check_expected(layer.id, publication.expected_version, before.current_version if before else None)
            check_revision(layer.id, publication.base, before)
            self._put_layer(con, layer, before)
            con.execute(f"INSERT INTO lutece_versions VALUES ({', '.join('?' * len(schema.VERSION_COLUMNS))})",
                        schema.version_to_row(version))
            con.execute("DELETE FROM lutece_pending WHERE token=?", (publication.token,))
            event = self._append_event(con, layer, "publish", before)
            self._prune(con, layer, retention)
        return event

    def abort_publication(self, publication: Publication) -> None:
        with self._write() as con:
            row = con.execute("SELECT storage FROM lutece_pending WHERE token=?", (publication.token,)).fetchone()
            con.execute("DELETE FROM lutece_pending WHERE token=?", (publication.token,))
            if row and row["storage"]:
                self._release(con, [row["storage"]])
        self.files.remove_staged(publication.token)

    # -- other changes ----------------------------------------------------------------------------
    def apply_change(self, base: Layer, layer: Layer, action: str) -> ChangeEvent:
        with self._write() as con:
            before = self._row_layer(con, layer.id)
            if before is None:
                raise LayerNotFound(f"no layer {layer.id!r} in the catalog; see 'lutece layers list'")
            check_revision(layer.id, base, before)
            self._put_layer(con, layer, before)
            return self._append_event(con, layer, action, before)

    # -- maintenance ------------------------------------------------------------------------------
    def gc(self) -> GcReport:
        report = GcReport()
        with self._write() as con:
            for claim in con.execute("SELECT * FROM lutece_pending").fetchall():
                if not publisher_alive(claim["pid"], claim["host"], claim["started"]):
                    con.execute("DELETE FROM lutece_pending WHERE token=?", (claim["token"],))
                    report.pending.append(claim["token"])
            live = {r["token"]: r["storage"] for r in con.execute("SELECT token, storage FROM lutece_pending")}
            referenced = {r[0] for r in con.execute("SELECT storage FROM lutece_versions")} | set(live.values())
            tables = {s.removeprefix("table:") for s in referenced if s and s.startswith("table:")}
            for table in sorted(schema.version_tables(con) - tables):
                schema.drop_table(con, table)
                report.tables.append(table)
            report.files.extend(self.files.sweep(referenced, set(live)))
        return report

    # -- helpers ----------------------------------------------------------------------------------
    @staticmethod
    def _row_layer(con: sqlite3.Connection, layer_id: str) -> Layer | None:
        row = con.execute("SELECT * FROM lutece_layers WHERE id=?", (layer_id,)).fetchone()
        return schema.layer_from_row(row) if row else None

    @staticmethod
    def _put_layer(con: sqlite3.Connection, layer: Layer, before: Layer | None) -> None:
        stored = layer.evolve(revision=(before.revision if before else 0) + 1,
                              last_version=max(layer.last_version, before.last_version if before else 0))
        con.execute(f"INSERT OR REPLACE INTO lutece_layers VALUES ({', '.join('?' * len(schema.LAYER_COLUMNS))})",
                    schema.layer_to_row(stored))

    @staticmethod
    def _append_event(con: sqlite3.Connection, layer: Layer, action: str, before: Layer | None) -> ChangeEvent:
        cursor = con.execute(
            "INSERT INTO lutece_changes (layer_id, action, version, previous_version, access_before, access_after, "
            "licence, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (layer.id, action, layer.current_version, before.current_version if before else None,
             before.access if before else None, layer.access, layer.licence, utc_now()))
        row = con.execute("SELECT * FROM lutece_changes WHERE seq=?", (cursor.lastrowid,)).fetchone()
        return schema.event_from_row(row)

    def _prune(self, con: sqlite3.Connection, layer: Layer, retention: int) -> None:
        """Forget the versions past retention (the current one always stays) and free their data."""
        rows = con.execute("SELECT number, storage FROM lutece_versions WHERE layer_id=? ORDER BY number DESC",
                           (layer.id,)).fetchall()
        expired = [r for r in rows[max(retention, 1):] if r["number"] != layer.current_version]
        for row in expired:
            con.execute("DELETE FROM lutece_versions WHERE layer_id=? AND number=?", (layer.id, row["number"]))
        self._release(con, [r["storage"] for r in expired])

    def _release(self, con: sqlite3.Connection, storages: list[str]) -> None:
        """Remove the data of ``storages`` that no version or live claim still references."""
        referenced = {r[0] for r in con.execute("SELECT storage FROM lutece_versions")}
        referenced |= {r[0] for r in con.execute("SELECT storage FROM lutece_pending WHERE storage IS NOT NULL")}
        keys = {FileStore.key(s) for s in referenced if s.startswith("files:")}
        for storage in storages:
            if storage in referenced:
                continue
            if storage.startswith("table:"):
                schema.drop_table(con, storage.removeprefix("table:"))
            elif storage.startswith("files:") and FileStore.key(storage) not in keys:
                self.files.remove(FileStore.key(storage), uuid.uuid4().hex)


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
