"""Triangulating an IFC model's elements with ifcopenshell's geometry iterator, crash-proof.

The iterator runs multi-threaded in a child process (world coordinates, metres,
openings subtracted): a model the kernel crashes on (a segmentation fault in
OpenCASCADE on a broken boolean) costs that child, not the run. The elements of
a crashed batch are converted again in halves until the one that crashes is
alone; it is then skipped with that reason, and the others kept. The caller's own
per-element work (``meanwhile``) runs while the first child triangulates.
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
    """Meshes by GlobalId (vertices in the model's world frame, metres) and why the others have none."""

    meshes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def triangulate(path: Path, ids: list[int], guids: dict[int, str], threads: int | None = None,
                meanwhile: Callable[[], None] | None = None) -> Triangulated:
    """Meshes of the elements ``ids`` (STEP ids) of the IFC file ``path``; see the module docstring.

    ``meanwhile`` is called once, in this process, while the first child runs (the kernel's work and this
    process's overlap instead of one waiting for the other).
    """
    threads = threads or os.cpu_count() or 1
    result = Triangulated()
    pending = [list(ids)] if ids else []
    with tempfile.TemporaryDirectory(prefix="lutece-ifc-") as folder:
        while pending:
            batch = pending.pop()
            child = _start_child(Path(path), batch, threads, Path(folder))
            try:
                if meanwhile is not None:
                    meanwhile()
                    meanwhile = None
            except BaseException:
                child.kill()
                child.wait()
                raise
            outcome = _collect(child, Path(folder))
            if outcome is None:  # the child died: halve the batch until the element that kills it is alone
                if len(batch) == 1:
                    result.failed[guids[batch[0]]] = "the geometry kernel crashed on it"
                else:
                    pending += [batch[: len(batch) // 2], batch[len(batch) // 2:]]
                continue
            meshes, messages = outcome
            result.meshes.update(meshes)
            for step_id in batch:
                guid = guids[step_id]
                if guid not in meshes:
                    result.failed[guid] = messages.get(guid, "the geometry kernel produced no shape")
    if meanwhile is not None:  # no element to triangulate
        meanwhile()
    return result


def _start_child(path: Path, batch: list[int], threads: int, folder: Path) -> subprocess.Popen:
    """The iterator over ``batch`` in a child interpreter (a plain subprocess: no fork, no main-module rerun).

    Its output goes to files, not pipes: a pipe nobody reads while ``meanwhile`` runs could fill and stall it.
    """
    request, answer = folder / "request.json", folder / "answer.pickle"
    answer.unlink(missing_ok=True)
    request.write_text(json.dumps({"path": str(path), "ids": batch, "threads": threads, "answer": str(answer)}))
    root = str(Path(__file__).resolve().parents[3])  # the project, importable by the child wherever it runs
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    with (folder / "child.log").open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", __name__, str(request)], env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log)


def _collect(child: subprocess.Popen, folder: Path) -> tuple[dict, dict] | None:
    """The child's meshes and messages; None when it died (the kernel crashed)."""
    returncode, answer = child.wait(), folder / "answer.pickle"
    if returncode != 0 or not answer.is_file():
        log = (folder / "child.log").read_text(errors="replace")
        if returncode > 0 and "Traceback" in log:  # a bug of ours, not the kernel crashing
            raise RuntimeError(f"IFC geometry child failed: {log[-2000:]}")
        return None
    with answer.open("rb") as stream:
        return pickle.load(stream)


def _iterate(path: str, ids: list[int], threads: int) -> tuple[dict, dict[str, str]]:
    """In the child: run the iterator over ``ids``; meshes by GlobalId and the kernel's errors by GlobalId."""
    import ifcopenshell
    import ifcopenshell.geom

    wrapper = ifcopenshell.ifcopenshell_wrapper
    wrapper.set_log_format_json()
    model = ifcopenshell.open(path)
    settings = ifcopenshell.geom.settings()
    settings.set("use-world-coords", True)
    settings.set("weld-vertices", True)
    iterator = ifcopenshell.geom.iterator(settings, model, threads, include=[model.by_id(i) for i in ids],
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
    return meshes, _errors(wrapper.get_log())


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
    outcome = _iterate(request["path"], request["ids"], request["threads"])
    with open(request["answer"], "wb") as stream:
        pickle.dump(outcome, stream, protocol=pickle.HIGHEST_PROTOCOL)


if __name__ == "__main__":
    _main(sys.argv[1])
