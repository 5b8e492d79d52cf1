"""Kill -9 a publication (or a gc) in a child process at a named phase, and know where it was killed.

The child wraps the backend's steps to write a marker to a pipe as it enters
each phase, before doing the work of that phase:

``start``          the child began (the gates and the checksum come next)
``before-claim``   entering ``begin_publication``: nothing claimed yet
``claimed``        the claim is recorded
``data-write``     inside the data write, part of it done: GDAL has taken the
                   first batch of features, PostgreSQL's COPY the first rows,
                   the file store half of a file's bytes
``written``        the data is complete (table loaded, folder renamed into place)
``before-switch``  entering ``commit_publication``: nothing switched yet
``after-switch``   the switch is committed; the claim's lock and the freeing
                   of versions past retention come next
``release``        freeing the data of a version past retention (a table
                   drop, a folder's removal), after the switch
``done``           the publication returned
``gc``             inside gc, at its first removal (a table drop, or a folder's
                   deletion once moved to the trash)

For a named-phase kill the child pauses at that phase's marker and the parent
kills it there; for a random-moment kill nothing pauses and the parent kills
after a delay. Either way the last marker read is where the kill landed.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import shutil
import signal
import time
from typing import Any, Callable

FORK = multiprocessing.get_context("fork")  # children start at once, without re-importing GDAL and geopandas
PUBLICATION_PHASES = ("before-claim", "data-write", "before-switch", "after-switch", "release")
PAUSE_S = 120.0  # a paused child waits this long for its kill (a test failing first ends it)


def kill_at(work: Callable[[Any], None], open_catalog: Callable[[], Any], phase: str | None,
            delay: float | None = None, timeout: float = 60.0) -> tuple[list[str], float]:
    """Run ``work(catalog)`` in a child, kill -9 it at ``phase`` (or ``delay`` s after its ``start``).

    Returns the markers the child wrote, in order, and the seconds from its
    ``start`` marker (its catalog open, the work about to begin) to its kill.

    Raises
    ------
    AssertionError
        When the child ends or fails before it reaches ``phase``.
    """
    read_end, write_end = os.pipe()
    process = FORK.Process(target=_child, args=(work, open_catalog, phase, write_end))
    process.start()
    os.close(write_end)
    markers: list[str] = []
    buffer = b""
    try:
        buffer = _read_until(read_end, "start", markers, timeout)
        started = time.perf_counter()
        if phase is not None:
            buffer = _read_until(read_end, phase, markers, timeout, buffer)
        else:
            time.sleep(delay or 0.0)
    finally:
        seconds = time.perf_counter() - started if "start" in markers else 0.0
        if process.is_alive():
            os.kill(process.pid, signal.SIGKILL)
        process.join()
        with os.fdopen(read_end, "rb") as stream:
            buffer += stream.read()
    markers += [line.decode() for line in buffer.split(b"\n") if line]
    if phase is not None:
        assert markers and markers[-1] == phase, f"the child was to be killed at {phase}, it reached {markers}"
    return markers, seconds


def _read_until(fd: int, phase: str, markers: list[str], timeout: float, buffer: bytes = b"") -> bytes:
    """Read markers until ``phase`` comes (the child then pauses there); return what is left of the buffer."""
    deadline = time.monotonic() + timeout
    while True:
        lines = buffer.split(b"\n")
        buffer = lines.pop()
        markers += [line.decode() for line in lines if line]
        if phase in markers:
            return buffer
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 4096) if ready else b""
        if not chunk:
            raise AssertionError(f"the child ended or stalled before {phase}: markers {markers}")
        buffer += chunk


def _child(work, open_catalog, phase: str | None, fd: int) -> None:
    def mark(name: str) -> None:
        os.write(fd, name.encode() + b"\n")
        if name == phase:
            time.sleep(PAUSE_S)

    catalog = open_catalog()
    _instrument(catalog.backend, mark)
    mark("start")
    work(catalog)
    mark("done")


def _instrument(backend, mark: Callable[[str], None]) -> None:
    """Wrap the backend's steps (in this child only) so that each writes its marker."""
    _around(backend, "begin_publication", before="before-claim", after="claimed")
    _around(backend, "store_vector", after="written")
    _around(backend, "store_files", after="written")
    _around(backend, "commit_publication", before="before-switch")
    _around(backend, "_let_go", before="after-switch")  # called right after the switch's transaction
    _around(backend, "_drop_table", before=lambda: "gc" if getattr(backend, "_in_gc", False) else "release")
    _around(backend.files, "remove", before=lambda: None if getattr(backend, "_in_gc", False) else "release",
            marker_of=backend)
    _mid_write_hooks(backend, mark)
    backend._mark = mark


def _around(target, name: str, before: str | Callable[[], str | None] | None = None, after: str | None = None,
            marker_of=None) -> None:
    """Wrap ``target.name`` to write ``before`` (a marker, or a function giving one or None) and ``after``."""
    method = getattr(target, name)
    backend = marker_of or target

    def wrapped(*args, **kwargs):
        marker = before() if callable(before) else before
        if marker:
            backend._mark(marker)
        result = method(*args, **kwargs)
        if after:
            backend._mark(after)
        return result

    setattr(target, name, wrapped)


def _mid_write_hooks(backend, mark: Callable[[str], None]) -> None:
    """Marks inside the data write, once part of the data is written."""
    import pyarrow as pa
    import pyogrio

    import gis.backends.postgis as postgis

    write_arrow = pyogrio.write_arrow

    def write_in_batches(table, *args, **kwargs):  # GDAL pulls the batches one by one from the stream
        batches = table.to_batches(max_chunksize=max(1, table.num_rows // 4))

        def stream():
            for index, batch in enumerate(batches):
                if index == 1:
                    mark("data-write")
                yield batch

        return write_arrow(pa.RecordBatchReader.from_batches(table.schema, stream()), *args, **kwargs)

    pyogrio.write_arrow = write_in_batches
    copy_data = postgis.copy_data

    def copy_in_pieces(values, rows, chunk=1 << 16):  # the COPY has sent its first rows to the server
        for index, piece in enumerate(copy_data(values, rows, chunk=max(1, rows // 4))):
            if index == 2:
                mark("data-write")
            yield piece

    postgis.copy_data = copy_in_pieces
    rmtree = shutil.rmtree

    def copy_half_then_mark(source, target, **kwargs):  # the file store's copy of a file, half done
        with open(source, "rb") as stream:
            data = stream.read()
        with open(target, "wb") as out:
            out.write(data[: len(data) // 2])
            out.flush()
            os.fsync(out.fileno())
            mark("data-write")
            out.write(data[len(data) // 2:])
        shutil.copymode(source, target)
        return target

    def rmtree_marked(path, *args, **kwargs):  # gc deleting a folder it moved out of the way
        if getattr(backend, "_in_gc", False):
            mark("gc")
        return rmtree(path, *args, **kwargs)

    shutil.copyfile, shutil.rmtree = copy_half_then_mark, rmtree_marked
    gc = backend.gc

    def marked_gc():
        backend._in_gc = True
        return gc()

    backend.gc = marked_gc
