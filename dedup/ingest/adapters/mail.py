"""Raw mail (`.mbox`, `.eml`, a Mailman/pipermail `.txt` month) → canonical interactions.

Mapping: the contact is the `From:` address with its display name; `occurred_at` = `Date:`;
`interaction_id` = `email:<Message-ID>` (angle brackets dropped; a message without one gets
`email:sha256:<hash of its bytes>`, stable across re-deliveries); `conversation_id` =
`email:<thread root>`, the root being the first id of `References:`, else `In-Reply-To:`, else
the message itself — so every reply in a thread shares the root's conversation.
`row` is the message's 1-based position in the mbox (1 for an `.eml`).

Reading `From:` (docs/sources.md, "Reading From:"):
- the address inside angle brackets is the sender, whatever the display name says
  (`purchasing@aquillaindustries.com <do-not-reply@ncs.gov.ng>` is sent by `do-not-reply@...`);
  a display name or comment that is itself an address is no name;
- `addr (Full Name)`, the RFC 822 comment form, names the sender by its comment; the archive form
  `jgb at example.com (Jesus M. Gonzalez)` (Mailman/pipermail) is read as `jgb@example.com`;
- several authors (`From: a, b` with `Sender: b`): the `Sender:` is who sent it;
- anything else goes through the standard library's modern parser (`email.policy.default`);
- header bytes that are raw 8-bit (undeclared charset) decode as UTF-8, else Latin-1; RFC 2047
  words whose declared charset fails the same way; a name that still looks garbled
  (U+FFFD, mojibake, a CJK byte run read as Latin-1) is dropped, never stored.

Left out and counted (`skipped`): automated reports — spam-complaint feedback reports
(`multipart/report; report-type=feedback-report`, `feedback_report`), delivery-status reports and
bounces (`delivery_report`), read receipts (`disposition_report`), other reports
(`automated_report`) —, mail marked `Auto-Submitted:` other than `no` (`auto_reply`),
`Precedence: bulk/list/junk` (`bulk_mail`), list service addresses (`-request`, `-bounces`,
`-owner`, `owner-`: `list_address`), automated senders (`mailer-daemon`, `noreply`, ...:
`automated_sender`), and mail from the workspace itself (`workspace_sender`). Quarantined: a
message without a usable `From:` or `Date:`, a file that is not mail.

mbox splitting: a message starts at a `From ` line only when that line is a real separator —
`From ` + a sender token + an asctime date (`From MAILER-DAEMON Fri Jul  8 12:08:34 2011`),
preceded by a blank line or followed by a header line. The stdlib `mailbox.mbox` splits on every
line starting with `From `, so one unescaped `From here on ...` in a body made two messages.
Byte ranges are otherwise the stdlib's, so `sha256` ids of old deliveries do not change.
"""

from __future__ import annotations

import binascii
import hashlib
import quopri
import re
import unicodedata
from collections import Counter
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.policy import default as modern_policy
from email.utils import parsedate_to_datetime
from pathlib import Path

from dedup.ingest.adapters.base import (
    AUTOMATED_LOCAL_PARTS,
    DEFAULT_CONFIG,
    Records,
    Rejects,
    SourceConfig,
    read_file,
    result,
)
from dedup.ingest.readers import FileOrigin, ReadResult
from dedup.schema import MAX_RAW_CHARS

_MSGID = re.compile(r"<([^<>\s]+)>")
# Headers only, with the lenient compat32 policy: the body is never needed, and the modern
# policy's structured parsing of every header measured 8x slower (docs/performance.md). The modern
# parser is used for the one `From:` value that the fast shapes below do not cover.
_HEADERS = BytesHeaderParser(policy=compat32)
_WANTED = frozenset(
    ("from", "sender", "date", "message-id", "references", "in-reply-to", "auto-submitted",
     "precedence", "x-failed-recipients")
)  # fmt: skip

# A real mbox separator: `From `, an optional sender token (`x at y` in pipermail archives),
# then an asctime date: weekday, month, day, time.
_FROM_LINE = re.compile(
    rb"From +(?:\S+(?: at \S+)? +)?(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) +"
    rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} +\d{1,2}:\d\d"
)
_HEADER_LINE = re.compile(rb"[!-9;-~]+:")

# `From:` shapes read without the (10x slower) structured parser. Names here hold no address
# characters, quotes or commas; anything else takes the careful path.
_ADDR = r"[^\s<>()\[\]\\,;:\"@]+@[^\s<>()\[\]\\,;:\"@]+"
_FAST_FROM = re.compile(
    rf'\s*(?:"(?P<quoted>[^"\\@]*)"|(?P<bare>[^"<>()\\,;:@]*?))\s*<(?P<angle>{_ADDR})>\s*'
    rf"|\s*(?P<plain>{_ADDR})\s*(?:\((?P<comment>[^()\\]*)\))?\s*"
)
_AT_FORM = re.compile(
    r"\s*(?P<local>[^\s@<>()]+) at (?P<domain>[^\s@<>()]+\.[^\s@<>()]+)\s*(?:\((?P<comment>.*)\))?\s*"
)
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?\s]*)\?=")
_LOOKS_LIKE_ADDRESS = re.compile(r"[^\s@<>()]+@[^\s@<>()]+")
# Characters that occur in garbled names (UTF-8 read as Latin-1: `RenÃ©e`) and not in real ones:
# C0/C1 controls and the Latin-1 symbols, except `ª º ·` (`Mª José`, Catalan `l·l`).
_GARBLED = re.compile("[\x00-\x1f\x7f-\x9f\xa1-\xa9\xab-\xb6\xb8-\xb9\xbb-\xbf\ufffd]")
# Three non-ASCII characters in a row from a Latin-1 fallback is a multibyte charset (GB2312,
# Shift-JIS) read byte by byte; Latin-1 names have isolated accents (`Jääskeläinen`: two).
_LATIN1_RUN = re.compile("[^\x00-\x7f]{3}")

_REPORTS = {
    "feedback-report": "feedback_report",
    "delivery-status": "delivery_report",
    "disposition-notification": "disposition_report",
}
_REPORT_PARTS = {f"message/{kind}": reason for kind, reason in _REPORTS.items()}
_BULK = frozenset(("bulk", "list", "junk"))
# List service addresses (Mailman `-request`/`-bounces`/`-owner`, Majordomo `owner-`) and VERP
# bounce addresses (`bounces+123-abc=example.com@...`) are software, never a person.
_LIST_LOCAL = re.compile(r".+-(?:request|bounces|owner|confirm)(?:\+.*)?|owner-.+|bounces?[+=-].+")


def read_mail(path: Path, origin: FileOrigin, config: SourceConfig = DEFAULT_CONFIG) -> ReadResult:
    """Read one `.mbox`, `.eml` or pipermail `.txt` file. Never raises on bad content."""
    records, rejects, skipped = Records(), Rejects(origin), Counter[str]()
    data = read_file(path, origin, rejects)
    if data is None:
        return result(records, rejects, skipped, origin)
    suffix = path.suffix.lower()
    if suffix == ".eml":
        messages = [data]
    elif suffix in (".mbox", ".txt"):
        if not data.startswith(b"From ") or (suffix == ".txt" and not _FROM_LINE.match(data)):
            rejects.add(
                None, "not an mbox file: it does not start with a 'From ' line", data[:2048]
            )
            return result(records, rejects, skipped, origin)
        messages = split_mbox(data)
    else:
        rejects.add(
            None, f"unsupported file type '{path.name}' (expected .mbox, .eml or .txt)", None
        )
        return result(records, rejects, skipped, origin)
    for row, raw in enumerate(messages, start=1):
        try:
            _read_message(raw, row, origin, config, records, rejects, skipped)
        except Exception as exc:  # noqa: BLE001 - stdlib mail parsing of arbitrary bytes
            rejects.add(row, f"unreadable message: {type(exc).__name__}: {exc}"[:300], raw[:2048])
    return result(records, rejects, skipped, origin)


def split_mbox(data: bytes) -> list[bytes]:
    """The messages of an mbox, each without its `From ` line.

    The file's first line always opens a message; a later `From ` line does only when it is a
    separator (`_FROM_LINE`) and stands after a blank line or before a header line. Start and end
    of each message are otherwise computed as `mailbox.mbox` does (a blank line before a
    separator belongs to no message), so message bytes — and hash ids — match the stdlib's.
    """
    starts = [0]
    for match in re.finditer(rb"(?m)^From ", data):
        pos = match.start()
        if pos and _is_separator(data, pos):
            starts.append(pos)
    messages = []
    for i, start in enumerate(starts):
        if i + 1 < len(starts):
            stop = starts[i + 1]
            stop -= 1 if _blank_before(data, stop) else 0
        else:
            stop = len(data) - (1 if data.endswith(b"\n\n") else 0)
        first = data.find(b"\n", start, stop)
        messages.append(data[first + 1 : stop] if first >= 0 else b"")
    return messages


def _blank_before(data: bytes, pos: int) -> bool:
    return data[pos - 1 : pos] == b"\n" and (pos == 1 or data[pos - 2 : pos - 1] == b"\n")


def _is_separator(data: bytes, pos: int) -> bool:
    if not _FROM_LINE.match(data, pos):
        return False
    if _blank_before(data, pos):
        return True
    nxt = data.find(b"\n", pos)
    return nxt >= 0 and bool(_HEADER_LINE.match(data, nxt + 1))


def _read_message(
    raw: bytes,
    row: int,
    origin: FileOrigin,
    config: SourceConfig,
    records: Records,
    rejects: Rejects,
    skipped: Counter[str],
) -> None:
    msg = _HEADERS.parsebytes(raw)
    heads = _headers(msg)
    head = raw.split(b"\n\n", 1)[0][:MAX_RAW_CHARS]
    ids = _MSGID.findall(heads.get("message-id", ""))
    iid = f"email:{ids[0]}" if ids else f"email:sha256:{hashlib.sha256(raw).hexdigest()[:32]}"
    name, addr = sender(heads.get("from", ""), heads.get("sender", ""))
    reason = _automated_message(msg, heads)
    if reason is None and addr and config.is_staff_email(addr):
        reason = "workspace_sender"
    reason = reason or _automated_sender(addr, heads.get("from", ""))
    if reason is not None:
        skipped[reason] += 1
        return
    if not addr:
        rejects.add(row, "message without a readable From: address", head, iid)
        return
    try:
        when = parsedate_to_datetime(heads.get("date", ""))
    except (ValueError, TypeError, IndexError):
        when = None
    if when is None:
        rejects.add(row, "message without a readable Date: header", head, iid)
        return
    occurred = when.isoformat() if when.tzinfo else when.isoformat() + "Z"
    refs = _MSGID.findall(heads.get("references", ""))
    reply_to = _MSGID.findall(heads.get("in-reply-to", ""))
    root = refs[0] if refs else reply_to[0] if reply_to else iid.removeprefix("email:")
    records.add(
        origin.file,
        row,
        interaction_id=iid,
        channel="email",
        occurred_at=occurred,
        conversation_id=f"email:{root}",
        email=addr,
        name=name,
    )


def _headers(msg: Message) -> dict[str, str]:
    """First value of each header the adapter reads; raw 8-bit bytes decoded (`_text`)."""
    heads: dict[str, str] = {}
    for key, value in msg.raw_items():
        key = key.lower()
        if key in _WANTED and key not in heads:
            text = _text(value)
            heads[key] = text if key in ("from", "sender") else text.lstrip("\x00")
    return heads


def _text(value: str) -> str:
    """A header value as text. The parser keeps undeclared 8-bit bytes as surrogates: they are
    UTF-8 when they decode as such, else Latin-1 (marked with a leading NUL for `_name`)."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    data = value.encode("ascii", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "\x00" + data.decode("latin-1")


def _automated_message(msg: Message, heads: dict[str, str]) -> str | None:
    """Why this message is software talking (a skip reason), or None for a person's mail."""
    ctype = msg.get_content_type()
    if ctype == "multipart/report":
        kind = str(msg.get_param("report-type") or "").strip().lower()
        return _REPORTS.get(kind, "automated_report")
    if ctype in _REPORT_PARTS:
        return _REPORT_PARTS[ctype]
    if heads.get("x-failed-recipients"):  # Exim's plain-text bounces
        return "delivery_report"
    auto = _token(heads.get("auto-submitted", ""))
    if auto and auto != "no":
        return "auto_reply"
    if _token(heads.get("precedence", "")) in _BULK:
        return "bulk_mail"
    return None


def _automated_sender(addr: str | None, from_value: str) -> str | None:
    """`automated_sender` / `list_address` for software senders, else None."""
    if addr:
        local = addr.rpartition("@")[0].lower()
    else:  # `Mail Delivery Subsystem <MAILER-DAEMON>`, no domain: still a daemon
        local = re.sub(r".*<|>.*|\s", "", from_value.lstrip("\x00")).lower()
    if local in AUTOMATED_LOCAL_PARTS:
        return "automated_sender"
    if _LIST_LOCAL.fullmatch(local):
        return "list_address"
    return None


def _token(value: str) -> str:
    """First word of a header like `auto-replied (vacation); x=1`, lower case."""
    return re.split(r"[\s;(]", value.strip().lower(), maxsplit=1)[0]


def sender(from_value: str, sender_value: str = "") -> tuple[str | None, str | None]:
    """(display name, address) of the person who sent a message, from `From:` (and `Sender:`).

    `from_value` may start with NUL: its 8-bit bytes were read as Latin-1 (`_text`).
    """
    latin1 = from_value.startswith("\x00")
    authors = _parse_from(from_value.lstrip("\x00"))
    if not authors:
        return None, None
    if len(authors) > 1 and sender_value:
        # RFC 5322 3.6.2: with several authors, `Sender:` names the one who sent it.
        (picked, *_rest) = _parse_from(sender_value.lstrip("\x00")) or [(None, None)]
        if picked[1]:
            names = {a.lower(): n for n, a in authors}
            authors = [(picked[0] or names.get(picked[1].lower()), picked[1])]
    raw_name, addr = authors[0]
    return _name(raw_name, latin1), addr


def _parse_from(value: str) -> list[tuple[str | None, str]]:
    """(raw name, address) of each author in a `From:` value; empty when none is readable."""
    fast = _FAST_FROM.fullmatch(value)
    if fast:
        if fast["angle"]:
            return [(fast["quoted"] if fast["quoted"] is not None else fast["bare"], fast["angle"])]
        return [(fast["comment"], fast["plain"])]
    at_form = _AT_FORM.fullmatch(value)
    if at_form:
        return [(at_form["comment"], f"{at_form['local']}@{at_form['domain']}")]
    angles, before = _angle_addresses(value)
    if len(angles) == 1 and _usable(angles[0]):
        return [(before, angles[0])]
    return _parse_modern(value)


def _angle_addresses(value: str) -> tuple[list[str], str]:
    """Addresses in `<...>` outside quoted strings and comments, and the text before the first."""
    found: list[str] = []
    before, depth, quoted, escaped, opened = "", 0, False, False, -1
    for i, ch in enumerate(value):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif quoted:
            quoted = ch != '"'
        elif depth:
            depth += {"(": 1, ")": -1}.get(ch, 0)
        elif ch == '"':
            quoted = True
        elif ch == "(":
            depth = 1
        elif ch == "<":
            opened = i
        elif ch == ">" and opened >= 0:
            if not found:
                before = value[:opened]
            found.append(value[opened + 1 : i].strip())
            opened = -1
    return found, before


def _parse_modern(value: str) -> list[tuple[str | None, str]]:
    try:
        header = modern_policy.header_factory("from", value)
        found = [(a.display_name, a.addr_spec) for a in header.addresses]
    except Exception:  # noqa: BLE001 - the modern parser on hostile input
        return []
    return [(name, addr) for name, addr in found if _usable(addr)]


def _usable(addr: str) -> bool:
    local, at, domain = addr.rpartition("@")
    return bool(at and local and domain) and not any(ch.isspace() or ch in "<>" for ch in addr)


def _name(raw: str | None, latin1: bool) -> str | None:
    """The display name as stored: encoded words decoded, quotes and comments stripped; None when
    it is empty, an address, or garbled."""
    if not raw:
        return None
    text = re.sub(r"\([^()]*\)", " ", raw) if "(" in raw and not raw.startswith("(") else raw
    text, fallback = _decode_words(_unquote(text.strip()))
    text = " ".join(text.split())
    if not text or _LOOKS_LIKE_ADDRESS.search(text):
        return None
    text = _undouble(text)
    if _GARBLED.search(text) or ((latin1 or fallback) and _LATIN1_RUN.search(text)):
        return None
    return text


def _unquote(text: str) -> str:
    """`"Doe, Jane \\"JD\\""` → `Doe, Jane "JD"`: one pair of quotes off, escapes resolved."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text.strip("'")


def _decode_words(text: str) -> tuple[str, bool]:
    """RFC 2047 encoded words decoded; the flag says a word fell back to Latin-1."""
    if "=?" not in text:
        return text, False
    out, fallback, last = [], False, 0
    for match in _ENCODED_WORD.finditer(text):
        gap = text[last : match.start()]
        if not (out and gap.isspace()):  # whitespace between two encoded words is dropped
            out.append(gap)
        charset, kind, payload = match.groups()
        data = _word_bytes(kind.lower(), payload)
        if data is None:
            out.append(match.group(0))
        else:
            word, used_latin1 = _decode_bytes(data, charset.split("*")[0])
            out.append(word)
            fallback |= used_latin1
        last = match.end()
    out.append(text[last:])
    return "".join(out), fallback


def _word_bytes(kind: str, payload: str) -> bytes | None:
    try:
        if kind == "q":
            return quopri.decodestring(payload.replace("_", " ").encode("ascii"), header=True)
        return binascii.a2b_base64(payload + "=" * (-len(payload) % 4))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


def _decode_bytes(data: bytes, charset: str) -> tuple[str, bool]:
    """Bytes in their declared charset, else UTF-8, else Latin-1 (flagged)."""
    for candidate in (charset, "utf-8"):
        try:
            return data.decode(candidate), False
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1"), True


def _undouble(text: str) -> str:
    """`RenÃ©e` (UTF-8 bytes once read as Latin-1) back to `Renée`; other text unchanged."""
    if text.isascii():
        return text
    try:
        fixed = unicodedata.normalize("NFC", text.encode("latin-1").decode("utf-8"))
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
    return fixed
