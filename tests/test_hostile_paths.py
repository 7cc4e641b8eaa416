"""Hostile or odd paths in the exports folder: real runs publish everything else and report each.

Symlinks (to a file, to a folder, loops, to `/proc/self/environ`), FIFOs, a gzip or zip bomb,
every kind of path ingest does not read (unknown folders, misplaced files, non-day folders,
sub-folders of a day, days outside the partitions) and a file that vanishes mid-day. Nothing
outside the exports root may reach the published file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
import zlib
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from assets.partitions import export_days
from dedup.ingest.days import SOURCE_SPECS, SourceSpec, ingest_day
from dedup.ingest.readers import FileOrigin, read_export_file
from tests.conftest import SECRET, query, rec, write_jsonl

DAY = "2026-11-01"
SLACK_EXPORT = Path(__file__).parent / "data" / "slack" / "acme-export"
MARKER = "OUTSIDE-THE-EXPORTS-ROOT-7f3a"


def quarantined(db: Path) -> dict[str, str]:
    """file → reason of every whole-file quarantine row."""
    rows = query(db, "SELECT file, reason FROM quarantine WHERE row IS NULL ORDER BY file")
    return dict(rows.iter_rows())


def published_text_containing(db: Path, needle: str) -> list[str]:
    """Tables of the published file holding `needle` anywhere in a row."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = con.sql("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
        hits = []
        for schema, table in tables:
            sql = f'SELECT count(*) FROM "{schema}"."{table}" AS r WHERE r::VARCHAR LIKE ?'
            if con.execute(sql, [f"%{needle}%"]).fetchone()[0]:  # type: ignore[index]
                hits.append(f"{schema}.{table}")
        return hits
    finally:
        con.close()


def outside_world(tmp_path: Path) -> Path:
    """Files beside the exports root that a followed link would leak: a secret text, a valid
    export file and a folder of them (their records would be accepted if read)."""
    outside = tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    (outside / "secret.txt").write_text(f"{MARKER}-secret\n")
    record = rec("outside-1", email=f"{MARKER.lower()}@example.com")
    (outside / "export.jsonl").write_text(json.dumps(record) + "\n")
    (outside / "folder" / "a.jsonl").write_text(
        json.dumps({**record, "interaction_id": "outside-2"}) + "\n"
    )
    shutil.copytree(SLACK_EXPORT, outside / "slack-export")
    return outside


def test_symlinks_and_special_files_are_reported_and_never_followed(
    tmp_path: Path, exports: Path, db: Path, run
) -> None:
    outside = outside_world(tmp_path)
    day = write_jsonl(exports, DAY, "good.jsonl", [rec("good-1", email="ann@example.com")]).parent
    (day / "to-file.jsonl").symlink_to(outside / "export.jsonl")
    (day / "secret.jsonl").symlink_to(outside / "secret.txt")
    (day / "environ.jsonl").symlink_to("/proc/self/environ")  # held the identity secret
    (day / "to-folder").symlink_to(outside / "folder")
    (day / "loop.jsonl").symlink_to(day / "loop.jsonl")  # ELOOP when followed
    (day / "here").symlink_to(".")  # a folder loop
    os.mkfifo(day / "pipe.jsonl")  # opening it to read would hang the run
    (exports / "askvault" / "2026-11-02").symlink_to(outside / "folder")  # a day folder
    (exports / "sms").symlink_to(outside)  # a source folder
    # A Slack export folder (read as a unit) with a link and a FIFO inside, and one linked whole.
    slack = exports / "slack" / DAY
    slack.mkdir(parents=True)
    shutil.copytree(SLACK_EXPORT, slack / "acme-export")
    (slack / "acme-export" / "general" / "2026-11-02.json").symlink_to(outside / "secret.txt")
    (slack / "acme-export" / "leak").symlink_to(outside / "folder")
    os.mkfifo(slack / "acme-export" / "support" / "2026-11-03.json")
    (slack / "linked-export").symlink_to(outside / "slack-export")

    summary = run()

    iids = set(query(db, "SELECT interaction_id FROM interactions")["interaction_id"])
    assert "good-1" in iids and not {"outside-1", "outside-2"} & iids
    assert any(i.startswith("slack:") for i in iids), "the real Slack export is still read"
    reasons = quarantined(db)
    expected_links = [
        f"askvault/{DAY}/to-file.jsonl",
        f"askvault/{DAY}/secret.jsonl",
        f"askvault/{DAY}/environ.jsonl",
        f"askvault/{DAY}/to-folder",
        f"askvault/{DAY}/loop.jsonl",
        f"askvault/{DAY}/here",
        "askvault/2026-11-02",
        "sms",
        f"slack/{DAY}/acme-export/general/2026-11-02.json",
        f"slack/{DAY}/acme-export/leak",
        f"slack/{DAY}/linked-export",
    ]
    for file in expected_links:
        assert reasons.get(file, "").startswith("symlink not followed: "), (file, reasons)
    fifos = [f"askvault/{DAY}/pipe.jsonl", f"slack/{DAY}/acme-export/support/2026-11-03.json"]
    for file in fifos:
        assert reasons.get(file, "").startswith("not a regular file (fifo): "), (file, reasons)
    refused = ", ".join(f"'{f}'" for f in expected_links + fifos)
    assert query(db, f"SELECT raw FROM quarantine WHERE file IN ({refused})")[
        "raw"
    ].null_count() == len(expected_links + fifos)
    # Nothing from beyond the root anywhere in the published file: not the secret text, not the
    # outside records, not the identity secret from the process environment.
    assert published_text_containing(db, "ann@example.com"), "the search finds what is there"
    assert published_text_containing(db, MARKER) == []
    assert published_text_containing(db, MARKER.lower()) == []
    assert published_text_containing(db, SECRET) == []
    assert summary.interactions == len(iids)


def test_every_path_ingest_does_not_read_is_a_quarantine_row(exports: Path, db: Path, run) -> None:
    write_jsonl(exports, DAY, "good.jsonl", [rec("good-1", email="ann@example.com")])
    lost = [rec("lost-1", email="bob@example.com")]
    write_jsonl(exports, DAY, "x.jsonl", lost, source="zendesk")  # unknown source folder
    (exports / "notes.jsonl").write_text(json.dumps(lost[0]) + "\n")  # outside any source
    (exports / "askvault" / "export.jsonl").write_text(json.dumps(lost[0]) + "\n")  # no day
    write_jsonl(exports / "askvault", "x", "a.jsonl", lost, source="2026-11")  # month folder
    write_jsonl(exports, "latest", "a.jsonl", lost)  # not a day
    write_jsonl(exports, "2026-11-31", "a.jsonl", lost)  # no such date
    write_jsonl(exports, f"{DAY}/more", "a.jsonl", lost)  # a sub-folder of a day
    # Private names: never sources, never records, and no row either.
    write_jsonl(exports, DAY, "a.jsonl", lost, source="_truth")
    write_jsonl(exports, DAY, ".partial.jsonl", lost)

    run()

    assert set(query(db, "SELECT interaction_id FROM interactions")["interaction_id"]) == {"good-1"}
    reasons = quarantined(db)
    assert reasons == {
        "askvault/2026-11": "ignored path: folder not named YYYY-MM-DD: askvault/2026-11",
        "askvault/2026-11-31": "ignored path: folder not named YYYY-MM-DD: askvault/2026-11-31",
        f"askvault/{DAY}/more": f"ignored path: sub-folder of an export day: askvault/{DAY}/more",
        "askvault/export.jsonl": "ignored path: file directly under the source folder: "
        "askvault/export.jsonl (export files go in askvault/YYYY-MM-DD/)",
        "askvault/latest": "ignored path: folder not named YYYY-MM-DD: askvault/latest",
        "notes.jsonl": "ignored path: file outside any source folder: notes.jsonl",
        "zendesk": "ignored path: unknown source folder 'zendesk' (known: "
        "askvault, whatsapp, slack, email, sms, hubspot, salesforce)",
    }
    rows = query(db, "SELECT source, export_day, raw, interaction_id FROM quarantine")
    assert rows.filter(rows["raw"].is_not_null() | rows["interaction_id"].is_not_null()).height == 0
    assert (
        dict(zip(*query(db, "SELECT file, source FROM quarantine").get_columns(), strict=True))[
            f"askvault/{DAY}/more"
        ]
        == "askvault"
    )


def test_a_day_outside_the_partitions_is_reported_and_later_runs_still_publish(
    exports: Path, db: Path, run
) -> None:
    """Whatever the partitions' start (CONTACTS_PARTITIONS_START, or another default later)."""
    first = date.fromisoformat(export_days.get_first_partition_key())
    before = (first - timedelta(days=1)).isoformat()
    after = (
        date.fromisoformat(export_days.get_last_partition_key()) + timedelta(days=400)
    ).isoformat()
    write_jsonl(exports, DAY, "good.jsonl", [rec("good-1", email="ann@example.com")])
    write_jsonl(exports, before, "old.jsonl", [rec("old-1", when=f"{before}T10:00:00Z")])
    write_jsonl(exports, after, "future.jsonl", [rec("future-1")])

    run()
    write_jsonl(exports, "2026-11-02", "next.jsonl", [rec("good-2", email="cy@example.com")])
    run()  # the next night: the old folder is still there and fails nothing

    iids = set(query(db, "SELECT interaction_id FROM interactions")["interaction_id"])
    assert iids == {"good-1", "good-2"}
    reasons = quarantined(db)
    for day in (before, after):
        assert (
            f"export day {day} is outside the export-day partitions" in reasons[f"askvault/{day}"]
        )


def test_a_file_that_vanishes_while_its_day_is_read_is_quarantined(
    exports: Path, db: Path, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The day's files are listed, then read one by one: reading `a.jsonl` removes `b.jsonl`
    (as an export tool rewriting the folder does), through the source registry's reader hook
    around the real reader. The listing still names `b.jsonl` when its turn comes."""
    write_jsonl(exports, DAY, "a.jsonl", [rec("a-1", email="ann@example.com")])
    doomed = write_jsonl(exports, DAY, "b.jsonl", [rec("b-1", email="bob@example.com")])

    def read_and_remove_the_next(path: Path, origin: FileOrigin):
        if path.name == "a.jsonl" and doomed.exists():
            doomed.unlink()
        return read_export_file(path, origin)

    monkeypatch.setitem(SOURCE_SPECS, "askvault", SourceSpec(read_and_remove_the_next))
    run()
    assert set(query(db, "SELECT interaction_id FROM interactions")["interaction_id"]) == {"a-1"}
    assert quarantined(db) == {f"askvault/{DAY}/b.jsonl": "file vanished before it was read"}

    run()  # the day was staged with the file gone: read again, and nothing is left to report
    assert quarantined(db) == {}
    assert set(query(db, "SELECT interaction_id FROM interactions")["interaction_id"]) == {"a-1"}


# --- size cap: gzip and zip bombs -----------------------------------------------------------------


def gzip_of_zeros(path: Path, size: int) -> Path:
    """A gzip file inflating to `size` bytes of one repeated JSON-ish byte, written streaming."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * (1 << 20)
    with path.open("wb") as fh:
        for _ in range(size // len(block)):
            fh.write(deflate.compress(block))
        fh.write(deflate.flush())
    return path


def test_a_gzip_or_zip_bomb_is_quarantined_past_the_cap(
    exports: Path, db: Path, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = 1 << 20
    monkeypatch.setenv("CONTACTS_MAX_FILE_BYTES", str(cap))
    day = write_jsonl(exports, DAY, "good.jsonl", [rec("good-1", email="ann@example.com")]).parent
    gzip_of_zeros(day / "bomb.jsonl.gz", 64 << 20)
    (day / "big.jsonl").write_bytes(b" " * (cap + 1))  # a plain file over the cap, too
    slack = exports / "slack" / DAY
    slack.mkdir(parents=True)
    with zipfile.ZipFile(slack / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for member in SLACK_EXPORT.rglob("*.json"):
            archive.write(member, member.relative_to(SLACK_EXPORT).as_posix())
        archive.writestr("general/2026-11-09.json", b"[" + b" " * (8 << 20) + b"]")
    assert (day / "bomb.jsonl.gz").stat().st_size < 200_000

    run()

    assert set(query(db, "SELECT interaction_id FROM interactions")["interaction_id"]) == {"good-1"}
    limit = f"{cap:,} bytes (CONTACTS_MAX_FILE_BYTES); not read"
    assert quarantined(db) == {
        f"askvault/{DAY}/bomb.jsonl.gz": f"file inflates past {limit}",
        f"askvault/{DAY}/big.jsonl": f"file inflates past {limit}",
        f"slack/{DAY}/bomb.zip": f"export inflates past {limit}",
    }


PEAK_SCRIPT = """
import resource, sys, time
from pathlib import Path
from dedup.ingest.days import ingest_day
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
day = ingest_day(Path(sys.argv[1]), "askvault", "2026-11-01")
seconds = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(after - before, seconds, day.accepted.height, *day.quarantine["reason"].to_list(), sep="\\n")
"""


def test_a_gzip_bomb_costs_bounded_memory_and_time(tmp_path: Path) -> None:
    """256 MiB inflated from ~250 KB, cap 8 MiB: the day's read grows peak RSS by far less than
    the inflated size (the old reader inflated it whole: +256 MiB at least)."""
    day = tmp_path / "exports" / "askvault" / DAY
    day.mkdir(parents=True)
    gzip_of_zeros(day / "bomb.jsonl.gz", 256 << 20)
    (day / "good.jsonl").write_text(json.dumps(rec("good-1")) + "\n")
    out = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(tmp_path / "exports")],
        env={**os.environ, "CONTACTS_MAX_FILE_BYTES": str(8 << 20)},
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent.parent,
    ).stdout.splitlines()
    grew_kib, seconds, accepted, *reasons = out
    assert int(accepted) == 1
    assert reasons == [f"file inflates past {8 << 20:,} bytes (CONTACTS_MAX_FILE_BYTES); not read"]
    assert int(grew_kib) < 64 * 1024, f"peak RSS grew by {int(grew_kib) // 1024} MiB"
    assert float(seconds) < 10


# --- the read itself, when the listing was fooled ------------------------------------------------


def test_the_reader_itself_refuses_a_link_that_appeared_after_the_listing(tmp_path: Path) -> None:
    """The listing skips links; the open is the second line: a day folder or a file swapped
    for a symlink between listing and reading is still not followed (O_NOFOLLOW per component
    below the exports root), and a FIFO is refused before a byte is read."""
    exports = tmp_path / "exports"
    outside = outside_world(tmp_path)
    (exports / "askvault").mkdir(parents=True)
    (exports / "askvault" / DAY).symlink_to(outside)
    origin = FileOrigin("askvault", DAY, f"askvault/{DAY}/export.jsonl")
    result = read_export_file(exports / "askvault" / DAY / "export.jsonl", origin)
    assert result.records.height == 0
    assert result.quarantine["reason"].to_list() == [
        f"symlink not followed: askvault/{DAY}/export.jsonl"
    ]
    (exports / "askvault" / DAY).unlink()
    (exports / "askvault" / DAY).mkdir()
    os.mkfifo(exports / "askvault" / DAY / "export.jsonl")
    result = read_export_file(exports / "askvault" / DAY / "export.jsonl", origin)
    assert result.quarantine["reason"].to_list() == [
        f"not a regular file (fifo): askvault/{DAY}/export.jsonl"
    ]
    # Staged through the day: the FIFO is never listed, so the day has nothing and no error.
    assert ingest_day(exports, "askvault", DAY).files == []
