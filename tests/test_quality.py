"""Publish gates and GX suites: a tripped gate keeps the last published file and names the reason."""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from assets.resources import ContactsSettings
from contacts.runner import PipelineError
from dedup.layout import StateLayout
from dedup.service.saved_views import list_views, save_view
from dedup.service.search import ContactFilter
from quality import gx_worker
from quality.gates import GateLimits, GateMetrics, gate_failures
from quality.gx_suites import (
    SuiteSettings,
    export_report,
    snapshot_frames,
    snapshot_suites,
    validate,
)
from tests.conftest import copy_night, night_once, rec, write_jsonl

D1, D2 = "2026-11-01", "2026-11-02"
# Gates apply from the first baseline in these tiny workspaces; each test loosens the gates it
# does not trip, so the failure it sees is the one it provoked.
LOOSE = {
    "gate_min_baseline_contacts": 0,
    "gate_max_contact_change": 100.0,
    "gate_max_merge_share": 100.0,
    "gate_max_quarantine_share": 1.0,
}


def _first_night(tmp_path_factory: pytest.TempPathFactory, records: list[dict]) -> Path:
    def write(exports: Path) -> None:
        write_jsonl(exports, D1, "a.jsonl", records)

    return night_once(tmp_path_factory.mktemp("first-night"), write, **LOOSE)


# The first night (one day, LOOSE gates) each gate test starts from, run once per module; a
# test takes a private copy (`copy_night`), so `exports` and `db` are as
# `write_jsonl(exports, D1, "a.jsonl", records); run(**LOOSE)` leaves them.
@pytest.fixture(scope="module")
def two_people_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _first_night(tmp_path_factory, [rec("a", email="a@x.test"), rec("b", email="b@x.test")])


@pytest.fixture(scope="module")
def one_person_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _first_night(tmp_path_factory, [rec("a", email="a@x.test")])


@pytest.fixture
def two_people(two_people_night: Path, exports: Path, db: Path) -> bytes:
    """The published file's bytes after the copied first night of `a` and `b`."""
    copy_night(two_people_night, exports, db)
    return db.read_bytes()


@pytest.fixture
def one_person(one_person_night: Path, exports: Path, db: Path) -> bytes:
    """The published file's bytes after the copied first night of `a`."""
    copy_night(one_person_night, exports, db)
    return db.read_bytes()


def test_contact_count_jump_keeps_the_published_file(
    exports: Path, db: Path, run, two_people: bytes
) -> None:
    published = two_people
    views = StateLayout(db).views_path
    save_view(views, "widget", ContactFilter(engaged=("widget",)))
    write_jsonl(exports, D2, "a.jsonl", [rec(f"n{i}", email=f"n{i}@x.test") for i in range(3)])
    with pytest.raises(PipelineError, match=r"contact count moved 150% \(2 → 5\)"):
        run(**{**LOOSE, "gate_max_contact_change": 0.5})
    assert db.read_bytes() == published
    docs = StateLayout(db).output_dir / "quality" / "snapshot" / "index.html"
    assert docs.exists(), "the failed run leaves GX data docs to read"
    # The same night passes once the limit allows it; saved views outlive every run.
    assert run(**LOOSE).contacts == 5
    assert [v.name for v in list_views(views)] == ["widget"]


def test_merge_spike_keeps_the_published_file(
    exports: Path, db: Path, run, two_people: bytes
) -> None:
    published = two_people
    # One browser session gives both emails: the two published contacts merge.
    write_jsonl(
        exports,
        D2,
        "a.jsonl",
        [
            rec("s1", email="a@x.test", session_id="s"),
            rec("s2", email="b@x.test", session_id="s"),
        ],
    )
    with pytest.raises(PipelineError, match="1 contact ids merged away tonight, 50.0% of the 2"):
        run(**{**LOOSE, "gate_max_merge_share": 0.05})
    assert db.read_bytes() == published


def test_quarantine_spike_keeps_the_published_file(
    exports: Path, db: Path, run, one_person: bytes
) -> None:
    published = one_person
    write_jsonl(
        exports,
        D2,
        "a.jsonl",
        [rec("b", email="b@x.test"), rec("x1", "yesterday"), rec("x2", channel="fax")],
    )
    with pytest.raises(PipelineError, match="2 of 3 new records quarantined"):
        run(**{**LOOSE, "gate_max_quarantine_share": 0.05})
    assert db.read_bytes() == published


def test_cli_prints_the_gate_in_one_line(
    exports: Path, db: Path, one_person: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contacts.cli import app
    from contacts.cli import pipeline as cli

    published = one_person
    write_jsonl(exports, D2, "a.jsonl", [rec(f"n{i}", email=f"n{i}@x.test") for i in range(4)])

    # `contacts run` uses default settings, whose minimum baseline (1,000 contacts) this tiny
    # workspace is below; the test tightens them the way a deployment's resource config would.
    def tight(exports_: Path, db_: Path, region: str, engine: str = "") -> ContactsSettings:
        return ContactsSettings(
            exports_dir=str(exports_),
            db_path=str(db_),
            default_region=region,
            engine=engine,
            gate_min_baseline_contacts=0,
            gate_max_contact_change=0.5,
        )

    monkeypatch.setattr(cli, "_settings", tight)
    result = CliRunner().invoke(app, ["run", "--exports", str(exports), "--db", str(db)])
    assert result.exit_code == 1
    line = " ".join(result.output.split())
    assert re.search(
        r"error: nothing published; check '(publish_gates|gx_quality_suites)' failed: "
        r"contact count moved 400% \(1 → 5\)",
        line,
    ), line
    assert db.read_bytes() == published


@pytest.mark.parametrize(
    ("metrics", "reasons"),
    [
        # no baseline (first run): nothing to compare, nothing fails
        (GateMetrics(None, 900_000, 0, 1_000_000, 900_000), 0),
        # a baseline below the minimum is not compared either
        (GateMetrics(10, 1_000, 5, 2_000, 1_000), 0),
        # within every limit
        (GateMetrics(10_000, 12_000, 100, 5_000, 10), 0),
        # every gate at once
        (GateMetrics(10_000, 30_000, 1_000, 5_000, 1_000), 3),
    ],
)
def test_gate_rules(metrics: GateMetrics, reasons: int) -> None:
    assert len(gate_failures(metrics, GateLimits())) == reasons


def test_gx_snapshot_suites_name_bad_values(tmp_path: Path) -> None:
    settings = SuiteSettings(audiences=("public", "enterprise"))
    con = duckdb.connect()
    frames = {
        "interactions": pl.DataFrame(
            {
                "interaction_id": ["i1", "i1", None],
                "contact_id": ["c1", "c1", "c2"],
                "occurred_at": ["2026-11-01", "2026-11-01", "2026-11-01"],
                "channel": ["widget", "fax", "sms"],
                "phone_e164": ["+14155552671", "4155552671", None],
                "email_norm": ["a@x.test", "not an email", None],
                "attribute_keys": [0, 51, 2],
            }
        ),
        "contacts": pl.DataFrame(
            {
                "contact_id": ["c1", "c2"],
                "phone": ["+14155552671", None],
                "email_norm": ["a@x.test", None],
                "audience": ["public", "vip"],
                "tag_count": [1, 60],
                "attribute_keys": [0, 0],
                "interaction_count": [2, 1],
            }
        ),
        "merge_proposals": pl.DataFrame(
            {
                "proposal_id": ["p1"],
                "contact_id_l": ["c1"],
                "contact_id_r": ["c2"],
                "match_probability": [1.5],
                "status": ["maybe"],
            }
        ),
        "snapshot_counts": pl.DataFrame(
            {
                "interactions": [3],
                "distinct_interaction_ids": [2],
                "contacts": [2],
                "distinct_contact_ids": [2],
                "interactions_counted_on_contacts": [3],
                "contacts_with_interactions": [2],
                "interactions_in_last_run": [3],
                "pending_proposals_on_dead": [0],
            }
        ),
    }
    con.close()
    report = validate(frames, snapshot_suites(settings), tmp_path / "docs")
    failed = {(f.suite, f.expectation, f.column) for f in report.failures}
    assert failed == {
        ("interactions", "expect_column_values_to_not_be_null", "interaction_id"),
        ("interactions", "expect_column_values_to_be_unique", "interaction_id"),
        ("interactions", "expect_column_values_to_be_in_set", "channel"),
        ("interactions", "expect_column_values_to_match_regex", "phone_e164"),
        ("interactions", "expect_column_values_to_match_regex", "email_norm"),
        ("interactions", "expect_column_values_to_be_between", "attribute_keys"),
        ("contacts", "expect_column_values_to_be_in_set", "audience"),
        ("contacts", "expect_column_values_to_be_between", "tag_count"),
        ("merge_proposals", "expect_column_values_to_be_between", "match_probability"),
        ("merge_proposals", "expect_column_values_to_be_in_set", "status"),
        ("snapshot_counts", "expect_column_pair_values_to_be_equal", "interactions"),
    }
    assert (tmp_path / "docs" / "index.html").exists()


def test_data_docs_render_in_full_on_every_validation_of_a_process(tmp_path: Path) -> None:
    # GX compiles its page templates once per process here (quality.gx_suites keeps the Jinja
    # bytecode); a broken cache would not fail the validation, only leave pages unrendered.
    frame = pl.DataFrame({"contact_id": ["c1", "c2"], "phone": ["+14155552671", "555"]})
    for night in ("first", "second"):
        docs = tmp_path / night
        report = export_report(frame, "contact_id", frozenset({"phone"}), "contacts", docs)
        assert [f.column for f in report.failures] == ["phone"]
        assert "export_contacts" in (docs / "index.html").read_text()
        (page,) = (docs / "validations").rglob("*.html")
        assert "values must match this regular expression" in page.read_text()


def test_snapshot_sample_is_repeatable_capped_and_keeps_duplicates_together(
    tmp_path: Path,
) -> None:
    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    con.execute(
        """
        CREATE TABLE interactions AS
        SELECT 'i' || (r % 500) AS interaction_id, 'c' || (r % 300) AS contact_id,
               TIMESTAMP '2026-11-01' AS occurred_at, 'widget' AS channel,
               NULL::VARCHAR AS phone_e164, NULL::VARCHAR AS email_norm,
               '{"k": 1}'::JSON AS attributes
        FROM range(1000) t(r);
        CREATE TABLE contacts AS
        SELECT 'c' || r AS contact_id, NULL::VARCHAR AS phone, NULL::VARCHAR AS email_norm,
               'public' AS audience, ['vip'] AS tags, '{}'::JSON AS attributes,
               1 AS interaction_count
        FROM range(300) t(r);
        CREATE TABLE merge_proposals (proposal_id VARCHAR, contact_id_l VARCHAR,
            contact_id_r VARCHAR, match_probability DOUBLE, status VARCHAR);
        CREATE TABLE pipeline_runs AS SELECT 1 AS run_number, 1000 AS interactions;
        """
    )
    settings = SuiteSettings(audiences=("public",), sample_rows=100)
    first = snapshot_frames(con, settings)
    sample = first["interactions"]
    assert 50 <= sample.height <= 150 and 50 <= first["contacts"].height <= 150
    assert sample.equals(snapshot_frames(con, settings)["interactions"])
    # Every id occurs twice in the table: a sampled one brings its twin, so GX sees duplicates.
    table = con.sql("SELECT interaction_id, count(*) AS n FROM interactions GROUP BY 1").pl()
    counted = sample.group_by("interaction_id").len().join(table, on="interaction_id")
    assert (counted["len"] == counted["n"]).all()
    everything = snapshot_frames(con, SuiteSettings(audiences=("public",), sample_rows=5000))
    assert everything["interactions"].height == 1000 and everything["contacts"].height == 300
    con.close()


def _exit_unless_in(pid: int) -> str:
    if os.getpid() != pid:
        os._exit(3)  # the worker dies mid-call, as when the OOM killer takes it
    return "inline"


def test_gx_worker_checks_in_its_own_process_where_the_caller_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    gx_worker.warm()
    assert gx_worker.run(os.getpid) != os.getpid()
    frame = pl.DataFrame({"contact_id": ["c1", "c2"], "phone": ["+14155552671", "555"]})
    report = gx_worker.run(
        export_report, frame, "contact_id", frozenset({"phone"}), "contacts", Path("docs")
    )
    assert [(f.suite, f.column, f.unexpected) for f in report.failures] == [
        ("export_contacts", "phone", 1)
    ]
    # A relative folder means the caller's working directory, not the one the worker began in.
    assert (tmp_path / "docs" / "index.html").is_file()


def test_a_dead_gx_worker_leaves_the_check_to_the_caller() -> None:
    # Its own worker without the GX import: the process-wide one stays warm for other tests.
    worker = gx_worker.Worker(warm_up=None)
    worker.start()
    assert worker.run(_exit_unless_in, os.getpid()) == "inline"
    assert not worker.started
