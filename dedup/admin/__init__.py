"""What each kind of admin decision does to tonight's data: deletion, erasure, edits, notes, tasks.

Reads decisions from the log (`dedup.decisions`) and applies them to frames; never appends to it.
May import: the `dedup` top level, `dedup.ingest`, `dedup.identity` and `dedup.matching`.
"""
