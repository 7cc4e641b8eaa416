"""Tonight's clusters → stable contact ids: admins' constraints, id assignment, merge history.

The order matters and lives here: constraints from the whole decision log bend the auto-merge
clusters (`constraints`), the bent clusters inherit last night's ids (`stable_ids`), and the
merges that happened are recorded with what each side held (`merge_history`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from dedup.identity.constraints import (
    ConstrainedClusters,
    Constraints,
    apply_constraints,
    constraints_from_decisions,
)
from dedup.identity.merge_history import MergeHistory, decision_outcomes, update_history
from dedup.identity.stable_ids import IdAssignment, PreviousState, assign_ids


@dataclass(frozen=True)
class PreviousIds:
    """What the last published file says about ids: live/redirected ids, merges, merge sides."""

    state: PreviousState
    merges: pl.DataFrame
    sides: pl.DataFrame


@dataclass
class Resolution:
    constraints: Constraints
    constrained: ConstrainedClusters
    ids: IdAssignment
    history: MergeHistory
    outcomes: pl.DataFrame  # one row per decision: applied or not, and why

    @property
    def assignment(self) -> pl.DataFrame:
        """interaction_id → contact_id."""
        return self.constrained.clusters.join(self.ids.contact_of_cluster, on="cluster").select(
            "interaction_id", "contact_id"
        )

    @property
    def merged_tonight(self) -> pl.DataFrame:
        merges = self.history.merges
        return merges.filter(pl.col("merge_id").is_in(self.history.new_merge_ids))

    def merged_contact_ids(self) -> list[str]:
        """Every id on either side of tonight's merges (their profiles are kept for people)."""
        return (
            self.merged_tonight.select(pl.concat_list("survivor_id", "merged_ids").explode())
            .to_series()
            .unique()
            .to_list()
        )


def resolve_ids(
    clusters: pl.DataFrame,
    ambiguous: pl.DataFrame,
    load_keys: Callable[[], pl.DataFrame],
    decisions: pl.DataFrame,
    previous: PreviousIds,
    held: pl.Series,
    decided_at: datetime,
    assign: Callable[..., IdAssignment] | None = None,
) -> Resolution:
    """Contact ids for tonight's auto-merge clusters.

    Args:
        clusters, ambiguous: auto-merge's clusters and ambiguous keys.
        load_keys: interaction_id and the key columns of every interaction; read only when
            there are decisions (a separation splits clusters along these keys).
        decisions: the decision log.
        previous: the last published file's ids (deleted contacts restored tonight included).
        held: ids of deleted, still restorable contacts (never given to anyone else).
        decided_at: this run's time.
        assign: `assign_ids`'s stand-in (same arguments), for the Spark engine's
            (`dedup.spark.night`): the constraints and the history stay here either way.
    """
    constraints = constraints_from_decisions(
        decisions, previous.state, previous.merges, previous.sides
    )
    keys = load_keys() if decisions.height else pl.DataFrame()
    constrained = apply_constraints(clusters, keys, ambiguous, constraints)
    ids = (assign or assign_ids)(
        constrained.clusters, previous.state, decided_at, constrained.forced_ids, held=held
    )
    history = update_history(
        previous.merges, previous.sides, previous.state, ids, constraints, constrained, decided_at
    )
    return Resolution(
        constraints=constraints,
        constrained=constrained,
        ids=ids,
        history=history,
        outcomes=decision_outcomes(decisions, constraints, constrained),
    )
