"""The mail adapter on real mail nobody here wrote (tests/data/real/email/, origins in the README).

Per file: the contacts it yields (address and decoded name), what it skips and why, what it
quarantines. Automated reports (spam-complaint feedback, bounces, read receipts, auto-replies,
list and bulk mail) never become contacts. Then the `From:` shapes the issue found, the mbox
separator rule, and a whole export day through `ingest_day`.
"""

from __future__ import annotations

import mailbox
import shutil
from pathlib import Path

import pytest

from dedup.ingest.adapters.base import SourceConfig
from dedup.ingest.adapters.mail import read_mail, sender, split_mbox
from dedup.ingest.days import ingest_day
from dedup.ingest.readers import FileOrigin, ReadResult

REAL = Path(__file__).parent / "data" / "real" / "email"
CONFIG = SourceConfig(staff_domains=("acme.io",), workspace_emails=("support@acme.io",))
DATE_Q = "message without a readable Date: header"


def read(rel: str, path: Path | None = None) -> ReadResult:
    return read_mail(path or REAL / rel, FileOrigin("email", "2026-11-01", rel), CONFIG)


def contacts(out: ReadResult) -> list[tuple[str, str | None]]:
    return [(r["email"], r["name"]) for r in out.records.to_dicts()]


def quarantined(out: ReadResult) -> list[tuple[int | None, str]]:
    return [(r["row"], r["reason"]) for r in out.quarantine.to_dicts()]


GORAN = ("goran@domain.com", "Göran Lastname")
ANDY = ("andy@example.com", "Andy Grunwald")

# (file, contacts in order, skipped, quarantined). Why each group is here is in its comment.
CORPUS = [
    # RFC 822 comment names and plain mail from CPython's email test data.
    ("cpython/msg_01.eml", [("bbb@ddd.com", "John X. Doe")], {}, []),
    ("cpython/msg_27.eml", [("aperson@dom.ain", "Anne P. Erson")], {}, []),
    ("cpython/msg_46.eml", [("sender@example.net", "Sender")], {}, []),
    # Mailman's `-request` address sending a digest: list software, not a person.
    ("cpython/msg_02.eml", [], {"list_address": 1}, []),
    # Bounces: delivery-status reports, one from `foo` (no domain), one from `<>` (no address),
    # one `multipart/report` without a report-type (skipped as a report all the same).
    ("cpython/msg_05.eml", [], {"delivery_report": 1}, []),
    ("cpython/msg_25.eml", [], {"delivery_report": 1}, []),
    ("cpython/msg_43.eml", [], {"delivery_report": 1}, []),
    ("cpython/msg_16.eml", [], {"automated_report": 1}, []),
    # mail-parser's real-world mails: the display name that is an address (phishing), the
    # `alice@example.com <bob@example.com>` case, RFC 2047 names in GB2312 and ISO-8859-1.
    ("mail-parser/mail_test_15.headers.eml", [], {"automated_sender": 1}, []),
    ("mail-parser/mail_test_19.eml", [("bob@example.com", None)], {}, []),
    ("mail-parser/mail_test_17.eml", [("notificaccion-clientes@bbva.mx", None)], {}, []),
    ("mail-parser/mail_test_18.eml", [("comma.name@example.com", "LastßlName, FirstName")], {}, []),
    ("mail-parser/mail_test_12.eml", [("baoguan@hotmail.com", "张先生")], {}, []),
    ("mail-parser/mail_test_3.eml", [("Oneil.844@randtelekom.com.tr", "Ava Oneil")], {}, []),
    ("mail-parser/mail_test_9.eml", [("zyb@sgis.com.cn", "xwfcpggy")], {}, []),
    ("mail-parser/mail_test_14.eml", [("example@example.com", None)], {}, []),
    ("mail-parser/mail_test_16.eml", [], {"bulk_mail": 1}, []),  # GTUBE, `Precedence: junk`
    ("mail-parser/mail_malformed_2.eml", [], {"delivery_report": 1}, []),
    # Sisimai's bounce corpus: ARF spam complaints from ordinary-looking addresses, DSNs, plain
    # postmaster bounces, RFC 3834 auto-replies, and a real mbox of 37 bounces in which the one
    # contact is a person forwarding a bounce by hand.
    ("sisimai/arf-01.eml", [], {"feedback_report": 1}, []),
    ("sisimai/arf-11.eml", [], {"feedback_report": 1}, []),
    ("sisimai/rfc3464-01.eml", [], {"delivery_report": 1}, []),
    ("sisimai/rfc3464-38.eml", [], {"automated_sender": 1}, []),
    ("sisimai/rfc3464-39.eml", [], {"automated_sender": 1}, []),
    ("sisimai/rfc3834-01.eml", [], {"auto_reply": 1}, []),
    ("sisimai/rfc3834-05.eml", [], {"auto_reply": 1}, []),
    ("sisimai/mbox-1.mbox", [], {"delivery_report": 1}, []),
    (
        "sisimai/mbox-0.mbox",
        [("original-sender@example.jp", None)],
        {"automated_sender": 1, "delivery_report": 35},
        [],
    ),
    # A read receipt (constructed from RFC 8098's example: no public file found).
    ("constructed/mdn-rfc8098.eml", [], {"disposition_report": 1}, []),
    # Pipermail archives (`andy at example.com (Andy Grunwald)`), an encoded name in the comment,
    # raw Latin-1 bytes in the address and a UTF-8-declared word holding Latin-1.
    (
        "perceval/pipermail_2015_november.mbox",
        [ANDY, ("jgb@gsyc.es", "Jesus M. Gonzalez-Barahona"), ANDY, ANDY],
        {},
        [],
    ),
    ("perceval/pipermail_2016_march.mbox", [("gpoo@example.com", "Germán Poo-Caamaño")], {}, []),
    (
        "perceval/mbox_iso8859_encoding.mbox",
        [("lucíacharlie@wellsfargo.com", "Lucía Charlie")],
        {},
        [],
    ),
    (
        "perceval/mbox_no_fields.mbox",
        [GORAN, GORAN, GORAN, ("goran@domain.com", None)],
        {},
        [(3, DATE_Q), (5, DATE_Q)],
    ),
    # Messages delivered through mailing lists (`Precedence: list` / `bulk`).
    ("perceval/mbox_complex.mbox", [], {"bulk_mail": 2}, []),
    ("perceval/mbox_unknown_encoding.mbox", [], {"bulk_mail": 1}, []),
]


@pytest.mark.parametrize(("rel", "expected", "skipped", "quarantine"), CORPUS)
def test_real_mail_file(
    rel: str, expected: list, skipped: dict[str, int], quarantine: list
) -> None:
    out = read(rel)
    assert contacts(out) == expected
    assert out.skipped == skipped
    assert quarantined(out) == quarantine
    for name in out.records.get_column("name").drop_nulls():
        assert "\ufffd" not in name and "@" not in name


def test_corpus_covers_every_fixture() -> None:
    on_disk = {str(p.relative_to(REAL)) for p in REAL.rglob("*") if p.suffix in (".eml", ".mbox")}
    assert on_disk == {rel for rel, *_ in CORPUS}


AUTOMATED = {
    "feedback_report", "delivery_report", "disposition_report", "automated_report", "auto_reply",
    "bulk_mail", "list_address", "automated_sender",
}  # fmt: skip


def test_no_automated_report_becomes_a_contact() -> None:
    """Every report, bounce and list message in the corpus is skipped with a reason, none read."""
    reports = [
        rel for rel, expected, skipped, _ in CORPUS if set(skipped) & AUTOMATED and not expected
    ]
    assert len(reports) == 19
    for rel in reports:
        out = read(rel)
        assert out.records.height == 0, rel
        assert sum(out.skipped.values()) >= 1, rel


# --- From: shapes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # The angle-bracket address is the sender whatever the display name claims.
        (
            "purchasing@aquillaindustries.com <do-not-reply@ncs.gov.ng>",
            (None, "do-not-reply@ncs.gov.ng"),
        ),
        ("alice@example.org <bob@example.org>", (None, "bob@example.org")),
        # CVE-2023-27043's shape: `parseaddr` returned alice.
        ("alice@example.org)<bob@example.org>", (None, "bob@example.org")),
        # A quoted or comment name that is an address is no name.
        ('"alice@example.org" <bob@example.org>', (None, "bob@example.org")),
        ("bob@example.org (alice@example.org)", (None, "bob@example.org")),
        ("Alice (alice@example.org) <bob@example.org>", ("Alice", "bob@example.org")),
        ('"Doe, Jane \\"JD\\"" <jane@example.org>', ('Doe, Jane "JD"', "jane@example.org")),
        ("=?utf-8?q?alice=40example.org?= <bob@example.org>", (None, "bob@example.org")),
        # Pipermail's archive form, with and without a name.
        ("jgb at example.com (Jesus M. Gonzalez)", ("Jesus M. Gonzalez", "jgb@example.com")),
        ("jgb at example.com", (None, "jgb@example.com")),
        # UTF-8 read as Latin-1 once (`RenÃ©e`) is repaired; U+FFFD is never stored.
        ("RenÃ©e Dubois <renee@example.org>", ("Renée Dubois", "renee@example.org")),
        ("=?utf-8?q?Ren=EF=BF=BDe?= <renee@example.org>", (None, "renee@example.org")),
        ("no address here", (None, None)),
        ("MAILER DAEMON <>", (None, None)),
    ],
)
def test_sender_from_value(value: str, expected: tuple[str | None, str | None]) -> None:
    assert sender(value) == expected


def test_several_authors_take_the_sender_header() -> None:
    value = "Alice <alice@example.org>, Bob <bob@example.org>"
    assert sender(value, "bob@example.org") == ("Bob", "bob@example.org")
    assert sender(value) == ("Alice", "alice@example.org")


def _eml(tmp_path: Path, from_bytes: bytes) -> Path:
    path = tmp_path / "m.eml"
    path.write_bytes(
        b"From: " + from_bytes + b"\nDate: Sun, 01 Nov 2026 12:00:00 +0000\n"
        b"Message-ID: <m1@example.org>\n\nHi\n"
    )
    return path


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Renée Dubois".encode(), "Renée Dubois"),  # undeclared UTF-8
        ("François Lefèvre".encode("latin-1"), "François Lefèvre"),  # undeclared Latin-1
        ("张先生".encode("gb2312"), None),  # GB2312 bytes: Latin-1 would be `ÕÅÏÈÉú`
        ('"Jääskeläinen"'.encode("latin-1"), "Jääskeläinen"),
    ],
)
def test_raw_8bit_names(tmp_path: Path, raw: bytes, name: str | None) -> None:
    path = _eml(tmp_path, raw + b" <p@example.org>")
    assert contacts(read("m.eml", path)) == [("p@example.org", name)]


def test_undeclared_bytes_of_a_real_list_message_are_no_name(tmp_path: Path) -> None:
    """mbox_unknown_encoding's From: carries a GB2312 name twice mis-encoded; the stdlib gave
    eight U+FFFD. Read without its list header, the address stays and the name is dropped."""
    data = (REAL / "perceval/mbox_unknown_encoding.mbox").read_bytes()
    (from_line,) = [line for line in data.split(b"\n") if line.startswith(b"From: ")]
    path = _eml(tmp_path, from_line.removeprefix(b"From: "))
    assert contacts(read("m.eml", path)) == [("yuancong@example.com", None)]


# --- mbox separators ------------------------------------------------------------------------


def _with_body_line(line: bytes) -> bytes:
    """The real pipermail month with `line` inserted after a blank line in the first body."""
    data = (REAL / "perceval/pipermail_2015_november.mbox").read_bytes()
    head, sep, rest = data.partition(b"\n\n")
    return head + sep + line + b"\n" + rest


@pytest.mark.parametrize(
    "line",
    [
        b"From here on, please write to the new list.",
        b"From the archives: nothing changed",
        # A date, but not a separator: no sender token before the weekday...
        b"From Monday Jan  5 10:00 we meet weekly",
    ],
)
def test_unescaped_from_line_in_a_body_does_not_split(tmp_path: Path, line: bytes) -> None:
    path = tmp_path / "list.mbox"
    path.write_bytes(_with_body_line(line))
    box = mailbox.mbox(str(path), create=False)
    assert len(box.keys()) == 5  # the stdlib splits the first message in two
    box.close()
    out = read("list.mbox", path)
    assert contacts(out) == [ANDY, ("jgb@gsyc.es", "Jesus M. Gonzalez-Barahona"), ANDY, ANDY]
    assert quarantined(out) == []


def test_separator_rule() -> None:
    one = b"From: a@example.org\nDate: Sun, 01 Nov 2026 12:00:00 +0000\n\n"
    # A separator without a blank line before it counts when a header line follows it.
    data = b"From a@example.org Sun Nov  1 12:00:00 2026\n" + one.rstrip(b"\n") + b"\nbody\n"
    data += b"From MAILER-DAEMON Fri Jul  8 12:08:34 2011\n" + one + b"x\n"
    assert len(split_mbox(data)) == 2
    # ... and not when body text follows it.
    data = b"From a@example.org Sun Nov  1 12:00:00 2026\n" + one + b"quoted:\n"
    data += b"From MAILER-DAEMON Fri Jul  8 12:08:34 2011\nthe bounce said\n"
    assert len(split_mbox(data)) == 1


def test_split_matches_the_stdlib_bytes_on_real_mboxes() -> None:
    """Same message bytes as `mailbox.mbox` where it splits right: hash ids do not change."""
    for path in sorted(REAL.rglob("*.mbox")):
        box = mailbox.mbox(str(path), create=False)
        expected = [box.get_bytes(key) for key in box.keys()]
        box.close()
        assert split_mbox(path.read_bytes()) == expected, path.name


def test_pipermail_month_txt_is_read(tmp_path: Path) -> None:
    path = tmp_path / "2016-March.txt"
    shutil.copy(REAL / "perceval/pipermail_2016_march.mbox", path)
    assert contacts(read("2016-March.txt", path)) == [("gpoo@example.com", "Germán Poo-Caamaño")]
    notes = tmp_path / "notes.txt"
    notes.write_text("From the desk of the editor\n")
    assert quarantined(read("notes.txt", notes)) == [
        (None, "not an mbox file: it does not start with a 'From ' line")
    ]


# --- one export day ---------------------------------------------------------------------------


def test_real_corpus_as_one_export_day(tmp_path: Path) -> None:
    day = tmp_path / "email" / "2026-11-01"
    day.mkdir(parents=True)
    for rel, *_ in CORPUS:
        shutil.copy(REAL / rel, day / rel.replace("/", "__"))
    out = ingest_day(tmp_path, "email", "2026-11-01", CONFIG)
    expected_skips: dict[str, int] = {}
    for _, _, skipped, _ in CORPUS:
        for reason, n in skipped.items():
            expected_skips[reason] = expected_skips.get(reason, 0) + n
    assert out.skipped == dict(sorted(expected_skips.items()))
    assert out.quarantine.height == 2
    assert out.accepted.height == sum(len(expected) for _, expected, _, _ in CORPUS)
    emails = set(out.accepted.get_column("email"))
    assert not any(e.split("@")[0].lower() in ("mailer-daemon", "postmaster") for e in emails)
    assert "purchasing@aquillaindustries.com" not in emails
