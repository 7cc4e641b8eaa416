"""Great Expectations data docs that render offline: CDN addresses rewritten to vendored copies.

GX's page templates load jQuery, Bootstrap, bootstrap-table, the datepicker, Font Awesome,
bootstrap-dark and vega from seven CDNs, and two logos from GX's S3 bucket; without network the
pages render blank. `make_offline` copies the vendored files (`quality/static/vendor/`, origins
and licences in its README) into a built site's `static/vendor/` and points every page at them
with relative paths, so the site renders the same from `contacts serve` (`/reports/quality/`),
from the file system, and with no network at all. Nothing here imports GX.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

VENDOR = Path(__file__).parent / "static" / "vendor"
SITE_VENDOR = Path("static") / "vendor"  # inside a data docs site

# Every script and style address in GX 1.24's page templates, and the vendored file it names.
CDN_FILES = {
    "https://cdn.jsdelivr.net/npm/vega@5": "vega@5.33.1/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite@5.23.0/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed@6.29.0/build/vega-embed.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "fontawesome-free@6.6.0/css/all.min.css"
    ),
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery@3.7.1/dist/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "popper.js@1.12.9/dist/umd/popper.min.js"
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap@4.3.1/dist/js/bootstrap.min.js"
    ),
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap@4.3.1/dist/css/bootstrap.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table@1.19.1/dist/bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table@1.19.1/dist/bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js": (
        "bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css": (
        "bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css": (
        "bootstrap-table@1.19.0/dist/extensions/filter-control/"
        "bootstrap-table-filter-control.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/"
    "bootstrap-datepicker.min.js": "bootstrap-datepicker@1.9.0/dist/js/bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/"
    "bootstrap-datepicker.min.css": (
        "bootstrap-datepicker@1.9.0/dist/css/bootstrap-datepicker.min.css"
    ),
    # The package's minified build of the same version (README).
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/"
    "bootstrap-prefers-dark.css": "bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.min.css",
}
# GX's logos on S3 (the navigation bar's, with a cache-busting query, and dark mode's): GX
# already copies its own logo into every site.
_S3_LOGO = re.compile(
    r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/"
    r"(?:logo-long\.png(?:\?[^\"')\s]*)?|full_logo_dark\.png)"
)
SITE_LOGO = Path("static") / "images" / "logo-long.png"
_CDN = re.compile("|".join(re.escape(url) for url in sorted(CDN_FILES, key=len, reverse=True)))
# The two CDN tags carry SRI hashes (checked against the vendored files: README). Local files
# need none, and `crossorigin` would make a page opened from the file system refuse them.
_SRI = re.compile(r'\s+(?:integrity="[^"]*"|crossorigin="[^"]*")')
# An address a page would load without a click: src=, a stylesheet's href=, or a CSS url().
EXTERNAL_LOADS = re.compile(
    r"""(?:\bsrc\s*=\s*["']?|<link\b[^>]*\bhref\s*=\s*["']?|url\(\s*["']?)(?:https?:)?//[^"')\s>]+""",
    re.IGNORECASE,
)


def _relative(target: Path, page: Path) -> str:
    return Path(os.path.relpath(target, page.parent)).as_posix()


def _rewrite(text: str, page: Path, site: Path) -> str:
    vendor = site / SITE_VENDOR
    text = _CDN.sub(lambda m: _relative(vendor / CDN_FILES[m.group(0)], page), text)
    text = _S3_LOGO.sub(_relative(site / SITE_LOGO, page), text)
    return _SRI.sub("", text)


def make_offline(site: Path) -> list[str]:
    """Make the data docs site in `site` render offline; the external loads left (none expected).

    Copies the vendored files into `site/static/vendor/` and rewrites every page (and GX's
    stylesheets) in place. What is returned are addresses a page would still load from the
    network: a GX upgrade that adds a CDN shows up there (and in tests/test_reports_served.py).
    """
    shutil.copytree(
        VENDOR, site / SITE_VENDOR, dirs_exist_ok=True, ignore=shutil.ignore_patterns("README.md")
    )
    left: list[str] = []
    for page in sorted([*site.rglob("*.html"), *(site / "static" / "styles").glob("*.css")]):
        text = page.read_text(encoding="utf-8")
        offline = _rewrite(text, page, site)
        if offline != text:
            page.write_text(offline, encoding="utf-8")
        left.extend(m.group(0) for m in EXTERNAL_LOADS.finditer(offline))
    return left
