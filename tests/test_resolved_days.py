"""Engine level (session 18): the kept resolved rows plus tonight's new days, resolved alone,
are row for row what normalizing and resolving every staged day at once gives (counters
included), and every case the shortcut cannot prove falls back and says why."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from contacts.demo import GeneratorConfig, generate_exports
from dedup.config import EngineConfig
from dedup.identity import resolved_days
from dedup.identity.interactions import prepare_interactions
from dedup.identity.resolved_days import drop, resolved_history
from dedup.ingest.days import read_staged, stage_days
from dedup.schema import CANONICAL_FIELDS
from tests.conftest import SECRET

CONFIG = EngineConfig(identity_secrets=(SECRET,))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("generated")
    generate_exports(root, GeneratorConfig(persons=60, days=4, seed=18, secret=SECRET))
    return root


class Workspace:
    def __init__(self, generated: Path, root: Path) -> None:
        self.generated = generated
        self.exports, self.staging = root / "exports", root / "staging"
        self.days_root, self.resolved = root / "normalized", root / "resolved"

    def stage(self, day: str) -> None:
        list(stage_days(self.exports, "askvault", [day], lambda d: self.staging / "askvault" / d))

    def land(self, day: str) -> None:
        shutil.copytree(self.generated / "askvault" / day, self.exports / "askvault" / day)
        self.stage(day)

    def new_day(self, day: str, rows: pl.DataFrame) -> None:
        folder = self.exports / "askvault" / day
        folder.mkdir(parents=True)
        rows.write_parquet(folder / "export-001.parquet")
        self.stage(day)

    def check(self, path: str, full: str | None = None) -> pl.DataFrame:
        """Tonight's resolution equals one pass over every staged day; its path starts so."""
        got, _plan, said = resolved_history(
            self.staging, self.days_root, self.resolved, CONFIG, None, full
        )
        assert said.startswith(path), said
        one_pass = prepare_interactions(read_staged(self.staging, "accepted"), CONFIG)
        assert got.interactions.equals(one_pass.interactions)
        assert (got.deliveries, got.updates, got.repeats) == (
            one_pass.deliveries,
            one_pass.updates,
            one_pass.repeats,
        )
        return got.interactions


def drawn(ws: Workspace, n: int, prefix: str, seed: int) -> pl.DataFrame:
    """`n` staged rows of known people under new ids, as an export's records."""
    pool = read_staged(ws.staging, "accepted").select(CANONICAL_FIELDS)
    rows = pool.sample(n, seed=seed)
    return rows.with_columns(
        pl.format(prefix + "{}", pl.int_range(pl.len())).alias("interaction_id")
    )


def test_kept_resolution_plus_new_days_equals_every_day_resolved(
    generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace(generated, tmp_path)
    days = sorted(p.name for p in (generated / "askvault").iterdir())
    for day in days[:3]:
        ws.land(day)
    ws.check("resolved over every day: none kept yet")
    ws.check("kept, no new day")
    # A new day of new ids, one of them delivered twice in it (an update within the day).
    rows = drawn(ws, 40, "int_s18_a_", 1)
    twice = rows.head(1).with_columns(pl.lit("Changed Name").alias("name"))
    ws.new_day("2026-12-01", pl.concat([rows, twice]))
    resolved = ws.check("kept, 1 new day(s) resolved alone")
    assert resolved.filter(pl.col("name") == "Changed Name").height == 1
    # A new day re-delivering a kept interaction with other content: resolved over every day.
    kept_id = resolved.get_column("interaction_id")[3]
    again = read_staged(ws.staging, "accepted").filter(pl.col("interaction_id") == kept_id)
    again = again.select(rows.columns).head(1).with_columns(pl.lit("Later Name").alias("name"))
    ws.new_day("2026-12-02", pl.concat([drawn(ws, 5, "int_s18_b_", 2), again]))
    resolved = ws.check("resolved over every day: a new day re-delivers a kept interaction")
    assert resolved.filter(pl.col("interaction_id") == kept_id).get_column("name").to_list() == [
        "Later Name"
    ]
    # The late day 4 lands (its ids are new), then no day changes.
    ws.land(days[3])
    ws.check("kept, 1 new day(s) resolved alone")
    ws.check("kept, no new day")
    # A kept day delivered again (its staging rewritten): every day again.
    path = next((ws.exports / "askvault" / days[0]).glob("*"))
    shutil.copy2(path, path.with_name("zz-again" + path.suffix))
    ws.stage(days[0])
    ws.check("resolved over every day: a kept day was re-delivered, rewritten or removed")
    # Parts written into one base again once there are too many.
    monkeypatch.setattr(resolved_days, "MAX_PARTS", 1)
    ws.new_day("2026-12-03", drawn(ws, 7, "int_s18_c_", 3))
    ws.check("kept, 1 new day(s)")
    ws.new_day("2026-12-04", drawn(ws, 7, "int_s18_d_", 4))
    ws.check("kept, 1 new day(s)")
    assert len(list(ws.resolved.glob("base-*.parquet"))) == 1
    assert not list(ws.resolved.glob("part-*.parquet"))
    ws.check("kept, no new day")
    # A day gone from the staging, --full, damaged or dropped files: every day again.
    shutil.rmtree(ws.staging / "askvault" / "2026-12-04")
    ws.check("resolved over every day: a kept day was re-delivered")
    ws.check("resolved over every day: --full requested", full="--full requested")
    for f in ws.resolved.glob("*.parquet"):
        f.write_bytes(b"not parquet")
    ws.check("resolved over every day: kept resolved rows unreadable")
    drop(ws.resolved)
    assert not list(ws.resolved.iterdir())
    ws.check("resolved over every day: none kept yet")
