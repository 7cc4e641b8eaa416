"""What every route of the web app reads: the published file, templates, limits, sessions, properties.

One `WebState` per app, kept in `app.state.web` by `create_app`; handlers reach it through the
`web` dependency, so a handler can be imported and called with any app that holds one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from contacts.web.sessions import Session, Sessions
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


class RateLimiter:
    """Moving 60-second windows (the `limits` library, in memory): per API key, and per client
    address for failed authentication (bad API keys, failed sign-ins)."""

    def __init__(self, per_minute: int, failures_per_minute: int = FAILURES_PER_MINUTE):
        self.window = MovingWindowRateLimiter(MemoryStorage())
        self.per_key = RateLimitItemPerMinute(per_minute)
        self.failures = RateLimitItemPerMinute(failures_per_minute)

    def _hit(self, item: RateLimitItem, what: str, *ids: str) -> None:
        if self.window.hit(item, *ids):
            return
        reset = self.window.get_window_stats(item, *ids).reset_time
        raise ApiError(
            429,
            f"rate limit of {item.amount} {what} per minute reached",
            {"Retry-After": str(max(1, math.ceil(reset - time.time())))},
        )

    def check(self, key_id: str) -> None:
        """Count one request of API key `key_id`; 429 past the per-key limit."""
        self._hit(self.per_key, "requests", "key", key_id)

    def check_failure(self, kind: str, client: str) -> None:
        """Count one failed authentication of `client`; 429 past the failure limit."""
        self._hit(self.failures, f"failed {kind}", "failed", kind, client)


@dataclass
class WebState:
    db: Path
    limiter: RateLimiter
    properties: dict[str, Property] = field(default_factory=dict)
    templates: Jinja2Templates = field(
        default_factory=lambda: Jinja2Templates(directory=str(TEMPLATES))
    )
    sessions: Sessions = field(default_factory=Sessions)

    def signed_in(self, token: str | None) -> Session | None:
        """The session of cookie `token`, while its admin still exists."""
        session = self.sessions.get(token)
        if session is not None and not admins.exists(admins_path(self.db), session.admin):
            self.sessions.end(None, admin=session.admin)
            return None
        return session


def web(request: Request) -> WebState:
    """The app's state (a FastAPI dependency)."""
    return request.app.state.web
