"""Search, saved views, views of the published file and CSV exports, on a small published fixture."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from assets.resources import ContactsSettings
from contacts.cli import app
from contacts.runner import run_pipeline
from dedup.layout import StateLayout
from dedup.service.export import ExportError, contacts_for_export, export_contacts, to_csv_frame
from dedup.service.saved_views import ViewError, get_view, list_views, save_view
from dedup.service.search import ContactFilter, FilterError, search
from quality.export_checks import check_export_file, read_back
from tests.conftest import SECRET, query, rec, signed, write_jsonl

FORMULA_NAME = '=HYPERLINK("http://x","y")'
BULK = 201  # one more than a bulk action may touch


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four people with known tags, channels, dates and audiences, plus 201 'bulk' contacts."""
    root = tmp_path_factory.mktemp("analyst")
    exports = root / "exports"
    records = [
        # Ann: widget + WhatsApp, enterprise, vip + beta, Acme.
        rec(
            "a1",
            "2026-11-01T09:00:00Z",
            email="ann@acme.test",
            name="Ann Archer",
            company="Acme Corp",
            plan="Enterprise",
            user_id="u_ann",
            user_hash=signed("u_ann"),
            contact_tags=["vip", "beta"],
        ),
        rec("a2", "2026-11-03T09:00:00Z", channel="whatsapp", email="ann@acme.test"),
        # Bob: email only, vip, a custom attribute, seen in October.
        rec(
            "b1",
            "2026-10-01T09:00:00Z",
            channel="email",
            email="bob@globex.test",
            name="Bob Builder",
            contact_tags=["vip"],
            attributes={"tier": "gold"},
        ),
        rec("b2", "2026-10-05T09:00:00Z", channel="email", email="bob@globex.test"),
        # A visitor whose name is a spreadsheet formula; SMS then email.
        rec(
            "c1",
            "2026-11-10T09:00:00Z",
            channel="sms",
            phone="+1 415 555 2671",
            name=FORMULA_NAME,
            contact_tags=["beta", "-minus"],
        ),
        rec(
            "c2", "2026-11-20T09:00:00Z", channel="email", phone="+1 415 555 2671", email="c@x.test"
        ),
        # Dan: WhatsApp only, no tags.
        rec(
            "d1",
            "2026-11-15T09:00:00Z",
            channel="whatsapp",
            phone="+44 20 7946 0958",
            name="Dan Stone",
            company="Stone Ltd",
        ),
    ]
    records += [
        rec(
            f"z{i:03d}",
            "2026-09-01T09:00:00Z",
            channel="api",
            email=f"bulk{i}@example.test",
            contact_tags=["bulk"],
        )
        for i in range(BULK)
    ]
    write_jsonl(exports, "2026-11-20", "a.jsonl", records)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASKVAULT_IDENTITY_SECRET", SECRET)
        path = root / "contacts.duckdb"
        run_pipeline(
            ContactsSettings(
                exports_dir=str(exports), db_path=str(path), min_contacts_to_match=10_000
            )
        )
    return path


@pytest.fixture
def con(db: Path):
    c = duckdb.connect(str(db), read_only=True)
    yield c
    c.close()


PEOPLE = {"Ann Archer": "ann", "Bob Builder": "bob", FORMULA_NAME: "cat", "Dan Stone": "dan"}
NOW = datetime(2026, 11, 21, tzinfo=UTC)


def found(con, **kwargs) -> set[str]:
    """Who among the four people the filter finds (bulk contacts are set aside)."""
    names = search(con, ContactFilter(**kwargs), now=NOW).get_column("name").to_list()
    return {PEOPLE[n] for n in names if n in PEOPLE}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        # full text: company, email, attribute value, two words that must both match, accents/case
        ({"text": "acme"}, {"ann"}),
        ({"text": "bob@globex.test"}, {"bob"}),
        ({"text": "gold"}, {"bob"}),
        ({"text": "STONE ltd"}, {"dan"}),
        ({"text": "stone acme"}, set()),
        # tags: has X; has X but not Y
        ({"has_tags": ("vip",)}, {"ann", "bob"}),
        ({"has_tags": ("vip",), "not_tags": ("beta",)}, {"bob"}),
        ({"has_tags": ("beta",)}, {"ann", "cat"}),
        # channels: engaged via; never engaged via
        ({"engaged": ("whatsapp",)}, {"ann", "dan"}),
        ({"not_engaged": ("email",)}, {"ann", "dan"}),
        ({"engaged": ("sms", "email")}, {"cat"}),
        # created (first seen) within / after / before
        ({"created_within_days": 12}, {"cat", "dan"}),
        ({"created_after": datetime(2026, 11, 1, tzinfo=UTC)}, {"ann", "cat", "dan"}),
        ({"created_before": datetime(2026, 11, 1, tzinfo=UTC)}, {"bob"}),
        # last seen before / after
        ({"last_seen_before": datetime(2026, 11, 1, tzinfo=UTC)}, {"bob"}),
        ({"last_seen_after": datetime(2026, 11, 16, tzinfo=UTC)}, {"cat"}),
        # audience equals
        ({"audience": "enterprise"}, {"ann"}),
        # CRM sync state: no CRM adapter yet, so every contact has none
        # No CRM export in this sample: every lead is `pending` (docs/sources.md).
        ({"crm_sync_status": "pending"}, {"ann", "bob", "cat", "dan"}),
        ({"crm_sync_status": "none"}, set()),
        ({"crm_sync_status": "synced"}, set()),
        # filters combine with AND
        ({"text": "ann", "engaged": ("whatsapp",), "audience": "enterprise"}, {"ann"}),
    ],
)
def test_each_filter_kind(con, kwargs: dict, expected: set[str]) -> None:
    assert found(con, **kwargs) == expected


def test_text_search_ranks_and_counts_bulk(con) -> None:
    bulk = ContactFilter(has_tags=("bulk",))
    everyone = search(con, bulk).get_column("contact_id").to_list()
    assert len(everyone) == BULK
    pages = [
        search(con, bulk, limit=50, offset=o)["contact_id"].to_list() for o in range(0, BULK, 50)
    ]
    assert sum(pages, []) == everyone, "pages are stable and cover the result once"
    assert search(con, ContactFilter(text="bulk7"), limit=5).get_column("email").to_list() == [
        "bulk7@example.test"
    ]


def test_bad_filters_are_one_line_errors() -> None:
    with pytest.raises(FilterError, match="unknown channel fax"):
        ContactFilter(engaged=("fax",))
    with pytest.raises(FilterError, match="time zone"):
        ContactFilter(created_after=datetime(2026, 1, 1))


def test_saved_view_round_trips_and_runs(con, db: Path, tmp_path: Path) -> None:
    path = tmp_path / "views.json"
    flt = ContactFilter(
        has_tags=("vip",), not_tags=("beta",), created_after=datetime(2026, 9, 1, tzinfo=UTC)
    )
    save_view(path, "vip not beta", flt)
    with pytest.raises(ViewError, match="exists"):
        save_view(path, "vip not beta", flt)
    assert [v.name for v in list_views(path)] == ["vip not beta"]
    assert get_view(path, "vip not beta").filter == flt
    assert {PEOPLE[n] for n in search(con, get_view(path, "vip not beta").filter)["name"]} == {
        "bob"
    }
    with pytest.raises(ViewError, match="no saved view 'nope'"):
        get_view(path, "nope")


def test_views_cli_save_list_run_and_export(db: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    saved = runner.invoke(
        app, ["views", "save", "whatsapp people", "--db", str(db), "--channel", "whatsapp"]
    )
    assert saved.exit_code == 0, saved.output
    assert StateLayout(db).views_path.exists(), "saved views live in the state folder"
    listed = runner.invoke(app, ["views", "list", "--db", str(db)])
    assert "whatsapp people" in listed.output
    ran = runner.invoke(app, ["views", "run", "whatsapp people", "--db", str(db)])
    assert ran.exit_code == 0 and "2 contact(s) match" in ran.output
    out = tmp_path / "wa.csv"
    exported = runner.invoke(
        app, ["export", "--db", str(db), "--out", str(out), "--view", "whatsapp people"]
    )
    assert exported.exit_code == 0, exported.output
    assert {r["name"] for r in csv.DictReader(out.open(encoding="utf-8"))} == {
        "Ann Archer",
        "Dan Stone",
    }
    missing = runner.invoke(app, ["views", "run", "nope", "--db", str(db)])
    assert missing.exit_code == 1 and "no saved view 'nope'" in missing.output


def test_export_round_trips_and_neutralizes_formulas(con, tmp_path: Path) -> None:
    out = tmp_path / "people.csv"
    flt = ContactFilter(not_tags=("bulk",))
    result = export_contacts(con, flt, out, check_export_file())
    assert result.rows == 4 and not list(tmp_path.glob(".*.tmp"))
    back = read_back(out)
    expected = to_csv_frame(contacts_for_export(con, flt))
    assert back.equals(expected), "read back equals the view, as export text"
    rows = {r["contact_id"]: r for r in csv.DictReader(out.open(encoding="utf-8", newline=""))}
    cat = next(r for r in rows.values() if "HYPERLINK" in r["name"])
    assert cat["name"] == "'" + FORMULA_NAME
    assert cat["tags"] == "'-minus;beta", "a list cell is neutralized by its first character"
    assert cat["phone"] == "+14155552671", "an E.164 phone stays usable"
    assert cat["channels"] == "email;sms"
    ann = next(r for r in rows.values() if r["name"] == "Ann Archer")
    assert ann["first_seen"] == "2026-11-01T09:00:00Z"
    assert ann["identity_verified"] == "true"
    dan = next(r for r in rows.values() if r["name"] == "Dan Stone")
    assert dan["tags"] == "" and dan["email"] == ""


def test_export_over_the_bulk_cap_is_refused_and_writes_nothing(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "bulk.csv"
    result = CliRunner().invoke(
        app, ["export", "--db", str(db), "--out", str(out), "--tag", "bulk", "--max-rows", "200"]
    )
    assert result.exit_code == 1
    assert "201 contacts selected; a bulk action handles at most 200" in result.output
    assert not out.exists() and not list(tmp_path.iterdir())


def test_failed_export_check_leaves_the_previous_file(con, tmp_path: Path) -> None:
    out = tmp_path / "people.csv"
    out.write_text("previous export\n")
    with pytest.raises(ExportError, match="check failed: nope"):
        export_contacts(con, ContactFilter(has_tags=("vip",)), out, lambda _p, _f: ["nope"])
    assert out.read_text() == "previous export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["people.csv"]


def test_views_answer_the_contacts_page(con) -> None:
    ann = con.sql("SELECT * FROM contact_detail WHERE name = 'Ann Archer'").pl().row(0, named=True)
    assert ann["tags"] == ["beta", "vip"] and ann["audience"] == "enterprise"
    assert [c["channels"] for c in ann["conversations"]] == [["widget"], ["whatsapp"]]
    assert ann["crm_links"] == []
    engagement = con.sql(
        "SELECT channel, interactions FROM channel_engagement e JOIN contacts c USING (contact_id) "
        "WHERE c.name = 'Ann Archer' ORDER BY channel"
    ).fetchall()
    assert engagement == [("whatsapp", 1), ("widget", 1)]
    listed = con.sql("SELECT * FROM contact_list LIMIT 0").columns
    assert listed[:11] == [
        "contact_id",
        "name",
        "email",
        "channels",
        "audience",
        "identity_verified",
        "conversation_count",
        "last_conversation_at",
        "tags",
        "last_seen",
        "crm_sync_status",
    ]


def test_nightly_exports_written_beside_the_db(db: Path) -> None:
    folder = StateLayout(db).output_dir
    contacts = read_back(folder / "exports" / "contacts.csv")
    assert contacts.height == query(db, "SELECT count(*) FROM contacts").item()
    assert (folder / "exports" / "merge_proposals.csv").exists()
    assert (folder / "quality" / "snapshot" / "index.html").exists()
    assert (folder / "quality" / "exports" / "contacts" / "index.html").exists()
    assert (folder / "quality" / "exports" / "merge_proposals" / "index.html").exists()
    assert contacts.columns[0] == "contact_id"


def test_search_frame_types(con) -> None:
    frame = search(con, ContactFilter(text="acme"))
    assert frame.schema["tags"] == pl.List(pl.String)


def test_contact_detail_joins_crm_links(db: Path, tmp_path: Path) -> None:
    from dedup.snapshot.analyst import finish_analyst_layer

    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(db.read_bytes())
    con = duckdb.connect(str(copy))
    con.execute(
        "INSERT INTO crm_links (contact_id, system, record_id) SELECT contact_id, 'hubspot', '42' "
        "FROM contacts WHERE name = 'Bob Builder'"
    )
    con.close()
    finish_analyst_layer(copy)
    links = query(copy, "SELECT name, crm_links FROM contact_detail WHERE len(crm_links) > 0")
    assert links.get_column("name").to_list() == ["Bob Builder"]
    assert links.item(0, "crm_links")[0]["system"] == "hubspot"


def test_search_on_a_file_without_views_says_what_to_do(tmp_path: Path) -> None:
    old = tmp_path / "old.duckdb"
    con = duckdb.connect(str(old))
    con.execute("CREATE TABLE contacts AS SELECT 'contact_1' AS contact_id")
    with pytest.raises(FilterError, match="no search views; run `contacts run` once"):
        search(con, ContactFilter(audience="public"))
    con.close()
