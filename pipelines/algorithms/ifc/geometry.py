"""Triangulating an IFC model's elements with ifcopenshell's geometry iterator, crash-proof and in parallel.

The elements are shared out between child processes (``workers``, one per
available core by default), each running the iterator on one thread (world
coordinates, metres, openings subtracted). Processes rather than the
iterator's own threads: with ifcopenshell 0.9 two iterator threads spend twice
the CPU of one on the same elements, so on two cores they finish later than one
thread does, while two single-threaded processes split the work (measured on
the 1,020-space benchmark model: 21 s of CPU in every case; 97 s of wall time
with one process of two threads, 45 s with one thread, 31 s with two
processes, at load 5 on two cores). A model the kernel crashes on (a
segmentation fault in OpenCASCADE on a broken boolean) costs that child, not
the run: the elements of a crashed batch are converted again in halves until
the one that crashes is alone; it is then skipped with that reason, and the
others kept. The caller's own per-element work (``meanwhile``) runs while the
children triangulate.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

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


def default_workers() -> int:
    """One geometry process per core this process may run on (its CPU affinity, else the machine's cores)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no sched_getaffinity (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def triangulate(path: Path, ids: list[int], guids: dict[int, str], workers: int | None = None,
                meanwhile: Callable[[], None] | None = None, check: bool = False) -> Triangulated:
    """Meshes of the elements ``ids`` (STEP ids) of the IFC file ``path``; see the module docstring.

    ``workers`` child processes (default :func:`default_workers`) each triangulate an interleaved share of
    ``ids`` (every class in each share, so the shares cost about the same). With ``check``, each child first
    runs :func:`.checks.element_problem` on its elements and keeps those with a problem from the kernel (in
    ``problems``): the checks run in parallel too. ``meanwhile`` is called once, in this process, while the
    children run.
    """
    workers = max(1, min(workers or default_workers(), len(ids) or 1))
    result = Triangulated()
    pending = [list(ids[k::workers]) for k in range(workers)] if ids else []
    running: list[tuple[list[int], subprocess.Popen, Path]] = []
    with tempfile.TemporaryDirectory(prefix="lutece-ifc-") as folder:
        started = 0
        try:
            while pending or running:
                while pending and len(running) < workers:
                    batch, started = pending.pop(), started + 1
                    job = Path(folder) / f"batch-{started}"
                    job.mkdir()
                    running.append((batch, _start_child(Path(path), batch, job, check), job))
                if meanwhile is not None:
                    meanwhile()
                    meanwhile = None
                batch, child, job = running.pop(0)
                pending += _take(result, batch, _collect(child, job), guids)
        finally:
            for _, child, _ in running:  # an error of ours or an interrupt: no child left behind
                child.kill()
                child.wait()
    if meanwhile is not None:  # no element to triangulate
        meanwhile()
    return result


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


def _start_child(path: Path, batch: list[int], folder: Path, check: bool) -> subprocess.Popen:
    """The iterator over ``batch`` in a child interpreter (a plain subprocess: no fork, no main-module rerun).

    Its output goes to files, not pipes: a pipe nobody reads while ``meanwhile`` runs could fill and stall it.
    """
    request, answer = folder / "request.json", folder / "answer.pickle"
    request.write_text(json.dumps({"path": str(path), "ids": batch, "check": check, "answer": str(answer)}))
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


def _iterate(path: str, ids: list[int], check: bool) -> tuple[dict, dict[str, str], dict[str, str]]:
    """In the child: check (``check``) and run the iterator (one thread) over ``ids``; meshes, the kernel's errors
    and the checks' problems by GlobalId."""
    import ifcopenshell
    import ifcopenshell.geom

    from pipelines.algorithms.ifc.checks import element_problem

    wrapper = ifcopenshell.ifcopenshell_wrapper
    wrapper.set_log_format_json()
    model = ifcopenshell.open(path)
    elements, problems = [model.by_id(i) for i in ids], {}
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
    outcome = _iterate(request["path"], request["ids"], request["check"])
    with open(request["answer"], "wb") as stream:
        pickle.dump(outcome, stream, protocol=pickle.HIGHEST_PROTOCOL)


if __name__ == "__main__":
    _main(sys.argv[1])
