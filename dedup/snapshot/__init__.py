"""Everything in the published DuckDB file: profiles, CRM links, analyst layer, build and publish.

Builds the file in the work folder and publishes it with one rename (`files.publish`).
May import: the `dedup` top level and every stage before it (ingest, identity, matching, admin).
"""
