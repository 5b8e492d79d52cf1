"""The executors: one interface, the same outcomes in-process and on Dask, and no import back to the driver."""

from __future__ import annotations

import ast
import threading
import time
from pathlib import Path

import pytest

from gis.errors import InputError
from pipelines.executors import executor_for

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def halve(number: int) -> int:
    if number % 2:
        raise InputError(f"{number} is odd")
    return number // 2


def add_needed(item: int, offset: int, *, needed: dict, context) -> int:
    return item + offset + sum(needed.values())


def broken(item: int, *, needed: dict, context) -> int:
    raise RuntimeError("a bug, not a user error")


def outcomes(executor) -> dict[int, tuple]:
    halves = {n: executor.submit(halve, n, key=f"halve-{n}") for n in (2, 3, 4)}
    results = executor.map(add_needed, [10, 20, 30], executor.share(100),
                           needs=lambda item: {n: halves[n] for n in ((2, 4) if item != 20 else (2, 3))})
    return {o.item: (o.value, str(o.error) if o.error else None, o.need_failed) for o in results}


EXPECTED = {10: (113, None, False), 20: (None, "3 is odd", True), 30: (133, None, False)}


def test_in_process_map_waits_for_needs_and_reports_user_errors():
    executor = executor_for(0, None)
    try:
        assert outcomes(executor) == EXPECTED
        with pytest.raises(RuntimeError, match="a bug"):
            list(executor.map(broken, [1]))
    finally:
        executor.close()


def test_in_process_map_gives_each_task_the_threads_it_asks_for():
    running, peak, lock = [0], [0], threading.Lock()

    def task(item, *, needed, context):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return context.threads

    for task_threads, expected_peak in ((1, 2), (2, 1)):
        peak[0] = 0
        executor = executor_for(0, None, threads=2)
        try:
            assert {o.value for o in executor.map(task, range(6), task_threads=task_threads)} == {task_threads}
        finally:
            executor.close()
        assert peak[0] == expected_peak


@pytest.mark.slow
def test_dask_gives_the_same_outcomes():
    executor = executor_for(1, None)
    try:
        assert outcomes(executor) == EXPECTED
    finally:
        executor.close()


def _pipelines_imports() -> dict[str, set[str]]:
    """Each module of pipelines/ and the modules of pipelines/ it imports (at any depth of its code)."""
    graph = {}
    for path in PIPELINES.rglob("*.py"):
        name = ".".join(path.relative_to(PIPELINES.parent).with_suffix("").parts).removesuffix(".__init__")
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
        graph[name] = imported
    return {name: {other for other in imported if other in graph} for name, imported in graph.items()}


def test_no_module_of_pipelines_imports_back_what_imports_it():
    """The runner imports the tasks and the executors; neither may import the runner, nor any module its own importer."""
    graph = _pipelines_imports()
    assert {"pipelines.tasks", "pipelines.executors"} <= graph["pipelines.runner"]

    def reaches(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for other in graph[todo.pop()] - seen:
                seen.add(other)
                todo.append(other)
        return seen

    cycles = sorted(name for name in graph if name in reaches(name))
    assert cycles == []
    assert "pipelines.runner" not in reaches("pipelines.executors") | reaches("pipelines.tasks")
