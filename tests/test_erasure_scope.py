"""Erasure takes its subject and nobody else (issue 22, item 1), through real runs.

Zebulon shares a household phone with Hilda (and with an anonymous SMS sender), an office phone
with Colin, and a library kiosk's browser session with Xena, Yuri and an anonymous visitor. The
auto-merge already keeps all of them apart (each shared key is ambiguous). Erasing Zebulon must
remove exactly his seven interactions from everything the pipeline keeps, and leave every other
interaction with the contact it had; shared keys stay usable by the others and keep them apart.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from contacts.cli import app
from contacts.demo import GeneratorConfig, generate_exports
from dedup.layout import StateLayout
from dedup.service.review import delete_contacts, restore_contacts
from dedup.service.saved_views import list_views, save_view
from dedup.service.search import ContactFilter
from tests.conftest import SECRET, contact_of, query, rec, signed, write_jsonl
from tests.test_privacy import every_text

DAY = "2026-11-01"
ZEB_EMAIL = "Zeb.Quartz@Quartz-Home.test"
ZEB_NORM = "zeb.quartz@quartz-home.test"
HOME, OFFICE, OWN = "+17185550141", "+17185550142", "+17185550143"
KIOSK = "kiosk-library-7"
MINE = {"site": "north pit", "shift": "night", "licence": "blasting"}
ZEB_IDS = [f"zq-{i}" for i in range(1, 8)]
# What only Zebulon wrote: none of it may survive anywhere once he is erased.
ZEB_ONLY = [ZEB_NORM, "zsess-home", "zsess-work", "u-zebulon", "17185550143", "718 555 0143"]
ZEB_ONLY += ZEB_IDS


def people(exports: Path) -> None:
    t = f"{DAY}T{{}}:00Z"
    write_jsonl(
        exports,
        DAY,
        "zz-people.jsonl",
        [
            # Zebulon: 7 interactions, held together by his email, his own sessions and phone.
            rec("zq-1", t.format("09:00"), name="Zebulon Quartz", email=ZEB_EMAIL,
                phone="(718) 555-0141", session_id="zsess-home"),
            rec("zq-2", t.format("09:05"), session_id="zsess-home"),
            rec("zq-3", t.format("09:10"), channel="email", name="Zebulon Quartz",
                email=ZEB_EMAIL, phone="718-555-0142", company="Quartz Mining", attributes=MINE),
            rec("zq-4", t.format("09:15"), email=ZEB_EMAIL, session_id=KIOSK),
            rec("zq-5", t.format("09:20"), email=ZEB_EMAIL, session_id="zsess-work",
                user_id="u-zebulon", user_hash=signed("u-zebulon"), plan="pro"),
            rec("zq-6", t.format("09:25"), channel="whatsapp", name="Zebulon Quartz",
                phone="17185550143"),
            rec("zq-7", t.format("09:30"), email=ZEB_EMAIL, phone="718 555 0143"),
            # Hilda, his household: her email and the household phone.
            rec("hq-1", t.format("10:00"), name="Hilda Quartz", email="hilda@quartz-home.test",
                phone="(718) 555-0141"),
            rec("hq-2", t.format("10:05"), channel="email", email="hilda@quartz-home.test"),
            # Someone texting from the household phone, never saying who.
            rec("sms-1", t.format("10:10"), channel="sms", phone="+17185550141"),
            rec("sms-2", t.format("10:15"), channel="sms", phone="+17185550141"),
            # Colin, who answers the office phone too.
            rec("co-1", t.format("11:00"), channel="email", name="Colin Office",
                email="colin@quartz-mining.test", phone="718-555-0142"),
            rec("co-2", t.format("11:05"), email="colin@quartz-mining.test"),
            # The library kiosk: two more people and an anonymous visitor in one browser session.
            rec("kx-1", t.format("12:00"), name="Xena Reader", email="xena@books.test",
                session_id=KIOSK),
            rec("ky-1", t.format("12:05"), name="Yuri Reader", email="yuri@books.test",
                session_id=KIOSK),
            rec("kk-1", t.format("12:10"), session_id=KIOSK),
            # A namesake at another company: matching proposes him with Zebulon.
            rec("nz-1", t.format("13:00"), name="Zebulon Quartz", email="zebulon@othercorp.test",
                company="Quartz Mining", attributes=MINE),
        ],
    )  # fmt: skip
    crm = exports / "hubspot" / DAY
    crm.mkdir(parents=True, exist_ok=True)
    (crm / "contacts.csv").write_text(
        "Record ID,First Name,Last Name,Email,Phone Number,Company Name,Lifecycle Stage\n"
        f"71,Zebulon,Quartz,{ZEB_EMAIL},(718) 555-0143,Quartz Mining,Customer\n"
        "72,Colin,Office,colin@quartz-mining.test,718-555-0142,Quartz Mining,Lead\n"
    )


def state_text(db: Path) -> str:
    """Every readable file the pipeline keeps beside the published file, as one string: staging,
    work files, caches, matching state, reports, exports, saved views. The decision log is left
    out (it holds the erase decision and salted hashes; test_privacy covers its redaction)."""
    layout = StateLayout(db)
    parts = []
    for path in sorted(layout.state_dir.rglob("*")):
        if not path.is_file() or path == layout.decisions_path or "quality" in path.parts:
            continue
        if path.suffix == ".parquet":
            parts.append(parquet_text(path))
        elif path.suffix == ".duckdb":
            parts.append(every_text(path))
        elif path.suffix in (".html", ".json", ".csv", ".md"):
            parts.append(path.read_text(errors="replace"))
    return "\n".join(parts).lower()


def parquet_text(path: Path) -> str:
    rows = duckdb.sql(f"SELECT CAST(COLUMNS(*) AS VARCHAR) FROM read_parquet('{path}')").fetchall()
    return "\n".join(str(v) for row in rows for v in row)


def found(text: str, needles: list[str]) -> list[str]:
    return [n for n in needles if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text)]


def others(db: Path, zeb: str) -> dict[str, pl.DataFrame]:
    """Everything the published file says about everyone but Zebulon."""
    return {
        "interactions": query(
            db,
            "SELECT * REPLACE (attributes::VARCHAR AS attributes) FROM interactions "
            f"WHERE contact_id <> '{zeb}' ORDER BY interaction_id",
        ),
        "contacts": query(
            db,
            "SELECT * EXCLUDE (conversation_count) REPLACE (attributes::VARCHAR AS attributes) "
            f"FROM contacts WHERE contact_id <> '{zeb}' ORDER BY contact_id",
        ),
        "crm_links": query(db, f"SELECT * FROM crm_links WHERE contact_id <> '{zeb}' ORDER BY ALL"),
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """A small generated workspace (so matching runs) plus the people above; one run."""
    root = tmp_path_factory.mktemp("erasure-scope")
    exports, db = root / "exports", root / "out" / "contacts.duckdb"
    generate_exports(
        exports, GeneratorConfig(persons=80, days=1, seed=3, secret=SECRET, bad_records=False)
    )
    people(exports)
    return exports, db


def test_erasure_removes_exactly_its_subject(world, monkeypatch: pytest.MonkeyPatch) -> None:
    from assets.resources import ContactsSettings
    from contacts.runner import run_pipeline

    exports, db = world
    monkeypatch.setenv("ASKVAULT_IDENTITY_SECRET", SECRET)

    def run() -> None:
        run_pipeline(ContactsSettings(exports_dir=str(exports), db_path=str(db)))

    run()
    owner = contact_of(db)
    zeb = owner["zq-1"]
    assert sorted(i for i, c in owner.items() if c == zeb) == ZEB_IDS
    apart = ["hq-1", "sms-1", "co-1", "kx-1", "ky-1", "kk-1", "nz-1"]
    assert len({zeb, *(owner[i] for i in apart)}) == 8, "each shared key keeps people apart"
    ambiguous = set(query(db, "SELECT key_value FROM ambiguous_keys").get_column("key_value"))
    assert {HOME, OFFICE, KIOSK} <= ambiguous
    before = others(db, zeb)
    # Zebulon is everywhere the pipeline keeps data, so the checks below can fail.
    text = state_text(db)
    for place in ("staging", "matching", "output", "cache"):
        part = "\n".join(
            str(p) for p in StateLayout(db).state_dir.joinpath(place).rglob("*") if p.is_file()
        )
        assert part, f"the fixture must make {place} files"
    assert found(text, ZEB_ONLY) == ZEB_ONLY
    assert found(every_text(db), ZEB_ONLY) == ZEB_ONLY
    matching = StateLayout(db).state_dir / "matching"
    assert zeb.lower() in state_text_of(matching), "matching state scores Zebulon's pairs"
    reports = StateLayout(db).state_dir / "output" / "matching"
    assert ZEB_NORM in state_text_of(reports), "the Splink reports show Zebulon's proposal"

    views = StateLayout(db).views_path
    save_view(views, "zebulon", ContactFilter(text="Zebulon Quartz"))
    save_view(views, "zeb by mail", ContactFilter(text=ZEB_EMAIL, has_tags=("vip",)))
    save_view(views, "quartz", ContactFilter(text="quartz"))
    save_view(views, "hilda", ContactFilter(text="Hilda Quartz"))
    save_view(views, "vip", ContactFilter(has_tags=("vip",)))

    result = CliRunner().invoke(app, ["erase", zeb, "--confirm", ZEB_EMAIL, "--db", str(db)])
    assert result.exit_code == 0, result.output
    # A saved view whose filter names him goes with him; the others stay.
    assert [v.name for v in list_views(views)] == ["hilda", "quartz", "vip"]

    run()
    owner = contact_of(db)
    assert not set(ZEB_IDS) & set(owner)
    assert zeb not in set(owner.values())
    audit = query(db, "SELECT interactions_removed, identifiers_suppressed FROM erasures").row(0)
    assert audit[0] == 7
    # Everyone else: the same interactions, with the same contact, the same profiles and links.
    after = others(db, zeb)
    assert moved(before, owner) == {}, "nobody else's interactions moved or left"
    for name, frame in before.items():
        assert after[name].equals(frame), f"{name} of other people changed"
    assert found(every_text(db), ZEB_ONLY) == []
    assert found(state_text(db), ZEB_ONLY) == []
    assert zeb.lower() not in state_text_of(matching) + state_text_of(reports)
    # Shared keys stay usable (and unmerged) for the others; only his own phone is forgotten.
    ambiguous = set(query(db, "SELECT key_value FROM ambiguous_keys").get_column("key_value"))
    assert {HOME, OFFICE, KIOSK} <= ambiguous

    # Next day: Zebulon writes from his own address again; Hilda writes with the household phone,
    # and the anonymous sender texts again.
    write_jsonl(
        exports,
        "2026-11-02",
        "zz-next.jsonl",
        [
            rec("zq-8", "2026-11-02T09:00:00Z", email=ZEB_NORM, name="Zebulon Quartz"),
            rec("hq-3", "2026-11-02T09:10:00Z", email="hilda@quartz-home.test",
                phone="(718) 555-0141"),
            rec("sms-3", "2026-11-02T09:20:00Z", channel="sms", phone="+17185550141"),
        ],
    )  # fmt: skip
    run()
    owner = contact_of(db)
    assert "zq-8" not in owner, "his own email does not bring him back"
    assert owner["hq-3"] == owner["hq-1"] == before_owner(before, "hq-1")
    assert owner["sms-3"] == owner["sms-1"] == before_owner(before, "sms-1")
    assert moved(before, owner) == {}, "nobody else moved"
    assert query(db, "SELECT interactions_removed FROM erasures").item() == 7
    assert found(every_text(db), ZEB_ONLY) == []


def moved(before: dict[str, pl.DataFrame], owner: dict[str, str]) -> dict[str, tuple]:
    """Other people's interactions whose contact changed (or that left): id → (before, now)."""
    return {
        i: (c, owner.get(i))
        for i, c in before["interactions"].select("interaction_id", "contact_id").iter_rows()
        if owner.get(i) != c
    }


def before_owner(before: dict[str, pl.DataFrame], interaction_id: str) -> str:
    frame = before["interactions"].filter(pl.col("interaction_id") == interaction_id)
    return frame.get_column("contact_id").item()


def state_text_of(folder: Path) -> str:
    parts = []
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".parquet":
            parts.append(parquet_text(path))
        elif path.is_file():
            parts.append(path.read_text(errors="replace"))
    return "\n".join(parts).lower()


def test_a_deleted_contact_sharing_a_key_is_restored_whole(exports: Path, db: Path, run) -> None:
    """Hilda is deleted (in the trash) when Zebulon is erased: the household phone is hers too,
    so her restore brings back every interaction she had."""
    write_jsonl(
        exports,
        DAY,
        "home.jsonl",
        [
            rec("zq-1", f"{DAY}T09:00:00Z", email=ZEB_EMAIL, phone="(718) 555-0141"),
            rec("hq-1", f"{DAY}T10:00:00Z", email="hilda@quartz-home.test", phone="7185550141"),
            rec("hq-2", f"{DAY}T10:05:00Z", email="hilda@quartz-home.test"),
        ],
    )
    no_matching = {"min_contacts_to_match": 10**9}
    run(**no_matching)
    owner = contact_of(db)
    hilda, zeb = owner["hq-1"], owner["zq-1"]
    assert hilda != zeb
    delete_contacts(db, [hilda])
    run(**no_matching)  # Hilda's interactions wait in the trash
    assert "hq-1" not in contact_of(db)
    result = CliRunner().invoke(app, ["erase", zeb, "--confirm", ZEB_NORM, "--db", str(db)])
    assert result.exit_code == 0, result.output
    run(**no_matching)
    restore_contacts(db, [hilda])
    run(**no_matching)
    owner = contact_of(db)
    assert owner == {"hq-1": hilda, "hq-2": hilda}
    assert query(db, "SELECT interactions_removed FROM erasures").item() == 1
