"""Issue 27: the whole nightly job with `engine = "spark"` (Spark local mode) publishes what the
local engine publishes from the same exports: the same contacts under the same ids, and every
table of the published file equal row for row.

Both workspaces run through `pipelines.nightly.run_night` (what `contacts run` calls: Dagster
materializes every asset in process), on the generator's exports (60 people, 3 days). Night 1
starts from nothing. Before night 2 a new day lands and an admin erases one contact, deletes
another and merges two (held keys, held ids, a forced pair: the decisions the Spark steps
take), then the Spark workspace starts from a copy of the local one, so both nights start from
the same state, decision log included; its night is `contacts run --engine spark` (in process),
with CONTACTS_ENGINE saying local. Before night 3 the admin's merge and one of night 2's
auto-merges are undone (separations, one splitting a cluster tonight's keys still hold) and the
deleted contact restored, again from a copy of the local state: the Spark `contact_ids` step
applies them to the clusters they reach, with last night's ids read from the published file.
The Spark session is the one the process's other Spark tests share (tests/spark_session.py).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.names import CLUSTERS, CONTACT_IDS, INTERACTIONS, PROFILES, PROPOSALS
from assets.resources import ContactsSettings
from contacts.demo import GeneratorConfig, generate_exports
from dedup.identity.constraints import decision_merge_id
from dedup.service.review import (
    delete_contacts,
    edit_contact,
    erase_contact,
    merge_contacts,
    restore_contacts,
    unmerge,
)
from dedup.spark.matching import SPARK_PREDICT
from dedup.spark.matching_records import SPARK_RECORDS
from dedup.spark.profiles import SPARK_PROFILES
from pipelines.nightly import run_night
from tests.conftest import SECRET, query
from tests.spark_session import local_test_session, needs_java
from tests.test_incremental_night import differences, land, some_contacts

ENGINES = ("local", "spark")


class Workspaces:
    """One exports folder; one published file per engine."""

    def __init__(self, root: Path) -> None:
        self.exports = root / "exports"
        self.db = {engine: root / engine / "contacts.duckdb" for engine in ENGINES}

    def copy_local(self) -> None:
        """The Spark workspace := the local one (published file and state: decision log too)."""
        shutil.rmtree(self.db["spark"].parent)
        shutil.copytree(self.db["local"].parent, self.db["spark"].parent)

    def night(self) -> dict[str, dg.DagsterInstance]:
        """The same night on both engines, then every published table compared."""
        since = datetime.now(UTC).replace(microsecond=0)
        instances = {}
        for engine in ENGINES:
            settings = ContactsSettings(
                exports_dir=str(self.exports), db_path=str(self.db[engine]), engine=engine
            )
            instances[engine] = dg.DagsterInstance.ephemeral()
            run_night(settings, instances[engine])
        assert differences(self.db["local"], self.db["spark"], since) == {}
        return instances

    def cli_night(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The same night, the Spark one as `contacts run --engine spark` while the variable
        says local (the flag wins); then every published table compared."""
        from typer.testing import CliRunner

        from contacts.cli import app

        since = datetime.now(UTC).replace(microsecond=0)
        settings = ContactsSettings(
            exports_dir=str(self.exports), db_path=str(self.db["local"]), engine="local"
        )
        run_night(settings, dg.DagsterInstance.ephemeral())
        spark_work = self.db["spark"].with_name("contacts.duckdb.state") / "work" / "spark"
        last_night = spark_work / "checkpoints" / "last-night"  # a past night's clustering rounds
        last_night.mkdir(parents=True)
        monkeypatch.setenv("CONTACTS_ENGINE", "local")
        monkeypatch.setenv("CONTACTS_EXPORTS_DIR", str(self.exports))  # `run` sets it
        command = ["run", "--exports", str(self.exports), "--db", str(self.db["spark"])]
        result = CliRunner().invoke(app, [*command, "--engine", "spark"])
        assert result.exit_code == 0, result.output
        assert (spark_work / "clusters").stat().st_mtime >= since.timestamp()
        assert not last_night.exists()
        assert differences(self.db["local"], self.db["spark"], since) == {}


def engine_of(instance: dg.DagsterInstance, asset: str, key: str = "engine") -> str:
    record = instance.fetch_materializations(dg.AssetKey(asset), limit=1).records[0]
    return record.asset_materialization.metadata[key].value  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("generated")
    generate_exports(root, GeneratorConfig(persons=60, days=3, seed=27, secret=SECRET, native=True))
    return root


@needs_java
def test_spark_nights_publish_what_the_local_engine_publishes(
    generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_test_session(tmp_path / "checkpoints")  # the process's shared session, if not yet up
    days = sorted(p.name for p in (generated / "askvault").iterdir())
    spaces = Workspaces(tmp_path)
    for day in days[:2]:
        land(generated, spaces.exports, day)

    instances = spaces.night()
    for asset in (INTERACTIONS, CLUSTERS, CONTACT_IDS, PROFILES, PROPOSALS):
        assert engine_of(instances["spark"], asset) == "spark"
        assert engine_of(instances["local"], asset) == "local"
    assert engine_of(instances["spark"], PROFILES, "profiles_path") == SPARK_PROFILES
    # Matching on Spark (dedup.spark.matching): the night trained its model on the driver, as
    # the local engine, and Splink scored every pair on Spark; merge_proposals compared above.
    assert engine_of(instances["spark"], PROPOSALS, "predict_reason") == SPARK_PREDICT
    assert engine_of(instances["spark"], PROPOSALS, "records_path") == f"full: {SPARK_RECORDS}"
    assert engine_of(instances["local"], PROFILES, "profiles_path").startswith("full: no")
    # Spark really ran the steps: its Parquet folders are in the state's work folder.
    work = spaces.db["spark"].with_name("contacts.duckdb.state") / "work" / "spark"
    assert {p.name for p in work.iterdir()} >= {"interactions", "clusters", "contact_of_cluster"}
    contacts = query(spaces.db["spark"], "SELECT count(*) FROM contacts").item()
    interactions = query(spaces.db["spark"], "SELECT count(*) FROM interactions").item()
    assert 0 < contacts < interactions  # interactions merged into contacts

    # Night 2: a new day and admins' decisions; both engines start from the same state (the
    # decision log's ids and times included).
    land(generated, spaces.exports, days[2])
    local = spaces.db["local"]
    (x, _), (y, _), (z, z_email), (gone, _) = some_contacts(local, 4)
    erase_contact(local, z, z_email, who="ann")
    delete_contacts(local, [gone], who="ann")
    merged = merge_contacts(local, x, y, survivor=x, who="ann")
    spaces.copy_local()
    spaces.cli_night(monkeypatch)
    redirect = f"SELECT to_contact_id FROM contact_redirects WHERE from_contact_id = '{y}'"
    assert query(spaces.db["spark"], redirect).item() == x
    gone_or_erased = f"SELECT count(*) FROM contacts WHERE contact_id IN ('{z}', '{gone}')"
    assert query(spaces.db["spark"], gone_or_erased).item() == 0

    # Night 3: the admin's merge undone (its sides get their ids back), an auto-merge of night
    # 2 undone (tonight's keys still hold its sides in one cluster: split) and the deleted
    # contact restored: the constraints reach a few clusters, the rest pass through on Spark.
    auto = query(
        local, "SELECT merge_id, merged_ids[1] AS merged FROM merges WHERE kind = 'auto' LIMIT 1"
    )
    assert auto.height == 1, "night 2 auto-merged no contacts: nothing to split"
    auto_id, auto_merged = auto.row(0)
    unmerge(local, decision_merge_id(merged), who="ann")
    unmerge(local, auto_id, who="ann")
    restore_contacts(local, [gone], who="ann")
    # Admins' edits of contacts, applied by the profiles step (on Spark, inside its tasks).
    edit_contact(local, x, tags_add=["vip"], attributes={"tier": "gold"}, who="ann")
    spaces.copy_local()
    instances = spaces.night()
    assert engine_of(instances["spark"], PROFILES, "profiles_path") == SPARK_PROFILES
    # The model night 1 trained, reused: this night's pairs were all scored on Spark.
    assert engine_of(instances["spark"], PROPOSALS, "model").startswith("reused")
    assert engine_of(instances["spark"], PROPOSALS, "predict_reason") == SPARK_PREDICT
    vip = f"SELECT list_contains(tags, 'vip') FROM contacts WHERE contact_id = '{x}'"
    assert query(spaces.db["spark"], vip).item()
    back = f"SELECT count(*) FROM contacts WHERE contact_id IN ('{y}', '{gone}', '{auto_merged}')"
    assert query(spaces.db["spark"], back).item() == 3
    # The split happened on the Spark night: one auto-merge cluster now holds two contacts.
    work = spaces.db["spark"].with_name("contacts.duckdb.state") / "work"
    split = (
        pl.read_parquet(work / "clusters.parquet")
        .join(pl.read_parquet(work / "assignment.parquet"), on="interaction_id")
        .group_by("cluster")
        .agg(pl.col("contact_id").n_unique().alias("contacts"))
        .filter(pl.col("contacts") > 1)
    )
    assert split.height == 1
