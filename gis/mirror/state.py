"""The mirror's own records in ``TARGET/.lutece-mirror/``: its state, its journal, its lock, its staging.

``state.json``: the source, the last public seq, the catalogue's ETag, each
dataset's version and files (name, sha256, size) and the archived datasets.
It is replaced whole (written aside, then renamed), so it is the old one or
the new one.

``journal.json``: a sync's commit written out before it is applied (the
moves of verified files into place, the folders to archive or remove, the
new state). A sync killed while applying it is finished by the next run,
which applies the journal again (every step can be applied twice).

Durability comes in two batches per commit, not one fsync after each file:
the staged files (downloads, metadata, index) are written without syncing,
then :func:`flush` syncs them and their folders all at once (several fsyncs
at a time, which the filesystem's journal commits together) before the
journal is written (and synced); after the journal's steps, the folders
whose entries changed, again at once, before the state says the commit is
done. A power cut thus leaves the old mirror or, through the journal, the
new one. (Not ``syncfs``: it would also write out every other program's
unsaved data on that disk.)
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from gis.errors import SyncError

HIDDEN = ".lutece-mirror"
_SYNCS_AT_ONCE = 8  # fsyncs in flight together: one journal commit of the filesystem serves them all


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
    flush(sorted(folder for folder in touched if folder.is_dir()))  # the renames, before the state says done
    write_json(home(target) / "state.json", journal["state"])
    sync_dir(home(target))
    path.unlink()
    sync_dir(home(target))
    return True


def commit(target: Path, steps: list[dict[str, Any]], state: dict[str, Any]) -> None:
    """Put the staged files on disk, write the journal, then apply it (see the module's docstring)."""
    staged = [target / step["from"] for step in steps if step["do"] in ("move", "copy")]
    flush(sorted({path for path in staged if path.exists()} | {path.parent for path in staged if path.parent.is_dir()}))
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
    created = {(target / step["to"]).parent.parent} if "to" in step else set()  # a folder made for it: its entry
    return {path.parent for path in paths} | created | ({target / step["to"]} if kind == "rename-dir" else set())


def flush(paths: list[Path]) -> None:
    """fsync files and folders (what was written in them, their entries), several at a time, all before returning."""
    if len(paths) < 2:
        for path in paths:
            sync_dir(path)
        return
    with ThreadPoolExecutor(_SYNCS_AT_ONCE, thread_name_prefix="lutece-mirror-sync") as pool:
        for _ in pool.map(sync_dir, paths):  # (raises the first error, as a write-back error on a full disk)
            pass


def sync_dir(path: Path) -> None:
    """fsync a folder (its renames and removals survive a power cut), or a file (its bytes)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
