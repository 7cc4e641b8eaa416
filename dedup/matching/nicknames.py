"""Nicknames: which first names one person may go by (lower case, accents folded).

Two sources:
- the `nicknames` package (Old Dominion University's hand-curated list of English given names
  and their nicknames, 2,691 relations): many to many (`bob` is a nickname of `robert` and of
  `bert`; `kate` of `katherine`, `kathryn`, `katelyn`...). It gives `first_name_forms`, the
  formal names a first name is a nickname of, and the matcher's nickname level asks whether one
  side's first name is among the other side's forms (a direct relation, never through a third
  name: `bob` and `bert` are not taken as one name because both can be `robert`'s);
- the small table below: the blocking key `first_name_canonical` must be one value per name,
  so a nickname maps to its one formal name here. The package cannot give that key: its
  relation runs both ways for many names (`richard` is listed as a nickname of `dick`, `andrew`
  of `andrea`), so "the only formal name of" a name is often the nickname. A pair the table
  does not join is still scored as nicknames when another rule (surname and company, a phone,
  a date of birth with a name part) makes it a candidate.

Names that are formal in one culture and nicknames in another (e.g. `jack`) map conservatively
in the table: only widely used English diminutives are listed.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources

import polars as pl

_FORMAL_TO_NICKS: dict[str, tuple[str, ...]] = {
    "robert": ("bob", "bobby", "rob", "robbie", "bert"),
    "william": ("bill", "billy", "will", "willy", "liam"),
    "katherine": ("kathy", "kate", "katie", "kat", "kay"),
    "catherine": ("cathy", "cat", "cate"),
    "elizabeth": ("liz", "lizzie", "beth", "betty", "eliza", "libby"),
    "michael": ("mike", "mikey", "mick"),
    "james": ("jim", "jimmy", "jamie"),
    "thomas": ("tom", "tommy"),
    "richard": ("rick", "ricky", "rich", "dick"),
    "david": ("dave", "davey"),
    "christopher": ("chris", "kit"),
    "alexander": ("alex", "xander"),
    "alexandra": ("alexa", "sasha"),
    "samuel": ("sam", "sammy"),
    "samantha": ("sammie",),
    "daniel": ("dan", "danny"),
    "joseph": ("joe", "joey"),
    "anthony": ("tony",),
    "steven": ("steve",),
    "stephen": ("steph",),
    "matthew": ("matt",),
    "andrew": ("andy", "drew"),
    "nicholas": ("nick", "nicky"),
    "benjamin": ("ben", "benny"),
    "jennifer": ("jen", "jenny"),
    "susan": ("sue", "susie"),
    "margaret": ("maggie", "meg", "peggy"),
    "patricia": ("pat", "patty", "trish"),
    "abigail": ("abby",),
    "edward": ("ed", "eddie", "ted", "teddy"),
    "charles": ("charlie", "chuck"),
    "gregory": ("greg",),
    "john": ("johnny", "jack"),
    "jonathan": ("jon",),
    "jessica": ("jess", "jessie"),
    "rebecca": ("becky", "becca"),
    "victoria": ("vicky", "tori"),
    "timothy": ("tim", "timmy"),
    "lawrence": ("larry",),
    "joshua": ("josh",),
    "nathan": ("nate",),
    "zachary": ("zach", "zack"),
    "kenneth": ("ken", "kenny"),
    "ronald": ("ron", "ronnie"),
    "donald": ("don", "donnie"),
    "jeffrey": ("jeff",),
    "frederick": ("fred", "freddie"),
    "henry": ("hank", "harry"),
    "sandra": ("sandy",),
    "cynthia": ("cindy",),
    "pamela": ("pam",),
    "deborah": ("deb", "debbie"),
    "kimberly": ("kim",),
    "amanda": ("mandy",),
    "christina": ("tina",),
    "theodore": ("theo",),
    "isabella": ("bella", "izzy"),
    "olivia": ("liv",),
    "sophia": ("sophie",),
    "gabriel": ("gabe",),
    "emily": ("em",),
    "madeline": ("maddie",),
}

NICKNAMES: dict[str, str] = {
    nick: formal for formal, nicks in _FORMAL_TO_NICKS.items() for nick in nicks
}


@cache
def package_forms() -> dict[str, tuple[str, ...]]:
    """nickname → the formal names the `nicknames` package gives it (sorted), read once from the
    package's own CSV (name1, relationship, name2: `robert,has_nickname,bob`)."""
    forms: dict[str, set[str]] = {}
    with resources.files("nicknames").joinpath("names.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["relationship"] == "has_nickname":
                forms.setdefault(row["name2"], set()).add(row["name1"])
    return {nick: tuple(sorted(formal)) for nick, formal in forms.items()}


@cache
def forms_table() -> dict[str, list[str]]:
    """first name → the names it is related to as a nickname (package and table together; the
    matcher reads the relation both ways)."""
    merged: dict[str, set[str]] = {n: set(f) for n, f in package_forms().items()}
    for nick, formal in NICKNAMES.items():
        merged.setdefault(nick, set()).add(formal)
    return {name: sorted(formal) for name, formal in merged.items()}


def canonical_first_name(expr: pl.Expr) -> pl.Expr:
    """The formal form of a (normalized) first name (the table); unchanged when it is not a
    nickname there."""
    return expr.replace(NICKNAMES)


def first_name_forms(expr: pl.Expr) -> pl.Expr:
    """The names a (normalized) first name is related to as a nickname; null when none."""
    table = forms_table()
    return expr.replace_strict(
        list(table), list(table.values()), default=None, return_dtype=pl.List(pl.String)
    )
