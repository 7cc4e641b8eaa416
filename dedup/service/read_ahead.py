"""Rows read past a cursor page, kept for the page after it (a client walking the cursor).

A backend syncing every contact asks page after page, each starting where the last one ended.
At 2.2M contacts a page of 201 rows costs ~13 ms of DuckDB CPU and one of 1,001 rows ~19 ms
(the row group's list columns cost the same whatever is taken from them; docs/performance.md),
so a page that continues a cursor this process handed out reads ahead and keeps the rest for
the pages that follow. A cursor nobody was given (a random jump, the first page) reads only its
page, so single pages cost what they did.

Entries are keyed by a scope (the published file's version, the filter, the hidden set: any
change of them is a miss, never a stale row) and the cursor they continue; each is taken once.
Holds rows as the caller read them; it imports nothing of the service.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable


class ReadAhead:
    """A small LRU of (scope, cursor) -> rows after that cursor, and of the cursors handed out."""

    def __init__(self, entries: int = 16) -> None:
        self._entries = entries
        self._lock = threading.Lock()
        self._rows: OrderedDict[tuple[Hashable, str], tuple[list[dict], bool]] = OrderedDict()
        self._handed_out: OrderedDict[tuple[Hashable, str], None] = OrderedDict()

    def take(self, scope: Hashable, cursor: str | None) -> tuple[list[dict], bool] | None:
        """The rows kept after `cursor` and whether they run to the end of the table (None:
        nothing kept). Taken: a second page with the same cursor reads again."""
        if cursor is None:
            return None
        with self._lock:
            return self._rows.pop((scope, cursor), None)

    def continues(self, scope: Hashable, cursor: str | None) -> bool:
        """Whether `cursor` is one this process handed out in `scope` (a walk, not a jump)."""
        if cursor is None:
            return False
        with self._lock:
            return (scope, cursor) in self._handed_out

    def keep(self, scope: Hashable, cursor: str, rows: list[dict], complete: bool) -> None:
        """Hand out `cursor`, with `rows` (what follows it; `complete`: to the end) when any."""
        with self._lock:
            self._handed_out[(scope, cursor)] = None
            _trim(self._handed_out, self._entries * 64)
            if rows or complete:
                self._rows[(scope, cursor)] = (rows, complete)
                _trim(self._rows, self._entries)

    def __len__(self) -> int:
        """Entries of rows kept."""
        with self._lock:
            return len(self._rows)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
            self._handed_out.clear()


def _trim(entries: OrderedDict, size: int) -> None:
    while len(entries) > size:
        entries.popitem(last=False)
