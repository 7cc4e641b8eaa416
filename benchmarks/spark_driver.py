"""Benchmark: the nightly job's identity steps with `engine = "spark"`, the driver's memory apart.

Not a test. Usage (each size in its own process, so peaks do not carry over):

    .venv/bin/python benchmarks/spark_driver.py --interactions 100000
    .venv/bin/python benchmarks/spark_driver.py --interactions 1000000

Stages the benchmark exports with the local ingest in a child process (as
benchmarks/spark_engine.py does; not timed: see benchmarks/spark_ingest.py), links the staged days
into a fresh workspace's state folder, then materializes the night's identity assets
(`admin_decisions`, `interactions`, `identity_clusters`, `contact_ids`: the asset functions a
night runs, through Dagster, in process) in Spark local mode, first night. One Markdown row per
step: its seconds, the CPU seconds of the driver, the JVM and its workers, and the peak resident
memory **during that step** (VmHWM, reset before each step through /proc/<pid>/clear_refs) of
- the driver: this Python process, where the assets run; issue 27 wants it flat in the data,
- the JVM (local mode: the driver JVM is also the only executor, so it grows with the data),
- the largest PySpark worker (a Python process under the JVM, sampled every 0.5 s).
The matching and snapshot steps of the night are not run: they are local-engine steps on both
engines (docs/scale.md); the profiles step is, at the end (below).

Then a second night's `contact_ids` with last night's ids and a few decisions: a child process
publishes what that step reads of the published file (`interactions`' ids, `contacts` with
their first day, `contact_redirects`; the profile columns empty) from night 1's work files and
appends to the decision log merges and rejections of pairs of contacts (`--decisions` pairs of
each); `admin_decisions` and `contact_ids` run again, measured alike. The `interactions` and
`identity_clusters` steps are not run again: merges and rejections do not change their work
files, and their second night costs what their first did.

Then night 2's `contact_profiles`, twice over the same work files: on Spark (every profile built
in the executors' tasks, `dedup.spark.profiles`; Spark writes `contacts.parquet`), then with
`engine = "local"` (the local engine's step, a full build: no profiles kept yet), measured
alike, in this same process after the Spark steps (so both start from the same baseline). The
two `contacts.parquet` files are compared (equal up to the time zone's name: see
tests/test_spark_engine.py). `--skip-profiles` leaves them out.

Night 2's `merge_proposals` likewise: on Spark (records built and scored on the cluster,
`dedup.spark.matching`) right after the Spark `contact_profiles` step (so its driver figure
starts from the Spark steps' baseline), and with `engine = "local"` at the end; the model is
trained first in a child process (the local engine's training, not measured), so both steps
reuse it (a night that trains reads the records on the driver: docs/scale.md). The two steps'
proposals are compared (pairs; probabilities).
`--skip-matching` leaves them out.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.procs import children, cpu_seconds, peak_mb, rss_mb  # noqa: E402
from benchmarks.spark_engine import SECRET, WorkerPeak, stage_exports  # noqa: E402


def cpu_now(jvm: int) -> float:
    """CPU seconds so far of this driver, the JVM and the JVM's Python workers."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime + cpu_seconds([jvm, *children(jvm)])


class PythonWorkerPeak(WorkerPeak):
    """`WorkerPeak` over the JVM's Python descendants only (PySpark's daemon and workers): any
    other process the JVM starts (a shell helper) is left out of the worker column."""

    def run(self) -> None:
        while not self.done.wait(0.5):
            for pid in children(self.jvm):
                try:
                    python = Path(f"/proc/{pid}/comm").read_text().startswith("python")
                except OSError:  # ended while being listed
                    continue
                if python:
                    self.peak = max(self.peak, peak_mb(pid))


STEPS = ("admin_decisions", "interactions", "identity_clusters", "contact_ids")


def reset_peak(pid: int) -> None:
    """Start a new VmHWM for `pid` (Linux: writing 5 to clear_refs resets the peak RSS)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def workspace(out: Path, staging: Path, name: str) -> Path:
    """A fresh published-file path whose state folder's staging links the staged days."""
    root = out / name
    shutil.rmtree(root, ignore_errors=True)
    db = root / "contacts.duckdb"
    state = db.with_name(db.name + ".state")
    state.mkdir(parents=True)
    # Hard links: no copy of the data; a scrub replaces files, never edits them in place.
    shutil.copytree(staging, state / "staging", copy_function=os.link)
    return db


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interactions", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--partitions", default="8")
    parser.add_argument("--label", default="", help="in the workspace's folder name")
    parser.add_argument("--decisions", type=int, default=10, help="pairs merged, pairs rejected")
    parser.add_argument("--skip-profiles", action="store_true", help="no contact_profiles")
    parser.add_argument("--skip-matching", action="store_true", help="no merge_proposals")
    parser.add_argument("--stage-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--train", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--publish", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        publish_night(args.publish, args.decisions)
        return
    if args.train:
        train_model(args.train)
        return
    data = args.out / f"exports-{args.interactions}"
    staging = args.out / f"staging-{args.interactions}"
    if args.stage_only:
        stage_exports(data, staging, args.interactions)
        return
    # In a child process: the local ingest's frames must not count in this driver's peak.
    subprocess.run([sys.executable, __file__, *sys.argv[1:], "--stage-only"], check=True)
    name = f"driver-night-{args.label}-{args.interactions}".replace("--", "-")
    run(args, workspace(args.out, staging, name))


def publish_night(db: Path, pairs: int) -> None:
    """(Child process.) What night 2's `contact_ids` reads of the published file, from night
    1's work files, and `pairs` merges and `pairs` rejections of contacts in the decision log."""
    import duckdb

    from dedup.decisions import MANUAL_MERGE, REJECT_PROPOSAL, Decision, append_many
    from dedup.layout import StateLayout

    layout = StateLayout(db)
    work = layout.work_dir
    empty = ", ".join(
        f"NULL::{t} AS {c}"
        for c, t in (
            ("name", "VARCHAR"),
            ("email", "VARCHAR"),
            ("phone", "VARCHAR"),
            ("company", "VARCHAR"),
            ("audience", "VARCHAR"),
            ("tags", "VARCHAR[]"),
            ("channels", "VARCHAR[]"),
            ("attributes", "VARCHAR"),
            ("conversation_count", "BIGINT"),
        )
    )
    con = duckdb.connect(str(db))
    con.execute(f"""
        CREATE TABLE interactions AS SELECT a.interaction_id, a.contact_id, i.occurred_at
        FROM '{work}/assignment.parquet' a JOIN '{work}/interactions.parquet' i USING (interaction_id)
        ORDER BY i.occurred_at, a.interaction_id;
        CREATE TABLE contacts AS SELECT contact_id, min(occurred_at) AS first_seen, {empty}
        FROM interactions GROUP BY contact_id ORDER BY contact_id;
        CREATE TABLE contact_redirects AS SELECT from_contact_id, to_contact_id
        FROM '{work}/redirects.parquet';
    """)
    ids = [
        r[0]
        for r in con.execute(
            f"SELECT contact_id FROM contacts ORDER BY contact_id LIMIT {4 * pairs}"
        ).fetchall()
    ]
    con.close()
    merges = [
        Decision(MANUAL_MERGE, contact_id_l=a, contact_id_r=b, survivor_id=a)
        for a, b in zip(ids[0 : 2 * pairs : 2], ids[1 : 2 * pairs : 2], strict=True)
    ]
    rejects = [
        Decision(REJECT_PROPOSAL, contact_id_l=a, contact_id_r=b)
        for a, b in zip(ids[2 * pairs :: 2], ids[2 * pairs + 1 :: 2], strict=True)
    ]
    append_many(layout.decisions_path, merges + rejects)


def measure(step: str, assets: list, settings, instance, jvm: int) -> tuple:
    """Materialize `step` alone; (step, seconds, CPU, driver peak, driver after, JVM peak,
    largest worker)."""
    import dagster as dg

    from pipelines.nightly import QUIET

    for pid in (os.getpid(), jvm, *children(jvm)):  # workers live on between steps
        reset_peak(pid)
    workers = PythonWorkerPeak(jvm)
    workers.start()
    t, cpu = time.perf_counter(), cpu_now(jvm)
    result = dg.materialize(
        assets,
        selection=[step],
        resources={"settings": settings},
        instance=instance,
        run_config=QUIET,
    )
    seconds, cpu = time.perf_counter() - t, cpu_now(jvm) - cpu
    workers.done.set()
    workers.join()
    assert result.success, step
    print(f"{step}: {seconds:.1f}s", file=sys.stderr)
    return step, seconds, cpu, peak_mb(os.getpid()), rss_mb(os.getpid()), peak_mb(jvm), workers.peak


def run(args: argparse.Namespace, db: Path) -> None:
    import dagster as dg

    from assets.identity import admin_decisions, contact_ids, identity_clusters, interactions
    from assets.resources import ContactsSettings
    from dedup.spark.session import spark_session

    os.environ["ASKVAULT_IDENTITY_SECRET"] = SECRET
    imports = peak_mb(os.getpid())
    t = time.perf_counter()
    spark = spark_session(
        env={},
        overrides={
            "spark.driver.memory": args.driver_memory,
            "spark.sql.shuffle.partitions": args.partitions,
            "spark.ui.enabled": "false",
        },
    )
    print(f"JVM start {time.perf_counter() - t:.1f}s", file=sys.stderr)
    jvm = spark.sparkContext._gateway.proc.pid  # type: ignore[union-attr]
    settings = ContactsSettings(exports_dir=str(args.out), db_path=str(db), engine="spark")
    assets = [admin_decisions, interactions, identity_clusters, contact_ids]
    instance = dg.DagsterInstance.ephemeral()
    rows = [measure(step, assets, settings, instance, jvm) for step in STEPS]
    publish = [sys.executable, __file__, "--publish", str(db), "--decisions", str(args.decisions)]
    subprocess.run(publish, check=True)
    for step in ("admin_decisions", "contact_ids"):
        row = measure(step, assets, settings, instance, jvm)
        rows.append((f"{step} (night 2)", *row[1:]))
    matching = not (args.skip_profiles or args.skip_matching)
    proposals: list = []

    def spark_matching() -> None:  # between the Spark and the local profiles steps
        subprocess.run([sys.executable, __file__, "--train", str(db)], check=True)
        proposals.append(proposals_step(assets, settings, instance, jvm, rows))

    same = None
    if not args.skip_profiles:
        between = spark_matching if matching else None
        same = profiles_both(assets, settings, instance, jvm, rows, between)
    matched = None
    if matching:
        local = type(settings)(exports_dir=settings.exports_dir, db_path=str(db), engine="local")
        proposals.append(proposals_step(assets, local, instance, jvm, rows))
        matched = same_proposals(*proposals)
    report(args.interactions, db, imports, rows, jvm)
    if same is not None:
        print(f"contacts.parquet of the Spark and the local step equal: {same}")
    if matched is not None:
        print(f"merge proposals (spark, local, same pairs, largest probability gap): {matched}")


def train_model(db: Path) -> None:
    """(Child process.) The local engine's `merge_proposals` once, which trains and saves the
    model the measured steps reuse."""
    import dagster as dg

    from assets.matching import merge_proposals
    from assets.resources import ContactsSettings
    from pipelines.nightly import QUIET

    os.environ["ASKVAULT_IDENTITY_SECRET"] = SECRET
    settings = ContactsSettings(exports_dir=str(db.parent), db_path=str(db), engine="local")
    result = dg.materialize([merge_proposals], resources={"settings": settings}, run_config=QUIET)
    assert result.success


def proposals_step(assets: list, settings, instance, jvm: int, rows: list[tuple]):
    """Night 2's `merge_proposals` on `settings`' engine (a row appended to `rows`), with no
    incremental state (both engines then score every pair); the proposals it wrote."""
    import polars as pl

    from assets.matching import PROPOSALS_FILE, contact_profiles, merge_proposals
    from assets.names import PROPOSALS

    assets = [*assets, contact_profiles, merge_proposals]
    shutil.rmtree(settings.matching_state_dir, ignore_errors=True)
    row = measure(PROPOSALS, assets, settings, instance, jvm)
    rows.append((f"{PROPOSALS} (night 2, {settings.backend})", *row[1:]))
    return pl.read_parquet(settings.layout.work_file(PROPOSALS_FILE))


def same_proposals(ours, theirs) -> tuple:
    """(Spark's proposals, the local step's, the same pairs, the largest probability gap)."""
    import polars as pl

    both = ours.join(theirs, on=["contact_id_l", "contact_id_r"], suffix="_local")
    gap = both.select((pl.col("match_probability") - pl.col("match_probability_local")).abs().max())
    return ours.height, theirs.height, both.height == ours.height == theirs.height, gap.item()


def profiles_both(
    assets: list, settings, instance, jvm: int, rows: list[tuple], between=None
) -> bool:
    """Night 2's `contact_profiles` on Spark, then (after `between()`, when given) on the local
    engine (rows appended to `rows`); whether the two steps wrote the same contacts."""
    import polars as pl

    from assets.matching import CONTACTS_FILE, contact_profiles
    from assets.names import PROFILES

    assets = [*assets, contact_profiles]
    contacts = settings.layout.work_file(CONTACTS_FILE)
    row = measure(PROFILES, assets, settings, instance, jvm)
    rows.append((f"{PROFILES} (night 2, spark)", *row[1:]))
    spark_copy = contacts.with_name("contacts-spark.parquet")
    shutil.copyfile(contacts, spark_copy)
    if between is not None:
        between()
    local = type(settings)(
        exports_dir=settings.exports_dir, db_path=settings.db_path, engine="local"
    )
    row = measure(PROFILES, assets, local, instance, jvm)
    rows.append((f"{PROFILES} (night 2, local)", *row[1:]))
    ours, theirs = pl.read_parquet(spark_copy), pl.read_parquet(contacts)
    utc = {c: pl.Datetime("us", "UTC") for c, t in theirs.schema.items() if t == pl.Datetime}
    return ours.equals(theirs.cast(utc).sort("contact_id"))  # type: ignore[arg-type]


def report(n: int, db: Path, imports: float, rows: list[tuple], jvm: int) -> None:
    import polars as pl

    work = db.with_name(db.name + ".state") / "work"
    live = pl.scan_parquet(work / "interactions.parquet").select(pl.len()).collect().item()
    print(
        f"\n{n:,} generated, {live:,} interactions in the engine; driver after imports, before "
        f"Spark: {imports:,.0f} MB; JVM children now: {len(children(jvm))}"
    )
    print(
        "| step | seconds | CPU (s) | driver peak (MB) | driver after (MB) | JVM peak (MB) "
        "| largest worker (MB) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for step, seconds, cpu, peak, after, jvm_peak, worker in rows:
        print(
            f"| {step} | {seconds:.1f} | {cpu:.0f} | {peak:,.0f} | {after:,.0f} "
            f"| {jvm_peak:,.0f} | {worker:,.0f} |"
        )
    first = rows[: len(STEPS)]
    total, cpu = sum(r[1] for r in first), sum(r[2] for r in first)
    print(f"| identity steps | {total:.1f} | {cpu:.0f} | {max(r[3] for r in first):,.0f} | | | |")
    outcomes = pl.read_parquet(work / "decision_outcomes.parquet")
    merges = pl.read_parquet(work / "merges.parquet").group_by("kind").len().sort("kind")
    print(f"night 2: {outcomes.group_by('outcome').len().rows()} decisions; merges {merges.rows()}")


if __name__ == "__main__":
    main()
