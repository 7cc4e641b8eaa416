"""Issue 25: the published file's full-text index carried over from last night's file
(dedup.snapshot.search_index) is the index fts builds whole over the same contacts: every table
of the two files equal (a term number compared as its term), and searches answer alike.

Each build starts as a night's build does (`carry.start_build`: a copy of the published file,
stripped to `interactions`, the search table and its index), gets the published file's other
tables with tonight's contacts, and is finished by the analyst layer; the reference starts
empty (`--full`), so fts builds its index whole.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from dedup.service.search import ContactFilter, search
from dedup.snapshot import carry
from dedup.snapshot.analyst import FTS_SCHEMA, SEARCH_TABLE, finish_analyst_layer, install_fts
from tests.test_incremental_night import differences

# Tonight's contacts from the published ones: one renamed, one gone, two new (one sorting
# before every other contact, so every docid moves), each with words no contact had.
TONIGHT = """
    SELECT * REPLACE (CASE WHEN contact_id = (SELECT min(contact_id) FROM pub.contacts
                                             WHERE name IS NOT NULL)
                      THEN 'Zebulon Quixote' ELSE name END AS name)
    FROM pub.contacts
    WHERE contact_id <> (SELECT max(contact_id) FROM pub.contacts WHERE name IS NOT NULL)
    UNION ALL
    SELECT * REPLACE ('contact_0000new' AS contact_id, 'Yolanda Xylophone' AS name)
    FROM pub.contacts WHERE contact_id = (SELECT max(contact_id) FROM pub.contacts)
    UNION ALL
    SELECT * REPLACE ('contact_zzzznew' AS contact_id, 'Walburga Vexillum' AS name)
    FROM pub.contacts WHERE contact_id = (SELECT max(contact_id) FROM pub.contacts)
"""
EVERY_NAME_CHANGED = "SELECT * REPLACE (name || ' Junior' AS name) FROM pub.contacts"


def _build(published: Path, build: Path, contacts_sql: str, full: str | None) -> str:
    """A night's build of `published` with `contacts_sql`'s contacts; the analyst layer's
    account of its search index."""
    plan = carry.start_build(build, published, full)
    con = duckdb.connect(str(build))
    con.execute(f"ATTACH '{published}' AS pub (READ_ONLY)")
    kept = {"interactions", SEARCH_TABLE, *carry.DERIVED_TABLES} if plan.full is None else set()
    for (table,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'pub' "
        "AND schema_name = 'main'"
    ).fetchall():
        if table == "contacts":
            con.execute(f"CREATE TABLE contacts AS {contacts_sql} ORDER BY contact_id")
        elif table not in kept and table != SEARCH_TABLE:
            con.execute(f'CREATE TABLE "{table}" AS FROM pub."{table}"')
    con.close()
    return finish_analyst_layer(build)


@pytest.fixture
def published(generated_night: Path, tmp_path: Path) -> Path:
    path = tmp_path / "published.duckdb"
    shutil.copyfile(generated_night / "out" / "contacts.duckdb", path)
    return path


def _words(db: Path, *words: str) -> dict[str, list[str]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            w: sorted(search(con, ContactFilter(text=w)).get_column("contact_id")) for w in words
        }
    finally:
        con.close()


def test_a_carried_index_equals_the_index_built_whole(published: Path, tmp_path: Path) -> None:
    since = datetime.now(UTC)
    carried, whole = tmp_path / "carried.duckdb", tmp_path / "whole.duckdb"
    said = _build(published, carried, TONIGHT, None)
    assert said.startswith("carried: 3 of "), said  # renamed + two new
    assert said.endswith("documents tokenized, 1 gone"), said
    assert _build(published, whole, TONIGHT, "--full requested") == (
        "built whole: no index in the published file"
    )
    assert differences(carried, whole, since) == {}
    # Searches answer alike, for new words, a gone contact's words and common ones.
    gone = (
        duckdb.connect(str(published), read_only=True)
        .execute(
            "SELECT split_part(max(name), ' ', 1) FROM contacts "
            "WHERE contact_id = (SELECT max(contact_id) FROM contacts WHERE name IS NOT NULL)"
        )
        .fetchone()[0]
    )  # type: ignore[index]
    words = ("zebulon", "xylophone", "walburga", gone, "gmail", "com")
    found = _words(carried, *words)
    assert found == _words(whole, *words)
    assert found["zebulon"] and found["xylophone"] == ["contact_0000new"]
    # The kept table of last night and the delta's scratch index are gone.
    con = duckdb.connect(str(carried), read_only=True)
    leftovers = con.execute(
        "SELECT list(schema_name || '.' || table_name) FROM duckdb_tables() "
        "WHERE table_name LIKE '%published%' OR schema_name LIKE '%delta%'"
    ).fetchone()[0]  # type: ignore[index]
    con.close()
    assert leftovers is None


def test_a_night_with_no_change_carries_every_document(published: Path, tmp_path: Path) -> None:
    since = datetime.now(UTC)
    carried, whole = tmp_path / "carried.duckdb", tmp_path / "whole.duckdb"
    said = _build(published, carried, "FROM pub.contacts", None)
    assert said.startswith("carried: 0 of ") and said.endswith("tokenized, 0 gone"), said
    _build(published, whole, "FROM pub.contacts", "--full requested")
    assert differences(carried, whole, since) == {}


def test_an_index_made_otherwise_or_mostly_changed_is_built_whole(
    published: Path, tmp_path: Path
) -> None:
    since = datetime.now(UTC)
    # Last night's index made with other parameters (digits are not words there).
    con = duckdb.connect(str(published))
    install_fts(con)
    con.execute(
        f"PRAGMA create_fts_index('{SEARCH_TABLE}', 'contact_id', 'name', 'email', 'company', "
        "'attributes_text', stemmer='porter', stopwords='none', ignore='[^a-z]+', overwrite=1)"
    )
    con.close()
    other = tmp_path / "other.duckdb"
    assert _build(published, other, TONIGHT, None) == (
        "built whole: the kept index was made with other parameters (its macros differ)"
    )
    whole = tmp_path / "whole.duckdb"
    _build(published, whole, TONIGHT, "--full requested")
    assert differences(other, whole, since) == {}
    assert _words(other, "xylophone") == {"xylophone": ["contact_0000new"]}

    changed = tmp_path / "changed.duckdb"
    said = _build(published, changed, EVERY_NAME_CHANGED, None)
    assert said.startswith("built whole: ") and said.endswith(" documents changed"), said
    con = duckdb.connect(str(changed), read_only=True)
    assert con.execute(f"SELECT count(*) FROM {FTS_SCHEMA}.docs").fetchone()[0] > 0  # type: ignore[index]
    con.close()
