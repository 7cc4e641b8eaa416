"""Engine level (`dedup.snapshot.interaction_tables`, issue 25): `session_audience` and
`property_errors` carried from last night's file equal the tables a fresh build writes, night
after night of changed, moved, removed and new rows, sessions changing contact, a verified row's
plan changing without any published column changing, contacts' audiences changing; and they are
written whole, saying why, when the audience map, the declared properties or the run differ.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from dedup.config import EngineConfig
from dedup.properties import Property
from dedup.snapshot import carry
from dedup.snapshot.files import connect_build
from dedup.snapshot.interaction_tables import KeptTables, write_interaction_tables
from dedup.snapshot.profiles import register_audience_map

PUBLISHED = ("interaction_id", "occurred_at", "session_id", "contact_id", "identity_verified")
SELECT = f"SELECT {', '.join(PUBLISHED)}, attributes::JSON AS attributes FROM _interactions_full"
NAMES = (*PUBLISHED, "attributes")
PLANS = ("paid", "enterprise", "free", "growth", "starter", None)
CONFIG = EngineConfig(properties={"seats": Property("seats", "number")})


def _rows(rng: random.Random, n: int, start: int) -> list[dict]:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    return [
        {
            "interaction_id": f"int_{start + i:04d}",
            "occurred_at": at + timedelta(minutes=rng.randrange(10_000)),
            "session_id": rng.choice([None, *(f"sess_{s:02d}" for s in range(30))]),
            "contact_id": f"c{rng.randrange(12):02d}",
            "identity_verified": rng.random() < 0.4,
            "plan_norm": rng.choice(PLANS),
            "attributes": rng.choice(
                [None, json.dumps({"seats": rng.randrange(9)}), json.dumps({"seats": "many"})]
            ),
        }
        for i in range(n)
    ]


def _night(rng: random.Random, rows: list[dict], night: int) -> list[dict]:
    """Tonight's rows: some changed, moved, removed or new; a whole session moved to another
    contact; a verified row's plan changed (not a published column)."""
    out = []
    for row in rows:
        r = dict(row)
        roll = rng.random()
        if roll < 0.05:
            continue  # removed
        if roll < 0.10:
            r["contact_id"] = f"c{rng.randrange(14):02d}"  # moved by a merge or a split
        elif roll < 0.13:
            r["attributes"] = json.dumps({"seats": "lots"})
        elif roll < 0.16 and r["identity_verified"]:
            r["plan_norm"] = rng.choice(PLANS)  # only an unpublished column changes
        out.append(r)
    moved = f"sess_{rng.randrange(30):02d}"
    for r in out:
        if r["session_id"] == moved:
            r["contact_id"] = "c13"
    return out + _rows(rng, 12, 1000 * night)


def _contacts(rows: list[dict], rng: random.Random) -> pl.DataFrame:
    ids = sorted({r["contact_id"] for r in rows})
    return pl.DataFrame({"contact_id": ids, "audience": [rng.choice(("a", "b")) for _ in ids]})


def _build(
    path: Path,
    rows: list[dict],
    contacts: pl.DataFrame,
    config: EngineConfig,
    kept: KeptTables,
    runs: tuple[str | None, str],
    published: Path | None = None,
) -> carry.PublishPlan:
    """What build_snapshot does for these tables: the copy's interactions updated (or written
    whole into a fresh file), then the two tables."""
    plan = carry.start_build(path, published, None if published else "fresh")
    tonight = pl.DataFrame(rows, schema_overrides={"occurred_at": pl.Datetime("us", "UTC")})
    con = duckdb.connect()
    try:
        con.register("_interactions_full", tonight.to_arrow())
        con.register("_contacts", contacts.to_arrow())
        register_audience_map(con, config)
        con.execute(f"ATTACH '{path}' AS out")
        if plan.full is None:
            assert carry.update_interactions(con, SELECT, NAMES, plan) is None
        else:
            con.execute(f"CREATE TABLE out.interactions AS {SELECT}")
        plan.sessions = write_interaction_tables(con, config, plan, kept, runs)
        con.execute("CREATE OR REPLACE TABLE out.audience_map AS FROM audience_map")
    finally:
        con.close()
    return plan


def _differ(a: Path, b: Path) -> dict[str, int]:
    con = duckdb.connect()
    con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
    out = {}
    for table in ("interactions", "session_audience", "property_errors"):
        n = con.execute(
            f"SELECT count(*) FROM ((FROM a.{table} EXCEPT ALL FROM b.{table}) "
            f"UNION ALL (FROM b.{table} EXCEPT ALL FROM a.{table}))"
        ).fetchone()[0]  # type: ignore[index]
        if n:
            out[table] = n
    con.close()
    return out


def _count(path: Path, sql: str) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchone()[0]  # type: ignore[index]


def test_carried_tables_equal_a_fresh_build_night_after_night(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A night here changes most of its 30 sessions: carry at any share (the fallback is tested
    # below).
    monkeypatch.setattr(carry, "MAX_CHANGED_SHARE", 1.0)
    for seed in range(4):
        rng = random.Random(seed)
        rows = _rows(rng, 160, 0)
        kept = KeptTables(tmp_path / f"kept{seed}")
        published = tmp_path / f"published{seed}.duckdb"
        _build(published, rows, _contacts(rows, rng), CONFIG, kept, (None, "r1"))
        for night in range(2, 6):
            rows = _night(rng, rows, night)
            contacts = _contacts(rows, rng)
            run = (f"r{night - 1}", f"r{night}")
            carried, fresh = tmp_path / "carried.duckdb", tmp_path / "fresh.duckdb"
            plan = _build(carried, rows, contacts, CONFIG, kept, run, published)
            assert plan.full is None and plan.sessions.startswith("carried: "), plan.describe()
            assert "; session_audience and property_errors carried: " in plan.describe()
            _build(fresh, rows, contacts, CONFIG, KeptTables(tmp_path / "scratch"), run)
            assert _differ(carried, fresh) == {}, (seed, night)
            carried.replace(published)
        # The nights had sessions, verified audiences and errors to compare.
        assert _count(published, "SELECT count(*) FROM property_errors") > 5
        assert _count(published, "SELECT count(DISTINCT audience) FROM session_audience") > 3


def test_written_whole_when_the_copy_cannot_be_trusted(tmp_path: Path) -> None:
    rng = random.Random(25)
    rows = _rows(rng, 120, 0)
    contacts = _contacts(rows, rng)
    kept = KeptTables(tmp_path / "kept")
    published, build = tmp_path / "published.duckdb", tmp_path / "build.duckdb"
    first = _build(published, rows, contacts, CONFIG, kept, (None, "r1"))
    assert first.sessions == "written whole: the file was written whole"
    record = (kept.folder / "state.json").read_text()  # names run r1 and CONFIG's token

    def night(config: EngineConfig, runs: tuple[str, str]) -> str:
        (kept.folder / "state.json").write_text(record)
        plan = _build(build, rows, contacts, config, kept, runs, published)
        fresh = tmp_path / "fresh.duckdb"
        _build(fresh, rows, contacts, config, KeptTables(tmp_path / "scratch"), runs)
        assert _differ(build, fresh) == {}
        connect_build(fresh).close()
        return plan.sessions

    assert night(CONFIG, ("r1", "r2")) == "carried: 0 sessions recomputed, 29 published"
    # The published file is not the one the kept record names (a night that did not publish).
    assert night(CONFIG, ("r0", "r2")) == (
        "written whole: no record of the run that made the published tables"
    )
    # Another audience map or other declared properties: last night's rows were made otherwise.
    other_map = EngineConfig(properties=CONFIG.properties, audience_by_plan={"paid": "gold"})
    assert night(other_map, ("r1", "r2")) == "written whole: the audience map changed"
    other_properties = EngineConfig(properties={"seats": Property("seats", "text")})
    assert night(other_properties, ("r1", "r2")) == (
        "written whole: their code or declared properties changed"
    )
    # Most sessions changed (a third of the rows moved): one whole write.
    moved = [dict(r, contact_id="c99") if i % 3 == 0 else r for i, r in enumerate(rows)]
    (kept.folder / "state.json").write_text(record)
    plan = _build(build, moved, _contacts(moved, rng), CONFIG, kept, ("r1", "r2"), published)
    assert (
        plan.sessions.startswith("written whole: ")
        and "published sessions changed" in plan.sessions
    )
    # A copy without the tables (a file from before they were carried).
    with duckdb.connect(str(published)) as con:
        con.execute("DROP TABLE session_audience")
    assert night(CONFIG, ("r1", "r2")) == "written whole: the published file lacks them"
