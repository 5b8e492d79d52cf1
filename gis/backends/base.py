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
"""

from __future__ import annotations

import os
import socket
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gis.records import ChangeEvent, Layer, Version
from gis.errors import LayerNotFound, PublishConflict


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
                           retention: int) -> ChangeEvent:
        """Atomically make ``version`` current, store ``layer`` and append the event.

        Refused with :class:`~gis.errors.PublishConflict` when the layer
        changed since the claim (``publication.base.revision``). Versions past
        ``retention`` (never the current one) are forgotten and their data freed.
        """

    @abstractmethod
    def abort_publication(self, publication: Publication) -> None:
        """Forget a claim and remove what it stored."""

    # -- other changes ----------------------------------------------------------------------------
    @abstractmethod
    def apply_change(self, base: Layer, layer: Layer, action: str) -> ChangeEvent:
        """Atomically replace ``base`` by ``layer`` (current version, access, licence) and append its event.

        Raises :class:`~gis.errors.PublishConflict` when the stored layer is no
        longer at ``base.revision`` (someone else changed it meanwhile).
        """

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
