"""The `contacts` table: one row per live contact, built in DuckDB SQL from `interactions`.

Survivorship (one rule for every displayed field): among the contact's interactions that carry a
value, prefer one whose identity was verified, then the most recent, then the value seen most
often, then the smallest interaction id (so the choice is deterministic).
Lists (channels, tags, emails, phones) are unions. Attributes merge key by key, latest value wins,
and the 50 most recently set keys are kept; `attributes_dropped` counts the rest.
"""

from __future__ import annotations

import duckdb
import polars as pl

from dedup.config import EngineConfig
from dedup.schema import MAX_ATTRIBUTE_KEYS, MAX_TAGS

# The survivorship order as a DuckDB sort key: larger wins under arg_max.
_PICK = "(identity_verified, occurred_at, {freq}, -hash(interaction_id))"


def _pick(value: str, alias: str) -> tuple[str, str]:
    """(aggregate, helper column) choosing `value` by the survivorship order."""
    freq = f"count(*) OVER (PARTITION BY contact_id, {value})"
    return (
        f"arg_max({value}, {_PICK.format(freq=f'_f_{alias}')}) "
        f"FILTER (WHERE {value} IS NOT NULL) AS {alias}",
        f"{freq} AS _f_{alias}",
    )


def register_audience_map(con: duckdb.DuckDBPyConnection, config: EngineConfig) -> None:
    frame = pl.DataFrame(  # noqa: F841 - read by DuckDB's replacement scan
        {
            "plan_norm": list(config.audience_by_plan),
            "audience": list(config.audience_by_plan.values()),
        },
        schema={"plan_norm": pl.String, "audience": pl.String},
    )
    con.execute("CREATE OR REPLACE TABLE audience_map AS SELECT * FROM frame")


def build_contacts(
    con: duckdb.DuckDBPyConnection, config: EngineConfig, source: str = "interactions"
) -> None:
    """Create `contacts` from the interactions in table `source` (which must carry `contact_id`)."""
    register_audience_map(con, config)
    picks = [
        _pick("name_display", "name"),
        _pick("email_address", "email"),
        _pick("email_norm", "email_norm"),
        _pick("phone_e164", "phone"),
        _pick("company_display", "company"),
        _pick("audience_tag", "audience_pick"),
    ]
    select_picks = ",\n      ".join(p[0] for p in picks)
    freq_cols = ",\n      ".join(p[1] for p in picks)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE contacts AS
        WITH base AS (
          SELECT i.*, a.audience AS audience_tag,
                 coalesce(i.conversation_id, i.interaction_id) AS _conversation,
                 {freq_cols}
          FROM {source} i LEFT JOIN audience_map a USING (plan_norm)
        ),
        facts AS (
          SELECT contact_id,
                 {select_picks},
                 list(DISTINCT channel ORDER BY channel) AS channels,
                 bool_or(identity_verified) AS identity_verified,
                 min(occurred_at) FILTER (WHERE identity_verified) AS verified_at,
                 arg_max(verified_user_id, (occurred_at, -hash(interaction_id)))
                     FILTER (WHERE verified_user_id IS NOT NULL) AS user_id,
                 count(DISTINCT _conversation) AS conversation_count,
                 max(occurred_at) AS last_conversation_at,
                 min(occurred_at) AS first_seen,
                 max(occurred_at) AS last_seen,
                 count(*) AS interaction_count,
                 list(DISTINCT email_norm ORDER BY email_norm) FILTER (WHERE email_norm IS NOT NULL) AS emails,
                 list(DISTINCT phone_e164 ORDER BY phone_e164) FILTER (WHERE phone_e164 IS NOT NULL) AS phones,
                 count(DISTINCT session_id) AS session_count,
                 count(*) FILTER (WHERE plan_norm IS NOT NULL AND audience_tag IS NULL) AS unknown_plans
          FROM base GROUP BY contact_id
        ),
        tag_rows AS (
          SELECT contact_id, unnest(contact_tags) AS tag, occurred_at FROM {source}
          WHERE contact_tags IS NOT NULL
        ),
        tag_latest AS (
          SELECT contact_id, tag, max(occurred_at) AS t,
                 row_number() OVER (PARTITION BY contact_id ORDER BY max(occurred_at) DESC, tag) AS rn
          FROM tag_rows WHERE trim(tag) <> '' GROUP BY contact_id, tag
        ),
        tags AS (
          SELECT contact_id, list(tag ORDER BY tag) FILTER (WHERE rn <= {MAX_TAGS}) AS tags,
                 count(*) FILTER (WHERE rn > {MAX_TAGS}) AS tags_dropped
          FROM tag_latest GROUP BY contact_id
        ),
        attr_rows AS (
          SELECT i.contact_id, j.key, j.value, i.occurred_at, i.interaction_id
          FROM {source} i, json_each(i.attributes::JSON) j
          WHERE i.attributes IS NOT NULL
        ),
        attr_latest AS (
          SELECT contact_id, key,
                 arg_max(value, (occurred_at, -hash(interaction_id))) AS value,
                 max(occurred_at) AS t
          FROM attr_rows GROUP BY contact_id, key
        ),
        attr_ranked AS (
          SELECT *, row_number() OVER (PARTITION BY contact_id ORDER BY t DESC, key) AS rn
          FROM attr_latest
        ),
        attrs AS (
          SELECT contact_id, json_group_object(key, value) AS attributes
          FROM attr_ranked WHERE rn <= {MAX_ATTRIBUTE_KEYS} GROUP BY contact_id
        ),
        attrs_dropped AS (
          SELECT contact_id, greatest(count(*) - {MAX_ATTRIBUTE_KEYS}, 0) AS attributes_dropped
          FROM attr_latest GROUP BY contact_id
        )
        SELECT f.contact_id, f.name, f.email, f.phone, f.company, f.channels,
               coalesce(f.audience_pick, '{config.default_audience}') AS audience,
               f.identity_verified, f.verified_at, f.user_id,
               f.conversation_count, f.last_conversation_at,
               coalesce(t.tags, []::VARCHAR[]) AS tags,
               f.first_seen, f.last_seen,
               NULL::VARCHAR AS crm_sync_status,
               coalesce(a.attributes, '{{}}'::JSON) AS attributes,
               (f.email IS NOT NULL OR f.phone IS NOT NULL) AS is_lead,
               f.email_norm, coalesce(f.emails, []::VARCHAR[]) AS emails,
               coalesce(f.phones, []::VARCHAR[]) AS phones,
               f.interaction_count, f.session_count,
               coalesce(t.tags_dropped, 0) AS tags_dropped,
               coalesce(d.attributes_dropped, 0) AS attributes_dropped,
               f.unknown_plans
        FROM facts f
        LEFT JOIN tags t USING (contact_id)
        LEFT JOIN attrs a USING (contact_id)
        LEFT JOIN attrs_dropped d USING (contact_id)
        ORDER BY f.contact_id
        """
    )
