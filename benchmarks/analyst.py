"""Benchmark: what the analyst layer and the quality gates add to a nightly run, and search speed.

Not a test. Usage:

    uv run python benchmarks/analyst.py --contacts 700000 --interactions 1000000

Builds a synthetic published-size file straight in DuckDB (realistic names, emails, companies,
phones, tags, attributes; no pipeline run needed), then times, each in this one process:
- the analyst layer at publish time (views + fts index: `finish_analyst_layer`);
- the GX import, and the GX suites + publish gates + data docs (`gx_quality_suites` check body);
- the nightly exports (contacts + proposals CSV with their checks and the GX export suite);
- a 200-row export (`export_contacts` with the Polars check, as `contacts export` runs it);
- full-text search through the fts index versus an ILIKE scan and a regex scan over the same
  fields, for a few queries (median of 5 runs each).
Prints Markdown tables for docs/performance.md and docs/decisions.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from dedup.snapshot.analyst import SEARCH_TABLE, finish_analyst_layer, load_fts  # noqa: E402

FIRST = "['Ann','Bob','Carla','Dmitri','Emma','Farid','Grace','Hiro','Ingrid','Jane','Kofi','Liam','Mei','Noor','Oscar','Priya','Quinn','Rosa','Sven','Tariq','Uma','Victor','Wen','Ximena','Yusuf','Zoe']"
LAST = "['Archer','Builder','Cohen','Doe','Eriksen','Fischer','Garcia','Haddad','Ito','Jones','Kim','Lopez','Müller','Nakamura','Okafor','Patel','Quist','Rossi','Satō','Taylor','Ueda','Varga','Wang','Xu','Young','Zhang']"
COMPANY = (
    "['Acme','Globex','Initech','Umbrella','Stark','Wayne','Wonka','Hooli','Vandelay','Zenith']"
)
DOMAIN = "['gmail.com','acme.test','globex.test','outlook.com','fastmail.com','yahoo.com']"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_file(
    path: Path, n_contacts: int, n_interactions: int, row_group_size: int | None = None
) -> None:
    """Published tables with the real column names and plausible values; `row_group_size`
    (DuckDB's 122,880 when None) lets a test cross row groups with a few thousand rows."""
    path.unlink(missing_ok=True)
    con = duckdb.connect()
    size = f" (ROW_GROUP_SIZE {row_group_size})" if row_group_size else ""
    con.execute(f"ATTACH '{path}' AS built{size}")
    con.execute("USE built")
    con.execute("SET enable_progress_bar = false")
    con.execute(
        f"""
        CREATE TABLE contacts AS
        SELECT 'contact_' || lpad(to_hex(i), 16, '0') AS contact_id,
               {FIRST}[1 + i % 26] || ' ' || {LAST}[1 + (i // 26) % 26] AS name,
               CASE WHEN i % 3 <> 0 THEN lower({FIRST}[1 + i % 26]) || '.' || i || '@'
                    || {DOMAIN}[1 + i % 6] END AS email,
               CASE WHEN i % 2 = 0 THEN '+1415' || lpad((i % 10000000)::VARCHAR, 7, '0') END AS phone,
               CASE WHEN i % 4 = 0 THEN {COMPANY}[1 + i % 10] || ' ' || (i % 997) END AS company,
               list_sort(list_distinct([['widget','whatsapp','email','sms','slack','api'][1 + i % 6],
                                        ['widget','email'][1 + i % 2]])) AS channels,
               ['public','paid_users','enterprise','growth'][1 + i % 4] AS audience,
               i % 5 = 0 AS identity_verified,
               CASE WHEN i % 5 = 0 THEN TIMESTAMPTZ '2026-01-01' END AS verified_at,
               CASE WHEN i % 5 = 0 THEN 'u_' || i END AS user_id,
               1 + i % 4 AS conversation_count,
               TIMESTAMPTZ '2026-01-01' + to_seconds(i * 37 % 28000000) AS last_conversation_at,
               CASE WHEN i % 7 = 0 THEN ['vip'] WHEN i % 7 = 1 THEN ['beta','trial'] ELSE []::VARCHAR[] END AS tags,
               TIMESTAMPTZ '2025-06-01' + to_seconds(i * 13 % 20000000) AS first_seen,
               TIMESTAMPTZ '2026-01-01' + to_seconds(i * 37 % 28000000) AS last_seen,
               NULL::VARCHAR AS crm_sync_status,
               ('{{"city":"' || ['Boston','Berlin','Lagos','Osaka','Lima'][1 + i % 5] || '","plan_tier":"'
                 || ['gold','silver','bronze'][1 + i % 3] || '"}}')::JSON AS attributes,
               true AS is_lead,
               CASE WHEN i % 3 <> 0 THEN lower({FIRST}[1 + i % 26]) || '.' || i || '@'
                    || {DOMAIN}[1 + i % 6] END AS email_norm,
               CASE WHEN i % 3 <> 0 THEN [lower({FIRST}[1 + i % 26]) || '.' || i || '@'
                    || {DOMAIN}[1 + i % 6]] ELSE []::VARCHAR[] END AS emails,
               []::VARCHAR[] AS phones,
               0 AS interaction_count, 1 AS session_count, 0 AS tags_dropped,
               0 AS attributes_dropped, 0 AS unknown_plans
        FROM range({n_contacts}) t(i)
        """
    )
    con.execute(
        f"""
        CREATE TABLE interactions AS
        SELECT 'i' || j AS interaction_id,
               ['widget','whatsapp','email','sms','slack','api'][1 + j % 6] AS channel,
               TIMESTAMPTZ '2026-01-01' + to_seconds(j * 11 % 28000000) AS occurred_at,
               'conv' || (j // 2) AS conversation_id, NULL AS session_id, NULL AS user_id,
               NULL AS user_hash, NULL AS plan, NULL AS email, NULL AS phone, NULL AS name,
               NULL AS company, []::VARCHAR[] AS contact_tags, []::VARCHAR[] AS conversation_tags,
               '{{}}'::JSON AS attributes,
               CASE WHEN j % 3 = 0 THEN 'x' || j || '@gmail.com' END AS email_norm,
               CASE WHEN j % 2 = 0 THEN '+1415' || lpad((j % 10000000)::VARCHAR, 7, '0') END AS phone_e164,
               NULL AS name_norm, false AS identity_verified,
               'contact_' || lpad(to_hex(j % {n_contacts}), 16, '0') AS contact_id,
               'askvault' AS source, DATE '2026-11-01' AS export_day, 'f.jsonl' AS file, j AS row
        FROM range({n_interactions}) t(j)
        """
    )
    con.execute(
        "UPDATE contacts SET interaction_count = n FROM (SELECT contact_id, count(*) AS n "
        "FROM interactions GROUP BY 1) s WHERE s.contact_id = contacts.contact_id"
    )
    con.execute(
        """
        CREATE TABLE merge_proposals AS
        SELECT 'prop_' || k AS proposal_id, c1.contact_id AS contact_id_l,
               c2.contact_id AS contact_id_r, 0.9 AS match_probability, 5.0 AS match_weight,
               'pending' AS status, TIMESTAMPTZ '2026-11-01' AS created_at, '[]'::JSON AS explanation,
               NULL::TIMESTAMPTZ AS status_at, NULL AS decided_by, NULL AS note
        FROM range(6000) t(k)
        JOIN (SELECT contact_id, row_number() OVER (ORDER BY contact_id) AS r FROM contacts) c1
          ON c1.r = 2 * k + 1
        JOIN (SELECT contact_id, row_number() OVER (ORDER BY contact_id) AS r FROM contacts) c2
          ON c2.r = 2 * k + 2
        """
    )
    con.execute(
        "CREATE TABLE merges (merge_id VARCHAR, kind VARCHAR, survivor_id VARCHAR, "
        "merged_ids VARCHAR[], decided_by VARCHAR, decided_at TIMESTAMPTZ, "
        "reversible_until TIMESTAMPTZ, undone_at TIMESTAMPTZ, reason VARCHAR)"
    )
    con.execute("CREATE TABLE contact_redirects (from_contact_id VARCHAR, to_contact_id VARCHAR)")
    con.execute(
        f"""
        CREATE TABLE pipeline_runs AS
        SELECT * FROM (VALUES
          (1, 'r1', TIMESTAMPTZ '2026-11-01', {n_interactions - 5000}, {n_contacts - 3000}, 100, 0, 0, 0),
          (2, 'r2', TIMESTAMPTZ '2026-11-02', {n_interactions}, {n_contacts}, 120, 0, 0, 0))
          t(run_number, run_id, finished_at, interactions, contacts, quarantined, updates,
            auto_merges, ambiguous_keys)
        """
    )
    con.close()


def timed(label: str, rows: list, fn):
    started = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - started
    rows.append((label, seconds))
    print(f"{label}: {seconds:.2f}s (peak {peak_mb():,.0f} MB)", file=sys.stderr)
    return value


def search_comparison(path: Path, queries: list[str]) -> list[tuple[str, str, float, int]]:
    con = duckdb.connect(str(path), read_only=True)
    load_fts(con)
    out = []
    haystack = "concat_ws(' ', name, email, company, attributes_text)"
    for q in queries:
        words = q.split()
        approaches = {
            "fts (bm25, all words)": (
                f"SELECT count(*) FROM (SELECT fts_main_{SEARCH_TABLE}.match_bm25(contact_id, ?, "
                f"conjunctive := 1) AS s FROM {SEARCH_TABLE}) WHERE s IS NOT NULL",
                [q],
            ),
            "ILIKE scan (all words)": (
                f"SELECT count(*) FROM {SEARCH_TABLE} WHERE "
                + " AND ".join(f"{haystack} ILIKE ?" for _ in words),
                [f"%{w}%" for w in words],
            ),
            "regex scan (word boundaries)": (
                f"SELECT count(*) FROM {SEARCH_TABLE} WHERE "
                + " AND ".join(f"regexp_matches({haystack}, ?, 'i')" for _ in words),
                [rf"\b{w}\b" for w in words],
            ),
        }
        for name, (sql, params) in approaches.items():
            times, hits = [], 0
            for _ in range(5):
                t = time.perf_counter()
                hits = con.execute(sql, params).fetchone()[0]
                times.append(time.perf_counter() - t)
            out.append((q, name, statistics.median(times), hits))
    con.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=700_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--nightly-seconds", type=float, default=128.7)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"analyst-{args.contacts}.duckdb"
    rows: list[tuple[str, float]] = []
    timed(
        "synthetic file (not part of a run)",
        [],
        lambda: build_file(path, args.contacts, args.interactions),
    )

    timed("analyst layer: views + fts index", rows, lambda: finish_analyst_layer(path))

    started = time.perf_counter()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations  # noqa: F401

    rows.append(("GX import", time.perf_counter() - started))

    from dedup.config import EngineConfig
    from dedup.service.export import export_contacts, export_proposals
    from dedup.service.search import ContactFilter
    from quality.export_checks import check_export_file, read_back
    from quality.gates import GateLimits, gate_failures, gate_metrics
    from quality.gx_suites import SuiteSettings, export_report, validate_snapshot

    config = EngineConfig()
    settings = SuiteSettings(
        audiences=tuple(sorted({*config.audience_by_plan.values(), config.default_audience}))
    )
    limits = GateLimits()
    docs = args.out / "analyst-docs"

    def snapshot_suites():
        con = duckdb.connect(str(path), read_only=True)
        try:
            metrics = gate_metrics(con)
            gate_failures(metrics, limits)
            return validate_snapshot(
                con, settings, docs / "snapshot", (metrics.frame(limits), limits)
            )
        finally:
            con.close()

    report = timed("GX snapshot suites + publish gates + data docs", rows, snapshot_suites)
    print(f"snapshot suites failures: {[str(f) for f in report.failures]}", file=sys.stderr)

    gx_export_seconds = [0.0]

    def gx_check(key, e164, name):
        # The same composition as assets.quality._gx_export_check, timing its GX part.
        base = check_export_file(key, e164)

        def _check(p, expected):
            problems = base(p, expected)
            if problems:
                return problems
            t = time.perf_counter()
            written = read_back(p)
            if written.height > settings.sample_rows:
                written = written.sample(settings.sample_rows, seed=42)
            failures = export_report(written, key, e164, name, docs / "exports" / name).failures
            gx_export_seconds[0] += time.perf_counter() - t
            return [str(f) for f in failures]

        return _check

    def nightly_exports():
        con = duckdb.connect(str(path), read_only=True)
        try:
            a = export_contacts(
                con,
                ContactFilter(),
                args.out / "contacts.csv",
                gx_check("contact_id", frozenset({"phone"}), "contacts"),
            )
            b = export_proposals(
                con,
                args.out / "merge_proposals.csv",
                gx_check("proposal_id", frozenset({"phone_l", "phone_r"}), "merge_proposals"),
            )
            return a.rows, b.rows
        finally:
            con.close()

    exported = timed("nightly exports (contacts + proposals, checked, GX)", rows, nightly_exports)
    print(f"exported rows: {exported}; GX part {gx_export_seconds[0]:.1f}s", file=sys.stderr)

    con = duckdb.connect(str(path), read_only=True)
    small = []
    for _ in range(5):
        t = time.perf_counter()
        result = export_contacts(
            con,
            # the first 200 contacts of the synthetic file (first_seen = 2025-06-01 + 13 s * i)
            ContactFilter(created_before=datetime(2025, 6, 1, 0, 43, 20, tzinfo=UTC)),
            args.out / "small.csv",
            check_export_file(),
            max_rows=200,
        )
        small.append((time.perf_counter() - t, result.rows))
    con.close()

    added = sum(s for _, s in rows)
    gx = dict(rows)
    gx_total = (
        gx["GX import"]
        + gx["GX snapshot suites + publish gates + data docs"]
        + gx_export_seconds[0]
    )
    print(
        f"\n### Added to the nightly run: {args.contacts:,} contacts, {args.interactions:,} interactions\n"
    )
    print("| step | seconds |\n| --- | ---: |")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.1f} |")
    print(
        f"| **total added** | **{added:.1f}** ({added / args.nightly_seconds:.0%} of a "
        f"{args.nightly_seconds:.0f} s nightly run) |"
    )
    print(
        f"\nGX alone (import + snapshot suites + export suites {gx_export_seconds[0]:.1f} s): "
        f"**{gx_total:.1f} s = {gx_total / args.nightly_seconds:.1%}** of the nightly run"
    )
    print(f"\npeak RSS {peak_mb():,.0f} MB")
    print(
        f"\n200-row-cap export (`export_contacts`, Polars check): median "
        f"{statistics.median(s for s, _ in small) * 1000:.0f} ms for {small[0][1]} rows"
    )
    print("\n### Search over contacts (median of 5)\n")
    print("| query | approach | ms | matches |\n| --- | --- | ---: | ---: |")
    for q, name, seconds, hits in search_comparison(
        path, ["acme", "jane gmail", "boston gold", "satō"]
    ):
        print(f"| `{q}` | {name} | {seconds * 1000:.0f} | {hits:,} |")


if __name__ == "__main__":
    main()
