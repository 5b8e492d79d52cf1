"""Running the tiles on Dask: a LocalCluster of ``workers`` processes, or an existing cluster.

Each file is decoded by one task, and each tile by one task that depends on
the decoding of its own file and of its neighbours; the scheduler places them
and the driver only gathers the tiles' small summaries. A task's memory is
one tile plus its halo, whatever the size of the job.
"""

from __future__ import annotations

from pathlib import Path

from gis.errors import InputError

SINGLE_THREADED = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}


class DaskExecutor:
    """Callable like the in-process executor; owns its cluster if it made one."""

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

    def __call__(self, plan, todo, keys, hashes, work: Path, progress) -> list[str]:
        from dask.distributed import as_completed

        from pipelines.runner import _needed_files

        by_path = {job.path: job for job in plan.jobs}
        needed = sorted({path for job in todo for path in _needed_files(job)})
        plan_future = self.client.scatter(plan, broadcast=True)
        decoded = {path: self.client.submit(_decode, plan_future, by_path[path], hashes, work, key=f"decode-{hashes[path]}")
                   for path in needed}
        tiles = [self.client.submit(_tile, plan_future, job, keys[job.path],
                                    {path: decoded[path] for path in _needed_files(job)}, work,
                                    key=f"tile-{keys[job.path]}") for job in todo]
        failures = []
        for done, future in enumerate(as_completed(tiles), start=1):
            error = future.result()
            if error:
                failures.append(error)
            progress("tiles", done, len(tiles))
        return list(dict.fromkeys(failures))

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


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


def _decode(plan, job, hashes, work):
    from pipelines.runner import decode_file

    try:
        return decode_file(plan, job, hashes, work)
    except InputError as exc:
        return exc


def _tile(plan, job, key, decoded, work):
    """Process one tile; a user error is returned as its message, so the other tiles go on."""
    from pipelines.runner import process_tile

    failed = [value for value in decoded.values() if isinstance(value, InputError)]
    if failed:
        return str(failed[0])
    try:
        process_tile(plan, job, key, decoded, work)
    except InputError as exc:
        return f"{job.path}: {exc}"
    return None
