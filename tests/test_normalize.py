"""Normalization rules of SPEC, as tables: raw value → normalized value (or null)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from dedup.identity.normalize import (
    classify_phone,
    email_norm,
    name_norm,
    normalize_identifiers,
    parse_phone,
    parse_phones,
    phone_lookup,
    phone_lookup_name,
    read_phone_lookup,
    write_phone_lookup,
)

ROOT = Path(__file__).resolve().parent.parent

EMAILS = [
    # SPEC: case and whitespace
    ("  Jane@Example.COM ", "jane@example.com"),
    # `Name <addr>` reduced to addr
    ("Jane Doe <jane@example.com>", "jane@example.com"),
    # +tag stripped on every domain
    ("jane+news@example.com", "jane@example.com"),
    ("jane+a+b@example.org", "jane@example.org"),
    # gmail dots dropped; googlemail is gmail
    ("J.A.N.E@gmail.com", "jane@gmail.com"),
    ("j.ane+x@googlemail.com", "jane@gmail.com"),
    # dots kept elsewhere
    ("j.ane@example.com", "j.ane@example.com"),
    # invalid: no @, no dot in domain, spaces inside, empty local after tag strip
    ("not-an-email", None),
    ("jane@localhost", None),
    ("ja ne@example.com", None),
    ("+tag@example.com", None),
    ("jane@@example.com", None),
    ("", None),
    (None, None),
]


@pytest.mark.parametrize(("raw", "expected"), EMAILS)
def test_email_norm(raw, expected) -> None:
    got = pl.select(email_norm(pl.lit(raw, dtype=pl.String))).item()
    assert got == expected


PHONES = [
    # national formats use the default region
    ("(415) 555-2671", "US", "+14155552671"),
    ("415.555.2671", "US", "+14155552671"),
    ("+1 415 555 2671", "US", "+14155552671"),
    # a configured region changes how national numbers read
    ("020 7946 0958", "GB", "+442079460958"),
    # SPEC: a possible number keeps its E.164 form even when its range is not known as assigned
    # (UK drama range, US test number, an unknown Israeli range)
    ("+44 7700 900123", "US", "+447700900123"),
    ("+1 555 000 1111", "US", "+15550001111"),
    ("+972 98 765 4321", "US", "+972987654321"),
    # SPEC: WhatsApp quirks canonicalized (Mexico's old mobile 1; Brazil's missing ninth digit)
    ("+52 1 55 1234 5678", "US", "+525512345678"),
    ("+55 11 8765-4321", "US", "+5511987654321"),
    ("+55 11 3765-4321", "US", "+551137654321"),  # a landline: no ninth digit
    # no possible number gives null, never an exception: a local number without its area code,
    # form fillers, text, an unknown country code, a run that no country numbers like this
    ("555-0100", "US", None),
    ("000-000-0000", "US", None),
    ("123-456-7890", "US", None),
    ("call me", "US", None),
    ("+999 123", "US", None),
    ("1" * 200, "US", None),
]


@pytest.mark.parametrize(("raw", "region", "expected"), PHONES)
def test_parse_phone(raw, region, expected) -> None:
    assert parse_phone(raw, region) == expected


def test_the_validity_flag_says_whether_libphonenumber_knows_the_range() -> None:
    assert classify_phone("(415) 555-2671", "US") == ("+14155552671", True)
    assert classify_phone("+44 7700 900123", "US") == ("+447700900123", False)
    assert classify_phone("call me", "US") == (None, None)


def test_whatsapp_digits_carry_country_code_and_raw_is_kept() -> None:
    frame = pl.DataFrame(
        {
            "email": [None, None],
            "name": [None, None],
            "phone": ["447911123456", "447911123456"],
            "channel": ["whatsapp", "sms"],
        },
        schema=dict.fromkeys(["email", "name", "phone", "channel"], pl.String),
    )
    out = normalize_identifiers(frame)
    # On WhatsApp the digits are an international number; on SMS they are a (bad) US number.
    assert out.get_column("phone_e164").to_list() == ["+447911123456", None]
    assert out.get_column("phone").to_list() == ["447911123456", "447911123456"]


def test_a_saved_phone_lookup_is_reused_and_covers_only_what_remains(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "email": [None] * 4,
            "name": [None] * 4,
            "phone": ["(415) 555-2671", "415.555.2671", "447911123456", "12"],
            "channel": ["widget", "sms", "whatsapp", "widget"],
        },
        schema=dict.fromkeys(["email", "name", "phone", "channel"], pl.String),
    )
    first = normalize_identifiers(frame)
    lookup = phone_lookup(first)
    # One entry per cleaned text, the invalid one included (it is not parsed again either), with
    # the validity flag beside the E.164 form (SPEC: a possible number is kept, flagged).
    assert lookup.rows() == [
        ("+447911123456", "+447911123456", True),
        ("12", None, None),
        ("4155552671", "+14155552671", True),
    ]
    write_phone_lookup(tmp_path, "US", lookup)
    assert read_phone_lookup(tmp_path, "US").equals(lookup)
    assert read_phone_lookup(tmp_path, "GB") is None  # another region has its own
    # A known entry is taken as it is, not parsed again: a planted value shows it was used.
    planted = lookup.with_columns(
        pl.when(pl.col("phone_key") == "4155552671")
        .then(pl.lit("+19999999999"))
        .otherwise(pl.col("phone_e164"))
        .alias("phone_e164")
    )
    again = normalize_identifiers(frame, known_phones=planted)
    assert again.get_column("phone_e164").to_list() == [
        "+19999999999",
        "+19999999999",
        "+447911123456",
        None,
    ]
    # Texts the lookup lacks are parsed; entries of texts gone from the data are dropped.
    fewer = normalize_identifiers(frame.tail(2), known_phones=lookup.head(1))
    assert fewer.get_column("phone_e164").to_list() == ["+447911123456", None]
    assert phone_lookup(fewer).get_column("phone_key").to_list() == ["+447911123456", "12"]
    # A damaged file costs the parses again, never the run.
    (tmp_path / phone_lookup_name("US")).write_bytes(b"not parquet")
    assert read_phone_lookup(tmp_path, "US") is None


NAMES = [
    ("  José   ÁLVAREZ ", "jose alvarez"),  # accents folded, case and spacing
    ("ＪＯＨＮ", "john"),  # full-width letters (NFKC)
    ("Anne-Marie O'Neil", "anne-marie o'neil"),
    ("\t", None),
    ("<script>alert(1)</script>", "script alert 1 script"),
]


@pytest.mark.parametrize(("raw", "expected"), NAMES)
def test_name_norm(raw, expected) -> None:
    assert pl.select(name_norm(pl.lit(raw, dtype=pl.String))).item() == expected


def test_phones_parse_alike_in_worker_processes() -> None:
    # The path a 10M-interaction night takes (one process per core), forced on a short list.
    values = ["(415) 555-2671", "+44 7911 123456", "12", "4155552671", "+1 202 555 0143", "x"]
    in_process = parse_phones(values, "US", parallel_from=10**9)
    assert in_process == [
        "+14155552671",
        "+447911123456",
        None,
        "+14155552671",
        "+12025550143",
        None,
    ]
    assert parse_phones(values, "US", parallel_from=1) == in_process


def test_worker_processes_do_not_rerun_the_callers_script(tmp_path: Path) -> None:
    # A script without an `if __name__ == "__main__":` guard: spawn would run it again in each
    # worker (dedup.processes hides it while the workers start).
    script = tmp_path / "unguarded.py"
    script.write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        "print('script ran', flush=True)\n"
        "from dedup.identity.normalize import parse_phones\n"
        "print(parse_phones(['4155552671', 'x'] * 2, 'US', parallel_from=1))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.splitlines() == [
        "script ran",
        "['+14155552671', None, '+14155552671', None]",
    ]
