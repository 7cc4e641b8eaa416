"""Bad input never stops a run and is never silently dropped: each case lands in quarantine."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dedup.ingest.days import ingest_day

DAY = "2026-11-01"
GOOD = {
    "interaction_id": "good-1",
    "channel": "widget",
    "occurred_at": "2026-11-01T10:00:00Z",
    "email": "a@x.com",
}


def _day(exports: Path) -> Path:
    folder = exports / "askvault" / DAY
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _ingest(exports: Path):
    result = ingest_day(exports, "askvault", DAY)
    return result.accepted, result.quarantine


def _line(record: dict) -> bytes:
    return (json.dumps(record) + "\n").encode()


# Each case: file name, bytes (with one GOOD record around the bad one), expected reason fragment,
# expected quarantine row (None for a whole-file problem).
CASES = [
    (
        "truncated.jsonl",
        _line(GOOD) + b'{"interaction_id": "t-2", "channel": "wid',
        "invalid JSON",
        2,
    ),
    (
        "not-utf8.jsonl",
        _line(GOOD)
        + b'{"interaction_id": "u-2", "channel": "widget", "occurred_at": "2026-11-01T10:00:00Z", "name": "\xff\xfe"}\n',
        "not valid UTF-8",
        2,
    ),
    (
        "missing-id.jsonl",
        _line({"channel": "sms", "occurred_at": "2026-11-01T10:00:00Z"}) + _line(GOOD),
        "missing interaction_id",
        1,
    ),
    (
        "bad-time.jsonl",
        _line(GOOD) + _line({**GOOD, "interaction_id": "b-2", "occurred_at": "yesterday"}),
        "unparseable occurred_at 'yesterday'",
        2,
    ),
    (
        "bad-channel.jsonl",
        _line(GOOD) + _line({**GOOD, "interaction_id": "c-2", "channel": "fax"}),
        "unknown channel 'fax'",
        2,
    ),
    (
        "attr-list.jsonl",
        _line(GOOD) + _line({**GOOD, "interaction_id": "a-2", "attributes": [1, 2]}),
        "attributes must be a JSON object",
        2,
    ),
    (
        "attr-text.jsonl",
        _line(GOOD) + _line({**GOOD, "interaction_id": "a-3", "attributes": "{not json"}),
        "attributes is not valid JSON",
        2,
    ),
    (
        "attr-51.jsonl",
        _line(GOOD)
        + _line({**GOOD, "interaction_id": "a-4", "attributes": {f"k{i}": i for i in range(51)}}),
        "attributes has 51 keys (limit 50)",
        2,
    ),
    (
        "huge-line.jsonl",
        _line(GOOD) + _line({**GOOD, "interaction_id": "h-2", "name": "x" * 5_000_000}),
        "record too large",
        2,
    ),
    ("not-object.jsonl", _line(GOOD) + b"[1, 2, 3]\n", "not an object", 2),
    (
        "name-object.jsonl",
        _line(GOOD) + _line({**GOOD, "interaction_id": "n-2", "name": {"first": "A"}}),
        "field 'name' must be text",
        2,
    ),
    (
        "fake.parquet",
        b"this is plain text pretending to be parquet\n",
        "not a readable Parquet file",
        None,
    ),
    ("notes.txt", b"hello\n", "unsupported file type", None),
]


@pytest.mark.parametrize(("name", "content", "reason", "row"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_quarantined_and_good_records_kept(
    exports: Path, name, content, reason, row
) -> None:
    folder = _day(exports)
    (folder / name).write_bytes(content)
    (folder / "zz-good.jsonl").write_bytes(_line({**GOOD, "interaction_id": "other-good"}))
    accepted, quarantine = _ingest(exports)
    assert quarantine.height == 1, quarantine
    q = quarantine.row(0, named=True)
    assert reason in q["reason"]
    assert q["row"] == row
    assert q["file"] == f"askvault/{DAY}/{name}"
    assert q["source"] == "askvault"
    assert q["raw"] is None or len(q["raw"]) <= 64 * 1024
    expected_good = {"other-good"} | ({"good-1"} if b"good-1" in content else set())
    assert set(accepted.get_column("interaction_id")) == expected_good


def test_quarantine_keeps_interaction_id_when_readable(exports: Path) -> None:
    (_day(exports) / "x.jsonl").write_bytes(_line({**GOOD, "channel": "fax"}))
    _, quarantine = _ingest(exports)
    assert quarantine.get_column("interaction_id").to_list() == ["good-1"]


def test_csv_rows_are_line_numbers_and_lists_split(exports: Path) -> None:
    (_day(exports) / "a.csv").write_text(
        "interaction_id,channel,occurred_at,email,contact_tags\n"
        "c1,EMAIL,2026-11-01T09:00:00+02:00,a@b.com,vip; beta\n"
        "c2,sms,1730000000,,\n"
        "c3,fax,2026-11-01T09:00:00Z,,\n"
    )
    accepted, quarantine = _ingest(exports)
    rows = (
        accepted.sort("interaction_id")
        .select("interaction_id", "channel", "row", "contact_tags", "email")
        .to_dicts()
    )
    assert rows == [
        {
            "interaction_id": "c1",
            "channel": "email",
            "row": 2,
            "contact_tags": ["vip", "beta"],
            "email": "a@b.com",
        },
        {"interaction_id": "c2", "channel": "sms", "row": 3, "contact_tags": None, "email": None},
    ]
    assert (
        accepted.filter(pl.col("interaction_id") == "c1").get_column("occurred_at").dt.hour().item()
        == 7
    )
    assert quarantine.select("row", "reason").to_dicts() == [
        {"row": 4, "reason": "unknown channel 'fax'"}
    ]


def test_csv_with_multiline_field_and_bad_bytes_uses_careful_reader(exports: Path) -> None:
    (_day(exports) / "a.csv").write_bytes(
        b"interaction_id,channel,occurred_at,name\n"
        b'c1,widget,2026-11-01T09:00:00Z,"two\nlines"\n'
        b"c2,widget,2026-11-01T09:00:00Z,\xff\n"
        b"c3,widget,2026-11-01T09:00:00Z\n"
        b"c4,widget,2026-11-01T09:00:00Z,ok\n"
    )
    accepted, quarantine = _ingest(exports)
    assert accepted.select("interaction_id", "row").sort("row").rows() == [("c1", 2), ("c4", 6)]
    assert quarantine.select("row", "reason").sort("row").rows() == [
        (4, "not valid UTF-8"),
        (5, "expected 4 fields, got 3"),
    ]


def test_csv_missing_required_column_quarantines_file(exports: Path) -> None:
    (_day(exports) / "a.csv").write_text("interaction_id,occurred_at\nx,2026-11-01T00:00:00Z\n")
    accepted, quarantine = _ingest(exports)
    assert accepted.height == 0
    assert quarantine.select("row", "reason").rows() == [
        (None, "CSV header lacks required column(s): channel")
    ]


def test_gzip_and_truncated_gzip(exports: Path) -> None:
    folder = _day(exports)
    body = b"".join(_line({**GOOD, "interaction_id": f"g{i}"}) for i in range(200))
    (folder / "a.jsonl.gz").write_bytes(gzip.compress(body))
    other = b"".join(_line({**GOOD, "interaction_id": f"z{i}"}) for i in range(2000))
    broken = gzip.compress(other)
    (folder / "b.jsonl.gz").write_bytes(broken[: len(broken) // 2])
    accepted, quarantine = _ingest(exports)
    ids = set(accepted.get_column("interaction_id"))
    assert {f"g{i}" for i in range(200)} <= ids
    assert any(i.startswith("z") for i in ids), "records before the cut are kept"
    whole_file = quarantine.filter(pl.col("row").is_null())
    assert whole_file.height == 1 and "gzip stream is damaged" in whole_file.item(0, "reason")


def test_parquet_native_timestamp_struct_attributes_and_lists(exports: Path) -> None:
    table = pa.table(
        {
            "interaction_id": ["p1", "p2"],
            "channel": ["api", "widget"],
            "occurred_at": pa.array(
                [1_762_000_000_000_000, 1_762_000_100_000_000], pa.timestamp("us", "UTC")
            ),
            "attributes": pa.array([{"city": "Oslo"}, None], pa.struct([("city", pa.string())])),
            "contact_tags": [["vip"], None],
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    (_day(exports) / "a.parquet").write_bytes(buf.getvalue())
    accepted, quarantine = _ingest(exports)
    assert quarantine.height == 0
    got = (
        accepted.sort("interaction_id")
        .select("interaction_id", "attributes", "contact_tags", "row")
        .rows()
    )
    assert got == [("p1", '{"city":"Oslo"}', ["vip"], 1), ("p2", None, None, 2)]


def test_epoch_seconds_in_json_number(exports: Path) -> None:
    (_day(exports) / "a.jsonl").write_bytes(
        _line({**GOOD, "occurred_at": 1_762_000_000, "phone": 4155552671})
    )
    accepted, _ = _ingest(exports)
    row = accepted.row(0, named=True)
    assert row["occurred_at"].year == 2025 and row["phone"] == "4155552671"


PARITY_RECORDS = [
    {
        **GOOD,
        "phone": 4155552671,
        "contact_tags": ["vip", "beta"],
        "attributes": {"a": 1, "b": [1, 2]},
    },
    {
        **GOOD,
        "interaction_id": "p2",
        "contact_tags": "x; y;;",
        "attributes": '{"c": true}',
        "plan": True,
    },
    {
        **GOOD,
        "interaction_id": "p3",
        "occurred_at": 1762000000,
        "user_id": 12.5,
        "contact_tags": [],
    },
    {**GOOD, "interaction_id": "p4", "name": {"first": "A"}},
    {**GOOD, "interaction_id": "p5", "contact_tags": [1, 2]},
    {**GOOD, "interaction_id": "p6", "attributes": [1], "email": None, "conversation_tags": None},
]


def test_jsonl_fast_and_careful_paths_agree(tmp_path: Path) -> None:
    from dedup.ingest.fast_readers import jsonl_fast
    from dedup.ingest.readers import FileOrigin, _frame_from_columns, _parse_jsonl, _Rejects

    path = tmp_path / "a.jsonl"
    data = b"".join(_line(r) for r in PARITY_RECORDS)
    path.write_bytes(data)
    fast = jsonl_fast(data)
    assert fast is not None, "a well-formed file takes the fast path"
    fast_frame, fast_bad = fast
    rejects = _Rejects(FileOrigin("askvault", DAY, "a.jsonl"))
    slow_frame = _frame_from_columns(*_parse_jsonl(data, rejects))
    assert fast_frame.select(slow_frame.columns).to_dicts() == slow_frame.to_dicts()
    assert fast_bad.rows() == [(r["row"], r["reason"]) for r in rejects.rows]
    assert fast_bad.rows() == [
        (4, "field 'name' must be text, got dict"),
        (5, "field 'contact_tags' must be a list of strings"),
    ]


def test_good_lines_of_a_damaged_jsonl_file_read_as_the_careful_reader_reads_them() -> None:
    """A file the fast path refuses as a whole (a truncated record, a blank line, bad bytes, a
    JSON array) still has its good lines read by it: same values, same rejects, same rows."""
    from dedup.ingest.readers import (
        FileOrigin,
        _frame_from_columns,
        _parse_jsonl,
        _read_jsonl_lines,
        _Rejects,
    )

    damaged = [b'{"interaction_id": "t-1", "chan', b"", b"[1, 2]", b'{"name": "\xff"}']
    lines = [_line(r).rstrip(b"\n") for r in PARITY_RECORDS]
    data = b"\n".join(lines[:2] + damaged[:2] + lines[2:4] + damaged[2:] + lines[4:]) + b"\n"
    salvaged = _Rejects(FileOrigin("askvault", DAY, "a.jsonl"))
    frame = _read_jsonl_lines(data, salvaged)
    careful = _Rejects(FileOrigin("askvault", DAY, "a.jsonl"))
    expected = _frame_from_columns(*_parse_jsonl(data, careful))
    assert frame.select(expected.columns).to_dicts() == expected.to_dicts()
    # The same rejects; a record's raw text is its line as the file has it (the fast path's),
    # where the careful reader re-serializes the object it parsed.
    assert [{**r, "raw": None} for r in salvaged.rows] == [{**r, "raw": None} for r in careful.rows]
    assert salvaged.rows[3]["raw"] == lines[3].decode()
    assert [(r["row"], r["reason"][:14]) for r in salvaged.rows] == [
        (3, "invalid JSON: "),
        (7, "record is a JS"),
        (8, "not valid UTF-"),
        (6, "field 'name' m"),
        (9, "field 'contact"),
    ]
    assert frame.get_column("row").to_list() == [1, 2, 5, 10]


def test_days_staged_side_by_side_equal_days_staged_one_at_a_time(tmp_path: Path) -> None:
    from dedup.ingest.days import stage_days

    exports = tmp_path / "exports"
    days = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
    for n, day in enumerate(days):
        folder = exports / "askvault" / day
        folder.mkdir(parents=True)
        records = [{**GOOD, "interaction_id": f"{day}-{i}"} for i in range(50 + n)]
        (folder / "a.jsonl").write_bytes(b"".join(_line(r) for r in records) + b'{"cut')
        (folder / "b.csv").write_text("interaction_id,channel,occurred_at\nx,fax,2026\n")
    staged = {}
    for workers in (1, 2):
        root = tmp_path / f"staging-{workers}"
        results = list(
            stage_days(exports, "askvault", days, lambda d, r=root: r / d, workers=workers)
        )
        assert [r.day for r in results] == days
        staged[workers] = {
            (day, name): pl.read_parquet(root / day / f"{name}.parquet")
            for day in days
            for name in ("accepted", "quarantine")
        }
    for key, frame in staged[1].items():
        assert frame.equals(staged[2][key]), key
    assert staged[2][(days[3], "accepted")].height == 53
    assert staged[2][(days[3], "quarantine")].height == 2
