"""Triangulating an IFC model's elements with ifcopenshell's geometry iterator, crash-proof and in parallel.

The elements are shared out between child processes (``workers``, one per
available core by default), each running the iterator on one thread (world
coordinates, metres, openings subtracted). Processes rather than the
iterator's own threads: with ifcopenshell 0.9 two iterator threads spend twice
the CPU of one on the same elements, so on two cores they finish later than one
thread does, while two single-threaded processes split the work (measured on
the 1,020-space benchmark model at load 5 on two cores: one process of two
threads 40 s of CPU and 97 s of wall time, one thread 21 s and 45 s, two
processes 21 s and 31 s). A model the kernel crashes on (a segmentation fault
in OpenCASCADE on a broken boolean) costs that child, not the run: the
elements of a crashed batch are converted again in halves until the one that
crashes is alone; it is then skipped with that reason, and the others kept.
The children start before their caller has read the model (:class:`Triangulation`),
so its own reading runs while they triangulate.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# A child costs about 0.3 s of CPU to start (Python, numpy, ifcopenshell) and reads the whole model (RSS); half
# a megabyte of IFC is about 1 s of kernel work (the sample town hall: 1.1 MB, 2 s), so each child has at
# least that much to do, and a model does not start one child per core of a big machine.
BYTES_PER_WORKER = 512 * 1024

# OpenCASCADE for the general case and CGAL's simple kernel where it is enough: 3-12x faster on doors and
# windows (their type's mapped items) than OpenCASCADE alone, measured on the sample town hall.
GEOMETRY_LIBRARY = "hybrid-cgal-simple-opencascade"


@dataclass
class Triangulated:
    """Meshes by GlobalId (vertices in the model's world frame, metres) and why the others have none: the checks'
    ``problems`` (not given to the kernel) and the kernel's failures."""

    meshes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


def default_workers(path: Path | None = None) -> int:
    """One geometry process per core this process may run on (its CPU affinity, else the machine's cores), and
    for ``path`` at most one per :data:`BYTES_PER_WORKER` of it (a small model on a big machine: a few children)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # no sched_getaffinity (macOS, Windows)
        cores = os.cpu_count() or 1
    if path is not None:
        cores = min(cores, math.ceil(Path(path).stat().st_size / BYTES_PER_WORKER))
    return max(1, cores)


def start(path: Path, workers: int | None = None) -> Triangulation:
    """The geometry children of :func:`.reader.read_ifc` on ``path``, started now: a caller that starts them
    before its own imports and checks gains that time (a context manager: leaving it kills the children).

    Each child checks its elements (what would break or crash the kernel) before triangulating the others.
    Raises :class:`~gis.errors.InputError` before starting any for what is clearly not an IFC file.
    """
    from pipelines.algorithms.ifc.source import check_file

    check_file(Path(path))
    return Triangulation(path, workers, check=True)


def triangulate(path: Path, ids: list[int], guids: dict[int, str], workers: int | None = None,
                check: bool = False) -> Triangulated:
    """Meshes of the elements ``ids`` (STEP ids) of the IFC file ``path``; see :class:`Triangulation`."""
    with Triangulation(path, workers, ids, check) as running:
        return running.collect(ids, guids)


class Triangulation:
    """Geometry children at work on an IFC file, started as soon as its path is known.

    ``workers`` child processes (default :func:`default_workers` of the file) each triangulate an interleaved share of
    the elements (every class in each share, so the shares cost about the same): of ``ids`` (STEP ids), or,
    when ``ids`` is None, of every element :func:`.elements.elements_of` finds, each child reading the file to
    find its share. So the children need nothing from the caller: it starts them before it imports, opens and
    reads the model itself, and collects their meshes once it has described the elements. With ``check``,
    each child first runs :func:`.checks.element_problem` on its elements and keeps those with a problem from
    the kernel (in ``problems``): the checks run in parallel too. Leaving the ``with`` block kills the
    children still running (an error, or an interrupt, of the caller).
    """

    def __init__(self, path: Path, workers: int | None = None, ids: list[int] | None = None,
                 check: bool = False) -> None:
        self.path, self.check = Path(path).resolve(), check
        self.workers = max(1, min(workers or default_workers(self.path), len(ids) if ids is not None else 1 << 20))
        self._folder = tempfile.TemporaryDirectory(prefix="lutece-ifc-")
        self._started = 0
        self._running: list[_Child] = []
        if ids is None or ids:
            for k in range(self.workers):
                self._start(None if ids is None else list(ids[k::self.workers]), k)

    def collect(self, ids: list[int], guids: dict[int, str]) -> Triangulated:
        """The meshes of ``ids`` (all the elements the children were given), once the children are done; a
        crashed batch is converted again in halves until the element that kills the kernel is alone."""
        result, pending = Triangulated(), []
        while pending or self._running:
            while pending and len(self._running) < self.workers:
                self._start(pending.pop())
            child = self._running.pop(0)
            batch = child.ids if child.ids is not None else list(ids[child.share::self.workers])
            pending += _take(result, batch, _collect(child.process, child.folder), guids)
        return result

    def _start(self, ids: list[int] | None, share: int = 0) -> None:
        self._started += 1
        folder = Path(self._folder.name) / f"batch-{self._started}"
        folder.mkdir()
        process = _start_child(self.path, ids, (share, self.workers), folder, self.check)
        self._running.append(_Child(ids, share, process, folder))

    def close(self) -> None:
        for child in self._running:  # an error of the caller's, or an interrupt: no child left behind
            child.process.kill()
            child.process.wait()
        self._running = []
        self._folder.cleanup()

    def __enter__(self) -> Triangulation:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class _Child:
    ids: list[int] | None  # None: its share of the model's elements, every workers-th from the share-th
    share: int
    process: subprocess.Popen
    folder: Path


def _take(result: Triangulated, batch: list[int], outcome: tuple[dict, dict] | None,
          guids: dict[int, str]) -> list[list[int]]:
    """Add a child's outcome to ``result``; the halves to convert again when it died (none left: its element fails)."""
    if outcome is None:  # the child died: halve the batch until the element that kills it is alone
        if len(batch) == 1:
            result.failed[guids[batch[0]]] = "the geometry kernel crashed on it"
            return []
        return [batch[: len(batch) // 2], batch[len(batch) // 2:]]
    meshes, messages, problems = outcome
    result.meshes.update(meshes)
    result.problems.update(problems)
    for step_id in batch:
        guid = guids[step_id]
        if guid not in meshes and guid not in problems:
            result.failed[guid] = messages.get(guid, "the geometry kernel produced no shape")
    return []


def _start_child(path: Path, ids: list[int] | None, share: tuple[int, int], folder: Path,
                 check: bool) -> subprocess.Popen:
    """The iterator over ``ids`` (None: over the ``share``, (k, n), of the model's elements) in a child interpreter
    (a plain subprocess: no fork, no main-module rerun).

    Its output goes to files, not pipes: a pipe nobody reads while its parent works could fill and stall it.
    """
    request, answer = folder / "request.json", folder / "answer.pickle"
    request.write_text(json.dumps({"path": str(path), "ids": ids, "share": share, "check": check,
                                   "answer": str(answer)}))
    root = str(Path(__file__).resolve().parents[3])  # this project, imported by the child wherever it runs
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    with (folder / "child.log").open("wb") as log:  # -P: not the working directory's package of the same name
        return subprocess.Popen([sys.executable, "-P", "-m", __name__, str(request)], env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)


def _collect(child: subprocess.Popen, folder: Path) -> tuple[dict, dict, dict] | None:
    """The child's meshes, the kernel's messages and the checks' problems; None when it died (the kernel crashed)."""
    returncode, answer = child.wait(), folder / "answer.pickle"
    if returncode != 0 or not answer.is_file():
        log = (folder / "child.log").read_text(errors="replace")
        if returncode > 0 and "Traceback" in log:  # a bug of ours, not the kernel crashing
            raise RuntimeError(f"IFC geometry child failed: {log[-2000:]}")
        return None
    with answer.open("rb") as stream:
        return pickle.load(stream)


def _iterate(path: str, ids: list[int] | None, share: tuple[int, int],
             check: bool) -> tuple[dict, dict[str, str], dict[str, str]]:
    """In the child: check (``check``) and run the iterator (one thread) over ``ids`` (None: the ``share``);
    meshes, the kernel's errors and the checks' problems by GlobalId."""
    import ifcopenshell
    import ifcopenshell.geom

    from pipelines.algorithms.ifc.checks import element_problem
    from pipelines.algorithms.ifc.elements import elements_of

    wrapper = ifcopenshell.ifcopenshell_wrapper
    wrapper.set_log_format_json()
    model = ifcopenshell.open(path)
    k, n = share
    elements = elements_of(model)[k::n] if ids is None else [model.by_id(i) for i in ids]
    problems = {}
    if check:
        judged = [(element, element_problem(element)) for element in elements]
        problems = {element.GlobalId: problem for element, problem in judged if problem is not None}
        elements = [element for element, problem in judged if problem is None]
    if not elements:
        return {}, {}, problems
    settings = ifcopenshell.geom.settings()
    settings.set("use-world-coords", True)
    settings.set("weld-vertices", True)
    iterator = ifcopenshell.geom.iterator(settings, model, 1, include=elements,
                                          geometry_library=GEOMETRY_LIBRARY)
    meshes = {}
    if iterator.initialize():
        while True:
            shape = iterator.get()
            vertices = np.asarray(shape.geometry.verts, dtype=np.float64).reshape(-1, 3)
            faces = np.asarray(shape.geometry.faces, dtype=np.int64).reshape(-1, 3)
            if len(faces):
                meshes[shape.guid] = (vertices, faces)
            if not iterator.next():
                break
    return meshes, _errors(wrapper.get_log()), problems


def _errors(log: str) -> dict[str, str]:
    """The kernel's error messages by the GlobalId of the product they concern."""
    found: dict[str, str] = {}
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("level") != "error" or "product" not in record:
            continue
        product = record["product"]
        start = product.find("('")
        if start >= 0:
            guid = product[start + 2: product.find("'", start + 2)]
            found.setdefault(guid, f"geometry kernel error: {record.get('message', '').strip()[:200]}")
    return found


def _main(request_file: str) -> None:
    request = json.loads(Path(request_file).read_text())
    outcome = _iterate(request["path"], request["ids"], request["share"], request["check"])
    with open(request["answer"], "wb") as stream:
        pickle.dump(outcome, stream, protocol=pickle.HIGHEST_PROTOCOL)


if __name__ == "__main__":
    _main(sys.argv[1])
