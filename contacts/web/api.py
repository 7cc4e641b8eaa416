"""The Contact API (`/v1/contacts`), served by `contacts serve` beside the review page.

Reads come from the published file with the decision log's pending edits laid on top (an edit is
visible at once and kept by every later run); writes are decisions (`dedup.service.review`), the same
path the CLI takes. Auth is `Authorization: Bearer ak_...` (`contacts apikey create`), scoped
read or write, rate-limited per key. Errors are JSON: `{"error": "..."}`.
"""

import bisect
import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import duckdb
import orjson
import polars as pl
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from contacts.web.state import ApiError, WebState, web
from dedup.admin.contact_edits import apply_contact_edits
from dedup.decisions import DECISIONS_SCHEMA
from dedup.properties import validate
from dedup.schema import CHANNELS, MAX_ATTRIBUTE_KEYS, MAX_TAGS
from dedup.service import read_cache, review, search
from dedup.service.apikeys import ApiKey, authenticate
from dedup.service.read_ahead import ReadAhead
from dedup.service.search import ContactFilter, FilterError, load_fts, matching_ids, page_sql

Channel = Literal["widget", "whatsapp", "slack", "email", "sms", "api"]
assert set(Channel.__args__) == set(CHANNELS)  # one list of channels: dedup.schema

MAX_PAGE = 200
DEFAULT_PAGE = 50


class Contact(BaseModel):
    contact_id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    company: str | None = None
    channels: list[str] = []
    audience: str | None = None
    identity_verified: bool = False
    user_id: str | None = None
    conversation_count: int = 0
    last_conversation_at: datetime | None = None
    tags: list[str] = []
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    crm_sync_status: str | None = None
    attributes: dict[str, Any] = {}
    is_lead: bool = False
    merged_from: str | None = Field(
        None, description="The id asked for, when it was merged into this contact."
    )
    pending: list[str] = Field([], description="Kinds of decisions not yet applied by a run.")


class ContactPage(BaseModel):
    data: list[Contact]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")


class ContactPatch(BaseModel):
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        None, max_length=MAX_TAGS, description="The contact's tags, exactly (replaces)."
    )
    audience: str | None = None
    attributes: dict[Annotated[str, Field(min_length=1, max_length=100)], Any] | None = Field(
        None, max_length=MAX_ATTRIBUTE_KEYS, description="Keys to set; null unsets a key."
    )


class Erasure(BaseModel):
    request_id: str
    status: Literal["accepted"] = "accepted"


class BulkRequest(BaseModel):
    # The review service's bulk actions, and `restore` (the undo of `delete`, its own call).
    action: Literal[(*review.BULK_ACTIONS, "restore")] = Field(  # type: ignore[valid-type]
        description="`delete` hides the contacts (restorable for 30 days); `restore` undoes it."
    )
    value: str | None = None
    contact_ids: list[str] = Field(min_length=1, max_length=review.MAX_BULK)


class BulkResult(BaseModel):
    action: str
    contacts: int


class Error(BaseModel):
    error: str


ERRORS = {
    400: {"model": Error},
    401: {"model": Error},
    403: {"model": Error},
    404: {"model": Error},
    429: {"model": Error},
    503: {"model": Error},
}

# One list of a contact's fields: dedup.service.review.PROFILE_FIELDS (the contact page's too).
CONTACT_COLUMNS = review.PROFILE_FIELDS
assert (
    tuple(f for f in Contact.model_fields if f not in ("merged_from", "pending")) == CONTACT_COLUMNS
)
SELECT_CONTACT = ", ".join(
    "attributes::VARCHAR AS attributes" if c == "attributes" else c for c in CONTACT_COLUMNS
)
# Timestamps are read as UTC wall time and given their zone in Python (`_as_dict`): DuckDB
# hands a TIMESTAMPTZ to Python through pytz, ~1.2 ms of a 50-row page's ~5 ms of CPU. The
# conversion wraps the query (`_fetch`): in its select list DuckDB converted every row before a
# top-N (a first page by contact_id at 2.2M contacts: 0.4 s became 3 s).
UTC_COLUMNS = frozenset(
    name for name, field in Contact.model_fields.items() if field.annotation == datetime | None
)
_AS_UTC = "SELECT * REPLACE ({}) FROM ({{}})".format(
    ", ".join(f"timezone('UTC', {c}) AS {c}" for c in sorted(UTC_COLUMNS))
)


def _pending(db: Path) -> tuple[pl.DataFrame, frozenset[str]]:
    """The pending decisions as a frame, and the contacts they name (`contact_id_l`); rebuilt
    only when the log or the published file changed."""

    def load() -> tuple[pl.DataFrame, frozenset[str]]:
        rows = review.pending_decisions(db)
        frame = (
            pl.DataFrame(rows, schema=DECISIONS_SCHEMA)
            if rows
            else pl.DataFrame(schema=DECISIONS_SCHEMA)
        )
        return frame, frozenset(r["contact_id_l"] for r in rows if r["contact_id_l"])

    return read_cache.CACHE.get(("pending_frame", db), review.pending_files(db), load)


def _fetch(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[dict]:
    """Rows as dicts: a page is read as Python rows, not a Polars frame (the frame and its trip
    through Arrow cost ~3 ms of a 50-row page; docs/performance.md). `sql` selects
    SELECT_CONTACT; its order is kept (a projection over it)."""
    cur = con.execute(_AS_UTC.format(sql), params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _as_contacts(con: duckdb.DuckDBPyConnection, rows: list[dict], db: Path) -> list[dict]:
    """Rows of `contacts` with pending edits laid on top, as API dicts."""
    pending, edited = _pending(db)
    # Only these rows' decisions matter (no redirects: each names its contact); none, no work.
    if not edited.intersection(r["contact_id"] for r in rows):
        return [_as_dict(row, []) for row in rows]
    # The frame takes the columns' own types (a zero-row read), not ones guessed from values.
    schema = (
        con.execute(_AS_UTC.format(f"SELECT {SELECT_CONTACT} FROM contacts LIMIT 0")).pl().schema
    )
    frame = pl.DataFrame([tuple(r.values()) for r in rows], schema=schema, orient="row")
    pending = pending.filter(pl.col("contact_id_l").is_in(frame.get_column("contact_id").to_list()))
    no_redirects = pl.DataFrame(schema={"from_contact_id": pl.String, "to_contact_id": pl.String})
    edited_rows = apply_contact_edits(frame, pending, no_redirects, pending["decision_id"])
    kinds = pending.group_by("contact_id_l").agg(pl.col("kind").unique().sort())
    kinds_of = dict(kinds.iter_rows())
    return [
        _as_dict(row, kinds_of.get(row["contact_id"], []))
        for row in edited_rows.iter_rows(named=True)
    ]


def _as_dict(row: dict, pending: list[str]) -> dict:
    attributes = row.get("attributes")
    row["attributes"] = (
        orjson.loads(attributes) if isinstance(attributes, str) and attributes else {}
    )
    for column in UTC_COLUMNS:
        if row[column] is not None:
            row[column] = row[column].replace(tzinfo=UTC)
    row["pending"] = pending
    return row


router = APIRouter(prefix="/v1", tags=["contacts"])


def api_caller(state: WebState, authorization: str | None, request: Request) -> ApiKey:
    """The API key of a request (401 without a valid one), counted against its rate limit.

    Called by `guard.Guard` before the body is read; a client's failed attempts are counted too.
    """
    scheme, _, token = (authorization or "").partition(" ")
    key = authenticate(state.api_keys_path, token.strip()) if scheme.lower() == "bearer" else None
    if key is None:
        state.limiter.check_failure("API keys", request.client.host if request.client else "")
        raise ApiError(401, "missing or invalid API key (Authorization: Bearer ak_...)")
    state.limiter.check(key.key_id)
    return key


async def caller(
    request: Request,
    state: Annotated[WebState, Depends(web)],
    authorization: Annotated[str | None, Header()] = None,
) -> ApiKey:
    """The request's API key: the one `Guard` found, or (a router used without it) checked here.
    Coroutines, this and `writer`: FastAPI would run a plain function in its thread pool."""
    key = getattr(request.state, "api_key", None)
    return key if key is not None else api_caller(state, authorization, request)


async def writer(key: Annotated[ApiKey, Depends(caller)]) -> ApiKey:
    if key.scope != "write":
        raise ApiError(403, f"API key {key.key_id} is read-only")
    return key


def snapshot_of(db: Path) -> read_cache.Snapshot | None:
    """The process's shared view of the published file (None: each read opens its own)."""
    return _snapshot(db)


def _snapshot(db: Path) -> read_cache.Snapshot | None:
    """The process's shared view of the published file (None: each read opens its own)."""
    reader = read_cache.shared_reader(db)
    if reader is None:
        return None
    try:
        return reader.snapshot()
    except FileNotFoundError:
        raise ApiError(503, f"no published file at {db}") from None


@contextmanager
def _reading(db: Path, snap: read_cache.Snapshot | None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection on `snap` (the file its index was built from), or one of its own."""
    if snap is None:
        with review.published(db) as con:
            yield con
        return
    yield snap.thread_cursor()


def one(db: Path, contact_id: str) -> tuple[dict, str | None]:
    """A visible contact (redirects followed) with pending edits, and the id asked for if merged."""
    snap = _snapshot(db)
    try:
        with _reading(db, snap) as con:
            live, rows = contact_id, _row_of(con, snap, contact_id)
            if not rows:  # not a live id: a merged-away one, a deleted one, or none
                live = review.live_contact(con, contact_id)
                rows = _row_of(con, snap, live)
            review.require_visible(db, live)
            row = _as_contacts(con, rows, db)[0]
    except review.ReviewError as exc:
        raise ApiError(404, str(exc)) from None
    return row, (contact_id if live != contact_id else None)


# Reads that cost little run on the event loop: no thread hop, and requests served in the order
# they came (in the thread pool twenty reads contended for the GIL). A contact by id (kept in
# the file's row memo, or one row read through the contact_id index: ~1-4 ms at 2.2M contacts)
# and a kept page; a page read from the file or a full-text page (10-40 ms at 2.2M) goes to the
# thread pool, where DuckDB works without holding the loop. On the demo load: server CPU per
# request 1.8 -> 1.2-1.4 ms, p99 140-170 -> 60-70 ms (docs/performance.md, session 15).


def kept_page(
    db: Path, flt: ContactFilter, limit: int, cursor: str | None
) -> tuple[list[dict], str | None] | None:
    """`_page(...)` when that page is kept in the file's row memo (a filter's first page, a page
    asked again) and none of its contacts has a pending edit; None otherwise."""
    snap = _snapshot(db) if not flt.text else None
    if snap is None:
        return None
    scope = (snap.version, flt, frozenset(review.hidden_ids(db)))
    if READ_AHEAD.continues(scope, cursor):
        return None  # a walk: its next rows may be kept by the read-ahead, read there
    rows = snap.rows.get(_page_key(scope, cursor, limit))
    if rows is None or not _pending(db)[1].isdisjoint(r["contact_id"] for r in rows):
        return None
    _hand_out(scope, rows, limit, complete=len(rows) <= limit)
    following = rows[limit - 1]["contact_id"] if len(rows) > limit else None
    return [_as_dict(row, []) for row in rows[:limit]], following


def _row_of(con, snap: read_cache.Snapshot | None, contact_id: str) -> list[dict]:
    """The `contacts` row of `contact_id` ([] when none): through the file's ART index on
    contact_id (the row alone is fetched), else by row id from the contact index (one row
    group is scanned), else by a scan of the table (an older file, the index still building)."""
    if snap is None:
        return _fetch(
            con, f"SELECT {SELECT_CONTACT} FROM contacts WHERE contact_id = ?", [contact_id]
        )
    rows = snap.rows.get(("id", contact_id))
    if rows is None:
        rows = _read_row(con, snap, contact_id)
        snap.rows.put(("id", contact_id), rows)
    return rows


def _read_row(con, snap: read_cache.Snapshot, contact_id: str) -> list[dict]:
    if not snap.memo("id_index", search.has_id_index):
        index = snap.index(wait=False)
        if index is not None:
            rowid = index.rowid(contact_id)
            if rowid is None:
                return []
            return _fetch(con, f"SELECT {SELECT_CONTACT} FROM contacts WHERE rowid = ?", [rowid])
    return _fetch(con, f"SELECT {SELECT_CONTACT} FROM contacts WHERE contact_id = ?", [contact_id])


def _page(
    db: Path, flt: ContactFilter, limit: int, cursor: str | None
) -> tuple[list[dict], str | None]:
    """The page's contacts (pending edits laid on) and the next page's cursor (None: the last).

    One keyset query over `contacts` (`search.page_sql`): no sort of the whole table per page.
    """
    snap = _snapshot(db)
    index = snap.index(wait=False) if snap is not None else None
    hidden = review.hidden_ids(db)
    try:
        with _reading(db, snap) as con:
            if flt.text:
                load_fts(con)
            if index is not None and snap is not None and flt.text:
                rows = _text_page(con, snap, flt, limit + 1, cursor, hidden)
            elif snap is not None:
                rows = _walk_page(con, snap, index, flt, limit, cursor, hidden)
            else:
                rows = _keyset_page(con, index, flt, limit + 1, cursor, hidden)
            following = rows[limit - 1]["contact_id"] if len(rows) > limit else None
            return _as_contacts(con, rows[:limit], db), following
    except FilterError as exc:
        raise ApiError(400, str(exc)) from None
    except review.ReviewError as exc:
        raise ApiError(503, str(exc)) from None


# A page that continues a cursor this process handed out reads this many rows and keeps the
# rest for the pages after it: at 2.2M contacts 1,001 rows cost ~19 ms of DuckDB CPU against
# ~13 ms for 201 (docs/performance.md), so a walk through every contact reads a third as much.
SEQUENTIAL_READ = 1_000
READ_AHEAD = ReadAhead()


def _walk_page(
    con, snap: read_cache.Snapshot, index, flt: ContactFilter, limit: int, cursor, hidden
) -> list[dict]:
    """`limit + 1` rows after `cursor` (fewer at the end): from what the previous page read
    ahead, else read, ahead when `cursor` continues a walk (`dedup.service.read_ahead`). The
    scope is the file's version, the filter and the hidden set, so a publish, a deletion or an
    erasure is a miss; pending edits are laid on afterwards, as on every page."""
    scope = (snap.version, flt, frozenset(hidden))
    kept = READ_AHEAD.take(scope, cursor)
    if kept is not None and (len(kept[0]) > limit or kept[1]):
        rows, complete = kept
    else:
        rows, wanted = _read_page(con, snap, index, flt, limit, cursor, hidden, scope)
        complete = len(rows) < wanted
    _hand_out(scope, rows, limit, complete)
    return rows[: limit + 1]


def _hand_out(scope, rows: list[dict], limit: int, complete: bool) -> None:
    """Note the next page's cursor as handed out (a page after it continues a walk), with the
    rows read past it when any."""
    if len(rows) > limit:
        rest = rows[limit:] if complete or len(rows) > limit + 1 else []
        READ_AHEAD.keep(scope, rows[limit - 1]["contact_id"], rest, complete)


def _read_page(
    con, snap, index, flt: ContactFilter, limit: int, cursor, hidden, scope
) -> tuple[list[dict], int]:
    """A page read from the file and how many rows were asked: ahead when `cursor` continues a
    walk; a single page (the first of a filter, a jump) kept in the file's row memo for the next
    read of it (`dedup.service.row_memo`: the scope holds the hidden set, edits are laid on)."""
    if READ_AHEAD.continues(scope, cursor):
        wanted = max(limit + 1, SEQUENTIAL_READ)
        return _keyset_page(con, index, flt, wanted, cursor, hidden), wanted
    key = _page_key(scope, cursor, limit)
    rows = snap.rows.get(key)
    if rows is None:
        rows = _keyset_page(con, index, flt, limit + 1, cursor, hidden)
        snap.rows.put(key, rows)
    return rows, limit + 1


def _page_key(scope, cursor: str | None, limit: int) -> tuple:
    return ("page", scope, cursor, limit + 1)


def _keyset_page(con, index, flt: ContactFilter, n: int, cursor: str | None, hidden) -> list[dict]:
    """`n` rows after `cursor`: from the cursor's row id with the index, else by contact_id."""
    from_row = index.first_after(cursor) if index is not None else None
    if index is not None and from_row is None:
        return []  # the cursor is past the last contact
    sql, params = page_sql(flt, SELECT_CONTACT, cursor, n, hidden=hidden, from_row=from_row)
    return _fetch(con, sql, params)


# Full-text matches checked against the other filters per round; most pages need one round.
TEXT_CHUNK = 1_000
# Rounds before the rest is left to one query: a filter that keeps few of many matches would
# otherwise take a round per chunk.
TEXT_ROUNDS = 3


def docids_are_contacts(snap: read_cache.Snapshot, index: read_cache.ContactIndex) -> bool:
    """Whether docid n of the file's fts index is the contact at position n of `index` (the
    postings in word order there, their docids in contact_id order, as many as contacts)."""
    ordered = snap.memo(
        "docids_in_id_order", lambda c: search.has_postings(c) and search.docids_in_id_order(c)
    )
    return ordered and snap.memo("documents", search.documents) == len(index.ids)


def _text_page(
    con, snap: read_cache.Snapshot, flt: ContactFilter, n: int, cursor: str | None, hidden
) -> list[dict]:
    """`n` full-text matches after `cursor`, with the other filters: candidates in contact-id
    order from the index, then their rows in chunks by row id (a join of the matches with every
    contact read all of them)."""
    assert flt.text is not None
    index = snap.index(wait=False)
    assert index is not None
    rest = dataclasses.replace(flt, text=None)
    rows: list[dict] = []
    rounds = _candidates(con, snap, index, flt.text, cursor)
    for done, (chunk, following) in enumerate(rounds, start=1):
        rowids = [r for r in chunk if r is not None]
        sql, params = page_sql(
            rest, SELECT_CONTACT, None, n - len(rows), hidden=hidden, rowids=rowids
        )
        rows += _fetch(con, sql, params)
        if len(rows) >= n or following is None:
            break
        if done == TEXT_ROUNDS:  # the rest in one keyset query, the full text a condition
            posted = snap.memo("postings", search.has_postings)
            sql, params = page_sql(
                flt,
                SELECT_CONTACT,
                None,
                n - len(rows),
                None,
                hidden,
                from_row=following,
                postings=posted,
            )
            rows += _fetch(con, sql, params)
            break
    return rows


def _candidates(
    con, snap: read_cache.Snapshot, index: read_cache.ContactIndex, text: str, cursor: str | None
) -> Iterator[tuple[list[int | None], int | None]]:
    """Row ids of the contacts matching `text` after `cursor`, in contact-id order, a chunk at
    a time (None: a match `contacts` does not hold), each with the row id the next chunk starts
    from (None: no more).

    Where the index's docids are the contacts in contact_id order (search.docids_in_id_order,
    the same count of documents as contacts), the postings in word order give the next matches
    straight from the cursor: a page reads a few thousand postings, whatever the word. Else
    every match is listed first (search.matching_ids) and cut at the cursor.
    """
    if docids_are_contacts(snap, index):
        words = search.query_words(con, text)
        start: int | None = index.position_after(cursor)
        size = TEXT_CHUNK
        while start is not None:
            docids, start = search.next_matches(con, words, start, size)
            if start is not None and start >= len(index.rowids):
                start = None
            following = None if start is None else int(index.rowids[start])
            yield [int(index.rowids[d]) for d in docids], following
            size *= 4  # few matches so far: longer strides
        return
    matches = matching_ids(con, text)
    at = bisect.bisect_right(matches, cursor) if cursor is not None else 0
    for begin in range(at, len(matches), TEXT_CHUNK):
        end = begin + TEXT_CHUNK
        following = index.rowid(matches[end]) if end < len(matches) else None
        yield [index.rowid(c) for c in matches[begin:end]], following


@router.get("/contacts", response_model=ContactPage, responses=ERRORS)
async def list_contacts(
    state: Annotated[WebState, Depends(web)],
    key: Annotated[ApiKey, Depends(caller)],
    q: Annotated[str | None, Query(max_length=500, description="Full text.")] = None,
    audience: str | None = None,
    tag: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI reads defaults, never mutates
    not_tag: Annotated[list[str], Query()] = [],  # noqa: B006
    channel: Annotated[list[Channel], Query()] = [],  # noqa: B006
    not_channel: Annotated[list[Channel], Query()] = [],  # noqa: B006
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    last_seen_after: datetime | None = None,
    last_seen_before: datetime | None = None,
    crm_sync_status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ContactPage:
    """Contacts matching the Contacts-page filters, in contact-id order (stable cursor)."""
    try:
        flt = ContactFilter(
            text=q or None,
            has_tags=tuple(tag),
            not_tags=tuple(not_tag),
            engaged=tuple(c.lower() for c in channel),
            not_engaged=tuple(c.lower() for c in not_channel),
            created_after=created_after,
            created_before=created_before,
            last_seen_after=last_seen_after,
            last_seen_before=last_seen_before,
            audience=audience,
            crm_sync_status=crm_sync_status,
        )
    except FilterError as exc:
        raise ApiError(400, str(exc)) from None
    found = kept_page(state.db, flt, limit, cursor)
    if found is None:
        found = await run_in_threadpool(_page, state.db, flt, limit, cursor)
    rows, following = found
    page = ContactPage(data=[Contact(**r) for r in rows], next_cursor=following)
    return _json(page)  # type: ignore[return-value]


def _json(model: BaseModel) -> Response:
    """`model` as its JSON, once: a returned model is dumped and validated again by FastAPI
    against `response_model` (the route keeps it for the OpenAPI document)."""
    return Response(model.model_dump_json(), media_type="application/json")


@router.get("/contacts/{contact_id}", response_model=Contact, responses=ERRORS)
async def get_contact(
    contact_id: str,
    state: Annotated[WebState, Depends(web)],
    key: Annotated[ApiKey, Depends(caller)],
) -> Contact:
    """One contact; a merged-away id answers with its survivor (`merged_from` says so)."""
    row, merged_from = one(state.db, contact_id)
    return _json(Contact(**row, merged_from=merged_from))  # type: ignore[return-value]


@router.patch("/contacts/{contact_id}", response_model=Contact, responses=ERRORS)
def patch_contact(
    contact_id: str,
    patch: ContactPatch,
    state: Annotated[WebState, Depends(web)],
    key: Annotated[ApiKey, Depends(writer)],
) -> Contact:
    """Set tags (exactly), audience and attributes; visible at once, kept by every run."""
    row, _ = one(state.db, contact_id)
    live = row["contact_id"]
    wanted = None if patch.tags is None else {t.strip() for t in patch.tags}
    current = set(row["tags"])
    if patch.attributes is not None:
        problems = validate(state.properties, patch.attributes)
        if problems:
            raise ApiError(400, "; ".join(problems))
        merged = {**row["attributes"], **patch.attributes}
        if len({k for k, v in merged.items() if v is not None}) > MAX_ATTRIBUTE_KEYS:
            raise ApiError(400, f"a contact has at most {MAX_ATTRIBUTE_KEYS} attributes")
    try:
        review.edit_contact(
            state.db,
            live,
            tags_add=() if wanted is None else wanted - current,
            tags_remove=() if wanted is None else current - wanted,
            audience=patch.audience,
            attributes=patch.attributes,
            who=f"api:{key.key_id}",
        )
    except review.ReviewError as exc:
        raise ApiError(400, str(exc)) from None
    updated, _ = one(state.db, live)
    return Contact(**updated)


@router.delete("/contacts/{contact_id}", status_code=202, response_model=Erasure, responses=ERRORS)
def delete_contact(
    contact_id: str,
    state: Annotated[WebState, Depends(web)],
    key: Annotated[ApiKey, Depends(writer)],
) -> Erasure:
    """A GDPR erasure request (the same path as `contacts erase`); applied by the next run."""
    try:
        request_id = review.erase_live(state.db, contact_id, who=f"api:{key.key_id}")
    except review.ReviewError as exc:
        raise ApiError(404, str(exc)) from None
    return Erasure(request_id=request_id)


@router.post("/contacts/bulk", response_model=BulkResult, responses=ERRORS)
def bulk(
    body: BulkRequest,
    state: Annotated[WebState, Depends(web)],
    key: Annotated[ApiKey, Depends(writer)],
) -> BulkResult:
    """A bulk action on at most 200 contacts."""
    who = f"api:{key.key_id}"
    try:
        if body.action == "restore":
            targets = sorted(set(body.contact_ids))
            review.restore_contacts(state.db, targets, who=who)
        else:
            targets = review.select_contacts(state.db, contact_ids=body.contact_ids)
            review.bulk_edit(state.db, body.action, targets, body.value, who=who)
    except review.ReviewError as exc:
        raise ApiError(404 if isinstance(exc, review.NotFound) else 400, str(exc)) from None
    return BulkResult(action=body.action, contacts=len(targets))


def install_error_handlers(app) -> None:
    """Every error is `{"error": "..."}` with its status (and Retry-After on 429)."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        # 404 (no such route), 405 (wrong method), 413 (body cap): the same shape as the rest.
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_body(exc.errors()), status_code=422)


def _printable(value: object) -> str:
    """Text any UTF-8 body can carry: a lone surrogate becomes its escape (\\ud800)."""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def validation_body(errors: Sequence[Any]) -> dict:
    """A 422 body: the one-line `error` every API error has, and where and what for each problem.

    The rejected input is left out: it can be large, or hold a lone surrogate that no UTF-8 body
    can carry (which once turned this answer into a 500).
    """
    details = [
        {
            "type": _printable(e.get("type", "")),
            "loc": [p if isinstance(p, int) else _printable(p) for p in e.get("loc", ())],
            "msg": _printable(e.get("msg", "")),
        }
        for e in errors
    ]
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    return {"error": f"{where}: {first['msg']}", "detail": details}
