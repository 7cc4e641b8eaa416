"""Great Expectations in a separate process that starts importing GX when a run starts.

Importing GX costs about 8 s of one core, and a nightly run needs it only at its end (the
snapshot suites, then the exports). Imported on a thread of the run's own process it fought the
run's Python for the GIL and gained about 1 s (docs/performance.md); in a spawned process it
loads on the core the run leaves idle, and the checks find it ready. The run sends frames (which
pickle as Arrow) and gets a `QualityReport` back; the worker never opens a DuckDB file, so it
never contends for a file lock.

`warm()` is called by the Dagster resource that the quality checks use (assets.resources
.QualityRunner), so every run that will check starts the import first thing. Callers that never
warmed (tests, one-off scripts) run inline: a cold worker would import the program and GX anyway.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from dedup.processes import spawn_pool

T = TypeVar("T")

log = logging.getLogger(__name__)

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


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


def warm() -> None:
    """Start the worker and its GX import, once per process; returns at once."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = spawn_pool(1)
            # Its result is not awaited: a failed import fails again, with its error, in `run`.
            _pool.submit(_import_gx)


def is_warm() -> bool:
    return _pool is not None


def run(fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)` in the warmed worker, or inline when none was started.

    A worker that died (killed, out of memory) is dropped and the call runs inline: a quality
    check must give its verdict, never fail because its helper process went away.
    """
    global _pool
    with _lock:
        pool = _pool
    if pool is None:
        return fn(*args)
    try:
        return pool.submit(_in_directory, os.getcwd(), fn, *args).result()
    except BrokenProcessPool:
        log.warning("the Great Expectations worker process died; checking in this process")
        with _lock:
            if _pool is pool:
                _pool = None
        pool.shutdown(wait=False, cancel_futures=True)
        return fn(*args)


def shutdown() -> None:
    """Stop the worker (tests; a long-lived process that is done checking)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
