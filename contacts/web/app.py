"""The web app of `contacts serve`: the review page (`pages`, `signin`) and the Contact API (`api`).

`create_app` only assembles: the state every route reads (`state.WebState`), the two middlewares
that decide who may reach a route before anything else runs (Starlette's `TrustedHostMiddleware`
outside, `guard.Guard` inside), the routers and the error handlers.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.middleware.trustedhost import TrustedHostMiddleware

from contacts.web.api import install_error_handlers
from contacts.web.api import router as api_router
from contacts.web.guard import Guard
from contacts.web.pages import CSRF_COOKIE, failed
from contacts.web.pages import router as pages_router
from contacts.web.reports import router as reports_router
from contacts.web.signin import router as signin_router
from contacts.web.state import FAILURES_PER_MINUTE, RateLimiter, WebState
from dedup.decisions import DecisionLogError
from dedup.properties import load_schema
from dedup.service import read_cache

__all__ = ["CSRF_COOKIE", "LOOPBACK_HOSTS", "app_from_environment", "create_app"]

# Host headers always answered: the page as `contacts serve` prints it, and its usual spelling.
# Any other name (a proxy's, a LAN address) must be configured: a page under a foreign name is
# how DNS rebinding reaches a server on 127.0.0.1.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def create_app(
    db: Path,
    requests_per_minute: int = 120,
    properties_file: Path | None = None,
    allowed_hosts: Iterable[str] = (),
    workers: int = 1,
) -> FastAPI:
    """The review page and Contact API over one published file (its state folder beside it).

    Args:
        db: the published DuckDB file.
        requests_per_minute: Contact API requests per key per minute before 429.
        properties_file: the declared custom properties PATCHes are checked against.
        allowed_hosts: `Host` names answered besides 127.0.0.1 and localhost.
        workers: server processes sharing the port. Each counts in its own memory (`state.MovingWindow`;
            sharing counts between processes would take Redis or Memcached), so each
            allows 1/workers of both limits: together they never allow more than the limit, and a
            client whose connections all land on one worker is held to that worker's share.
    """
    app = FastAPI(
        title="Contacts",
        description="The Contact API (`/v1/contacts`); the review page is served beside it.",
        version="1",
        docs_url=None,
        redoc_url=None,
    )
    # One long-lived read connection per process, reopened after each publish (read_cache).
    read_cache.share_published(db)
    app.state.web = WebState(
        db=db,
        limiter=RateLimiter(
            max(1, requests_per_minute // workers), max(1, FAILURES_PER_MINUTE // workers)
        ),
        properties=load_schema(properties_file),
    )
    app.add_middleware(Guard)
    # Added last, so it runs first: a foreign Host is refused before anything else.
    app.add_middleware(
        TrustedHostMiddleware, allowed_hosts=[*LOOPBACK_HOSTS, *allowed_hosts], www_redirect=False
    )
    app.include_router(api_router)
    install_error_handlers(app)
    install_state_error_handler(app)
    app.include_router(signin_router)
    app.include_router(pages_router)
    app.include_router(reports_router)
    return app


def install_state_error_handler(app: FastAPI) -> None:
    """A damaged decision log is 503 with its one line, never a 500 with a traceback.

    The file is the operator's to restore (the line says so, as the CLI prints it); until then no
    read or write can be answered right, and 503 tells an API client to come back later rather
    than that its request was wrong. The API answers `{"error": ...}`, the page its error page.
    """

    @app.exception_handler(DecisionLogError)
    async def _damaged_log(request: Request, exc: DecisionLogError) -> Response:
        if request.url.path.startswith("/v1/"):
            return JSONResponse({"error": str(exc)}, status_code=503)
        return failed(request, str(exc), status_code=503)


# `contacts serve --workers N` hands its options to each worker process through these variables
# (uvicorn starts workers from an import string, not from an app object).
SERVE_ENV = "CONTACTS_SERVE_OPTIONS"


def app_from_environment() -> FastAPI:
    """The app of one `contacts serve --workers N` worker (uvicorn's factory)."""
    import json
    import os

    options = json.loads(os.environ[SERVE_ENV])
    return create_app(
        Path(options["db"]),
        requests_per_minute=options["requests_per_minute"],
        properties_file=Path(options["properties_file"]) if options["properties_file"] else None,
        allowed_hosts=options["allowed_hosts"],
        workers=options["workers"],
    )
