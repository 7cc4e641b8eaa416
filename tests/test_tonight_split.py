"""`apply_decisions` splits tonight's rows by deletion without joining every row against empty
frames when no deletion names any of them (session 18); it must give what `split_by_deletion`
over every row gives, schemas included, and take the full split as soon as one row is named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from contacts.demo import GeneratorConfig, generate_exports
from dedup.admin.deletion import (
    DELETED,
    DELETIONS_SCHEMA,
    HASH_KIND,
    deleted_members,
    split_by_deletion,
)
from dedup.admin.privacy import identifier_hash
from dedup.admin.tonight import DecisionLog, apply_decisions
from dedup.config import EngineConfig
from dedup.decisions import DECISIONS_SCHEMA, DELETION_MEMBERS_SCHEMA, SUPPRESSION_SCHEMA
from dedup.identity.interactions import prepare_interactions
from dedup.ingest.days import ingest_day
from tests.conftest import SECRET

SALT = "5a" * 32
CONFIG = EngineConfig(identity_secrets=(SECRET,))


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    root = tmp_path_factory.mktemp("exports")
    generate_exports(root, GeneratorConfig(persons=25, days=2, seed=18, secret=SECRET))
    days = sorted(p.name for p in (root / "askvault").iterdir())
    return pl.concat([ingest_day(Path(root), "askvault", d).accepted for d in days])


def log(members: pl.DataFrame, deletions: pl.DataFrame) -> DecisionLog:
    return DecisionLog(
        decisions=pl.DataFrame(schema=DECISIONS_SCHEMA),
        suppression=pl.DataFrame(schema=SUPPRESSION_SCHEMA),
        deletion_members=members,
        deletions=deletions,
        salt_hex=SALT,
    )


def test_split_without_deletions_equals_the_split_of_every_row(staged: pl.DataFrame) -> None:
    frame = prepare_interactions(staged, CONFIG).interactions
    assert frame.height > 100
    empty = log(pl.DataFrame(schema=DELETION_MEMBERS_SCHEMA), pl.DataFrame(schema=DELETIONS_SCHEMA))
    tonight = apply_decisions(staged, CONFIG, empty)
    every = split_by_deletion(
        frame, deleted_members(frame, empty.deletion_members, empty.deletions, SALT)
    )
    assert tonight.interactions.equals(every.kept)
    assert tonight.deletion.trash.equals(every.trash)  # empty, same columns and types
    assert tonight.deletion.trash.schema == every.trash.schema
    assert tonight.deletion.restored.schema == every.restored.schema
    assert tonight.deletion.restored.height == every.restored.height == 0
    assert tonight.deletion.purged.to_list() == every.purged.to_list() == []
    assert tonight.deletion.held == every.held == 0


def test_split_with_one_deleted_interaction_holds_it(staged: pl.DataFrame) -> None:
    frame = prepare_interactions(staged, CONFIG).interactions
    held = frame.get_column("interaction_id")[7]
    now = datetime(2026, 12, 7, tzinfo=UTC)
    deletions = pl.DataFrame(
        [
            {
                "deletion_id": "dec_1",
                "contact_id": "c_gone",
                "deleted_by": "ann",
                "deleted_at": now,
                "restorable_until": now + timedelta(days=30),
                "status": DELETED,
                "status_at": now,
                "restored_by": None,
                "interactions": 1,
            }
        ],
        schema=DELETIONS_SCHEMA,
    )
    members = pl.DataFrame(
        {"decision_id": ["dec_1"], "interaction_hash": [identifier_hash(SALT, HASH_KIND, held)]},
        schema=DELETION_MEMBERS_SCHEMA,
    )
    tonight = apply_decisions(staged, CONFIG, log(members, deletions))
    every = split_by_deletion(frame, deleted_members(frame, members, deletions, SALT))
    assert tonight.interactions.equals(every.kept)
    assert tonight.interactions.height == frame.height - 1
    assert tonight.deletion.trash.equals(every.trash)
    assert tonight.deletion.trash.get_column("interaction_id").to_list() == [held]
    assert tonight.deletion.held == 1
