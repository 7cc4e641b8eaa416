"""The review page's routes: proposals (queue, cards, groups), Contacts, contact pages, Deleted.

Server-rendered; every action is a POST that calls the same `dedup.service.review` function as
the CLI. State-changing requests need the CSRF token of the page they came from (double-submit: a
random cookie, SameSite=Strict, echoed in a hidden field), and every value is escaped by Jinja's
autoescaping, so a visitor who typed `<script>` as their name shows up as text.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from contacts.web.api import docids_are_contacts, snapshot_of
from contacts.web.sessions import SESSION_COOKIE, Session
from contacts.web.state import WebState, state_of, web
from dedup.service import review, review_groups
from dedup.service.search import ContactFilter, FilterError, count, ranked_docids, search
from dedup.snapshot.analyst import CONTACT_LIST_COLUMNS, CONTACT_VIEW_COLUMNS

CSRF_COOKIE = "contacts_csrf"
PAGE_SIZE = 50
# The Contacts list pages beyond this are refused (a clear 400, not an overflowing OFFSET).
MAX_PAGE = 100_000
# Columns people may show on the Contacts page (the `contact_list` view's), and the default set.
LIST_COLUMNS = CONTACT_VIEW_COLUMNS
DEFAULT_COLUMNS = CONTACT_LIST_COLUMNS
# What a page shows for `?msg=` without a session: only these, never the parameter's own text.
NOTICES = {"signed-out": "Signed out.", "expired": "Your session ended; sign in again."}

router = APIRouter(include_in_schema=False)
State = Annotated[WebState, Depends(web)]
# Ticked checkboxes of a list form (none ticked: the field is absent).
ContactIds = Annotated[list[str] | None, Form()]


_UNSET = object()


def current_session(request: Request) -> Session | None:
    """The signed-in admin's session (found by `Guard`, or looked up here), else None."""
    if getattr(request.state, "session", _UNSET) is _UNSET:
        request.state.session = state_of(request).signed_in(request.cookies.get(SESSION_COOKIE))
    return request.state.session


async def signed_in(request: Request) -> Session:
    """A FastAPI dependency: the admin's session; 401 without one (Guard redirects GETs first).
    A coroutine: FastAPI would run a plain function in its thread pool."""
    session = current_session(request)
    if session is None:
        raise HTTPException(401, "sign in first (/login)")
    return session


Admin = Annotated[Session, Depends(signed_in)]


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """A page, with the CSRF cookie its forms echo (the session's token once signed in)."""
    state, session = state_of(request), current_session(request)
    cookie = request.cookies.get(CSRF_COOKIE)
    token = session.csrf if session else cookie or secrets.token_urlsafe(32)
    code = request.query_params.get("msg", "")
    message = session.messages.get(code) if session else None
    response = state.templates.TemplateResponse(
        request,
        name,
        {
            "csrf_token": token,
            "db": state.db if session else None,
            "admin": session.admin if session else None,
            "message": message or NOTICES.get(code),
            **context,
        },
        status_code=status_code,
    )
    if cookie != token:
        set_cookie(request, response, CSRF_COOKIE, token)
    return response


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    """`HttpOnly; SameSite=Strict`, and `Secure` when the page is served over https."""
    secure = request.url.scheme == "https"
    response.set_cookie(name, value, httponly=True, samesite="strict", secure=secure)


def failed(request: Request, message: str, status_code: int = 400) -> Response:
    return render(request, "error.html", status_code=status_code, error=message)


def csrf_ok(request: Request, token: str | None) -> bool:
    """The form's token equals the cookie's and, once signed in, the session's."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not (cookie and token and hmac.compare_digest(cookie, token)):
        return False
    session = current_session(request)
    return session is None or hmac.compare_digest(session.csrf, token)


def go(session: Session | None, path: str, msg: str | None = None) -> RedirectResponse:
    """Redirect after a POST; `msg` is kept in the session and named by a code in `?msg=`."""
    code = session.issue(msg) if session and msg else None
    return RedirectResponse(path + (f"?{urlencode({'msg': code})}" if code else ""), 303)


def act(
    request: Request,
    csrf_token: str,
    action: Callable[[], object],
    done: Callable[[], Response],
) -> Response:
    """Every state change: the page's token first, then the action, then where to go."""
    if not csrf_ok(request, csrf_token):
        return failed(request, "missing or wrong form token; reload the page and try again", 403)
    try:
        action()
    except review.ReviewError as exc:
        return failed(request, str(exc))
    return done()


def after_decision(state: WebState, admin: Session, proposal_id: str, msg: str) -> Response:
    """To the next pending proposal (or the queue), with what was decided."""
    following = review.next_pending(state.db, proposal_id)
    return go(admin, f"/proposals/{following}" if following else "/proposals", msg)


@router.get("/")
def home(admin: Admin) -> RedirectResponse:
    return RedirectResponse("/proposals", 303)


@router.get("/proposals", response_class=HTMLResponse)
def queue(
    request: Request,
    state: State,
    admin: Admin,
    status: str = "pending",
    min_probability: float = 0.0,
    q: str = "",
) -> Response:
    """Pending proposals by person (a group per set of contacts they connect); other statuses
    pair by pair."""
    try:
        if status == "pending":
            rows = review_groups.proposal_groups(state.db, min_probability, q or None, 200)
        else:
            rows = review.review_queue(state.db, status, min_probability, 200, q or None)
    except review.ReviewError as exc:
        return failed(request, str(exc))
    return render(
        request, "queue.html", rows=rows, status=status, min_probability=min_probability, q=q
    )


@router.get("/proposals/{proposal_id}", response_class=HTMLResponse)
def card(request: Request, state: State, admin: Admin, proposal_id: str) -> Response:
    try:
        data = review.proposal_card(state.db, proposal_id)
        words = review_groups.words_for(state.db, data["proposal"])
        group_size = review_groups.group_size(state.db, proposal_id)
    except review.ReviewError as exc:
        return failed(request, str(exc), 404)
    return render(
        request,
        "card.html",
        next_id=review.next_pending(state.db, proposal_id),
        words=words,
        group_size=group_size,
        **data,
    )


@router.get("/groups/{proposal_id}", response_class=HTMLResponse)
def group(request: Request, state: State, admin: Admin, proposal_id: str) -> Response:
    """Every contact the group of `proposal_id` connects, side by side, decided at once."""
    try:
        data = review_groups.proposal_group(state.db, proposal_id)
    except review.ReviewError as exc:
        return failed(request, str(exc), 404)
    return render(request, "group.html", **data)


@router.post("/groups/{proposal_id}/decide")
def decide_group(
    request: Request,
    state: State,
    admin: Admin,
    proposal_id: str,
    action: Annotated[str, Form()],
    survivor: Annotated[str, Form()] = "",
    shown: Annotated[list[str] | None, Form()] = None,
    pick: Annotated[list[str] | None, Form()] = None,
    note: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """One action for the whole group: accept all into `survivor`, reject all, or `split` by
    the per-proposal `pick` values (`accept:<id>`, `reject:<id>`, `leave:<id>`)."""
    picks = {pid: choice for choice, _, pid in (v.partition(":") for v in pick or [])}
    done: list[str] = []
    return act(
        request,
        csrf_token,
        lambda: done.extend(
            review_groups.decide_group(
                state.db,
                proposal_id,
                action,
                survivor or None,
                picks,
                shown or [],
                note or None,
                admin.who,
            )
        ),
        lambda: go(
            admin,
            "/proposals",
            f"group of {proposal_id}: {len(done)} decision(s) ({action}"
            + (f", {survivor} survives" if action == "accept" else "")
            + "); they take effect at the next run",
        ),
    )


@router.post("/proposals/{proposal_id}/accept")
def accept(
    request: Request,
    state: State,
    admin: Admin,
    proposal_id: str,
    survivor: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    return act(
        request,
        csrf_token,
        lambda: review.accept_proposal(state.db, proposal_id, survivor, note or None, admin.who),
        lambda: after_decision(
            state, admin, proposal_id, f"accepted {proposal_id}: {survivor} survives (next run)"
        ),
    )


@router.post("/proposals/{proposal_id}/reject")
def reject(
    request: Request,
    state: State,
    admin: Admin,
    proposal_id: str,
    note: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    return act(
        request,
        csrf_token,
        lambda: review.reject_proposal(state.db, proposal_id, note or None, admin.who),
        lambda: after_decision(state, admin, proposal_id, f"rejected {proposal_id} (next run)"),
    )


def _chosen_columns(cols: str) -> list[str]:
    columns = [c for c in cols.split(",") if c in LIST_COLUMNS] or list(DEFAULT_COLUMNS)
    if "contact_id" not in columns:
        columns.insert(0, "contact_id")
    return columns


@router.get("/contacts", response_class=HTMLResponse)
def contact_list(
    request: Request,
    state: State,
    admin: Admin,
    q: str = "",
    tag: str = "",
    channel: str = "",
    audience: str = "",
    cols: str = "",
    page: int = 1,
) -> Response:
    """The Contacts page: search and filters (dedup.service.search) with chosen, ordered columns."""
    columns = _chosen_columns(cols)
    if page > MAX_PAGE:
        return failed(request, f"page {page} is past the last page a list can have ({MAX_PAGE})")
    page = max(page, 1)
    try:
        flt = ContactFilter(
            text=q or None,
            has_tags=(tag,) if tag else (),
            engaged=(channel,) if channel else (),
            audience=audience or None,
        )
        hidden = review.hidden_ids(state.db)
        with review.published(state.db) as con:
            found = ranked_text_page(state.db, con, flt, hidden, (page - 1) * PAGE_SIZE)
            if found is not None:
                total, rows = found
            else:
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


def ranked_text_page(
    db, con, flt: ContactFilter, hidden: set[str], offset: int
) -> tuple[int, list[dict]] | None:
    """A text-only search's count and page, best match first, straight from the postings in
    word order (search.ranked_docids), or None where that does not apply (other filters, a file
    without the postings in contact_id order, the contact index not built yet): the same
    contacts in the same order as `search`, without joining every match to the contacts."""
    if not flt.text or not replace(flt, text=None).is_empty():
        return None
    snap = snapshot_of(db)
    index = snap.index(wait=False) if snap is not None else None
    if snap is None or index is None or not docids_are_contacts(snap, index):
        return None
    skip = [at for at in map(index.position, hidden) if at is not None]
    total, docids = ranked_docids(con, flt.text, skip, offset, PAGE_SIZE)
    if not docids:
        return total, []
    by_id: dict[str, dict] = {}
    for near in _near(sorted(int(index.rowids[d]) for d in docids)):
        # Both bounds: DuckDB prunes row groups by a range, not by an IN list's values.
        rel = con.execute(
            f"SELECT {', '.join(CONTACT_VIEW_COLUMNS)} FROM contacts "
            f"WHERE rowid BETWEEN {near[0]} AND {near[-1]} "
            f"AND rowid IN ({', '.join(map(str, near))})"
        )
        names = [d[0] for d in rel.description]
        by_id.update((r[0], dict(zip(names, r, strict=True))) for r in rel.fetchall())
    return total, [by_id[index.ids[d].decode()] for d in docids]


# DuckDB's rows per row group: row ids this close share one or two row groups.
ROW_GROUP = 122_880


def _near(rowids: list[int]) -> list[list[int]]:
    """Sorted row ids cut where two are a row group apart or more."""
    runs: list[list[int]] = []
    for r in rowids:
        if runs and r - runs[-1][0] < ROW_GROUP:
            runs[-1].append(r)
        else:
            runs.append([r])
    return runs


@router.get("/contacts/{contact_id}", response_class=HTMLResponse)
def contact(request: Request, state: State, admin: Admin, contact_id: str) -> Response:
    try:
        data = review.contact_detail(state.db, contact_id)
    except review.ReviewError as exc:
        return failed(request, str(exc), 404)
    return render(request, "contact.html", **data)


@router.post("/contacts/{contact_id}/notes")
def note(
    request: Request,
    state: State,
    admin: Admin,
    contact_id: str,
    text: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    return act(
        request,
        csrf_token,
        lambda: review.add_note(state.db, contact_id, text, admin.who),
        lambda: go(admin, f"/contacts/{contact_id}", "note added"),
    )


@router.post("/contacts/delete")
def delete(
    request: Request,
    state: State,
    admin: Admin,
    contact_id: ContactIds = None,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Delete the ticked contacts (or one, from its page): hidden now, restorable 30 days."""
    return act(
        request,
        csrf_token,
        lambda: review.delete_contacts(state.db, contact_id or [], admin.who),
        lambda: go(
            admin,
            "/contacts",
            f"deleted {len(contact_id or [])} contact(s); restore them from Deleted within 30 days",
        ),
    )


@router.get("/deleted", response_class=HTMLResponse)
def deleted(request: Request, state: State, admin: Admin) -> Response:
    try:
        rows = review.trash(state.db)
    except review.ReviewError as exc:
        return failed(request, str(exc))
    return render(request, "deleted.html", rows=rows)


@router.post("/deleted/restore")
def restore(
    request: Request,
    state: State,
    admin: Admin,
    contact_id: ContactIds = None,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    return act(
        request,
        csrf_token,
        lambda: review.restore_contacts(state.db, contact_id or [], admin.who),
        lambda: go(
            admin,
            "/deleted",
            f"restoring {len(contact_id or [])} contact(s): they return as they were at the next run",
        ),
    )


@router.post("/merges/{merge_id}/unmerge")
def undo(
    request: Request,
    state: State,
    admin: Admin,
    merge_id: str,
    contact_id: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    return act(
        request,
        csrf_token,
        lambda: review.unmerge(state.db, merge_id, None, admin.who),
        lambda: go(
            admin,
            f"/contacts/{contact_id}",
            f"undoing {merge_id}: both contacts return at the next run",
        ),
    )
