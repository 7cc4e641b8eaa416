"""The admins' review page: `contacts serve`. Server-rendered; every action is a POST.

It calls the same `dedup.service.review` functions as the CLI. State-changing requests need the CSRF
token of the page they came from (double-submit: a random cookie, SameSite=Strict, echoed in a
hidden field), and every value is escaped by Jinja's autoescaping, so a visitor who typed
`<script>` as their name shows up as text.
"""

from __future__ import annotations

import getpass
import hmac
import secrets
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from contacts.web.api import build_router, install_error_handlers
from dedup.properties import load_schema
from dedup.service import review
from dedup.snapshot.analyst import CONTACT_LIST_COLUMNS

CSRF_COOKIE = "contacts_csrf"
PAGE_SIZE = 50
# Columns people may show on the Contacts page, and the default set (the seed's list columns).
LIST_COLUMNS = (*CONTACT_LIST_COLUMNS, "phone", "company", "first_seen", "is_lead")
DEFAULT_COLUMNS = CONTACT_LIST_COLUMNS
TEMPLATES = Path(__file__).parent / "templates"


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
    app.include_router(build_router(db, requests_per_minute, load_schema(properties_file)))
    install_error_handlers(app)
    templates = Jinja2Templates(directory=str(TEMPLATES))
    who = admin or f"{getpass.getuser()} (web)"

    def render(request: Request, name: str, status_code: int = 200, **context) -> Response:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        response = templates.TemplateResponse(
            request,
            name,
            {"csrf_token": token, "db": db, "message": request.query_params.get("msg"), **context},
            status_code=status_code,
        )
        if request.cookies.get(CSRF_COOKIE) != token:
            response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict")
        return response

    def failed(request: Request, message: str, status_code: int = 400) -> Response:
        return render(request, "error.html", status_code=status_code, error=message)

    def csrf_ok(request: Request, token: str | None) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE)
        return bool(cookie and token and hmac.compare_digest(cookie, token))

    def go(path: str, msg: str | None = None) -> RedirectResponse:
        return RedirectResponse(path + (f"?{urlencode({'msg': msg})}" if msg else ""), 303)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/proposals", 303)

    @app.get("/proposals", response_class=HTMLResponse, include_in_schema=False)
    def queue(
        request: Request, status: str = "pending", min_probability: float = 0.0, q: str = ""
    ) -> Response:
        try:
            rows = review.review_queue(db, status, min_probability, 200, q or None)
        except review.ReviewError as exc:
            return failed(request, str(exc))
        return render(
            request, "queue.html", rows=rows, status=status, min_probability=min_probability, q=q
        )

    @app.get("/proposals/{proposal_id}", response_class=HTMLResponse, include_in_schema=False)
    def card(request: Request, proposal_id: str) -> Response:
        try:
            data = review.proposal_card(db, proposal_id)
        except review.ReviewError as exc:
            return failed(request, str(exc), 404)
        return render(request, "card.html", next_id=review.next_pending(db, proposal_id), **data)

    def after_decision(proposal_id: str, msg: str) -> RedirectResponse:
        following = review.next_pending(db, proposal_id)
        return go(f"/proposals/{following}" if following else "/proposals", msg)

    def act(request: Request, csrf_token: str, action, done) -> Response:
        """Every state change: the page's token first, then the action, then where to go."""
        if not csrf_ok(request, csrf_token):
            return failed(
                request, "missing or wrong form token; reload the page and try again", 403
            )
        try:
            action()
        except review.ReviewError as exc:
            return failed(request, str(exc))
        return done()

    @app.post("/proposals/{proposal_id}/accept", include_in_schema=False)
    def accept(
        request: Request,
        proposal_id: str,
        survivor: str = Form(...),
        note: str = Form(""),
        csrf_token: str = Form(""),
    ) -> Response:
        return act(
            request,
            csrf_token,
            lambda: review.accept_proposal(db, proposal_id, survivor, note or None, who),
            lambda: after_decision(
                proposal_id, f"accepted {proposal_id}: {survivor} survives (next run)"
            ),
        )

    @app.post("/proposals/{proposal_id}/reject", include_in_schema=False)
    def reject(
        request: Request, proposal_id: str, note: str = Form(""), csrf_token: str = Form("")
    ) -> Response:
        return act(
            request,
            csrf_token,
            lambda: review.reject_proposal(db, proposal_id, note or None, who),
            lambda: after_decision(proposal_id, f"rejected {proposal_id} (next run)"),
        )

    @app.get("/contacts", response_class=HTMLResponse, include_in_schema=False)
    def contact_list(
        request: Request,
        q: str = "",
        tag: str = "",
        channel: str = "",
        audience: str = "",
        cols: str = "",
        page: int = 1,
    ) -> Response:
        """The Contacts page: search and filters (dedup.service.search) with chosen, ordered columns."""
        from dedup.service.search import ContactFilter, FilterError, count, search

        columns = [c for c in cols.split(",") if c in LIST_COLUMNS] or list(DEFAULT_COLUMNS)
        if "contact_id" not in columns:
            columns.insert(0, "contact_id")
        page = max(page, 1)
        try:
            flt = ContactFilter(
                text=q or None,
                has_tags=(tag,) if tag else (),
                engaged=(channel,) if channel else (),
                audience=audience or None,
            )
            hidden = review.hidden_ids(db)
            with review.published(db) as con:
                total = count(con, flt, hidden=hidden)
                rows = search(
                    con, flt, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, hidden=hidden
                ).to_dicts()
        except (FilterError, review.ReviewError) as exc:
            return failed(request, str(exc))
        return render(
            request,
            "contacts.html",
            rows=rows,
            columns=columns,
            all_columns=[*columns, *(c for c in LIST_COLUMNS if c not in columns)],
            total=total,
            page=page,
            pages=max(1, -(-total // PAGE_SIZE)),
            q=q,
            tag=tag,
            channel=channel,
            audience=audience,
            cols=",".join(columns),
        )

    @app.get("/contacts/{contact_id}", response_class=HTMLResponse, include_in_schema=False)
    def contact(request: Request, contact_id: str) -> Response:
        try:
            data = review.contact_detail(db, contact_id)
        except review.ReviewError as exc:
            return failed(request, str(exc), 404)
        return render(request, "contact.html", **data)

    @app.post("/contacts/{contact_id}/notes", include_in_schema=False)
    def note(
        request: Request, contact_id: str, text: str = Form(""), csrf_token: str = Form("")
    ) -> Response:
        return act(
            request,
            csrf_token,
            lambda: review.add_note(db, contact_id, text, who),
            lambda: go(f"/contacts/{contact_id}", "note added"),
        )

    @app.post("/contacts/delete", include_in_schema=False)
    def delete(
        request: Request,
        contact_id: list[str] | None = Form(None),  # noqa: B008 - FastAPI's own idiom
        csrf_token: str = Form(""),
    ) -> Response:
        """Delete the ticked contacts (or one, from its page): hidden now, restorable 30 days."""
        return act(
            request,
            csrf_token,
            lambda: review.delete_contacts(db, contact_id or [], who),
            lambda: go(
                "/contacts",
                f"deleted {len(contact_id or [])} contact(s); restore them from Deleted within 30 days",
            ),
        )

    @app.get("/deleted", response_class=HTMLResponse, include_in_schema=False)
    def deleted(request: Request) -> Response:
        try:
            rows = review.trash(db)
        except review.ReviewError as exc:
            return failed(request, str(exc))
        return render(request, "deleted.html", rows=rows)

    @app.post("/deleted/restore", include_in_schema=False)
    def restore(
        request: Request,
        contact_id: list[str] | None = Form(None),  # noqa: B008 - FastAPI's own idiom
        csrf_token: str = Form(""),
    ) -> Response:
        return act(
            request,
            csrf_token,
            lambda: review.restore_contacts(db, contact_id or [], who),
            lambda: go(
                "/deleted",
                f"restoring {len(contact_id or [])} contact(s): they return as they were at the next run",
            ),
        )

    @app.post("/merges/{merge_id}/unmerge", include_in_schema=False)
    def undo(
        request: Request, merge_id: str, contact_id: str = Form(...), csrf_token: str = Form("")
    ) -> Response:
        return act(
            request,
            csrf_token,
            lambda: review.unmerge(db, merge_id, None, who),
            lambda: go(
                f"/contacts/{contact_id}",
                f"undoing {merge_id}: both contacts return at the next run",
            ),
        )

    return app
