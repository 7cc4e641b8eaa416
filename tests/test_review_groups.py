"""Review by person (issue 24, item 4): proposals grouped by the contacts they connect, decided
once, and each score read in words whose parts add up to the total."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from assets.resources import ContactsSettings
from contacts.cli import app
from contacts.runner import run_pipeline
from contacts.web import CSRF_COOKIE, create_app
from dedup.decisions import ACCEPT_PROPOSAL, MANUAL_MERGE, REJECT_PROPOSAL, read_all
from dedup.layout import StateLayout
from dedup.service import review
from dedup.service.explain_words import in_words, level_words, odds, strength
from dedup.service.review_groups import (
    MODEL_FILE,
    Edge,
    decide_group,
    open_proposals,
    plan,
    proposal_group,
    proposal_groups,
    with_groups,
)
from tests.conftest import REVIEW_GROUP, query
from tests.webauth import ADMIN, serving, sign_in_browser, signed_in_client

CHROMIUM = "/usr/bin/chromium"
GROUP = REVIEW_GROUP  # one person, three contacts (tests.conftest.review_world)


@pytest.fixture(scope="module")
def world(review_world: Path) -> Path:
    """A published file with the group of three among generated people's proposals (read
    only)."""
    return review_world


@pytest.fixture
def copy(world: Path, tmp_path: Path):
    """A private copy of the world's published file and state, plus a runner for it."""
    db = tmp_path / "contacts.duckdb"
    shutil.copy(world / "out" / "contacts.duckdb", db)
    shutil.copytree(world / "out" / "contacts.duckdb.state", tmp_path / "contacts.duckdb.state")

    def run() -> None:
        run_pipeline(ContactsSettings(exports_dir=str(world / "exports"), db_path=str(db)))

    return db, run


def group_contacts(db: Path) -> dict[str, str]:
    return dict(
        query(
            db,
            "SELECT interaction_id, contact_id FROM interactions "
            f"WHERE interaction_id IN {GROUP} ORDER BY 1",
        ).iter_rows()
    )


# --- pure: grouping and planning on inline frames ------------------------------------------


def test_groups_are_connected_components_named_by_their_top_proposal() -> None:
    proposals = pl.DataFrame(
        {
            # a path a-b-c, a separate pair d-e, a triangle f-g-h
            "proposal_id": ["p_ab", "p_bc", "p_de", "p_fg", "p_gh", "p_fh"],
            "contact_id_l": ["a", "b", "d", "f", "g", "f"],
            "contact_id_r": ["b", "c", "e", "g", "h", "h"],
            "match_probability": [0.91, 0.99, 0.95, 0.9, 0.9, 0.97],
        }
    )
    groups = dict(with_groups(proposals).select("proposal_id", "group_id").iter_rows())
    assert groups == {
        "p_ab": "p_bc",
        "p_bc": "p_bc",
        "p_de": "p_de",
        "p_fg": "p_fh",
        "p_gh": "p_fh",
        "p_fh": "p_fh",
    }


PATH = [Edge("p_ab", "a", "b"), Edge("p_bc", "b", "c")]
TRIANGLE = [Edge("p_ab", "a", "b"), Edge("p_bc", "b", "c"), Edge("p_ac", "a", "c")]


def shape(decisions) -> list[tuple]:
    return [
        (d.kind, d.proposal_id, d.contact_id_l, d.contact_id_r, d.survivor_id) for d in decisions
    ]


def test_accept_all_makes_one_merge_per_member_into_the_survivor() -> None:
    # Triangle, keep b: the proposals b-a and b-c carry the merges; a-c has nothing left to say.
    got = plan(TRIANGLE, ["a", "b", "c"], {"p_ab", "p_bc", "p_ac"}, set(), "b")
    assert shape(got) == [
        (ACCEPT_PROPOSAL, "p_ab", "a", "b", "b"),
        (ACCEPT_PROPOSAL, "p_bc", "b", "c", "b"),
    ]
    # Path a-b-c, keep a: no proposal pairs a with c, so c joins a by a manual merge that
    # names the accepted proposals connecting them.
    got = plan(PATH, ["a", "b", "c"], {"p_ab", "p_bc"}, set(), "a")
    assert shape(got) == [
        (ACCEPT_PROPOSAL, "p_ab", "a", "b", "a"),
        (MANUAL_MERGE, None, "a", "c", "a"),
    ]
    assert got[1].note == "group decision: accepted proposals p_ab, p_bc connect them"


def test_split_reject_all_and_contradictions() -> None:
    # Split on the path: a-b are one person, c is someone else; survivor not given → seen first.
    got = plan(PATH, ["b", "a", "c"], {"p_ab"}, {"p_bc"}, None)
    assert shape(got) == [
        (ACCEPT_PROPOSAL, "p_ab", "a", "b", "b"),
        (REJECT_PROPOSAL, "p_bc", "b", "c", None),
    ]
    assert [
        d.kind for d in plan(TRIANGLE, ["a", "b", "c"], set(), {"p_ab", "p_bc", "p_ac"}, None)
    ] == [REJECT_PROPOSAL] * 3
    # Accepting a-b and b-c makes a and c one contact: rejecting a-c contradicts it.
    with pytest.raises(review.ReviewError, match="cannot reject p_ac"):
        plan(TRIANGLE, ["a", "b", "c"], {"p_ab", "p_bc"}, {"p_ac"}, "a")
    with pytest.raises(review.ReviewError, match="not a contact of this group"):
        plan(PATH, ["a", "b", "c"], {"p_ab"}, set(), "z")
    with pytest.raises(review.ReviewError, match="both accepted and rejected"):
        plan(PATH, ["a", "b", "c"], {"p_ab"}, {"p_ab"}, "a")


# --- words ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bits", "word"),
    [
        # Kass & Raftery's Bayes-factor scale in bits: 3 → 1.58, 20 → 4.32, 150 → 7.23.
        (0.0, "no evidence"),
        (0.32, "weak"),
        (-1.5, "weak"),
        (1.6, "moderate"),
        (4.2, "moderate"),
        (4.4, "strong"),
        (-4.43, "strong"),
        (7.3, "very strong"),
    ],
)
def test_strength_buckets(bits: float, word: str) -> None:
    assert strength(bits) == word


def test_levels_and_odds_read_as_words() -> None:
    assert level_words("phone", "Damerau-Levenshtein distance of phone <= 1") == (
        "phones one digit apart"
    )
    assert level_words("name", "Exact match on full_name") == "same name"
    assert level_words("p_date_dob", "Damerau-Levenshtein distance of p_date_dob <= 1") == (
        "dob one character apart"
    )
    assert level_words("company", "missing on one side") == "company missing on one side"
    assert level_words("attributes", "two attributes agree") == "two attributes agree"
    assert (odds(-8.7), odds(13.1), odds(1.0)) == ("1 to 416", "8,780 to 1", "2.0 to 1")


def test_rarity_is_the_term_frequency_part_of_an_exact_agreement() -> None:
    explanation = [{"field": "name", "level": "Exact match on full_name", "weight": 12.0}]
    base = {("name", "Exact match on full_name"): 9.8}
    rare = in_words(explanation, 3.0, base)["lines"][0]
    assert rare["reads"] == "same name, rare here: very strong for"
    common = in_words([{**explanation[0], "weight": 8.3}], 3.0, base)["lines"][0]
    assert common["words"] == "same name, common here"
    assert in_words([{**explanation[0], "weight": 9.5}], 3.0, base)["lines"][0]["words"] == (
        "same name"
    )


# --- a real run ----------------------------------------------------------------------------


def test_a_real_run_puts_the_three_contacts_in_one_group(world: Path) -> None:
    db = world / "out" / "contacts.duckdb"
    ids = group_contacts(db)
    assert len(set(ids.values())) == 3, "exact keys must not join them: the test needs three"
    frame = open_proposals(db)
    mine = frame.filter(
        pl.col("contact_id_l").is_in(list(ids.values()))
        | pl.col("contact_id_r").is_in(list(ids.values()))
    )
    assert mine.height >= 2 and mine["group_id"].n_unique() == 1
    group = proposal_group(db, mine.item(0, "proposal_id"))
    assert {m["contact_id"] for m in group["members"]} == set(ids.values())
    assert group["survivor"] == ids["g1"]  # seen first
    row = next(r for r in proposal_groups(db) if r["group_id"] == group["group_id"])
    assert row["size"] == 3 and row["proposals"] == mine.height
    # Every other group of the world is a pair (what the queue showed before).
    assert all(r["size"] == 2 for r in proposal_groups(db) if r["group_id"] != row["group_id"])


def test_real_explanations_add_up_from_the_saved_prior(world: Path) -> None:
    db = world / "out" / "contacts.duckdb"
    model = json.loads((StateLayout(db).state_dir / MODEL_FILE).read_text())["settings"]
    prior = model["probability_two_random_records_match"]
    prior_bits = math.log2(prior / (1 - prior))
    rows = query(db, "SELECT match_weight, explanation FROM merge_proposals").rows()
    assert rows
    for weight, explanation in rows:
        words = in_words(explanation, weight)
        parts = words["start"]["bits"] + math.fsum(line["bits"] for line in words["lines"])
        assert parts == pytest.approx(words["total"]["bits"], abs=1e-9)
        # The stored weights are rounded to 3 decimals; the start is the model's prior.
        assert words["start"]["bits"] == pytest.approx(prior_bits, abs=0.01)
    group = proposal_group(db, open_proposals(db).item(0, "proposal_id"))
    reads = [line["reads"] for p in group["proposals"] for line in p["words"]["lines"]]
    assert reads and all(
        re.match(r"^[a-z].*: (weak|moderate|strong|very strong) (for|against)$", r) for r in reads
    )


def test_decide_group_refuses_a_stale_view_and_leaves_no_moot_pair(copy) -> None:
    db, _ = copy
    ids = group_contacts(db)
    frame = open_proposals(db).filter(pl.col("contact_id_l").is_in(list(ids.values())))
    anchor = frame.item(0, "proposal_id")
    shown = proposal_group(db, anchor)["proposals"]
    with pytest.raises(review.ReviewError, match="group changed"):
        decide_group(db, anchor, "accept", ids["g2"], shown=[shown[0]["proposal_id"]])
    with pytest.raises(review.ReviewError, match="choose the contact that stays"):
        decide_group(db, anchor, "accept")
    assert read_all(StateLayout(db).decisions_path).height == 0
    made = decide_group(
        db, anchor, "accept", ids["g2"], shown=[p["proposal_id"] for p in shown], who="ana"
    )
    assert len(made) == 2  # one merge per member other than the survivor
    # The third proposal is moot now: out of the queue, the groups, and refused if decided.
    waiting = {d["proposal_id"] for d in review.pending_decisions(db)}
    (moot,) = [p["proposal_id"] for p in shown if p["proposal_id"] not in waiting]
    assert moot not in {r["proposal_id"] for r in review.review_queue(db, limit=200)}
    assert moot not in set(open_proposals(db)["proposal_id"])
    with pytest.raises(review.ReviewError, match="become one contact at the next run already"):
        review.reject_proposal(db, moot)


def test_cli_group_show_and_accept(copy) -> None:
    db, _ = copy
    ids = group_contacts(db)
    anchor = (
        open_proposals(db)
        .filter(pl.col("contact_id_r").is_in(list(ids.values())))
        .item(0, "proposal_id")
    )
    runner = CliRunner()
    shown = runner.invoke(app, ["proposals", "group", "show", anchor, "--db", str(db)])
    assert shown.exit_code == 0, shown.output
    assert "3 contacts" in shown.output and "Starting odds" in shown.output
    done = runner.invoke(
        app,
        ["proposals", "group", "accept", anchor, "--survivor", ids["g3"], "--db", str(db)],
    )
    assert done.exit_code == 0, done.output
    log = read_all(StateLayout(db).decisions_path)
    assert set(log["survivor_id"]) == {ids["g3"]} and log.height == 2


def test_group_decision_needs_the_page_token(copy) -> None:
    db, _ = copy
    anchor = open_proposals(db).item(0, "proposal_id")
    client = signed_in_client(db, follow_redirects=False)
    refused = client.post(f"/groups/{anchor}/decide", data={"action": "reject"})
    assert refused.status_code == 403
    assert read_all(StateLayout(db).decisions_path).height == 0
    page = client.get(f"/groups/{anchor}")
    assert page.status_code == 200
    shown = re.findall(r'name="shown" value="([^"]+)"', page.text)
    form = {"action": "reject", "csrf_token": client.cookies.get(CSRF_COOKIE)}
    # Without the proposals the page showed, nothing is decided (the group may have changed).
    stale = client.post(f"/groups/{anchor}/decide", data=form)
    assert stale.status_code == 400 and "group changed" in stale.text
    done = client.post(f"/groups/{anchor}/decide", data={**form, "shown": shown})
    assert done.status_code == 303
    log = read_all(StateLayout(db).decisions_path)
    assert set(log["proposal_id"]) == set(shown) and set(log["kind"]) == {REJECT_PROPOSAL}


# --- the browser ---------------------------------------------------------------------------


@pytest.fixture
def server(copy):
    db, run = copy
    with serving(create_app(db)) as base:
        yield base, db, run


def test_browser_decides_a_three_contact_group_in_one_action(server, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, db, run = server
    ids = group_contacts(db)
    keep = ids["g3"]  # not the one seen first: the admin's choice must win
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        sign_in_browser(page, base, db)
        row = page.locator("#queue tbody tr[data-group]")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("3 contacts")
        row.get_by_role("link", name="Review group").click()
        expect(page.locator("#members thead th[data-contact]")).to_have_count(3)
        why = page.locator("#proposals")
        expect(why).to_contain_text("Starting odds")
        expect(why).to_contain_text("phones one digit apart")
        page.screenshot(path=str(tmp_path / "review-group.png"), full_page=True)
        page.locator(f'input[name="survivor"][value="{keep}"]').check()
        page.locator("#accept-all").click()  # the one action
        expect(page.locator(".msg")).to_contain_text(f"{keep} survives")
        expect(page.locator("#queue tbody tr[data-group]")).to_have_count(0)
        for other in set(ids.values()) - {keep}:
            expect(page.locator("#queue")).not_to_contain_text(other)
        browser.close()

    run()  # the next night applies the decision
    assert set(group_contacts(db).values()) == {keep}
    merges = query(
        db,
        "SELECT merge_id, kind, survivor_id, merged_ids, decided_by FROM merges WHERE kind <> 'auto'",
    ).to_dicts()
    assert {m["survivor_id"] for m in merges} == {keep}
    assert {c for m in merges for c in m["merged_ids"]} == set(ids.values()) - {keep}
    assert {m["decided_by"] for m in merges} == {f"{ADMIN} (web)"}
    # Each member joined by a merge of its own: undoing one brings that contact back as it was.
    (undone,) = [m for m in merges if ids["g2"] in m["merged_ids"]]
    review.unmerge(db, undone["merge_id"], who="ana")
    run()
    back = group_contacts(db)
    assert back["g2"] == ids["g2"] and back["g3"] == keep


def test_undoing_one_merge_of_a_group_keeps_the_other_members(copy) -> None:
    db, run = copy
    ids = group_contacts(db)
    anchor = (
        open_proposals(db)
        .filter(pl.col("contact_id_r").is_in(list(ids.values())))
        .item(0, "proposal_id")
    )
    keep = ids["g3"]
    decide_group(db, anchor, "accept", keep, who="ana")
    run()
    merges = query(db, "SELECT merge_id, merged_ids FROM merges WHERE kind <> 'auto'").to_dicts()
    (undone,) = [m for m in merges if ids["g2"] in m["merged_ids"]]
    review.unmerge(db, undone["merge_id"], who="ana")
    run()
    back = group_contacts(db)
    assert back == {"g1": keep, "g2": ids["g2"], "g3": keep}
    # The other merge still applies (it is not refused as joining what the admin separated).
    refused = query(
        db, "SELECT decision_id, detail FROM admin_decisions WHERE outcome <> 'applied'"
    )
    assert refused.height == 0, refused.to_dicts()
