"""Dagster metadata links to the reports a run writes, as `contacts serve` serves them.

A report under the state folder's output (`<db>.state/output/matching/`, `.../quality/`) is
linked as `http://127.0.0.1:8765/reports/...`, or under `CONTACTS_REPORTS_URL` when admins
reach `contacts serve` elsewhere (dedup.report_urls). A browser refuses `file://` links from
the Dagster UI, so a file link is given only where no server can serve the report: an
`output_dir` setting outside the state folder.
"""

from pathlib import Path

import dagster as dg

from assets.resources import ContactsSettings
from dedup.report_urls import report_url


def report_address(settings: ContactsSettings, file: Path) -> str:
    """Where an admin opens `file`: its http address, or its path when it is not served."""
    return report_url(settings.layout.output_dir, file) or str(file)


def report_link(settings: ContactsSettings, file: Path) -> dg.MetadataValue:
    """`report_address` as Dagster metadata (a clickable URL, or a path)."""
    url = report_url(settings.layout.output_dir, file)
    return dg.MetadataValue.url(url) if url else dg.MetadataValue.path(str(file))
