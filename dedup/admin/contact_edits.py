"""Admins' edits of contacts (tags, audience, CRM re-sync) laid over the derived profile.

Tags and audience are derived from interactions every night; an admin's edit is a decision
(`dedup.decisions.EDIT_KINDS`) that the run lays on top, following the contact through
`contact_redirects`: an edit made on a contact that is later merged shows on the survivor, and
comes back with its side when that merge is undone. For each (contact, tag) the latest decision
wins; the latest audience decision wins. Applied the same way every run, so an edit is never lost.
"""

from __future__ import annotations

import json

import polars as pl

from dedup.decisions import CRM_RESYNC, SET_ATTRIBUTE, SET_AUDIENCE, TAG_ADD, TAG_REMOVE
from dedup.schema import MAX_ATTRIBUTE_KEYS, MAX_TAGS, attribute_problem


def _live(decisions: pl.DataFrame, kinds: tuple[str, ...], redirects: pl.DataFrame) -> pl.DataFrame:
    return (
        decisions.filter(pl.col("kind").is_in(kinds) & pl.col("contact_id_l").is_not_null())
        .join(redirects, left_on="contact_id_l", right_on="from_contact_id", how="left")
        .with_columns(pl.coalesce("to_contact_id", "contact_id_l").alias("contact_id"))
        .sort("decided_at", "decision_id")
    )


def apply_contact_edits(
    contacts: pl.DataFrame,
    decisions: pl.DataFrame,
    redirects: pl.DataFrame,
    new_decision_ids: pl.Series | None = None,
) -> pl.DataFrame:
    """`contacts` with admins' tag and audience edits applied, and forced CRM re-syncs.

    Args:
        contacts: the derived contacts (`contact_id`, `tags`, `audience`, `crm_sync_status`).
        decisions: the decision log.
        redirects: tonight's `contact_redirects`.
        new_decision_ids: decisions this run applies for the first time; a CRM re-sync marks
            the contact `pending` on that run only (the CRM step takes it from there).
    """
    tags = _live(decisions, (TAG_ADD, TAG_REMOVE), redirects)
    out = contacts
    if tags.height:
        latest = tags.unique(["contact_id", "subject"], keep="last")
        adds = (
            latest.filter(pl.col("kind") == TAG_ADD)
            .group_by("contact_id")
            .agg(pl.col("subject").alias("_add"))
        )
        removes = (
            latest.filter(pl.col("kind") == TAG_REMOVE)
            .group_by("contact_id")
            .agg(pl.col("subject").alias("_remove"))
        )
        out = (
            out.join(adds, on="contact_id", how="left")
            .join(removes, on="contact_id", how="left")
            .with_columns(
                pl.concat_list(
                    pl.col("tags"), pl.col("_add").fill_null(pl.lit([], pl.List(pl.String)))
                )
                .list.set_difference(pl.col("_remove").fill_null(pl.lit([], pl.List(pl.String))))
                .list.unique()
                .list.sort()
                .list.head(MAX_TAGS)
                .alias("tags")
            )
            .drop("_add", "_remove")
        )
    audience = _live(decisions, (SET_AUDIENCE,), redirects).unique("contact_id", keep="last")
    if audience.height:
        out = (
            out.join(
                audience.select("contact_id", pl.col("subject").alias("_audience")),
                on="contact_id",
                how="left",
            )
            .with_columns(pl.coalesce("_audience", "audience").alias("audience"))
            .drop("_audience")
        )
    attributes = _live(decisions, (SET_ATTRIBUTE,), redirects).unique(
        ["contact_id", "subject"], keep="last"
    )
    if attributes.height:
        out = _set_attributes(out, attributes)
    resync = _live(decisions, (CRM_RESYNC,), redirects)
    if new_decision_ids is not None:
        resync = resync.filter(pl.col("decision_id").is_in(new_decision_ids.implode()))
    if resync.height:
        out = out.with_columns(
            pl.when(pl.col("contact_id").is_in(resync.get_column("contact_id").implode()))
            .then(pl.lit("pending"))
            .otherwise(pl.col("crm_sync_status"))
            .alias("crm_sync_status")
        )
    return out.select(contacts.columns)


_OVER_LIMITS = object()


def _within_limits(key: str, value: str) -> object:
    """The edit's parsed value, or _OVER_LIMITS: a value over the attribute limits that a log
    written before they were enforced may hold is never applied (it would break every read)."""
    try:
        parsed = json.loads(value)
    except (RecursionError, ValueError):
        return _OVER_LIMITS
    return _OVER_LIMITS if attribute_problem(key, parsed) else parsed


def _set_attributes(contacts: pl.DataFrame, edits: pl.DataFrame) -> pl.DataFrame:
    """Merge admins' attribute values into the contacts' JSON (edits are few; rows are not)."""
    per_contact: dict[str, dict] = {}
    for contact_id, key, value in edits.select("contact_id", "subject", "note").iter_rows():
        parsed = None if value is None else _within_limits(key, value)
        if value is None or parsed is not _OVER_LIMITS:
            per_contact.setdefault(contact_id, {})[key] = parsed
    if not per_contact:
        return contacts
    touched = contacts.filter(pl.col("contact_id").is_in(list(per_contact)))
    merged = []
    for contact_id, attributes in touched.select("contact_id", "attributes").iter_rows():
        current = json.loads(attributes) if isinstance(attributes, str) and attributes else {}
        for key, value in per_contact[contact_id].items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        # Admins' keys win the 50-key cap over keys the interactions set.
        ours = list(per_contact[contact_id])
        keep = ours + [k for k in current if k not in per_contact[contact_id]]
        merged.append(
            json.dumps({k: current[k] for k in keep[:MAX_ATTRIBUTE_KEYS] if k in current})
        )
    patch = pl.DataFrame(
        {"contact_id": touched.get_column("contact_id"), "_attributes": merged},
        schema={"contact_id": pl.String, "_attributes": pl.String},
    )
    return (
        contacts.join(patch, on="contact_id", how="left")
        .with_columns(pl.coalesce("_attributes", "attributes").alias("attributes"))
        .drop("_attributes")
    )
