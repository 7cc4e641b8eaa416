"""What every route of the web app reads: the published file, templates, limits, sessions, properties.

One `WebState` per app, kept in `app.state.web` by `create_app`; handlers reach it through the
`web` dependency, so a handler can be imported and called with any app that holds one.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates

from contacts.web.sessions import Session, Sessions
from dedup.layout import StateLayout
from dedup.properties import Property
from dedup.service import admins
from dedup.service.admins import admins_path

TEMPLATES = Path(__file__).parent / "templates"
# Failed authentications (bad API keys, failed sign-ins) one client address may make per minute:
# a misconfigured client still sees its 401s; guessing and flooding stop at this rate.
FAILURES_PER_MINUTE = 20


class ApiError(Exception):
    """An error answered as `{"error": message}` with its status (and headers, e.g. Retry-After)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class MovingWindow:
    """At most `amount` hits per key in any `seconds`-long window, counted in this process.

    Each key keeps the times of its hits still inside the window. The `limits` library's memory
    storage did the same but started a timer thread to expire entries on almost every hit
    (~2 ms a request under load: docs/performance.md); here a key's old hits are dropped when
    it is hit again, and keys idle for a whole window are swept every `SWEEP` hits.
    """

    SWEEP = 1024

    def __init__(self, amount: int, seconds: float = 60.0) -> None:
        self.amount, self.seconds = amount, seconds
        self._lock = threading.Lock()
        self._hits: dict[tuple[str, ...], deque[float]] = {}
        self._count = 0

    def hit(self, *key: str) -> float | None:
        """Count a hit of `key`: None when allowed, else the seconds until one would be."""
        now = time.monotonic()
        with self._lock:
            times = self._hits.setdefault(key, deque())
            while times and times[0] <= now - self.seconds:
                times.popleft()
            if len(times) >= self.amount:
                return times[0] + self.seconds - now
            times.append(now)
            self._count += 1
            if self._count % self.SWEEP == 0:
                self._sweep(now)
        return None

    def _sweep(self, now: float) -> None:
        idle = [k for k, t in self._hits.items() if not t or t[-1] <= now - self.seconds]
        for k in idle:
            del self._hits[k]


class RateLimiter:
    """Moving 60-second windows in memory: per API key, and per client address for failed
    authentication (bad API keys, failed sign-ins)."""

    def __init__(self, per_minute: int, failures_per_minute: int = FAILURES_PER_MINUTE):
        self.per_key = MovingWindow(per_minute)
        self.failures = MovingWindow(failures_per_minute)

    @staticmethod
    def _hit(window: MovingWindow, what: str, *key: str) -> None:
        wait = window.hit(*key)
        if wait is None:
            return
        raise ApiError(
            429,
            f"rate limit of {window.amount} {what} per minute reached",
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )

    def check(self, key_id: str) -> None:
        """Count one request of API key `key_id`; 429 past the per-key limit."""
        self._hit(self.per_key, "requests", key_id)

    def check_failure(self, kind: str, client: str) -> None:
        """Count one failed authentication of `client`; 429 past the failure limit."""
        self._hit(self.failures, f"failed {kind}", kind, client)


@dataclass
class WebState:
    db: Path
    limiter: RateLimiter
    properties: dict[str, Property] = field(default_factory=dict)
    templates: Jinja2Templates = field(
        default_factory=lambda: Jinja2Templates(directory=str(TEMPLATES))
    )
    sessions: Sessions = field(default_factory=Sessions)

    @cached_property
    def api_keys_path(self) -> Path:
        """The API key file (asked on every API request)."""
        return StateLayout(self.db).api_keys_path

    def signed_in(self, token: str | None) -> Session | None:
        """The session of cookie `token`, while its admin still exists."""
        session = self.sessions.get(token)
        if session is not None and not admins.exists(admins_path(self.db), session.admin):
            self.sessions.end(None, admin=session.admin)
            return None
        return session


def state_of(request: Request) -> WebState:
    """The app's state."""
    return request.app.state.web


async def web(request: Request) -> WebState:
    """The app's state (a FastAPI dependency). A coroutine: FastAPI runs a plain function
    dependency in its thread pool, a hop that cost more than the lookup (docs/performance.md)."""
    return request.app.state.web
