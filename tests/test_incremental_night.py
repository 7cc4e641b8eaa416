"""Issue 25: a night that normalizes only new and changed export days, and builds only the
profiles of contacts whose interactions changed, publishes exactly what a full rebuild of the
same inputs publishes.

Workspace A runs every night on the default path (normalized days carried over); before each
night its whole state is copied to workspace B, which runs the same night with `full=True`
(`contacts run --full`), both through `pipelines.nightly.run_night` (what `contacts run`
calls). Between nights: a late day, a re-delivered day, a manual merge, an erasure, a deletion
and a restore; then a day whose interactions join two existing contacts (a new session seen with
both their emails) and make an existing contact's phone a hub (seen with two new emails). After each night every table of the two published files is compared row for row
(same contact ids): only the run's own clock and ids are masked (`_comparable`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from assets.identity import NORMALIZED_CACHE, RESOLVED_CACHE
from assets.matching import PROFILE_CACHE
from assets.names import CLUSTERS, CONTACT_IDS, PROFILES, PROPOSALS, SNAPSHOT
from assets.resources import ContactsSettings
from contacts.demo import GeneratorConfig, generate_exports
from dedup.config import EngineConfig
from dedup.identity import carried_ids, identity_index
from dedup.identity.day_cache import (
    DayCache,
    normalization_token,
    normalized_history,
    staged_days,
)
from dedup.identity.interactions import prepare_interactions
from dedup.ingest.days import INTERACTION_SOURCES, day_files, read_staged, stage_days
from dedup.matching import carried_records
from dedup.service.review import (
    delete_contacts,
    erase_contact,
    merge_contacts,
    restore_contacts,
)
from dedup.snapshot import carry, profile_cache
from dedup.snapshot.build import build_contacts_frame
from pipelines.nightly import run_night
from tests.conftest import SECRET, query

# Values the run itself makes up: its Dagster run id, and ids hashed from its clock.
RUN_ID_COLUMNS = {"run_id", "dagster_run_id"}


def _tables(con: duckdb.DuckDBPyConnection, db: str) -> list[tuple[str, str]]:
    rows = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY 1, 2",
        [db],
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _comparable(con: duckdb.DuckDBPyConnection, schema: str, table: str, since) -> str:
    """The table's columns as compared: a time taken after `since` (a run's clock: when a merge
    was decided, when it stops being reversible) reads as a marker, a merge id (hashed from its
    run's time) as what the merge did, a full-text index's term number as its term, a run id as
    nothing, a float to 9 decimals."""
    columns = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'a' "
        "AND schema_name = ? AND table_name = ? ORDER BY column_index",
        [schema, table],
    ).fetchall()
    out = []
    for name, kind in columns:
        column = f'"{name}"'
        if name in RUN_ID_COLUMNS:
            continue
        if kind.startswith("TIMESTAMP"):
            out.append(
                f"CASE WHEN {column} >= '{since}' THEN 'this run' ELSE {column}::VARCHAR END"
            )
        elif kind in ("DOUBLE", "FLOAT"):
            # Matching's incremental rescoring adds a pair's weights in another order than a
            # full predict: equal to ~1e-15 (tests/test_incremental.py holds it to 1e-9).
            out.append(f"round({column}, 9)")
        elif name == "termid" and schema.startswith("fts_"):
            # A full-text index numbers its terms in the order its threads meet them.
            out.append(f"(SELECT min(term) FROM term_key k WHERE k.termid = {column})")
        elif name == "merge_id" or kind == "VARCHAR" and name.endswith("merge_id"):
            out.append(f"(SELECT min(what) FROM merge_key m WHERE m.merge_id = {column})")
        else:
            out.append(column)
    return ", ".join(out)


def differences(a: Path, b: Path, since) -> dict[str, int]:
    """Rows in one published file's table and not in the other's (either way), per table."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
    assert _tables(con, "a") == _tables(con, "b")
    out = {}
    for schema, table in _tables(con, "a"):
        cols = _comparable(con, schema, table, since)
        parts = []
        for db in ("a", "b"):
            con.execute(
                "CREATE OR REPLACE TEMP TABLE merge_key AS SELECT merge_id, "
                "concat_ws('|', kind, survivor_id, array_to_string(merged_ids, ','), reason, "
                f"CASE WHEN decided_at >= '{since}' THEN 'this run' ELSE decided_at::VARCHAR END) "
                f"AS what FROM {db}.main.merges"
            )
            if schema.startswith("fts_"):
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE term_key AS "
                    f"SELECT termid, term FROM {db}.{schema}.dict"
                )
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE side_{db} AS SELECT {cols} FROM {db}.{schema}.{table}"
            )
            parts.append(f"side_{db}")
        n = con.execute(
            "SELECT count(*) FROM ((FROM side_a EXCEPT ALL FROM side_b) "
            "UNION ALL (FROM side_b EXCEPT ALL FROM side_a))"
        ).fetchone()[0]  # type: ignore[index]
        if n:
            out[f"{schema}.{table}"] = n
    con.close()
    return out


PATH_LABELS = {
    "interactions": "night_path",
    CLUSTERS: "clusters_path",
    CONTACT_IDS: "ids_path",
    PROFILES: "profiles_path",
    PROPOSALS: "records_path",
    SNAPSHOT: "publish_path",
}


def night_path(instance: dg.DagsterInstance, asset: str = "interactions") -> str:
    """The path a night's step took: `night_path` of `interactions`, `clusters_path` of
    `identity_clusters`, `ids_path` of `contact_ids`, `profiles_path` of `contact_profiles`,
    `records_path` of `merge_proposals`, `publish_path` of `contacts_snapshot`."""
    record = instance.fetch_materializations(dg.AssetKey(asset), limit=1).records[0]
    return record.asset_materialization.metadata[PATH_LABELS[asset]].value  # type: ignore[union-attr]


# What the identity steps report besides their path: the same on both paths of a night.
FIGURES = {
    "interactions": (
        "dagster/row_count",
        "deliveries",
        "updates",
        "repeated_deliveries",
        "suppressed_by_erasure",
        "held_by_deletion",
        "identity_failures",
        "verified_interactions",
        "invalid_emails",
        "invalid_phones",
        "phone_lookup_saved",
    ),
    CLUSTERS: ("dagster/row_count", "clusters", "cluster_size_histogram", "ambiguous_keys"),
    CONTACT_IDS: ("dagster/row_count", "new_contacts", "redirects", "bridging_keys"),
}


def step_figures(instance: dg.DagsterInstance) -> dict[str, object]:
    """`FIGURES` of a night's last materializations, by asset and label."""
    out: dict[str, object] = {}
    for asset, labels in FIGURES.items():
        record = instance.fetch_materializations(dg.AssetKey(asset), limit=1).records[0]
        meta = record.asset_materialization.metadata  # type: ignore[union-attr]
        out.update({f"{asset}.{label}": meta[label].value for label in labels})
    return out


class Nights:
    """Workspace A (default path) and B (a copy of A before each night, run with `full`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.exports = root / "exports"
        self.a = root / "a" / "contacts.duckdb"
        self.b = root / "b" / "contacts.duckdb"
        self.clusters: dict[Path, str] = {}  # the auto-merge's path of each workspace's last night
        self.ids: dict[Path, str] = {}  # the contact ids' path
        self.profiles: dict[Path, str] = {}  # the profiles' path
        self.records: dict[Path, str] = {}  # the matcher records' path
        self.published: dict[Path, str] = {}  # and the published file's
        self.figures: dict[Path, dict[str, object]] = {}  # the identity steps' figures

    def settings(self, db: Path) -> ContactsSettings:
        return ContactsSettings(exports_dir=str(self.exports), db_path=str(db))

    def run(self, db: Path, full: bool = False) -> str:
        instance = dg.DagsterInstance.ephemeral()
        run_night(self.settings(db), instance, full=full)
        self.clusters[db] = night_path(instance, CLUSTERS)
        self.ids[db] = night_path(instance, CONTACT_IDS)
        self.profiles[db] = night_path(instance, PROFILES)
        self.records[db] = night_path(instance, PROPOSALS)
        self.published[db] = night_path(instance, SNAPSHOT)
        self.figures[db] = step_figures(instance)
        return night_path(instance)

    def killed(self, source_days: list[tuple[str, str]], watch: list[Path] | None = None) -> None:
        """A's night as `contacts run` in a process SIGKILLed once the rows of these source-days
        are kept normalized, or a new Parquet file is in each `watch` folder (the rest of the
        night, publishing included, never happens)."""
        cache = self.a.with_name("contacts.duckdb.state") / "cache" / NORMALIZED_CACHE
        kept = watch or [cache / source / day for source, day in source_days]
        before = {p.name for folder in kept if folder.is_dir() for p in folder.iterdir()}
        command = ["run", "--exports", str(self.exports), "--db", str(self.a)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "contacts.cli", *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            fresh = [{p.name for p in f.glob("*.parquet")} - before for f in kept if f.is_dir()]
            if len(fresh) == len(kept) and all(fresh):
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the night ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def both(self) -> tuple[str, str]:
        """B := A, then the same night on each; the path each took."""
        shutil.rmtree(self.b.parent, ignore_errors=True)
        shutil.copytree(self.a.parent, self.b.parent)
        # Whole seconds: merges record `decided_at` to the second, so a merge made in the second
        # this night starts would otherwise read as older than the night on one side only.
        since = datetime.now(UTC).replace(microsecond=0)
        full = self.run(self.b, full=True)
        incremental = self.run(self.a)
        assert differences(self.a, self.b, since) == {}
        # Counts the steps make over every row (figures, cluster histogram): equal too.
        assert self.figures[self.a] == self.figures[self.b]
        return incremental, full


def contact_with(db: Path, email: str) -> str:
    return query(
        db, f"SELECT contact_id FROM contacts WHERE list_contains(emails, '{email}') LIMIT 1"
    ).item()


def some_contacts(db: Path, n: int) -> list[tuple[str, str]]:
    """(contact id, one of its emails) of `n` contacts with an email, by id."""
    rows = query(
        db,
        "SELECT contact_id, emails[1] AS email FROM contacts WHERE len(emails) > 0 "
        f"ORDER BY contact_id LIMIT {n}",
    )
    return list(rows.iter_rows())


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("generated")
    config = GeneratorConfig(persons=120, days=6, seed=25, secret=SECRET, native=True)
    generate_exports(root, config)
    return root


def land(generated: Path, exports: Path, day: str) -> None:
    """Every source's folder of `day`, as a provider's export lands."""
    for source in sorted(p for p in generated.iterdir() if not p.name.startswith("_")):
        if (source / day).is_dir():
            shutil.copytree(source / day, exports / source.name / day)


def first_parquet_day(generated: Path, days: list[str]) -> str:
    return next(d for d in days if any((generated / "askvault" / d).glob("*.parquet")))


def redeliver(exports: Path, day: str) -> None:
    """The askvault export of `day` delivered again, one record's name changed (an update)."""
    path = next(p for p in day_files(exports, "askvault", day) if p.suffix == ".parquet")
    frame = pl.read_parquet(path)
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit("Renamed Person"))
        .otherwise(pl.col("name"))
        .alias("name")
    )
    path.unlink()
    frame.write_parquet(path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))


def test_incremental_nights_publish_what_a_full_rebuild_publishes(
    generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The generator's days each touch most of its 120 people, more than the share above which
    # a night builds every profile (cheaper at scale): carry over at any share here, so the
    # comparison is of the carry-over path. Likewise for the published interactions (a night
    # here changes about half of them).
    monkeypatch.setattr(profile_cache, "MAX_TOUCHED_SHARE", 1.0)
    monkeypatch.setattr(carry, "MAX_CHANGED_SHARE", 1.0)
    monkeypatch.setattr(identity_index, "MAX_AFFECTED_SHARE", 1.0)  # and the auto-merge
    monkeypatch.setattr(carried_ids, "MAX_CHANGED_SHARE", 1.0)  # and the contact ids
    monkeypatch.setattr(carried_records, "MAX_CHANGED_SHARE", 1.0)  # and the matcher records
    days = sorted(p.name for p in (generated / "askvault").iterdir())
    redelivered = first_parquet_day(generated, days[:3])

    def staged(*of: str) -> int:
        """Interaction source-days of these days (one normalized file each)."""
        return sum((generated / s / d).is_dir() for s in INTERACTION_SOURCES for d in of)

    nights = Nights(tmp_path)
    for day in days[:3]:
        land(generated, nights.exports, day)
    # Night 1: nothing kept yet, so both paths are full.
    assert nights.run(nights.a) == "full: no normalized days kept yet"
    assert nights.clusters[nights.a] == "full: no identity index kept yet"
    assert nights.ids[nights.a] == "full: no contact ids kept yet"
    assert nights.profiles[nights.a] == "full: no profiles kept yet"
    assert nights.records[nights.a] == "full: no records kept yet"
    assert nights.published[nights.a] == "full: no published file yet"
    night1 = shutil.copy2(nights.a, tmp_path / "night1.duckdb")

    # Night 2: day 5 lands before day 4 (late); an admin merges two contacts, erases a third
    # and deletes a fourth.
    land(generated, nights.exports, days[4])
    (x, _), (y, _), (z, z_email), (gone, gone_email) = some_contacts(nights.a, 4)
    merge_contacts(nights.a, x, y, survivor=x, who="ann")
    erase_contact(nights.a, z, z_email, who="ann")
    delete_contacts(nights.a, [gone], who="ann")
    incremental, full = nights.both()
    assert incremental == (
        f"incremental: {staged(days[4])} new days, 0 re-delivered or rewritten, "
        f"{staged(*days[:3])} days carried over"
    )
    assert full == "full: --full requested"
    assert nights.clusters[nights.b] == "full: --full requested"
    assert nights.clusters[nights.a].startswith("incremental: ")
    assert nights.ids[nights.b] == "full: --full requested"
    # The merge, the erasure and the deletion reach their clusters: assigned again, the rest
    # carried over.
    assert nights.ids[nights.a].startswith("incremental: "), nights.ids[nights.a]
    assert " 0 contacts carried" not in nights.ids[nights.a]
    assert nights.profiles[nights.b] == "full: --full requested"
    assert nights.profiles[nights.a].startswith("incremental: ")
    assert nights.records[nights.b] == "full: --full requested"
    assert nights.records[nights.a].startswith("incremental: ")
    assert " 0 records built" not in nights.records[nights.a]
    assert nights.published[nights.b] == "full: --full requested"
    # The erasure writes the file whole: a copy would keep the erased rows' bytes in its blocks.
    assert (
        nights.published[nights.a] == "full: 1 erasure(s) and 0 purged deletion(s) applied tonight"
    )
    # Every staged day is kept under its current key, those the erasure rewrote included.
    state = nights.a.with_name("contacts.duckdb.state")
    engine = nights.settings(nights.a).engine_config()
    cache = DayCache(state / "cache" / NORMALIZED_CACHE, normalization_token(engine))
    for day in staged_days(state / "staging"):
        assert [p.name for p in cache.folder(day).iterdir()] == [f"{day.key(cache.token)}.parquet"]
    # The erasure dropped the kept resolved rows (rebuilt from the scrubbed days next night).
    assert not list((state / "cache" / RESOLVED_CACHE).glob("*.parquet"))
    live = "SELECT count(*) FROM contacts WHERE contact_id IN ({})"
    assert query(nights.a, live.format(f"'{z}', '{gone}'")).item() == 0
    # The comparison sees what a night changed (so it would see the paths differ).
    changed = differences(Path(night1), nights.a, datetime.now(UTC))
    assert {"main.interactions", "main.contacts", "main.merges"} <= set(changed)

    # Night 3: the late day 4 and day 6 land, an earlier day is delivered again with one record
    # changed; the deleted contact is restored.
    land(generated, nights.exports, days[3])
    land(generated, nights.exports, days[5])
    redeliver(nights.exports, redelivered)
    restore_contacts(nights.a, [gone], who="ann")
    # A's first try is killed once tonight's days are normalized and kept: its next night
    # carries them over and publishes what a full rebuild of the same state publishes.
    tonight = [
        (s, d) for s in INTERACTION_SOURCES for d in days[3::2] if (generated / s / d).is_dir()
    ]
    nights.killed([*tonight, ("askvault", redelivered)])
    incremental, _ = nights.both()
    assert incremental == (
        f"incremental: 0 new days, 0 re-delivered or rewritten, "
        f"{staged(*days[:3], days[3], days[4], days[5])} days carried over"
    )
    assert query(nights.a, "SELECT count(*) FROM interactions WHERE name = 'Renamed Person'").item()
    assert contact_with(nights.a, gone_email) == gone
    assert nights.clusters[nights.a].startswith("incremental: ")
    # The killed try stopped before contact_ids: last night's kept ids are the published ones.
    assert nights.ids[nights.a].startswith("incremental: "), nights.ids[nights.a]
    assert nights.profiles[nights.a].startswith("incremental: ")
    assert nights.records[nights.a].startswith("incremental: ")
    assert nights.published[nights.a].startswith("incremental: ")
    # Night 2's file was written whole and named its run: its session rows are carried.
    assert "; session_audience and property_errors carried: " in nights.published[nights.a]

    # Nothing of the erased person is kept in the normalized days or the kept profiles.
    kept = nights.a.with_name("contacts.duckdb.state") / "cache" / NORMALIZED_CACHE
    cached = pl.read_parquet(list(kept.rglob("*.parquet")))
    assert cached.filter(pl.col("email_norm") == z_email).height == 0
    # (The kept resolved rows are dropped again by a night whose new days the erasure matches.)
    for path in (kept.parent / RESOLVED_CACHE).glob("*.parquet"):
        assert pl.read_parquet(path).filter(pl.col("email_norm") == z_email).height == 0
    profiles = pl.read_parquet(list((kept.parent / PROFILE_CACHE).glob("profiles-*.parquet")))
    assert profiles.filter(pl.col("emails").list.contains(z_email)).height == 0
    assert profiles.filter(pl.col("contact_id") == z).height == 0

    # Night 4: a day joins two existing contacts and makes a third one's phone a hub. A's first
    # try is killed once the new generation of kept profiles has begun (its members file), so
    # while or after it is written: the next night builds from whichever `state.json` names.
    (p, p_email), (q, q_email), (r, r_phone) = joining_and_hub_day(nights.a, nights.exports)
    assert p != q
    nights.killed([], watch=[kept.parent / PROFILE_CACHE])
    incremental, _ = nights.both()
    assert nights.published[nights.a].startswith("incremental: ")
    assert "; session_audience and property_errors carried: " in nights.published[nights.a]
    assert incremental.startswith("incremental: 0 new days, ")
    # The killed try wrote tonight's identity index before it died: nothing left to merge.
    assert nights.clusters[nights.a].startswith("incremental: 0 rows of 0 affected clusters")
    # It also kept its contact ids, which its night never published: every cluster assigned.
    assert nights.ids[nights.a] == (
        "full: the kept contact ids are not the published file's (a night that did not publish)"
    )
    # (0 rebuilt when the killed try had finished writing its generation: same rows tonight.)
    assert nights.profiles[nights.a].startswith("incremental: ")
    # The new phone hub hides R's phone: R's record is built again (its inputs changed).
    assert nights.records[nights.a].startswith("incremental: ")
    assert " 0 records built" not in nights.records[nights.a]
    assert contact_with(nights.a, p_email) == contact_with(nights.a, q_email)
    hubs = "SELECT count(*) FROM ambiguous_keys WHERE key_type = 'phone' AND key_value = '{}'"
    assert query(nights.a, hubs.format(r_phone)).item() == 1


def joining_and_hub_day(db: Path, exports: Path) -> list[tuple[str, str]]:
    """An askvault export day after the last: one new session seen with the emails of two
    contacts (P and Q: it joins them), and the phone of a third (R) seen with two new emails (it
    becomes a hub: a phone of three people). Contacts without a verified user id, so joining
    them breaks no hub limit. Returns (contact id, email) of P and Q, (contact id, phone) of R."""
    free = (
        "SELECT contact_id, {} FROM contacts WHERE user_id IS NULL AND len(emails) = 1 {} "
        "ORDER BY contact_id DESC LIMIT {}"
    )
    emails = "SELECT key_value FROM ambiguous_keys WHERE key_type = 'email'"
    pair = query(db, free.format("emails[1]", f"AND emails[1] NOT IN ({emails})", 2)).rows()
    ambiguous = "SELECT key_value FROM ambiguous_keys WHERE key_type = 'phone'"
    phone = f"AND len(phones) = 1 AND phones[1] NOT IN ({ambiguous})"
    (r,) = query(
        db,
        free.format(
            "phones[1]", f"{phone} AND contact_id NOT IN ('{pair[0][0]}', '{pair[1][0]}')", 1
        ),
    ).rows()
    last = max(date.fromisoformat(d.name) for d in (exports / "askvault").iterdir())
    day = (last + timedelta(days=1)).isoformat()
    at = f"{day}T10:00:00Z"
    rows = [
        {"email": pair[0][1], "session_id": "sess_joins_p_and_q"},
        {"email": pair[1][1], "session_id": "sess_joins_p_and_q"},
        {"phone": r[1], "email": "hub.one@example.org"},
        {"phone": r[1], "email": "hub.two@example.org"},
    ]
    folder = exports / "askvault" / day
    folder.mkdir()
    lines = [
        json.dumps(
            {"interaction_id": f"int_night4_{i}", "channel": "widget", "occurred_at": at, **row}
        )
        for i, row in enumerate(rows)
    ]
    (folder / "export-001.jsonl").write_text("\n".join(lines) + "\n")
    return [pair[0], pair[1], r]


def test_normalized_days_equal_one_pass_over_every_day(generated: Path, tmp_path: Path) -> None:
    """Engine level: carried-over days + tonight's days, resolved, are row for row what
    normalizing every staged day at once gives (re-delivery counters included)."""
    exports, staging, cache = tmp_path / "exports", tmp_path / "staging", tmp_path / "cache"
    config = EngineConfig(identity_secrets=(SECRET,))
    days = sorted(p.name for p in (generated / "askvault").iterdir())
    redelivered = first_parquet_day(generated, days[:3])

    def stage(day: str) -> None:
        for source in ("askvault", "whatsapp", "email", "sms", "slack"):
            if (exports / source / day).is_dir():
                list(stage_days(exports, source, [day], lambda d, s=source: staging / s / d))

    def check(expected_path: str) -> None:
        resolved, plan = normalized_history(staging, cache, config)
        assert plan.describe().startswith(expected_path)
        one_pass = prepare_interactions(read_staged(staging, "accepted"), config)
        assert resolved.interactions.equals(one_pass.interactions)
        assert (resolved.deliveries, resolved.updates, resolved.repeats) == (
            one_pass.deliveries,
            one_pass.updates,
            one_pass.repeats,
        )

    for day in days[:3]:
        land(generated, exports, day)
        stage(day)
    check("full: no normalized days kept yet")
    land(generated, exports, days[4])
    stage(days[4])
    check("incremental: ")
    redeliver(exports, redelivered)
    stage(redelivered)
    land(generated, exports, days[3])
    stage(days[3])
    check("incremental: ")
    assert prepare_interactions(read_staged(staging, "accepted"), config).updates >= 1


def _profile_rows(n: int) -> pl.DataFrame:
    """`n` interactions with every column a profile reads (3 people, 2 plans, tags, attributes)."""
    at = datetime(2026, 11, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "interaction_id": [f"int_{i:03d}" for i in range(n)],
            "occurred_at": [at + timedelta(hours=i) for i in range(n)],
            "identity_verified": [i % 4 == 0 for i in range(n)],
            "channel": [("widget", "email", "sms")[i % 3] for i in range(n)],
            "session_id": [f"sess_{i % 5}" for i in range(n)],
            "verified_user_id": [f"u_{i % 3}" if i % 4 == 0 else None for i in range(n)],
            "user_id": [f"u_{i % 3}" if i % 4 == 0 else None for i in range(n)],
            "plan_norm": [("pro", "enterprise", None)[i % 3] for i in range(n)],
            "email_norm": [f"p{i % 3}@x.org" for i in range(n)],
            "email_address": [f"P{i % 3}@x.org" for i in range(n)],
            "phone_e164": [f"+1415555010{i % 3}" if i % 2 else None for i in range(n)],
            "name_display": [("Ann Lee", "Bo Chan", "ANN LEE")[i % 3] for i in range(n)],
            "company_display": [("Acme", None, "Globex")[i % 3] for i in range(n)],
            "conversation_id": [f"conv_{i // 2}" for i in range(n)],
            "contact_tags": [["vip"] if i % 3 == 0 else None for i in range(n)],
            "attributes": [json.dumps({"city": f"c{i}", "seats": i}) for i in range(n)],
            "name": [f"raw {i}" for i in range(n)],  # a column profiles do not read
        },
        schema_overrides={"contact_tags": pl.List(pl.String)},
    )


def test_kept_profiles_equal_a_full_build_and_say_when_they_cannot_be_used(
    tmp_path: Path,
) -> None:
    """Engine level: after a row changes, a row moves between contacts, a contact goes and a
    column no profile reads changes, the carried-over profiles equal a full build; another
    audience map, `full`, too many contacts touched or a damaged kept file build every profile,
    and say why."""
    interactions, assignment = tmp_path / "interactions.parquet", tmp_path / "assignment.parquet"
    cache, config = tmp_path / "cache", EngineConfig()

    def night(rows: pl.DataFrame, owner: list[str], config: EngineConfig = config, full=None):
        rows.write_parquet(interactions)
        pl.DataFrame({"interaction_id": rows["interaction_id"], "contact_id": owner}).write_parquet(
            assignment
        )
        kept, plan = profile_cache.contacts_frame(
            interactions, assignment, config, tmp_path, cache, full
        )
        every = build_contacts_frame(
            profile_cache.profile_source(interactions, assignment), config, tmp_path / "tmp"
        )
        assert kept.sort("contact_id").equals(every.sort("contact_id"))
        return plan.describe()

    rows = _profile_rows(48)
    owner = [f"c{i % 16:02d}" for i in range(48)]
    assert night(rows, owner) == "full: no profiles kept yet"
    assert night(rows, owner) == "incremental: 0 contacts rebuilt, 16 carried over"
    # Not read by profiles: nobody is touched.
    renamed = rows.with_columns(pl.lit("raw").alias("name"))
    assert night(renamed, owner) == "incremental: 0 contacts rebuilt, 16 carried over"
    # c01's second row gets another company; c02's first row moves to c03; c15 goes.
    changed = rows.with_columns(
        pl.when(pl.col("interaction_id") == "int_017")
        .then(pl.lit("Initech"))
        .otherwise(pl.col("company_display"))
        .alias("company_display")
    ).filter(~pl.col("interaction_id").is_in(["int_015", "int_031", "int_047"]))
    moved = ["c03" if i == 2 else f"c{i % 16:02d}" for i in range(48) if i % 16 != 15]
    assert night(changed, moved) == "incremental: 3 contacts rebuilt, 12 carried over"
    other = EngineConfig(audience_by_plan={"pro": "gold"})
    assert night(changed, moved, other) == "full: profile code or configuration changed"
    assert night(changed, moved, other, "--full requested") == "full: --full requested"
    # Every contact touched (more than half): one full build.
    shifted = [f"c{(i + 1) % 15:02d}" for i in range(changed.height)]
    assert night(changed, shifted, other) == "full: 15 of 15 contacts touched"
    assert night(changed, shifted, other) == "incremental: 0 contacts rebuilt, 15 carried over"
    # A damaged kept file costs one full build, never the night.
    (kept_file,) = cache.glob("profiles-*.parquet")
    kept_file.write_bytes(kept_file.read_bytes()[:100])
    assert night(changed, shifted, other) == "full: kept profiles unreadable"
    assert night(changed, shifted, other) == "incremental: 0 contacts rebuilt, 15 carried over"


def test_published_file_is_carried_by_value_and_written_whole_when_it_cannot_be(
    tmp_path: Path,
) -> None:
    """Engine level (`dedup.snapshot.carry`): the copy of the published file keeps `interactions`
    alone, and after the update holds exactly tonight's rows (one changed, one moved to another
    contact, one gone, one new); no published file, `full`, a damaged file, other columns or
    too many changed rows start a fresh file instead, and say why."""
    published, build = tmp_path / "published.duckdb", tmp_path / "build.duckdb"
    rows = (
        "SELECT 'int_' || range AS interaction_id, range AS occurred_at, "
        "'c' || (range % 3) AS contact_id, ['tag']::VARCHAR[] AS tags FROM range(8)"
    )
    with duckdb.connect(str(published)) as con:
        con.execute(f"CREATE TABLE interactions AS {rows}")
        con.execute("CREATE TABLE contacts AS SELECT 'c0' AS contact_id")
        con.execute("CREATE INDEX contacts_id ON contacts (contact_id)")
        con.execute("CREATE VIEW contact_list AS FROM contacts")
        con.execute("CREATE SCHEMA fts_main_x")
        con.execute("CREATE TABLE fts_main_x.dict AS SELECT 1 AS termid")
        con.execute("CREATE MACRO fts_main_x.match_bm25(a) AS a")
    assert carry.start_build(build, None, None).full == "no published file yet"
    assert carry.start_build(build, published, "--full requested").full == "--full requested"
    # What a run killed while copying or building leaves: part of a file and its log.
    build.write_bytes(b"half a copy")
    build.with_name(build.name + ".wal").write_bytes(b"log")
    plan = carry.start_build(build, published, None)
    assert plan.full is None
    assert not build.with_name(build.name + ".wal").exists()
    assert query(published, "SELECT count(*) FROM contacts").item() == 1  # untouched
    objects = (
        "SELECT (SELECT list(schema_name || '.' || table_name) FROM duckdb_tables()), "
        "(SELECT count(*) FROM duckdb_views() WHERE NOT internal), "
        "(SELECT count(*) FROM duckdb_indexes()), "
        "(SELECT count(*) FROM duckdb_functions() WHERE NOT internal)"
    )
    assert query(build, objects).row(0) == (["main.interactions"], 0, 0, 0)

    con = duckdb.connect()
    con.execute(f"ATTACH '{build}' AS out")
    con.execute(
        f"CREATE TABLE tonight AS SELECT * REPLACE (CASE interaction_id WHEN 'int_0' THEN "
        "['vip'] ELSE tags END AS tags, CASE interaction_id WHEN 'int_4' THEN 'c2' ELSE "
        f"contact_id END AS contact_id) FROM ({rows}) WHERE interaction_id <> 'int_7' "
        "UNION ALL SELECT 'int_new', 9, 'c9', NULL"
    )
    names = ("interaction_id", "occurred_at", "contact_id", "tags")
    select = "SELECT * FROM tonight"
    assert carry.update_interactions(con, select, names, plan) is None
    assert plan.describe() == (
        "incremental: 3 interactions written, 3 removed, 5 kept from the published file; "
        "every other table written whole"
    )
    differ = (
        "SELECT count(*) FROM ((FROM tonight EXCEPT ALL FROM out.interactions) "
        "UNION ALL (FROM out.interactions EXCEPT ALL FROM tonight))"
    )
    assert con.execute(differ).fetchone() == (0,)
    # Nothing changed since (a night without new data): nothing written.
    assert carry.update_interactions(con, select, names, plan) is None
    assert plan.describe().startswith("incremental: 0 interactions written, 0 removed, 8 kept ")
    wider = "SELECT *, 1 AS extra FROM tonight"
    assert carry.update_interactions(con, wider, (*names, "extra"), plan) == (
        "published interactions' columns differ from tonight's"
    )
    moved = "SELECT * REPLACE ('c7' AS contact_id) FROM tonight"
    assert carry.update_interactions(con, moved, names, plan) == (
        "8 of 8 published interactions changed"
    )
    con.close()
    # A file another DuckDB version created (its header says which) is written whole once.
    older = tmp_path / "older.duckdb"
    header = bytearray(published.read_bytes())
    assert carry.created_by(published) == f"v{duckdb.__version__}"
    header[52:84] = b"v1.4.0".ljust(32, b"\0")
    older.write_bytes(bytes(header))
    assert carry.start_build(build, older, None).full == (
        f"published file created by DuckDB v1.4.0, this is v{duckdb.__version__}"
    )
    published.write_bytes(b"not a duckdb file" * 100)
    assert carry.start_build(build, published, None).full.startswith("published file unreadable")
    assert query(build, "SELECT count(*) FROM duckdb_tables()").item() == 0
