"""Where a job's tasks run: in this process, or on Dask, behind one small interface.

A job is cut into tasks that the executor runs; the driver (``pipelines.runner``)
decides what the tasks are and joins their results. Two kinds of task cover a
job split by lidar tile:

- ``submit(task, *args)``: a task started at once and run ahead of the others,
  such as decoding a file; it returns a handle to wait on or to pass on.
- ``map(task, items, *args, needs=...)``: one task per item, each started once
  the handles it needs are done; the outcomes come back as they finish.

The lidar-to-2D run uses both (decode each file; process each tile with the
decoded files of its neighbourhood; merge in the driver). A stage of another
shape needs only ``map``: a 3D Tiles writer that converts each lidar tile and
then joins them would do, in the driver::

    from pipelines.executors import executor_for

    executor = executor_for(workers=config_workers, scheduler=config_scheduler)
    try:
        settings = executor.share(settings)             # sent once to every worker
        parts, failures = {}, []
        for outcome in executor.map(convert_tile, tiles, settings, work):
            if outcome.error is not None:
                failures.append(f"{outcome.item}: {outcome.error}")
            else:
                parts[outcome.item] = outcome.value     # keep results small: paths, counts
    finally:
        executor.close()
    join(parts)                                         # in the driver: the tileset.json, the root

    def convert_tile(tile, settings, work, *, needed, context):  # a module-level function
        ...                                             # write the tile's content under work/, return its path

Rules for a task:

- It is a module-level function (Dask pickles it by name), called as
  ``task(item, *args, needed=..., context=...)``: ``needed`` maps each key of
  ``needs(item)`` to that handle's result (empty without ``needs``), and
  ``context`` is a :class:`TaskContext`: the threads the task may use itself
  and ``tell(detail)`` for progress (silent on Dask).
- It writes its output to a shared folder and returns something small: on
  Dask the result crosses the network. Its memory is one item's.
- A user error (:class:`gis.errors.InputError`: a bad file, a bad option)
  comes back in its :class:`Outcome` so the other items go on; any other
  exception stops the run. A task whose need failed is not run: its outcome
  carries the need's error, with ``need_failed`` set.
- The same items with the same arguments must give the same result on either
  executor: the tests compare them.

In-process (``workers=0``, the default) ``submit`` runs its tasks one at a
time, in the order submitted, in a background thread (decoding LAZ releases
the GIL, so files decode while tiles are processed); ``map`` starts its items
in the order given, each as soon as its needs are done, and runs ``threads``
threads in all: a task asking for ``task_threads=2`` gets 2 of them and runs
alone, one asking for 1 runs two at a time. The memory a task freed is given
back to the system after each ``map`` task. On Dask (``workers=N``: a
LocalCluster of N single-threaded processes; ``scheduler``: an existing
cluster) every task is a Dask task and a ``map`` task gets one thread.
"""

from __future__ import annotations

import ctypes
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from gis.errors import InputError

# In-process, two threads run the tasks of a map: numpy, GEOS, GDAL and open3d release the GIL.
THREADS = 2
SINGLE_THREADED = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}

Needs = Callable[[Any], dict[Any, Any]]  # item -> {key: handle}


def _silent(detail: str) -> None:
    """Progress told where nobody listens (a Dask worker)."""


@dataclass(frozen=True)
class TaskContext:
    """What a map task gets from its executor."""

    threads: int = 1
    tell: Callable[[str], None] = _silent


@dataclass
class Outcome:
    """How one item of a map ended: its result, or the user error that stopped it."""

    item: Any
    value: Any = None
    error: InputError | None = None
    need_failed: bool = False  # the error is that of a task the item needed, not the item's own


@dataclass
class _Failed:
    """A user error carried as a task's result, so that the tasks depending on it can tell."""

    error: InputError
    need_failed: bool = False


class Executor(ABC):
    """Runs tasks; see the module docstring for the rules a task follows."""

    def share(self, value: Any) -> Any:
        """``value`` as an argument every task receives: sent once to each worker (a plan, settings)."""
        return value

    @abstractmethod
    def submit(self, task: Callable[..., Any], *args: Any, key: str | None = None,
               on_done: Callable[[], None] | None = None) -> Any:
        """Start ``task(*args)`` now; return a handle for the ``needs`` of a map.

        ``key`` names the task (on Dask, a task of the same key still held is not
        run again); ``on_done`` is called once the task has ended, well or not.
        """

    @abstractmethod
    def map(self, task: Callable[..., Any], items: Iterable[Any], *args: Any, needs: Needs | None = None,
            task_threads: int = 1, key: Callable[[Any], str] | None = None,
            tell: Callable[[Any, str], None] | None = None) -> Iterator[Outcome]:
        """Run ``task(item, *args, needed=..., context=...)`` for each item; yield the outcomes as they end.

        ``needs(item)`` names the submitted handles an item waits for;
        ``task_threads`` is the most threads a task can use itself; ``key(item)``
        names an item's task; ``tell(item, detail)`` receives a task's progress.
        """

    def close(self) -> None:
        """Stop what is still running or waiting and free the workers; called once, in a ``finally``."""


def executor_for(workers: int = 0, scheduler: str | None = None, threads: int = THREADS) -> Executor:
    """The in-process executor (``workers`` 0 and no ``scheduler``), else a Dask one.

    ``threads`` is the in-process executor's number of threads for a map.
    Raises :class:`InputError` when the scheduler cannot be reached.
    """
    if workers <= 0 and not scheduler:
        return InProcessExecutor(threads)
    return DaskExecutor(workers=workers, scheduler=scheduler)


def _guarded(task: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a task; a user error becomes its result, so the tasks that depend on it go on."""
    try:
        return task(*args, **kwargs)
    except InputError as exc:
        return _Failed(exc)


def _outcome(item: Any, result: Any) -> Outcome:
    if isinstance(result, _Failed):
        return Outcome(item, error=result.error, need_failed=result.need_failed)
    return Outcome(item, value=result)


class InProcessExecutor(Executor):
    """Threads of this process: one for submitted tasks, ``threads`` for a map's."""

    def __init__(self, threads: int = THREADS) -> None:
        self.threads = threads
        self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lutece-ahead")
        self._pools: list[ThreadPoolExecutor] = []
        self._on_done: dict[Future, Callable[[], None] | None] = {}

    def submit(self, task, *args, key=None, on_done=None) -> Future:
        future = self._ahead.submit(_guarded, task, *args)
        self._on_done[future] = on_done
        return future

    def map(self, task, items, *args, needs=None, task_threads=1, key=None, tell=None) -> Iterator[Outcome]:
        task_threads = min(self.threads, task_threads)
        slots = max(1, self.threads // task_threads)
        pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="lutece-task")
        self._pools.append(pool)
        running: dict[Future, Any] = {}
        for item in items:
            needed = {name: self._result(handle) for name, handle in (needs(item) if needs else {}).items()}
            failed = [value for value in needed.values() if isinstance(value, _Failed)]
            if failed:
                yield Outcome(item, error=failed[0].error, need_failed=True)
                continue
            while len(running) >= slots:
                yield from self._collect(running)
            context = TaskContext(task_threads, _telling(tell, item))
            running[pool.submit(_trimmed, task, item, *args, needed=needed, context=context)] = item
        while running:
            yield from self._collect(running)

    def close(self) -> None:
        self._ahead.shutdown(wait=True, cancel_futures=True)  # on Ctrl-C, no decoding of files no task will use
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)

    def _result(self, future: Future) -> Any:
        """A submitted task's result, waited for in this thread; its ``on_done`` is called the first time."""
        result = future.result()
        on_done = self._on_done.pop(future, None)
        if on_done is not None:
            on_done()
        return result

    @staticmethod
    def _collect(running: dict[Future, Any]) -> Iterator[Outcome]:
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in done:
            yield _outcome(running.pop(future), future.result())


def _telling(tell: Callable[[Any, str], None] | None, item: Any) -> Callable[[str], None]:
    if tell is None:
        return _silent
    return lambda detail: tell(item, detail)


def _trimmed(task: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return _guarded(task, *args, **kwargs)
    finally:
        release_free_memory()


def release_free_memory() -> None:
    """Give the memory freed by a task back to the system (glibc keeps it in its per-thread arenas).

    The task and decoding threads each allocate in an arena of their own;
    without this the resident size creeps up tile after tile (peak RSS of
    the 9-tile benchmark job 1.21x the 1-tile job's, 1.08-1.16x with it).
    A no-op where the C library is not glibc.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class DaskExecutor(Executor):
    """Dask tasks on a LocalCluster of ``workers`` processes, or on an existing cluster at ``scheduler``.

    The scheduler places the tasks and the driver only gathers their small
    results; a task's memory is one item's, whatever the size of the job.
    Owns its cluster if it made one.
    """

    def __init__(self, workers: int = 0, scheduler: str | None = None) -> None:
        import dask
        from dask.distributed import Client, LocalCluster

        self.cluster = None
        try:
            if scheduler:
                self.client = Client(scheduler, timeout="10s")
            else:
                # One thread per worker for the native libraries too: open3d (OpenMP), BLAS and numba
                # would otherwise each start a thread per core in every worker and fight over the cores.
                with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environ()}):
                    self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                dashboard_address=None, silence_logs=40, env=SINGLE_THREADED)
                self.client = Client(self.cluster)
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler {scheduler}: {exc}; check --scheduler") from None

    def share(self, value: Any) -> Any:
        return self.client.scatter(value, broadcast=True)

    def submit(self, task, *args, key=None, on_done=None):
        future = self.client.submit(_guarded, task, *args, key=key)
        if on_done is not None:
            future.add_done_callback(lambda _: on_done())
        return future

    def map(self, task, items, *args, needs=None, task_threads=1, key=None, tell=None) -> Iterator[Outcome]:
        from dask.distributed import as_completed

        futures = {self.client.submit(_after_needs, task, item, *args, needed=needs(item) if needs else {},
                                      key=key(item) if key else None): item for item in items}
        for future in as_completed(futures):
            yield _outcome(futures[future], future.result())

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _after_needs(task: Callable[..., Any], item: Any, *args: Any, needed: dict[Any, Any]) -> Any:
    """A map task on a Dask worker: Dask has put the results of its needs in ``needed``."""
    failed = [value for value in needed.values() if isinstance(value, _Failed)]
    if failed:
        return _Failed(failed[0].error, need_failed=True)
    return _guarded(task, item, *args, needed=needed, context=TaskContext())


def _worker_environ() -> dict:
    """Dask's worker environment without its MALLOC_TRIM_THRESHOLD_.

    Dask sets it to 64 kB so that workers hand freed memory back at once; it
    also turns off glibc's adaptive mmap threshold, so that every large numpy
    temporary is mapped and page-faulted afresh: a tile took 5-5.5 s instead
    of 3.5-4 s. A tile's memory is bounded anyway, so the default is kept.
    """
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return environ
