"""The mirror's HTTP side: the change feed, the DCAT catalogue, verified downloads.

Every failure becomes a :class:`~gis.errors.SyncError` naming what failed;
nothing here touches the mirror itself, only its staging folder.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from gis.errors import SyncError

TIMEOUT = (10, 60)  # connect, read (seconds)
DOWNLOADS_AT_ONCE = 4  # files downloaded at once by default (small files cost a round trip each; stay polite)
_CHUNK = 1 << 20
DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


@dataclass
class Counters:
    """What a sync asked of the server: requests and bytes received."""

    requests: int = 0
    bytes: int = 0
    downloads: int = 0


@dataclass
class Client:
    """An HTTP client of one server's feeds (``source``: its root URL)."""

    source: str
    downloads: int = DOWNLOADS_AT_ONCE
    counters: Counters = field(default_factory=Counters)
    _local: threading.local = field(default_factory=threading.local)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.source = self.source.rstrip("/")

    @property
    def session(self) -> requests.Session:
        """This thread's session (downloads run in a few threads; a session is not shared between them)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers["User-Agent"] = "lutece-mirror"
        return session

    def count(self, requests_: int = 0, bytes_: int = 0, downloads: int = 0) -> None:
        with self._lock:
            self.counters.requests += requests_
            self.counters.bytes += bytes_
            self.counters.downloads += downloads

    def _get(self, url: str, what: str, **kwargs) -> requests.Response:
        self.count(requests_=1)
        try:
            response = self.session.get(url, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as error:
            raise SyncError(f"{what}: {self.source} is unreachable ({type(error).__name__}); "
                            f"the mirror is unchanged, the next run retries") from None
        return response

    def changes(self, since: int) -> "Changes":
        """The public events after ``since`` (every page), the seq to ask from next time, and what they describe.

        Raises
        ------
        SyncError
            The server cannot be reached or refuses ``since`` (a catalog
            that restarted from scratch: the caller syncs in full).
        """
        changes = Changes([], since, {})
        while True:
            response = self._get(f"{self.source}/changes", "the change feed", params={"since": since, "limit": 1000})
            if response.status_code == 400:
                raise FeedReset(f"the change feed refuses since={since}")
            _check(response, "the change feed")
            page = response.json()
            self.count(bytes_=len(response.content))
            changes.add(page)
            since = changes.next
            if not page.get("more"):
                return changes

    def catalog(self, etag: str | None) -> tuple[bytes | None, str | None]:
        """The catalogue as JSON-LD, or ``(None, etag)`` when unchanged since ``etag`` (304)."""
        headers = {"Accept": "application/ld+json"}
        if etag:
            headers["If-None-Match"] = etag
        response = self._get(f"{self.source}/catalog", "the catalogue", headers=headers)
        if response.status_code == 304:
            return None, etag
        _check(response, "the catalogue")
        self.count(bytes_=len(response.content))
        return response.content, response.headers.get("ETag")

    def download(self, url: str, sha256: str, size: int, staging: Path) -> Path:
        """Download ``url`` into ``staging/<sha256>``, verified; resume a partial file left by an interruption.

        Returns the verified file (already there from an earlier run: no request).

        Raises
        ------
        SyncError
            Unreachable, an HTTP error, a truncated or corrupted file (its
            partial file is removed: the next run downloads it again), a full disk.
        """
        final = staging / sha256
        if final.is_file() and final.stat().st_size == size:  # staged by an earlier run: checked again, as
            if _file_sha256(final) == sha256:  # it was not synced (a power cut may have left it with other bytes)
                return final
            final.unlink()
        partial = staging / f"{sha256}.part"
        offset = partial.stat().st_size if partial.is_file() else 0
        if offset > size:
            partial.unlink()
            offset = 0
        headers = {"Range": f"bytes={offset}-", "If-Range": f'"{sha256}"'} if 0 < offset < size else {}
        name = url.rsplit("/", 1)[-1]
        digest = hashlib.sha256()
        if offset < size:
            self._fetch(url, name, partial, headers, offset, digest)
        else:  # complete before an interruption: only its check is left
            _hash_into(digest, partial)
        self.count(downloads=1)
        got = digest.hexdigest()
        if partial.stat().st_size != size or got != sha256:
            partial.unlink(missing_ok=True)
            raise SyncError(f"{name}: the download does not match the catalogue's checksum (sha256 {got[:12]}..., "
                            f"expected {sha256[:12]}...); it was discarded, the mirror is unchanged and the next "
                            f"run downloads it again")
        os.replace(partial, final)  # synced with the other staged files before the commit's journal
        return final

    def _fetch(self, url: str, name: str, partial: Path, headers: dict, offset: int, digest) -> None:
        """Stream ``url`` into ``partial`` (appending to a resumed one), hashing as it is written."""
        self.count(requests_=1)
        try:
            with self.session.get(url, headers=headers, stream=True, timeout=TIMEOUT) as response:
                if response.status_code not in (200, 206):
                    _check(response, name)
                resumed = response.status_code == 206 and offset > 0
                if resumed:
                    _hash_into(digest, partial)
                with open(partial, "ab" if resumed else "wb") as out:
                    for chunk in response.iter_content(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        self.count(bytes_=len(chunk))
        except requests.RequestException as error:
            raise SyncError(f"{name}: the download was interrupted ({type(error).__name__}); the mirror is "
                            f"unchanged, the next run resumes it") from None
        except OSError as error:
            if error.errno in DISK_FULL:
                partial.unlink(missing_ok=True)
                raise SyncError(f"{name}: no space left in {partial.parent} ({os.strerror(error.errno)}); the mirror "
                                f"is unchanged, free some space and run again") from None
            raise


@dataclass
class Changes:
    """The change feed after a seq: its events, the seq to ask from next time, and the datasets it describes.

    ``described`` maps each layer an event names to its DCAT document as the
    server describes it now (None: no longer public), or is None as a whole
    when the server does not describe them (the catalogue is then read).
    """

    events: list[dict[str, Any]]
    next: int
    described: dict[str, dict | None] | None

    def add(self, page: dict[str, Any]) -> None:
        self.events += page["events"]
        self.next = int(page["next"])
        documents = page.get("datasets")
        if not isinstance(documents, dict) or self.described is None:
            self.described = None
            return
        for event in page["events"]:  # a later page's description is the newer one
            self.described[event["layer"]] = documents.get(event["layer"])


class FeedReset(SyncError):
    """The server no longer knows the mirror's last seq (its catalog was rebuilt): sync in full."""


def _check(response: requests.Response, what: str) -> None:
    if response.status_code != 200:
        raise SyncError(f"{what}: the server answered {response.status_code} {response.reason}; the mirror is "
                        f"unchanged, the next run retries")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    _hash_into(digest, path)
    return digest.hexdigest()


def _hash_into(digest, path: Path) -> None:
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
