"""Processes as /proc sees them, for the benchmarks that measure more than their own process
(a `contacts serve` with its workers, Spark's JVM and its Python workers). Linux only."""

from __future__ import annotations

import os
from pathlib import Path


def peak_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a live process, in MB; 0 when it is gone."""
    return _status_mb(pid, "VmHWM:")


def rss_mb(pid: int) -> float:
    """VmRSS (resident set now) of a live process, in MB; 0 when it is gone."""
    return _status_mb(pid, "VmRSS:")


def _status_mb(pid: int, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these live processes and of their reaped children (the PySpark
    daemon reaps its workers), from /proc/<pid>/stat."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / tick


def children(pid: int) -> list[int]:
    out = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # the process ended
        return out
    for task in tasks:
        try:
            kids = (task / "children").read_text().split()
        except OSError:  # the thread ended while being listed
            continue
        for kid in kids:
            out += [int(kid), *children(int(kid))]
    return out
