"""What the generator knows while it runs: the config, the one random stream, the id keys and
counters, the people (``Person``, each with its ``Persona`` faces), and one entry per
conversation; later stages add the rows and the files.

Each stage is a class that extends the one before (``People`` -> ``Cases`` -> ``Conversations``
-> ``Rows`` -> ``Layout`` -> ``Files``) and adds its step over this state, so every random draw
still comes from ``self.rng`` in the order the steps run.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from contacts.demo.config import FORMATS, GeneratorConfig
from contacts.demo.identifiers import Signer

if TYPE_CHECKING:
    import polars as pl


class Persona:
    """One face of a person: the facets a group of interactions reveals."""

    __slots__ = (
        "first",
        "full",
        "email",
        "phone",
        "wa",
        "sessions",
        "uid_ok",
        "chans",
        "cum",
        "slack",
        "gid",
    )

    def __init__(self, first, last, email, phone, sessions, uid_ok, wa, slack):
        self.first = first
        self.full = f"{first} {last}"
        self.email = email  # (addr, local, domain, kind) kind: 0 plain, 1 gmail, 2 throwaway
        self.phone = phone  # (cc, nsn) or None
        self.sessions = sessions
        self.uid_ok = uid_ok
        self.wa = wa
        self.slack = slack
        self.gid = -1  # index among all personas
        self.chans: tuple[str, ...] = ()
        self.cum: tuple[float, ...] = ()


class Person:
    __slots__ = (
        "idx",
        "pid",
        "case",
        "group",
        "first",
        "last",
        "personas",
        "uid",
        "uhash",
        "plan",
        "company",
        "tags",
        "aj_full",
        "aj_city",
        "tz",
        "region",
        "forced",
        "generic",
        "api",
    )

    def __init__(self, case: str):
        self.case = case
        self.group = None
        self.uid = None
        self.uhash = None
        self.plan = None
        self.company = -1
        self.forced: list = []  # [(persona index, channel, kwargs)] one interaction each
        self.generic: tuple[int, ...] = (0,)  # personas that ordinary conversations use
        self.api = False


class State:
    """The generator's state; the stage classes add the steps that fill it."""

    # set by later stages: Rows (n, good), Layout (order, files, copies, ghosts, copy_tab,
    # ghost_tab) and Files (the time lookup tables)
    n: int  # number of distinct good interactions
    good: pl.DataFrame  # one row per good interaction (ROW_SCHEMA + day, person, truth flags)
    order: pl.Series  # good rows in export order (day, time)
    files: list[dict]
    copies: list[tuple[int, int, bool]]
    ghosts: list[dict]
    copy_tab: pl.DataFrame | None
    ghost_tab: pl.DataFrame | None

    def __init__(self, cfg: GeneratorConfig):
        if cfg.persons < 1:
            raise ValueError("persons must be >= 1")
        if cfg.days < 1:
            raise ValueError("days must be >= 1")
        if not cfg.formats or any(f not in FORMATS for f in cfg.formats):
            raise ValueError(f"formats must be a non-empty subset of {FORMATS}")
        self.cfg = cfg
        self.days = cfg.days
        self.rng = random.Random(cfg.seed)
        self.r = self.rng.random
        self.secret = cfg.secret.encode()
        self.sign = Signer(self.secret)
        r64 = self.rng.getrandbits
        self.k_int, self.k_conv, self.k_sess = r64(64), r64(64), r64(64)
        self.k_uid = self.rng.randrange(9_000_000)
        self.n_sess = self.n_uid = 0
        self.used_email: set[str] = set()
        self.used_phone: set[tuple[int, str]] = set()
        start = datetime(
            cfg.start_day.year, cfg.start_day.month, cfg.start_day.day, tzinfo=timezone.utc
        )
        self.day0 = int(start.timestamp())
        self.companies: list[tuple[str, str, str]] = []
        self.comp_canon: list[str] = []
        self.persons: list[Person] = []
        self.chan_cache: dict[tuple, tuple] = {}
        self.personas_all: list[Persona] = []
        # one entry per conversation
        self.c_person: list[int] = []
        self.c_persona: list[int] = []
        self.c_ch: list[int] = []
        self.c_sess: list = []  # session number or None
        self.c_tags: list = []  # ";"-joined conversation tags or None
        self.c_day: list[int] = []
        self.c_t0: list[int] = []
        self.c_size: list[int] = []
        self.c_flags: list[int] = []  # 1 first interaction anonymous, 2 first identifies the
        # verified user, 4 the conversation has an id
        # planted single interactions: conversation index -> values decided in Python
        self.explicit: dict[int, tuple] = {}
        self.forged_conv: dict[int, str | None] = {}  # -> victim person id
        self.typo_conv: dict[int, str] = {}  # -> typo kind

    def _sid(self) -> int:
        self.n_sess += 1  # rendered as "sess_<hex>" in bulk later
        return self.n_sess

    def _uid(self) -> str:
        self.n_uid += 1
        return f"u_{(self.n_uid * 7919 + self.k_uid) % 9_000_000 + 10_000}"
