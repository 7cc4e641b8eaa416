"""Contact ids carried over (issue 25): `resolve_carried` over the clusters that changed gives
what `resolve_ids` gives over every cluster, night after night, with merges, unmerges and
rejections decided in between, contacts deleted and restored, rows removed and re-delivered, and
keys turning ambiguous; and everything it cannot prove equal assigns every cluster and says why.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from dedup.admin.deletion import with_restored
from dedup.config import HubLimits
from dedup.decisions import (
    ACCEPT_PROPOSAL,
    DECISIONS_SCHEMA,
    MANUAL_MERGE,
    REJECT_PROPOSAL,
    UNMERGE,
)
from dedup.generations import STATE_FILE
from dedup.identity.automerge import HELD_SCHEMA, KEY_COLUMNS, auto_merge
from dedup.identity.carried_ids import KeptIds, cluster_stats, resolve_carried
from dedup.identity.constraints import MERGE_SIDES_SCHEMA
from dedup.identity.merge_history import MERGES_SCHEMA
from dedup.identity.resolution import PreviousIds, Resolution, resolve_ids
from dedup.identity.stable_ids import PreviousState

COLUMNS = ["interaction_id", *KEY_COLUMNS.values()]
DAY1 = datetime(2026, 11, 1, 9, tzinfo=UTC)
# Low caps, so a few rows make a key ambiguous and split the cluster it joined.
LIMITS = HubLimits(email_max_phones=2, session_max_emails=1, session_max_phones=1)
NO_HELD = pl.DataFrame(schema=HELD_SCHEMA)


def same(full: Resolution, carried: Resolution) -> None:
    """Every output the step writes, equal (row order included)."""
    pairs = {
        "assignment": (full.assignment, carried.assignment),
        "contact_of_cluster": (full.ids.contact_of_cluster, carried.ids.contact_of_cluster),
        "redirects": (full.ids.redirects, carried.ids.redirects),
        "auto_merges": (full.ids.auto_merges, carried.ids.auto_merges),
        "merges": (full.history.merges, carried.history.merges),
        "sides": (full.history.sides, carried.history.sides),
        "outcomes": (full.outcomes, carried.outcomes),
        "bridging": (full.constrained.bridging_keys, carried.constrained.bridging_keys),
        "separated": (
            full.constraints.separated_pairs.sort(pl.all()),
            carried.constraints.separated_pairs.sort(pl.all()),
        ),
        "unmerges": (full.constraints.unmerges, carried.constraints.unmerges),
    }
    for name, (a, b) in pairs.items():
        assert a.equals(b), name
    assert full.history.new_merge_ids == carried.history.new_merge_ids
    assert full.merged_tonight.equals(carried.merged_tonight)


class Workspace:
    """The published file's ids as frames, and the kept contacts, from night to night."""

    def __init__(self, root: Path) -> None:
        self.kept = KeptIds(root / "ids")
        self.previous = PreviousIds(
            PreviousState.empty(),
            pl.DataFrame(schema=MERGES_SCHEMA),
            pl.DataFrame(schema=MERGE_SIDES_SCHEMA),
        )
        self.run = None  # the published file's last run id
        self.decisions: list[dict] = []
        self.nights = 0

    def night(
        self,
        rows: pl.DataFrame,
        held: list[str] = (),
        restored: pl.DataFrame | None = None,
        max_share: float = 1.0,
        publish: bool = True,
    ) -> str:
        """One night on both paths, checked equal; published unless `publish` is False."""
        self.nights += 1
        now = DAY1 + timedelta(days=self.nights)
        merged = auto_merge(rows.select(COLUMNS), LIMITS, None, NO_HELD)
        decisions = pl.DataFrame(self.decisions, schema=DECISIONS_SCHEMA)
        back = restored if restored is not None else pl.DataFrame(schema=RESTORED_SCHEMA)
        previous = PreviousIds(
            with_restored(self.previous.state, back), self.previous.merges, self.previous.sides
        )
        held_ids = pl.Series("contact_id", list(held), dtype=pl.String)
        keys = rows.select(COLUMNS)

        def load_keys(ids: pl.Series | None) -> pl.DataFrame:
            return (
                keys if ids is None else keys.filter(pl.col("interaction_id").is_in(ids.implode()))
            )

        args = (merged.clusters, merged.ambiguous_keys)
        full = resolve_ids(*args, lambda: keys, decisions, previous, held_ids, now)
        carried = resolve_carried(
            *args,
            load_keys,
            decisions,
            previous,
            held_ids,
            now,
            self.kept.read(self.run),
            max_share,
        )
        same(full, carried.resolution)
        want = cluster_stats(full.constrained.clusters).sort("cluster")
        assert carried.stats.sort("cluster").equals(want)
        run = f"run{self.nights}"
        self.kept.write(run, carried.stats, carried.resolution.ids.contact_of_cluster)
        if publish:
            self.publish(full, rows, run)
        return carried.plan.describe()

    def publish(self, done: Resolution, rows: pl.DataFrame, run: str) -> None:
        """What the published file says after the night (`dedup.snapshot.assemble`)."""
        assignment = done.assignment
        seen = rows.select("interaction_id", "occurred_at").join(assignment, on="interaction_id")
        contacts = seen.group_by("contact_id").agg(pl.col("occurred_at").min().alias("first_seen"))
        # A deleted contact is out of `contacts` until restored (`with_restored` brings it back).
        state = PreviousState(
            assignment=assignment,
            contacts=contacts.sort("contact_id"),
            redirects=done.ids.redirects,
        )
        sides = done.history.sides.join(
            pl.concat([assignment.select("interaction_id"), self.trash.select("interaction_id")]),
            on="interaction_id",
            how="semi",
        )
        self.previous = PreviousIds(state, done.history.merges, sides)
        self.run = run

    trash = pl.DataFrame(schema={"interaction_id": pl.String})

    def contacts(self) -> list[str]:
        return self.previous.state.contacts.get_column("contact_id").sort().to_list()

    def decide(self, kind: str, left: str, right: str, merge_id: str | None = None) -> None:
        n = len(self.decisions)
        self.decisions.append(
            {
                "decision_id": f"d{n:03d}",
                "kind": kind,
                "contact_id_l": left,
                "contact_id_r": right,
                "survivor_id": left if kind in (MANUAL_MERGE, ACCEPT_PROPOSAL) else None,
                "decided_by": "ana",
                "decided_at": DAY1 + timedelta(days=self.nights, hours=n % 20),
                "merge_id": merge_id,
            }
        )


RESTORED_SCHEMA = {
    "interaction_id": pl.String,
    "contact_id": pl.String,
    "occurred_at": pl.Datetime("us", "UTC"),
}


def _row(rng: random.Random, i: str, day: int) -> dict:
    def key(prefix: str, n: int, share: float) -> str | None:
        return f"{prefix}{rng.randrange(n)}" if rng.random() < share else None

    return {
        "interaction_id": i,
        "email_norm": key("e", 60, 0.6),
        "verified_user_id": key("u", 40, 0.1),
        "session_id": key("s", 90, 0.3),
        "phone_e164": key("+1", 50, 0.4),
        "occurred_at": DAY1 + timedelta(days=day, minutes=rng.randrange(1000)),
    }


@pytest.mark.parametrize("seed", range(6))
def test_random_nights_carry_what_the_full_assignment_gives(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    ws = Workspace(tmp_path)
    rows = pl.DataFrame([_row(rng, f"i{n:04d}", 0) for n in range(300)])
    assert ws.night(rows) == "full: no contact ids kept yet"
    paths = []
    deleted: tuple[str, pl.DataFrame] | None = None
    for day in range(1, 9):
        # New rows (some joining known people by their keys), a re-delivered row with other
        # keys, a removed row.
        new = [_row(rng, f"n{day}_{n:03d}", day) for n in range(rng.randrange(3, 12))]
        rows = pl.concat([rows, pl.DataFrame(new)])
        ids = rows.get_column("interaction_id").to_list()
        moved = rng.choice(ids)
        rows = pl.concat(
            [rows.filter(pl.col("interaction_id") != moved), pl.DataFrame([_row(rng, moved, day)])]
        )
        rows = rows.filter(pl.col("interaction_id") != rng.choice(ids))
        if day == 4:  # one email typed with many phones: ambiguous, its cluster splits
            email = rows.drop_nulls("email_norm").get_column("email_norm")[0]
            hub = [
                {**_row(rng, f"h{n}", day), "email_norm": email, "phone_e164": f"+9{n}"}
                for n in range(4)
            ]
            rows = pl.concat([rows, pl.DataFrame(hub)])
        _decide(rng, ws)
        held: list[str] = []
        restored = None
        if day == 3:  # a contact deleted: its rows leave the engine, its id is held
            victim = rng.choice(ws.contacts())
            members = ws.previous.state.assignment.filter(pl.col("contact_id") == victim)
            gone = rows.join(members, on="interaction_id", how="semi")
            deleted = (victim, gone)
            rows = rows.join(members, on="interaction_id", how="anti")
            ws.trash = gone.select("interaction_id")
            held = [victim]
        elif day == 4 and deleted is not None:  # still deleted
            held = [deleted[0]]
        elif day == 5 and deleted is not None:  # restored: its rows come back with its id
            victim, gone = deleted
            rows = pl.concat([rows, gone])
            restored = gone.select(
                "interaction_id", pl.lit(victim).alias("contact_id"), "occurred_at"
            )
            ws.trash = ws.trash.clear()
        paths.append(ws.night(rows, held, restored))
    carried = [p for p in paths if p.startswith("incremental")]
    assert len(carried) == len(paths), paths
    assert all(" 0 contacts carried" not in p for p in carried), paths


def _decide(rng: random.Random, ws: Workspace) -> None:
    """A few of tonight's decisions on the published contacts and merges."""
    contacts = ws.contacts()
    for _ in range(rng.randrange(0, 3)):
        left, right = rng.sample(contacts, 2)
        kind = rng.choice([MANUAL_MERGE, ACCEPT_PROPOSAL, REJECT_PROPOSAL])
        ws.decide(kind, left, right)
    reversible = ws.previous.merges.filter(
        pl.col("undone_at").is_null() & pl.col("reversible_until").is_not_null()
    )
    if reversible.height and rng.random() < 0.5:
        row = reversible.row(rng.randrange(reversible.height), named=True)
        ws.decide(UNMERGE, row["survivor_id"], row["merged_ids"][0], row["merge_id"])


def test_kept_ids_are_used_only_for_the_published_run_and_this_code(tmp_path: Path) -> None:
    """A night that did not publish, another release, a damaged file or too much changed:
    every cluster assigned, and the plan says why."""
    rng = random.Random(7)
    ws = Workspace(tmp_path)
    rows = pl.DataFrame([_row(rng, f"i{n:04d}", 0) for n in range(200)])
    ws.night(rows)
    # Killed after contact_ids: the kept rows name a run the published file does not.
    assert ws.night(rows, publish=False).startswith("incremental: 0 interactions")
    assert ws.night(rows) == (
        "full: the kept contact ids are not the published file's (a night that did not publish)"
    )
    quiet = ws.night(rows)
    assert quiet.startswith("incremental: 0 interactions of 0 clusters assigned again"), quiet
    state = json.loads((ws.kept.root / STATE_FILE).read_text())
    (ws.kept.root / STATE_FILE).write_text(
        json.dumps({**state, "token": state["token"].split(" ")[0] + " other"})
    )
    assert ws.night(rows) == "full: contact id code changed"
    for kept in ws.kept.root.glob("clusters-*.parquet"):
        kept.write_bytes(b"not parquet")
    assert ws.night(rows) == "full: kept contact ids unreadable"
    ws.night(rows)
    more = pl.concat([rows, pl.DataFrame([_row(rng, f"x{n}", 1) for n in range(400)])])
    assert ws.night(more, max_share=0.5).startswith("full: ")
    assert ws.night(more, max_share=0.5).startswith("incremental: 0 interactions")


def test_a_merge_decision_moves_only_the_clusters_it_names(tmp_path: Path) -> None:
    """Two contacts merged by an admin: their clusters are assigned again, every night after
    too (the log is applied again each night), and the other contacts carried over."""
    rows = pl.DataFrame(
        [
            {
                "interaction_id": f"i{n}",
                "email_norm": f"p{n // 2}@x",
                "verified_user_id": None,
                "session_id": None,
                "phone_e164": None,
                "occurred_at": DAY1,
            }
            for n in range(20)
        ]
    ).cast(dict.fromkeys(KEY_COLUMNS.values(), pl.String))
    ws = Workspace(tmp_path)
    ws.night(rows)
    left, right = ws.contacts()[:2]
    ws.decide(MANUAL_MERGE, left, right)
    assert ws.night(rows) == (
        "incremental: 4 interactions of 2 clusters assigned again, 8 contacts carried over "
        "(16 interactions)"
    )
    assert ws.previous.state.contacts.height == 9
    assert ws.night(rows).startswith("incremental: 4 interactions of 2 clusters")
