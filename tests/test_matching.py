"""Splink proposals inside the real nightly job: explanations, stable ids, durable rejections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assets.resources import ContactsSettings
from contacts.cli import app
from contacts.demo import GeneratorConfig, generate_exports
from contacts.runner import run_pipeline
from tests.conftest import SECRET, query, rec, write_jsonl


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("matching")
    exports = root / "exports"
    generate_exports(exports, GeneratorConfig(persons=400, days=3, seed=5, secret=SECRET))
    # One person typed the same phone with a work and a personal email: the phone is ambiguous
    # to auto-merge (two identities), so the pair must come back as a proposal.
    write_jsonl(
        exports,
        "2026-11-03",
        "zz-handmade.jsonl",
        [
            rec(
                "hm1",
                "2026-11-03T09:00:00Z",
                channel="email",
                name="Priyanka Ramaswamy",
                email="priyanka@ramaswamy-consulting.test",
                phone="+1 415 555 0134",
                company="Ramaswamy Consulting",
            ),
            rec(
                "hm2",
                "2026-11-03T10:00:00Z",
                channel="widget",
                name="Priyanka Ramaswamy",
                email="priyanka.ramaswamy77@gmail.com",
                phone="(415) 555-0134",
            ),
            # A nickname at the same company.
            rec(
                "nk1",
                "2026-11-03T09:00:00Z",
                channel="email",
                name="Robert Kowalczyk",
                email="robert.kowalczyk@northwind-labs.test",
                company="Northwind Labs",
            ),
            rec(
                "nk2",
                "2026-11-03T11:00:00Z",
                channel="widget",
                name="Bob Kowalczyk",
                email="bobkowal@gmail.com",
                company="Northwind Labs Inc.",
            ),
            # A nickname, a personal address with the employer typed into the form, and the
            # work address with no company: only the employer ties the two beyond the name.
            rec(
                "ke1",
                "2026-11-03T09:00:00Z",
                channel="email",
                name="Katherine Brannigan",
                email="kbrannigan@halcyon-robotics.test",
            ),
            rec(
                "ke2",
                "2026-11-03T11:00:00Z",
                channel="widget",
                name="Kathy Brannigan",
                email="kathy.brannigan@gmail.com",
                company="Halcyon Robotics GmbH",
            ),
            # One mistyped phone digit.
            rec(
                "tp1",
                "2026-11-03T09:00:00Z",
                channel="widget",
                name="Dmitri Volkov",
                email="dmitri@volkov-design.test",
                phone="+1 617 555 0142",
            ),
            rec(
                "tp2",
                "2026-11-03T12:00:00Z",
                channel="sms",
                name="Dmitri Volkov",
                phone="+1 617 555 0143",
            ),
            # Same-name strangers at different companies.
            rec(
                "st1",
                "2026-11-03T09:00:00Z",
                channel="email",
                name="Maria Lopez",
                email="maria@acme-widgets.test",
                phone="+1 212 555 0187",
                company="Acme Widgets",
            ),
            rec(
                "st2",
                "2026-11-03T09:30:00Z",
                channel="email",
                name="Maria Lopez",
                email="mlopez@globex-foods.test",
                phone="+1 312 555 0163",
                company="Globex Foods",
            ),
            # A household: two people, one surname, one home phone.
            rec(
                "hh1",
                "2026-11-03T09:00:00Z",
                channel="widget",
                name="Ana Garcia",
                email="ana@garcia-home.test",
                phone="+1 305 555 0121",
            ),
            rec(
                "hh2",
                "2026-11-03T09:40:00Z",
                channel="widget",
                name="Luis Garcia",
                email="luis@garcia-home.test",
                phone="+1 305 555 0121",
            ),
            # One person's two channel faces that share no identifier: a widget visitor who
            # left an email, and the same person on WhatsApp (phone, profile name). Only the name
            # and the workspace's custom attributes tie them (issue 3: the most common miss).
            rec(
                "wa1",
                "2026-11-03T08:00:00Z",
                channel="widget",
                name="Ingeborg Thorvaldsen",
                email="ingeborg.thorvaldsen@fastmail.test",
                attributes={"city": "Porto", "signup_source": "webinar", "seats": 40},
            ),
            rec(
                "wa2",
                "2026-11-03T13:00:00Z",
                channel="whatsapp",
                name="Ingeborg Thorvaldsen",
                phone="351912345678",
                attributes={"city": "Porto", "signup_source": "webinar", "seats": 40},
            ),
            # A stranger of the same name elsewhere: the attributes she has contradict.
            rec(
                "wa3",
                "2026-11-03T14:00:00Z",
                channel="whatsapp",
                name="Ingeborg Thorvaldsen",
                phone="4791234567",
                attributes={"city": "Oslo", "signup_source": "referral"},
            ),
        ],
    )
    db = root / "contacts.duckdb"
    settings = ContactsSettings(exports_dir=str(exports), db_path=str(db))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASKVAULT_IDENTITY_SECRET", SECRET)
        run_pipeline(settings)
    return settings, db


def _proposals(db: Path):
    return query(db, "SELECT * FROM merge_proposals ORDER BY proposal_id")


def test_second_email_pair_is_proposed_with_explanation(world) -> None:
    settings, db = world
    ids = dict(
        query(
            db,
            "SELECT interaction_id, contact_id FROM interactions WHERE interaction_id IN ('hm1','hm2')",
        ).iter_rows()
    )
    assert ids["hm1"] != ids["hm2"], "an ambiguous phone must not auto-merge"
    pair = tuple(sorted(ids.values()))
    proposals = _proposals(db)
    row = proposals.filter(
        (proposals["contact_id_l"] == pair[0]) & (proposals["contact_id_r"] == pair[1])
    )
    assert row.height == 1 and row.item(0, "status") == "pending"
    assert row.item(0, "match_probability") >= settings.proposal_threshold
    explanation = {e["field"]: e for e in json.loads(row.item(0, "explanation"))}
    assert set(explanation) == {
        "name",
        "email",
        "phone",
        "company",
        "employer",
        "attributes",
        "tags",
    }
    assert (
        explanation["name"]["level"] == "Exact match on full_name"
        and explanation["name"]["weight"] > 0
    )
    assert explanation["phone"]["weight"] > 0
    # Every proposal is a pair of distinct live contacts above the threshold.
    live = set(query(db, "SELECT contact_id FROM contacts").get_column("contact_id"))
    pending = proposals.filter(proposals["status"] == "pending")
    assert set(pending["contact_id_l"]) | set(pending["contact_id_r"]) <= live
    assert (pending["contact_id_l"] < pending["contact_id_r"]).all()
    assert (pending["match_probability"] >= settings.proposal_threshold).all()


@pytest.mark.parametrize(
    ("a", "b", "proposed"),
    [
        ("nk1", "nk2", True),
        ("ke1", "ke2", True),
        ("tp1", "tp2", True),
        ("wa1", "wa2", True),
        ("st1", "st2", False),
        ("hh1", "hh2", False),
        ("wa1", "wa3", False),
        ("wa2", "wa3", False),
    ],
    ids=[
        "nickname",
        "nickname-work-email-vs-typed-company",
        "phone-typo",
        "widget-email-vs-whatsapp-phone",
        "same-name-strangers",
        "household",
        "same-name-other-city",
        "same-name-other-city-whatsapp",
    ],
)
def test_planted_pairs(world, a: str, b: str, proposed: bool) -> None:
    settings, db = world
    ids = dict(
        query(
            db,
            f"SELECT interaction_id, contact_id FROM interactions WHERE interaction_id IN ('{a}','{b}')",
        ).iter_rows()
    )
    assert ids[a] != ids[b], "these pairs share no unambiguous key: auto-merge keeps them apart"
    low, high = sorted(ids.values())
    pending = query(
        db,
        f"SELECT count(*) FROM merge_proposals WHERE status = 'pending' "
        f"AND contact_id_l = '{low}' AND contact_id_r = '{high}'",
    ).item()
    assert pending == (1 if proposed else 0)


def test_a_work_email_domain_and_a_typed_company_are_one_employer(world) -> None:
    _, db = world
    row = query(
        db,
        "SELECT explanation FROM merge_proposals p JOIN interactions a "
        "ON a.contact_id IN (p.contact_id_l, p.contact_id_r) AND a.interaction_id = 'ke1' "
        "JOIN interactions b ON b.contact_id IN (p.contact_id_l, p.contact_id_r) "
        "AND b.interaction_id = 'ke2'",
    )
    assert row.height == 1
    explanation = {e["field"]: e for e in json.loads(row.item(0, "explanation"))}
    assert explanation["employer"]["level"] == "same employer: company name or work email domain"
    assert explanation["employer"]["weight"] > 0
    # Only one side typed a company: the company comparison has nothing to say, so the
    # employer's evidence is not counted twice.
    assert explanation["company"]["level"] == "missing on one side"


def test_rejection_is_durable_and_ids_are_stable(world, monkeypatch) -> None:
    settings, db = world
    monkeypatch.setenv("ASKVAULT_IDENTITY_SECRET", SECRET)
    before = _proposals(db)
    pending = before.filter(before["status"] == "pending")
    assert pending.height >= 2
    target = pending.item(0, "proposal_id")
    result = CliRunner().invoke(
        app, ["proposals", "reject", target, "--db", str(db), "--note", "different people"]
    )
    assert result.exit_code == 0, result.output
    summary = run_pipeline(settings)
    after = _proposals(db)
    rejected = after.filter(after["proposal_id"] == target).row(0, named=True)
    assert (rejected["status"], rejected["note"]) == ("rejected", "different people")
    still = set(pending["proposal_id"]) - {target}
    assert still <= set(after.filter(after["status"] == "pending")["proposal_id"]), (
        "pending ids are stable"
    )
    assert summary.pending_proposals == pending.height - 1
    # Rejecting twice is refused with one line.
    again = CliRunner().invoke(app, ["proposals", "reject", target, "--db", str(db)])
    assert again.exit_code == 1 and "is rejected, not pending" in again.output
