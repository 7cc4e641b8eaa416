"""Signed-in admins of the review page: server-side sessions behind an opaque cookie.

A session is a random token (the cookie, `HttpOnly; SameSite=Strict`, `Secure` over https); the
server keeps only its SHA-256, the admin's name, the session's CSRF token and the messages it
issued (`?msg=` names one of them, so no one else can put text on the page). Sessions live in
memory: a restart signs everyone out, and `contacts admin remove` ends an admin's sessions at
their next request.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field

SESSION_COOKIE = "contacts_session"
# An admin reviewing a queue stays signed in through a working day; a forgotten tab does not.
IDLE_SECONDS = 2 * 3600
MAX_SECONDS = 12 * 3600
MAX_MESSAGES = 20  # kept per session; older ones stop showing


@dataclass
class Session:
    admin: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    started: float = field(default_factory=time.monotonic)
    seen: float = field(default_factory=time.monotonic)
    messages: dict[str, str] = field(default_factory=dict)

    @property
    def who(self) -> str:
        """What the decision log records as `decided_by`."""
        return f"{self.admin} (web)"

    def issue(self, text: str) -> str:
        """Keep `text` for this session's next page; the code to put in `?msg=`."""
        code = secrets.token_urlsafe(8)
        self.messages[code] = text
        while len(self.messages) > MAX_MESSAGES:
            del self.messages[next(iter(self.messages))]
        return code


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Sessions:
    """The open sessions of one app, by the hash of their cookie."""

    def __init__(self) -> None:
        self._open: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, admin: str) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        session = Session(admin)
        with self._lock:
            self._open[_digest(token)] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        """The live session of `token`; an expired one is ended."""
        if not token:
            return None
        now = time.monotonic()
        with self._lock:
            key = _digest(token)
            session = self._open.get(key)
            if session is None:
                return None
            if now - session.seen > IDLE_SECONDS or now - session.started > MAX_SECONDS:
                del self._open[key]
                return None
            session.seen = now
            return session

    def end(self, token: str | None, admin: str | None = None) -> None:
        """End the session of `token` (or, with `admin`, every session of that admin)."""
        with self._lock:
            if token:
                self._open.pop(_digest(token), None)
            if admin:
                for key in [k for k, s in self._open.items() if s.admin == admin]:
                    del self._open[key]
