"""Data-quality checks on a built snapshot: invariants, publish gates, Great Expectations suites.

`snapshot_checks`, `gates` and `export_checks` are plain DuckDB/Polars (no GX import); only
`gx_suites` and its spawned `gx_worker` import Great Expectations. May import: `dedup` only.
"""
