"""The most recall any classifier of our comparison vectors could reach at precision ≥ 0.99.

Not a test. Usage:

    uv run python benchmarks/recall_ceiling.py --persons 5000 [--seed 11]

At 20,000 people (258.9M pairs) it takes ~11 min and 17 GB on 2 cores; at 5,000, ~1 min.

Runs the nightly job on a generated workspace (as `matching_accuracy.py` does), then scores
**every** pair of contacts with the saved model's comparisons (no blocking: n·(n-1)/2 pairs) and
groups the pairs by what a classifier could see of them: each field's comparison level, plus how
many contacts share each side's full name (term frequency, the rarity the model weighs). Two
pairs with the same key look the same to any rule built on these fields.

An oracle then accepts whole groups, purest first (the share of true pairs of interactions in the
group, from the generator's ground truth), for as long as pairwise precision over all interaction
pairs stays ≥ 0.99; recall is counted after the transitive closure of the true pairs it accepted
(false ones only count against precision). That is an upper bound: a real classifier does not know
which groups are pure. Same-vector strangers grow with the workspace, so the bound at 5,000
people is above the one at 20,000.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import polars as pl  # noqa: E402

from benchmarks.matching_accuracy import run  # noqa: E402
from dedup.matching.evaluation import accept_proposals, contact_persons, pairwise_scores  # noqa: E402
from dedup.matching.model import TrainedModel, _linker, splink_ids  # noqa: E402

PRECISION = 0.99


def pair_groups(
    records: pl.DataFrame, model: TrainedModel, owner: pl.DataFrame, folder: Path
) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """Score every pair of contacts and group them by what a classifier sees.

    Returns the groups (key, weight of true and of false pairs of interactions, pair counts),
    the true pairs with their key, and the key's columns. At 20,000 people that is ~2.6e8 pairs,
    so they stay in a DuckDB file; only groups and true pairs come back.
    """
    from splink import DuckDBAPI

    con = duckdb.connect(str(folder / "pairs.duckdb"))
    con.execute(f"SET temp_directory = '{folder}'")
    con.execute("SET preserve_insertion_order = false")
    settings = {
        **model.settings,
        "blocking_rules_to_generate_predictions": [
            {"blocking_rule": "1=1", "sql_dialect": "duckdb"}
        ],
        # Without the matching columns Splink keeps no gamma_* but each field's weight (mw_*,
        # before term frequencies): one value per comparison level, the same key.
        "retain_matching_columns": False,
        "retain_intermediate_calculation_columns": True,
    }
    linker = _linker(records, settings, DuckDBAPI(con))
    table = linker.inference.predict(warning_mode="never").physical_name
    columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    levels = [c for c in columns if c.startswith("mw_") and not c.startswith("mw_tf")]
    # Splink joins on each contact's rank among the ids (model.splink_ids)
    sides = owner.join(
        splink_ids(records.select("unique_id"))
        .rename({"unique_id": "sid"})
        .with_columns(unique_id=records.get_column("unique_id")),
        on="unique_id",
    ).to_arrow()
    con.register("sides", sides)
    con.execute(
        f"""CREATE TABLE keyed AS SELECT
            {", ".join(f"round(p.{c}, 4)::FLOAT AS {c}" for c in levels)},
            least(l.name_rarity, r.name_rarity) AS rarity,
            l.person_id = r.person_id AS is_true,
            l.size::BIGINT * r.size AS weight,
            l.unique_id AS unique_id_l, r.unique_id AS unique_id_r, p.match_probability
        FROM {table} p JOIN sides l ON p.unique_id_l = l.sid JOIN sides r ON p.unique_id_r = r.sid"""
    )
    con.execute(f"DROP TABLE {table}")
    key = [*levels, "rarity"]
    cols = ", ".join(key)
    pairs = con.execute("SELECT count(*) FROM keyed").fetchone()[0]
    groups = con.sql(
        f"""SELECT {cols},
            sum(weight) FILTER (is_true)::BIGINT AS true_w,
            sum(weight) FILTER (NOT is_true)::BIGINT AS false_w,
            count(*) FILTER (is_true) AS true_pairs, count(*) AS pairs,
            avg(match_probability) FILTER (is_true) AS model_p
        FROM keyed GROUP BY ALL HAVING count(*) FILTER (is_true) > 0"""
    ).pl()
    true_pairs = con.sql(f"SELECT unique_id_l, unique_id_r, {cols} FROM keyed WHERE is_true").pl()
    con.close()
    print(f"{records.height:,} contacts, {pairs:,} pairs scored")
    return groups.with_columns(pl.col("false_w").fill_null(0)), true_pairs, key


def rarity(records: pl.DataFrame) -> pl.DataFrame:
    """Per contact: how many contacts share its full name, bucketed (1, 2, 3-4, 5-8, 9+)."""
    n = pl.len().over("full_name")
    return records.select(
        "unique_id",
        name_rarity=pl.when(pl.col("full_name").is_null())
        .then(pl.lit("none"))
        .when(n == 1)
        .then(pl.lit("1"))
        .when(n == 2)
        .then(pl.lit("2"))
        .when(n <= 4)
        .then(pl.lit("3-4"))
        .when(n <= 8)
        .then(pl.lit("5-8"))
        .otherwise(pl.lit("9+")),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = run(args.persons, args.seed, Path(tmp))
        model = TrainedModel.load(
            Path(tmp) / "contacts.duckdb.state" / "model" / "splink_model.json"
        )
    assert model is not None
    records, assignment, truth = data["records"], data["assignment"], data["truth"]
    truth_ids = truth.select("interaction_id", "person_id")
    # contact → its person (contacts are pure: auto-merge precision 0.9995) and its size
    owner = (
        contact_persons(assignment, truth_ids)
        .rename({"contact_id": "unique_id"})
        .join(rarity(records), on="unique_id")
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        groups, true_pairs, key = pair_groups(records, model, owner, Path(tmp))
    print(f"scored and grouped in {time.perf_counter() - started:.0f} s")
    groups = (
        groups.with_columns(
            purity=pl.col("true_w") / (pl.col("true_w") + pl.col("false_w")),
            pair_purity=pl.col("true_pairs") / pl.col("pairs"),
        )
        .sort("purity", descending=True)
        .with_row_index("rank")
    )
    auto = pairwise_scores(assignment, truth_ids)
    print(
        f"auto-merge: precision {auto.precision:.4f}, recall {auto.recall:.4f} "
        f"({auto.true_pairs:,} true pairs of interactions)"
    )
    true_pairs = true_pairs.join(groups.select(*key, "rank"), on=key, nulls_equal=True).select(
        "rank",
        pl.col("unique_id_l").alias("contact_id_l"),
        pl.col("unique_id_r").alias("contact_id_r"),
        match_probability=pl.lit(1.0),
    )

    def accept(ranks: pl.Series) -> tuple[float, float]:
        """Recall and precision after accepting the groups `ranks`, closure of the true pairs."""
        accepted = true_pairs.filter(pl.col("rank").is_in(ranks.implode()))
        s = pairwise_scores(accept_proposals(assignment, accepted, 1.0), truth_ids)
        false = int(groups.filter(pl.col("rank").is_in(ranks.implode()))["false_w"].sum())
        return s.recall, s.correct_pairs / (s.predicted_pairs + false)

    print("\n| oracle accepts | groups | recall | precision |\n| --- | ---: | ---: | ---: |")
    for floor in (0.99, 0.9, 0.8):
        # a calibrated model's pairs at probability ≥ p: the groups whose pairs are that pure
        ranks = groups.filter(pl.col("pair_purity") >= floor)["rank"]
        recall, precision = accept(ranks)
        print(
            f"| every group whose pairs are ≥ {floor:.0%} true | {ranks.len()} | {recall:.4f} | {precision:.4f} |"
        )
    best, k = (auto.recall, auto.precision), 0
    for k in range(1, groups.height + 1):
        recall, precision = accept(groups["rank"].head(k))
        if precision < PRECISION:
            k -= 1
            break
        best = (recall, precision)
    print(
        f"| purest groups first, while precision ≥ {PRECISION} | {k} | **{best[0]:.4f}** | "
        f"{best[1]:.4f} |"
    )
    print("\nGroups ≥ 80% true whose true pairs the model scores below 0.8 on average:")
    under = groups.filter((pl.col("pair_purity") >= 0.8) & (pl.col("model_p") < 0.8))
    with pl.Config(tbl_rows=30, tbl_width_chars=250, tbl_cols=20):
        print(under.sort("true_w", descending=True).drop("rank"))
    print("\nThe groups with most true pairs of interactions left out by the last line:")
    rest = groups.filter(pl.col("rank") >= k).sort("true_w", descending=True).head(12)
    with pl.Config(tbl_rows=12, tbl_width_chars=250, tbl_cols=20):
        print(rest.drop("rank"))


if __name__ == "__main__":
    main()
