"""Signing in and out of the review page (admins made with `contacts admin add`).

A successful sign-in starts a server-side session (`sessions`), sets its cookie and a fresh CSRF
token, and goes back to the page that asked for it. Failed attempts are rate-limited per client
address (`state.RateLimiter.check_failure`); the sign-in form itself carries a CSRF token (a
page elsewhere cannot sign a browser in as someone else).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from contacts.web.pages import (
    CSRF_COOKIE,
    State,
    csrf_ok,
    current_session,
    failed,
    render,
    set_cookie,
)
from contacts.web.sessions import SESSION_COOKIE
from contacts.web.state import ApiError, WebState
from dedup.service import admins
from dedup.service.admins import admins_path

router = APIRouter(include_in_schema=False)


def _local(path: str) -> str:
    """Where to go after signing in: a path of this site only (never `//elsewhere`)."""
    if path.startswith("/") and not path.startswith(("//", "/\\")) and path != "/login":
        return path
    return "/proposals"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/proposals") -> Response:  # noqa: A002 - the query name
    if current_session(request) is not None:
        return RedirectResponse(_local(next), 303)
    return render(request, "login.html", next=_local(next))


def _refused(request: Request, state: WebState, next: str) -> Response:
    try:
        state.limiter.check_failure("sign-ins", request.client.host if request.client else "")
    except ApiError as exc:
        return failed(request, exc.message, 429)
    return render(
        request, "login.html", status_code=401, next=_local(next), error="wrong name or password"
    )


@router.post("/login")
def login(
    request: Request,
    state: State,
    name: Annotated[str, Form(max_length=64)] = "",
    secret: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form(max_length=2000)] = "/proposals",  # noqa: A002
) -> Response:
    if not csrf_ok(request, csrf_token):
        return failed(request, "missing or wrong form token; reload the page and try again", 403)
    try:
        known = admins.verify(admins_path(state.db), name, secret)
    except admins.AdminError as exc:
        return failed(request, str(exc), 503)
    if not known:
        return _refused(request, state, next)
    token, session = state.sessions.start(name)
    response = RedirectResponse(_local(next), 303)
    set_cookie(request, response, SESSION_COOKIE, token)
    set_cookie(request, response, CSRF_COOKIE, session.csrf)
    return response


@router.post("/logout")
def logout(
    request: Request,
    state: State,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    if not csrf_ok(request, csrf_token):
        return failed(request, "missing or wrong form token; reload the page and try again", 403)
    state.sessions.end(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login?msg=signed-out", 303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")
    return response
