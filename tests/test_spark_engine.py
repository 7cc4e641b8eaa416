"""The Spark engine (dedup.spark, issue 27): its settings, and the identity stage in Spark local
mode giving the local engine's clusters, ambiguous keys and contact ids on the same input.

The JVM tests share the process's one Spark session with tests/test_spark.py
(tests/spark_session.py) and are skipped without a Java runtime.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from assets.resources import ContactsSettings, SettingsError
from contacts.demo import GeneratorConfig, generate_exports
from dedup.admin.contact_edits import apply_contact_edits
from dedup.admin.deletion import (
    DELETED,
    DELETIONS_SCHEMA,
    HASH_KIND,
    PURGED,
    RESTORED,
    with_restored,
)
from dedup.admin.privacy import held_keys, identifier_hash
from dedup.admin.tonight import DecisionLog, apply_decisions
from dedup.config import EngineConfig, HubLimits
from dedup.decisions import (
    CRM_RESYNC,
    DECISIONS_SCHEMA,
    MANUAL_MERGE,
    REVOKE_VERIFICATION,
    SET_ATTRIBUTE,
    SET_AUDIENCE,
    SUPPRESSION_SCHEMA,
    TAG_ADD,
    TAG_REMOVE,
)
from dedup.identity.automerge import (
    AMBIGUOUS_SCHEMA,
    EVIDENCE_SCHEMA,
    HELD_REASON,
    HELD_SCHEMA,
    KEY_COLUMNS,
    auto_merge,
)
from dedup.identity.crm_evidence import crm_evidence
from dedup.identity.interactions import prepare_interactions
from dedup.identity.normalize import phone_lookup_name
from dedup.identity.stable_ids import PreviousState, assign_ids, new_contact_id
from dedup.identity.verify import REVOKED, identity_failures
from dedup.ingest.days import (
    SOURCES,
    day_files,
    export_days,
    fingerprint,
    ingest_day,
    read_staged,
    read_staged_crm,
    write_staging,
)
from dedup.snapshot.profile_cache import contacts_frame
from dedup.spark.crm import crm_evidence_on_spark, staged_crm_files
from dedup.spark.identity import identity_stage, previous_from_local, staged_files
from dedup.spark.night import decided_on_spark, held_on_spark
from dedup.spark.profiles import (
    ProfileFiles,
    contact_edits,
    profile_rows,
    profiles_frame,
    profiles_on_spark,
)
from dedup.spark.session import CONF_ENV, MASTER_ENV, read_spark_defaults, spark_conf
from dedup.spark.stable_ids import assign_ids as spark_assign_ids
from tests.conftest import SECRET
from tests.spark_session import local_test_session, needs_java


def test_engine_setting_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONTACTS_ENGINE", raising=False)
    assert ContactsSettings().backend == "local"
    monkeypatch.setenv("CONTACTS_ENGINE", "Spark")
    assert ContactsSettings().backend == "spark"
    assert ContactsSettings(engine="local").backend == "local"  # the field wins
    monkeypatch.setenv("CONTACTS_ENGINE", "dask")
    with pytest.raises(SettingsError, match="CONTACTS_ENGINE"):
        ContactsSettings().backend  # noqa: B018
    with pytest.raises(ValueError, match="engine"):
        ContactsSettings(engine="dask")  # type: ignore[arg-type]


def test_spark_defaults_file_then_master_variable(tmp_path: Path) -> None:
    conf_file = tmp_path / "spark-defaults.conf"
    conf_file.write_text(
        "# a YARN cluster\n"
        "spark.master                 yarn\n"
        "spark.executor.memory=8g\n"
        "spark.executor.instances: 20\n"
        "\n"
        "spark.kubernetes.container.image  registry/contacts:1 \n"
    )
    assert read_spark_defaults(conf_file) == {
        "spark.master": "yarn",
        "spark.executor.memory": "8g",
        "spark.executor.instances": "20",
        "spark.kubernetes.container.image": "registry/contacts:1",
    }
    conf = spark_conf({CONF_ENV: str(conf_file)})
    assert conf["spark.master"] == "yarn" and conf["spark.executor.memory"] == "8g"
    assert "spark.driver.bindAddress" not in conf  # loopback binding is for local mode only
    assert conf["spark.sql.session.timeZone"] == "UTC"  # a default the file did not override
    master = spark_conf({CONF_ENV: str(conf_file), MASTER_ENV: "spark://head:7077"})
    assert master["spark.master"] == "spark://head:7077"
    local = spark_conf({})
    assert local["spark.master"] == "local[2]"
    assert local["spark.driver.bindAddress"] == "127.0.0.1"
    assert local["spark.jars"].endswith(".jar")  # Splink's similarity functions


# --- the identity stage, Spark local mode against the local engine --------------------------

DECIDED_AT = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
# Night 1 of the two-night test runs under other caps than night 2, so night 2 splits some of
# night 1's contacts (a looser phone cap merged households) and merges others (a stricter email
# cap kept people apart): pairing, redirects and merge records all have work to do.
NIGHT1_LIMITS = HubLimits(phone_max_identities=3, email_max_phones=1, session_max_emails=1)


@pytest.fixture(scope="module")
def staging(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated workspace (households, switchboards, throwaway emails, kiosks, forged user
    ids, re-deliveries; native WhatsApp, email, SMS, Slack, HubSpot and Salesforce exports)
    ingested into the staging layout, as the nightly job's ingest leaves it."""
    root = tmp_path_factory.mktemp("spark-engine")
    config = GeneratorConfig(persons=400, days=3, seed=5, secret=SECRET, native=True)
    generate_exports(root / "exports", config)
    for source in SOURCES:
        for day in export_days(root / "exports", source):
            files = day_files(root / "exports", source, day)
            result = ingest_day(root / "exports", source, day, files=files)
            write_staging(result, root / "staging" / source / day, fingerprint(files))
    return root / "staging"


@pytest.fixture(scope="module")
def prepared(staging: Path) -> pl.DataFrame:
    """The local engine's normalized interactions."""
    config = EngineConfig(identity_secrets=(SECRET,))
    return prepare_interactions(read_staged(staging, "accepted"), config).interactions


@pytest.fixture(scope="module")
def evidence(staging: Path, prepared: pl.DataFrame) -> pl.DataFrame:
    """CRM records as auto-merge evidence (the local engine's `crm_evidence`, both engines),
    plus two records of different people (names apart, no email) typing one customer's phone:
    a CRM switchboard, which only the CRM phone cap catches."""
    phone = prepared["phone_e164"].drop_nulls().sort()[-1]
    switchboard = pl.DataFrame(
        {
            "evidence_id": ["hubspot:sb-1", "salesforce:sb-2"],
            "email_norm": [None, None],
            "phone_e164": [phone, phone],
            "name_norm": ["ada reception", "bea front desk"],
        },
        schema=EVIDENCE_SCHEMA,
    )
    return pl.concat([crm_evidence(read_staged_crm(staging), "US"), switchboard])


@pytest.fixture(scope="module")
def held(prepared: pl.DataFrame) -> pl.DataFrame:
    """One email and one phone of multi-interaction contacts held, as an erasure holds them."""
    clusters = auto_merge(prepared).clusters.filter(pl.len().over("cluster") > 2)
    keys = prepared.join(clusters, on="interaction_id")
    return pl.DataFrame(
        {
            "key_type": ["email", "phone"],
            "key_value": [
                keys["email_norm"].drop_nulls().sort()[0],
                keys["phone_e164"].drop_nulls().sort()[0],
            ],
        },
        schema=HELD_SCHEMA,
    )


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory):
    return local_test_session(tmp_path_factory.mktemp("spark-engine-checkpoints"))


@pytest.fixture(scope="module")
def on_spark(
    spark,
    staging: Path,
    held: pl.DataFrame,
    evidence: pl.DataFrame,
    tmp_path_factory: pytest.TempPathFactory,
):
    """The identity stage on Spark, first night (no previous ids)."""
    staged = spark.read.parquet(*staged_files(staging))
    work = tmp_path_factory.mktemp("spark-work")
    config = EngineConfig(identity_secrets=(SECRET,))
    return identity_stage(staged, config, str(work), DECIDED_AT, None, held, evidence)


def polars(frame, *order: str) -> pl.DataFrame:
    return pl.from_arrow(frame.toArrow()).sort(*order)  # type: ignore[union-attr]


def _redelivered_crm(staging: Path, root: Path) -> tuple[str, str]:
    """A copy of `staging`'s CRM days plus one later day re-delivering one HubSpot record with
    another phone (as a CRM export re-sends an edited record); (evidence id, new phone)."""
    for folder in {Path(f).parent for f in staged_crm_files(staging)}:
        shutil.copytree(folder, root / folder.parent.name / folder.name)
    first = sorted(root.glob("hubspot/*/accepted.parquet"))[0]
    records = pl.read_parquet(first).filter(pl.col("phone").is_not_null())
    edited = records.head(1).with_columns(
        export_day=pl.lit("2030-01-01"),
        phone=pl.lit("+1 617 555 0142"),
        mobile_phone=pl.lit(None, pl.String),
    )
    later = root / "hubspot" / "2030-01-01"
    later.mkdir()
    edited.write_parquet(later / "accepted.parquet")
    shutil.copy(first.with_name("manifest.json"), later / "manifest.json")
    return f"hubspot:{edited['record_id'][0]}", "+16175550142"


@needs_java
def test_crm_evidence_on_spark_equals_local_engine(spark, staging: Path, tmp_path: Path) -> None:
    """The staged CRM records' evidence built on Spark (latest delivery by a window, the local
    `crm_evidence` per batch) is the local engine's, a re-delivered record's later phone too."""
    evidence_id, phone = _redelivered_crm(staging, tmp_path)
    local = crm_evidence(read_staged_crm(tmp_path), "US").sort("evidence_id", "phone_e164")
    on_spark = crm_evidence_on_spark(spark, tmp_path, "US")
    assert on_spark is not None
    assert polars(on_spark, "evidence_id", "phone_e164").equals(local)
    assert local.filter(pl.col("evidence_id") == evidence_id)["phone_e164"].to_list() == [phone]
    assert local["evidence_id"].str.starts_with("salesforce:").any()  # both CRM systems
    assert crm_evidence_on_spark(spark, tmp_path / "no-staging", "US") is None


@needs_java
def test_identity_stage_on_spark_equals_local_engine(
    on_spark, prepared: pl.DataFrame, held: pl.DataFrame, evidence: pl.DataFrame
) -> None:
    local = auto_merge(prepared, HubLimits(), evidence, held)
    local_ids = assign_ids(local.clusters, PreviousState.empty(), DECIDED_AT)

    # Normalization: the very same rows and columns (one function, applied per Arrow batch).
    interactions = polars(on_spark.interactions, "interaction_id")
    expected = prepared.sort("interaction_id")
    assert interactions.columns == expected.columns
    assert interactions.cast(dict(expected.schema)).equals(expected)  # type: ignore[arg-type]

    clusters = polars(on_spark.clusters, "interaction_id")
    assert clusters.equals(local.clusters.sort("interaction_id"))
    assert clusters["cluster"].n_unique() < clusters.height / 2  # real merging happened

    ambiguous = polars(on_spark.ambiguous_keys, "key_type", "key_value")
    assert ambiguous.cast(AMBIGUOUS_SCHEMA).equals(local.ambiguous_keys)  # type: ignore[arg-type]
    reasons = ambiguous["reason"].to_list()
    assert {"email", "phone", "session"} <= set(ambiguous["key_type"])  # every hub rule fired
    assert any("distinct people" in r for r in reasons)  # phase 2's phone cap
    assert reasons.count(HELD_REASON) >= 1
    assert evidence.height > 20  # CRM records took part (their links are in the clusters)
    assert any("CRM records of different people" in r for r in reasons)  # the CRM phone cap

    ids = polars(on_spark.ids.contact_of_cluster, "cluster")
    assert ids.equals(local_ids.contact_of_cluster.sort("cluster"))
    assert ids["contact_id"][0] == new_contact_id(ids["cluster"][0])
    assignment = polars(on_spark.assignment, "interaction_id")
    assert assignment["contact_id"].n_unique() == ids.height
    assert on_spark.ids.redirects.isEmpty() and on_spark.ids.auto_merges.isEmpty()


def previous_night(prepared: pl.DataFrame) -> PreviousState:
    """Last night's ids, from the local engine under `NIGHT1_LIMITS`."""
    night1 = auto_merge(prepared, NIGHT1_LIMITS).clusters
    ids = assign_ids(night1, PreviousState.empty(), DECIDED_AT)
    assignment = night1.join(ids.contact_of_cluster, on="cluster").select(
        "interaction_id", "contact_id"
    )
    contacts = (
        assignment.join(prepared.select("interaction_id", "occurred_at"), on="interaction_id")
        .group_by("contact_id")
        .agg(pl.col("occurred_at").min().alias("first_seen"))
    )
    return PreviousState(assignment, contacts, ids.redirects)


@needs_java
def test_second_night_ids_on_spark_equal_local_engine(
    spark, on_spark, prepared: pl.DataFrame, held: pl.DataFrame, evidence: pl.DataFrame
) -> None:
    clusters = auto_merge(prepared, HubLimits(), evidence, held).clusters
    previous = previous_night(prepared)
    # A new cluster's first hash was handed out before (here: an old redirect's source): it
    # must take the next one, on both engines.
    fresh = assign_ids(clusters, previous, DECIDED_AT).contact_of_cluster.join(
        previous.contacts, on="contact_id", how="anti"
    )
    planted = fresh["cluster"].sort()[0]
    redirect = pl.DataFrame(
        {
            "from_contact_id": [new_contact_id(planted)],
            "to_contact_id": [previous.contacts["contact_id"].sort()[0]],
        }
    )
    previous = PreviousState(previous.assignment, previous.contacts, redirect)
    local = assign_ids(clusters, previous, DECIDED_AT)

    ids = spark_assign_ids(on_spark.clusters, previous_from_local(spark, previous), DECIDED_AT)
    contact_of_cluster = polars(ids.contact_of_cluster, "cluster")
    assert contact_of_cluster.equals(local.contact_of_cluster.sort("cluster"))
    assert dict(contact_of_cluster.iter_rows())[planted] == new_contact_id(planted, 1)
    kept = contact_of_cluster.join(previous.contacts, on="contact_id")
    assert 0 < kept.height < contact_of_cluster.height  # ids inherited, and new ones

    redirects = polars(ids.redirects, "from_contact_id")
    assert redirects.height > 1 and redirects.equals(local.redirects.sort("from_contact_id"))
    merges = polars(ids.auto_merges, "survivor_id")
    assert merges.height > 0 and merges.equals(local.auto_merges.sort("survivor_id"))


# --- tonight's admin decisions on Spark (dedup.spark.tonight) -------------------------------


def decision_log(prepared: pl.DataFrame) -> DecisionLog:
    """Every kind of decision the `interactions` step applies, on the generated people: a
    revoked verification (half of that user's sessions before it), an erased email, a phone
    held as shared, and deletions deleted, restored and purged, one interaction named by a
    restored deletion and later by a deleted one (the latest wins)."""
    salt_hex, at = "ab" * 32, DECIDED_AT
    verified = prepared.filter(pl.col("identity_verified")).sort("occurred_at")
    user = verified["verified_user_id"].value_counts(sort=True)["verified_user_id"][0]
    times = verified.filter(pl.col("verified_user_id") == user)["occurred_at"]
    revoked_at = times[len(times) // 2]
    decisions = pl.DataFrame(
        {"decision_id": ["r1"], "kind": [REVOKE_VERIFICATION], "subject": [user]},
    ).with_columns(pl.lit(revoked_at).alias("decided_at"))
    emails = prepared["email_norm"].drop_nulls().value_counts(sort=True)["email_norm"]
    phones = prepared["phone_e164"].drop_nulls().value_counts(sort=True)["phone_e164"]
    suppression = pl.DataFrame(
        {
            "decision_id": ["e1", "e1"],
            "identifier_kind": ["email", "shared_phone"],
            "identifier_hash": [
                identifier_hash(salt_hex, "email", emails[3]),
                identifier_hash(salt_hex, "shared_phone", phones[5]),
            ],
            "added_at": [at, at],
        },
        schema=SUPPRESSION_SCHEMA,
    )
    ids = prepared["interaction_id"].sort()
    named = {"d1": ids[10:14], "d2": ids[20:23], "d3": ids[30:32], "d4": ids[[13]]}
    members = pl.concat(
        pl.DataFrame(
            {
                "decision_id": d,
                "interaction_hash": [identifier_hash(salt_hex, HASH_KIND, i) for i in x],
            }
        )
        for d, x in named.items()
    )
    deletions = pl.DataFrame(
        {
            "deletion_id": ["d4", "d1", "d2", "d3"],
            "contact_id": ["c-restored-early", "c-deleted", "c-restored", "c-purged"],
            "deleted_at": [at - timedelta(days=3), at, at, at - timedelta(days=40)],
            "status": [RESTORED, DELETED, RESTORED, PURGED],
        }
    )
    return DecisionLog(
        decisions.select(
            *(
                pl.col(c) if c in decisions.columns else pl.lit(None).alias(c)
                for c in DECISIONS_SCHEMA
            )
        ).cast(DECISIONS_SCHEMA),  # type: ignore[arg-type]
        suppression,
        members,
        deletions.select(
            *(
                pl.col(c) if c in deletions.columns else pl.lit(None).alias(c)
                for c in DELETIONS_SCHEMA
            )
        ).cast(DELETIONS_SCHEMA),  # type: ignore[arg-type]
        salt_hex,
    )


@needs_java
def test_tonights_decisions_on_spark_equal_local_engine(
    spark, staging: Path, prepared: pl.DataFrame, tmp_path: Path
) -> None:
    config = EngineConfig(identity_secrets=(SECRET,))
    log = decision_log(prepared)
    local = apply_decisions(read_staged(staging, "accepted"), config, log)
    work = tmp_path / "work"
    files = (tmp_path / "live.parquet", tmp_path / "failures.parquet")
    night = decided_on_spark(staging, work, config, log, files, tmp_path)
    tonight = night.tonight

    kept = local.interactions.sort("interaction_id")
    live = pl.read_parquet(tmp_path / "live.parquet")
    assert live.equals(kept.drop("identity_failure").cast(dict(live.schema)))  # type: ignore[arg-type]
    assert dict(live.schema) == dict(kept.drop("identity_failure").schema)
    failures = pl.read_parquet(files[1])
    assert failures.height > 1 and failures.equals(identity_failures(kept))
    assert (kept["identity_failure"] == REVOKED).sum() > 0  # the revocation bit
    assert night.counts["rows"] == kept.height
    assert night.counts["verified_interactions"] == kept["identity_verified"].sum()
    assert tonight.suppressed.height > 0
    assert tonight.suppressed.equals(local.suppressed)
    split = local.deletion
    assert tonight.deletion.trash.equals(split.trash.sort("interaction_id"))
    assert tonight.deletion.restored.equals(split.restored.sort("interaction_id"))
    assert tonight.deletion.purged.sort().equals(split.purged.sort())
    assert tonight.deletion.held == split.held
    assert min(split.trash.height, split.restored.height, split.purged.len()) > 0
    phones = pl.read_parquet(tmp_path / phone_lookup_name("US"))
    assert phones.equals(local.phones.cast(dict(phones.schema)))  # type: ignore[arg-type]
    assert night.counts["phone_lookup_saved"] == local.phones.height

    # The keys an erasure holds, per batch on Spark: the local function's answer.
    keys = ["interaction_id", *KEY_COLUMNS.values()]
    held = held_on_spark(
        spark.read.parquet(str(tmp_path / "live.parquet")).select(*keys),
        log.suppression,
        log.salt_hex,
    )
    assert held.height == 1
    assert held.equals(held_keys(kept.select(keys), log.suppression, log.salt_hex))


# --- the contact_ids step on Spark (dedup.spark.contact_ids) ----------------------------------


def _published(db: Path, previous: PreviousState) -> None:
    """A published file holding what `contact_ids` reads of last night's ids."""
    import duckdb

    con = duckdb.connect(str(db))
    for table, frame in (
        ("interactions", previous.assignment),
        ("contacts", previous.contacts),
        ("contact_redirects", previous.redirects),
    ):
        con.register("frame", frame.to_arrow())
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM frame")
        con.unregister("frame")
    con.close()


@needs_java
def test_contact_ids_on_spark_collect_only_what_decisions_reach(spark, tmp_path: Path) -> None:
    """`resolve_on_spark` against `resolve_ids`: last night c1..c5 (c5 redirected from c0), c6
    deleted and restored tonight; an admin merges c0 (into c2, by its old id) and c1, and
    rejects c3 with c4, whom a shared email puts in one cluster tonight (a split, the new i7
    following c4's email). Same assignment, redirects, history and outcomes; the driver got
    only the clusters the decisions reach (not i8, i9, i10's)."""
    from dedup.decisions import MANUAL_MERGE, REJECT_PROPOSAL
    from dedup.identity.constraints import MERGE_SIDES_SCHEMA
    from dedup.identity.merge_history import MERGES_SCHEMA
    from dedup.identity.resolution import PreviousIds, resolve_ids
    from dedup.spark.contact_ids import IdFiles, LastNight, resolve_on_spark

    holds = {"c1": ["i1", "i2"], "c2": ["i3"], "c3": ["i4", "i5"], "c4": ["i6"], "c5": ["i9"]}
    day = datetime(2026, 11, 1, tzinfo=UTC)
    previous = PreviousState(
        pl.DataFrame(
            [(i, c) for c, ids in holds.items() for i in ids],
            ["interaction_id", "contact_id"],
            orient="row",
        ),
        pl.DataFrame(
            {"contact_id": list(holds), "first_seen": [day + timedelta(days=n) for n in range(5)]}
        ),
        pl.DataFrame({"from_contact_id": ["c0"], "to_contact_id": ["c2"]}),
    )
    restored = pl.DataFrame({"interaction_id": ["i10"], "contact_id": ["c6"], "occurred_at": [day]})
    members = {"i1": "i1", "i2": "i1", "i3": "i3", "i4": "i4", "i5": "i4", "i6": "i4", "i7": "i4"}
    members |= {"i8": "i8", "i9": "i9", "i10": "i10"}
    clusters = pl.DataFrame({"interaction_id": list(members), "cluster": list(members.values())})
    email = {"i5": "a@x.org", "i6": "b@x.org", "i7": "b@x.org"}
    keys = clusters.select("interaction_id").with_columns(
        pl.col("interaction_id").replace_strict(email, default=None).alias(KEY_COLUMNS["email"]),
        *(pl.lit(None, pl.String).alias(c) for k, c in KEY_COLUMNS.items() if k != "email"),
    )
    at = DECIDED_AT - timedelta(hours=1)
    decisions = pl.DataFrame(
        [
            {
                "decision_id": "d1",
                "kind": MANUAL_MERGE,
                "contact_id_l": "c0",
                "contact_id_r": "c1",
                "survivor_id": "c0",
                "decided_at": at,
            },
            {
                "decision_id": "d2",
                "kind": REJECT_PROPOSAL,
                "contact_id_l": "c3",
                "contact_id_r": "c4",
                "decided_at": at,
            },
        ],
        schema=DECISIONS_SCHEMA,
    )
    ambiguous, held = pl.DataFrame(schema=AMBIGUOUS_SCHEMA), pl.Series("contact_id", [], pl.String)
    last = LastNight(
        pl.DataFrame(schema=MERGES_SCHEMA), pl.DataFrame(schema=MERGE_SIDES_SCHEMA), restored
    )
    with_back = with_restored(previous, restored)
    local = resolve_ids(
        clusters,
        ambiguous,
        lambda: keys,
        decisions,
        PreviousIds(with_back, last.merges, last.sides),
        held,
        DECIDED_AT,
    )

    db, work = tmp_path / "contacts.duckdb", tmp_path / "work"
    work.mkdir()
    _published(db, previous)
    files = IdFiles(
        work / "clusters.parquet",
        work / "interactions.parquet",
        work / "assignment.parquet",
        work / "redirects.parquet",
    )
    clusters.write_parquet(files.clusters)
    keys.write_parquet(files.interactions)
    done = resolve_on_spark(
        spark, str(work / "spark"), db, files, last, ambiguous, decisions, held, DECIDED_AT
    )

    assert pl.read_parquet(files.assignment).equals(local.assignment)
    assert pl.read_parquet(files.redirects).equals(local.ids.redirects)
    ours = done.resolution
    assert ours.history.merges.equals(local.history.merges)
    assert ours.history.sides.equals(local.history.sides)
    assert ours.outcomes.equals(local.outcomes)
    assert ours.constraints.separated_pairs.sort("contact_id_l").equals(
        local.constraints.separated_pairs.sort("contact_id_l")
    )
    assert (done.contacts, done.redirects) == (
        local.ids.contact_of_cluster.height,
        local.ids.redirects.height,
    )
    assignment = dict(local.assignment.iter_rows())
    assert (
        assignment["i10"] == "c6"
        and assignment["i7"] == assignment["i6"] == "c4" != assignment["i5"]
    )
    assert assignment["i1"] == assignment["i3"] == "c2"  # c0 is c2 now: the survivor
    reached = set(ours.constrained.clusters.get_column("interaction_id").to_list())
    assert reached == {f"i{n}" for n in range(1, 8)}


# --- contact profiles on Spark (dedup.spark.profiles) ---------------------------------------


def profile_edits(assignment: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.Series]:
    """(decision log, redirects, decisions applied before tonight): every kind of contact edit
    on the largest contacts, one through a redirect, one CRM re-sync applied on a past night,
    and a merge and a redirect no edit names."""
    big = assignment["contact_id"].value_counts(sort=True)["contact_id"].head(4).to_list()
    a, b, c, d = big
    rows = [
        ("e1", TAG_ADD, a, "vip", None),
        ("e2", TAG_ADD, b, "churn-risk", None),
        ("e3", TAG_REMOVE, b, "churn-risk", None),
        ("e4", SET_AUDIENCE, "c-old", "enterprise", None),  # c-old is c now
        ("e5", SET_ATTRIBUTE, d, "tier", '"gold"'),
        ("e6", CRM_RESYNC, a, None, None),
        ("e7", CRM_RESYNC, b, None, None),  # applied on a past night: no longer pending
        ("m1", MANUAL_MERGE, c, None, None),
    ]
    decisions = pl.DataFrame(
        [
            {
                "decision_id": i,
                "kind": kind,
                "contact_id_l": contact,
                "subject": subject,
                "note": note,
                "decided_at": DECIDED_AT + timedelta(minutes=n),
            }
            for n, (i, kind, contact, subject, note) in enumerate(rows)
        ],
        schema=DECISIONS_SCHEMA,
    )
    redirects = pl.DataFrame(
        {"from_contact_id": ["c-old", "x-old"], "to_contact_id": [c, d]}, schema=REDIRECTS
    )
    return decisions, redirects, pl.Series("decision_id", ["e7"], pl.String)


COALESCE = "spark.sql.adaptive.coalescePartitions.enabled"
REDIRECTS = {"from_contact_id": pl.String, "to_contact_id": pl.String}


@needs_java
def test_profiles_on_spark_equal_local_engine(spark, prepared: pl.DataFrame, tmp_path: Path):
    """Each partition of contacts through the local builder on Spark, admins' edits applied
    there: the local engine's contacts file, column for column and row for row."""
    from pyspark.sql import functions as F

    clusters = auto_merge(prepared).clusters
    ids = assign_ids(clusters, PreviousState.empty(), DECIDED_AT).contact_of_cluster
    assignment = clusters.join(ids, on="cluster").select("interaction_id", "contact_id")
    files = ProfileFiles(
        *(tmp_path / f for f in ("i.parquet", "a.parquet", "r.parquet", "c.parquet"))
    )
    prepared.drop("identity_failure").write_parquet(files.interactions)
    assignment.sort("interaction_id").write_parquet(files.assignment)
    decisions, redirects, applied_before = profile_edits(assignment)
    redirects.write_parquet(files.redirects)
    config = EngineConfig(identity_secrets=(SECRET,))

    local, _ = contacts_frame(
        files.interactions, files.assignment, config, tmp_path, tmp_path / "cache", "test"
    )
    new = decisions.filter(~pl.col("decision_id").is_in(applied_before.implode()))
    local = apply_contact_edits(local, decisions, redirects, new["decision_id"])
    local.write_parquet(tmp_path / "local.parquet")

    edits = contact_edits(spark, decisions, files.redirects, applied_before)
    assert edits.redirects.rows() == [("c-old", redirects["to_contact_id"][0])]  # named only
    # As the night's session writes its work files (`dedup.spark.night.night_session`); and
    # the shuffle's partitions kept apart (Spark would coalesce frames this small into one), so
    # the file is the union of partitions' builds.
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    spark.conf.set(COALESCE, "false")
    try:
        counts = profiles_on_spark(spark, files, config, edits)
        rows = profile_rows(spark, files.interactions, files.assignment)
        built = profiles_frame(rows, config, edits).select(F.spark_partition_id().alias("p"))
        assert built.distinct().count() == 2
    finally:
        spark.conf.unset(COALESCE)
    ours, expected = pl.read_parquet(files.contacts), pl.read_parquet(tmp_path / "local.parquet")
    # The same types, times as UTC instants (DuckDB names the zone `Etc/UTC`, Parquet keeps
    # only "adjusted to UTC", which Polars reads as `UTC`).
    utc = {c: pl.Datetime("us", "UTC") for c, t in expected.schema.items() if t == pl.Datetime}
    assert ours.schema == expected.cast(utc).schema  # type: ignore[arg-type]
    assert ours.equals(expected.cast(utc).sort("contact_id"))  # type: ignore[arg-type]
    assert counts == {
        "contacts": expected.height,
        "verified": expected["identity_verified"].sum(),
        "leads": expected["is_lead"].sum(),
    }
    # The edits took: on the survivor of a redirect too, a past re-sync not pending again.
    a, b, c, d = assignment["contact_id"].value_counts(sort=True)["contact_id"].head(4)
    edited = {r["contact_id"]: r for r in ours.iter_rows(named=True)}
    assert "vip" in edited[a]["tags"] and "churn-risk" not in edited[b]["tags"]
    assert (
        edited[c]["audience"] == "enterprise"
        and json.loads(edited[d]["attributes"])["tier"] == "gold"
    )
    assert edited[a]["crm_sync_status"] == "pending" and edited[b]["crm_sync_status"] is None
