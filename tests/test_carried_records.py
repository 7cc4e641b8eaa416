"""Matcher records carried over between nights (`dedup.matching.carried_records`) equal the
full `contact_records` on seeded random nights, and `labelled_faces` (counted on hashes, the
contact ids set beside the rows when the work files are in one order) equals its definition."""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from dedup.matching.carried_records import carried_records
from dedup.matching.labels import FACE_COLUMNS, labelled_faces
from dedup.matching.records import contact_records

FIRST = ["ana", "luis", "tony", "maria", "li", "sam", "eva", "omar", "jo", "kim", "ben", "zoe"]
LAST = ["smith", "garcia", "chen", "okafor", "muller", "rossi", "silva", "kowalski", "ng"]
# Many surnames at one domain, few typed companies: `workspace_providers` reads it as a provider.
DOMAINS = ["gmail.com", "acme.io", "bigmail.net", "lumieresystems.com", "garcia-home.org"]
COMPANIES = [None, "Acme GmbH", "Acme", "Lumiere Systems S.A.", "Foo Co., Ltd.", "Inc", "Zürich AG"]
CITIES = ["berlin", "paris", "lagos", "lima"]
PHONES = [f"+4930{n:07d}" for n in range(40)]
PROPERTIES = [{}, {"city": "p_string_city"}, {"city": "p_string_city", "dob": "p_date_dob"}]


def _attributes(rng: random.Random) -> str | None:
    if rng.random() < 0.2:
        return None
    doc = {"City": rng.choice(CITIES), "plan": rng.choice(["pro", "free"])}
    if rng.random() < 0.5:
        doc["dob"] = rng.choice(["19840302", "1990-01-02", "1971-12-30"])
    if rng.random() < 0.3:
        doc["newsletter"] = True
    return json.dumps(doc)


def _contact(rng: random.Random, contact_id: str) -> dict:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    email = (
        f"{first}.{last}{rng.randrange(3)}@{rng.choice(DOMAINS)}" if rng.random() < 0.8 else None
    )
    phones = sorted(set(rng.sample(PHONES, rng.randrange(0, 3))))
    return {
        "contact_id": contact_id,
        "name": f"{first.title()} {last.title()}" if rng.random() < 0.9 else None,
        "email_norm": email,
        "phone": phones[0] if phones else None,
        "phones": phones,
        "company": rng.choice(COMPANIES),
        "attributes": _attributes(rng),
        "tags": rng.choice([[], ["VIP", " vip"], ["lead"], None]),
        "interaction_count": rng.randrange(1, 9),  # not read by the records
    }


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "contact_id": pl.String,
            "name": pl.String,
            "email_norm": pl.String,
            "phone": pl.String,
            "phones": pl.List(pl.String),
            "company": pl.String,
            "attributes": pl.String,
            "tags": pl.List(pl.String),
            "interaction_count": pl.Int64,
        },
    )


def _ambiguous(rng: random.Random) -> pl.DataFrame:
    """Hub and shared phones (n_linked over and up to 2) and hub emails, drawn anew."""
    rows = [("phone", p, rng.choice([2, 3, 7])) for p in rng.sample(PHONES, 8)]
    rows += [("email", f"{f}.smith0@gmail.com", 3) for f in rng.sample(FIRST, 3)]
    return pl.DataFrame(rows, schema=["key_type", "key_value", "n_linked"], orient="row")


def _next_night(rng: random.Random, contacts: dict[str, dict], serial: list[int]) -> None:
    """Some contacts edited, some gone, some new: a night's changes."""
    for cid in rng.sample(sorted(contacts), k=len(contacts) // 20):
        changed = _contact(rng, cid)
        field = rng.choice(["name", "email_norm", "company", "attributes", "tags", "phones"])
        contacts[cid][field] = changed[field]
        if field == "phones":
            contacts[cid]["phone"] = changed["phone"]
    for cid in rng.sample(sorted(contacts), k=len(contacts) // 50):
        del contacts[cid]
    for _ in range(len(contacts) // 40):
        serial[0] += 1
        cid = f"c-{serial[0]:05d}"
        contacts[cid] = _contact(rng, cid)
    for cid in rng.sample(sorted(contacts), k=len(contacts) // 10):  # not a record input
        contacts[cid]["interaction_count"] += 1


@pytest.mark.parametrize("seed", [1, 2])
def test_carried_records_equal_contact_records_over_random_nights(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    serial = [400]
    contacts = {f"c-{n:05d}": _contact(rng, f"c-{n:05d}") for n in range(serial[0])}
    ambiguous, properties = _ambiguous(rng), PROPERTIES[0]
    paths = []
    for night in range(8):
        if night:
            _next_night(rng, contacts, serial)
        if night in (3, 6):
            ambiguous = _ambiguous(rng)  # keys turning hub, shared or plain
        if night == 5:
            properties = PROPERTIES[rng.randrange(1, 3)]
        frame = _frame([contacts[c] for c in sorted(contacts)])
        if night == 7:
            frame = frame.sample(fraction=1.0, shuffle=True, seed=seed)  # not in id order
        records, plan = carried_records(frame, ambiguous, properties, tmp_path / "records")
        assert_frame_equal(records, contact_records(frame, ambiguous, properties))
        assert_frame_equal(pl.read_parquet(plan.file), records)
        paths.append(plan.describe())
    assert paths[0] == "full: no records kept yet"
    assert paths[5] == "full: record code, matched properties or library versions changed"
    for n in (1, 2, 3, 4, 6, 7):
        assert paths[n].startswith("incremental: "), paths[n]
        built, carried = (int(paths[n].split()[k].replace(",", "")) for k in (1, 4))
        assert built > 0 and carried > built, paths[n]


def test_a_domain_turning_provider_changes_carried_records(tmp_path: Path) -> None:
    """`employer` reads every contact (the providers): a new contact alone can make a domain a
    provider, and the carried records' employer follows, as in the full records."""
    rows = [
        {**_contact(random.Random(n), f"c-{n:03d}"), "company": None}
        | {"email_norm": f"x{n}@bigcorp.com", "name": f"Ana {LAST[n]}"}
        for n in range(9)
    ]
    root = tmp_path / "records"
    before, _ = carried_records(_frame(rows), None, {}, root)
    assert before.get_column("employer").to_list() == ["d:bigcorp"] * 9
    rows.append(
        {**rows[0], "contact_id": "c-100", "name": "Ana Tenth", "email_norm": "t@bigcorp.com"}
    )
    after, plan = carried_records(_frame(rows), None, {}, root)
    assert plan.describe() == "incremental: 1 records built, 9 carried over"
    assert after.get_column("employer").null_count() == 10
    assert_frame_equal(after, contact_records(_frame(rows), None, {}))


def test_fallbacks_say_why(tmp_path: Path) -> None:
    rng = random.Random(9)
    rows = [_contact(rng, f"c-{n:03d}") for n in range(60)]
    root = tmp_path / "records"
    carried_records(_frame(rows), None, {}, root)
    _, plan = carried_records(_frame(rows), None, {}, root, "--full requested")
    assert plan.describe() == "full: --full requested"
    _, plan = carried_records(_frame(rows), None, {}, root)
    assert plan.describe() == "incremental: 0 records built, 60 carried over"
    moved = [_contact(rng, r["contact_id"]) for r in rows]
    records, plan = carried_records(_frame(moved), None, {}, root)
    assert plan.describe().startswith("full: ") and "of 60 contacts changed" in plan.describe()
    assert_frame_equal(records, contact_records(_frame(moved), None, {}))
    for kept in root.glob("records-*.parquet"):
        kept.write_bytes(b"not parquet")
    records, plan = carried_records(_frame(moved), None, {}, root)
    assert plan.describe() == "full: kept records unreadable"
    assert_frame_equal(records, contact_records(_frame(moved), None, {}))


def _faces_by_definition(
    interactions: pl.DataFrame, assignment: pl.DataFrame, max_contacts: int, max_faces: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`labelled_faces` as it was written before session 18: unique rows of every column."""
    seed = 7
    faces = (
        interactions.join(assignment, on="interaction_id")
        .select(
            "contact_id",
            pl.coalesce("name_display", "name").alias("name"),
            "email_norm",
            pl.col("phone_e164").alias("phone"),
            pl.coalesce("company_display", "company").alias("company"),
            pl.col("attributes").cast(pl.String),
            pl.col("contact_tags").alias("tags"),
        )
        .unique()
        .with_columns(pl.struct(FACE_COLUMNS).hash(seed=seed).alias("_face_hash"))
        .filter(pl.len().over("contact_id") >= 2)
        .filter(pl.col("_face_hash").rank("ordinal").over("contact_id") <= max_faces)
        .with_columns(pl.col("contact_id").hash(seed=seed).alias("_contact_hash"))
    )
    chosen = faces.get_column("_contact_hash").unique().sort().head(max_contacts).implode()
    faces = (
        faces.filter(pl.col("_contact_hash").is_in(chosen))
        .sort("contact_id", "_face_hash")
        .with_columns(
            (pl.lit("face-") + pl.int_range(pl.len()).cast(pl.String).str.zfill(9)).alias("fid")
        )
    )
    pairs = (
        faces.select("contact_id", "fid")
        .join(faces.select("contact_id", "fid"), on="contact_id", suffix="_r")
        .filter(pl.col("fid") < pl.col("fid_r"))
        .select(pl.col("fid").alias("unique_id_l"), pl.col("fid_r").alias("unique_id_r"))
    )
    out = faces.select(
        pl.col("fid").alias("contact_id"),
        pl.col("contact_id").alias("owner"),
        "name",
        "email_norm",
        "phone",
        pl.when(pl.col("phone").is_not_null()).then(pl.concat_list("phone")).alias("phones"),
        "company",
        "attributes",
        "tags",
    )
    return out, pairs


@pytest.mark.parametrize("seed", [4, 5])
def test_labelled_faces_equal_their_definition(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    n = 3000
    interactions = pl.DataFrame(
        {
            "interaction_id": [f"i-{k:06d}" for k in range(n)],
            "name_display": [
                rng.choice([None, "Ana Smith", "Ana  Smith", "Luis"]) for _ in range(n)
            ],
            "name": [rng.choice([None, "  ", "ana smith"]) for _ in range(n)],
            "email_norm": [rng.choice([None, "a@x.io", "b@y.io"]) for _ in range(n)],
            "phone_e164": [rng.choice([None, PHONES[0], PHONES[1]]) for _ in range(n)],
            "company_display": [rng.choice([None, "Acme"]) for _ in range(n)],
            "company": [rng.choice([None, "acme"]) for _ in range(n)],
            "attributes": [rng.choice([None, '{"city": "lima"}']) for _ in range(n)],
            "contact_tags": [rng.choice([None, [], ["vip"]]) for _ in range(n)],
        },
        schema_overrides={"contact_tags": pl.List(pl.String)},
    )
    assignment = pl.DataFrame(
        {
            "interaction_id": interactions.get_column("interaction_id"),
            "contact_id": [f"c-{rng.randrange(700):04d}" for _ in range(n)],
        }
    )
    interactions.write_parquet(tmp_path / "i.parquet")
    assignment.write_parquet(tmp_path / "same_order.parquet")
    assignment.sample(fraction=1.0, shuffle=True, seed=seed).write_parquet(
        tmp_path / "other.parquet"
    )
    for max_contacts, max_faces in ((5_000, 4), (40, 2), (1, 3)):
        faces, pairs = _faces_by_definition(interactions, assignment, max_contacts, max_faces)
        assert faces.height > 0
        for got in (
            labelled_faces(
                tmp_path / "i.parquet", tmp_path / "same_order.parquet", max_contacts, max_faces
            ),
            labelled_faces(
                tmp_path / "i.parquet", tmp_path / "other.parquet", max_contacts, max_faces
            ),
            labelled_faces(interactions, assignment, max_contacts, max_faces),
        ):
            assert_frame_equal(got.faces, faces)
            assert_frame_equal(got.pairs, pairs)
