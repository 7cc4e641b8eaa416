"""Tests for contacts.demo (the generator): determinism, ground truth, planted cases, formats, bad records."""

from __future__ import annotations

import csv
import gzip
import hashlib
import hmac
import io
import json
import unicodedata
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import phonenumbers
import polars as pl
import pytest

from contacts.demo import (
    CANONICAL_COLUMNS,
    CASES,
    GeneratedExports,
    GeneratorConfig,
    generate_benchmark_exports,
    generate_exports,
)

CFG = GeneratorConfig(persons=180, days=4, seed=11)


# ---------------------------------------------------------------------------------- helpers
def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _text(path: Path) -> str:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8")


def _epoch(value) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(datetime.fromisoformat(value).timestamp())


def _norm_record(rec: dict) -> dict:
    """Format-independent view of a record (what a reader would store)."""
    out = {}
    for c in CANONICAL_COLUMNS:
        v = rec.get(c)
        if v == "":
            v = None
        if c in ("contact_tags", "conversation_tags") and isinstance(v, str):
            v = v.split(";")
        if c == "attributes" and isinstance(v, str):
            v = json.loads(v)
        if c == "occurred_at" and v is not None:
            v = _epoch(v)
        out[c] = v
    return out


def _with_meta(rec: dict, rel: str, row: int, fmt: str) -> dict:
    """Every canonical column present (JSONL omits nulls, CSV has empty cells)."""
    out = {c: (None if rec.get(c) == "" else rec.get(c)) for c in CANONICAL_COLUMNS}
    return {**out, "_file": rel, "_row": row, "_fmt": fmt}


def _read_exports(root: Path):
    """(records, unreadable): records carry _file (relative), _row (SPEC numbering), _fmt."""
    records, unreadable = [], []
    for path in _files(root / "askvault"):
        rel = path.relative_to(root).as_posix()
        name = path.name.removesuffix(".gz")
        if name.endswith(".jsonl"):
            for k, line in enumerate(_text(path).split("\n"), start=1):
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    unreadable.append((rel, k))
                    continue
                records.append(_with_meta(rec, rel, k, "jsonl"))
        elif name.endswith(".csv"):
            reader = csv.DictReader(io.StringIO(_text(path), newline=""))
            assert tuple(reader.fieldnames) == CANONICAL_COLUMNS
            for k, rec in enumerate(reader, start=2):
                records.append(_with_meta(rec, rel, k, "csv"))
        else:
            try:
                table = pl.read_parquet(path)
            except Exception:
                unreadable.append((rel, None))
                continue
            assert tuple(table.columns) == CANONICAL_COLUMNS
            for k, rec in enumerate(table.to_dicts(), start=1):
                records.append(_with_meta(rec, rel, k, "parquet"))
    return records, unreadable


def _phone_e164(raw: str, channel: str) -> str:
    if channel.lower() == "whatsapp":
        raw = "+" + raw
    num = phonenumbers.parse(raw, "US")
    assert phonenumbers.is_valid_number(num), raw
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def _email_norm(raw: str) -> str:
    if "<" in raw:
        raw = raw[raw.index("<") + 1 : raw.index(">")]
    local, _, domain = raw.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        return local.replace(".", "") + "@gmail.com"
    return f"{local}@{domain}"


def _valid_hash(secret: str, user_id: str, user_hash: str) -> bool:
    expected = hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, user_hash)


@pytest.fixture(scope="module")
def gen(tmp_path_factory) -> GeneratedExports:
    return generate_exports(tmp_path_factory.mktemp("gen"), CFG)


@pytest.fixture(scope="module")
def data(gen):
    records, unreadable = _read_exports(gen.root)
    truth = pl.read_parquet(gen.truth_path).to_dicts()
    bad = pl.read_parquet(gen.root / "_truth" / "bad_records.parquet").to_dicts()
    bad_ids = {b["interaction_id"] for b in bad if b["interaction_id"]}
    bad_pos = {(b["file"], b["row"]) for b in bad}
    good = [r for r in records if (r["_file"], r["_row"]) not in bad_pos]
    person_of = {t["interaction_id"]: t["person_id"] for t in truth}
    return {
        "records": records,
        "unreadable": unreadable,
        "truth": truth,
        "bad": bad,
        "bad_ids": bad_ids,
        "good": good,
        "person_of": person_of,
    }


# ------------------------------------------------------------------------------------ tests
def test_same_config_gives_identical_bytes(gen, tmp_path):
    again = generate_exports(tmp_path / "again", CFG)
    a, b = _files(gen.root), _files(again.root)
    assert [p.relative_to(gen.root) for p in a] == [p.relative_to(again.root) for p in b]
    for x, y in zip(a, b, strict=True):
        assert x.read_bytes() == y.read_bytes(), x
    assert (again.interactions, again.persons, again.bad_records) == (
        gen.interactions,
        gen.persons,
        gen.bad_records,
    )
    other = generate_exports(tmp_path / "other", GeneratorConfig(persons=180, days=4, seed=12))
    assert (other.root / "_truth" / "truth.parquet").read_bytes() != gen.truth_path.read_bytes()


def test_regenerating_into_the_same_folder_replaces_it(tmp_path):
    cfg = GeneratorConfig(persons=60, days=3, seed=5)
    generate_exports(tmp_path, cfg)
    (tmp_path / "askvault" / "stale.csv").write_text("x\n")
    (tmp_path / "keep.txt").write_text("mine")
    generate_exports(tmp_path, cfg)
    assert not (tmp_path / "askvault" / "stale.csv").exists()
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_layout_formats_and_compression(gen):
    days = sorted(p.name for p in (gen.root / "askvault").iterdir())
    assert days == [(CFG.start_day + timedelta(days=k)).isoformat() for k in range(CFG.days)]
    kinds = set()
    for d in days:
        names = sorted(p.name for p in (gen.root / "askvault" / d).iterdir())
        exports = [n for n in names if n.startswith("export-")]
        assert 1 <= len(exports) <= 3
        assert exports == [n for n in names if n != "broken.parquet"]
        for n in exports:
            kinds.add(n.split(".", 1)[1])
    assert {"jsonl", "csv", "parquet"} <= {k.removesuffix(".gz") for k in kinds}
    gz = [p for p in _files(gen.root) if p.name.endswith(".gz")]
    assert gz, "gzip_some=True must compress some files"
    for p in gz:
        assert p.read_bytes()[4:8] == b"\0\0\0\0"  # mtime 0: reproducible
        gzip.decompress(p.read_bytes())


def test_truth_has_one_row_per_distinct_interaction(gen, data):
    truth = data["truth"]
    ids = [t["interaction_id"] for t in truth]
    assert len(ids) == len(set(ids)) == gen.interactions
    assert len({t["person_id"] for t in truth}) <= gen.persons
    written = {r["interaction_id"] for r in data["good"]}
    assert written == set(ids)
    assert not (data["bad_ids"] & set(ids))
    assert set(truth[0]) >= {"interaction_id", "person_id", "case"}
    assert {t["case"] for t in truth} <= set(CASES)


def test_every_planted_case_is_present(data):
    cases = {t["case"] for t in data["truth"]}
    assert set(CASES) <= cases
    typos = {t["typo"] for t in data["truth"] if t["typo"]}
    assert typos == {"name", "email", "phone"}


def _by_person(data):
    out = defaultdict(list)
    for r in data["good"]:
        out[data["person_of"][r["interaction_id"]]].append(r)
    return out


def _group_members(data, case):
    groups = defaultdict(set)
    for t in data["truth"]:
        if t["person_case"] == case:
            groups[t["case_group"]].add(t["person_id"])
    return groups


def test_shared_phone_groups_have_distinct_people_and_emails(data):
    recs = _by_person(data)
    for case, lo, hi in (("household", 2, 4), ("switchboard", 3, 6)):
        groups = _group_members(data, case)
        assert groups
        for members in groups.values():
            assert lo <= len(members) <= hi
            phones_by_person = {}
            emails_by_person = {}
            for pid in members:
                rows = recs[pid]
                phones_by_person[pid] = {
                    _phone_e164(r["phone"], r["channel"]) for r in rows if r["phone"]
                }
                emails_by_person[pid] = {_email_norm(r["email"]) for r in rows if r["email"]}
                # the hard part: own email and the shared phone in one interaction
                assert any(r["email"] and r["phone"] for r in rows), pid
            shared = set.intersection(*phones_by_person.values())
            assert len(shared) == 1
            emails = [e for es in emails_by_person.values() for e in es]
            assert len(emails) == len(set(emails))  # nobody shares an email
        if case == "household":  # one family: the same surname
            for members in groups.values():
                lasts = {
                    unicodedata.normalize("NFC", r["name"]).split()[-1].casefold()
                    for pid in members
                    for r in recs[pid]
                    if r["name"] and len(r["name"].split()) > 1
                }
                assert len(lasts) == 1, lasts


def test_throwaway_kiosk_and_forged(data):
    recs = _by_person(data)
    # throwaway: 5-10 people typed the same fake address, each with their own phone
    for members in _group_members(data, "throwaway_email").values():
        assert 5 <= len(members) <= 10
        fakes, phones = set(), {}
        for pid in members:
            rows = [r for r in recs[pid] if r["email"] and r["phone"]]
            fake_rows = [
                r
                for r in rows
                if _email_norm(r["email"])
                in ("test@test.com", "asdf@asdf.com", "no@no.com", "a@a.com", "none@example.com")
            ]
            assert fake_rows
            fakes |= {_email_norm(r["email"]) for r in fake_rows}
            phones[pid] = {_phone_e164(r["phone"], r["channel"]) for r in fake_rows}
        assert len(fakes) == 1
        all_phones = [p for ps in phones.values() for p in ps]
        assert len(all_phones) == len(set(all_phones)) == len(members)
    # kiosk: one session id, 5-10 people, each with their own email
    for members in _group_members(data, "kiosk").values():
        assert 5 <= len(members) <= 10
        sessions = [
            {r["session_id"] for r in recs[pid] if r["session_id"] and r["email"]}
            for pid in members
        ]
        shared = set.intersection(*sessions)
        assert len(shared) == 1
        emails = {
            _email_norm(r["email"])
            for pid in members
            for r in recs[pid]
            if r["session_id"] in shared and r["email"]
        }
        assert len(emails) == len(members)
    # forged: a real verified person's user id, a hash that does not verify, the attacker's email
    forged = [t for t in data["truth"] if t["forged"]]
    assert forged
    rows = {r["interaction_id"]: r for r in data["good"]}
    for t in forged:
        r = rows[t["interaction_id"]]
        assert r["user_id"] and r["email"]
        assert t["related_person_id"] and t["related_person_id"] != t["person_id"]
        victim_rows = recs[t["related_person_id"]]
        assert any(v["user_id"] == r["user_id"] for v in victim_rows)
        victim_emails = {_email_norm(v["email"]) for v in victim_rows if v["email"]}
        assert _email_norm(r["email"]) not in victim_emails


def test_second_email_nickname_and_typos(data):
    recs = _by_person(data)
    truth_people = defaultdict(set)
    for t in data["truth"]:
        truth_people[t["person_case"]].add(t["person_id"])
    for pid in truth_people["second_email"]:
        rows = recs[pid]
        pairs = {
            (_email_norm(r["email"]), _phone_e164(r["phone"], r["channel"]))
            for r in rows
            if r["email"] and r["phone"]
        }
        assert len({e for e, _ in pairs}) >= 2 and len({p for _, p in pairs}) == 1
    for pid in truth_people["second_email_nokey"]:
        rows = recs[pid]
        assert not any(r["phone"] or r["user_id"] for r in rows)
        emails = {_email_norm(r["email"]) for r in rows if r["email"]}
        assert len(emails) == 2
        with_both = [r for r in rows if r["name"] and r["company"] and r["email"]]
        assert len({_email_norm(r["email"]) for r in with_both}) == 2
    for pid in truth_people["nickname"]:
        firsts = {
            r["name"].split()[0].lower() for r in recs[pid] if r["name"] and r["name"].strip()
        }
        assert len(firsts) >= 2, firsts
    rows = {r["interaction_id"]: r for r in data["good"]}
    for t in data["truth"]:
        if t["typo"] is None:
            continue
        r = rows[t["interaction_id"]]
        others = [x for x in recs[t["person_id"]] if x["interaction_id"] != t["interaction_id"]]
        if t["typo"] == "email":
            assert _email_norm(r["email"]) not in {
                _email_norm(x["email"]) for x in others if x["email"]
            }
        elif t["typo"] == "phone":
            mine = _phone_e164(r["phone"], r["channel"])
            real = {_phone_e164(x["phone"], x["channel"]) for x in others if x["phone"]}
            assert mine not in real
            assert any(
                sum(a != b for a, b in zip(mine, p, strict=False)) == 1
                for p in real
                if len(p) == len(mine)
            )
        else:
            assert r["name"].split()[0] not in {
                x["name"].split()[0] for x in others if x["name"] and x["name"].strip()
            }


def test_redeliveries_identical_or_updated(data):
    truth = {t["interaction_id"]: t for t in data["truth"]}
    deliveries = defaultdict(list)
    for r in data["good"]:
        deliveries[r["interaction_id"]].append(r)
    redelivered = {i: rs for i, rs in deliveries.items() if len(rs) > 1}
    assert redelivered
    n_same = n_updated = 0
    for i, rs in redelivered.items():
        t = truth[i]
        assert t["redelivered"] and t["deliveries"] == len(rs)
        assert t["case"] == "redelivered"
        files = [r["_file"] for r in rs]
        assert files == sorted(files) and len(set(files)) == len(files)
        first, *later = [_norm_record(r) for r in rs]
        changed = any(x != first for x in later)
        assert changed == t["updated"]
        n_same += not changed
        n_updated += changed
        assert str(t["last_export_day"]) == rs[-1]["_file"].split("/")[1]
    assert n_same and n_updated
    assert sum(t["redelivered"] for t in truth.values()) == len(redelivered)


def test_all_phone_values_are_valid_numbers(data):
    phones = [(r["phone"], r["channel"]) for r in data["good"] if r["phone"]]
    assert len(phones) > 100
    e164 = {_phone_e164(p, ch) for p, ch in phones}
    assert any(not p.startswith("+1") for p in e164)  # some non-US people
    raw = {p for p, _ in phones}
    assert any(p.startswith("(") for p in raw) and any("." in p for p in raw)
    assert any(p.startswith("+1 ") for p in raw) and any(p.isdigit() for p in raw)


def test_user_hashes_valid_for_verified_and_invalid_for_forged(data):
    truth = {t["interaction_id"]: t for t in data["truth"]}
    n_verified = 0
    for r in data["good"]:
        t = truth[r["interaction_id"]]
        if r["user_id"]:
            assert r["user_id"].startswith("u_") and r["user_hash"]
            ok = _valid_hash(CFG.secret, r["user_id"], r["user_hash"])
            assert ok == (not t["forged"]) == t["verified"]
            n_verified += ok
            if not t["forged"]:
                assert r["channel"].lower() in ("widget", "api")
        else:
            assert not t["verified"] and not r["user_hash"]
    assert n_verified > 20
    verified_people = {
        truth[r["interaction_id"]]["person_id"]
        for r in data["good"]
        if truth[r["interaction_id"]]["verified"]
    }
    assert 0.15 < len(verified_people) / CFG.persons < 0.45


def test_bad_records_are_where_the_manifest_says(gen, data):
    bad = data["bad"]
    assert 7 <= gen.bad_records == len(bad) <= 10
    kinds = {b["kind"] for b in bad}
    assert kinds == {
        "missing_id",
        "bad_timestamp",
        "unknown_channel",
        "attributes_list",
        "attributes_too_many_keys",
        "attributes_bad_json",
        "truncated_line",
        "not_parquet",
    }
    last_days = {(CFG.start_day + timedelta(days=CFG.days - k)).isoformat() for k in (1, 2)}
    at = {(r["_file"], r["_row"]): r for r in data["records"]}
    for b in bad:
        assert b["file"].split("/")[1] in last_days
        if b["kind"] == "truncated_line":
            assert (b["file"], b["row"]) in data["unreadable"]
            assert not _text(gen.root / b["file"]).endswith("\n")
            continue
        if b["kind"] == "not_parquet":
            assert (b["file"], None) in data["unreadable"]
            continue
        r = at[(b["file"], b["row"])]
        attrs = r.get("attributes")
        if b["kind"] == "missing_id":
            assert not r.get("interaction_id")
        elif b["kind"] == "bad_timestamp":
            assert r["occurred_at"] == "yesterday"
        elif b["kind"] == "unknown_channel":
            assert r["channel"] == "fax"
        elif b["kind"] == "attributes_list":
            assert isinstance(attrs if isinstance(attrs, list) else json.loads(attrs), list)
        elif b["kind"] == "attributes_too_many_keys":
            assert len(attrs if isinstance(attrs, dict) else json.loads(attrs)) == 51
        elif b["kind"] == "attributes_bad_json":
            with pytest.raises(json.JSONDecodeError):
                json.loads(attrs)
    assert len(data["unreadable"]) == 2


def test_record_shapes_and_times(data):
    good = data["good"]
    assert {r["channel"].lower() for r in good} == {
        "widget",
        "whatsapp",
        "slack",
        "email",
        "sms",
        "api",
    }
    styles = set()
    seen: set[str] = set()
    for r in good:
        v = r["occurred_at"]
        if isinstance(v, int):
            assert r["_fmt"] == "jsonl"
            styles.add("epoch")
        elif isinstance(v, datetime):
            styles.add("native")
        else:
            styles.add("Z" if v.endswith("Z") else "offset")
        day = date.fromisoformat(r["_file"].split("/")[1])
        end = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=1)
        assert _epoch(v) < end.timestamp()  # occurred on or before the export day
        if r["interaction_id"] not in seen:  # first delivery: that day or the day before
            assert _epoch(v) >= (end - timedelta(days=2)).timestamp()
        seen.add(r["interaction_id"])
        n = _norm_record(r)
        assert n["attributes"] is None or isinstance(n["attributes"], dict)
        for c in ("contact_tags", "conversation_tags"):
            assert n[c] is None or (isinstance(n[c], list) and n[c])
    assert styles == {"epoch", "native", "Z", "offset"}
    # conversations hold several interactions
    per_conv = defaultdict(int)
    for r in good:
        if r["conversation_id"]:
            per_conv[r["conversation_id"]] += 1
    assert max(per_conv.values()) >= 3


def test_identity_spellings_vary(data):
    good = data["good"]
    emails = [r["email"] for r in good if r["email"]]
    assert any(e != e.strip() for e in emails)
    assert any("+" in e.split("@")[0] for e in emails)
    assert any("<" in e for e in emails)
    assert any(e.strip() != e.strip().lower() and "<" not in e for e in emails)
    assert any(e.endswith("@googlemail.com") for e in emails)
    names = [r["name"] for r in good if r["name"]]
    assert any(not n.isascii() for n in names)
    assert any(n.isupper() for n in names) and any("  " in n.strip() for n in names)
    companies = {r["company"] for r in good if r["company"]}
    assert any(c.endswith(("Inc", "Inc.", "Incorporated", "INC.")) for c in companies)
    # anonymous widget visitors who identify later in the same session
    by_session = defaultdict(list)
    for r in good:
        if r["session_id"]:
            by_session[r["session_id"]].append(r)
    assert any(
        any(not (x["email"] or x["phone"] or x["user_id"]) for x in rs)
        and any(x["email"] for x in rs)
        for rs in by_session.values()
    )


def test_benchmark_exports_hit_the_requested_size(tmp_path):
    res = generate_benchmark_exports(tmp_path, 4000, days=3)
    assert abs(res.interactions - 4000) / 4000 < 0.1
    assert res.persons == 1000 and res.bad_records >= 7
    names = [p.name for p in _files(tmp_path / "askvault")]
    assert not any(n.endswith(".gz") for n in names)
    assert {n.rsplit(".", 1)[1] for n in names} == {"jsonl", "csv", "parquet"}


def test_small_and_odd_configs_still_work(tmp_path):
    res = generate_exports(
        tmp_path / "a",
        GeneratorConfig(persons=5, days=1, bad_records=False, formats=("csv",), gzip_some=False),
    )
    assert res.persons == 5 and res.interactions >= 5 and res.bad_records == 0
    res = generate_exports(
        tmp_path / "b", GeneratorConfig(persons=40, days=2, interactions_per_person=1.0)
    )
    assert res.interactions >= 40
    with pytest.raises(ValueError):
        generate_exports(tmp_path / "c", GeneratorConfig(formats=("xml",)))
