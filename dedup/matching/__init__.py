"""Probabilistic matching of live contacts with Splink: records, settings, model, proposals.

The only importer of Splink; also the accuracy scoring the benchmarks share (`evaluation`).
May import: the `dedup` top level, `dedup.ingest` and `dedup.identity`.
"""
