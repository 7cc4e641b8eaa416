"""Retention: what the pipeline keeps on disk besides the published file, and for how long.

- Build leftovers (`work/snapshot.building.duckdb` of a killed run) and DuckDB spill files: any
  older than `work_days` (a running build holds the run lock, so purge waits for it).
- Work files (`work/*.parquet`, derived and rewritten by every run): older than `work_days`
  means no run has happened since; they hold personal data, so they go.
- Backups (`<db>.state/backups/`, copies an operator chose to keep): older than `backup_days`,
  and any taken before an erasure once that erasure is `erased_days` old (docs/privacy.md).
The published file, staging, the decision log and the model are never purged here: staging is
scrubbed by the run that applies an erasure, and the rest is needed by the next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dedup.decisions import ERASE, read_all
from dedup.layout import StateLayout
from dedup.run_lock import run_lock

DAY = 86_400


@dataclass(frozen=True)
class RetentionPolicy:
    work_days: int = 30
    backup_days: int = 90
    erased_days: int = 30


def _older(path: Path, days: int, now: float) -> bool:
    return now - path.stat().st_mtime > days * DAY


def purge(
    db: Path, policy: RetentionPolicy = RetentionPolicy(), now: datetime | None = None
) -> list[Path]:
    """Delete what the policy says has expired; returns the deleted paths."""
    layout = StateLayout(db)
    if not layout.state_dir.exists():
        return []
    moment = (now or datetime.now(UTC)).timestamp()
    removed: list[Path] = []
    # The lock every run holds (dedup.run_lock): never delete files a build is using.
    with run_lock(db, wait=True):
        work = [p for p in layout.work_dir.glob("*") if p.is_file()]
        spill = [p for p in (layout.work_dir / "duckdb_tmp").rglob("*") if p.is_file()]
        for path in [*work, *spill]:
            if _older(path, policy.work_days, moment):
                path.unlink()
                removed.append(path)
        backups = layout.state_dir / "backups"
        if backups.is_dir():
            log = read_all(layout.decisions_path)
            erasures = log.filter(log["kind"] == ERASE)
            settled = [
                t.timestamp()
                for t in erasures.get_column("decided_at").to_list()
                if moment - t.timestamp() > policy.erased_days * DAY
            ]
            for path in sorted(p for p in backups.rglob("*") if p.is_file()):
                taken = path.stat().st_mtime
                expired = _older(path, policy.backup_days, moment)
                holds_erased = any(taken < t for t in settled)
                if expired or holds_erased:
                    path.unlink()
                    removed.append(path)
    return removed
