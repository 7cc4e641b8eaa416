"""What analysts get in the published file itself (issue 23 item 12): saved Contact Views and their
members, a comment on every table, view and column (docs/schema.md in step), and `export_day` as
a DATE."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import duckdb
import pytest

from dedup.layout import StateLayout
from dedup.service.published_views import describe
from dedup.service.saved_views import save_view
from dedup.service.search import ContactFilter, search
from dedup.snapshot.comments import DESCRIBED, column_comment, missing_comments
from tests.conftest import query, rec, write_jsonl

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DOC = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
D1, D2 = "2026-11-01", "2026-11-02"
NO_MATCHING = {"min_contacts_to_match": 10**9}
PROPERTIES = """
[properties.seats]
type = "number"
[properties.tier]
type = "enum"
values = ["gold", "silver"]
"""

RECORDS = [
    rec("a1", email="ann@acme.test", name="Ann Archer", company="Acme", contact_tags=["vip"]),
    rec("a2", "2026-11-01T11:00:00Z", channel="whatsapp", email="ann@acme.test"),
    rec("b1", channel="email", email="bob@globex.test", name="Bob Builder", contact_tags=["vip"]),
    rec("c1", channel="sms", phone="+14155552671", name="Cy Acme", attributes={"seats": 3}),
]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Views saved before a run; a bad record and an odd folder for the quarantine."""
    from assets.resources import ContactsSettings
    from contacts.runner import run_pipeline

    root = tmp_path_factory.mktemp("layer")
    exports, db = root / "exports", root / "out" / "contacts.duckdb"
    write_jsonl(exports, D1, "a.jsonl", [*RECORDS, {"interaction_id": "bad", "channel": "fax"}])
    (exports / "askvault" / "latest").mkdir()
    properties = root / "properties.toml"
    properties.write_text(PROPERTIES)
    views = StateLayout(db).views_path
    save_view(views, "vip", ContactFilter(has_tags=("vip",)), by="ann@admins.test")
    save_view(views, "acme not email", ContactFilter(text="acme", not_engaged=("email",)))
    save_view(views, "recent", ContactFilter(created_within_days=7))
    run_pipeline(
        ContactsSettings(
            exports_dir=str(exports),
            db_path=str(db),
            properties_file=str(properties),
            **NO_MATCHING,
        )
    )
    return db


def _members(db: Path) -> dict[str, set[str]]:
    rows = query(db, "SELECT view_name, contact_id FROM saved_view_members").rows()
    out: dict[str, set[str]] = {}
    for name, cid in rows:
        out.setdefault(name, set()).add(cid)
    return out


def test_saved_views_and_their_members_are_in_the_published_file(published: Path) -> None:
    views = query(
        published,
        "SELECT name, filter::VARCHAR AS filter, description, created_by, members, problem, "
        "created_at <= updated_at AS ordered FROM saved_views ORDER BY name",
    ).rows()
    assert views == [
        (
            "acme not email",
            '{"not_engaged":["email"],"text":"acme"}',
            'text "acme"; never used email',
            None,
            2,
            None,
            True,
        ),
        ("recent", '{"created_within_days":7}', "first seen within 7 days", None, 0, None, True),
        ("vip", '{"has_tags":["vip"]}', "tags include vip", "ann@admins.test", 2, None, True),
    ]
    names = dict(query(published, "SELECT contact_id, name FROM contacts").rows())
    members = _members(published)
    assert {names[c] for c in members["vip"]} == {"Ann Archer", "Bob Builder"}
    assert {names[c] for c in members["acme not email"]} == {"Ann Archer", "Cy Acme"}
    # The records are from 2026-11-01 and the run is now: "within 7 days" is relative to the run.
    assert "recent" not in members


def test_members_are_what_the_cli_search_finds_in_the_same_file(published: Path) -> None:
    """One implementation: the published members equal `search` on the published file."""
    con = duckdb.connect(str(published), read_only=True)
    try:
        as_of = con.execute("SELECT max(members_as_of) FROM saved_views").fetchone()[0]
        for name, filter_json in con.execute(
            "SELECT name, filter::VARCHAR FROM saved_views"
        ).fetchall():
            flt = ContactFilter.from_json(json.loads(filter_json))
            found = set(search(con, flt, now=as_of).get_column("contact_id"))
            assert found == _members(published).get(name, set()), name
    finally:
        con.close()


def test_a_view_saved_after_the_run_appears_from_the_next_run(exports: Path, db: Path, run) -> None:
    write_jsonl(exports, D1, "a.jsonl", RECORDS)
    run(**NO_MATCHING)
    assert query(db, "SELECT count(*) AS n FROM saved_views").item() == 0
    views = StateLayout(db).views_path
    save_view(views, "sms", ContactFilter(engaged=("sms",)))
    # A damaged entry (edited by hand) does not cost the night; it shows why in `problem`.
    data = json.loads(views.read_text())
    data["views"]["broken"] = {"filter": {"engaged": ["fax"]}, "saved_at": "2026-11-01T00:00:00"}
    views.write_text(json.dumps(data))
    assert query(db, "SELECT count(*) AS n FROM saved_views").item() == 0, "not before a run"
    run(**NO_MATCHING)
    rows = query(db, "SELECT name, members, problem FROM saved_views ORDER BY name").rows()
    assert rows[0][0] == "broken" and rows[0][1] is None and "unknown channel fax" in rows[0][2]
    assert rows[1] == ("sms", 1, None)
    assert query(
        db, "SELECT c.name FROM saved_view_members m JOIN contacts c USING (contact_id)"
    ).rows() == [("Cy Acme",)]


def test_every_table_view_and_column_has_a_comment(published: Path) -> None:
    con = duckdb.connect(str(published), read_only=True)
    try:
        assert missing_comments(con) == []
        comments = dict(
            con.execute(
                "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'contacts'"
            ).fetchall()
        )
        # The same text analysts see is the one home's (no second copy to drift).
        assert comments["crm_sync_status"] == column_comment("contacts", "crm_sync_status")
        properties = dict(
            con.execute(
                "SELECT column_name, comment FROM duckdb_columns() "
                "WHERE table_name = 'contact_properties'"
            ).fetchall()
        )
        assert "enum (gold, silver)" in properties["tier"]
        view = con.execute(
            "SELECT comment FROM duckdb_views() WHERE view_name = 'contact_list'"
        ).fetchone()
        assert view[0].startswith("View: the Contacts page list")
        described = con.execute(
            "SELECT table_comment FROM information_schema.tables WHERE table_name = 'saved_views'"
        ).fetchone()
        assert "next run" in described[0]
    finally:
        con.close()


def _doc_region(name: str) -> str:
    """The part of docs/schema.md that documents table or view `name`: its heading's section, or
    its row in a table of tables."""
    heading = re.search(rf"^(#+) [^\n]*`{name}`[^\n]*$", SCHEMA_DOC, re.M)
    if heading:
        level = len(heading.group(1))
        rest = SCHEMA_DOC[heading.end() :]
        end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
        return rest[: end.start()] if end else rest
    row = re.search(rf"^\| `{name}` (?:\(view\) )?\|[^\n]*$", SCHEMA_DOC, re.M)
    return row.group(0) if row else ""


def test_docs_schema_names_every_published_table_and_column(published: Path) -> None:
    rows = query(
        published,
        "SELECT table_name, list(column_name) AS columns FROM duckdb_columns() "
        "WHERE schema_name = 'main' AND database_name = current_database() AND NOT internal "
        "GROUP BY 1",
    ).rows()
    assert {t for t, _ in rows} >= set(DESCRIBED) - {"crm_links", "tier_mismatches"}
    missing = []
    for table, columns in rows:
        region = _doc_region(table)
        if not region:
            missing.append(table)
            continue
        declared = {"seats", "tier"} if table == "contact_properties" else set()
        missing += [f"{table}.{c}" for c in columns if f"`{c}`" not in region and c not in declared]
    assert missing == []


def test_every_described_table_is_documented() -> None:
    # Also those this small file lacks (crm_links, tier_mismatches).
    assert [t for t in DESCRIBED if not _doc_region(t)] == []


def test_export_day_is_a_date(published: Path) -> None:
    types = dict(
        query(
            published,
            "SELECT table_name, data_type FROM duckdb_columns() WHERE column_name = 'export_day'",
        ).rows()
    )
    assert types == {"interactions": "DATE", "quarantine": "DATE"}
    assert set(
        query(published, "SELECT DISTINCT export_day FROM interactions").get_column("export_day")
    ) == {date(2026, 11, 1)}
    quarantine = dict(query(published, "SELECT file, export_day FROM quarantine").rows())
    assert quarantine[f"askvault/{D1}/a.jsonl"] == date(2026, 11, 1)
    assert quarantine["askvault/latest"] is None, "an odd folder has no export day"


def test_saved_view_example_in_the_docs_runs(published: Path) -> None:
    """The "who is in view X" query of docs/schema.md, on a file with a view named 'vip'."""
    (sql,) = re.findall(r"```sql saved-views\n(.*?)```", SCHEMA_DOC, re.S)
    assert {r[0] for r in query(published, sql).rows()} == {"Ann Archer", "Bob Builder"}


@pytest.mark.parametrize(
    ("flt", "words"),
    [
        (
            ContactFilter(text="acme", has_tags=("vip", "beta")),
            'text "acme"; tags include vip, beta',
        ),
        (ContactFilter(not_tags=("beta",), engaged=("sms",)), "tags exclude beta; used sms"),
        (
            ContactFilter(audience="public", crm_sync_status="none"),
            "audience public; CRM sync none",
        ),
    ],
)
def test_describe_says_the_filter_in_words(flt: ContactFilter, words: str) -> None:
    assert describe(flt) == words
