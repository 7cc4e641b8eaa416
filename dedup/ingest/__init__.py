"""Files -> validated staged records and quarantine: the only code that knows file formats.

Holds the per-day staging (`days`), the canonical readers and validation, the CSV contact import
and one adapter per provider format (`adapters/`). May import: the `dedup` top level only.
"""
