"""The contact identity engine, with no Dagster: pure functions over frames and DuckDB files.

Top level: the contracts every stage reads (schema, properties, decisions log, config, state
folder layout, kept-cache generations, DuckDB and process helpers); they import nothing else
from `dedup`. The stages are sub-packages, each importing only the top level and the stages
before it:
`ingest` -> `identity` -> `matching` -> `admin` -> `snapshot` -> `service` (docs/decisions.md).
"""
