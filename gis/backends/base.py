"""The storage interface every backend of the city GIS implements.

A backend stores the catalog (layers, versions, change feed) and the data of
each version, and makes the few changes that must be atomic atomic:

1. :meth:`Backend.begin_publication` claims the layer for one publisher
   (optimistic concurrency: it states the version it expects to replace);
2. :meth:`Backend.store_vector` / :meth:`Backend.store_files` write the new
   version's data where no reader looks yet;
3. :meth:`Backend.commit_publication` switches the layer's current version,
   inserts the version row and appends the change-feed event in one
   transaction, or raises :class:`~gis.errors.PublishConflict`;
   :meth:`Backend.abort_publication` forgets it.

Everything a publication leaves behind when it is killed is found by
:meth:`Backend.gc`. Rules on licences and gates live above, in
:mod:`gis.catalog.service`, once for every backend.

:class:`SqlBackend` runs this protocol on catalog tables in SQL, once for the
GeoPackage and the PostGIS backends: each gives its connections, its table
names and the few steps that differ (its locks, how a claim is known dead,
how a data table is dropped, how JSON is stored).
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gis.backends.files import FileStore
from gis.errors import LayerNotFound, PublishConflict
from gis.qgis.presentation import Presentation, Style
from gis.records import ChangeEvent, Layer, Version, utc_now

# The catalog tables' columns, the same on every SQL backend.
LAYER_COLUMNS = ("id", "title", "title_en", "description", "description_en", "keywords", "theme", "producer",
                 "kind", "crs", "extent", "update_frequency", "licence", "access", "current_version",
                 "last_version", "revision", "created", "updated")
VERSION_COLUMNS = ("layer_id", "number", "checksum", "storage", "publisher", "published", "kind", "crs",
                   "extent", "features", "note", "lineage")
EVENT_COLUMNS = ("seq", "layer_id", "action", "version", "previous_version", "access_before", "access_after",
                 "licence", "time")


@dataclass(frozen=True)
class Publication:
    """A claim on a layer by one publisher, from :meth:`Backend.begin_publication` to commit or abort."""

    token: str
    layer_id: str
    number: int
    expected_version: int | None
    base: Layer | None = None
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)


STALE_AFTER_S = 6 * 3600  # a claim from another host is considered dead after this


def publisher_alive(pid: int, host: str, started: str) -> bool:
    """Whether the process that made a publication's claim may still be running.

    On this host its pid tells; a claim from another host is trusted for
    ``STALE_AFTER_S`` after it started.
    """
    if host != socket.gethostname():
        age = datetime.now(timezone.utc) - datetime.fromisoformat(started)
        return age.total_seconds() < STALE_AFTER_S
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, under another user
    return True


def check_expected(layer_id: str, expected: int | None, current: int | None) -> None:
    """Refuse a publication that expected another current version (``"current"`` was resolved before)."""
    if expected != current:
        found = "does not exist yet" if current is None else f"is at version {current}"
        wanted = "a new layer" if expected is None else f"version {expected}"
        raise PublishConflict(f"layer {layer_id} {found}, not {wanted} as the publisher expected; nothing was "
                              f"changed, check 'lutece layers history {layer_id}' and publish again")


def check_revision(layer_id: str, base: Layer | None, stored: Layer | None) -> None:
    """Refuse a change made to a layer that someone else changed since it was read."""
    if (base.revision if base else None) != (stored.revision if stored else None):
        raise PublishConflict(f"layer {layer_id} was changed by someone else meanwhile; nothing was changed, "
                              f"check 'lutece layers history {layer_id}' and try again")


@dataclass
class GcReport:
    """What :meth:`Backend.gc` removed."""

    tables: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    @property
    def removed(self) -> int:
        return len(self.tables) + len(self.files) + len(self.pending)


class Backend(ABC):
    """Storage of the catalog and of the versions' data (GeoPackage, PostGIS)."""

    name: str = "abstract"

    # -- reading ----------------------------------------------------------------------------------
    def get_layer(self, layer_id: str) -> Layer:
        """The layer; raises :class:`~gis.errors.LayerNotFound`."""
        layer = self.find_layer(layer_id)
        if layer is None:
            raise LayerNotFound(f"no layer {layer_id!r} in the catalog; see 'lutece layers list'")
        return layer

    @abstractmethod
    def find_layer(self, layer_id: str) -> Layer | None:
        """The layer, or ``None`` when it does not exist."""

    @abstractmethod
    def list_layers(self) -> list[Layer]:
        """Every layer, sorted by id."""

    @abstractmethod
    def list_versions(self, layer_id: str) -> list[Version]:
        """The retained versions of a layer, oldest first."""

    @abstractmethod
    def get_version(self, layer_id: str, number: int) -> Version:
        """One retained version; raises :class:`~gis.errors.LayerNotFound`."""

    @abstractmethod
    def events(self, after: int = 0, limit: int | None = None) -> list[ChangeEvent]:
        """Change-feed events with ``seq > after``, in order."""

    @abstractmethod
    def read_vector(self, version: Version, bbox: tuple[float, float, float, float] | None = None):
        """The GeoDataFrame of a vector version (optionally only what meets ``bbox``)."""

    @abstractmethod
    def files_path(self, version: Version) -> Path:
        """The local path of a raster file or of a 3D Tiles folder's ``tileset.json``."""

    # -- publication ------------------------------------------------------------------------------
    @abstractmethod
    def begin_publication(self, layer_id: str, expected_version: int | None | str = "current") -> Publication:
        """Claim the layer for a new version.

        ``expected_version`` is the version the publisher replaces (``None``
        for a new layer, ``"current"`` for whatever is current now).
        Raises :class:`~gis.errors.PublishConflict` when it is not current or
        another live publisher holds the layer.
        """

    @abstractmethod
    def store_vector(self, publication: Publication, frame, wkb=None) -> str:
        """Write the version's features; return the storage reference.

        ``frame`` has passed the gates and is canonical (attributes, then the
        geometry named ``geometry``); ``wkb`` is its geometries' little-endian
        WKB when already computed (for the checksum), for backends that can use it.
        """

    def store_files(self, publication: Publication, source: Path, checksum: str) -> str:
        """Copy a raster file or a 3D Tiles folder into the file store; return the storage reference.

        Both backends keep files the same way: a ``FileStore`` in ``self.files``,
        the reference claimed first (``_claim_storage``) so that gc can find a
        killed publication's copy.
        """
        name = source.name if source.is_file() else "tileset.json"
        storage = f"files:{checksum}/{name}"
        self._claim_storage(publication, storage)
        return self.files.put(source, checksum, publication.token)

    @abstractmethod
    def _claim_storage(self, publication: Publication, storage: str) -> None:
        """Record in the publication's claim where its data is being written."""

    @abstractmethod
    def commit_publication(self, publication: Publication, layer: Layer, version: Version,
                           retention: int, presentation: Presentation | None = None) -> ChangeEvent:
        """Atomically make ``version`` current, store ``layer`` and append the event.

        With a ``presentation``, the layer's stable name, metadata and style
        switch to the version in the same transaction. Refused with :class:`~gis.errors.PublishConflict` when the layer
        changed since the claim (``publication.base.revision``). Versions past
        ``retention`` (never the current one) are forgotten and their data freed.
        """

    @abstractmethod
    def abort_publication(self, publication: Publication) -> None:
        """Forget a claim and remove what it stored."""

    # -- other changes ----------------------------------------------------------------------------
    @abstractmethod
    def apply_change(self, base: Layer, layer: Layer, action: str,
                     presentation: Presentation | None = None) -> ChangeEvent:
        """Atomically replace ``base`` by ``layer`` (current version, access, licence) and append its event.

        With a ``presentation``, the layer's stable name follows in the same
        transaction (it disappears when ``layer`` is withdrawn).

        Raises :class:`~gis.errors.PublishConflict` when the stored layer is no
        longer at ``base.revision`` (someone else changed it meanwhile).
        """

    # -- what a desktop GIS sees ------------------------------------------------------------------
    def check_name(self, layer_id: str) -> None:
        """Refuse a new layer whose stable name is taken by something else in the store."""

    def vector_summary(self, version: Version, columns: tuple[str, ...]) -> tuple[str | None, dict]:
        """A vector version's geometry type name and the (min, max) of those of ``columns`` that are numeric."""
        return None, {}

    def given_style(self, layer_id: str) -> Style | None:
        """The style given for the layer (``--style``), which its later versions keep; None: the default applies."""
        return None

    def open_in_qgis(self, layer: Layer) -> str:
        """What an analyst pastes into QGIS to open the layer's stable name."""
        raise NotImplementedError

    # -- maintenance ------------------------------------------------------------------------------
    @abstractmethod
    def gc(self) -> GcReport:
        """Remove tables and files no version references, and leftovers of dead publications."""

    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class SqlBackend(Backend):
    """The publication protocol on SQL catalog tables (``layers``, ``versions``, ``changes``, ``pending``).

    Statements are written once, with ``?`` placeholders; a backend gives:

    - :meth:`_reading` (a cursor for reads) and :meth:`_writing` (a cursor in
      one transaction that excludes the other writers of the layer's rows);
    - :meth:`_run`, :attr:`PREFIX` (``lutece_`` or ``lutece.``), :attr:`ROW_LOCK`;
    - :meth:`_json` (a value for a JSON column), :meth:`_drop_table`, :meth:`_version_tables`;
    - optionally its locks (:meth:`_lock_layer`, :meth:`_lock_feed`,
      :meth:`_lock_claims`, :meth:`_hold_claim`, :meth:`_let_go`) and
      :meth:`_claim_alive`.

    Data is freed only after the transaction that made it unreferenced has
    committed (a folder's deletion cannot be rolled back with it, and on
    PostGIS the switch never waits for a reader of an old table), in a
    transaction of its own that reads the references again while no claim
    can be recorded (:meth:`_lock_claims`), so that a folder a new
    publication is claiming is never deleted under it. A kill in between
    leaves unreferenced data, which gc removes.
    """

    PREFIX = "lutece_"
    ROW_LOCK = ""
    files: FileStore

    # -- what a backend gives ---------------------------------------------------------------------
    @abstractmethod
    def _reading(self) -> AbstractContextManager[Any]:
        """A cursor for reads (each statement sees committed data)."""

    @abstractmethod
    def _writing(self) -> AbstractContextManager[Any]:
        """A cursor inside one write transaction, committed at the end of the block."""

    @abstractmethod
    def _run(self, cur, statement: str, params: tuple = ()) -> Any:
        """Execute ``statement`` (``?`` placeholders); return what has ``fetchone``/``fetchall``/``rowcount``."""

    @abstractmethod
    def _json(self, value: Any) -> Any:
        """``value`` (lists, dicts, numbers, text) as the backend stores it in a JSON column."""

    @abstractmethod
    def _drop_table(self, cur, table: str) -> bool:
        """Drop a version's data table; False when it must stay for now (a reader holds it)."""

    @abstractmethod
    def _version_tables(self, cur) -> set[str]:
        """Every data table of a version present in the store."""

    def _lock_layer(self, cur, layer_id: str) -> None:
        """Serialise the claims on one layer (beyond what :meth:`_writing` does)."""

    def _lock_feed(self, cur) -> None:
        """Serialise the transactions that append to the change feed (beyond what :meth:`_writing` does)."""

    def _lock_claims(self, cur) -> None:
        """Keep claims from recording their storage until the transaction ends (beyond what :meth:`_writing` does)."""

    def _hold_claim(self, cur, publication: Publication) -> None:
        """Mark a new claim as held by this live process, in the claim's transaction."""

    def _let_go(self, publication: Publication) -> None:
        """Release what :meth:`_hold_claim` took, after commit or abort."""

    def _claim_alive(self, cur, token: str, pid: int, host: str, started: str) -> bool:
        """Whether the publisher of a claim may still be running."""
        return publisher_alive(pid, host, started)

    def _switch_name(self, cur, presentation: Presentation, storage: str | None) -> None:
        """Point the layer's stable name, metadata and style at ``storage`` (None: remove the name)."""

    def _table(self, name: str) -> str:
        return f"{self.PREFIX}{name}"

    # -- reading ----------------------------------------------------------------------------------
    def find_layer(self, layer_id: str) -> Layer | None:
        with self._reading() as cur:
            return self._layer_row(cur, layer_id)

    def list_layers(self) -> list[Layer]:
        with self._reading() as cur:
            rows = self._run(cur, f"SELECT {', '.join(LAYER_COLUMNS)} FROM {self._table('layers')} "
                                  f"ORDER BY id").fetchall()
        return [layer_from_row(row) for row in rows]

    def list_versions(self, layer_id: str) -> list[Version]:
        with self._reading() as cur:
            rows = self._run(cur, f"SELECT {', '.join(VERSION_COLUMNS)} FROM {self._table('versions')} "
                                  f"WHERE layer_id=? ORDER BY number", (layer_id,)).fetchall()
        return [version_from_row(row) for row in rows]

    def get_version(self, layer_id: str, number: int) -> Version:
        with self._reading() as cur:
            row = self._run(cur, f"SELECT {', '.join(VERSION_COLUMNS)} FROM {self._table('versions')} "
                                 f"WHERE layer_id=? AND number=?", (layer_id, number)).fetchone()
        if row is None:
            raise LayerNotFound(f"layer {layer_id} has no version {number} (never published or past retention); "
                                f"see 'lutece layers history {layer_id}'")
        return version_from_row(row)

    def events(self, after: int = 0, limit: int | None = None) -> list[ChangeEvent]:
        query = f"SELECT {', '.join(EVENT_COLUMNS)} FROM {self._table('changes')} WHERE seq>? ORDER BY seq"
        params: tuple = (after,) if limit is None else (after, limit)
        with self._reading() as cur:
            rows = self._run(cur, query + ("" if limit is None else " LIMIT ?"), params).fetchall()
        return [ChangeEvent(**dict(zip(EVENT_COLUMNS, row))) for row in rows]

    def files_path(self, version: Version) -> Path:
        return self.files.path(version.storage)

    # -- publication ------------------------------------------------------------------------------
    def begin_publication(self, layer_id: str, expected_version: int | None | str = "current") -> Publication:
        pending = self._table("pending")
        with self._writing() as cur:
            self._lock_layer(cur, layer_id)
            row = self._run(cur, f"SELECT current_version, last_version FROM {self._table('layers')} WHERE id=?",
                            (layer_id,)).fetchone()
            current, last = (row[0], row[1]) if row else (None, 0)
            expected = current if expected_version == "current" else expected_version
            check_expected(layer_id, expected, current)
            claims = self._run(cur, f"SELECT token, pid, host, started FROM {pending} WHERE layer_id=?",
                               (layer_id,)).fetchall()
            for token, pid, host, started in claims:
                if self._claim_alive(cur, token, pid, host, started):
                    raise PublishConflict(
                        f"layer {layer_id} is being published by process {pid} on {host} since {started}; "
                        f"nothing was changed, publish again once it is done")
                self._run(cur, f"DELETE FROM {pending} WHERE token=?", (token,))  # its leftovers: gc
            publication = Publication(uuid.uuid4().hex, layer_id, last + 1, expected, self._layer_row(cur, layer_id))
            self._run(cur, f"INSERT INTO {pending} (token, layer_id, number, storage, pid, host, started) "
                           f"VALUES (?, ?, ?, NULL, ?, ?, ?)",
                      (publication.token, layer_id, publication.number, publication.pid, publication.host, utc_now()))
            self._hold_claim(cur, publication)
        return publication

    def _claim_storage(self, publication: Publication, storage: str) -> None:
        with self._writing() as cur:
            updated = self._run(cur, f"UPDATE {self._table('pending')} SET storage=? WHERE token=?",
                                (storage, publication.token))
            if updated.rowcount != 1:
                raise PublishConflict(f"layer {publication.layer_id}: the publication's claim was lost; publish again")

    def commit_publication(self, publication: Publication, layer: Layer, version: Version,
                           retention: int, presentation: Presentation | None = None) -> ChangeEvent:
        pending = self._table("pending")
        with self._writing() as cur:
            self._lock_feed(cur)
            if self._run(cur, f"SELECT 1 FROM {pending} WHERE token=?", (publication.token,)).fetchone() is None:
                raise PublishConflict(f"layer {layer.id}: the publication's claim was lost; publish again")
            before = self._layer_row(cur, layer.id, lock=True)
            check_expected(layer.id, publication.expected_version, before.current_version if before else None)
            check_revision(layer.id, publication.base, before)
            self._put_layer(cur, layer, before)
            self._run(cur, f"INSERT INTO {self._table('versions')} ({', '.join(VERSION_COLUMNS)}) "
                           f"VALUES ({', '.join('?' * len(VERSION_COLUMNS))})", self._version_values(version))
            self._run(cur, f"DELETE FROM {pending} WHERE token=?", (publication.token,))
            event = self._append_event(cur, layer, "publish", before)
            expired = self._prune(cur, layer, retention)
            if presentation is not None:
                self._switch_name(cur, presentation, version.storage)
        self._let_go(publication)
        self._release(expired)  # after the switch, never in its transaction
        return event

    def abort_publication(self, publication: Publication) -> None:
        pending = self._table("pending")
        with self._writing() as cur:
            row = self._run(cur, f"SELECT storage FROM {pending} WHERE token=?", (publication.token,)).fetchone()
            self._run(cur, f"DELETE FROM {pending} WHERE token=?", (publication.token,))
            storages = [row[0]] if row and row[0] else []
        self._let_go(publication)
        self._release(storages)
        self.files.remove_staged(publication.token)

    # -- other changes ----------------------------------------------------------------------------
    def apply_change(self, base: Layer, layer: Layer, action: str,
                     presentation: Presentation | None = None) -> ChangeEvent:
        with self._writing() as cur:
            self._lock_feed(cur)
            before = self._layer_row(cur, layer.id, lock=True)
            if before is None:
                raise LayerNotFound(f"no layer {layer.id!r} in the catalog; see 'lutece layers list'")
            check_revision(layer.id, base, before)
            self._put_layer(cur, layer, before)
            event = self._append_event(cur, layer, action, before)
            if presentation is not None:
                storage = None
                if layer.current_version is not None:
                    storage = self._run(cur, f"SELECT storage FROM {self._table('versions')} WHERE layer_id=? "
                                             f"AND number=?", (layer.id, layer.current_version)).fetchone()[0]
                self._switch_name(cur, presentation, storage)
            return event

    # -- maintenance ------------------------------------------------------------------------------
    def gc(self) -> GcReport:
        report = GcReport()
        pending = self._table("pending")
        with self._writing() as cur:
            for token, pid, host, started in self._run(cur, f"SELECT token, pid, host, started FROM {pending}"
                                                       ).fetchall():
                if not self._claim_alive(cur, token, pid, host, started):
                    self._run(cur, f"DELETE FROM {pending} WHERE token=?", (token,))
                    report.pending.append(token)
        with self._writing() as cur:
            self._lock_claims(cur)
            live = {row[0] for row in self._run(cur, f"SELECT token FROM {pending}").fetchall()}
            referenced = self._references(cur)
            tables = {storage.removeprefix("table:") for storage in referenced if storage.startswith("table:")}
            for table in sorted(self._version_tables(cur) - tables):
                if self._drop_table(cur, table):
                    report.tables.append(table)
            report.files.extend(self.files.sweep(referenced, live))
        return report

    # -- helpers ----------------------------------------------------------------------------------
    def _layer_row(self, cur, layer_id: str, lock: bool = False) -> Layer | None:
        row = self._run(cur, f"SELECT {', '.join(LAYER_COLUMNS)} FROM {self._table('layers')} WHERE id=?"
                        + (self.ROW_LOCK if lock else ""), (layer_id,)).fetchone()
        return layer_from_row(row) if row else None

    def _put_layer(self, cur, layer: Layer, before: Layer | None) -> None:
        stored = layer.evolve(revision=(before.revision if before else 0) + 1,
                              last_version=max(layer.last_version, before.last_version if before else 0))
        values = {name: getattr(stored, name) for name in LAYER_COLUMNS}
        values["keywords"] = self._json(list(stored.keywords))
        values["extent"] = self._json(list(stored.extent)) if stored.extent else None
        updates = ", ".join(f"{name}=excluded.{name}" for name in LAYER_COLUMNS[1:])
        self._run(cur, f"INSERT INTO {self._table('layers')} ({', '.join(LAYER_COLUMNS)}) "
                       f"VALUES ({', '.join('?' * len(LAYER_COLUMNS))}) ON CONFLICT (id) DO UPDATE SET {updates}",
                  tuple(values[name] for name in LAYER_COLUMNS))

    def _version_values(self, version: Version) -> tuple[Any, ...]:
        values = {name: getattr(version, name) for name in VERSION_COLUMNS}
        values["extent"] = self._json(list(version.extent)) if version.extent else None
        values["lineage"] = self._json(json.loads(json.dumps(version.lineage, ensure_ascii=False, default=str)))
        return tuple(values[name] for name in VERSION_COLUMNS)

    def _append_event(self, cur, layer: Layer, action: str, before: Layer | None) -> ChangeEvent:
        row = self._run(cur, f"INSERT INTO {self._table('changes')} (layer_id, action, version, previous_version, "
                             f"access_before, access_after, licence, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                             f"RETURNING {', '.join(EVENT_COLUMNS)}",
                        (layer.id, action, layer.current_version, before.current_version if before else None,
                         before.access if before else None, layer.access, layer.licence, utc_now())).fetchone()
        return ChangeEvent(**dict(zip(EVENT_COLUMNS, row)))

    def _prune(self, cur, layer: Layer, retention: int) -> list[str]:
        """Forget the versions past retention (never the current one); return their storage, to free."""
        versions = self._table("versions")
        rows = self._run(cur, f"SELECT number, storage FROM {versions} WHERE layer_id=? ORDER BY number DESC",
                         (layer.id,)).fetchall()
        expired = [(number, storage) for number, storage in rows[max(retention, 1):]
                   if number != layer.current_version]
        for number, _storage in expired:
            self._run(cur, f"DELETE FROM {versions} WHERE layer_id=? AND number=?", (layer.id, number))
        return [storage for _number, storage in expired]

    def _references(self, cur) -> set[str]:
        """The storage that versions and claims reference."""
        rows = self._run(cur, f"SELECT storage FROM {self._table('versions')} UNION "
                              f"SELECT storage FROM {self._table('pending')} WHERE storage IS NOT NULL").fetchall()
        return {row[0] for row in rows}

    def _release(self, storages: list[str]) -> None:
        """Remove the data of ``storages`` that no version or claim references (see the class's note)."""
        if not storages:
            return
        with self._writing() as cur:
            self._lock_claims(cur)
            referenced = self._references(cur)
            keys = {FileStore.key(storage) for storage in referenced if storage.startswith("files:")}
            for storage in storages:
                if storage in referenced:
                    continue
                if storage.startswith("table:"):
                    self._drop_table(cur, storage.removeprefix("table:"))
                elif storage.startswith("files:") and FileStore.key(storage) not in keys:
                    self.files.remove(FileStore.key(storage), uuid.uuid4().hex)


def _decoded(value: Any) -> Any:
    """A JSON column's value: text on SQLite, already decoded by psycopg on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value


def layer_from_row(row) -> Layer:
    """A :class:`Layer` from a row of :data:`LAYER_COLUMNS`."""
    data = dict(zip(LAYER_COLUMNS, row))
    data["keywords"] = tuple(_decoded(data["keywords"]) or ())
    extent = _decoded(data["extent"])
    data["extent"] = tuple(extent) if extent else None
    return Layer(**data)


def version_from_row(row) -> Version:
    """A :class:`Version` from a row of :data:`VERSION_COLUMNS`."""
    data = dict(zip(VERSION_COLUMNS, row))
    extent = _decoded(data["extent"])
    data["extent"] = tuple(extent) if extent else None
    data["lineage"] = _decoded(data["lineage"]) or {}
    return Version(**data)
