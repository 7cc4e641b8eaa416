"""Rows read from one published file, kept for the next read that asks the same of it.

A published file never changes while it is current: a publish is a rename, which gives a new
version and a new `read_cache.Snapshot` (with a new memo), so rows read from a snapshot stay
right for as long as it is read. What can change between two reads of one file is never kept
here: pending edits are laid on copies of the rows by the caller, and a page's key holds the
hidden set (deletions, erasures). On the demo load a read by id costs ~1.8 ms of DuckDB and
~0.1 ms from here (docs/performance.md, session 15).

Bounded by rows held (an LRU), so a process's memory does not grow with the workspace. Imports
nothing of the service.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

# Rows kept per published file: ~2-3 KB each as Python dicts, so tens of MB at most.
ROWS_KEPT = 20_000


class RowMemo:
    """key -> the rows one read gave (a contact by id, a page), least recently used dropped."""

    def __init__(self, rows: int = ROWS_KEPT) -> None:
        self._limit = rows
        self._held = 0
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, list[dict]] = OrderedDict()

    def get(self, key: Hashable) -> list[dict] | None:
        """Copies of the rows kept under `key` (the caller may change them), or None."""
        with self._lock:
            rows = self._entries.get(key)
            if rows is None:
                return None
            self._entries.move_to_end(key)
        return [dict(row) for row in rows]

    def put(self, key: Hashable, rows: list[dict]) -> None:
        """Keep copies of `rows` (as read, before the caller changes them) under `key`."""
        kept = [dict(row) for row in rows]
        with self._lock:
            old = self._entries.pop(key, None)
            self._held -= _weight(old) if old is not None else 0
            self._entries[key] = kept
            self._held += _weight(kept)
            while self._held > self._limit and len(self._entries) > 1:
                _, dropped = self._entries.popitem(last=False)
                self._held -= _weight(dropped)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._held = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def _weight(rows: list[dict]) -> int:
    return max(len(rows), 1)  # an empty answer (no such contact) is kept too, and counts one
