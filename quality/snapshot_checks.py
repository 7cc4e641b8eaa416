"""Invariants of a built snapshot, as SQL over its DuckDB connection.

Each returns the offending rows (empty = passes) so a failure can show examples.
"""

from __future__ import annotations

import duckdb
import polars as pl

# A person has a handful of addresses and numbers; a contact holding more was joined by a hub.
MAX_IDENTIFIERS_PER_CONTACT = 12


def duplicate_interaction_ids(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql(
        "SELECT interaction_id, count(*) AS n FROM interactions GROUP BY 1 HAVING n > 1 ORDER BY 1"
    ).pl()


def interactions_without_live_contact(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql(
        """
        SELECT i.interaction_id, i.contact_id FROM interactions i
        ANTI JOIN contacts c USING (contact_id) ORDER BY 1
        """
    ).pl()


def contacts_over_hub_limit(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql(
        f"""
        SELECT contact_id,
               count(DISTINCT CASE WHEN identity_verified THEN user_id END) AS verified_user_ids,
               -- An address never equals an E.164 number, so the two counts add up; counting
               -- measured 0.8-1.3 s at 1M interactions against 1.2-2.0 s for lists of both.
               count(DISTINCT email_norm) + count(DISTINCT phone_e164) AS identifiers
        FROM interactions
        GROUP BY contact_id
        HAVING verified_user_ids > 1 OR identifiers > {MAX_IDENTIFIERS_PER_CONTACT}
        ORDER BY contact_id
        """
    ).pl()


def redirects_not_live(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql(
        """
        SELECT r.* FROM contact_redirects r ANTI JOIN (
            SELECT contact_id FROM contacts
            UNION ALL SELECT contact_id FROM deleted_contacts  -- held for a restore
        ) c ON c.contact_id = r.to_contact_id
        UNION ALL
        SELECT r.* FROM contact_redirects r SEMI JOIN contacts c ON c.contact_id = r.from_contact_id
        """
    ).pl()
