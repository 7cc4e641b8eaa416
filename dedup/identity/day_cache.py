"""Normalized rows of each staged source-day, kept from night to night (issue 25).

Normalization is row by row (`interactions.normalize_rows`): the normalized rows of every staged
day are the concatenation of each day's. So a night normalizes only the days that are new or
whose staging changed, reads the others back, and resolves re-deliveries over the whole (the
latest delivery of an interaction id wins across days, so that step stays global).

A day's rows are kept in `<cache>/normalized/<source>/<day>/<key>.parquet`. The key hashes what
decides them: the day's staging (its manifest's fingerprint; size and mtime of
`accepted.parquet`, which an erasure or a purge rewrites in place) and the night's normalization
token (`normalization_token`: identity secrets, grace period, default region, the normalization
code, Polars and libphonenumber). A changed token normalizes every day again (a full night);
a damaged or missing file costs that day's normalization, never the run.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import phonenumbers
import polars as pl

from dedup.code_token import code_token
from dedup.config import EngineConfig
from dedup.identity import interactions, normalize, verify
from dedup.identity.interactions import (
    CONTENT,
    ResolvedInteractions,
    content_hash,
    prepare_interactions,
)
from dedup.ingest.days import INTERACTION_SOURCES, empty_accepted, staged_fingerprint
from dedup.layout import WORK_COMPRESSION

TOKEN_FILE = "token.json"
# The row's position in the frame being normalized: checked after, so a normalization step that
# reordered rows could never file one day's rows under another day.
POSITION = "_position"


def normalization_token(config: EngineConfig) -> str:
    """What normalized rows depend on besides the rows themselves. The code of the modules that
    normalize is part of it: a release that changes them normalizes every day again."""
    parts = (
        *config.identity_secrets,
        "|",
        str(config.previous_secret_until),
        config.default_region,
        pl.__version__,
        phonenumbers.__version__,
    )
    return code_token(parts, (interactions, normalize, verify, sys.modules[__name__]))


@dataclass(frozen=True)
class StagedDay:
    source: str
    day: str
    folder: Path

    @property
    def accepted(self) -> Path:
        return self.folder / "accepted.parquet"

    def key(self, token: str) -> str:
        st = os.stat(self.accepted)
        # No inode: a copied or restored state folder (copy2 keeps mtimes) keeps its days.
        print_ = f"{staged_fingerprint(self.folder)}\0{st.st_size}\0{st.st_mtime_ns}"
        return hashlib.sha256(f"{token}\0{print_}".encode()).hexdigest()[:32]


def staged_days(staging_root: Path) -> list[StagedDay]:
    """Committed staged days (manifest written) of the interaction sources, in path order."""
    return [
        StagedDay(m.parent.parent.name, m.parent.name, m.parent)
        for m in sorted(staging_root.glob("*/*/manifest.json"))
        if m.parent.parent.name in INTERACTION_SOURCES
    ]


@dataclass
class NightPlan:
    """Which days were normalized tonight and why; `full` says why every day was."""

    full: str | None = None
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    carried: int = 0

    def describe(self) -> str:
        if self.full:
            return f"full: {self.full}"
        return (
            f"incremental: {_count(len(self.new), 'new day')}, {len(self.changed)} re-delivered "
            f"or rewritten, {_count(self.carried, 'day')} carried over"
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


class DayCache:
    """The normalized days under `<root>` for one normalization token."""

    def __init__(self, root: Path, token: str) -> None:
        self.root = root
        self.token = token

    def folder(self, day: StagedDay) -> Path:
        return self.root / day.source / day.day

    def kept_token(self) -> str | None:
        try:
            return json.loads((self.root / TOKEN_FILE).read_text())["token"]
        except (OSError, ValueError, KeyError):
            return None

    def read(self, day: StagedDay, key: str) -> pl.DataFrame | None:
        path = self.folder(day) / f"{key}.parquet"
        if not path.exists():
            return None
        try:
            return pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError):
            return None

    def write(self, day: StagedDay, key: str, frame: pl.DataFrame) -> None:
        """Replace the day's kept rows: data under a temporary name, renamed, older keys gone."""
        folder = self.folder(day)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.parquet.tmp"
        frame.write_parquet(tmp, compression=WORK_COMPRESSION)
        tmp.replace(folder / f"{key}.parquet")
        # Older keys, and temporary files a killed night left (they hold personal data too).
        for old in [*folder.glob("*.parquet"), *folder.glob(".*.tmp")]:
            if old.name != f"{key}.parquet":
                old.unlink()

    def commit(self, days: list[StagedDay]) -> None:
        """Record the token; drop the folders of days no longer staged."""
        keep = {(d.source, d.day) for d in days}
        for folder in self.root.glob("*/*"):
            if folder.is_dir() and (folder.parent.name, folder.name) not in keep:
                for f in folder.iterdir():
                    f.unlink()
                folder.rmdir()
        tmp = self.root / f".{TOKEN_FILE}.tmp"
        tmp.write_text(json.dumps({"token": self.token}))
        tmp.replace(self.root / TOKEN_FILE)


def normalize_days(
    days: list[StagedDay],
    keys: list[str],
    cache: DayCache,
    config: EngineConfig,
    known_phones: pl.DataFrame | None,
) -> pl.DataFrame | None:
    """Normalize `days` in one pass (with each row's content hash of its staged values), keep
    each day's slice in the cache, return them all. None when there are no days."""
    if not days:
        return None
    parts = [pl.read_parquet(d.accepted) for d in days]
    heights = [p.height for p in parts]
    staged = pl.concat(parts, how="vertical_relaxed")
    del parts
    staged = staged.with_columns(content_hash(), pl.int_range(pl.len()).alias(POSITION))
    frame = interactions.normalize_rows(staged, config, known_phones)
    del staged
    if not frame.get_column(POSITION).equals(pl.Series(POSITION, range(frame.height))):
        raise RuntimeError("normalization reordered rows; the day cache cannot split them")
    frame = frame.drop(POSITION)
    offset = 0
    for day, key, height in zip(days, keys, heights, strict=True):
        cache.write(day, key, frame.slice(offset, height))
        offset += height
    return frame


def normalized_history(
    staging_root: Path,
    cache_root: Path,
    config: EngineConfig,
    known_phones: pl.DataFrame | None = None,
    full: str | None = None,
) -> tuple[ResolvedInteractions, NightPlan]:
    """Every staged interaction, normalized, one version per id: what
    `interactions.prepare_interactions(read_staged(...))` returns, with only the days that are
    new or changed normalized tonight (all of them when `full` gives a reason, or the token
    changed)."""
    cache = DayCache(cache_root, normalization_token(config))
    days = staged_days(staging_root)
    keys = [d.key(cache.token) for d in days]
    kept_token = cache.kept_token()
    if full is None and kept_token is None:
        full = "no normalized days kept yet"
    elif full is None and kept_token != cache.token:
        full = "normalization changed (identity secret, region or release)"
    plan = NightPlan(full=full)
    frames: list[pl.DataFrame] = []
    todo: list[tuple[StagedDay, str]] = []
    for day, key in zip(days, keys, strict=True):
        kept = None if full else cache.read(day, key)
        if kept is not None:
            frames.append(kept)
            plan.carried += 1
            continue
        todo.append((day, key))
        if not full:
            label = f"{day.source}/{day.day}"
            (plan.changed if cache.folder(day).exists() else plan.new).append(label)
    fresh = normalize_days([d for d, _ in todo], [k for _, k in todo], cache, config, known_phones)
    if fresh is not None:
        frames.append(fresh)
    cache.commit(days)
    if not frames:
        return prepare_interactions(empty_accepted(), config, known_phones), plan
    whole = pl.concat(frames, how="vertical_relaxed")
    del frames, fresh
    return interactions.resolve_redeliveries(whole), plan


def forget(
    staging_root: Path, cache_root: Path, config: EngineConfig, interaction_ids: pl.Series
) -> int:
    """After an erasure or a purge scrubbed these interactions from the staging: their kept
    normalized rows go too (no copy of an erased person may live on), and each day touched is
    filed under the key of its rewritten staging, so the next night reads it back. Rows removed.
    """
    if interaction_ids.len() == 0:
        return 0
    cache = DayCache(cache_root, normalization_token(config))
    gone = interaction_ids.implode()
    removed = 0
    for day in staged_days(staging_root):
        for path in sorted(cache.folder(day).glob("*.parquet")):
            try:
                frame = pl.read_parquet(path)
            except (OSError, pl.exceptions.PolarsError):
                path.unlink()  # unreadable: normalized again next night
                continue
            kept = frame.filter(~pl.col("interaction_id").is_in(gone))
            if kept.height < frame.height:
                cache.write(day, day.key(cache.token), kept)
                removed += frame.height - kept.height
    return removed


__all__ = ["CONTENT", "NightPlan", "normalized_history"]
