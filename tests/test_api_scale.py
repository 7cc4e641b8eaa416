"""The Contact API's cached reads stay right (issue 26): the long-lived connection, the caches of
the key file / decision log, and keyset pages over the contact index.

- an edit (through the API or the CLI's path) shows in the very next read;
- a new publish is read without restarting the app;
- an erased or deleted contact is gone from every read at once;
- a cursor sync returns every contact exactly once, across row groups, with or without the
  contact index (a file not in contact_id order falls back to the contact_id keyset).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest
from fastapi.testclient import TestClient

from assets.resources import ContactsSettings
from contacts.runner import run_pipeline
from contacts.web import api, create_app
from dedup.layout import StateLayout
from dedup.service import read_cache, review
from dedup.service.apikeys import create_key, revoke_key
from dedup.service.row_memo import RowMemo
from dedup.service.search import ContactFilter, search
from tests.conftest import copy_night, night_once, query, rec, write_jsonl
from tests.webauth import signed_in_client

NO_MATCHING = {"min_contacts_to_match": 10**9}
ROOT = Path(__file__).resolve().parent.parent


def people(day: str, n: int, first: int = 0) -> list[dict]:
    return [
        rec(
            f"s{first + i}",
            f"{day}T{8 + i % 10}:00:00Z",
            name=f"Scale Person {first + i}",
            email=f"s{first + i}@scale.test",
            contact_tags=["batch"],
        )
        for i in range(n)
    ]


def six_people(exports: Path) -> None:
    write_jsonl(exports, "2026-11-01", "people.jsonl", people("2026-11-01", 6))


@pytest.fixture(scope="module")
def six_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 6 contacts' first night (no matching), run once for the module."""
    return night_once(tmp_path_factory.mktemp("six"), six_people, **NO_MATCHING)


@pytest.fixture
def served(six_night: Path, tmp_path: Path):
    """A published file of 6 contacts (a private copy of the module's first night), its app
    (one client for the whole test), and keys."""
    exports = tmp_path / "exports"
    db = tmp_path / "out" / "contacts.duckdb"
    copy_night(six_night, exports, db)

    def run() -> None:
        run_pipeline(ContactsSettings(exports_dir=str(exports), db_path=str(db), **NO_MATCHING))

    keys = StateLayout(db).api_keys_path
    read_key, _ = create_key(keys, "read")
    write_key, write_record = create_key(keys, "write")
    app = create_app(db, allowed_hosts=["testserver"])
    client = TestClient(app)
    return {
        "db": db,
        "app": app,
        "client": client,
        "read": {"Authorization": f"Bearer {read_key}"},
        "write": {"Authorization": f"Bearer {write_key}"},
        "write_id": write_record.key_id,
        "run": run,
        "exports": exports,
    }


def listed(client: TestClient, headers: dict, **params) -> list[str]:
    """Every contact id the API lists, through the cursor, pages of 2."""
    out, cursor = [], None
    while True:
        page = client.get(
            "/v1/contacts", headers=headers, params={"limit": 2, **params, "cursor": cursor}
        )
        assert page.status_code == 200, page.text
        out += [c["contact_id"] for c in page.json()["data"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return out


def test_an_edit_shows_in_the_next_read(served) -> None:
    client, db, read, write = served["client"], served["db"], served["read"], served["write"]
    target = listed(client, read)[0]
    assert client.get(f"/v1/contacts/{target}", headers=read).json()["tags"] == ["batch"]
    page = client.get("/v1/contacts", headers=read, params={"limit": 200}).json()["data"]
    assert {c["contact_id"]: c["tags"] for c in page}[target] == ["batch"]
    # The file's rows for that contact and that page are now kept (dedup.service.row_memo).
    assert len(read_cache.shared_reader(db).snapshot().rows) >= 2
    patched = client.patch(f"/v1/contacts/{target}", headers=write, json={"tags": ["vip"]})
    assert patched.json()["tags"] == ["vip"]
    assert client.get(f"/v1/contacts/{target}", headers=read).json()["tags"] == ["vip"]
    page = client.get("/v1/contacts", headers=read, params={"limit": 200}).json()["data"]
    assert {c["contact_id"]: c["tags"] for c in page}[target] == ["vip"]
    assert {c["contact_id"]: c["pending"] for c in page}[target]
    # The CLI's path (another writer of the decision log), right after a cached read.
    review.edit_contact(db, target, tags_add={"gold"}, who="cli")
    assert client.get(f"/v1/contacts/{target}", headers=read).json()["tags"] == ["gold", "vip"]
    # A revoked key is refused on its next request although the key file was cached.
    revoke_key(StateLayout(db).api_keys_path, served["write_id"])
    assert client.get("/v1/contacts", headers=write).status_code == 401


def test_a_new_publish_is_read_without_a_restart(served) -> None:
    client, db, read = served["client"], served["db"], served["read"]
    before = set(listed(client, read))
    assert len(before) == 6
    snapshot = read_cache.shared_reader(db).snapshot()
    write_jsonl(served["exports"], "2026-11-02", "more.jsonl", people("2026-11-02", 3, first=6))
    served["run"]()
    after = set(listed(client, read))
    assert before < after and len(after) == 9
    new = sorted(after - before)[0]
    assert client.get(f"/v1/contacts/{new}", headers=read).json()["contact_id"] == new
    assert read_cache.shared_reader(db).snapshot() is not snapshot
    found = client.get("/v1/contacts", headers=read, params={"q": "scale person 7"}).json()
    assert len(found["data"]) == 1


def test_an_erased_or_deleted_contact_is_gone_from_every_read_at_once(served) -> None:
    client, db, read, write = served["client"], served["db"], served["read"], served["write"]
    erased, deleted = listed(client, read)[:2]
    page = signed_in_client(db, served["app"])
    assert erased in page.get("/contacts").text  # every cache warm before the writes
    assert client.get(f"/v1/contacts/{deleted}", headers=read).status_code == 200

    assert client.delete(f"/v1/contacts/{erased}", headers=write).status_code == 202
    review.delete_contacts(db, [deleted], who="cli")
    for gone in (erased, deleted):
        assert client.get(f"/v1/contacts/{gone}", headers=read).status_code == 404
        assert gone not in listed(client, read)
        assert gone not in listed(client, read, q="scale")
        assert gone not in page.get("/contacts").text
        assert gone not in page.get("/contacts", params={"q": "scale"}).text
    assert len(listed(client, read)) == 4
    served["run"]()  # applied: still gone, and only those two
    assert len(listed(client, read)) == 4
    assert client.get(f"/v1/contacts/{erased}", headers=read).status_code == 404


def test_a_walk_through_the_cursor_reads_ahead_and_stays_right(served) -> None:
    """Pages after the second come from rows read ahead; a publish, an edit, a deletion and an
    erasure made in the middle of a walk show in its next page."""
    client, db, read, write = served["client"], served["db"], served["read"], served["write"]

    def page(cursor: str | None) -> dict:
        answer = client.get("/v1/contacts", headers=read, params={"limit": 1, "cursor": cursor})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def walk(cursor: str | None) -> list[str]:
        out = []
        while cursor is not None:
            answer = page(cursor)
            out += [c["contact_id"] for c in answer["data"]]
            cursor = answer["next_cursor"]
        return out

    before = listed(client, read)
    api.READ_AHEAD.clear()
    first = page(None)
    assert len(api.READ_AHEAD) == 0  # a first page reads only itself
    second = page(first["next_cursor"])
    assert len(api.READ_AHEAD) == 1  # it continued a cursor handed out: the rest is kept
    write_jsonl(served["exports"], "2026-11-02", "more.jsonl", people("2026-11-02", 3, first=6))
    served["run"]()  # a publish mid-walk: the rest of the walk is the new file's
    every = listed(client, read)
    assert set(every) - set(before) & {c for c in every if c > before[1]}  # the walk can tell
    assert walk(second["next_cursor"]) == [c for c in every if c > before[1]]

    first, second = page(None), page(every[0])
    edited, deleted, erased = every[2], every[3], every[4]
    client.patch(f"/v1/contacts/{edited}", headers=write, json={"tags": ["walked"]})
    third = page(second["next_cursor"])  # from the kept rows, the edit laid on
    assert (third["data"][0]["contact_id"], third["data"][0]["tags"]) == (edited, ["walked"])
    review.delete_contacts(db, [deleted], who="cli")
    assert client.delete(f"/v1/contacts/{erased}", headers=write).status_code == 202
    assert walk(third["next_cursor"]) == every[5:]  # neither hidden contact


def synthetic(
    path: Path, n: int, shuffled: bool = False, row_group_size: int | None = None
) -> Path:
    """`n` contacts in the published layout (benchmarks/analyst.py), optionally out of order
    and in row groups of `row_group_size` rows (DuckDB's 122,880 when None)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from analyst import build_file

    build_file(path, n, 10, row_group_size)
    if shuffled:
        con = duckdb.connect()
        size = f" (ROW_GROUP_SIZE {row_group_size})" if row_group_size else ""
        con.execute(f"ATTACH '{path}' AS built{size}")  # the size holds for this attach only
        con.execute("USE built")
        con.execute("CREATE TABLE c2 AS SELECT * FROM contacts ORDER BY hash(contact_id)")
        con.execute("DROP TABLE contacts")
        con.execute("ALTER TABLE c2 RENAME TO contacts")
        con.close()
    return path


def sync(db: Path, flt: ContactFilter, limit: int) -> list[str]:
    out, cursor = [], None
    while True:
        rows, following = api._page(db, flt, limit, cursor)
        ids = [r["contact_id"] for r in rows]
        assert len(ids) == limit or following is None
        assert following is None or following == ids[-1]
        out += ids
        if following is None:
            return out
        cursor = following


@pytest.mark.parametrize("shuffled", [False, True])
def test_a_cursor_sync_returns_every_contact_once(tmp_path: Path, shuffled: bool) -> None:
    # Three row groups of 2,048 rows (DuckDB's smallest; the same reads as 122,880-row ones,
    # which took 300,000 contacts and ~10 s per case to cross).
    db = synthetic(tmp_path / "s.duckdb", 6_000, shuffled, row_group_size=2_048)
    groups = query(
        db, "SELECT count(DISTINCT row_group_id) AS n FROM pragma_storage_info('contacts')"
    )
    assert groups["n"][0] == 3
    read_cache.share_published(db)
    index = read_cache.shared_reader(db).snapshot().index()
    assert (index is None) == shuffled  # out of order: no index, the contact_id keyset
    every = query(db, "SELECT contact_id FROM contacts ORDER BY contact_id")["contact_id"]
    assert sync(db, ContactFilter(), 700) == every.to_list()  # pages across group bounds
    growth = query(
        db, "SELECT contact_id FROM contacts WHERE audience = 'growth' ORDER BY contact_id"
    )["contact_id"].to_list()
    assert sync(db, ContactFilter(audience="growth"), 333) == growth
    # A cursor between ids, and past the last one.
    rows, following = api._page(db, ContactFilter(), 1, every[1000] + "0")
    assert ([r["contact_id"] for r in rows], following) == ([every[1001]], every[1001])
    assert api._page(db, ContactFilter(), 5, every[-1]) == ([], None)


def test_a_contact_id_outside_the_index_still_resolves(tmp_path: Path) -> None:
    """A merged-away id is not in `contacts`: the lookup follows its redirect as before."""
    db = synthetic(tmp_path / "r.duckdb", 1_000)
    con = duckdb.connect(str(db))
    survivor = con.execute("SELECT min(contact_id) FROM contacts").fetchone()[0]
    con.execute("INSERT INTO contact_redirects VALUES ('contact_gone', ?)", [survivor])
    con.close()
    read_cache.share_published(db)
    row, merged_from = api.one(db, "contact_gone")
    assert (row["contact_id"], merged_from) == (survivor, "contact_gone")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_rate_limit_holds_across_workers(tmp_path: Path) -> None:
    """`contacts serve --workers 2`: each worker allows half the limit, so all together never
    answer more than the limit (each alone allowing all of it would answer up to twice)."""
    db = synthetic(tmp_path / "w.duckdb", 100)
    key, _ = create_key(StateLayout(db).api_keys_path, "read")
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("contacts")), "serve", "--db", str(db)]
        + ["--port", str(port)]
        + ["--workers", "2", "--requests-per-minute", "6"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                httpx.get(f"{base}/v1/contacts", timeout=5)  # 401: counted as a failure only
                break
            except httpx.TransportError:
                assert time.time() < deadline and server.poll() is None, server.stderr.read()
                time.sleep(0.3)
        headers = {"Authorization": f"Bearer {key}"}
        # A new connection per request: uvicorn's workers take turns accepting them.
        answers = [httpx.get(f"{base}/v1/contacts", headers=headers).status_code for _ in range(24)]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert answers.count(200) <= 6 and set(answers) == {200, 429}, answers


def test_the_moving_window_counts_each_key_for_its_window() -> None:
    """The in-process limiter (contacts.web.state.MovingWindow, no timer thread): `amount` hits
    per key inside the window, the wait until the oldest leaves it, keys counted apart."""
    from contacts.web.state import MovingWindow

    window = MovingWindow(2, seconds=0.6)
    assert window.hit("a") is None
    time.sleep(0.3)
    assert window.hit("a") is None
    wait = window.hit("a")
    assert wait is not None and 0 < wait <= 0.3  # when the first hit leaves the window
    assert window.hit("b") is None  # another key has its own count
    time.sleep(wait + 0.05)
    assert window.hit("a") is None  # the first hit left the window, the second has not
    assert window.hit("a") is not None


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic published file of 5,000 contacts with its analyst layer (the fts index and
    the postings in word order)."""
    from dedup.snapshot.analyst import finish_analyst_layer

    db = synthetic(tmp_path_factory.mktemp("fts") / "f.duckdb", 5_000)
    finish_analyst_layer(db)
    return db


def test_a_lookup_by_id_reads_the_same_row_through_the_id_index(
    indexed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The analyst layer indexes contacts(contact_id) (ART): `one` fetches a row through it, and
    gives the same contact and 404 as the row-id path of a file without it."""
    from dedup.service import search as searching

    read_cache.share_published(indexed)
    snap = read_cache.shared_reader(indexed).snapshot()
    assert snap.index() is not None
    with review.published(indexed) as con:
        assert searching.has_id_index(con)
        ids = [
            r[0] for r in con.execute("SELECT contact_id FROM contacts USING SAMPLE 25").fetchall()
        ]
        plan = con.execute(
            "EXPLAIN ANALYZE SELECT name FROM contacts WHERE contact_id = ?", [ids[0]]
        ).fetchall()
    assert "Index Scan" in plan[0][1]  # DuckDB picks the index when the scan starts
    through_index = [api.one(indexed, c) for c in ids]
    with pytest.raises(api.ApiError) as missing:
        api.one(indexed, "contact_nobody")
    assert missing.value.status == 404
    monkeypatch.setattr(searching, "has_id_index", lambda _con: False)
    snap._memo.pop("id_index", None)
    snap.rows.clear()  # the rows read above are kept: read them again, the other way
    assert [api.one(indexed, c) for c in ids] == through_index
    assert [row["contact_id"] for row, _ in through_index] == ids
    with pytest.raises(api.ApiError):
        api.one(indexed, "contact_nobody")
    snap._memo.pop("id_index")  # the module's later tests read through the index again


TEXT_CASES = [
    ContactFilter(text="ann"),
    ContactFilter(text="city"),  # every contact: the attributes' key (consecutive docids)
    ContactFilter(text="plan tier", audience="growth"),
    ContactFilter(text="berlin gold"),
    ContactFilter(text="Ann Berlin", audience="growth"),
    ContactFilter(text="lagos", has_tags=("vip",), engaged=("sms",)),
    ContactFilter(text="berlin", audience="no-such-audience"),
    ContactFilter(text="zzzzunknown"),
    ContactFilter(text="!!!"),
]


@pytest.mark.parametrize("postings", [True, False])
def test_full_text_pages_match_the_search_in_contact_id_order(
    indexed: Path, tmp_path: Path, postings: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`q=` pages from the postings in word order (small chunks, so every page takes several
    rounds and the keyset query for the rest) return exactly what the search matches, in
    contact-id order, once each, hidden contacts left out; a file without the postings (built
    before them) answers the same from fts's own tables."""
    db = tmp_path / "f.duckdb"
    db.write_bytes(indexed.read_bytes())
    if not postings:
        con = duckdb.connect(str(db))
        con.execute("DROP TABLE fts_main_contact_search.postings")
        con.close()
    monkeypatch.setattr(api, "TEXT_CHUNK", 7)
    read_cache.share_published(db)
    assert read_cache.shared_reader(db).snapshot().index() is not None
    hide = query(db, "SELECT min(contact_id) AS c FROM contacts WHERE name ILIKE 'ann %'")["c"][0]
    monkeypatch.setattr(review, "hidden_ids", lambda _db: {hide})
    with review.published(db) as con:
        for flt in TEXT_CASES:
            expected = sorted(search(con, flt, hidden={hide}).get_column("contact_id").to_list())
            assert sync(db, flt, 23) == expected, flt
            assert hide not in expected
    assert len(sync(db, TEXT_CASES[0], 23)) > 100  # a word common enough to need many pages


def test_search_ranks_the_same_from_the_postings_as_from_fts_tables(
    indexed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The review page's and the CLI's search (best BM25 first) and its count read the postings
    in word order where the file has them: the same contacts as from fts's own tables, ranked
    by fts's own match_bm25 score (ties by contact_id)."""
    from dedup.service import search as searching

    con = duckdb.connect(str(indexed), read_only=True)
    searching.load_fts(con)
    assert searching.has_postings(con)
    cases = [*TEXT_CASES, ContactFilter(text="Ann Berlin gold")]
    posted = [(searching.search(con, f), searching.count(con, f)) for f in cases]
    for text in ("berlin gold", "Ann Berlin gold", "city"):
        ranked = searching.search(con, ContactFilter(text=text))["contact_id"].to_list()
        bm25 = con.execute(
            "SELECT contact_id FROM (SELECT contact_id, fts_main_contact_search.match_bm25("
            "contact_id, ?, conjunctive := 1) AS s FROM contact_search) WHERE s IS NOT NULL "
            "ORDER BY round(s, 9) DESC, contact_id",
            [text],
        ).fetchall()
        assert ranked == [r[0] for r in bm25] and len(ranked) > 10, text
    monkeypatch.setattr(searching, "has_postings", lambda _con: False)
    for flt, (frame, total) in zip(cases, posted, strict=True):
        before = searching.search(con, flt)
        assert sorted(frame["contact_id"]) == sorted(before["contact_id"]), flt
        assert total == searching.count(con, flt) == frame.height, flt


def test_the_review_pages_text_search_ranks_like_the_search(
    indexed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Contacts page's text-only search comes from the ranked postings (pages.
    ranked_text_page): the same count and the same contacts in the same order, page by page,
    as `search`, hidden contacts left out; with another filter it is not taken."""
    from contacts.web import pages

    monkeypatch.setattr(pages, "PAGE_SIZE", 40)
    read_cache.share_published(indexed)
    assert read_cache.shared_reader(indexed).snapshot().index() is not None
    with review.published(indexed) as con:
        for text in ("ann", "berlin gold", "city", "Ann Berlin gold", "zzzzunknown"):
            flt = ContactFilter(text=text)
            every = search(con, flt)["contact_id"].to_list()
            hidden = set(every[3:60:7])
            ranked = [c for c in every if c not in hidden]
            for offset in (0, 40, 4_960):
                found = pages.ranked_text_page(indexed, con, flt, hidden, offset)
                assert found is not None
                total, rows = found
                assert total == len(ranked), text
                assert [r["contact_id"] for r in rows] == ranked[offset : offset + 40], text
                assert rows == search(con, flt, 40, offset=offset, hidden=hidden).to_dicts()
        assert (
            pages.ranked_text_page(indexed, con, ContactFilter("ann", audience="x"), set(), 0)
            is None
        )


def test_the_row_memo_is_bounded_by_rows_and_hands_out_copies() -> None:
    """A process's kept rows stay within their bound however many contacts are read, and a
    caller laying edits on what it was given never changes what the next read gets."""
    memo = RowMemo(rows=250)
    for n in range(10):
        memo.put(("page", n), [{"contact_id": f"c{n}-{i}", "tags": ["a"]} for i in range(100)])
    assert len(memo) == 2 and memo.get(("page", 7)) is None and memo.get(("page", 9))
    memo.put(("id", "nobody"), [])  # "no such contact" is kept as an answer too
    assert memo.get(("id", "nobody")) == []
    given = memo.get(("page", 9))
    given[0]["tags"] = ["edited"]
    assert memo.get(("page", 9))[0]["tags"] == ["a"]
