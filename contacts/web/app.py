"""The web app of `contacts serve`: the review page (`pages`) and the Contact API (`api`).

`create_app` only assembles: the state every route reads (`state.WebState`), the routers and the
error handlers. The routes themselves are module-level functions in `pages` and `api`.
"""

from __future__ import annotations

import getpass
from pathlib import Path

from fastapi import FastAPI

from contacts.web import api, pages
from contacts.web.api import install_error_handlers
from contacts.web.pages import CSRF_COOKIE
from contacts.web.state import RateLimiter, WebState
from dedup.properties import load_schema

__all__ = ["CSRF_COOKIE", "create_app"]


def create_app(
    db: Path,
    admin: str | None = None,
    requests_per_minute: int = 120,
    properties_file: Path | None = None,
) -> FastAPI:
    """The review app over one published file (its decision log sits beside it)."""
    app = FastAPI(
        title="Contacts",
        description="The Contact API (`/v1/contacts`); the review page is served beside it.",
        version="1",
        docs_url=None,
        redoc_url=None,
    )
    app.state.web = WebState(
        db=db,
        who=admin or f"{getpass.getuser()} (web)",
        limiter=RateLimiter(requests_per_minute),
        properties=load_schema(properties_file),
    )
    app.include_router(api.router)
    install_error_handlers(app)
    app.include_router(pages.router)
    return app
