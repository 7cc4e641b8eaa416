"""GX on Arrow strings (quality.gx_strings): the same verdicts and data docs as object strings.

Each case validates one frame three ways: as the suites do (Arrow strings where
`same_verdicts_on_arrow` allows them), forced onto object strings (the path before), and forced
onto Arrow strings. Where the engines differ on a cell, forcing Arrow changes a verdict, which
shows that the guard is what keeps the two paths equal.
"""

from __future__ import annotations

import re
import re._constants as sre  # type: ignore[import-not-found]
import re._parser as sre_parse  # type: ignore[import-not-found]
from pathlib import Path

import polars as pl
import pytest

from quality import gx_strings
from quality.gx_strings import ENGINE_NEUTRAL_REGEXES, same_verdicts_on_arrow
from quality.gx_suites import SuiteSettings, export_suite, snapshot_suites, validate

EXPORT = pl.DataFrame(
    {
        "contact_id": ["c1", "c2", "c2", "c4", None],
        "name": ["Ann", "=HYPERLINK(1)", None, "'=ok", "Bob"],
        "phone": ["+14155552671", "555", None, "'-1", "+4930123456"],
        "first_seen": ["2026-11-01T09:05:00Z", "2026-11-01", None, "x", "2026-11-01T09:05:00Z"],
    }
)


def _export(frame: pl.DataFrame) -> tuple[dict, dict]:
    return {"contacts": frame}, {"contacts": export_suite(frame, "contact_id", {"phone"})}


def _contacts(email: list[str | None]) -> tuple[dict, dict]:
    frame = pl.DataFrame(
        {
            "contact_id": [f"c{i}" for i in range(len(email))],
            "phone": ["+14155552671"] * len(email),
            "email_norm": email,
            "audience": ["public"] * len(email),
            "tag_count": [0] * len(email),
            "attribute_keys": [0] * len(email),
            "interaction_count": [1] * len(email),
        }
    )
    suites = {"contacts": snapshot_suites(SuiteSettings(audiences=("public",)))["contacts"]}
    return {"contacts": frame}, suites


def _page(docs: Path) -> str:
    (page,) = (docs / "validations").rglob("*.html")
    # What differs between two validations of the same frame: when they ran.
    return re.sub(
        r"\d{8}T\d{6}\.\d+Z|\d{4}-\d{2}-\d{2}[ T][\d:.]+(?:\+00:00| UTC|Z)?", "", page.read_text()
    )


def _run(case, docs: Path, arrow: bool | None):
    """`validate` as the suites run it (arrow=None) or forced onto one kind of strings."""
    frames, suites = case()  # GX expectations belong to one suite: new ones for each run
    with pytest.MonkeyPatch.context() as patch:
        if arrow is not None:
            patch.setattr(gx_strings, "same_verdicts_on_arrow", lambda *_: arrow)
        report = validate(frames, suites, docs)
    return {(f.expectation, f.column, f.unexpected) for f in report.failures}, _page(docs)


@pytest.mark.parametrize(
    "case",
    [
        lambda: _export(EXPORT),
        lambda: _contacts(["a@x.test", "not an email", None, "a b@x.test", "a@b@x.test"]),
    ],
    ids=["export", "snapshot-contacts"],
)
def test_arrow_strings_give_the_same_report_where_allowed(case, tmp_path: Path) -> None:
    frames, suites = case()
    ((name, frame),) = frames.items()
    assert same_verdicts_on_arrow(frame, suites[name])  # this case takes the Arrow path
    auto = _run(case, tmp_path / "auto", None)
    assert auto[0], "the case has failures to compare"
    assert auto == _run(case, tmp_path / "object", False)


@pytest.mark.parametrize(
    "case",
    [
        # Python's `$` also matches before a final newline; RE2's does not.
        lambda: _export(
            EXPORT.with_columns(pl.Series("phone", ["+14155552671\n", None, None, None, None]))
        ),
        lambda: _export(EXPORT.with_columns(pl.lit("2026-11-01T09:05:00Z\n").alias("first_seen"))),
        # Python's `\s` holds the no-break space; RE2's does not.
        lambda: _contacts(["a@x.test", "a\u00a0b@x.test"]),
    ],
    ids=["phone-final-newline", "iso-final-newline", "email-no-break-space"],
)
def test_cells_the_engines_read_differently_stay_on_object_strings(case, tmp_path: Path) -> None:
    frames, suites = case()
    ((name, frame),) = frames.items()
    assert not same_verdicts_on_arrow(frame, suites[name])
    auto = _run(case, tmp_path / "auto", None)
    assert auto == _run(case, tmp_path / "object", False)
    assert auto[0] != _run(case, tmp_path / "arrow", True)[0]


def test_unvetted_regexes_and_expectations_stay_on_object_strings() -> None:
    import great_expectations as gx

    frame = pl.DataFrame({"a": ["x"], "n": [1]})
    e = gx.expectations
    assert same_verdicts_on_arrow(frame, [e.ExpectColumnValuesToBeBetween(column="n", max_value=2)])
    assert not same_verdicts_on_arrow(
        frame, [e.ExpectColumnValuesToMatchRegex(column="a", regex=r"\w")]
    )
    assert not same_verdicts_on_arrow(
        frame, [e.ExpectColumnValuesToBeBetween(column="a", max_value=2)]
    )
    assert not same_verdicts_on_arrow(
        frame, [e.ExpectColumnValueLengthsToBeBetween(column="a", max_value=2)]
    )


_ALLOWED = {
    sre.LITERAL,
    sre.NOT_LITERAL,
    sre.ANY,
    sre.IN,
    sre.MAX_REPEAT,
    sre.SUBPATTERN,
    sre.BRANCH,
    sre.AT,
}
_IN_CLASS = {sre.LITERAL, sre.RANGE, sre.NEGATE, sre.CATEGORY}


def _constructs(pattern) -> list:
    """Every construct in a parsed regex that the module docstring's argument does not cover."""
    bad = []
    for op, av in pattern:
        if op not in _ALLOWED:
            bad.append(op)
        elif op is sre.IN:
            bad += [
                o
                for o, v in av
                if o not in _IN_CLASS or (o is sre.CATEGORY and v is not sre.CATEGORY_SPACE)
            ]
        elif op is sre.AT and av not in (sre.AT_BEGINNING, sre.AT_END):
            bad.append(av)
        elif op is sre.MAX_REPEAT:
            bad += _constructs(av[2])
        elif op is sre.SUBPATTERN:
            bad += _constructs(av[3])
        elif op is sre.BRANCH:
            for branch in av[1]:
                bad += _constructs(branch)
    return bad


@pytest.mark.parametrize("regex", sorted(ENGINE_NEUTRAL_REGEXES))
def test_vetted_regexes_use_only_constructs_both_engines_read_alike(regex: str) -> None:
    assert _constructs(sre_parse.parse(regex)) == []


def test_the_construct_check_can_fail() -> None:
    assert _constructs(sre_parse.parse(r"^\w+\b(?=x)$")) != []
