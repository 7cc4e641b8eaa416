"""The Spark engine (issue 27): ingest, the identity stage, the contact profiles and matching
run on a Spark cluster, one implementation.

What it holds:
- `session`: the Spark session, configured from the environment or a `spark-defaults`-style
  file (docs/scale.md); local mode when nothing says otherwise.
- `batches`: a local Polars function of rows run on each Arrow batch (`mapInArrow`), the one
  way the engine's own functions run on the executors.
- `ingest`: provider files → staged days on the executors: the local per-file reader
  (`dedup.ingest.days.read_day_file`) and `validate` per file inside `mapInArrow`, one task per
  export day, written in the local staging layout.
- `normalize`: staged records to normalized interactions on the executors: the Polars functions
  of `dedup.identity` applied per Arrow batch inside `mapInArrow` (not a port).
- `crm`: the staged CRM records' auto-merge evidence (`dedup.identity.crm_evidence`), the
  latest delivery of each record by a window, the local function per Arrow batch.
- `automerge`: the auto-merge key edges and ambiguous-key (hub) rules of
  `dedup.identity.automerge` as Spark SQL aggregations; connected components by Splink's
  clustering on its `SparkAPI`.
- `tonight`: admins' decisions on tonight's rows (`dedup.admin.tonight`'s rules, the local
  functions per Arrow batch), and the single work files the local steps after them read.
- `night`: the nightly job's identity steps with those decisions between them (the assets call
  it when `engine = "spark"`).
- `stable_ids`: `dedup.identity.stable_ids`'s rules (mutual pairing, hashed new ids, redirects,
  merge records) as Spark SQL.
- `contact_ids`: the `contact_ids` step on Spark: last night's ids read from the published file,
  admins' constraints applied to only the clusters they reach, the assignment written by Spark.
- `profiles`: contact profiles built per partition of contacts by the local builder
  (`dedup.snapshot.build.build_contacts_frame`) and admins' contact edits, inside `mapInArrow`.
- `identity`: the identity stage as one Spark job (staged records to ids, no decisions).
- `matching_records`: the matcher's records built per Arrow batch by `dedup.matching.records`'
  own functions, the workspace's mail providers per domain partition; written by Spark.
- `matching_faces`: the labelled faces (`dedup.matching.labels`) sampled on Spark, the faces
  and hashes per batch, only the sampled contacts' faces collected.
- `matching`: the `merge_proposals` step on Spark: Splink's `SparkAPI` over those records,
  candidate counts and term frequencies by Spark, the pairs above the threshold collected for
  the local proposal rules.
- `similarity`: Jaro-Winkler on Spark computed by DuckDB per Arrow batch, every comparison
  level pointed at it, so both engines score a pair alike (Splink's jar and Spark's built-in
  count transpositions otherwise).

What it may import: pyspark, Splink's Spark backend, and the engine's stages whose functions it
runs on the cluster (`dedup.ingest`, `dedup.identity`, `dedup.matching`, `dedup.admin`,
`dedup.snapshot`'s profile builder and published-file reader). No Dagster: assets and the CLI choose this
engine from `ContactsSettings.engine`. Nothing here is imported by the local engine, so a workspace that
never sets `engine = "spark"` never starts a JVM.
"""
