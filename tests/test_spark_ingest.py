"""Ingest on Spark (dedup.spark.ingest, issue 27): provider files read on the executors by the
local adapters stage exactly what the local ingest stages.

On the generator's exports (every native source) plus real files nobody here wrote
(tests/data/real/: pywa's WhatsApp webhooks, CPython's, mail-parser's and perceval's mail,
Fivetran's HubSpot and Salesforce extracts), a file of bad records and a symlink pointing out
of the exports root: the same `accepted.parquet` and `quarantine.parquet` (every column and
row, in order), the same manifest (fingerprint, files, counts, skipped). The JVM tests share the
process's one Spark session (tests/spark_session.py) and are skipped without a Java runtime.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.ingest import askvault_interactions
from assets.resources import ContactsSettings
from contacts.demo import GeneratorConfig, generate_exports
from dedup.ingest.days import (
    SOURCES,
    day_files,
    export_days,
    ingest_day,
    read_staged,
    stage_days,
    staged_days_of,
)
from dedup.ingest.readers import MAX_FILE_BYTES_ENV
from dedup.spark.ingest import ORDER, QUARANTINE, read_on_spark, stage_days_on_spark
from tests.spark_session import local_test_session, needs_java

REAL = Path(__file__).parent / "data" / "real"
SECRET_VALUE = "leaked-from-outside-the-root"


def _webhook_log(src: Path, dest: Path) -> None:
    """pywa's name → payload map as a webhook log: one payload per line."""
    payloads = json.loads(src.read_text()).values()
    dest.write_text("".join(json.dumps(p) + "\n" for p in payloads))


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("spark_ingest") / "exports"
    generate_exports(root, GeneratorConfig(persons=30, days=2, seed=11, native=True))
    day = export_days(root, "askvault")[0]
    whatsapp, email = root / "whatsapp" / day, root / "email" / day
    for name in ("message", "system", "message_status"):
        _webhook_log(REAL / "whatsapp" / "pywa" / f"{name}.json", whatsapp / f"pywa-{name}.jsonl")
    shutil.copy(REAL / "whatsapp" / "pywa" / "message.json", whatsapp / "pywa-as-is.json")
    for path in (
        "cpython/msg_01.eml",
        "cpython/msg_02.eml",  # list mail: skipped
        "mail-parser/mail_test_12.eml",
        "mail-parser/mail_malformed_2.eml",  # a delivery report: skipped
        "perceval/pipermail_2015_november.mbox",
    ):
        shutil.copy(REAL / "email" / path, email / Path(path).name)
    for source, name in (
        ("hubspot", "fivetran-contact_data.csv"),
        ("salesforce", "fivetran-sf_contact_data.csv"),
    ):
        (root / source / day).mkdir(exist_ok=True)
        shutil.copy(REAL / source / name, root / source / day / name)
    good = {
        "interaction_id": "bad-file-1",
        "channel": "widget",
        "occurred_at": "2026-11-01T10:00:00Z",
    }
    # Named to come first and last: the readers' rejects of every file (the cut JSON) come
    # before the validation's (local order), which one task per file would not give.
    (root / "askvault" / day / "a-bad.jsonl").write_text(
        "\n".join(
            [
                json.dumps(good),
                json.dumps({**good, "interaction_id": "bad-file-2", "channel": "fax"}),
                json.dumps({**good, "interaction_id": "bad-file-3", "occurred_at": "soon"}),
                '{"interaction_id": "bad-file-4", "channel": ',
            ]
        )
        + "\n"
    )
    (root / "askvault" / day / "zz-cut.jsonl").write_text('{"interaction_id": "cut"\n')
    outside = root.parent / "outside.jsonl"
    outside.write_text(json.dumps({**good, "interaction_id": SECRET_VALUE}) + "\n")
    (root / "askvault" / day / "leak.jsonl").symlink_to(outside)
    return root


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory):
    return local_test_session(tmp_path_factory.mktemp("checkpoints"))


def _staged(root: Path, source: str, day: str, name: str) -> pl.DataFrame:
    return pl.read_parquet(root / source / day / f"{name}.parquet")


@needs_java
def test_spark_ingest_stages_what_the_local_ingest_stages(
    exports: Path, spark, tmp_path: Path
) -> None:
    local_root, spark_root = tmp_path / "local", tmp_path / "spark"
    for source in SOURCES:
        days = ["2026-10-31", *export_days(exports, source)]  # a day with no folder: staged empty
        local = staged_days_of(
            stage_days(exports, source, days, lambda d, s=source: local_root / s / d)
        )
        on_spark = stage_days_on_spark(
            spark, exports, source, days, lambda d, s=source: spark_root / s / d
        )
        assert on_spark[0] == local[0], source  # files, counts and skipped counts per day
        assert_frame_equal(on_spark[1].sort("reason"), local[1].sort("reason"), check_dtypes=False)
        for day in days:
            for name in ("accepted", "quarantine"):
                assert_frame_equal(
                    _staged(spark_root, source, day, name), _staged(local_root, source, day, name)
                )
            manifests = [
                (r / source / day / "manifest.json").read_text() for r in (spark_root, local_root)
            ]
            assert manifests[0] == manifests[1]
        assert not (spark_root / source / ".spark").exists()  # Spark's own files renamed away

    # What the comparison covered: real files read, bad records quarantined with reasons, the
    # link out of the root never read.
    accepted = read_staged(spark_root, "accepted")
    for source in ("whatsapp", "email"):
        files = accepted.filter(pl.col("source") == source).get_column("file")
        assert files.str.contains("pywa-|msg_01|mail_test_12|pipermail").any(), source
    assert read_staged(spark_root, "accepted", ("hubspot", "salesforce")).height > 0
    quarantine = read_staged(spark_root, "quarantine")
    reasons = quarantine.filter(pl.col("file").str.ends_with("a-bad.jsonl")).get_column("reason")
    assert reasons.str.contains("unknown channel 'fax'").any()
    assert reasons.str.contains("unparseable occurred_at 'soon'").any()
    assert reasons.len() == 3  # the JSON cut short, too; the reader's reject comes first
    assert quarantine.filter(pl.col("file").str.contains("pywa-as-is")).height > 0
    assert not accepted.filter(pl.col("interaction_id") == SECRET_VALUE).height
    assert not quarantine.get_column("raw").str.contains(SECRET_VALUE).any()
    first = export_days(exports, "askvault")[0]
    assert "leak.jsonl" not in {p.name for p in day_files(exports, "askvault", first)}


@needs_java
def test_a_task_refuses_what_the_local_readers_refuse(
    exports: Path, spark, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files named to the tasks directly (as if a file were swapped for a link after the
    listing): the readers' opening rules hold inside the task, and the driver's file-size cap
    travels with it (the executor's environment never had it)."""
    day = export_days(exports, "askvault")[0]
    monkeypatch.setenv(MAX_FILE_BYTES_ENV, "4000")
    names = ["leak.jsonl", *(p.name for p in day_files(exports, "askvault", day))]
    local = ingest_day(
        exports, "askvault", day, files=[exports / "askvault" / day / n for n in names]
    )
    rows = read_on_spark(spark, exports, "askvault", {day: names}).sortWithinPartitions(*ORDER)
    on_spark = pl.from_arrow(
        rows.filter(f"_kind = '{QUARANTINE}'").select("quarantine.*").toArrow()
    )
    assert_frame_equal(on_spark, local.quarantine)  # type: ignore[arg-type]
    reasons = local.quarantine.get_column("reason")
    assert reasons.str.starts_with("symlink not followed: askvault/").any()
    assert reasons.str.contains(MAX_FILE_BYTES_ENV).any()


@needs_java
def test_the_ingest_asset_runs_on_the_engine_the_settings_name(
    exports: Path, spark, tmp_path: Path
) -> None:
    """The asset's own session is the process's (the shared test session, `spark`)."""
    day = export_days(exports, "askvault")[-1]
    settings = ContactsSettings(
        exports_dir=str(exports), db_path=str(tmp_path / "c.duckdb"), engine="spark"
    )
    result = dg.materialize(
        [askvault_interactions], partition_key=day, resources={"settings": settings}
    )
    (event,) = result.asset_materializations_for_node(askvault_interactions.op.name)
    staged = ingest_day(exports, "askvault", day)
    assert event.metadata["engine"].value == "spark"
    assert event.metadata["dagster/row_count"].value == staged.accepted.height
    assert_frame_equal(read_staged(settings.layout.staging_root, "accepted"), staged.accepted)
