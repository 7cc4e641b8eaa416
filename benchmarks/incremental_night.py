"""Benchmark (issue 25): a night that adds one small export day to a large history.

Not a test. Usage:

    .venv/bin/python benchmarks/incremental_night.py --interactions 1000000 --new-share 0.01

1. Generates `--interactions` of history (the project's generator, 10 export days) and runs the
   first night on it (`contacts run`'s code path, fresh process).
2. Adds one export day holding `--new-share` of the history's size: rows drawn from the history's
   own Parquet files (so most new interactions belong to people already known) with new
   interaction ids, dated the day after the last.
3. Runs that night twice from copies of the same state, each in a fresh process: the default
   path (incremental where it can be) and `--full` (and `--baseline`: an earlier checkout's
   code); prints wall seconds, CPU seconds, peak RSS, seconds per Dagster step and the path the
   `interactions`, `contact_profiles` and `contacts_snapshot` steps took, checks that both
   published the same rows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from inspect import signature
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-secret"


def peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return own / 1024


def step_seconds(instance) -> dict[str, float]:
    """Seconds per step key (start to success or failure), summed over the night's runs."""
    import dagster as dg

    started: dict[tuple[str, str], float] = {}
    seconds: dict[str, float] = {}
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None or event.step_key is None:
                continue
            key = (run.run_id, event.step_key)
            if event.event_type == dg.DagsterEventType.STEP_START:
                started[key] = entry.timestamp
            elif event.event_type in (
                dg.DagsterEventType.STEP_SUCCESS,
                dg.DagsterEventType.STEP_FAILURE,
            ):
                took = entry.timestamp - started.get(key, entry.timestamp)
                seconds[event.step_key] = seconds.get(event.step_key, 0.0) + took
    return seconds


def path_metadata(instance, asset: str = "interactions", label: str = "night_path") -> str:
    """What a step said about the path it took (issue 25): `interactions`' `night_path`,
    `identity_clusters`' `clusters_path`, `contact_ids`' `ids_path`, `contact_profiles`'
    `profiles_path`."""
    import dagster as dg

    records = instance.fetch_materializations(dg.AssetKey(asset), limit=1).records
    if not records:
        return ""
    meta = records[0].asset_materialization.metadata  # type: ignore[union-attr]
    value = meta.get(label)
    return str(value.value) if value is not None else ""


def one_night(exports: Path, db: Path, full: bool) -> None:
    """Child process: one night through `pipelines.nightly.run_night`; JSON on stdout."""
    os.environ["CONTACTS_EXPORTS_DIR"] = str(exports)
    os.environ["ASKVAULT_IDENTITY_SECRET"] = SECRET
    import dagster as dg

    from assets.resources import ContactsSettings
    from pipelines.nightly import run_night

    settings = ContactsSettings(exports_dir=str(exports), db_path=str(db))
    instance = dg.DagsterInstance.ephemeral()
    t = time.perf_counter()
    # A checkout from before `full` existed (the baseline) runs its only path.
    kwargs = {"full": True} if full and "full" in signature(run_night).parameters else {}
    summary = run_night(settings, instance, **kwargs)
    took = time.perf_counter() - t
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    own = resource.getrusage(resource.RUSAGE_SELF)
    report = {
        "seconds": took,
        # CPU seconds of the night's own process (threads included): on a machine others load
        # too, wall seconds move with their load; this moves far less.
        "cpu_seconds": own.ru_utime + own.ru_stime,
        "peak_mb": peak_mb(),
        "worker_peak_mb": children,
        "interactions": summary.interactions,
        "contacts": summary.contacts,
        "steps": step_seconds(instance),
        "path": path_metadata(instance),
        "clusters_path": path_metadata(instance, "identity_clusters", "clusters_path"),
        "ids_path": path_metadata(instance, "contact_ids", "ids_path"),
        "profiles_path": path_metadata(instance, "contact_profiles", "profiles_path"),
        "publish_path": path_metadata(instance, "contacts_snapshot", "publish_path"),
    }
    print(json.dumps(report))


def night(exports: Path, db: Path, full: bool = False, checkout: Path = ROOT) -> dict:
    """One night in a fresh process, with the code of `checkout` (this one by default)."""
    script = checkout / "benchmarks" / Path(__file__).name
    if checkout != ROOT:
        shutil.copy2(__file__, script)
    cmd = [sys.executable, str(script), "--night", str(exports), "--db", str(db)]
    if full:
        cmd.append("--full")
    done = subprocess.run(cmd, cwd=checkout, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"night failed ({' '.join(cmd)})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def link_tree(source: Path, target: Path) -> None:
    """Real folders, hard-linked files: a day's fingerprint (lstat) is that of a real file."""
    for folder, _dirs, files in os.walk(source):
        rel = Path(folder).relative_to(source)
        (target / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            os.link(Path(folder) / name, target / rel / name)


def add_day(exports: Path, staging: Path, share: float, history: int, seed: int = 25):
    """One new askvault export day: `share` × history rows drawn from the history's staged rows
    (people already known, new interaction ids), dated the day after the last day."""
    import polars as pl

    from dedup.schema import CANONICAL_FIELDS

    days = sorted(p.name for p in (exports / "askvault").iterdir())
    pool = pl.read_parquet(sorted(staging.glob("askvault/*/accepted.parquet")))
    n = max(1, round(history * share))
    new_day = (date.fromisoformat(days[-1]) + timedelta(days=1)).isoformat()
    midnight = pl.lit(date.fromisoformat(new_day)).cast(pl.Datetime("us", "UTC"))
    rows = (
        pool.sample(n, with_replacement=n > pool.height, seed=seed)
        .select(CANONICAL_FIELDS)
        .with_columns(
            pl.format("int_new_{}", pl.int_range(pl.len())).alias("interaction_id"),
            (pl.col("occurred_at") - pl.col("occurred_at").dt.truncate("1d") + midnight).alias(
                "occurred_at"
            ),
        )
    )
    folder = exports / "askvault" / new_day
    folder.mkdir()
    rows.write_parquet(folder / "export-001.parquet")
    return new_day, rows.height


def copy_state(source_db: Path, target_db: Path) -> None:
    shutil.rmtree(target_db.parent, ignore_errors=True)
    target_db.parent.mkdir(parents=True)
    shutil.copy2(source_db, target_db)
    state = source_db.with_name(source_db.name + ".state")
    shutil.copytree(state, target_db.with_name(target_db.name + ".state"), symlinks=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--new-share", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument(
        "--reuse-history",
        action="store_true",
        help="start from the history night an earlier run left in --out",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also run the night with the code of this checkout (e.g. a worktree of the commit "
        "before issue 25), from the same state",
    )
    parser.add_argument("--night", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--full", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.night:
        one_night(args.night, args.db, args.full)
        return

    from contacts.demo import generate_benchmark_exports

    history = args.out / f"exports-{args.interactions}"
    if not (history / "askvault").is_dir():
        shutil.rmtree(history, ignore_errors=True)
        generate_benchmark_exports(history, args.interactions)
    work = args.out / f"incremental-{args.interactions}"
    exports = work / "exports"
    if not args.reuse_history:
        shutil.rmtree(work, ignore_errors=True)
        link_tree(history / "askvault", exports / "askvault")
    for extra in sorted((exports / "askvault").iterdir()):
        if not (history / "askvault" / extra.name).is_dir():
            shutil.rmtree(extra)  # the new day of an earlier benchmark run
    base = work / "base" / "contacts.duckdb"
    if not base.exists():
        first = night(exports, base)
        print(f"history night: {first['interactions']:,} interactions, {first['seconds']:.1f} s")
    staging = base.with_name(base.name + ".state") / "staging"
    new_day, rows = add_day(exports, staging, args.new_share, args.interactions)
    print(f"new day {new_day}: {rows:,} rows")
    results = {}
    since = datetime.now(UTC)
    runs = [("incremental", False, ROOT), ("full", True, ROOT)]
    if args.baseline:
        runs.append(("baseline", False, args.baseline.resolve()))
    for name, full, checkout in runs:
        db = work / name / "contacts.duckdb"
        copy_state(base, db)
        results[name] = night(exports, db, full, checkout)
        r = results[name]
        print(f"{name}: {r['seconds']:.1f} s, peak {r['peak_mb']:,.0f} MB, path: {r['path']}")
    (work / "nights.json").write_text(json.dumps(results, indent=1))
    names = list(results)
    print("\n| step | " + " | ".join(f"{n} (s)" for n in names) + " |")
    print("| --- |" + " ---: |" * len(names))
    full = results["full"]["steps"]
    for step in sorted(full, key=lambda s: -full[s]):
        cells = " | ".join(f"{results[n]['steps'].get(step, 0):.2f}" for n in names)
        print(f"| {step} | {cells} |")
    rows = {
        "**night (wall)**": lambda r: f"**{r['seconds']:.1f}**",
        "night CPU seconds (own process)": lambda r: f"{r.get('cpu_seconds', 0):.1f}",
        "peak RSS of the night's process (MB)": lambda r: f"{r['peak_mb']:,.0f}",
        "interactions / contacts": lambda r: f"{r['interactions']:,} / {r['contacts']:,}",
        "path": lambda r: r["path"] or "(no night_path: before issue 25)",
        "clusters": lambda r: r.get("clusters_path") or "(all merged: before the identity index)",
        "contact ids": lambda r: r.get("ids_path") or "(all assigned: before ids were carried)",
        "profiles": lambda r: r.get("profiles_path") or "(all built: before profiles were kept)",
        "published file": lambda r: (
            r.get("publish_path") or "(written whole: before issue 25's publish)"
        ),
    }
    for label, cell in rows.items():
        print(f"| {label} | " + " | ".join(cell(results[n]) for n in names) + " |")
    # The equality test's comparison: every table, run clocks and run ids aside.
    from tests.test_incremental_night import differences

    differ = differences(
        work / "incremental" / "contacts.duckdb", work / "full" / "contacts.duckdb", since
    )
    print("\npublished files: " + ("identical" if not differ else f"DIFFER: {differ}"))


if __name__ == "__main__":
    main()
