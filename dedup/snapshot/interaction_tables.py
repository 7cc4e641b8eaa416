"""The published tables computed from every interaction, `session_audience` and `property_errors`:
written whole, or carried from last night's file with only what changed recomputed (issue 25).

Both are functions of the published `interactions` rows, which `dedup.snapshot.carry` has just
made equal to tonight's by value, plus a little that is not published:

- `session_audience`: a session's `contact_id`, `evidence` and `interactions` read only its rows'
  published columns (`session_id`, `contact_id`, `occurred_at`, `interaction_id`,
  `identity_verified`); its `audience` reads the audience of the plan (`plan_norm`, not a
  published column, through the audience map) of its latest verified row; `contact_audience` is
  its contact's audience in tonight's `contacts`.
- `property_errors`: one interaction's `attributes` and `contact_id`, and the declared properties.

So a carried session is recomputed when one of its rows changed, appeared or went (the rows the
interactions' carry deleted or inserted), or when tonight's audience of its verified rows differs
from its published `audience` (found by value over tonight's verified rows only: a changed plan,
audience map or default audience); every kept session gets tonight's `contact_audience`. A
carried property error goes with its interaction's published row, and tonight's errors of the
inserted rows are added. Rows are compared by value, not by tracking why they changed.

What the comparison cannot see is the code and configuration that made last night's rows: those
are named by a token (this module, `dedup.properties`, the declared properties) kept in the state
folder with the run id of the night that wrote the file (`KeptTables`). The tables are written
whole, and the plan says why, when the file was written whole, the token or run differs, the copy
lacks a table or has other columns, the audience map changed, or more than the interactions'
`MAX_CHANGED_SHARE` of the sessions changed. Carried rows keep their place and new ones are
appended; nothing reads either table by position (the full write orders them for analysts only).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb

from dedup import properties
from dedup.code_token import code_token
from dedup.config import EngineConfig
from dedup.properties import property_errors_sql
from dedup.snapshot import carry

SESSIONS = "out.main.session_audience"
ERRORS = "out.main.property_errors"
# Folder of the kept token under `<db>.state/cache/`.
PUBLISHED_CACHE = "published"

# The audience of each session's latest verified row (its plan through the audience map). Safe
# merging: a session gets only the audience its own evidence supports. A session that typed an
# enterprise customer's email merges into that contact, but the email is self-asserted: only a
# verified identity in the session itself lifts it above the default audience (docs/privacy.md).
VERIFIED_SQL = """
CREATE OR REPLACE TEMP TABLE _verified_audience AS
SELECT i.session_id, arg_max(m.audience, i.occurred_at) AS audience
FROM _interactions_full i LEFT JOIN audience_map m USING (plan_norm)
WHERE i.identity_verified AND i.session_id IS NOT NULL
GROUP BY i.session_id
"""

# A session's row from the published rows (equal to tonight's) and its verified audience;
# `{only}` limits it to some sessions.
SESSION_ROWS_SQL = """
SELECT s.session_id, s.contact_id,
       coalesce(v.audience, '{default}') AS audience,
       CASE WHEN s.verified THEN 'verified_identity' ELSE 'self_asserted' END AS evidence,
       c.audience AS contact_audience, s.interactions
FROM (
  SELECT session_id,
         arg_max(contact_id, (occurred_at, interaction_id)) AS contact_id,
         bool_or(identity_verified) AS verified,
         count(*) AS interactions
  FROM out.main.interactions
  WHERE session_id IS NOT NULL {only}
  GROUP BY session_id
) s LEFT JOIN _verified_audience v USING (session_id) LEFT JOIN _contacts c USING (contact_id)
"""


def tables_token(config: EngineConfig) -> str:
    """What the two tables' rows depend on besides the published rows they are computed from."""
    described = {n: [p.type, list(p.values)] for n, p in config.properties.items()}
    return code_token([json.dumps(described, sort_keys=True)], [sys.modules[__name__], properties])


@dataclass
class KeptTables:
    """`state.json` in `folder`: the run whose published file holds the two tables, and the
    token they were made with."""

    folder: Path

    def read(self) -> dict:
        try:
            return json.loads((self.folder / "state.json").read_text())
        except (OSError, ValueError):
            return {}

    def write(self, run_id: str, token: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        part = self.folder / "state.json.part"
        part.write_text(json.dumps({"run_id": run_id, "token": token}))
        os.replace(part, self.folder / "state.json")


def write_interaction_tables(
    con: duckdb.DuckDBPyConnection,
    config: EngineConfig,
    plan: carry.PublishPlan,
    kept: KeptTables | None,
    runs: tuple[str | None, str | None],
) -> str:
    """`out.session_audience` and `out.property_errors`, carried or written whole; says which.
    `runs`: the run id of the published file's night (None: no published run) and tonight's."""
    con.execute(VERIFIED_SQL)
    token = tables_token(config)
    reason = (
        "the file was written whole" if plan.full else _unusable(con, config, kept, runs[0], token)
    )
    carried = False
    if reason is None:
        carried, reason = _carry(con, config)
    if not carried:
        _write_whole(con, config)
    if kept is not None and runs[1] is not None:
        kept.write(runs[1], token)
    return f"carried: {reason}" if carried else f"written whole: {reason}"


def _unusable(
    con: duckdb.DuckDBPyConnection,
    config: EngineConfig,
    kept: KeptTables | None,
    published_run: str | None,
    token: str,
) -> str | None:
    """Why the copy's two tables cannot be carried, or None."""
    state = kept.read() if kept is not None else {}
    if not state or state.get("run_id") != published_run:
        return "no record of the run that made the published tables"
    if state.get("token") != token:
        return "their code or declared properties changed"
    have = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'out' "
            "AND schema_name = 'main'"
        ).fetchall()
    }
    if not {"session_audience", "property_errors", "audience_map"} <= have:
        return "the published file lacks them"
    for table, sql in (
        (SESSIONS, SESSION_ROWS_SQL.format(default="", only="")),
        (ERRORS, property_errors_sql(config.properties, "out.main.interactions")),
    ):
        if _columns(con, f"SELECT * FROM ({sql}) LIMIT 0") != _columns(
            con, f"FROM {table} LIMIT 0"
        ):
            return f"published {table.rsplit('.', 1)[1]} columns differ from tonight's"
    differ = con.execute(
        "SELECT count(*) FROM ((FROM out.main.audience_map EXCEPT ALL FROM audience_map) "
        "UNION ALL (FROM audience_map EXCEPT ALL FROM out.main.audience_map))"
    ).fetchone()[0]  # type: ignore[index]
    return "the audience map changed" if differ else None


def _write_whole(con: duckdb.DuckDBPyConnection, config: EngineConfig) -> None:
    """Both tables over every published row (equal to tonight's rows)."""
    default = config.default_audience.replace("'", "''")
    con.execute(
        f"CREATE OR REPLACE TABLE {SESSIONS} AS "
        f"{SESSION_ROWS_SQL.format(default=default, only='')} ORDER BY session_id"
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {ERRORS} AS "
        + property_errors_sql(config.properties, "out.main.interactions")
    )


def _carry(con: duckdb.DuckDBPyConnection, config: EngineConfig) -> tuple[bool, str]:
    """Recompute the sessions and errors of what changed (the interactions' carry left the rows
    it deleted in `_removed` and tonight's rows it inserted in `_inserted`): (True, what was
    recomputed), or (False, why not)."""
    default = config.default_audience.replace("'", "''")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _recompute AS
        SELECT session_id FROM _removed WHERE session_id IS NOT NULL
        UNION SELECT session_id FROM _inserted WHERE session_id IS NOT NULL
        UNION SELECT coalesce(p.session_id, v.session_id)
        FROM {SESSIONS} p FULL JOIN _verified_audience v USING (session_id)
        WHERE p.session_id IS NULL OR p.audience IS DISTINCT FROM coalesce(v.audience, '{default}')
        """
    )
    recompute, sessions = con.execute(
        f"SELECT (SELECT count(*) FROM _recompute), (SELECT count(*) FROM {SESSIONS})"
    ).fetchone()  # type: ignore[misc]
    if recompute > carry.MAX_CHANGED_SHARE * max(sessions, 1):
        return False, f"{recompute:,} of {sessions:,} published sessions changed"
    con.execute(f"DELETE FROM {SESSIONS} WHERE session_id IN (FROM _recompute)")
    # Kept sessions whose contact's audience changed tonight.
    con.execute(
        f"""
        UPDATE {SESSIONS} s SET contact_audience = f.audience
        FROM (SELECT p.session_id, c.audience FROM {SESSIONS} p LEFT JOIN _contacts c
              USING (contact_id) WHERE p.contact_audience IS DISTINCT FROM c.audience) f
        WHERE s.session_id = f.session_id
        """
    )
    only = "AND session_id IN (FROM _recompute)"
    con.execute(
        f"INSERT INTO {SESSIONS} {SESSION_ROWS_SQL.format(default=default, only=only)} "
        "ORDER BY session_id"
    )
    con.execute(
        f"DELETE FROM {ERRORS} WHERE interaction_id IN (SELECT interaction_id FROM _removed)"
    )
    con.execute(f"INSERT INTO {ERRORS} {property_errors_sql(config.properties, '_inserted')}")
    con.execute("DROP TABLE _recompute")
    return True, f"{recompute:,} sessions recomputed, {sessions:,} published"


def _columns(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[str, str]]:
    return [(d[0], str(d[1])) for d in con.execute(sql).description]
