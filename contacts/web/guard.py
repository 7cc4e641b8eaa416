"""Who may reach a route, decided before any request body is read.

`Guard` is the app's inner middleware (Starlette's `TrustedHostMiddleware` sits outside it and
refuses unknown `Host` headers, the DNS-rebinding defence). For every request, in this order:

1. `/v1/...` needs a valid API key (401, rate-limited per client address after failures) and
   counts against its key's rate limit (429);
2. every other path but the sign-in page needs a signed-in admin: a GET is sent to `/login`,
   anything else is refused with 401;
3. a body larger than `MAX_BODY` is refused with 413 (by its Content-Length, or while it streams).

So an unauthenticated client can never make the server read, parse or hold a large body.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contacts.web.sessions import SESSION_COOKIE
from contacts.web.state import ApiError, WebState

# Far above any legitimate request (a bulk action on 200 ids, a PATCH of 50 attributes, a
# sign-in form are a few KiB to a few hundred KiB) and far below what hurts the server.
MAX_BODY = 1024 * 1024
# Reachable without signing in: the sign-in page and the API's OpenAPI document (no data).
PUBLIC = frozenset({"/login", "/openapi.json"})


class BodyTooLarge(HTTPException):
    """Raised while the body streams; an HTTPException, so FastAPI's body parsing passes it on."""

    def __init__(self) -> None:
        super().__init__(413, f"request body larger than {MAX_BODY // 1024} KiB")


def is_api(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def api_error(exc: ApiError) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)


def _too_large(path: str) -> Response:
    message = f"request body larger than {MAX_BODY // 1024} KiB"
    if is_api(path):
        return JSONResponse({"error": message}, status_code=413)
    return PlainTextResponse(message, status_code=413)


def _declared_too_large(headers: Headers) -> bool:
    length = headers.get("content-length")
    if length is None:
        return False
    return not length.isdigit() or int(length) > MAX_BODY


class Guard:
    """Pure ASGI middleware: the body cap and authentication, before the app reads anything."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)  # headers, cookies and client only; the body is not touched
        refusal = self.refuse(request, scope["app"].state.web)
        if refusal is None and _declared_too_large(request.headers):
            refusal = _too_large(request.url.path)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self._capped(scope, receive, send)

    def refuse(self, request: Request, state: WebState) -> Response | None:
        """The response that refuses `request`, or None (then `request.state` says who it is)."""
        from contacts.web.api import api_caller

        path = request.scope["path"]  # not request.url.path: building the URL costs a parse
        if is_api(path):
            try:
                request.state.api_key = api_caller(
                    state, request.headers.get("authorization"), request
                )
            except ApiError as exc:
                return api_error(exc)
            return None
        request.state.session = state.signed_in(request.cookies.get(SESSION_COOKIE))
        if request.state.session is not None or path in PUBLIC:
            return None
        if request.method in ("GET", "HEAD"):
            return RedirectResponse("/login?" + urlencode({"next": path}), 303)
        return PlainTextResponse("sign in first (/login)", status_code=401)

    async def _capped(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, refusing with 413 once the streamed body passes MAX_BODY."""
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY:
                    raise BodyTooLarge
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except BodyTooLarge:
            if started:
                raise
            await _too_large(scope["path"])(scope, receive, sending)
