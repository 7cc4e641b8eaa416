"""Contact tasks ("follow up by Friday"): decisions in the log, shown on the contact they live on.

A task is written on a contact id; like a note it follows that id through `contact_redirects`
(a merge moves it to the survivor, an unmerge brings it back with its side). Built the same way
by the nightly run (published `contact_tasks`) and by `contacts task list` straight from the log,
so a task is visible the moment it is added.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import polars as pl

from dedup.decisions import TASK_ADD, TASK_DONE

TASKS_SCHEMA: dict[str, pl.DataType] = {
    "task_id": pl.String(),
    "contact_id": pl.String(),
    "written_on": pl.String(),
    "title": pl.String(),
    "assignee": pl.String(),
    "due_at": pl.Datetime("us", "UTC"),
    "created_at": pl.Datetime("us", "UTC"),
    "created_by": pl.String(),
    "done_at": pl.Datetime("us", "UTC"),
    "done_by": pl.String(),
    "status": pl.String(),  # open, overdue, done
}


def parse_due(text: str, now: datetime) -> datetime:
    """`3d`, `12h`, `2w` from now, or an ISO date/time (UTC if bare). ValueError otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*([hdw])\s*", text)
    if match:
        n, unit = int(match.group(1)), match.group(2)
        return (
            now + {"h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}[unit]
        )
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"due must be like 3d, 12h, 2w or an ISO date, not {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=now.tzinfo)


def task_payload(assignee: str | None, due_at: datetime | None) -> str:
    return json.dumps({"assignee": assignee, "due_at": due_at.isoformat() if due_at else None})


def contact_tasks(decisions: pl.DataFrame, redirects: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Every task with its live contact and status (`TASKS_SCHEMA`)."""
    added = decisions.filter(pl.col("kind") == TASK_ADD)
    if added.height == 0:
        return pl.DataFrame(schema=TASKS_SCHEMA)
    payload = [json.loads(s) if s else {} for s in added.get_column("subject").to_list()]
    done = (
        decisions.filter(pl.col("kind") == TASK_DONE)
        .sort("decided_at")
        .unique("subject", keep="first")
        .select(
            pl.col("subject").alias("task_id"),
            pl.col("decided_at").alias("done_at"),
            pl.col("decided_by").alias("done_by"),
        )
    )
    due = pl.Series(
        "due_at",
        [datetime.fromisoformat(p["due_at"]) if p.get("due_at") else None for p in payload],
        dtype=pl.Datetime("us", "UTC"),
    )
    return (
        added.select(
            pl.col("decision_id").alias("task_id"),
            pl.col("contact_id_l").alias("written_on"),
            pl.col("note").alias("title"),
            pl.Series("assignee", [p.get("assignee") for p in payload], dtype=pl.String),
            due,
            pl.col("decided_at").alias("created_at"),
            pl.col("decided_by").alias("created_by"),
        )
        .join(redirects, left_on="written_on", right_on="from_contact_id", how="left")
        .with_columns(pl.coalesce("to_contact_id", "written_on").alias("contact_id"))
        .join(done, on="task_id", how="left")
        .with_columns(
            pl.when(pl.col("done_at").is_not_null())
            .then(pl.lit("done"))
            .when(pl.col("due_at") < pl.lit(now).cast(pl.Datetime("us", "UTC")))
            .then(pl.lit("overdue"))
            .otherwise(pl.lit("open"))
            .alias("status")
        )
        .select(list(TASKS_SCHEMA))
        .cast(TASKS_SCHEMA)  # type: ignore[arg-type]
        .sort("contact_id", "created_at", "task_id")
    )
