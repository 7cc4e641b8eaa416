"""The demo data generator: deterministic, seeded, realistic ``askvault`` interaction exports
with ground truth (and, on request, native provider exports), split by stage.

May import: the standard library, Polars, PyArrow, phonenumbers and ``dedup.schema`` (the
canonical record it writes); nothing else of the product imports it except the ``contacts``
CLI, and its modules import only one another, each stage the stage before it:

- ``config``: ``GeneratorConfig``, ``GeneratedExports``, ``CANONICAL_COLUMNS``, ``CASES``;
- ``vocabulary``: names, companies, domains, tags, regions, channels (constants);
- ``identifiers``: scrambled ids, the HMAC user hash, phone validity and spellings;
- ``state`` -> ``people`` (facets, personas) -> ``cases`` (the population and its planted
  duplicate cases) -> ``conversations`` (per-conversation entries, planted interactions) ->
  ``rows`` (interactions in bulk) -> ``layout`` (files, re-deliveries, bad records) ->
  ``files`` (the writers and the truth); ``generate`` runs them in order;
- ``native``: WhatsApp, email (mbox), SMS, Slack, HubSpot and Salesforce exports.

Layout written (see ``/work/shared/SPEC.md``)::

    OUT/askvault/<YYYY-MM-DD>/export-001.jsonl[.gz] | export-002.csv[.gz] | export-003.parquet
    OUT/askvault/<last day>/broken.parquet          (bad_records: plain text, not Parquet)
    OUT/_truth/truth.parquet                        one row per distinct good interaction id
    OUT/_truth/bad_records.parquet                  where each planted bad record sits

``OUT/askvault`` and ``OUT/_truth`` are replaced if they exist (the generator owns them); nothing
else under ``OUT`` is touched.

Every person has stable identity facets (names, emails, phone, browser sessions, user id, company,
tags, attributes); each interaction reveals a random subset of them, shaped by its channel. On top
of that the generator plants hard cases for a deterministic merger (households, switchboards,
throwaway emails, kiosk sessions, forged user ids, second emails, typos, nicknames) and
re-deliveries. Output is byte-identical for the same config (with the locked Polars and
phonenumbers versions, any thread count): one ``random.Random(seed)`` stream, no set/dict-order
or clock dependence, fixed writer settings, gzip with ``mtime=0``. Ids are ``int_``/``conv_``/
``sess_`` plus a 64-bit scramble of a counter (unique by construction, no visible order).

People, their facets and their conversations are made in Python; the interactions inside the
conversations are then expanded, decided and rendered in bulk with Polars expressions (1M
interactions in seconds). Every random draw comes from one ``random.Random(seed)``: the bulk
stage draws its per-row bytes with Polars' seeded sampler, seeded from that stream.

Files: JSONL (null fields omitted, or written as ``null`` in "dense" files; lists as arrays,
``attributes`` as an object, ``occurred_at`` sometimes epoch seconds), CSV (lists ``;``-joined,
``attributes`` a JSON string, empty cell = null) and Parquet (lists as ``list<string>``,
``attributes`` a JSON string, ``occurred_at`` a ``timestamp[us, UTC]`` in every other Parquet file
and ISO text in the rest). ``occurred_at`` text is ISO 8601 with ``Z`` or the person's offset.

Truth columns (``_truth/truth.parquet``): ``interaction_id``, ``person_id``, ``case`` (the planted
case that produced the interaction: ``plain``, ``redelivered`` for a plain person's interaction
delivered more than once, else the person's case), ``person_case``, ``case_group`` (e.g.
``household-0003``; null for plain people), ``related_person_id`` (for a forged interaction: the
victim whose user id was forged), ``channel``, ``verified`` (carries a user id with a valid hash),
``forged``, ``anonymous`` (no email, phone or user id: only a session), ``typo`` (``name`` /
``email`` / ``phone`` on the interaction that carries the typo), ``redelivered``, ``updated`` (a
later delivery changed the content; the latest delivery is the truth), ``deliveries``,
``first_export_day``, ``last_export_day``.

``_truth/bad_records.parquet``: ``kind``, ``file`` (relative to OUT), ``row`` (SPEC numbering:
JSONL line, CSV line with the header as line 1, Parquet row; null for a whole bad file),
``interaction_id``.
"""

from contacts.demo.config import CANONICAL_COLUMNS, CASES, GeneratedExports, GeneratorConfig
from contacts.demo.generate import generate_benchmark_exports, generate_exports
from contacts.demo.native import DEMO_STAFF_DOMAIN, DEMO_SUPPORT_EMAIL, NATIVE_SOURCES

__all__ = [
    "GeneratorConfig",
    "GeneratedExports",
    "generate_exports",
    "generate_benchmark_exports",
    "NATIVE_SOURCES",
    "DEMO_STAFF_DOMAIN",
    "DEMO_SUPPORT_EMAIL",
    "CANONICAL_COLUMNS",
    "CASES",
]
