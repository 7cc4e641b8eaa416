"""Saved Contact Views: named filters, kept in `<db>.state/views.json` beside the decision log.

They are people's state, so they live outside the snapshot that every run replaces. The file is
small JSON rewritten whole through a temporary file and a rename, so a crash never leaves half
of it; concurrent savers are serialised by a lock file.

An erasure removes every view whose filter names the erased person (`forget_person`): the
filter's words are the admin's, but "zebulon quartz" kept after the erasure would still say
whom the workspace was looking for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dedup.json_state import locked, read_json, write_json
from dedup.service.search import ContactFilter, FilterError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,79}$")


@dataclass(frozen=True)
class SavedView:
    name: str
    filter: ContactFilter
    saved_at: datetime


class ViewError(ValueError):
    """A saved-view operation that cannot be done; one line saying why."""


def _read(path: Path) -> dict[str, dict]:
    try:
        return read_json(path, "views")
    except ValueError as exc:
        raise ViewError(str(exc)) from None


def _write(path: Path, views: dict[str, dict]) -> None:
    write_json(path, "views", views)


_locked = locked


def save_view(
    path: Path, name: str, flt: ContactFilter, replace: bool = False, by: str | None = None
) -> SavedView:
    """Save `flt` under `name`; an existing name is refused unless `replace`.

    `by`: who saves it, when known. A replaced view keeps its first `created_at` / `created_by`
    (the published `saved_views` table shows both beside `updated_at`).
    """
    if not NAME.match(name):
        raise ViewError(
            f"bad view name {name!r}: letters, digits, space, '_', '.', '-' (at most 80)"
        )
    if flt.is_empty():
        raise ViewError("a view needs at least one filter")
    with _locked(path):
        views = _read(path)
        if name in views and not replace:
            raise ViewError(f"a view named {name!r} exists; pass --replace to overwrite it")
        saved_at = datetime.now(UTC)
        first = views.get(name) or {}
        views[name] = {
            "filter": flt.to_json(),
            "saved_at": saved_at.isoformat(),
            "created_at": first.get("created_at") or first.get("saved_at") or saved_at.isoformat(),
            "created_by": first.get("created_by") if first else by,
        }
        _write(path, views)
    return SavedView(name, flt, saved_at)


def _view(name: str, entry: dict) -> SavedView:
    try:
        flt = ContactFilter.from_json(entry["filter"])
    except (FilterError, KeyError, TypeError) as exc:
        raise ViewError(f"saved view {name!r} is damaged: {exc}") from None
    return SavedView(name, flt, datetime.fromisoformat(entry["saved_at"]))


def list_views(path: Path) -> list[SavedView]:
    return [_view(name, entry) for name, entry in sorted(_read(path).items())]


def get_view(path: Path, name: str) -> SavedView:
    views = _read(path)
    if name not in views:
        known = ", ".join(sorted(views)) or "none saved yet"
        raise ViewError(f"no saved view {name!r} ({known})")
    return _view(name, views[name])


def delete_view(path: Path, name: str) -> None:
    with _locked(path):
        views = _read(path)
        if name not in views:
            raise ViewError(f"no saved view {name!r}")
        del views[name]
        _write(path, views)


def _words(text: str) -> list[str]:
    """Lowercase words, so "Zebulon  QUARTZ" and "zebulon quartz" are the same name."""
    return re.findall(r"[^\W_]+", text.lower())


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def names_person(text: str, identifiers: list[str], names: list[str]) -> bool:
    """Does a filter's free text name this person?

    Yes when it holds one of their identifiers (an email address, or a phone number's national
    digits, 7 or more), or every word of one of their names of two or more words. A single
    first name or surname alone ("quartz") names a crowd, not a person, and stays.
    """
    lowered, digits = text.lower(), _digits(text)
    for value in identifiers:
        if "@" in value and value.lower() in lowered:
            return True
        phone = _digits(value)
        # A typed number may lack the country code: compare its last 7+ digits.
        if len(phone) >= 7 and len(digits) >= 7 and phone.endswith(digits):
            return True
    words = set(_words(text))
    return any(len(_words(n)) >= 2 and set(_words(n)) <= words for n in names)


def forget_person(path: Path, identifiers: list[str], names: list[str]) -> list[str]:
    """Delete the saved views whose text filter names the person (`names_person`); their names.

    Args:
        path: the views file.
        identifiers: the person's own email addresses and phone numbers (normalized).
        names: the names they gave.
    """
    if not path.exists():
        return []
    with _locked(path):
        views = _read(path)
        gone = sorted(
            name
            for name, entry in views.items()
            if names_person(str((entry.get("filter") or {}).get("text") or ""), identifiers, names)
        )
        if gone:
            _write(path, {k: v for k, v in views.items() if k not in gone})
    return gone
