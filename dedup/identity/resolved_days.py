"""The normalized history with its re-deliveries resolved, kept from night to night (issue 25,
session 18).

`day_cache.normalized_history` reads every kept day back and resolves re-deliveries over all of
them (the latest delivery of an id wins across days): a sort of every row each night. When
tonight's staged days are last night's, unchanged, plus new days none of whose interaction ids
is already kept, the resolution over all days is last night's resolved rows plus the new days'
rows resolved among themselves: an id delivered only in kept days keeps last night's winner, an
id delivered only in new days is resolved over exactly its deliveries, and the counters
(deliveries, updates, repeats) add up over the two disjoint sets of ids. Sorted by
`interaction_id`, that is the full resolution row for row.

Kept in `<cache>/resolved/`: `base-<gen>.parquet` (the resolved rows of some nights' days, in
`interaction_id` order) and one `part-<gen>.parquet` per later night that added days (that
night's new rows, resolved), then `state.json`, written last: the token, the files, every day
they cover with its day-cache key (`StagedDay.key`), and the counters. Anything else (a kept
day re-delivered, rewritten by an erasure, or gone; a new day holding a kept id; another token;
`--full`; no or a damaged state) resolves every day (`normalized_history`) and writes the base
again, and the step's `night_path` says `resolved over every day: <why>`.

The kept rows are those of the day cache, resolved; an erasure or a purge drops them with the
day cache's (`drop`).
"""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from dedup.code_token import code_token
from dedup.config import EngineConfig
from dedup.identity.day_cache import (
    DayCache,
    NightPlan,
    StagedDay,
    normalization_token,
    normalize_days,
    normalized_history,
    staged_days,
)
from dedup.identity.interactions import ResolvedInteractions, resolve_redeliveries
from dedup.layout import WORK_COMPRESSION

STATE_FILE = "state.json"
# Nights of new rows kept as parts before they are written into one base again.
MAX_PARTS = 8


def resolved_token(config: EngineConfig) -> str:
    return code_token([normalization_token(config)], (sys.modules[__name__],))


def _label(day: StagedDay) -> str:
    return f"{day.source}/{day.day}"


@dataclass
class Kept:
    base: str
    parts: list[str]
    days: dict[str, str]  # label -> day-cache key
    counts: tuple[int, int, int]  # deliveries, updates, repeats


class ResolvedCache:
    def __init__(self, root: Path, token: str) -> None:
        self.root = root
        self.token = token

    def read_state(self) -> Kept | str:
        try:
            state = json.loads((self.root / STATE_FILE).read_text())
        except (OSError, ValueError):
            return "none kept yet"
        if state.get("token") != self.token:
            return "normalization or resolution changed"
        try:
            return Kept(state["base"], state["parts"], state["days"], tuple(state["counts"]))
        except (KeyError, TypeError, ValueError):
            return "kept state unreadable"

    def write(self, kept: Kept, frames: dict[str, pl.DataFrame]) -> None:
        """Files first, then `state.json`, then files it no longer names."""
        self.root.mkdir(parents=True, exist_ok=True)
        for name, frame in frames.items():
            frame.write_parquet(self.root / name, compression=WORK_COMPRESSION)
        tmp = self.root / f".{STATE_FILE}.tmp"
        state = {
            "token": self.token,
            "base": kept.base,
            "parts": kept.parts,
            "days": kept.days,
            "counts": list(kept.counts),
        }
        tmp.write_text(json.dumps(state))
        tmp.replace(self.root / STATE_FILE)
        named = {kept.base, *kept.parts}
        for old in self.root.glob("*.parquet"):
            if old.name not in named:
                old.unlink()


def drop(root: Path) -> None:
    """Forget every kept resolved row (an erasure or a purge removed some of them tonight)."""
    (root / STATE_FILE).unlink(missing_ok=True)
    for old in root.glob("*.parquet"):
        old.unlink()


def _name(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:16]}.parquet"


def resolved_history(
    staging_root: Path,
    day_root: Path,
    root: Path,
    config: EngineConfig,
    known_phones: pl.DataFrame | None = None,
    full: str | None = None,
) -> tuple[ResolvedInteractions, NightPlan, str]:
    """`normalized_history`'s answer, from the kept resolved rows and tonight's new days where
    the module docstring allows; with how the re-deliveries were resolved."""
    cache = ResolvedCache(root, resolved_token(config))
    kept = cache.read_state() if full is None else full
    ours = None  # tonight's plan when the new days were normalized before falling back
    if isinstance(kept, Kept):
        days = staged_days(staging_root)
        day_cache = DayCache(day_root, normalization_token(config))
        done = _over_new_days(days, kept, cache, day_cache, (config, known_phones))
        if isinstance(done, Resolved):
            return done.resolved, done.plan, done.path
        kept, ours = done
    resolved, plan = normalized_history(staging_root, day_root, config, known_phones, full)
    days = staged_days(staging_root)
    token = normalization_token(config)
    base = _name("base")
    counts = (resolved.deliveries, resolved.updates, resolved.repeats)
    every = Kept(base, [], {_label(d): d.key(token) for d in days}, counts)
    cache.write(every, {base: resolved.interactions})
    return resolved, ours or plan, f"resolved over every day: {kept}"


@dataclass
class Resolved:
    resolved: ResolvedInteractions
    plan: NightPlan
    path: str


def _over_new_days(
    days: list[StagedDay],
    kept: Kept,
    cache: ResolvedCache,
    day_cache: DayCache,
    how: tuple[EngineConfig, pl.DataFrame | None],
) -> Resolved | tuple[str, NightPlan | None]:
    """Tonight's resolution from the kept rows and the new days, or why it cannot be (and,
    once the new days are normalized and kept, the night's plan: the full path then reads
    them back, as it would days a killed night normalized)."""
    config, known_phones = how
    keys = {_label(d): d.key(day_cache.token) for d in days}
    if any(keys.get(label) != key for label, key in kept.days.items()):
        return "a kept day was re-delivered, rewritten or removed", None
    new = [d for d in days if _label(d) not in kept.days]
    plan = NightPlan(carried=len(kept.days))
    frames: list[pl.DataFrame] = []
    todo: list[StagedDay] = []
    for day in new:  # a killed night may have normalized them already
        frame = day_cache.read(day, keys[_label(day)])
        if frame is None:
            todo.append(day)
            (plan.changed if day_cache.folder(day).exists() else plan.new).append(_label(day))
        else:
            frames.append(frame)
            plan.carried += 1
    fresh = normalize_days(todo, [keys[_label(d)] for d in todo], day_cache, config, known_phones)
    frames.extend([] if fresh is None else [fresh])
    day_cache.commit(days)
    try:
        old = pl.concat(
            [pl.read_parquet(cache.root / n) for n in [kept.base, *kept.parts]],
            how="vertical_relaxed",
        )
    except (OSError, pl.exceptions.PolarsError):
        return "kept resolved rows unreadable", plan
    if not frames:
        # The base is in id order; parts after it are not.
        rows = old.sort("interaction_id") if kept.parts else old
        return Resolved(ResolvedInteractions(rows, *kept.counts), plan, "kept, no new day")
    tonight = resolve_redeliveries(pl.concat(frames, how="vertical_relaxed"))
    ids = tonight.interactions.get_column("interaction_id")
    if old.get_column("interaction_id").is_in(ids.implode()).any():
        return "a new day re-delivers a kept interaction", plan
    rows = pl.concat([old, tonight.interactions], how="vertical_relaxed").sort("interaction_id")
    counts = tuple(
        a + b
        for a, b in zip(
            kept.counts, (tonight.deliveries, tonight.updates, tonight.repeats), strict=True
        )
    )
    covered = {**kept.days, **{_label(d): keys[_label(d)] for d in new}}
    if len(kept.parts) < MAX_PARTS:
        part = _name("part")
        state = Kept(kept.base, [*kept.parts, part], covered, counts)  # type: ignore[arg-type]
        cache.write(state, {part: tonight.interactions})
    else:
        base = _name("base")
        cache.write(Kept(base, [], covered, counts), {base: rows})  # type: ignore[arg-type]
    path = f"kept, {len(new)} new day(s) resolved alone"
    return Resolved(ResolvedInteractions(rows, *counts), plan, path)
