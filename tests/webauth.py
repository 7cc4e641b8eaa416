"""Signing in to the review page from tests: an admin, a signed-in TestClient, a signed-in browser.

The page answers only signed-in admins and only loopback `Host` names (docs/review.md), so tests
of the page reach it as http://127.0.0.1 with a session, exactly as a person would.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from contacts.web import CSRF_COOKIE, create_app
from dedup.service.admins import add_admin, admins_path, exists

ADMIN = "reviewer"
LOCAL = "http://127.0.0.1"


def admin_token(db: Path, name: str = ADMIN) -> str:
    """A new admin `name` of `db`'s state folder and its generated sign-in token."""
    assert not exists(admins_path(db), name), f"admin {name} exists already"
    token = add_admin(admins_path(db), name)
    assert token is not None
    return token


def sign_in(client: TestClient, name: str, token: str) -> TestClient:
    client.get("/login")
    done = client.post(
        "/login",
        data={"name": name, "secret": token, "csrf_token": client.cookies.get(CSRF_COOKIE)},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    return client


def signed_in_client(
    db: Path, app: FastAPI | None = None, name: str = ADMIN, **kwargs
) -> TestClient:
    """A TestClient on 127.0.0.1, signed in as a new admin `name`."""
    token = admin_token(db, name)
    client = TestClient(app or create_app(db), base_url=LOCAL, **kwargs)
    return sign_in(client, name, token)


def sign_in_browser(page, base: str, db: Path, name: str = ADMIN) -> None:
    """Sign a Playwright page in through the sign-in form, as a person would."""
    token = admin_token(db, name)
    page.goto(f"{base}/login")
    page.fill('input[name="name"]', name)
    page.fill('input[name="secret"]', token)
    page.locator('#signin button[type="submit"]').click()
    page.wait_for_url(f"{base}/proposals")


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """`app` on a real uvicorn on a free loopback port, for a browser or a subprocess; yields
    its base URL and stops the server on exit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
