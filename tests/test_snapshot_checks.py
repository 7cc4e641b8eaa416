"""The SQL invariants of a built snapshot, on hand-made tables."""

from __future__ import annotations

import duckdb

from quality.snapshot_checks import MAX_IDENTIFIERS_PER_CONTACT, contacts_over_hub_limit


def test_hub_limit_counts_verified_users_and_distinct_identifiers() -> None:
    con = duckdb.connect()
    n = MAX_IDENTIFIERS_PER_CONTACT
    con.execute(
        f"""
        CREATE TABLE interactions AS
        -- c_ok: n identifiers, repeated, plus nulls and one unverified second user id
        SELECT 'c_ok' AS contact_id,
               CASE WHEN r % 2 = 0 THEN 'e' || (r % {n // 2}) || '@x.test' END AS email_norm,
               CASE WHEN r % 2 = 1 THEN '+1415555' || lpad((r % {n // 2})::VARCHAR, 4, '0') END
                   AS phone_e164,
               CASE WHEN r = 0 THEN 'u2' ELSE 'u1' END AS user_id,
               r <> 0 AS identity_verified
        FROM range(60) t(r)
        UNION ALL  -- c_hub: one identifier more than a person has
        SELECT 'c_hub', 'h' || r || '@x.test', NULL, NULL, false FROM range({n + 1}) t(r)
        UNION ALL  -- c_two: two verified user ids
        SELECT 'c_two', NULL, NULL, 'u' || r, true FROM range(2) t(r)
        """
    )
    bad = contacts_over_hub_limit(con)
    assert bad.rows() == [("c_hub", 0, n + 1), ("c_two", 2, 0)]
