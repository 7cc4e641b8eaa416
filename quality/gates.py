"""Publish gates: tonight's build compared with the last published run.

A build that passes every invariant can still be wrong in bulk: an upstream export that lost half
its rows, a key that suddenly merges thousands of people, a format change that quarantines a whole
day. These gates stop such a build from replacing the good published file. (A cluster larger than
the hub limit is the `no_contact_over_hub_limit` check in quality.snapshot_checks.)

The baseline is the previous row of the build's own `pipeline_runs` (runs are only recorded when
published, so it is the last published run). The first run, or a baseline smaller than
`min_baseline_contacts`, has nothing meaningful to compare with and passes the ratio gates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import duckdb
import polars as pl


@dataclass(frozen=True)
class GateLimits:
    """How far one night may move the published file. Ratios are fractions (0.5 = 50%).

    Args:
        max_contact_change: |contacts − previous contacts| / previous contacts.
        max_merge_share: contact ids merged away tonight / previous contacts.
        max_quarantine_share: records quarantined since the last published run / all records
            that arrived since then.
        min_baseline_contacts: below this many previously published contacts the ratio gates
            are not applied (a 10-contact workspace doubling is not an incident).
    """

    max_contact_change: float = 0.5
    max_merge_share: float = 0.05
    max_quarantine_share: float = 0.05
    min_baseline_contacts: int = 1000


@dataclass(frozen=True)
class GateMetrics:
    previous_contacts: int | None
    contacts: int
    merged_ids: int
    new_records: int
    new_quarantined: int

    def applies(self, limits: GateLimits) -> bool:
        return (
            self.previous_contacts is not None
            and self.previous_contacts >= limits.min_baseline_contacts
            and self.previous_contacts > 0
        )

    @property
    def contact_change(self) -> float | None:
        if not self.previous_contacts:
            return None
        return abs(self.contacts - self.previous_contacts) / self.previous_contacts

    @property
    def merge_share(self) -> float | None:
        if not self.previous_contacts:
            return None
        return self.merged_ids / self.previous_contacts

    @property
    def quarantine_share(self) -> float | None:
        if self.previous_contacts is None or self.new_records <= 0:
            return None
        return self.new_quarantined / self.new_records

    def frame(self, limits: GateLimits) -> pl.DataFrame:
        """One row for the GX `publish_gates` suite; ratios are null where the gate does not apply."""
        applies = self.applies(limits)
        return pl.DataFrame(
            [
                {
                    **asdict(self),
                    "contact_change": self.contact_change if applies else None,
                    "merge_share": self.merge_share if applies else None,
                    "quarantine_share": self.quarantine_share if applies else None,
                }
            ],
            schema_overrides={
                "previous_contacts": pl.Int64,
                "contact_change": pl.Float64,
                "merge_share": pl.Float64,
                "quarantine_share": pl.Float64,
            },
        )


GATE_METRICS_SQL = """
WITH runs AS (
  SELECT *, row_number() OVER (ORDER BY run_number DESC) AS back FROM pipeline_runs
),
now AS (SELECT * FROM runs WHERE back = 1),
prev AS (SELECT * FROM runs WHERE back = 2)
SELECT (SELECT contacts FROM prev) AS previous_contacts,
       (SELECT contacts FROM now) AS contacts,
       (SELECT coalesce(sum(len(merged_ids)), 0) FROM merges
         WHERE decided_at = (SELECT finished_at FROM now) AND kind <> 'unmerge') AS merged_ids,
       (SELECT interactions + quarantined FROM now)
         - coalesce((SELECT interactions + quarantined FROM prev), 0) AS new_records,
       (SELECT quarantined FROM now) - coalesce((SELECT quarantined FROM prev), 0)
         AS new_quarantined
"""


def gate_metrics(con: duckdb.DuckDBPyConnection) -> GateMetrics:
    """Tonight's figures and the last published run's, from a built snapshot."""
    row = con.execute(GATE_METRICS_SQL).fetchone()
    assert row is not None
    prev, contacts, merged, new_records, new_quarantined = row
    return GateMetrics(
        previous_contacts=prev,
        contacts=int(contacts or 0),
        merged_ids=int(merged or 0),
        new_records=int(new_records or 0),
        new_quarantined=int(new_quarantined or 0),
    )


def gate_failures(m: GateMetrics, limits: GateLimits) -> list[str]:
    """Readable reasons, one per tripped gate (empty = publish)."""
    if not m.applies(limits):
        return []
    out: list[str] = []
    change, merges, quarantine = m.contact_change, m.merge_share, m.quarantine_share
    if change is not None and change > limits.max_contact_change:
        out.append(
            f"contact count moved {change:.0%} ({m.previous_contacts:,} → {m.contacts:,}) versus "
            f"the last published run; the limit is {limits.max_contact_change:.0%}"
        )
    if merges is not None and merges > limits.max_merge_share:
        out.append(
            f"{m.merged_ids:,} contact ids merged away tonight, {merges:.1%} of the "
            f"{m.previous_contacts:,} published; the limit is {limits.max_merge_share:.1%}"
        )
    if quarantine is not None and quarantine > limits.max_quarantine_share:
        out.append(
            f"{m.new_quarantined:,} of {m.new_records:,} new records quarantined ({quarantine:.1%}); "
            f"the limit is {limits.max_quarantine_share:.1%}"
        )
    return out
