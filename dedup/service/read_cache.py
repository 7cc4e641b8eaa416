"""Reads a long-running server repeats on every request, kept between requests while their files
have not changed: the published file's connection, and values computed from small state files
(the API key file, the decision log).

A file's *version* is what `os.stat` says of it (device, inode, mtime in ns, size): one stat per
request, far cheaper than opening DuckDB. The nightly publish is an atomic rename, so the
published path gets a new inode and the next request opens the new file; the old connection
keeps reading the old file until its last cursor is done (no request sees half of each).

A value is kept only when its files were last modified at least `RACY_SECONDS` before it was
read ("racily clean", as git calls it): file times are coarse (a jiffy on Linux, up to 2 s on
some file systems), so a write landing in the same tick as our read could leave the version
unchanged. Within that window every read goes to the file; an edit is never missed.

Sharing the published file's connection is switched on per file by `share_published` (the web
app does); the CLI keeps opening the file a moment at a time.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import duckdb
import numpy as np

from dedup.service.row_memo import RowMemo

T = TypeVar("T")

# Coarsest file-time granularity we expect (FAT/HFS+ 2 s; ext4 and overlayfs a jiffy).
RACY_SECONDS = 2.0
PUBLISHED_ALIAS = "pub"

Version = tuple[int, int, int, int] | None


def file_version(path: Path) -> Version:
    """(device, inode, mtime_ns, size) of `path`, or None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _settled(versions: Sequence[Version]) -> bool:
    """Every file last changed long enough ago that a later write must change its version."""
    oldest_allowed = time.time_ns() - int(RACY_SECONDS * 1e9)
    return all(v is None or v[2] < oldest_allowed for v in versions)


class VersionedCache:
    """Values keyed by name, each valid while the files it was read from keep their version."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[object, tuple[tuple[Version, ...], object]] = {}

    def get(self, key: object, paths: Sequence[Path], load: Callable[[], T]) -> T:
        # The version is taken before the load: a write during the load makes the next get reload.
        versions = tuple(file_version(p) for p in paths)
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[0] == versions:
            return hit[1]  # type: ignore[return-value]
        value = load()
        if _settled(versions):
            with self._lock:
                self._entries[key] = (versions, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


CACHE = VersionedCache()


def duckdb_files(path: Path) -> tuple[Path, Path]:
    """A DuckDB file and its write-ahead log: a committed write changes one of the two."""
    return path, path.with_name(path.name + ".wal")


class ContactIndex:
    """Every contact id of one published file in row order, with its row id.

    `contacts` is published in contact_id order, but DuckDB keeps only an 8-byte prefix of a
    string's min/max per row group, and every id starts with `contact_`: a `contact_id > ?`
    bound prunes nothing. Row ids have exact min/max, so a cursor or an id is turned into a row
    id here (a binary search) and the query reads the row group(s) holding it. Built once per
    published file (about 2 s and 60 MB for 2.2M contacts: docs/performance.md).
    """

    def __init__(self, ids: np.ndarray, rowids: np.ndarray) -> None:
        self.ids, self.rowids = ids, rowids

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> ContactIndex | None:
        """The index, or None when the rows are not in contact_id order (an older file)."""
        rows = con.execute("SELECT rowid, contact_id FROM contacts ORDER BY rowid").fetchnumpy()
        # Bytes compare like DuckDB's VARCHAR (byte-wise UTF-8), and take a third of str's room.
        ids = np.array([i.encode() for i in rows["contact_id"]], dtype=np.bytes_)
        if len(ids) > 1 and not bool(np.all(ids[:-1] < ids[1:])):
            return None
        return cls(ids, np.asarray(rows["rowid"], dtype=np.int64))

    def rowid(self, contact_id: str) -> int | None:
        """The row id of `contact_id`, or None when `contacts` has no such row."""
        key = contact_id.encode()
        at = int(np.searchsorted(self.ids, key, side="left"))
        if at < len(self.ids) and self.ids[at] == key:
            return int(self.rowids[at])
        return None

    def position(self, contact_id: str) -> int | None:
        """Where `contact_id` is in contact-id order (None: not a contact)."""
        key = contact_id.encode()
        at = int(np.searchsorted(self.ids, key, side="left"))
        return at if at < len(self.ids) and self.ids[at] == key else None

    def position_after(self, contact_id: str | None) -> int | None:
        """Where the first contact whose id sorts after `contact_id` is in contact-id order
        (0 for None; None when there is none)."""
        if contact_id is None:
            return 0 if len(self.ids) else None
        at = int(np.searchsorted(self.ids, contact_id.encode(), "right"))
        return at if at < len(self.ids) else None

    def first_after(self, contact_id: str | None) -> int | None:
        """The row id of the first contact whose id sorts after `contact_id` (None: none)."""
        at = (
            0
            if contact_id is None
            else int(np.searchsorted(self.ids, contact_id.encode(), "right"))
        )
        return int(self.rowids[at]) if at < len(self.ids) else None


class Snapshot:
    """One published file as this process reads it: its connection and its contact index."""

    def __init__(self, con: duckdb.DuckDBPyConnection, version: Version) -> None:
        self.con, self.version = con, version
        self._lock = threading.Lock()
        self._index: ContactIndex | None = None
        self._indexed = False
        self._building: threading.Thread | None = None
        self._memo: dict[str, object] = {}
        self.rows = RowMemo()  # rows read from this file, for the next read asking the same
        self._local = threading.local()  # closed with the snapshot, when no request holds it

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor (its own connection, safe in this thread) on this file."""
        cur = self.con.cursor()
        cur.execute(f"USE {PUBLISHED_ALIAS}")
        return cur

    def thread_cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on this file, kept for the thread's next read (a new cursor and
        its USE cost ~0.3 ms a request). The caller must not close it."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self.cursor()
        return cur

    def memo(self, key: str, load: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """`load(cursor)` once per published file: what never changes while it is current."""
        with self._lock:
            if key in self._memo:
                return self._memo[key]  # type: ignore[no-any-return]
        cur = self.cursor()
        try:
            value = load(cur)
        finally:
            cur.close()
        with self._lock:
            self._memo[key] = value
        return value

    def index(self, wait: bool = True) -> ContactIndex | None:
        """The contact index of this file (None: not in contact_id order).

        `wait=False` never blocks: while the index is being built (in a thread, started by the
        first call) it answers None and the caller takes the slower contact_id path, so the
        requests right after a publish do not queue behind the build.
        """
        with self._lock:
            if self._indexed:
                return self._index
            if self._building is None:
                self._building = threading.Thread(target=self._build, daemon=True)
                self._building.start()
            building = self._building
        if not wait:
            return None
        building.join()
        return self._index

    def _build(self) -> None:
        cur = self.cursor()
        try:
            index = ContactIndex.load(cur)
        except duckdb.Error:
            index = None  # e.g. no `contacts` table: every read takes the plain path
        finally:
            cur.close()
        with self._lock:
            self._index, self._indexed = index, True


class PublishedReader:
    """One read-only connection to the published file per process, reopened after a publish.

    The file is ATTACHed into a private in-memory database rather than opened with
    `duckdb.connect(path)`: DuckDB's per-process instance cache would hand back the *old* file's
    database for the same path while any connection to it is still open.
    """

    def __init__(self, db: Path) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._current: Snapshot | None = None

    def _open(self, version: Version) -> Snapshot:
        con = duckdb.connect()
        try:
            # ATTACH takes no parameters: the path as a quoted literal.
            literal = "'" + str(self.db).replace("'", "''") + "'"
            con.execute(f"ATTACH {literal} AS {PUBLISHED_ALIAS} (READ_ONLY)")
        except Exception:
            con.close()
            raise
        return Snapshot(con, version)

    def snapshot(self) -> Snapshot:
        """The current published file (reopened when its version changed since the last call)."""
        version = file_version(self.db)
        if version is None:
            raise FileNotFoundError(self.db)
        with self._lock:
            if self._current is None or version != self._current.version:
                # The old connection is dropped, not closed: a request still reading it keeps
                # its cursor; the old file is released when the last one is done.
                self._current = self._open(version)
            return self._current

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor (its own connection, safe in this thread) on the current published file."""
        return self.snapshot().cursor()


_readers: dict[Path, PublishedReader] = {}
# The path as callers pass it -> its reader: `Path.resolve` costs several system calls, and
# every request asks (a share is never undone, so what a path resolved to stays right).
_by_given: dict[Path, PublishedReader] = {}
_readers_lock = threading.Lock()


def share_published(db: Path) -> None:
    """From now on this process reads `db` through one long-lived connection."""
    with _readers_lock:
        _readers.setdefault(Path(db).resolve(), PublishedReader(Path(db)))


def shared_reader(db: Path) -> PublishedReader | None:
    if not _readers:
        return None
    found = _by_given.get(db)
    if found is None:
        found = _readers.get(Path(db).resolve())
        if found is not None:
            with _readers_lock:
                _by_given[db] = found
    return found
