"""Review by person, not by pair: pending proposals grouped into connected components.

`proposal_groups` reads the proposals as a graph of contacts and clusters it into connected
components (what Splink's `cluster_pairwise_predictions_at_threshold` computes, here with the
engine's own `connected_components` so no linker is needed). One group is one decision: the admin
who accepts it merges every contact in it; a contact in three proposals shows up once. The review
page's grouping (`dedup.service.review_groups`) and its explanation in words
(`dedup.service.explain_words`) are built on it.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dedup.identity.graph import connected_components


def proposal_groups(proposals: pl.DataFrame, status: str | None = "pending") -> pl.DataFrame:
    """One row per proposal (`proposals`: proposal_id, contact_id_l, contact_id_r, and `status`
    when `status` is given), with `group_id` (the smallest contact id of its connected
    component), `group_size` (contacts in it) and `group_proposals` (proposals in it)."""
    if status is not None and "status" in proposals.columns:
        proposals = proposals.filter(pl.col("status") == status)
    if proposals.height == 0:
        return proposals.with_columns(
            pl.lit(None, pl.String).alias("group_id"),
            pl.lit(None, pl.UInt32).alias("group_size"),
            pl.lit(None, pl.UInt32).alias("group_proposals"),
        )
    ids = pl.concat([proposals.get_column("contact_id_l"), proposals.get_column("contact_id_r")])
    nodes = ids.unique().sort()
    index = pl.DataFrame({"contact": nodes, "node": np.arange(nodes.len(), dtype=np.int64)})
    a = proposals.join(index, left_on="contact_id_l", right_on="contact", how="left")
    b = proposals.join(index, left_on="contact_id_r", right_on="contact", how="left")
    labels = connected_components(
        nodes.len(), a.get_column("node").to_numpy(), b.get_column("node").to_numpy()
    )
    # Labels are the smallest node of each component, and nodes are sorted ids: the label's id
    # is the group's smallest contact id, stable while the group's members are.
    groups = pl.DataFrame({"contact": nodes, "group_id": nodes.gather(labels)})
    out = proposals.join(groups, left_on="contact_id_l", right_on="contact", how="left")
    sizes = groups.group_by("group_id").len("group_size")
    return out.join(sizes, on="group_id", how="left").with_columns(
        pl.len().over("group_id").cast(pl.UInt32).alias("group_proposals")
    )
