"""The generator's native provider exports: deterministic, complete truth, read back as written."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from contacts.demo import (
    DEMO_STAFF_DOMAIN,
    NATIVE_SOURCES,
    GeneratorConfig,
    generate_exports,
)
from tests.conftest import query

CFG = GeneratorConfig(persons=150, days=3, seed=21, native=True)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("native") / "gen"
    generate_exports(root, CFG)
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_every_source_is_written_and_output_is_byte_identical(
    generated: Path, tmp_path: Path
) -> None:
    for source in NATIVE_SOURCES:
        assert any((generated / source).rglob("*")), source
    again = tmp_path / "again"
    generate_exports(again, CFG)
    assert _files(again) == _files(generated)


def test_native_off_keeps_the_askvault_output_unchanged(generated: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    generate_exports(plain, GeneratorConfig(persons=150, days=3, seed=21))
    assert not any((plain / s).exists() for s in NATIVE_SOURCES)
    native_askvault = {
        k: v for k, v in _files(generated).items() if k.startswith(("askvault/", "_truth/truth"))
    }
    plain_askvault = {
        k: v for k, v in _files(plain).items() if k.startswith(("askvault/", "_truth/truth"))
    }
    assert native_askvault == plain_askvault


def test_pipeline_reads_every_native_interaction_and_never_mixes_two_people(
    generated: Path, tmp_path: Path, run, exports: Path, db: Path
) -> None:
    for source in ("askvault", *NATIVE_SOURCES):
        shutil.copytree(generated / source, exports / source)
    run(staff_domains=[DEMO_STAFF_DOMAIN])
    truth = pl.concat(
        [
            pl.read_parquet(generated / "_truth/truth.parquet").select(
                "interaction_id", "person_id"
            ),
            pl.read_parquet(generated / "_truth/native_truth.parquet").select(
                "interaction_id", "person_id"
            ),
        ]
    )
    got = query(db, "SELECT interaction_id, contact_id, source FROM interactions")
    native_ids = set(pl.read_parquet(generated / "_truth/native_truth.parquet")["interaction_id"])
    assert native_ids and native_ids <= set(got.get_column("interaction_id"))
    joined = got.join(truth, on="interaction_id", how="left")
    assert joined.get_column("person_id").null_count() == 0
    # The workspace's own replies (mail and Slack threads) are in the files but are not contacts.
    assert DEMO_STAFF_DOMAIN.encode() in b"".join(
        p.read_bytes() for p in (generated / "email").rglob("*.mbox")
    )
    staff = query(db, f"SELECT count(*) FROM interactions WHERE email LIKE '%@{DEMO_STAFF_DOMAIN}'")
    assert staff.item() == 0
    native_contacts = joined.filter(pl.col("source") != "askvault").get_column("contact_id")
    persons_per_contact = (
        joined.filter(pl.col("contact_id").is_in(native_contacts.implode()))
        .group_by("contact_id")
        .agg(pl.col("person_id").n_unique())
    )
    assert persons_per_contact.get_column("person_id").max() == 1
    # Every CRM record of the truth is linked to a contact of its person.
    crm_truth = pl.read_parquet(generated / "_truth/crm_truth.parquet")
    links = query(db, "SELECT system, record_id, contact_id FROM crm_links")
    person_of_contact = joined.select("contact_id", "person_id").unique()
    linked = links.join(person_of_contact, on="contact_id").join(
        crm_truth, on=["system", "record_id"], suffix="_truth"
    )
    assert linked.height > 0
    assert (linked.get_column("person_id") == linked.get_column("person_id_truth")).all()
    # The seed's case: someone on the widget, then WhatsApp, then email is one contact.
    across = query(
        db,
        """
        SELECT contact_id FROM interactions GROUP BY contact_id
        HAVING bool_or(source = 'askvault' AND channel = 'widget')
           AND bool_or(source = 'whatsapp') AND bool_or(source = 'email')
        """,
    )
    assert across.height >= 1
