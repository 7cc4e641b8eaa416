"""Staged records -> normalized interactions -> clusters -> stable contact ids.

Normalization, the HMAC check (`verify`), hub-aware auto-merge, admin constraints on clusters,
stable ids and merge history. May import: the `dedup` top level and `dedup.ingest`.
"""
