"""The identity index (issue 25): auto-merge over the affected clusters only equals the full
auto-merge, and everything it cannot prove equal runs the full path and says why."""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pytest

from dedup.config import EngineConfig, HubLimits
from dedup.generations import STATE_FILE
from dedup.identity.automerge import EVIDENCE_SCHEMA, HELD_SCHEMA, auto_merge
from dedup.identity.identity_index import merge

COLUMNS = ["interaction_id", "email_norm", "verified_user_id", "session_id", "phone_e164"]
NO_HELD = pl.DataFrame(schema=HELD_SCHEMA)
LAST: dict[Path, pl.DataFrame] = {}  # the clusters of the last `night` per index


def frame(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=dict.fromkeys(COLUMNS, pl.String), orient="row")


def groups(clusters: pl.DataFrame) -> set[frozenset[str]]:
    g = clusters.group_by("cluster").agg(pl.col("interaction_id"))
    return {frozenset(ids) for ids in g.get_column("interaction_id").to_list()}


def night(
    rows: pl.DataFrame,
    root: Path,
    config: EngineConfig | None = None,
    evidence: pl.DataFrame | None = None,
    held: pl.DataFrame = NO_HELD,
    full: str | None = None,
    max_share: float = 1.0,
) -> str:
    """One night through the index, checked against the full auto-merge; its path. Any share
    of rows may be merged again unless `max_share` says otherwise."""
    config = config or EngineConfig()
    result, plan = merge(rows, config, evidence, held, root, full, max_share)
    want = auto_merge(rows, config.hub_limits, evidence, held)
    assert result.clusters.equals(want.clusters), plan.describe()
    assert result.ambiguous_keys.equals(want.ambiguous_keys), plan.describe()
    LAST[root] = result.clusters
    return plan.describe()


HISTORY = frame(
    ("a1", "ann@x", None, "s1", None),
    ("a2", "ann@x", None, None, "+1001"),
    ("b1", "bob@x", None, "s2", None),
    ("b2", None, None, "s2", "+1002"),
    ("c1", "cat@x", None, None, None),
    ("k1", None, None, None, None),
)


def test_a_new_row_joins_two_old_clusters(tmp_path: Path) -> None:
    assert night(HISTORY, tmp_path) == "full: no identity index kept yet"
    tonight = pl.concat([HISTORY, frame(("n1", "ann@x", None, "s2", None))])
    path = night(tonight, tmp_path)
    assert path.startswith("incremental: "), path
    assert "2 affected clusters" in path  # ann's and bob's, not cat's or the keyless one
    assert frozenset({"a1", "a2", "b1", "b2", "n1"}) in groups(LAST[tmp_path])


def test_a_key_becoming_ambiguous_splits_the_cluster_it_joined(tmp_path: Path) -> None:
    # Last night one email joined two phones' rows; tonight two more phones make it a hub
    # (more than `email_max_phones` = 3), so it joins nobody and the cluster splits.
    history = frame(
        ("p1", "desk@x", None, None, "+2001"),
        ("p2", "desk@x", None, None, "+2002"),
        ("q1", None, None, None, "+2001"),
        ("q2", None, None, None, "+2002"),
        ("z1", "zed@x", None, None, None),
    )
    night(history, tmp_path)
    assert frozenset({"p1", "p2", "q1", "q2"}) in groups(LAST[tmp_path])
    tonight = pl.concat(
        [
            history,
            frame(("p3", "desk@x", None, None, "+2003"), ("p4", "desk@x", None, None, "+2004")),
        ]
    )
    path = night(tonight, tmp_path)
    assert path.startswith("incremental: "), path
    assert frozenset({"p1", "q1"}) in groups(LAST[tmp_path])
    assert frozenset({"p2", "q2"}) in groups(LAST[tmp_path])
    # desk@x's cluster and the new rows merged again; zed's carried over.
    assert path == "incremental: 6 rows of 1 affected clusters merged again, 1 rows carried over"
    # The row that made it a hub gone again: the email links everyone once more.
    path = night(history, tmp_path)
    assert path.startswith("incremental: "), path


def test_a_phone_becoming_ambiguous_splits_by_people(tmp_path: Path) -> None:
    # A phone shared by two people (two emails' components) is ambiguous in phase 2.
    history = frame(
        ("m1", "mia@x", None, None, "+3001"),
        ("m2", None, None, None, "+3001"),
        ("o1", "otto@x", None, None, None),
    )
    night(history, tmp_path)
    tonight = pl.concat([history, frame(("o2", "otto@x", None, None, "+3001"))])
    path = night(tonight, tmp_path)
    assert path.startswith("incremental: "), path
    assert frozenset({"m1"}) in groups(LAST[tmp_path])
    assert frozenset({"o1", "o2"}) in groups(LAST[tmp_path])


def test_fallbacks_say_why(tmp_path: Path) -> None:
    night(HISTORY, tmp_path)
    assert night(HISTORY, tmp_path, full="--full requested") == "full: --full requested"
    caps = EngineConfig(hub_limits=HubLimits(email_max_phones=1))
    path = night(HISTORY, tmp_path, config=caps)
    assert path == "full: hub caps, auto-merge or normalization code or settings changed"
    secret = EngineConfig(hub_limits=HubLimits(email_max_phones=1), identity_secrets=("s",))
    assert night(HISTORY, tmp_path, config=secret).startswith("full: hub caps")
    assert night(HISTORY, tmp_path, config=secret).startswith("incremental: ")
    # Most rows changed: one full pass.
    moved = HISTORY.with_columns(pl.col("session_id") + "-moved")
    assert night(moved, tmp_path, config=secret, max_share=0.5) == "full: 4 of 6 rows affected"
    # A damaged index.
    (rows,) = tmp_path.glob("rows-*.parquet")
    rows.write_bytes(b"not parquet")
    assert night(HISTORY, tmp_path, config=secret) == "full: identity index unreadable"
    (tmp_path / STATE_FILE).unlink()
    assert night(HISTORY, tmp_path, config=secret) == "full: no identity index kept yet"


@pytest.mark.parametrize("seed", range(6))
def test_random_nights_equal_the_full_auto_merge(tmp_path: Path, seed: int) -> None:
    """Rows added, re-keyed and removed, CRM evidence and held keys changing, over small key
    pools so hubs appear and vanish: every night equals the full auto-merge."""
    rng = random.Random(seed)

    def pick(prefix: str, n: int, share: float) -> str | None:
        return f"{prefix}{rng.randrange(n)}" if rng.random() < share else None

    def row(i: int) -> tuple:
        return (
            f"r{i:04d}",
            pick("e", 40, 0.5),
            pick("u", 15, 0.15),
            pick("s", 40, 0.4),
            pick("+1", 30, 0.4),
        )

    rows = {i: row(i) for i in range(150)}
    paths = []
    for _ in range(10):
        for i in rng.sample(sorted(rows), 8):
            del rows[i]
        for i in rng.sample(sorted(rows), 5):
            rows[i] = row(i)
        for _ in range(8):
            i = rng.randrange(10_000)
            rows[i] = row(i)
        evidence = pl.DataFrame(
            [
                (f"crm:{j}", pick("e", 40, 0.8), pick("+1", 30, 0.8), pick("n", 5, 0.7))
                for j in range(rng.randrange(6))
            ],
            schema=EVIDENCE_SCHEMA,
            orient="row",
        )
        held = pl.DataFrame(
            [("email", f"e{rng.randrange(40)}"), ("phone", f"+1{rng.randrange(30)}")][
                : rng.randrange(3)
            ],
            schema=HELD_SCHEMA,
            orient="row",
        )
        paths.append(night(frame(*rows.values()), tmp_path, evidence=evidence, held=held))
    assert paths[0] == "full: no identity index kept yet"
    assert all(p.startswith("incremental: ") for p in paths[1:]), paths


def test_a_write_killed_before_state_json_leaves_last_nights_index(tmp_path: Path) -> None:
    """A night killed while writing its generation leaves files `state.json` does not name: the
    next night reads the generation it names, and the strays go with its own write."""
    night(HISTORY, tmp_path)
    (tmp_path / "rows-0123456789abcdef.parquet").write_bytes(b"PAR1 half a file")
    (tmp_path / f".{STATE_FILE}.tmp").write_text("{")
    tonight = pl.concat([HISTORY, frame(("n1", "ann@x", None, "s2", None))])
    assert night(tonight, tmp_path).startswith("incremental: ")
    assert not (tmp_path / "rows-0123456789abcdef.parquet").exists()
    assert len(list(tmp_path.glob("*.parquet"))) == 3
