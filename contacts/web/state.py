"""What every route of the web app reads: the published file, templates, limits, declared properties.

One `WebState` per app, kept in `app.state.web` by `create_app`; handlers reach it through the
`web` dependency, so a handler can be imported and called with any app that holds one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates

from dedup.properties import Property

TEMPLATES = Path(__file__).parent / "templates"


class ApiError(Exception):
    """An error answered as `{"error": message}` with its status (and headers, e.g. Retry-After)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class RateLimiter:
    """At most `per_minute` requests per key in any 60-second window."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self.seen: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def check(self, key_id: str) -> None:
        now = time.monotonic()
        with self.lock:
            window = self.seen.setdefault(key_id, deque())
            while window and now - window[0] >= 60:
                window.popleft()
            if len(window) >= self.per_minute:
                retry = max(1, int(60 - (now - window[0])) + 1)
                raise ApiError(
                    429,
                    f"rate limit of {self.per_minute} requests per minute reached",
                    {"Retry-After": str(retry)},
                )
            window.append(now)


@dataclass
class WebState:
    db: Path
    who: str
    limiter: RateLimiter
    properties: dict[str, Property] = field(default_factory=dict)
    templates: Jinja2Templates = field(
        default_factory=lambda: Jinja2Templates(directory=str(TEMPLATES))
    )


def web(request: Request) -> WebState:
    """The app's state (a FastAPI dependency)."""
    return request.app.state.web
