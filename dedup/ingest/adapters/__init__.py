"""Native adapters: one module per provider format, each `(path, FileOrigin[, config]) -> ReadResult`.

Registered in `dedup.ingest.days.SOURCE_SPECS`; see docs/sources.md for every mapping.
"""
