"""One sync of the mirror, and the watch loop.

A sync:

1. finishes a commit a killed sync left (the journal, :mod:`gis.mirror.state`);
2. asks the change feed for the events after its last seq: none, and the
   mirror is current (one request in all);
3. otherwise learns the changed datasets from that same answer (the feed
   embeds the DCAT description of each dataset its events name, or says it
   is no longer public), or, on a first sync, for a mirror missing files or
   from a server whose feed does not describe them, from the catalogue
   (conditional on its ETag); then downloads into the staging folder only
   the files whose sha256 it does not hold, a few at once, each verified
   against the described checksum, while it writes the new metadata,
   notices and index beside them;
4. commits: moves the verified files into the datasets' folders, writes the
   metadata, notices and index, archives (``grace_days``) or removes the
   withdrawn datasets, and writes the new state, through the journal.

Anything failing before the commit (server down, a truncated or corrupted
download, a full disk, a kill) leaves the mirror as it was; verified files
and partial downloads stay in the staging folder, so the next run resumes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from gis.errors import InputError, SyncError
from gis.mirror import state as records
from gis.mirror.client import DISK_FULL, DOWNLOADS_AT_ONCE, Client, FeedReset
from gis.mirror.dcat import Dataset, from_index, parse_catalog, parse_described
from gis.mirror.portal import index_document, index_html, notice

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    """What one sync did."""

    datasets: int = 0
    downloaded: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    unchanged: bool = False
    seq: int | None = None
    requests: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        if self.unchanged:
            return f"mirror: up to date at change {self.seq} ({self.datasets} datasets, {self.requests} request(s))"
        return (f"mirror: {self.datasets} datasets at change {self.seq}; {len(self.downloaded)} file(s) downloaded "
                f"({self.bytes / 1e6:.1f} MB), {len(self.archived)} archived, {len(self.removed)} removed "
                f"in {self.seconds:.1f} s ({self.requests} requests)")


def check_source(source: str) -> str:
    if not source.startswith(("http://", "https://")):
        raise InputError(f"--source {source!r} is not an http(s) URL; give the server's root URL, "
                         f"e.g. https://gis.city.fr")
    return source.rstrip("/")


def sync(source: str, target: Path, grace_days: int = 0, now: datetime | None = None,
         client: Client | None = None, downloads: int = DOWNLOADS_AT_ONCE) -> SyncReport:
    """Bring the mirror in ``target`` up to date with the server at ``source`` (``downloads`` files at once).

    Raises
    ------
    SyncError
        Something failed; the mirror is as it was and the next run completes it.
    """
    started = time.perf_counter()
    source = check_source(source)
    target = Path(target)
    created = not target.exists()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SyncError(f"--target {target}: cannot create the mirror's folder ({error.strerror})") from None
    now = now or datetime.now(timezone.utc)
    client = client or Client(source, downloads)
    try:
        with records.locked(target):
            if records.apply_journal(target):
                log.info("finished the commit of an interrupted sync")
            state = records.load_state(target, source)
            report = _sync(client, target, state, grace_days, now)
    except SyncError:  # (a SyncError is an OSError too: this clause first)
        _forget_if_empty(target, created)
        raise
    except OSError as error:
        if error.errno not in DISK_FULL:
            raise
        _forget_if_empty(target, created)
        raise SyncError(f"no space left in {target} ({os.strerror(error.errno)}); what is not committed waits for "
                        f"the next run: free some space and run again") from None
    report.requests, report.bytes = client.counters.requests, client.counters.bytes
    report.seconds = time.perf_counter() - started
    return report


def _sync(client: Client, target: Path, state: dict[str, Any], grace_days: int, now: datetime) -> SyncReport:
    expired = _expired(state, grace_days, now)
    complete = _complete(target, state)
    if state["last_seq"] is not None:
        try:
            changes = client.changes(state["last_seq"])
        except FeedReset:
            state = {**records.empty_state(state["source"]), "datasets": state["datasets"],
                     "archived": state["archived"]}
            changes = client.changes(0)
        if state["last_seq"] is not None and complete:
            if not changes.events and not expired:
                return SyncReport(datasets=len(state["datasets"]), unchanged=True, seq=changes.next)
            if changes.described is not None:  # the feed says what changed: no catalogue to read
                datasets = _held(target, state)
                datasets.update(parse_described(changes.described, client.source))
                return _commit(client, target, state, {k: v for k, v in datasets.items() if v is not None},
                               changes.next, None, grace_days, now)
    else:
        changes = client.changes(0)
    body, etag = client.catalog(state["catalog_etag"] if complete else None)
    if body is None and not expired:  # the catalogue did not change
        records.write_json(records.home(target) / "state.json", {**state, "last_seq": changes.next})
        return SyncReport(datasets=len(state["datasets"]), unchanged=True, seq=changes.next)
    if body is None:
        body, etag = client.catalog(None)
    return _commit(client, target, state, parse_catalog(body, client.source), changes.next, etag, grace_days, now)


def _commit(client: Client, target: Path, state: dict[str, Any], datasets: dict[str, Dataset], seq: int,
            etag: str | None, grace_days: int, now: datetime) -> SyncReport:
    """Download what the mirror lacks of ``datasets`` (the current ones) while planning the commit, then commit.

    A failed download stops the sync once the downloads under way have
    ended (the others are not started); what they fetched stays in the
    staging folder for the next run.
    """
    staging = records.staging(target)
    staging.mkdir(parents=True, exist_ok=True)
    report = SyncReport(datasets=len(datasets), seq=seq)
    wanted = _wanted(target, state, datasets)
    with ThreadPoolExecutor(client.downloads, thread_name_prefix="lutece-mirror") as pool:
        largest_first = sorted(wanted.items(), key=lambda item: -item[1][1].size)  # no big file left alone at the end
        futures = [pool.submit(client.download, spec.url, sha, spec.size, staging) for sha, (_, spec) in largest_first]
        try:
            steps, new_state = _plan(client.source, target, state, datasets, set(wanted), grace_days, now, report)
            for future in wait(futures, return_when=FIRST_EXCEPTION).done:
                future.result()  # raises the first failure (else they all ended well)
        except BaseException:
            pool.shutdown(cancel_futures=True)
            shutil.rmtree(staging / "meta", ignore_errors=True)  # the plan is made again by the next run
            raise
    report.downloaded += [name for name, _spec in wanted.values()]
    new_state.update(last_seq=seq, catalog_etag=etag)
    records.commit(target, steps, new_state)
    _clean(staging)
    return report


def _held(target: Path, state: dict[str, Any]) -> dict[str, Dataset | None]:
    """The datasets the mirror holds now, as its index lists them."""
    if not state["datasets"]:
        return {}
    index = json.loads((target / "index.json").read_text(encoding="utf-8"))
    return {entry["id"]: from_index(entry) for entry in index["datasets"]}


def _forget_if_empty(target: Path, created: bool) -> None:
    """A first sync that got nothing leaves nothing."""
    staged = records.staging(target)
    if created and not (target / "index.json").exists() and not (staged.is_dir() and any(staged.iterdir())):
        shutil.rmtree(target, ignore_errors=True)


def _complete(target: Path, state: dict[str, Any]) -> bool:
    """Whether every file the state lists is in place with its size (else the catalogue is read again)."""
    for layer_id, entry in state["datasets"].items():
        for name, spec in entry["files"].items():
            path = target / "datasets" / layer_id / name
            if not path.is_file() or path.stat().st_size != spec["size"]:
                return False
    return (target / "index.json").is_file() or not state["datasets"]


def _wanted(target: Path, state: dict[str, Any], datasets: dict[str, Dataset]) -> dict[str, tuple[str, Any]]:
    """The files the mirror lacks, by sha256 (one download for the same bytes under two names): name, spec."""
    wanted: dict[str, tuple[str, Any]] = {}
    for dataset in datasets.values():
        held = state["datasets"].get(dataset.id, {}).get("files", {})
        for spec in dataset.files:
            path = target / "datasets" / dataset.id / spec.name
            if held.get(spec.name, {}).get("sha256") == spec.sha256 and path.is_file() \
                    and path.stat().st_size == spec.size:
                continue
            wanted.setdefault(spec.sha256, (f"{dataset.id}/{spec.name}", spec))
    return wanted


def _plan(source: str, target: Path, state: dict[str, Any], datasets: dict[str, Dataset], staged: set[str],
          grace_days: int, now: datetime, report: SyncReport) -> tuple[list[dict], dict[str, Any]]:
    """The commit's steps and the new state; writes the metadata, notices and index into the staging folder.

    ``staged``: the sha256 of the files downloaded into the staging folder
    (under their sha256). What it writes goes into ``staging/meta``, synced
    by the commit with the downloads, all at once.
    """
    staging = records.staging(target)
    meta = staging / "meta"
    meta.mkdir(exist_ok=True)
    relative = lambda path: path.relative_to(target).as_posix()  # noqa: E731
    steps: list[dict] = []
    archived = dict(state["archived"])
    for layer_id in list(archived):
        if layer_id in datasets or _is_expired(archived[layer_id], grace_days, now):
            steps.append({"do": "remove", "path": f"archive/{layer_id}"})
            del archived[layer_id]
    uses: dict[str, list[str]] = {}
    for dataset in datasets.values():
        folder = f"datasets/{dataset.id}"
        held = state["datasets"].get(dataset.id, {}).get("files", {})
        for spec in dataset.files:
            if spec.sha256 in staged:
                uses.setdefault(spec.sha256, []).append(f"{folder}/{spec.name}")
        names = {spec.name for spec in dataset.files}
        steps += [{"do": "remove", "path": f"{folder}/{name}"} for name in held if name not in names]
        if dataset.metadata is None:  # unchanged: its description and notice stay
            continue
        records.write_file(meta / f"{dataset.id}.dcat.jsonld", dataset.metadata, durable=False)
        records.write_file(meta / f"{dataset.id}.LICENCE.txt", notice(dataset, source).encode("utf-8"), durable=False)
        steps += [{"do": "move", "from": relative(meta / f"{dataset.id}.{name}"), "to": f"{folder}/{name}"}
                  for name in ("dcat.jsonld", "LICENCE.txt")]
    for sha, destinations in uses.items():  # copies first: the move takes the staged file away
        steps += [{"do": "copy", "from": relative(staging / sha), "to": to} for to in destinations[1:]]
        steps.append({"do": "move", "from": relative(staging / sha), "to": destinations[0]})
    for layer_id, entry in state["datasets"].items():
        if layer_id in datasets:
            continue
        if grace_days > 0:
            steps.append({"do": "rename-dir", "from": f"datasets/{layer_id}", "to": f"archive/{layer_id}"})
            archived[layer_id] = {"since": now.isoformat(timespec="seconds"), "title": entry.get("title"),
                                  "version": entry.get("version")}
            report.archived.append(layer_id)
        else:
            steps.append({"do": "remove", "path": f"datasets/{layer_id}"})
            report.removed.append(layer_id)
    index = index_document(source, now.isoformat(timespec="seconds"), datasets, archived, grace_days)
    records.write_json(meta / "index.json", index, durable=False)
    records.write_file(meta / "index.html", index_html(index).encode("utf-8"), durable=False)
    steps += [{"do": "move", "from": relative(meta / name), "to": name} for name in ("index.json", "index.html")]
    new_state = {**state, "archived": archived, "datasets": {
        d.id: {"version": d.version, "title": d.title,
               "files": {f.name: {"sha256": f.sha256, "size": f.size} for f in d.files}} for d in datasets.values()}}
    return steps, new_state


def _expired(state: dict[str, Any], grace_days: int, now: datetime) -> bool:
    return any(_is_expired(entry, grace_days, now) for entry in state["archived"].values())


def _is_expired(entry: dict[str, Any], grace_days: int, now: datetime) -> bool:
    return datetime.fromisoformat(entry["since"]) + timedelta(days=grace_days) <= now


def _clean(staging: Path) -> None:
    """After a commit: what is left in staging (files of runs that failed, now superseded) goes."""
    for path in staging.iterdir():
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def watch(source: str, target: Path, interval: float, grace_days: int = 0,
          report: Callable[[str], None] = log.info, stop: Callable[[], bool] = lambda: False,
          downloads: int = DOWNLOADS_AT_ONCE) -> None:
    """Sync, then follow the change feed every ``interval`` seconds; a failed sync is reported and retried."""
    client = Client(check_source(source), downloads)
    while not stop():
        client.counters = type(client.counters)()
        try:
            result = sync(source, target, grace_days, client=client)
            if not result.unchanged:
                report(result.line())
        except SyncError as error:
            report(f"Error: {error}")
        time.sleep(interval)
