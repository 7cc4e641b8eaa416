"""The reports a run writes, served to signed-in admins: Splink's dashboards and GX data docs.

`/reports` lists them; `/reports/matching/...` and `/reports/quality/...` serve the files of
`<db>.state/output/matching/` and `<db>.state/output/quality/` (`dedup.report_urls`, the same
addresses Dagster's metadata links). Nothing else is reachable: a path with an empty, `.`, `..`
or hidden part is refused, so are symbolic links anywhere below the output folder (a link could
point at the decision log or the exports), and the file is opened with `O_NOFOLLOW` after the
check. `Guard` has already sent anyone not signed in to `/login`.

The reports hold contact data, so responses are not cached, and their Content-Security-Policy
lets a page load only from this server and fetch nothing: the vendored scripts run (inline and
`eval`, which vega needs), but no page can reach the network or post anywhere.
"""

from __future__ import annotations

import mimetypes
import os
import stat
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from contacts.web.pages import Admin, render
from contacts.web.state import state_of
from dedup.layout import StateLayout
from dedup.report_urls import PREFIX, SERVED_FOLDERS

router = APIRouter(include_in_schema=False)

HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
        "connect-src 'none'; frame-src 'none'; worker-src 'none'; object-src 'none'; "
        "form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
    ),
}
# Types the reports use, spelled out: the platform's mimetypes table may lack woff2.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".otf": "font/otf",
}


def _media_type(path: Path) -> str:
    suffix = path.suffix.lower()
    return MEDIA_TYPES.get(suffix) or mimetypes.guess_type(path.name)[0] or "text/plain"


def _no_link(path: Path) -> None:
    if path.is_symlink():
        raise HTTPException(404, "not found")


def _target(output: Path, folder: str, rest: str) -> Path:
    """The file `rest` names under `output/folder`, every step checked (404 otherwise)."""
    parts = rest.split("/")
    if parts[-1] == "":
        parts[-1] = "index.html"  # a folder's address ends with a slash
    if folder not in SERVED_FOLDERS or any(
        not p or p.startswith(".") or "\\" in p or "\x00" in p for p in parts
    ):
        raise HTTPException(404, "not found")
    current = output
    _no_link(current)
    for part in (folder, *parts):
        current = current / part
        _no_link(current)
    return current


def _read(path: Path) -> bytes:
    """The bytes of regular file `path`, never through a link (404 otherwise)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise HTTPException(404, "not found") from exc
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise HTTPException(404, "not found")
        return file.read()


def _sites(output: Path) -> list[tuple[str, str]]:
    """(title, address) of each report index present, Splink's first."""
    found = []
    if (output / "matching" / "index.html").is_file():
        found.append(("Splink reports on the pending merge proposals", "matching/"))
    quality = output / "quality"
    if quality.is_dir():
        for index in sorted(quality.rglob("index.html")):
            site = index.parent.relative_to(quality)
            if index.parent.joinpath("static").is_dir():  # a GX site, not a page inside one
                found.append((f"Data docs: {site.as_posix()}", f"quality/{site.as_posix()}/"))
    return found


@router.get(PREFIX)
def reports_index(request: Request, _admin: Admin) -> Response:
    output = StateLayout(state_of(request).db).output_dir
    return render(request, "reports.html", sites=_sites(output), prefix=PREFIX)


@router.get(PREFIX + "/{folder}/{rest:path}")
def report_file(request: Request, folder: str, rest: str, _admin: Admin) -> Response:
    output = StateLayout(state_of(request).db).output_dir
    path = _target(output, folder, rest)
    if path.is_dir():  # relative links inside need the slash
        return RedirectResponse(f"{request.url.path}/", 307)
    return Response(_read(path), media_type=_media_type(path), headers=HEADERS)


@router.get(PREFIX + "/{folder}")
def report_folder(folder: str, _admin: Admin) -> Response:
    if folder not in SERVED_FOLDERS:
        raise HTTPException(404, "not found")
    return RedirectResponse(f"{PREFIX}/{folder}/", 307)
