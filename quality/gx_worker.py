"""Great Expectations in a separate process that starts importing GX when a run starts.

Importing GX costs about 8 s of one core, and a nightly run needs it only at its end (the
snapshot suites, then the exports). Imported on a thread of the run's own process it fought the
run's Python for the GIL and gained about 1 s (docs/performance.md); in a spawned process it
loads on the core the run leaves idle, and the checks find it ready. The run sends frames (which
pickle as Arrow) and gets a `QualityReport` back; the worker never opens a DuckDB file, so it
never contends for a file lock.
`submit` hands a call over and returns at once (`Pending`), so the caller can work on while
GX runs: the nightly exports check a file in Polars while the worker checks it in GX.

`warm()` is called by the Dagster resource that the quality checks use (assets.resources
.QualityRunner), so every run that will check starts the import first thing, and by
`contacts run` before ingest. Callers that never warmed (one-off scripts) run inline: a cold
worker would only add its start-up to the same import.

Whoever started the worker stops it (`stop()`) when its run ends: the resource's teardown, the
nightly job's end. A worker left idle keeps the run's process alive: a Dagster run launched by
the default run launcher is a `multiprocessing` child of the code server, and such a child joins
its own children *before* `concurrent.futures` tells its pools to shut down, so it waited on the
idle worker for good (issue 23: ~10 minutes, until the worker was killed). As a safety net a
multiprocessing finalizer, which runs before that join (and at an ordinary interpreter exit),
stops a worker nobody stopped.
"""

from __future__ import annotations

import logging
import multiprocessing.util
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Generic, TypeVar

from dedup.processes import spawn_pool

T = TypeVar("T")

log = logging.getLogger(__name__)


def _import_gx() -> bool:
    # GX probes for optional backends by importing them. This process checks pandas frames only:
    # with PySpark and SQLAlchemy hidden (unless the program's own import already loaded them)
    # the import costs ~2.5 s less CPU (measured 10.0 → 7.4 s).
    for backend in ("pyspark", "sqlalchemy"):
        sys.modules.setdefault(backend, None)  # type: ignore[arg-type]
    from quality.gx_suites import gx_module

    gx_module()
    return True


def _in_directory(cwd: str, fn: Callable[..., T], *args: object) -> T:
    # The worker outlives the directory it was started in (tests, a CLI given relative paths):
    # a call resolves relative paths where the caller would have.
    os.chdir(cwd)
    return fn(*args)


class Worker:
    """One spawned process that runs functions over frames; `warm_up` runs in it first."""

    def __init__(self, warm_up: Callable[[], object] | None = _import_gx) -> None:
        self._warm_up = warm_up
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> bool:
        """Start the process and its warm-up, once; returns at once, True if this call started it."""
        with self._lock:
            if self._pool is not None:
                return False
            self._pool = spawn_pool(1)
            if self._warm_up is not None:
                # Not awaited: a failed warm-up fails again, with its error, in `run`.
                self._pool.submit(self._warm_up)
            return True

    @property
    def started(self) -> bool:
        return self._pool is not None

    def stop(self, grace: float = 2.0) -> None:
        """End the process now (no task of a caller is running: `run` waits for its result).
        A warm-up still importing gets `grace` seconds, then is terminated: it holds no state."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(grace)
            if process.is_alive():
                process.terminate()
                process.join(grace)

    def submit(self, fn: Callable[..., T], *args: object) -> Pending[T]:
        """`fn(*args)` started in the process (the caller works on meanwhile), or, when it was
        not started, to run inline when its result is asked for."""
        with self._lock:
            pool = self._pool
        future = None if pool is None else pool.submit(_in_directory, os.getcwd(), fn, *args)
        return Pending(self, pool, future, fn, args)

    def run(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` in the process, or inline when it was not started.

        A process that died (killed, out of memory) is dropped and the call runs inline: a
        quality check must give its verdict, never fail because its helper went away.
        """
        return self.submit(fn, *args).result()

    def _drop(self, pool: ProcessPoolExecutor) -> None:
        log.warning("the Great Expectations worker process died; checking in this process")
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)


class Pending(Generic[T]):
    """A call handed to the worker (`Worker.submit`); `result()` waits for it."""

    def __init__(
        self,
        worker: Worker | None,
        pool: ProcessPoolExecutor | None,
        future: Future[T] | None,
        fn: Callable[..., T],
        args: tuple[object, ...],
    ) -> None:
        self._worker, self._pool, self._future = worker, pool, future
        self._fn, self._args = fn, args

    @classmethod
    def inline(cls, fn: Callable[..., T], *args: object) -> Pending[T]:
        """A call no worker runs: `result()` runs it in the caller's process."""
        return cls(None, None, None, fn, args)

    def result(self) -> T:
        """The call's result; run inline if no worker ran it, or if the worker died."""
        if self._future is None or self._pool is None or self._worker is None:
            return self._fn(*self._args)
        try:
            return self._future.result()
        except BrokenProcessPool:
            self._worker._drop(self._pool)
            return self._fn(*self._args)

    def discard(self) -> None:
        """The result is not wanted: an inline call never runs; one in the worker is waited for
        (it may still read files the caller is about to remove), its outcome ignored."""
        if self._future is not None:
            wait([self._future])


# The process's one GX worker: a run warms it, its checks use it.
_worker = Worker()


def warm() -> bool:
    """Start this process's GX worker and its import, once; returns at once. True when this
    call started it: the caller then owns it and calls `stop()` when its run ends."""
    return _worker.start()


def stop() -> None:
    """Stop this process's GX worker, if one runs; a later `warm()` starts a new one."""
    _worker.stop()


# Before multiprocessing joins the children of an exiting process (see the module docstring).
multiprocessing.util.Finalize(_worker, _worker.stop, exitpriority=100)


def run(fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)` in this process's GX worker, or inline when none was started."""
    return _worker.run(fn, *args)


def submit(fn: Callable[..., T], *args: object) -> Pending[T]:
    """`fn(*args)` started in this process's GX worker (inline on `result()` when none runs)."""
    return _worker.submit(fn, *args)
