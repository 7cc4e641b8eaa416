"""A small nickname table: nickname → formal first name (lower case, accents folded).

Names that are formal in one culture and nicknames in another (e.g. `jack`) map conservatively:
only widely used English diminutives are listed. Extend the table, do not special-case code.
"""

from __future__ import annotations

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


def canonical_first_name(expr: pl.Expr) -> pl.Expr:
    """The formal form of a (normalized) first name; unchanged when it is not a nickname."""
    return expr.replace(NICKNAMES)
