"""The mirror's own records in ``TARGET/.lutece-mirror/``: its state, its journal, its lock, its staging.

``state.json``: the source, the last public seq, the catalogue's ETag, each
dataset's version and files (name, sha256, size) and the archived datasets.
It is replaced whole (written aside, then renamed), so it is the old one or
the new one.

``journal.json``: a sync's commit written out before it is applied (the
moves of verified files into place, the folders to archive or remove, the
new state). A sync killed while applying it is finished by the next run,
which applies the journal again (every step can be applied twice).

Durability comes in two barriers per commit, not one fsync per file: the
staged files (downloads, metadata, index) are written without syncing, then
one :func:`flush` of their filesystem puts them all on disk before the
journal is written (and synced); after the journal's steps, one flush again
before the state says the commit is done. A power cut thus leaves the old
mirror or, through the journal, the new one.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from gis.errors import SyncError

HIDDEN = ".lutece-mirror"
_SYNCFS = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)  # Linux; elsewhere os.sync()


def home(target: Path) -> Path:
    return target / HIDDEN


def staging(target: Path) -> Path:
    return home(target) / "staging"


def empty_state(source: str) -> dict[str, Any]:
    return {"source": source, "last_seq": None, "catalog_etag": None, "datasets": {}, "archived": {}}


def load_state(target: Path, source: str) -> dict[str, Any]:
    """The mirror's state (empty for a new mirror). Refuses a mirror of another source."""
    path = home(target) / "state.json"
    if not path.is_file():
        return empty_state(source)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SyncError(f"{path}: unreadable mirror state ({error}); move it away to sync in full") from None
    if state.get("source") != source:
        raise SyncError(f"{target} mirrors {state.get('source')}, not {source}; use another --target")
    return state


def write_json(path: Path, document: Any, durable: bool = True) -> None:
    """Write a JSON file aside, sync it (unless a later :func:`flush` will), then rename it into place."""
    write_file(path, json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8"), durable)


def write_file(path: Path, data: bytes, durable: bool = True) -> None:
    """Write a file aside, sync it (unless a later :func:`flush` will), then rename it into place.

    Its folder is synced by whoever commits.
    """
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as out:
        out.write(data)
        if durable:
            out.flush()
            os.fsync(out.fileno())
    os.replace(partial, path)


@contextmanager
def locked(target: Path) -> Iterator[None]:
    """One sync at a time on a mirror."""
    home(target).mkdir(parents=True, exist_ok=True)
    with open(home(target) / "lock", "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SyncError(f"another 'lutece mirror' is syncing {target}; wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def apply_journal(target: Path) -> bool:
    """Apply the journal a killed sync left (again: each step can run twice); True when there was one."""
    path = home(target) / "journal.json"
    if not path.is_file():
        return False
    journal = json.loads(path.read_text(encoding="utf-8"))
    touched: set[Path] = set()
    for step in journal["steps"]:
        touched |= _apply(target, step)
    flush([target, *touched])  # the renames reach the disk before the state says they are done
    write_json(home(target) / "state.json", journal["state"])
    sync_dir(home(target))
    path.unlink()
    sync_dir(home(target))
    return True


def commit(target: Path, steps: list[dict[str, Any]], state: dict[str, Any]) -> None:
    """Put the staged files on disk, write the journal, then apply it (see the module's docstring)."""
    flush([staging(target)])  # what the journal moves is on disk before the journal is
    write_json(home(target) / "journal.json", {"steps": steps, "state": state})
    sync_dir(home(target))  # the journal is there before anything moves
    apply_journal(target)


def _apply(target: Path, step: dict[str, Any]) -> set[Path]:
    """Apply one step; return the folders whose entries it changed (to be synced)."""
    kind = step["do"]
    if kind == "move":  # a file verified and staged -> its place
        source, destination = target / step["from"], target / step["to"]
        if source.exists():
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, destination)
    elif kind == "copy":  # a staged file kept for another name (two datasets with the same bytes)
        source, destination = target / step["from"], target / step["to"]
        if source.exists() and not destination.exists():
            destination.parent.mkdir(parents=True, exist_ok=True)
            partial = destination.with_name(f".{destination.name}.partial")
            shutil.copyfile(source, partial)
            with open(partial, "rb") as copied:
                os.fsync(copied.fileno())
            os.replace(partial, destination)
    elif kind == "remove":
        path = target / step["path"]
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    elif kind == "rename-dir":  # a dataset's folder -> the archive (or back)
        source, destination = target / step["from"], target / step["to"]
        if source.is_dir():
            if destination.exists():
                shutil.rmtree(destination)
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, destination)
    paths = [target / step[key] for key in ("from", "to", "path") if key in step]
    return {path.parent for path in paths} | ({target / step["to"]} if kind == "rename-dir" else set())


def flush(folders: list[Path]) -> None:
    """Put on disk everything written so far (data, names) in the filesystems holding ``folders``.

    One ``syncfs`` per filesystem: a barrier for a whole batch of files,
    where an fsync per file and per folder costs a journal commit each.
    """
    devices: dict[int, Path] = {}
    for folder in folders:
        if folder.is_dir():
            devices.setdefault(folder.stat().st_dev, folder)
    if _SYNCFS is None and devices:
        os.sync()
        return
    for folder in devices.values():
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            if _SYNCFS(descriptor) != 0:  # a write-back error (EIO, ENOSPC...): the files are not safe
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code), str(folder))
        finally:
            os.close(descriptor)


def sync_dir(path: Path) -> None:
    """fsync a folder, so that the renames and removals of its entries survive a power cut."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
