"""Pure helpers of exports, filters and saved views: formula neutralization, JSON round trips."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from dedup.service.export import ExportError, enforce_bulk_limit, to_csv_frame
from dedup.service.saved_views import ViewError, get_view, save_view
from dedup.service.search import ContactFilter


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        # OWASP's trigger characters in a text cell get a leading quote
        ("name", '=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("name", "+1 555 0100", "'+1 555 0100"),
        ("company", "-2+3", "'-2+3"),
        ("email", "@SUM(A1)", "'@SUM(A1)"),
        ("name", "\tcmd", "'\tcmd"),
        ("name", "\rcmd", "'\rcmd"),
        # harmless text, and text with a trigger later on, stay as they are
        ("name", "Ann = Bob", "Ann = Bob"),
        ("name", "O'Connor", "O'Connor"),
        # a phone that is exactly E.164 stays usable; anything else in the column does not
        ("phone", "+14155552671", "+14155552671"),
        ("phone", "+1 (415) 555", "'+1 (415) 555"),
        ("phone", "=1+1", "'=1+1"),
        # null stays an empty cell
        ("name", None, None),
    ],
)
def test_formula_neutralization(column: str, value: str | None, expected: str | None) -> None:
    frame = pl.DataFrame({column: [value]}, schema={column: pl.String})
    assert to_csv_frame(frame).item() == expected


def test_lists_times_and_booleans_become_text() -> None:
    frame = pl.DataFrame(
        {
            "tags": [["-x", "b"], []],
            "seen": [datetime(2026, 11, 1, 9, 5, tzinfo=UTC), None],
            "ok": [True, None],
            "n": [3, None],
        }
    )
    assert to_csv_frame(frame).rows() == [("'-x;b", "2026-11-01T09:05:00Z", "true", "3")] + [
        (None, None, None, None)
    ]


def test_bulk_limit() -> None:
    enforce_bulk_limit(200, 200)
    enforce_bulk_limit(10_000, None)
    with pytest.raises(
        ExportError, match="201 contacts selected; a bulk action handles at most 200"
    ):
        enforce_bulk_limit(201, 200)


def test_filter_json_round_trip() -> None:
    flt = ContactFilter(
        text="acme",
        has_tags=("vip",),
        not_tags=("churned",),
        engaged=("whatsapp",),
        not_engaged=("email",),
        created_within_days=7,
        created_after=datetime(2026, 1, 1, tzinfo=UTC),
        created_before=datetime(2026, 2, 1, tzinfo=UTC),
        last_seen_after=datetime(2026, 3, 1, tzinfo=UTC),
        last_seen_before=datetime(2026, 4, 1, tzinfo=UTC),
        audience="enterprise",
        crm_sync_status="synced",
    )
    assert ContactFilter.from_json(flt.to_json()) == flt


def test_saved_views_refuse_bad_names_and_empty_filters(tmp_path: Path) -> None:
    path = tmp_path / "views.json"
    with pytest.raises(ViewError, match="bad view name"):
        save_view(path, "../etc", ContactFilter(audience="public"))
    with pytest.raises(ViewError, match="at least one filter"):
        save_view(path, "everything", ContactFilter())
    save_view(path, "a", ContactFilter(audience="public"))
    save_view(path, "a", ContactFilter(audience="paid_users"), replace=True)
    assert get_view(path, "a").filter.audience == "paid_users"
    assert not list(tmp_path.glob(".*.tmp")), "written through a temporary file, then renamed"
