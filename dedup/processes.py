"""Worker processes the engine starts: spawned, and without re-running the parent's script.

Spawned, not forked: a fork of a process whose Polars or DuckDB thread pools have run can
deadlock. But `multiprocessing`'s spawn re-runs the parent's `__main__` script in every child, so
that functions defined there can be unpickled. The workers here only run functions of this
project's packages, and re-running the script costs its imports and, for a script without an
`if __name__ == "__main__":` guard, runs it a second time (a notebook-style script that clears
its folder and calls `run_pipeline` would do so again in the child). The children are therefore
started with the main script hidden.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

_spawning = threading.Lock()


@contextmanager
def main_script_hidden() -> Iterator[None]:
    """While it lasts, a spawned child does not import the parent's `__main__`."""
    main = sys.modules.get("__main__")
    with _spawning:
        if main is None:
            yield
            return
        saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
        main.__dict__.pop("__file__", None)
        if "__spec__" in saved:
            main.__spec__ = None
        try:
            yield
        finally:
            main.__dict__.update(saved)


# How often an idle worker checks that the process that started it is alive.
PARENT_CHECK_SECONDS = 1.0


def _exit_with_parent(parent: int) -> None:
    """Pool initializer: end this worker once its parent is gone. A parent killed outright
    (SIGKILL, the OOM killer) runs no clean-up, and its idle workers wait on their task queue
    forever: measured, a killed `contacts run` left its GX worker (~290 MB) running."""

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_SECONDS)
            if os.getppid() != parent:  # re-parented: the parent has died
                os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def spawn_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` spawned processes, all started now (see `main_script_hidden`); each
    exits on its own if this process dies without shutting the pool down."""
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_exit_with_parent,
        initargs=(os.getpid(),),
    )
    with main_script_hidden():
        # A pool spawns a process per task that finds none idle, in `submit` itself (the child's
        # start-up data is taken then): no-op tasks start all of them while the script is hidden.
        for _ in range(workers):
            pool.submit(int)
    return pool
