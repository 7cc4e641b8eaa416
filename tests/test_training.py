"""Unsupervised training on small real data: what a failed or sampled EM session leaves behind."""

from __future__ import annotations

import copy
import random

import duckdb
import polars as pl
import pytest
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from dedup.matching.model import TrainedModel, TrainingConfig, estimate_prior, predict, train
from dedup.matching.records import attribute_arrays_of, company_norm, contact_records
from dedup.matching.settings import ATTRIBUTES, COMPANY, EMAIL, EMPLOYER, contact_settings
from tests.conftest import generated_records

COMPARED = [
    c["output_column_name"]
    for c in contact_settings().create_settings_dict("duckdb")["comparisons"]
]


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    return generated_records(tmp_path_factory.mktemp("training"))


@pytest.fixture(scope="module")
def model(records: pl.DataFrame) -> TrainedModel:
    # Read-only in the tests that share it: each changes a copy (deepcopy, or the saved file).
    return train(records, TrainingConfig(u_max_pairs=2e5))


@pytest.fixture(scope="module")
def every_session_em(records: pl.DataFrame) -> TrainedModel:
    """EM forced onto every blocking session of these few hundred contacts (`em_min_contacts=0`),
    trained once for the two tests that read it (neither changes it)."""
    return train(records, TrainingConfig(u_max_pairs=2e5, em_min_contacts=0))


def compared(model) -> list[str]:
    return [c["output_column_name"] for c in model.settings["comparisons"]]


def test_a_failed_em_session_keeps_every_comparison(
    records: pl.DataFrame, every_session_em: TrainedModel
) -> None:
    # EM forced onto a few hundred contacts: the phone session drives a level's m to 0 and
    # Splink refuses it. The session is reported and skipped; the model keeps comparing phones.
    model = every_session_em
    outcomes = model.diagnostics["em_sessions"]
    assert any(o.startswith("skipped") for o in outcomes.values()), outcomes
    assert any(o.startswith("converged") for o in outcomes.values()), outcomes
    assert compared(model) == COMPARED
    assert predict(records, model, 0.5)[0].height > 0


def test_the_em_sample_grows_with_the_contacts_between_its_bounds() -> None:
    config = TrainingConfig()
    assert config.em_sample_pairs(20_000) == config.em_min_pairs  # small: every pair
    assert config.em_sample_pairs(1_000_000) == 1_600_000
    assert config.em_sample_pairs(3_000_000) == config.em_max_pairs
    assert TrainingConfig(em_max_pairs=10).em_sample_pairs(1_000_000) == 10


def test_em_trains_on_a_sample_of_a_large_blocking(
    records: pl.DataFrame, every_session_em: TrainedModel
) -> None:
    # Every session is "large" at this limit, so each trains on Splink's hash sample of its
    # pairs: the path a 10M-interaction workspace takes.
    full = every_session_em
    sampled = train(
        records,
        TrainingConfig(u_max_pairs=2e5, em_min_contacts=0, em_max_pairs=10, em_probe_share=1.0),
    )
    outcomes = sampled.diagnostics["em_sessions"].values()
    assert any("on a sample of ~10 of" in o for o in outcomes), outcomes
    assert compared(sampled) == COMPARED
    # A sample of about 10 pairs is not all of them: the m values differ from the full session's.
    assert sampled.settings["comparisons"] != full.settings["comparisons"]


def test_a_model_saved_by_a_release_with_other_comparisons_is_retrained(
    records: pl.DataFrame, model: TrainedModel, tmp_path
) -> None:
    config = TrainingConfig(u_max_pairs=2e5)
    model.save(tmp_path / "model.json")
    saved = TrainedModel.load(tmp_path / "model.json")
    assert saved is not None
    assert saved.retrain_reason(records.height, config) is None
    # As a model saved before the "shares any email" level was dropped would look.
    email = next(c for c in saved.settings["comparisons"] if c["output_column_name"] == "email")
    email["comparison_levels"].insert(
        1,
        {
            "sql_condition": 'array_length(list_intersect("emails_l", "emails_r")) >= 1',
            "label_for_charts": "Array intersection size >= 1",
            "m_probability": 0.05,
            "u_probability": 1e-6,
        },
    )
    assert saved.retrain_reason(records.height, config) == (
        "the comparisons changed since it was trained"
    )
    assert "drift" in (model.retrain_reason(records.height * 2, config) or "")


def test_prior_counts_same_name_same_attributes_once() -> None:
    # Splink's fake_1000 shape (names, dob and city) where most contacts have no company.
    def contact(name: str, values: list[str], company: str | None = None) -> dict:
        return {"full_name": name, "company": company, "phone_last7": None, "attr_values": values}

    frame = pl.DataFrame(
        [
            contact("ann lee", ["city=leeds", "dob=1990-01-02"], "acme"),
            contact("ann lee", ["city=leeds", "dob=1990-01-02"], "acme"),
            # 3 pairs, counted once though they also share a company
            contact("ann lee", ["city=leeds", "dob=1990-01-02"], "acme"),
            contact("bo ng", ["city=york"]),
            contact("bo ng", ["city=york"]),  # one shared value is not enough
            contact("cy ma", ["city=hull", "dob=1970-05-06"]),
        ],
        schema={
            "full_name": pl.String,
            "company": pl.String,
            "phone_last7": pl.String,
            "attr_values": pl.List(pl.String),
        },
    )
    config = TrainingConfig(deterministic_recall=0.5)
    assert estimate_prior(frame, config) == pytest.approx(3 / 0.5 / 15)  # 6 contacts: 15 pairs


def levels_reached(records: pl.DataFrame, comparison) -> list[int]:
    """Splink's gamma of `comparison` for each pair of `records` that share a `pair` value, in
    the order of the pairs (each pair is its own block)."""
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[comparison],
        blocking_rules_to_generate_predictions=[block_on("pair")],
        retain_matching_columns=True,
    )
    linker = Linker(DuckDBAPI().register(records.to_arrow()), settings)
    name = comparison.create_comparison_dict("duckdb")["output_column_name"]
    return (
        linker.inference.predict(warning_mode="never")
        .as_duckdbpyrelation()
        .pl()
        .sort("pair_l")
        .get_column(f"gamma_{name}")
        .to_list()
    )


def test_attribute_levels_count_shared_values_and_see_conflicts() -> None:
    # Each pair is its own block; the level reached is Splink's gamma (4 = an attribute both
    # have differs, 3/2/1 = that many values agree, 0 = nothing shared, -1 = missing).
    left_right = [
        (["city=leeds"], ["city=york"], 4),
        (["city=leeds", "dob=1990"], ["city=leeds", "dob=1991"], 4),
        (["a=1", "b=2", "c=3"], ["a=1", "b=2", "c=3", "d=4"], 3),
        (["a=1", "b=2"], ["b=2", "a=1"], 2),
        (["city=leeds", "src=ads"], ["city=leeds", "team=x"], 1),
        (["city=leeds"], ["src=ads"], 0),
        (["city=leeds"], None, -1),
    ]
    rows = []
    for pair, (left, right, _) in enumerate(left_right):
        for side, values in (("l", left), ("r", right)):
            keys = None if values is None else sorted({v.split("=")[0] for v in values})
            rows.append(
                {
                    "unique_id": f"{pair}{side}",
                    "pair": pair,
                    "attr_values": values,
                    "attr_keys": keys,
                }
            )
    records = pl.DataFrame(
        rows,
        schema={
            "unique_id": pl.String,
            "pair": pl.Int64,
            "attr_values": pl.List(pl.String),
            "attr_keys": pl.List(pl.String),
        },
    )
    assert levels_reached(records, ATTRIBUTES) == [level for _, _, level in left_right]


def test_guarded_edit_distance_levels_equal_the_plain_ones() -> None:
    """The phone and email-typo levels skip the edit distance where it cannot hold; on random
    single edits (every position, 8-16 characters) and unrelated pairs, each level says exactly
    what the plain condition says."""
    rng = random.Random(3)

    def number(n: int) -> str:
        return "+" + "".join(rng.choice("0123456789") for _ in range(n - 1))

    def edit(a: str) -> str:
        p = rng.randrange(1, len(a) - 1)
        return rng.choice(
            [
                a[:p] + rng.choice("0123456789") + a[p + 1 :],  # a digit replaced
                a[:p] + rng.choice("0123456789") + a[p:],  # one added
                a[:p] + a[p + 1 :],  # one dropped
                a[:p] + a[p + 1] + a[p] + a[p + 2 :],  # two swapped
            ]
        )

    pairs = []
    for _ in range(4000):
        a = number(rng.randint(8, 16))
        pairs.append((a, edit(a) if rng.random() < 0.8 else number(rng.randint(8, 16))))
    frame = pl.DataFrame(pairs, schema=["l", "r"], orient="row")
    levels = {
        c["output_column_name"]: c["comparison_levels"]
        for c in contact_settings().create_settings_dict("duckdb")["comparisons"]
    }
    one_edit = next(
        lv["sql_condition"] for lv in levels["phone"] if "Damerau" in lv["label_for_charts"]
    )
    swapped = next(
        lv["sql_condition"] for lv in levels["email"] if "swapped" in lv["label_for_charts"]
    )
    as_phone = one_edit.replace("phone_l", "l").replace("phone_r", "r")
    as_email = (
        swapped.replace("email_local_l", "l")
        .replace("email_local_r", "r")
        .replace("email_domain_l", "'x.com'")
        .replace("email_domain_r", "'x.com'")
    )
    con = duckdb.connect()
    con.register("pairs", frame.to_arrow())
    found = con.sql(
        f"SELECT ({as_phone}) = (damerau_levenshtein(l, r) <= 1) AS phone, "
        f"({as_email}) = (damerau_levenshtein(l, r) = 1 AND levenshtein(l, r) = 2) AS email, "
        "damerau_levenshtein(l, r) <= 1 AS near FROM pairs"
    ).pl()
    assert found.get_column("phone").all() and found.get_column("email").all()
    assert found.get_column("near").sum() > 3000  # the edits are there to be found


def test_employer_level_compares_a_typed_company_with_the_other_sides_work_domain() -> None:
    # (left company, left email, right company, right email, Splink's gamma): 1 = the same
    # employer, 0 = another one, -1 = nothing to compare (free mail, both typed a company,
    # or two work addresses at one domain).
    cases = [
        ("Halcyon Robotics GmbH", "kathy@gmail.com", None, "kb@mail.halcyon-robotics.co.uk", 1),
        ("Monarch Media", "m@monarchmedia.com", None, "mm@monarchmedia.com", 1),
        ("Zürich Analytics AG", None, None, "z@zurich-analytics.ch", 1),
        (None, "c@oresundsoftware.io", "Øresund Software", "c@gmail.com", 1),
        ("Acme Widgets Inc", None, None, "m@globex.com", 0),
        ("Acme", None, None, "x@gmail.com", -1),
        ("Acme", None, "Acme Corp", "x@acme.com", -1),
        (None, "ana@garcia-home.test", None, "luis@garcia-home.test", -1),
    ]
    rows = []
    for pair, (company_l, email_l, company_r, email_r, _) in enumerate(cases):
        for side, company, email in (("l", company_l, email_l), ("r", company_r, email_r)):
            rows.append({"contact_id": f"{pair}{side}", "company": company, "email_norm": email})
    contacts = pl.DataFrame(
        rows, schema={"contact_id": pl.String, "company": pl.String, "email_norm": pl.String}
    ).with_columns(
        name=pl.lit(None, pl.String),
        phone=pl.lit(None, pl.String),
        phones=pl.lit(None, pl.List(pl.String)),
    )
    records = contact_records(contacts).with_columns(pair=pl.col("unique_id").str.head(1))
    assert levels_reached(records, EMPLOYER) == [level for *_, level in cases]


def test_a_company_is_compared_without_its_legal_form_however_written() -> None:
    written = pl.DataFrame(
        {
            "company": [
                "Acme Studio S.A.", "Acme Studio", "acme studio sa", "Polaris Studio G.m.b.H.",
                "Polaris Studio GmbH", "Sakura L.L.C.", "Sakura", "Foo Co., Ltd.", "Foo",
                "AS Roma", "Inc", None,
            ]
        }
    )  # fmt: skip
    found = written.select(company_norm(pl.col("company"))).to_series().to_list()
    assert found == [
        "acme studio", "acme studio", "acme studio", "polaris studio", "polaris studio",
        "sakura", "sakura", "foo", "foo",
        "as roma",  # a legal form is removed where it stands, at the end
        None, None,
    ]  # fmt: skip


def _pair_records(cases: list[tuple]) -> pl.DataFrame:
    """contact_records of (name, email, company) pairs, each pair its own block."""
    rows = []
    for pair, (left, right, _) in enumerate(cases):
        for side, (name, email, company) in (("l", left), ("r", right)):
            rows.append({"contact_id": f"{pair}{side}", "name": name, "email_norm": email,
                         "company": company})  # fmt: skip
    contacts = pl.DataFrame(
        rows,
        schema={"contact_id": pl.String, "name": pl.String, "email_norm": pl.String,
                "company": pl.String},
    ).with_columns(phone=pl.lit(None, pl.String), phones=pl.lit(None, pl.List(pl.String)))  # fmt: skip
    return contact_records(contacts).with_columns(pair=pl.col("unique_id").str.head(1))


def test_one_letter_typed_wrong_in_an_address_is_told_from_namesakes_and_colleagues() -> None:
    # Splink's gamma of EMAIL: 1 = one letter of the local part typed wrong, 0 = other addresses.
    cases = [
        (("Whitney Rogers", "whitney_rogers98@yahoo.com", None),
         ("Whitney Rogers", "whtney_rogers98@yahoo.com", None), 1),
        ((None, "marketa.novak@seznam.cz", None), (None, "marketta.novak@seznam.cz", None), 1),
        # Colleagues: an initial and a surname.
        (("Ida Tlustek", "itlustek@drub.de", None), ("Jacek Tlustek", "jtlustek@drub.de", None), 0),
        # Namesakes: digits or punctuation differ.
        (("Kevin Davis", "kevindavis47@mail.com", None), ("Kevin Davis", "kevindavis4@mail.com", None), 0),
        (("Zoe Lopez", "zoe.lopez@mail.com", None), ("Zoe Lopez", "zoelopez@mail.com", None), 0),
        # Two people whose names differ as their addresses do.
        (("Mark Kowal", "markkowal@mail.pl", None), ("Mary Kowal", "marykowal@mail.pl", None), 0),
    ]  # fmt: skip
    assert levels_reached(_pair_records(cases), EMAIL) == [level for *_, level in cases]


def test_a_company_typed_short_and_colleagues_at_one_company() -> None:
    # Splink's gamma of COMPANY: 4 = colleagues (same company, first names plainly differ: no
    # evidence), 3 = the same company, 2 = one name begins the other, 1 = spelled alike.
    cases = [
        (("Sophie Watts", None, "Roberts Foster"), ("Conor Watts", None, "Roberts Foster"), 4),
        (("Bob Watts", None, "Roberts Foster"), ("Rob Watts", None, "Roberts Foster Inc"), 3),
        (("Ana Ruiz", None, "Fuentes Group"), ("Ana Ruiz", None, "Fuentes"), 2),
        (("Ana Ruiz", None, "Silveira e Filhos"), ("Ana Ruiz", None, "Silveira"), 2),
        (("Ana Ruiz", None, "Fuentes"), ("Ana Ruiz", None, "Fuentez"), 1),
    ]  # fmt: skip
    assert levels_reached(_pair_records(cases), COMPANY) == [level for *_, level in cases]


def test_attribute_arrays_hold_each_key_once() -> None:
    arrays = attribute_arrays_of(pl.Series(['{"City": "Leeds", "city ": "leeds", "src": "ads"}']))
    assert arrays.row(0, named=True)["attr_keys"] == ["city", "src"]
    assert arrays.row(0, named=True)["attr_values"] == ['city="leeds"', 'src="ads"']


def test_a_saved_model_scores_with_this_releases_level_sql(
    records: pl.DataFrame, model: TrainedModel
) -> None:
    # A saved model keeps its trained m/u by level label; how a level is computed comes from
    # the release, so a faster (equivalent) condition needs no retrain. Here the saved SQL of
    # every attribute level is broken on purpose: the scores must not change.
    stale = copy.deepcopy(model.settings)
    attributes = next(c for c in stale["comparisons"] if c["output_column_name"] == "attributes")
    for level in attributes["comparison_levels"]:
        if not level.get("is_null_level") and level["sql_condition"] != "ELSE":
            level["sql_condition"] = "1 = 0"
    fresh, _ = predict(records, model, 0.5)
    saved, _ = predict(records, TrainedModel(stale, model.trained_on_contacts), 0.5)
    assert fresh.height > 0
    assert saved.sort("unique_id_l", "unique_id_r").equals(fresh.sort("unique_id_l", "unique_id_r"))


def test_predictions_name_contacts_not_splink_row_numbers(
    records: pl.DataFrame, model: TrainedModel
) -> None:
    scored, _ = predict(records, model, 0.5)
    ids = set(records.get_column("unique_id"))
    assert scored.height > 0
    assert set(scored.get_column("unique_id_l")) <= ids
    assert set(scored.get_column("unique_id_r")) <= ids
    # Left is the smaller contact id, as Splink orders string ids.
    assert (scored.get_column("unique_id_l") < scored.get_column("unique_id_r")).all()
