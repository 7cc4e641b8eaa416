"""Custom properties marked `match = true`: compared on their own, blocked on, and kept out of
the generic attribute comparison."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from assets.resources import ContactsSettings
from contacts.demo import GeneratorConfig, generate_exports
from contacts.runner import run_pipeline
from dedup.matching.model import TrainedModel, portable_settings, predict
from dedup.matching.records import contact_records, matched_properties
from dedup.matching.settings import contact_settings
from dedup.properties import PropertySchemaError, load_schema
from tests.conftest import SECRET, contact_of, query, rec, write_jsonl

SCHEMA = """
[properties.dob]
type = "date"
match = true
[properties.city]
type = "string"
match = true
[properties.seats]
type = "number"
"""

# One person twice, with a surname typo, a date of birth one digit off and two emails: no
# identifier is shared, and no name rule pairs them (the surnames differ).
KASIA = [
    rec(
        "kw1",
        "2026-11-02T09:00:00Z",
        channel="email",
        name="Katarzyna Wisniewska",
        email="kasia.w@post-gdansk.test",
        attributes={"dob": "1984-07-19", "city": "Gdansk"},
    ),
    rec(
        "kw2",
        "2026-11-02T10:00:00Z",
        name="Katarzyna Wisnieska",
        email="katarzyna.wis@mailbox.test",
        attributes={"dob": "1984-07-18", "city": "gdansk "},
    ),
]


def _schema(tmp_path: Path) -> Path:
    path = tmp_path / "contact_properties.toml"
    path.write_text(SCHEMA)
    return path


def test_only_text_and_date_like_properties_can_be_matched(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[properties.seats]\ntype = "number"\nmatch = true\n')
    with pytest.raises(PropertySchemaError, match="'seats' is a number"):
        load_schema(path)
    assert matched_properties(load_schema(_schema(tmp_path))) == {
        "dob": "p_date_dob",
        "city": "p_string_city",
    }
    clash = tmp_path / "clash.toml"
    clash.write_text(
        '[properties."Home City"]\ntype = "string"\nmatch = true\n'
        '[properties.home_city]\ntype = "string"\nmatch = true\n'
    )
    with pytest.raises(ValueError, match="differ only in case or punctuation"):
        matched_properties(load_schema(clash))


def test_a_matched_property_is_a_column_and_leaves_the_attribute_arrays() -> None:
    contacts = pl.DataFrame(
        {
            "contact_id": ["c1"],
            "name": ["Ann Lee"],
            "email_norm": [None],
            "phone": [None],
            "phones": [[]],
            "company": [None],
            "attributes": ['{"dob": "1984-07-19", "city": " Leeds", "plan": "pro"}'],
            "tags": [[]],
        },
        schema_overrides={
            "email_norm": pl.String,
            "phone": pl.String,
            "company": pl.String,
            "phones": pl.List(pl.String),
            "tags": pl.List(pl.String),
        },
    )
    plain = contact_records(contacts)
    assert plain.get_column("attr_keys").to_list() == [["city", "dob", "plan"]]
    typed = contact_records(contacts, properties={"dob": "p_date_dob", "city": "p_string_city"})
    row = typed.row(0, named=True)
    assert (row["p_date_dob"], row["p_string_city"]) == ("1984-07-19", "leeds")
    assert row["attr_values"] == ['plan="pro"']


def test_property_comparisons_survive_a_change_of_backend() -> None:
    properties = ("p_date_dob", "p_string_city")
    duck = contact_settings(1e-3, properties).create_settings_dict("duckdb")
    spark = portable_settings(duck, "spark")
    names = [c["output_column_name"] for c in spark["comparisons"]]
    assert {"p_date_dob", "p_string_city"} <= set(names)
    rules = [r["blocking_rule"] for r in spark["blocking_rules_to_generate_predictions"]]
    assert any("p_date_dob" in r and "surname" in r for r in rules)


def test_a_date_months_off_and_a_heavier_city_typo_still_count_for_a_pair() -> None:
    # Splink's fake_1000 duplicates: a dob with its month and day typed wrong, a scrambled city.
    contacts = pl.DataFrame(
        {
            "contact_id": ["c1", "c2", "c3"],
            "name": ["Ryan King", "Ryan King", "Ryan King"],
            "attributes": [
                '{"dob": "1982-06-22", "city": "london"}',
                '{"dob": "1982-09-12", "city": "lndno"}',
                '{"dob": "1961-01-30", "city": "leeds"}',
            ],
        }
    ).with_columns(
        pl.lit(None, pl.String).alias("email_norm"),
        pl.lit(None, pl.String).alias("phone"),
        pl.lit([], pl.List(pl.String)).alias("phones"),
        pl.lit(None, pl.String).alias("company"),
        pl.lit([], pl.List(pl.String)).alias("tags"),
    )
    records = contact_records(contacts, properties={"dob": "p_date_dob", "city": "p_string_city"})
    settings = contact_settings(1e-3, ("p_date_dob", "p_string_city")).create_settings_dict(
        "duckdb"
    )
    scored = predict(records, TrainedModel(settings=settings, trained_on_contacts=3), 0.0)[0]
    levels = {
        tuple(sorted((row["unique_id_l"], row["unique_id_r"]))): {
            e["field"]: e["level"] for e in json.loads(row["explanation"])
        }
        for row in scored.iter_rows(named=True)
    }
    twins = levels[("c1", "c2")]
    assert "1 year" in twins["p_date_dob"], twins  # not "All other comparisons"
    assert "0.8" in twins["p_string_city"], twins
    stranger = levels[("c1", "c3")]
    assert stranger["p_date_dob"] == stranger["p_string_city"] == "All other comparisons"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("property-matching")
    generate_exports(root / "exports", GeneratorConfig(persons=300, days=2, seed=3, secret=SECRET))
    write_jsonl(root / "exports", "2026-11-02", "zz-kasia.jsonl", KASIA)
    return root


def _pair_proposed(root: Path, declared: bool) -> bool:
    db = root / ("typed" if declared else "plain") / "contacts.duckdb"
    run_pipeline(
        ContactsSettings(
            exports_dir=str(root / "exports"),
            db_path=str(db),
            properties_file=str(_schema(root)) if declared else "",
        )
    )
    owner = contact_of(db)
    a, b = owner["kw1"], owner["kw2"]
    assert a != b, "nothing they share is an auto-merge key"
    found = query(
        db,
        "SELECT match_probability, explanation FROM merge_proposals "
        f"WHERE list_sort([contact_id_l, contact_id_r]) = list_sort(['{a}', '{b}'])",
    )
    if declared and found.height:
        fields = {e["field"] for e in json.loads(found.item(0, "explanation"))}
        assert {"p_date_dob", "p_string_city"} <= fields
    return found.height > 0


def test_a_declared_date_and_city_bring_a_typo_pair_to_review(workspace: Path) -> None:
    assert not _pair_proposed(workspace, declared=False)
    assert _pair_proposed(workspace, declared=True)
