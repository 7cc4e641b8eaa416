"""Where `contacts serve` publishes the reports a run writes, and their http addresses.

The pipeline writes Splink's dashboards to `<output>/matching/` and GX data docs to
`<output>/quality/` (`StateLayout.output_dir`); `contacts serve` serves those two folders, and
nothing else of the state folder, under `/reports/<folder>/...` behind its sign-in
(contacts/web/reports.py). Dagster metadata links the same addresses: a browser refuses the
`file://` links a run could give instead, and an admin opens reports where the review page is.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

# Where admins reach `contacts serve`; the default is its default bind (127.0.0.1:8765).
REPORTS_URL_ENV = "CONTACTS_REPORTS_URL"
DEFAULT_REPORTS_URL = "http://127.0.0.1:8765"
PREFIX = "/reports"
# Folders of the output directory that are served: reports for admins. `exports/` (the nightly
# CSVs of every contact) is not a report and is never served.
SERVED_FOLDERS = ("matching", "quality")


def reports_base() -> str:
    """The server's address from `CONTACTS_REPORTS_URL` (no trailing slash)."""
    return (os.environ.get(REPORTS_URL_ENV, "").strip() or DEFAULT_REPORTS_URL).rstrip("/")


def url_path(output_dir: Path, file: Path) -> str | None:
    """The served path (`/reports/...`) of `file`, or None when it is not under a served folder
    of `output_dir` (an `output_dir` setting other than the state folder's is not served)."""
    try:
        parts = file.resolve().relative_to(output_dir.resolve()).parts
    except ValueError:
        return None
    if not parts or parts[0] not in SERVED_FOLDERS:
        return None
    return PREFIX + "/" + "/".join(quote(p) for p in parts)


def report_url(output_dir: Path, file: Path, base: str | None = None) -> str | None:
    """The http address of `file` on `contacts serve` (see `url_path`)."""
    path = url_path(output_dir, file)
    return None if path is None else (base or reports_base()).rstrip("/") + path
