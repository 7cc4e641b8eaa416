"""Deterministic, seeded generator of realistic ``askvault`` interaction exports with ground truth.

Layout written (see ``/work/shared/SPEC.md``)::

    OUT/askvault/<YYYY-MM-DD>/export-001.jsonl[.gz] | export-002.csv[.gz] | export-003.parquet
    OUT/askvault/<last day>/broken.parquet          (bad_records: plain text, not Parquet)
    OUT/_truth/truth.parquet                        one row per distinct good interaction id
    OUT/_truth/bad_records.parquet                  where each planted bad record sits

``OUT/askvault`` and ``OUT/_truth`` are replaced if they exist (the generator owns them); nothing
else under ``OUT`` is touched.

Every person has stable identity facets (names, emails, phone, browser sessions, user id, company,
tags, attributes); each interaction reveals a random subset of them, shaped by its channel. On top
of that the generator plants hard cases for a deterministic merger (households, switchboards,
throwaway emails, kiosk sessions, forged user ids, second emails, typos, nicknames) and
re-deliveries. Output is byte-identical for the same config (with the locked Polars and
phonenumbers versions, any thread count): one ``random.Random(seed)`` stream, no set/dict-order
or clock dependence, fixed writer settings, gzip with ``mtime=0``. Ids are ``int_``/``conv_``/
``sess_`` plus a 64-bit scramble of a counter (unique by construction, no visible order).

People, their facets and their conversations are made in Python; the interactions inside the
conversations are then expanded, decided and rendered in bulk with Polars expressions (1M
interactions in seconds). Every random draw comes from one ``random.Random(seed)``: the bulk
stage draws its per-row bytes with Polars' seeded sampler, seeded from that stream.

Files: JSONL (null fields omitted, or written as ``null`` in "dense" files; lists as arrays,
``attributes`` as an object, ``occurred_at`` sometimes epoch seconds), CSV (lists ``;``-joined,
``attributes`` a JSON string, empty cell = null) and Parquet (lists as ``list<string>``,
``attributes`` a JSON string, ``occurred_at`` a ``timestamp[us, UTC]`` in every other Parquet file
and ISO text in the rest). ``occurred_at`` text is ISO 8601 with ``Z`` or the person's offset.

Truth columns (``_truth/truth.parquet``): ``interaction_id``, ``person_id``, ``case`` (the planted
case that produced the interaction: ``plain``, ``redelivered`` for a plain person's interaction
delivered more than once, else the person's case), ``person_case``, ``case_group`` (e.g.
``household-0003``; null for plain people), ``related_person_id`` (for a forged interaction: the
victim whose user id was forged), ``channel``, ``verified`` (carries a user id with a valid hash),
``forged``, ``anonymous`` (no email, phone or user id: only a session), ``typo`` (``name`` /
``email`` / ``phone`` on the interaction that carries the typo), ``redelivered``, ``updated`` (a
later delivery changed the content; the latest delivery is the truth), ``deliveries``,
``first_export_day``, ``last_export_day``.

``_truth/bad_records.parquet``: ``kind``, ``file`` (relative to OUT), ``row`` (SPEC numbering:
JSONL line, CSV line with the header as line 1, Parquet row; null for a whole bad file),
``interaction_id``.
"""

from __future__ import annotations

import bisect
import csv
import gc
import gzip
import hashlib
import hmac
import io
import itertools
import json
import math
import random
import re
import shutil
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import phonenumbers
import polars as pl

from dedup.schema import CANONICAL_FIELDS

__all__ = [
    "GeneratorConfig",
    "GeneratedExports",
    "generate_exports",
    "generate_benchmark_exports",
    "NATIVE_SOURCES",
    "DEMO_STAFF_DOMAIN",
    "CANONICAL_COLUMNS",
    "CASES",
]


@dataclass(frozen=True)
class GeneratorConfig:
    persons: int = 300  # number of true people
    days: int = 7  # number of export days
    start_day: date = date(2026, 11, 1)
    seed: int = 42
    secret: str = "demo-identity-secret"  # ASKVAULT_IDENTITY_SECRET used to sign user ids
    formats: tuple[str, ...] = ("jsonl", "csv", "parquet")  # rotate formats across days/files
    interactions_per_person: float = 4.0  # mean; actual count per person varies (geometric, 1..40)
    bad_records: bool = True  # add a handful of malformed records in the last days
    gzip_some: bool = True  # write some files gzip-compressed (.jsonl.gz / .csv.gz)
    # Also write native provider exports (WhatsApp, Slack, email, SMS, HubSpot, Salesforce) for a
    # share of the plain persons; off by default so the askvault output stays byte-identical.
    native: bool = False


@dataclass(frozen=True)
class GeneratedExports:
    root: Path  # the EXPORTS folder
    truth_path: Path  # parquet: interaction_id, person_id, plus case flags
    interactions: int  # number of distinct good interaction ids written
    persons: int
    bad_records: int


# The generator writes exactly the canonical record of SPEC; one list, owned by the engine.
CANONICAL_COLUMNS: tuple[str, ...] = CANONICAL_FIELDS

#: every value the truth ``case`` / ``person_case`` columns can take
CASES: tuple[str, ...] = (
    "plain",
    "household",
    "switchboard",
    "throwaway_email",
    "kiosk",
    "forged",
    "second_email",
    "second_email_nokey",
    "typo",
    "nickname",
    "redelivered",
)

_FORMATS = ("jsonl", "csv", "parquet")

# ----------------------------------------------------------------------------------------------
# vocabularies
# ----------------------------------------------------------------------------------------------

_FIRST = (
    "James",
    "Mary",
    "John",
    "Patricia",
    "Jennifer",
    "Linda",
    "David",
    "Barbara",
    "Susan",
    "Jessica",
    "Sarah",
    "Karen",
    "Nancy",
    "Lisa",
    "Mark",
    "Sandra",
    "Ashley",
    "Emily",
    "Donna",
    "Kevin",
    "Laura",
    "Brian",
    "Olivia",
    "Ethan",
    "Sophia",
    "Noah",
    "Emma",
    "Liam",
    "Ava",
    "José",
    "Zoë",
    "Øyvind",
    "François",
    "Chloé",
    "Søren",
    "Björn",
    "Łukasz",
    "Małgorzata",
    "João",
    "Ana",
    "Anh",
    "Minh",
    "Priya",
    "Rahul",
    "Aarav",
    "Ananya",
    "Wei",
    "Mei",
    "Hiroshi",
    "Yuki",
    "Fatima",
    "Mohammed",
    "Olga",
    "Dmitri",
    "Siobhán",
    "Niamh",
    "Renée",
    "André",
    "Jürgen",
    "Inês",
    "Lucía",
    "Mateo",
    "Camille",
    "Léa",
    "Håkon",
    "Ingrid",
    "Sven",
    "Aoife",
)
_NICK = {
    "Robert": ("Bob", "Rob", "Bobby"),
    "Katherine": ("Kathy", "Kate", "Katie"),
    "William": ("Bill", "Will", "Billy"),
    "Elizabeth": ("Liz", "Beth", "Betty"),
    "Michael": ("Mike", "Mikey"),
    "Richard": ("Rick", "Dick", "Rich"),
    "Joseph": ("Joe", "Joey"),
    "Thomas": ("Tom", "Tommy"),
    "Charles": ("Charlie", "Chuck"),
    "Christopher": ("Chris",),
    "Daniel": ("Dan", "Danny"),
    "Matthew": ("Matt",),
    "Anthony": ("Tony",),
    "Margaret": ("Maggie", "Peggy"),
    "Steven": ("Steve",),
    "Andrew": ("Andy", "Drew"),
    "Jonathan": ("Jon",),
    "Alexander": ("Alex", "Sasha"),
    "Nicholas": ("Nick",),
    "Benjamin": ("Ben",),
    "Samuel": ("Sam",),
    "Rebecca": ("Becky",),
    "Victoria": ("Vicky", "Tori"),
    "Jacqueline": ("Jackie",),
}
_NICK_FORMAL = tuple(_NICK)
_FIRST_ALL = _FIRST + _NICK_FORMAL
_LAST = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "García",
    "Miller",
    "Davis",
    "Rodríguez",
    "Martínez",
    "Hernández",
    "López",
    "Wilson",
    "Anderson",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Müller",
    "Schmidt",
    "Schäfer",
    "Østergaard",
    "Dubois",
    "Lefèvre",
    "Kowalski",
    "Nowak",
    "Wiśniewski",
    "O'Brien",
    "O'Connor",
    "Patel",
    "Sharma",
    "Gupta",
    "Tanaka",
    "Suzuki",
    "Satō",
    "Kim",
    "Park",
    "Chen",
    "Wang",
    "Zhang",
    "Ivanov",
    "Petrov",
    "Jensen",
    "Hansen",
    "Nielsen",
    "Andersson",
    "Johansson",
    "Silva",
    "Santos",
    "Costa",
    "Rossi",
    "Russo",
    "Bianchi",
    "Fernández",
    "Novák",
    "Dvořák",
    "Papadopoulos",
    "Yılmaz",
    "Kaya",
    "Haddad",
    "Cohen",
    "Murphy",
    "Kelly",
    "Byrne",
)
_COMPANY_A = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Wonka",
    "Soylent",
    "Cyberdyne",
    "Tyrell",
    "Aperture",
    "Monarch",
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Blue River",
    "Red Maple",
    "Silver Lake",
    "Bright Harbor",
    "Nordlicht",
    "Müller",
    "Lumière",
    "Sakura",
    "Øresund",
    "Atlas",
    "Zenith",
    "Pinnacle",
    "Vertex",
    "Quantum",
    "Nimbus",
    "Evergreen",
    "Ironclad",
    "Lighthouse",
    "Summit",
    "Crescent",
    "Polaris",
    "Juniper",
)
_COMPANY_B = (
    "",
    " Analytics",
    " Labs",
    " Systems",
    " Logistics",
    " Health",
    " Foods",
    " Robotics",
    " Media",
    " Capital",
    " Software",
    " Consulting",
    " Energy",
    " Studio",
    " Networks",
)
_LEGAL = {
    "inc": ("{B} Inc", "{B}, Inc.", "{B} Incorporated", "{B}", "{U}, INC.", "{l} inc"),
    "llc": ("{B} LLC", "{B}, L.L.C.", "{B}", "{B} llc", "{U} LLC"),
    "ltd": ("{B} Ltd", "{B} Ltd.", "{B} Limited", "{B}", "{U} LTD"),
    "gmbh": ("{B} GmbH", "{B} G.m.b.H.", "{B}", "{B} gmbh"),
    "corp": ("{B} Corp", "{B} Corp.", "{B} Corporation", "{B}", "{U} CORP"),
    "sa": ("{B} SA", "{B} S.A.", "{B}", "{U} S.A."),
    "none": ("{B}", "{U}", "{l}"),
}
_LEGAL_KINDS = ("inc", "inc", "inc", "llc", "ltd", "gmbh", "corp", "sa", "none")
_TLDS = (".com", ".com", ".com", ".io", ".co", ".de", ".net")
_PERSONAL_DOMAINS = (
    "gmail.com",
    "gmail.com",
    "gmail.com",
    "gmail.com",
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "proton.me",
    "gmx.de",
    "web.de",
    "orange.fr",
    "yahoo.co.uk",
    "fastmail.com",
    "aol.com",
)
_DOMAIN_TYPOS = {
    "gmail.com": ("gmial.com", "gmail.con", "gamil.com", "gmai.com"),
    "yahoo.com": ("yaho.com", "yahooo.com"),
    "outlook.com": ("outlok.com", "outlook.co"),
    "hotmail.com": ("hotmial.com", "hotmail.co"),
    "icloud.com": ("icloud.co", "iclod.com"),
}
_THROWAWAY = ("test@test.com", "asdf@asdf.com", "no@no.com", "a@a.com", "none@example.com")
_PLUS_TAGS = ("news", "support", "shop", "work", "2026", "spam", "promo", "askvault")
_PLANS = ("free", "free", "paid", "paid", "growth", "enterprise", "internal")
_CONTACT_TAGS = (
    "vip",
    "churn-risk",
    "beta",
    "newsletter",
    "enterprise-trial",
    "partner",
    "reseller",
    "early-adopter",
    "high-intent",
    "student",
    "nonprofit",
    "do-not-contact",
)
_CONV_TAGS = (
    "billing",
    "bug",
    "onboarding",
    "pricing",
    "refund",
    "feature-request",
    "urgent",
    "sales",
    "integration",
    "account",
    "security",
    "feedback",
    "how-to",
    "cancellation",
)
_SOURCES = ("organic", "google-ads", "referral", "partner", "webinar", "product-hunt", "linkedin")
_CAMPAIGNS = ("black-friday-2026", "q4-launch", "webinar-nov", "retargeting", "newsletter-44")
_SEATS = (1, 3, 5, 10, 25, 50, 200)
_CITIES = {
    "US": ("New York", "San Francisco", "Boston", "Chicago", "Austin", "Seattle", "Denver"),
    "GB": ("London", "Manchester", "Edinburgh"),
    "DE": ("Berlin", "München", "Köln", "Hamburg"),
    "FR": ("Paris", "Lyon", "Marseille"),
    "IN": ("Bengaluru", "Mumbai", "Pune"),
    "XX": ("São Paulo", "Zürich", "Kraków", "Oslo", "Hà Nội", "Montréal", "Tōkyō", "Amsterdam"),
}
_LANG = {"US": "en", "GB": "en", "DE": "de", "FR": "fr", "IN": "hi", "XX": "pt-BR"}
_TZ = {
    "US": (-300, -300, -360, -420, -480),
    "GB": (0,),
    "DE": (60,),
    "FR": (60,),
    "IN": (330,),
    "XX": (-180, 60, 120, 420, 540, -300),
}
# US area codes whose every [2-9]xx exchange is valid in libphonenumber's metadata (checked at
# import below on a sample; numbers stay away from the fictional 555 and N11 exchanges).
_US_AREAS = (
    201,
    202,
    206,
    212,
    213,
    214,
    215,
    303,
    310,
    312,
    404,
    408,
    412,
    415,
    503,
    512,
    602,
    614,
    617,
    646,
    702,
    713,
    718,
    720,
    801,
    919,
    971,
)
_DE_PREFIXES = (
    "151",
    "152",
    "157",
    "159",
    "162",
    "163",
    "170",
    "171",
    "172",
    "173",
    "174",
    "175",
    "176",
    "177",
    "178",
    "179",
)
_CC = {"US": 1, "GB": 44, "DE": 49, "FR": 33, "IN": 91}
_CHANNELS = ("widget", "whatsapp", "slack", "email", "sms", "api")
_CHANNELS_CAPS = ("Widget", "WhatsApp", "Slack", "Email", "SMS", "API")
_CH = {c: k for k, c in enumerate(_CHANNELS)}
_CONV_SIZES = {
    "widget": (1, 1, 2, 2, 2, 3, 3, 4),
    "whatsapp": (1, 1, 2, 2, 3, 4, 5),
    "email": (1, 1, 1, 2, 2, 3),
    "sms": (1, 1, 2, 2, 3),
    "slack": (1, 1, 2, 3),
    "api": (1, 1, 1, 1, 2),
}

_MASK64 = (1 << 64) - 1
_MULT = 0x9E3779B97F4A7C15  # odd: n -> (n + k) * _MULT mod 2**64 is a bijection
_Z = 10000  # tz code: render with "Z"
_EPOCH = 10001  # tz code: epoch seconds in JSONL ("Z" elsewhere)


def _ascii(s: str) -> str:
    for a, b in (
        ("ø", "o"),
        ("Ø", "O"),
        ("ł", "l"),
        ("Ł", "L"),
        ("ß", "ss"),
        ("æ", "ae"),
        ("đ", "d"),
        ("ı", "i"),
    ):
        s = s.replace(a, b)
    s = unicodedata.normalize("NFKD", s)
    return "".join(c for c in s if c.isascii() and c.isalpha()).lower()


_ASCII = {n: _ascii(n) for n in _FIRST_ALL + _LAST + tuple(x for v in _NICK.values() for x in v)}


def _norm_email(addr: str) -> str:
    """SPEC ``email_norm`` of a clean generated address (keeps different people's emails apart)."""
    local, _, domain = addr.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        return local.replace(".", "") + "@gmail.com"
    return local + "@" + domain


def _valid_phone(cc: int, nsn: str) -> bool:
    return phonenumbers.is_valid_number(
        phonenumbers.PhoneNumber(country_code=cc, national_number=int(nsn))
    )


_MOBILE: dict[int, tuple] = {}


def _fast_valid(cc: int, nsn: str) -> bool:
    """A sufficient test for libphonenumber validity: the number fits the country's general and
    mobile patterns and lengths (what ``is_valid_number`` checks, minus its slow type search)."""
    m = _MOBILE.get(cc)
    if m is None:
        md = phonenumbers.PhoneMetadata.metadata_for_region(
            phonenumbers.region_code_for_country_code(cc)
        )
        gen, mob = md.general_desc, md.mobile
        m = _MOBILE[cc] = (
            re.compile(gen.national_number_pattern),
            re.compile(mob.national_number_pattern),
            frozenset(mob.possible_length or gen.possible_length),
        )
    return len(nsn) in m[2] and bool(m[0].fullmatch(nsn)) and bool(m[1].fullmatch(nsn))


def _check_us_areas() -> None:
    for a in _US_AREAS:
        for ex, line in ((200, 0), (549, 1234), (999, 9999)):
            if not _valid_phone(1, f"{a}{ex}{line:04d}"):  # pragma: no cover - metadata drift
                raise RuntimeError(f"phonenumbers no longer accepts US area code {a}")


_check_us_areas()


def _fmt_phone(cc: int, nsn: str, style: int) -> str:
    """One of the spellings people type; every one parses (default region US) to the number."""
    if cc == 1:
        a, b, c = nsn[:3], nsn[3:6], nsn[6:]
        if style == 0:
            return f"({a}) {b}-{c}"
        if style == 1:
            return f"{a}.{b}.{c}"
        if style == 2:
            return f"+1 {a} {b} {c}"
        if style == 3:
            return "+1" + nsn
        return f"{a}-{b}-{c}"
    if style in (1, 3):
        return f"+{cc}{nsn}"
    if cc == 44:
        return f"+44 {nsn[:4]} {nsn[4:]}"
    if cc == 49:
        return f"+49 {nsn[:3]} {nsn[3:]}"
    if cc == 33:
        return f"+33 {nsn[0]} {nsn[1:3]} {nsn[3:5]} {nsn[5:7]} {nsn[7:]}"
    return f"+{cc} {nsn[:5]} {nsn[5:]}"


def _user_hash(secret: bytes, user_id: str) -> str:
    """Hex HMAC-SHA256 of ``user_id`` under ``secret`` (what the widget's identify() sends)."""
    return hmac.digest(secret, user_id.encode(), "sha256").hex()


class _Signer:
    """``_user_hash`` for one secret, with the HMAC pads hashed once (many ids, same key)."""

    def __init__(self, secret: bytes):
        key = hashlib.sha256(secret).digest() if len(secret) > 64 else secret
        key = key.ljust(64, b"\0")
        self.inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self.outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def __call__(self, user_id: str) -> str:
        i = self.inner.copy()
        i.update(user_id.encode())
        o = self.outer.copy()
        o.update(i.digest())
        return o.hexdigest()


_enc = json.encoder.encode_basestring  # C-accelerated; keeps non-ASCII (files are UTF-8)
_CITY_FRAG = {k: tuple('{"city":' + _enc(x) for x in v) for k, v in _CITIES.items()}
_SOURCE_FRAG = tuple(',"signup_source":' + _enc(x) for x in _SOURCES)
_LANG_FRAG = {k: ',"language":' + _enc(v) for k, v in _LANG.items()}
_CAMPAIGN_FRAG = tuple(',"utm_campaign":' + _enc(x) for x in _CAMPAIGNS)
_SEATS_FRAG = tuple(f',"seats":{x}' for x in _SEATS)


def _num_id(prefix: str, n: int, key: int) -> str:
    """``prefix`` + a 64-bit scramble of the counter ``n`` (a bijection: ids never collide)."""
    return f"{prefix}{((n + key) * _MULT) & _MASK64}"


def _id_expr(prefix: str, num: pl.Expr, key: int) -> pl.Expr:
    """Vectorized ``_num_id`` (UInt64 arithmetic wraps like the mask); null stays null."""
    v = (num.cast(pl.UInt64) + pl.lit(key, pl.UInt64)) * pl.lit(_MULT, pl.UInt64)
    return pl.lit(prefix) + v.cast(pl.String)


def _check_vocabulary() -> None:
    # JSONL is rendered in bulk without escaping: no generated text may need it
    words = (
        _FIRST_ALL
        + _LAST
        + _COMPANY_A
        + _COMPANY_B
        + _PERSONAL_DOMAINS
        + _CONTACT_TAGS
        + _CONV_TAGS
        + _PLANS
        + _THROWAWAY
        + tuple(x for v in _NICK.values() for x in v)
        + tuple(x for v in _LEGAL.values() for x in v)
    )
    for w in words:
        if any(c in w for c in '"\\;') or any(ord(c) < 32 for c in w):
            raise RuntimeError(f"vocabulary word needs escaping: {w!r}")


_check_vocabulary()

# the canonical row layout while generating: tags as ";"-joined text, time as epoch + zone code
_ROW_SCHEMA = {
    "interaction_id": pl.String,
    "channel": pl.String,
    "t": pl.Int64,
    "tz": pl.Int64,
    "t_raw": pl.String,
    "conversation_id": pl.String,
    "session_id": pl.String,
    "user_id": pl.String,
    "user_hash": pl.String,
    "plan": pl.String,
    "email": pl.String,
    "phone": pl.String,
    "name": pl.String,
    "company": pl.String,
    "contact_tags": pl.String,
    "conversation_tags": pl.String,
    "attributes": pl.String,
}


class _Persona:
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


class _Person:
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


class _Gen:
    def __init__(self, cfg: GeneratorConfig):
        if cfg.persons < 1:
            raise ValueError("persons must be >= 1")
        if cfg.days < 1:
            raise ValueError("days must be >= 1")
        if not cfg.formats or any(f not in _FORMATS for f in cfg.formats):
            raise ValueError(f"formats must be a non-empty subset of {_FORMATS}")
        self.cfg = cfg
        self.days = cfg.days
        self.rng = random.Random(cfg.seed)
        self.r = self.rng.random
        self.secret = cfg.secret.encode()
        self.sign = _Signer(self.secret)
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
        self.persons: list[_Person] = []
        self.chan_cache: dict[tuple, tuple] = {}
        self.personas_all: list[_Persona] = []
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

    # ------------------------------------------------------------------------------ facets
    def _make_companies(self) -> None:
        combos = [(a, b) for a in _COMPANY_A for b in _COMPANY_B]
        self.rng.shuffle(combos)
        for a, b in combos[: min(len(combos), max(12, self.cfg.persons // 8))]:
            base = a + b
            kind = _LEGAL_KINDS[int(self.r() * len(_LEGAL_KINDS))]
            dom = _ascii(a) + _ascii(b) + _TLDS[int(self.r() * len(_TLDS))]
            self.companies.append((base, dom, kind))
            self.comp_canon.append(_LEGAL[kind][0].replace("{B}", base))

    def _company_name(self, ci: int) -> str:
        if self.r() < 0.6:
            return self.comp_canon[ci]
        base, _, kind = self.companies[ci]
        forms = _LEGAL[kind]
        f = forms[int(self.r() * len(forms))]
        return f.replace("{B}", base).replace("{U}", base.upper()).replace("{l}", base.lower())

    def _phone(self, region: str) -> tuple[int, str]:
        r = self.r
        if region == "XX":
            region = "US"
        while True:
            if region == "US":
                x = int(r() * 8_000_000) + 2_000_000  # exchange 200-999 and line, in one draw
                if x // 10000 == 555 or x // 10000 % 100 == 11:
                    continue
                key = (1, f"{_US_AREAS[int(r() * len(_US_AREAS))]}{x}")
            else:
                if region == "GB":
                    nsn = "7" + "45789"[int(r() * 5)] + f"{int(r() * 10**8):08d}"
                elif region == "DE":
                    nsn = _DE_PREFIXES[int(r() * len(_DE_PREFIXES))] + f"{int(r() * 10**8):08d}"
                elif region == "FR":
                    nsn = "6" + f"{int(r() * 10**8):08d}"
                else:
                    nsn = "6789"[int(r() * 4)] + f"{int(r() * 10**9):09d}"
                key = (_CC[region], nsn)
                if not _fast_valid(*key):
                    continue
            if key not in self.used_phone:
                self.used_phone.add(key)
                return key

    def _phone_typo(self, phone: tuple[int, str]) -> tuple[int, str]:
        cc, nsn = phone
        rr = self.rng.randrange
        while True:  # one mistyped digit among the last four
            pos = len(nsn) - 1 - rr(4)
            d = str((int(nsn[pos]) + 1 + rr(9)) % 10)
            key = (cc, nsn[:pos] + d + nsn[pos + 1 :])
            if key not in self.used_phone and (cc == 1 or _fast_valid(*key)):
                self.used_phone.add(key)
                return key

    def _email(self, first: str, last: str, domain: str | None) -> tuple[str, str, str, int]:
        r = self.r
        f = _ASCII.get(first) or _ascii(first) or "x"
        l_ = _ASCII.get(last) or _ascii(last) or "y"
        work = domain is not None
        if domain is None:
            domain = _PERSONAL_DOMAINS[int(r() * len(_PERSONAL_DOMAINS))]
        x = r()
        if work:
            local = (
                f"{f}.{l_}"
                if x < 0.5
                else f"{f[0]}{l_}"
                if x < 0.75
                else f
                if x < 0.9
                else f"{f}_{l_}"
            )
        else:
            local = (
                f"{f}.{l_}"
                if x < 0.3
                else f"{f}{l_}"
                if x < 0.5
                else f"{f}.{l_}{int(r() * 90) + 10}"
                if x < 0.7
                else f"{f[0]}{l_}"
                if x < 0.8
                else f"{l_}.{f}"
                if x < 0.9
                else f"{f}{l_[0]}{int(r() * 900) + 100}"
            )
        base = local
        gmail = domain == "gmail.com"
        used = self.used_email
        while True:
            # the SPEC email_norm of a clean lowercase address: only gmail changes (no dots)
            norm = local.replace(".", "") + "@gmail.com" if gmail else f"{local}@{domain}"
            if norm not in used:
                used.add(norm)
                return (f"{local}@{domain}", local, domain, 1 if gmail else 0)
            local = f"{base}{2 + int(r() * 998)}"

    def _email_typo(self, em: tuple[str, str, str, int]) -> str:
        _, local, domain, _k = em
        while True:
            typos = _DOMAIN_TYPOS.get(domain)
            if typos and self.r() < 0.8:
                addr = f"{local}@{typos[int(self.r() * len(typos))]}"
            else:
                spots = [
                    i
                    for i in range(len(local) - 1)
                    if local[i] != local[i + 1] and local[i].isalpha() and local[i + 1].isalpha()
                ]
                if not spots:
                    addr = f"{local}{local[-1]}@{domain}"
                else:
                    i = spots[int(self.r() * len(spots))]
                    addr = f"{local[:i]}{local[i + 1]}{local[i]}{local[i + 2 :]}@{domain}"
            norm = _norm_email(addr)
            if norm not in self.used_email:
                self.used_email.add(norm)
                return addr

    @staticmethod
    def _name_typo(first: str) -> str:
        for i in range(len(first) - 2, 0, -1):  # swap two adjacent letters, late first: Jonh
            if first[i] != first[i + 1]:
                return first[:i] + first[i + 1] + first[i] + first[i + 2 :]
        return first + first[-1]

    def _attrs(self, p: _Person) -> None:
        """The person's custom attributes as JSON text: all of them, and just the city."""
        r, region = self.r, p.region
        cities = _CITY_FRAG[region]
        c = cities[int(r() * len(cities))]
        p.aj_city = c + "}"
        if r() < 0.7:
            c += _SOURCE_FRAG[int(r() * len(_SOURCE_FRAG))]
        if r() < 0.35:
            c += _LANG_FRAG[region]
        if r() < 0.15:
            c += _CAMPAIGN_FRAG[int(r() * len(_CAMPAIGN_FRAG))]
        if p.company >= 0 and r() < 0.2:
            c += _SEATS_FRAG[int(r() * len(_SEATS_FRAG))]
        if r() < 0.1:
            c += ',"newsletter_opt_in":true' if r() < 0.5 else ',"newsletter_opt_in":false'
        p.aj_full = c + "}"

    def _sessions(self) -> list[int]:
        x = self.r()
        k = 1 if x < 0.6 else 2 if x < 0.9 else 3
        s = self.n_sess
        self.n_sess += k
        return list(range(s + 1, s + k + 1))

    def _base_person(
        self, case: str, *, first=None, last=None, region=None, company=None, verified=None
    ) -> _Person:
        r = self.r
        p = _Person(case)
        p.first = first or _FIRST_ALL[int(r() * len(_FIRST_ALL))]
        p.last = last or _LAST[int(r() * len(_LAST))]
        if region is None:
            x = r()
            region = (
                "US"
                if x < 0.72
                else "GB"
                if x < 0.77
                else "DE"
                if x < 0.82
                else "FR"
                if x < 0.86
                else "IN"
                if x < 0.9
                else "XX"
            )
        p.region = region
        tzs = _TZ[region]
        p.tz = tzs[int(r() * len(tzs))]
        if company is None:
            company = int(r() * len(self.companies)) if r() < 0.65 else -1
        p.company = company
        if verified is None:
            verified = r() < 0.3
        if verified:
            p.uid = self._uid()
            p.uhash = self.sign(p.uid)
            p.plan = _PLANS[int(r() * len(_PLANS))]
        p.api = verified or r() < 0.1
        x = r()
        if x < 0.55:
            p.tags = None
        else:
            nt = len(_CONTACT_TAGS)
            a = int(r() * nt)
            tags = [_CONTACT_TAGS[a]]
            if x >= 0.85:
                b = (a + 1 + int(r() * (nt - 1))) % nt
                tags.append(_CONTACT_TAGS[b])
                if x >= 0.97:
                    c = (b + 1 + int(r() * (nt - 2))) % nt
                    if c == a:
                        c = (c + 1) % nt
                    if c == b:
                        c = (c + 1) % nt
                    tags.append(_CONTACT_TAGS[c])
            p.tags = ";".join(tags)
        self._attrs(p)
        return p

    def _persona(
        self,
        p: _Person,
        *,
        first=None,
        email="auto",
        phone="auto",
        sessions=None,
        uid_ok=True,
        wa=None,
        slack=None,
    ) -> _Persona:
        r = self.r
        if phone == "auto":
            phone = self._phone(p.region) if r() < 0.6 else None
        if email == "auto":
            if phone is not None and r() < 0.1:
                email = None  # phone-only person (e.g. WhatsApp)
            else:
                dom = self.companies[p.company][1] if p.company >= 0 and r() < 0.6 else None
                email = self._email(first or p.first, p.last, dom)
        if wa is None:
            wa = phone is not None and r() < (0.4 if phone[0] == 1 else 0.8)
        if slack is None:
            slack = (
                email is not None
                and p.company >= 0
                and email[2] == self.companies[p.company][1]
                and r() < 0.35
            )
        pa_ = _Persona(
            first or p.first, p.last, email, phone, sessions or self._sessions(), uid_ok, wa, slack
        )
        self._channels(p, pa_)
        return pa_

    def _channels(self, p: _Person, pa_: _Persona) -> None:
        pa_.gid = len(self.personas_all)
        self.personas_all.append(pa_)
        has_uid = p.uid is not None and pa_.uid_ok
        key = (pa_.email is not None, pa_.phone is not None, pa_.wa, pa_.slack, p.api, has_uid)
        hit = self.chan_cache.get(key)
        if hit is None:
            chans, w = ["widget"], [40.0]
            if key[0]:
                chans.append("email")
                w.append(20.0)
            if key[1]:
                if pa_.wa:
                    chans.append("whatsapp")
                    w.append(16.0)
                chans.append("sms")
                w.append(8.0)
            if pa_.slack:
                chans.append("slack")
                w.append(10.0)
            if p.api and (key[0] or has_uid):
                chans.append("api")
                w.append(12.0 if has_uid else 4.0)
            tot, acc, cum = sum(w), 0.0, []
            for x in w:
                acc += x / tot
                cum.append(acc)
            cum[-1] = 1.0
            hit = self.chan_cache[key] = (tuple(chans), tuple(cum))
        pa_.chans, pa_.cum = hit

    # ------------------------------------------------------------------------ the people
    def _make_persons(self) -> None:
        rr = self.rng.randrange
        P = self.cfg.persons
        self._make_companies()
        order = (
            "household",
            "switchboard",
            "throwaway_email",
            "kiosk",
            "forged",
            "second_email",
            "second_email_nokey",
            "typo",
            "nickname",
        )
        plan = {
            "household": (max(1, P // 100), 2, 4),
            "switchboard": (max(1, P // 150), 3, 6),
            "throwaway_email": (max(1, P // 2500), 5, 10),
            "kiosk": (max(1, P // 2500), 5, 10),
            "forged": (max(1, P // 200), 1, 1),
            "second_email": (max(1, P // 120), 1, 1),
            "second_email_nokey": (max(1, P // 120), 1, 1),
            "typo": (max(3, P // 60), 1, 1),
            "nickname": (max(2, P // 80), 1, 1),
        }
        sizes = {c: [lo + rr(hi - lo + 1) for _ in range(n)] for c, (n, lo, hi) in plan.items()}
        # round-robin over the cases so a small population still gets one of each first;
        # at least half of the people stay plain
        budget = P - max(3, (P + 1) // 2)
        planned: list[tuple[str, int, int]] = []
        for k in range(max(len(v) for v in sizes.values())):
            for case in order:
                if k < len(sizes[case]) and sizes[case][k] <= budget:
                    planned.append((case, k, sizes[case][k]))
                    budget -= sizes[case][k]
        special: list[_Person] = []
        forgers: list[_Person] = []
        n_typo = 0
        for case, k, size in planned:
            members = getattr(self, "_case_" + case)(size, k)
            for m in members:
                m.group = f"{case}-{k + 1:04d}"
                if case == "typo":
                    self._plant_typo(m, ("name", "email", "phone")[n_typo % 3])
                    n_typo += 1
            special.extend(members)
            if case == "forged":
                forgers.extend(members)
        plain = []
        for _ in range(P - len(special)):
            p = self._base_person("plain")
            p.personas = [self._persona(p)]
            plain.append(p)
        # forged: the attacker's interaction carries a real verified person's user id with a
        # hash that does not verify, plus the attacker's own email
        victims = [p for p in plain if p.uid is not None] or [
            p for p in special if p.uid is not None and p.case != "forged"
        ]
        for a in forgers:
            if victims:
                v = victims[rr(len(victims))]
                a.forced.append(
                    (
                        0,
                        "widget" if self.r() < 0.5 else "api",
                        {
                            "uid": v.uid,
                            "uhash": self._bad_hash(v.uid),
                            "need_email": True,
                            "name": True,
                            "forged": v,
                        },
                    )
                )
            else:  # nobody is verified: forge an id nobody owns
                a.forced.append(
                    (
                        0,
                        "api",
                        {"uid": self._uid(), "uhash": "0" * 64, "need_email": True, "forged": None},
                    )
                )
        people = special + plain
        self.rng.shuffle(people)
        width = max(6, len(str(len(people))))
        for i, p in enumerate(people):
            p.idx = i
            p.pid = f"p{i + 1:0{width}d}"
        self.persons = people

    def _bad_hash(self, uid: str) -> str:
        x = self.r()
        if x < 0.35:
            return _user_hash(b"not-the-workspace-secret", uid)  # signed with a wrong secret
        if x < 0.6:
            return f"{self.rng.getrandbits(256):064x}"
        if x < 0.8:
            return _user_hash(self.secret, uid)[:32]  # truncated real hash
        return _user_hash(self.secret, uid + "0")  # the valid hash of another id

    # each _case_* returns the members of one planted group
    def _case_household(self, size: int, k: int) -> list[_Person]:
        last = _LAST[int(self.r() * len(_LAST))]
        home = self._phone("US")
        firsts: list[str] = []
        while len(firsts) < size:
            f = _FIRST_ALL[int(self.r() * len(_FIRST_ALL))]
            if f not in firsts:
                firsts.append(f)
        out = []
        for f in firsts:
            p = self._base_person("household", first=f, last=last, region="US")
            p.personas = [self._persona(p, email=self._email(f, last, None), phone=home, wa=False)]
            p.forced.append(
                (
                    0,
                    "widget" if self.r() < 0.5 else "email",
                    {"need_email": True, "need_phone": True},
                )
            )
            out.append(p)
        return out

    def _case_switchboard(self, size: int, k: int) -> list[_Person]:
        ci = int(self.r() * len(self.companies))
        office = self._phone("US")
        out = []
        for _ in range(size):
            p = self._base_person("switchboard", region="US", company=ci)
            em = self._email(p.first, p.last, self.companies[ci][1])
            p.personas = [self._persona(p, email=em, phone=office, wa=False)]
            p.forced.append(
                (
                    0,
                    "email" if self.r() < 0.6 else "widget",
                    {"need_email": True, "need_phone": True, "company": True},
                )
            )
            out.append(p)
        return out

    def _case_throwaway_email(self, size: int, k: int) -> list[_Person]:
        fake = _THROWAWAY[k % len(_THROWAWAY)]
        local, _, dom = fake.partition("@")
        out = []
        for _ in range(size):
            p = self._base_person("throwaway_email", verified=False)
            ph = self._phone(p.region)
            throw = _Persona(
                p.first, p.last, (fake, local, dom, 2), ph, self._sessions(), True, False, False
            )
            self._channels(p, throw)
            real = self._persona(
                p, phone=ph, email=self._email(p.first, p.last, None) if self.r() < 0.6 else None
            )
            p.personas = [throw, real]
            p.generic = (1,)  # the fake address only ever comes with the person's own phone
            p.forced.append((0, "widget", {"need_email": True, "need_phone": True}))
            out.append(p)
        return out

    def _case_kiosk(self, size: int, k: int) -> list[_Person]:
        kiosk = self._sid()
        out = []
        for _ in range(size):
            p = self._base_person("kiosk")
            p.personas = [self._persona(p, email=self._email(p.first, p.last, None))]
            p.forced.append((0, "widget", {"need_email": True, "session": kiosk, "name": True}))
            out.append(p)
        return out

    def _case_forged(self, size: int, k: int) -> list[_Person]:
        p = self._base_person("forged", verified=False)
        p.personas = [self._persona(p, email=self._email(p.first, p.last, None))]
        return [p]

    def _case_second_email(self, size: int, k: int) -> list[_Person]:
        p = self._base_person("second_email", company=int(self.r() * len(self.companies)))
        ph = self._phone(p.region)
        work = self._persona(
            p, email=self._email(p.first, p.last, self.companies[p.company][1]), phone=ph
        )
        home = self._persona(
            p, email=self._email(p.first, p.last, None), phone=ph, sessions=work.sessions
        )
        p.personas = [work, home]
        p.generic = (0, 1)
        p.forced.append((0, "email", {"need_email": True, "need_phone": True}))
        p.forced.append((1, "widget", {"need_email": True, "need_phone": True}))
        return [p]

    def _case_second_email_nokey(self, size: int, k: int) -> list[_Person]:
        # work and personal faces share nothing but the name and the company
        p = self._base_person(
            "second_email_nokey", company=int(self.r() * len(self.companies)), verified=False
        )
        p.api = False
        work = self._persona(
            p, email=self._email(p.first, p.last, self.companies[p.company][1]), phone=None
        )
        home = self._persona(p, email=self._email(p.first, p.last, None), phone=None, slack=False)
        p.personas = [work, home]
        p.generic = (0, 1)
        p.forced.append((0, "email", {"need_email": True, "name": True, "company": True}))
        p.forced.append((1, "widget", {"need_email": True, "name": True, "company": True}))
        return [p]

    def _case_typo(self, size: int, k: int) -> list[_Person]:
        p = self._base_person("typo", company=int(self.r() * len(self.companies)))
        ph = self._phone(p.region)
        p.personas = [self._persona(p, email=self._email(p.first, p.last, None), phone=ph)]
        return [p]

    def _plant_typo(self, p: _Person, kind: str) -> None:
        pa_ = p.personas[0]
        # one interaction with the correct facets, one with the typo
        p.forced.append(
            (
                0,
                "email",
                {
                    "need_email": True,
                    "name": True,
                    "company": True,
                    "no_user": True,
                    "need_phone": kind == "phone",
                },
            )
        )
        if kind == "name":
            p.forced.append(
                (
                    0,
                    "widget",
                    {
                        "first": self._name_typo(pa_.first),
                        "need_email": True,
                        "name": True,
                        "typo": "name",
                        "no_user": True,
                    },
                )
            )
        elif kind == "email":
            p.forced.append(
                (
                    0,
                    "email",
                    {
                        "email_raw": self._email_typo(pa_.email),
                        "name": True,
                        "company": True,
                        "typo": "email",
                        "no_user": True,
                    },
                )
            )
        else:
            p.forced.append(
                (
                    0,
                    "sms",
                    {
                        "phone_key": self._phone_typo(pa_.phone),
                        "name": True,
                        "company": True,
                        "typo": "phone",
                    },
                )
            )

    def _case_nickname(self, size: int, k: int) -> list[_Person]:
        formal = _NICK_FORMAL[int(self.r() * len(_NICK_FORMAL))]
        nicks = _NICK[formal]
        nick = nicks[int(self.r() * len(nicks))]
        p = self._base_person("nickname", first=formal, company=int(self.r() * len(self.companies)))
        ph = self._phone(p.region) if self.r() < 0.7 else None
        work = self._persona(
            p, email=self._email(formal, p.last, self.companies[p.company][1]), phone=ph
        )
        home = self._persona(
            p,
            first=nick,
            email=self._email(nick, p.last, None),
            phone=ph if self.r() < 0.5 else None,
        )
        p.personas = [work, home]
        p.generic = (0, 1)
        p.forced.append((0, "email", {"need_email": True, "name": True}))
        p.forced.append((1, "widget", {"need_email": True, "name": True}))
        return [p]

    # ------------------------------------------------------------------- conversations
    def _make_conversations(self) -> None:
        """Every person's conversations (Python: one entry per conversation).

        The interactions inside them are expanded and decided in bulk by ``_rows``; the planted
        ("forced") single interactions get their values here, in ``_forced``.
        """
        r = self.r
        days, day0 = self.days, self.day0
        mean = self.cfg.interactions_per_person
        p_log = math.log(1.0 - 1.0 / mean) if mean > 1.0 else None
        c_person, c_persona = self.c_person.append, self.c_persona.append
        c_ch, c_sess, c_flags = self.c_ch.append, self.c_sess.append, self.c_flags.append
        c_tags, c_day, c_t0 = self.c_tags.append, self.c_day.append, self.c_t0.append
        c_size = self.c_size.append
        conv_tags, ntags, ch_code, sizes_of = _CONV_TAGS, len(_CONV_TAGS), _CH, _CONV_SIZES
        for p in self.persons:
            n = 1 if p_log is None else min(40, 1 + int(math.log(1.0 - r()) / p_log))
            for pi, ch, kw in p.forced:
                self._forced(p, p.personas[pi], ch, kw)
            n -= len(p.forced)
            first = p.uid is not None
            gen = p.generic
            pidx = p.idx
            while n > 0:
                pa_ = p.personas[gen[0] if len(gen) == 1 else gen[int(r() * len(gen))]]
                force = False
                if first:  # a verified user identifies() in the widget or over the API first
                    ch = "api" if "api" in pa_.chans and r() < 0.4 else "widget"
                    force = True
                    first = False
                else:
                    x, cum, j = r(), pa_.cum, 0
                    while cum[j] < x:
                        j += 1
                    ch = pa_.chans[j]
                sizes = sizes_of[ch]
                size = sizes[int(r() * len(sizes))]
                if size > n:
                    size = n
                n -= size
                d = int(r() * days)
                t0 = day0 + d * 86400 + int(r() * 79200)
                if r() < 0.05:
                    t0 -= 86400  # exported a day late
                c_person(pidx)
                c_persona(pa_.gid)
                c_ch(ch_code[ch])
                flags = 2 if force else 0
                if ch != "api" or r() < 0.7:
                    flags += 4  # has a conversation id
                if ch == "widget":
                    ss = pa_.sessions
                    c_sess(ss[0] if len(ss) == 1 else ss[int(r() * len(ss))])
                    # an anonymous visitor (session only) who leaves an email later on
                    if not force and (r() < 0.6 if size >= 2 else r() < 0.08):
                        flags += 1
                else:
                    c_sess(None)
                c_flags(flags)
                x = r()
                if x < 0.35:
                    c_tags(None)
                elif x < 0.8:
                    c_tags(conv_tags[int(r() * ntags)])
                else:
                    a = int(r() * ntags)
                    c_tags(conv_tags[a] + ";" + conv_tags[(a + 1 + int(r() * (ntags - 1))) % ntags])
                c_day(d)
                c_t0(t0)
                c_size(size)

    def _forced(self, p: _Person, pa_: _Persona, ch: str, kw: dict) -> None:
        """A planted single-interaction conversation; its identity values are decided here."""
        r = self.r
        d = int(r() * self.days)
        t0 = self.day0 + d * 86400 + int(r() * 79200)
        if r() < 0.05:
            t0 -= 86400
        ci = len(self.c_ch)
        self.c_person.append(p.idx)
        self.c_persona.append(pa_.gid)
        self.c_ch.append(_CH[ch])
        self.c_flags.append(4 if ch != "api" or r() < 0.7 else 0)
        if "session" in kw:
            self.c_sess.append(kw["session"])
        elif ch == "widget":
            self.c_sess.append(pa_.sessions[int(r() * len(pa_.sessions))])
        else:
            self.c_sess.append(None)
        self.c_tags.append(_CONV_TAGS[int(r() * len(_CONV_TAGS))] if r() < 0.5 else None)
        self.c_day.append(d)
        self.c_t0.append(t0)
        self.c_size.append(1)
        self.explicit[ci] = self._forced_values(p, pa_, ch, kw)
        if "forged" in kw:
            self.forged_conv[ci] = kw["forged"].pid if kw["forged"] is not None else None
        if "typo" in kw:
            self.typo_conv[ci] = kw["typo"]

    def _forced_values(self, p: _Person, pa_: _Persona, ch: str, kw: dict) -> tuple:
        """(user_id, user_hash, plan, email, phone, name, company) of a planted interaction; the
        same channel rules as the bulk path, plus what the planted case needs."""
        r = self.r
        need_email = kw.get("need_email", False) or "email_raw" in kw
        need_phone = kw.get("need_phone", False) or "phone_key" in kw
        want_name, want_comp = kw.get("name", False), kw.get("company", False)
        phone_key = kw.get("phone_key", pa_.phone)
        uid = uhash = plan = None
        if "uid" in kw:
            uid, uhash = kw["uid"], kw["uhash"]
        elif p.uid is not None and pa_.uid_ok and not kw.get("no_user") and ch in ("widget", "api"):
            if ch == "api" or r() < 0.85:
                uid, uhash = p.uid, p.uhash
                if r() < 0.7:
                    plan = p.plan
        has_email, has_phone, has_comp = (
            pa_.email is not None,
            phone_key is not None,
            p.company >= 0,
        )
        if ch in ("widget", "api"):
            email = need_email or (has_email and r() < (0.45 if uid else 0.85))
            phone = need_phone or (ch == "widget" and has_phone and r() < 0.22)
            if not (email or phone or uid):
                email, phone = has_email, not has_email
            name = want_name or r() < 0.6
            comp = has_comp and (want_comp or r() < 0.3)
        elif ch == "email":
            email, name = True, want_name or r() < 0.7
            phone = need_phone or (has_phone and r() < 0.12)
            comp = has_comp and (want_comp or r() < 0.2)
        elif ch in ("whatsapp", "sms"):
            email, phone = need_email, True
            name = want_name or r() < (0.9 if ch == "whatsapp" else 0.1)
            comp = has_comp and want_comp
        else:  # slack
            email, phone, name = need_email or r() < 0.9, need_phone, True
            comp = has_comp and (want_comp or r() < 0.6)
        e_val = ph_val = n_val = c_val = None
        if email:
            e_val = kw.get("email_raw") or self._email_value(pa_, r())
            if ch == "email" and r() < 0.35:
                e_val = f"{pa_.full} <{e_val.strip()}>"
        if phone and phone_key is not None:
            cc, nsn = phone_key
            ph_val = f"{cc}{nsn}" if ch == "whatsapp" else _fmt_phone(cc, nsn, int(r() * 5))
        if name:
            n_val = f"{kw['first']} {p.last}" if "first" in kw else self._name_value(pa_, ch, r())
        if comp:
            c_val = self._company_name(p.company)
        return (uid, uhash, plan, e_val, ph_val, n_val, c_val)

    def _email_value(self, pa_: _Persona, x: float) -> str:
        """One spelling of the persona's address (the bulk path in ``_rows`` mirrors this)."""
        r = self.r
        addr, local, domain, kind = pa_.email
        if x < 0.72:
            return addr
        if x < 0.8:
            if r() < 0.3:
                return addr.upper()
            return local[:1].upper() + local[1:] + "@" + domain[:1].upper() + domain[1:]
        if x < 0.85:
            return (" " + addr, addr + " ", "  " + addr + "  ")[int(r() * 3)]
        if kind == 1 and x >= 0.87:
            dl = local.replace(".", "")
            y = r()
            if y < 0.3:
                return dl + "@gmail.com"
            if y < 0.6:
                i = 1 + int(r() * (len(dl) - 1)) if len(dl) > 1 else 1
                return dl[:i] + "." + dl[i:] + "@gmail.com"
            return local + "@googlemail.com"
        if kind == 2:
            return addr
        return f"{local}+{_PLUS_TAGS[int(r() * len(_PLUS_TAGS))]}@{domain}"

    def _name_value(self, pa_: _Persona, ch: str, x: float) -> str:
        first, full = pa_.first, pa_.full
        if ch == "whatsapp" and x < 0.35:
            return first  # WhatsApp profile name
        if x < 0.76:
            return full
        if x < 0.81:
            return full.upper()
        if x < 0.86:
            return full.lower()
        if x < 0.91:
            return full.replace(" ", "  ", 1)
        if x < 0.95:
            return " " + full + " "
        if x < 0.97:
            return unicodedata.normalize("NFD", full)
        return first

    # ---------------------------------------------------------------------- rows, in bulk
    def _u8(self, n: int) -> pl.Series:
        """n seeded uniform bytes (0..255), one independent stream per call."""
        return pl.int_range(0, 256, dtype=pl.Int16, eager=True).sample(
            n, with_replacement=True, seed=self.rng.getrandbits(63)
        )

    def _rows(self) -> None:
        """Expand conversations into interactions and decide every field with Polars.

        The same rules as ``_forced_values`` / ``_email_value`` / ``_name_value``, vectorized;
        coin flips are seeded uniform bytes (``u_*``, 0..255: ``u < 218`` is p = 0.85).
        """
        persons, personas = self.persons, self.personas_all
        c, lit = pl.col, pl.lit
        conv = pl.DataFrame(
            {
                "person": pl.Series(self.c_person, dtype=pl.Int32),
                "persona": pl.Series(self.c_persona, dtype=pl.Int64),
                "ch": pl.Series(self.c_ch, dtype=pl.Int32),
                "sess": pl.Series(self.c_sess, dtype=pl.Int64),
                "vtags": pl.Series(self.c_tags, dtype=pl.String),
                "day": pl.Series(self.c_day, dtype=pl.Int32),
                "t0": pl.Series(self.c_t0, dtype=pl.Int64),
                "size": pl.Series(self.c_size, dtype=pl.Int32),
                "flags": pl.Series(self.c_flags, dtype=pl.Int32),
            }
        ).with_columns(anon=c("flags") % 2 == 1, force=c("flags") // 2 % 2 == 1)
        ids = conv.select(
            cid=_id_expr(
                "conv_",
                pl.when(c("flags") // 4 % 2 == 1).then(pl.int_range(pl.len(), dtype=pl.Int64) + 1),
                self.k_conv,
            ),
            sid=_id_expr("sess_", c("sess"), self.k_sess),
        )
        rows = (
            conv.drop("flags", "sess")
            .with_row_index("ci")
            .with_columns(k=pl.int_ranges(0, c("size"), dtype=pl.Int32))
            .explode("k")
        )
        n = self.n = rows.height
        names = (
            "uid",
            "plan",
            "email",
            "phone",
            "name",
            "comp",
            "evar",
            "esub",
            "epos",
            "disp",
            "pstyle",
            "nvar",
            "cform",
            "s1",
            "s2",
            "caps",
            "vt",
            "tz",
            "at",
            "ct",
        )
        rows = rows.with_columns([self._u8(n).alias("u_" + k) for k in names])

        # facets, indexed by persona gid / person idx
        ems = [pa_.email for pa_ in personas]
        s_addr = pl.Series([e[0] if e else None for e in ems], dtype=pl.String)
        s_first = pl.Series([pa_.first for pa_ in personas], dtype=pl.String)
        s_full = pl.Series([pa_.full for pa_ in personas], dtype=pl.String)
        # index style * personas + persona; styles 0-4 as typed, 5 the WhatsApp id
        np_ = len(personas)
        flat: list[str | None] = [None] * (6 * np_)
        for i, pa_ in enumerate(personas):
            if pa_.phone is None:
                continue
            cc, nsn = pa_.phone
            if cc == 1:  # _fmt_phone, inlined for the common case
                a, b, d = nsn[:3], nsn[3:6], nsn[6:]
                flat[i] = f"({a}) {b}-{d}"
                flat[np_ + i] = f"{a}.{b}.{d}"
                flat[2 * np_ + i] = f"+1 {a} {b} {d}"
                flat[3 * np_ + i] = "+1" + nsn
                flat[4 * np_ + i] = f"{a}-{b}-{d}"
            else:
                grouped, plus = _fmt_phone(cc, nsn, 0), f"+{cc}{nsn}"
                flat[i] = flat[2 * np_ + i] = flat[4 * np_ + i] = grouped
                flat[np_ + i] = flat[3 * np_ + i] = plus
            flat[5 * np_ + i] = f"{cc}{nsn}"
        s_phone = pl.Series(flat, dtype=pl.String)
        has_phone = pl.Series([pa_.phone is not None for pa_ in personas], dtype=pl.Boolean)
        forms = []
        for base, _, kind in self.companies:
            fs = _LEGAL[kind]
            for j in range(6):
                forms.append(
                    fs[j % len(fs)]
                    .replace("{B}", base)
                    .replace("{U}", base.upper())
                    .replace("{l}", base.lower())
                )
        s_forms = pl.Series(forms, dtype=pl.String)
        s_uid = pl.Series([p.uid for p in persons], dtype=pl.String)
        per, pna = c("person"), c("persona")
        rows = rows.with_columns(
            addr=lit(s_addr).gather(pna),
            has_phone=lit(has_phone).gather(pna),
            can_uid=(
                lit(pl.Series([pa_.uid_ok for pa_ in personas], dtype=pl.Boolean)).gather(pna)
                & lit(s_uid).gather(per).is_not_null()
            ),
            p_comp=lit(pl.Series([p.company for p in persons], dtype=pl.Int64)).gather(per),
            row=pl.int_range(pl.len(), dtype=pl.Int64),
        )
        ch = c("ch")
        is_w, is_wa, is_sl = ch == _CH["widget"], ch == _CH["whatsapp"], ch == _CH["slack"]
        is_em, is_sms, is_api = ch == _CH["email"], ch == _CH["sms"], ch == _CH["api"]
        has_email, has_comp = c("addr").is_not_null(), c("p_comp") >= 0
        live_w = is_w & ~(c("anon") & (c("k") == 0))  # a widget interaction that is not anonymous
        rows = rows.with_columns(
            uid_on=c("can_uid")
            & (is_api | (live_w & ((c("force") & (c("k") == 0)) | (c("u_uid") < 218))))
        )
        uid_on = c("uid_on")
        rows = rows.with_columns(
            e0=(
                pl.when(is_w)
                .then(
                    live_w
                    & has_email
                    & pl.when(uid_on).then(c("u_email") < 115).otherwise(c("u_email") < 218)
                )
                .when(is_em)
                .then(True)
                .when(is_sl)
                .then(c("u_email") < 230)
                .when(is_api)
                .then(has_email & (~uid_on | (c("u_email") < 154)))
                .otherwise(False)
            ),
            p0=(
                pl.when(is_w)
                .then(live_w & c("has_phone") & (c("u_phone") < 56))
                .when(is_wa | is_sms)
                .then(True)
                .when(is_em)
                .then(c("has_phone") & (c("u_phone") < 31))
                .otherwise(False)
            ),
        )
        fallback = (live_w | is_api) & ~c("e0") & ~c("p0") & ~uid_on  # say something at least
        ps, nv = c("u_pstyle"), c("u_nvar")
        style = (
            pl.when(is_wa)
            .then(5)
            .when(ps < 77)
            .then(0)
            .when(ps < 115)
            .then(1)
            .when(ps < 166)
            .then(2)
            .when(ps < 230)
            .then(3)
            .otherwise(4)
        )
        form = pl.when(c("u_cform") < 154).then(0).otherwise(c("u_cform") % 6)
        step = 20 + (c("u_s1").cast(pl.Int64) * 256 + c("u_s2")) % 900
        rows = rows.with_columns(
            email_on=c("e0") | (fallback & has_email),
            phone_on=c("p0") | (fallback & ~has_email),
            plan_on=uid_on & pl.when(is_w).then(c("u_plan") < 179).otherwise(c("u_plan") < 154),
            name_on=(
                pl.when(is_w)
                .then(live_w & (c("u_name") < 141))
                .when(is_wa)
                .then(c("u_name") < 230)
                .when(is_em | is_api)
                .then(c("u_name") < 179)
                .when(is_sms)
                .then(c("u_name") < 26)
                .otherwise(True)
            ),
            comp_on=has_comp
            & (
                pl.when(is_w)
                .then(live_w & (c("u_comp") < 77))
                .when(is_em)
                .then(c("u_comp") < 51)
                .when(is_api)
                .then(c("u_comp") < 102)
                .when(is_sl)
                .then(c("u_comp") < 154)
                .otherwise(False)
            ),
            ecs=step.cum_sum() - step,  # exclusive running sum of the gaps
        )
        rows = rows.with_columns(
            g_email=pl.when(c("email_on")).then(c("addr")),
            g_phone=pl.when(c("phone_on")).then(lit(s_phone).gather(style * len(personas) + pna)),
            g_name=pl.when(c("name_on") & ~(is_wa & (nv < 90)))
            .then(lit(s_full).gather(pna))
            .when(c("name_on"))
            .then(lit(s_first).gather(pna)),
            g_comp=pl.when(c("comp_on")).then(lit(s_forms).gather(c("p_comp") * 6 + form)),
            g_uid=pl.when(uid_on).then(lit(s_uid).gather(per)),
            g_uhash=pl.when(uid_on).then(
                lit(pl.Series([p.uhash for p in persons], dtype=pl.String)).gather(per)
            ),
            g_plan=pl.when(c("plan_on")).then(
                lit(pl.Series([p.plan for p in persons], dtype=pl.String)).gather(per)
            ),
        )
        # spelling variants: only ~1 row in 4 gets one, so they are made in Python
        display_ch = _CH["email"]
        sub = (
            rows.select("row", "persona", "ch", "u_evar", "u_esub", "u_epos", "u_disp", "email_on")
            .filter(
                c("email_on") & ((c("u_evar") >= 184) | ((ch == display_ch) & (c("u_disp") < 90)))
            )
            .drop("email_on")
        )
        out = []
        for pi, chn, ev, es, ep, dp in zip(
            *(sub[k].to_list() for k in sub.columns[1:]), strict=True
        ):
            pa_ = personas[pi]
            v = _spell_email(pa_.email, ev, es, ep)
            if chn == display_ch and dp < 90:
                v = f"{pa_.full} <{v.strip()}>"
            out.append(v)
        email = (
            rows.get_column("g_email").clone().scatter(sub["row"], pl.Series(out, dtype=pl.String))
        )
        sub = rows.select("row", "persona", "u_nvar", "ch", "name_on").filter(
            c("name_on") & (nv >= 194) & ~(is_wa & (nv < 90))
        )
        out = [
            _spell_name(personas[pi], v)
            for pi, v in zip(sub["persona"].to_list(), sub["u_nvar"].to_list(), strict=True)
        ]
        name = (
            rows.get_column("g_name").clone().scatter(sub["row"], pl.Series(out, dtype=pl.String))
        )
        # planted interactions carry the values decided in Python: patch their rows
        starts = [0, *itertools.accumulate(self.c_size)]
        xs = sorted(self.explicit)
        xrows = pl.Series([starts[ci] for ci in xs], dtype=pl.Int64)
        cols = {}
        for j, k in enumerate(("uid", "uhash", "plan", "email", "phone", "name", "comp")):
            base = email if k == "email" else name if k == "name" else rows.get_column("g_" + k)
            vals = pl.Series([self.explicit[ci][j] for ci in xs], dtype=pl.String)
            cols[k] = base.clone().scatter(xrows, vals) if xs else base

        def sparse(values: dict, dtype) -> pl.Series:
            keys = sorted(values)
            out = pl.Series([None] * n, dtype=dtype)
            if keys:
                out = out.scatter(
                    pl.Series([starts[ci] for ci in keys], dtype=pl.Int64),
                    pl.Series([values[ci] for ci in keys], dtype=dtype),
                )
            return out

        def pget(values, dtype) -> pl.Expr:
            return lit(pl.Series(values, dtype=dtype)).gather(per)

        u_at = c("u_at")
        self.good = rows.select(
            interaction_id=_id_expr("int_", c("row") + 1, self.k_int),
            channel=lit(pl.Series(list(_CHANNELS + _CHANNELS_CAPS), dtype=pl.String)).gather(
                ch + pl.when(c("u_caps") < 5).then(6).otherwise(0)
            ),
            t=c("t0") + c("ecs") - c("ecs").gather(c("row") - c("k")),
            tz=(
                pl.when(c("u_tz") < 141)
                .then(_Z)
                .when(c("u_tz") < 225)
                .then(pget([p.tz for p in persons], pl.Int64))
                .otherwise(_EPOCH)
            ).cast(pl.Int64),
            t_raw=lit(None, pl.String),
            conversation_id=lit(ids["cid"]).gather(c("ci")),
            session_id=lit(ids["sid"]).gather(c("ci")),
            user_id=cols["uid"],
            user_hash=cols["uhash"],
            plan=cols["plan"],
            email=cols["email"],
            phone=cols["phone"],
            name=cols["name"],
            company=cols["comp"],
            contact_tags=pl.when(c("u_ct") < 102).then(pget([p.tags for p in persons], pl.String)),
            conversation_tags=pl.when(c("u_vt") < 179).then(c("vtags")),
            attributes=(
                pl.when(u_at < 141)
                .then(lit(None, pl.String))
                .when(u_at < 218)
                .then(pget([p.aj_full for p in persons], pl.String))
                .otherwise(pget([p.aj_city for p in persons], pl.String))
            ),
            day=c("day"),
            person=per,
            forged=sparse(dict.fromkeys(self.forged_conv, True), pl.Boolean).fill_null(False),
            victim=sparse({k: v for k, v in self.forged_conv.items() if v}, pl.String),
            typo=sparse(self.typo_conv, pl.String),
        )

    # ------------------------------------------------------------------------ layout
    def _layout(self) -> None:
        """Split each day into 1-3 files, pick re-deliveries, place the bad records."""
        cfg, r, rr = self.cfg, self.r, self.rng.randrange
        good = self.good
        order = good.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("row"), "day", "t").sort(
            ["day", "t"], maintain_order=True
        )["row"]
        self.order = order
        per_day = [0] * cfg.days
        for d, cnt in good.group_by("day").len().iter_rows():
            per_day[d] = cnt
        files: list[dict] = []
        pos = 0
        fmts = cfg.formats
        for d in range(cfg.days):
            cnt = per_day[d]
            k = min(1 + rr(3), max(1, cnt))
            w = [0.5 + r() for _ in range(k)]
            tot, acc, cuts = sum(w), 0.0, [0]
            for j, x in enumerate(w[:-1]):  # every file of a non-empty day gets a row
                acc += x
                cuts.append(min(cnt - (k - 1 - j), max(cuts[-1] + 1, round(cnt * acc / tot))))
            cuts.append(cnt)
            for j in range(k):
                fmt = fmts[len(files) % len(fmts)]
                files.append(
                    {
                        "day": d,
                        "num": j + 1,
                        "fmt": fmt,
                        "gz": cfg.gzip_some and fmt != "parquet" and r() < 0.35,
                        "lo": pos + cuts[j],
                        "hi": pos + cuts[j + 1],
                        "extra": [],
                        "inserts": [],
                        "tail": None,
                        "dense": r() < 0.3,
                        "native_ts": False,
                    }
                )
            pos += cnt
        if cfg.gzip_some and not any(f["gz"] for f in files):
            for f in files:
                if f["fmt"] != "parquet":
                    f["gz"] = True
                    break
        npq = 0
        for f in files:
            if f["fmt"] == "parquet":
                f["native_ts"] = npq % 2 == 0
                npq += 1
        self.files = files
        self._redeliver()
        self.ghosts: list[dict] = []
        if cfg.bad_records:
            self._bad_records()
        for f in files:
            f["name"] = f"export-{f['num']:03d}.{f['fmt']}" + (".gz" if f["gz"] else "")

    def _redeliver(self) -> None:
        files, n, rr, r = self.files, self.n, self.rng.randrange, self.r
        nf = len(files)
        self.copies: list[tuple[int, int, bool]] = []  # (original row, target file, updated)
        if nf < 2 or n == 0:
            return
        lows = [f["lo"] for f in files]
        day_first: dict[int, int] = {}
        for fi in range(nf - 1, -1, -1):
            day_first[files[fi]["day"]] = fi
        order, person = self.order, self.good["person"]
        want = max(2, n // 100)
        seen: set[int] = set()
        tries = 0
        while len(self.copies) < want and tries < want * 30:
            tries += 1
            pos = rr(n)
            fo = bisect.bisect_right(lows, pos) - 1
            if fo >= nf - 1:
                continue
            i = order[pos]
            if i in seen or self.persons[person[i]].case != "plain":
                continue
            seen.add(i)
            nxt = day_first.get(files[fo]["day"] + 1, nf)
            if nxt < nf and (r() < 0.8 or fo + 1 >= nxt):
                target = nxt + rr(nf - nxt)  # a later day's export
            else:
                target = fo + 1 + rr(nf - fo - 1)  # a later file of the same day (or later)
            updated = len(self.copies) % 5 < 2  # 40% of the re-deliveries carry an update
            files[target]["extra"].append(n + len(self.copies))
            self.copies.append((i, target, updated))

    def _bad_records(self) -> None:
        cfg, files, rr = self.cfg, self.files, self.rng.randrange
        cands = [fi for fi, f in enumerate(files) if f["day"] >= cfg.days - 2]
        if "jsonl" in cfg.formats and not any(files[fi]["fmt"] == "jsonl" for fi in cands):
            f = files[cands[-1]]
            f["fmt"], f["native_ts"] = "jsonl", False
        base = self.n + len(self.copies)
        for kind in (
            "missing_id",
            "bad_timestamp",
            "unknown_channel",
            "attributes_list",
            "attributes_too_many_keys",
            "attributes_bad_json",
        ):
            pool = cands
            if kind == "attributes_bad_json":
                pool = [fi for fi in cands if files[fi]["fmt"] != "jsonl"] or cands
            fi = pool[rr(len(pool))]
            f = files[fi]
            if kind == "bad_timestamp" and f["fmt"] == "parquet":
                f["native_ts"] = False
            size = f["hi"] - f["lo"] + len(f["extra"]) + len(f["inserts"])
            f["inserts"].append((rr(size + 1), base + len(self.ghosts)))
            self.ghosts.append(self._ghost(kind, f))
        js = [fi for fi in cands if files[fi]["fmt"] == "jsonl"]
        if js:
            f = files[js[-1]]
            f["tail"] = base + len(self.ghosts)
            self.ghosts.append(self._ghost("truncated_line", f))

    def _ghost(self, kind: str, f: dict) -> dict:
        """A malformed record of someone who is in no truth row (it must never be accepted)."""
        p = self._base_person("plain", verified=False)
        em = self._email(p.first, p.last, None)
        rec = {
            "kind": kind,
            "interaction_id": _num_id(
                "int_", self.n + 1_000_000_000 + len(self.ghosts), self.k_int
            ),
            "channel": "widget",
            "t": self.day0 + f["day"] * 86400 + int(self.r() * 79200),
            "tz": _Z,
            "t_raw": None,
            "conversation_id": _num_id("conv_", len(self.c_ch) + 1 + len(self.ghosts), self.k_conv),
            "session_id": _num_id("sess_", self._sid(), self.k_sess),
            "user_id": None,
            "user_hash": None,
            "plan": None,
            "email": em[0],
            "phone": None,
            "name": f"{p.first} {p.last}",
            "company": None,
            "contact_tags": None,
            "conversation_tags": None,
            "attributes": p.aj_full,
        }
        if kind == "missing_id":
            rec["interaction_id"] = None
        elif kind == "bad_timestamp":
            rec["t_raw"] = "yesterday"
        elif kind == "unknown_channel":
            rec["channel"] = "fax"
        elif kind == "attributes_list":
            rec["attributes"] = '["vip","newsletter"]'
        elif kind == "attributes_too_many_keys":
            rec["attributes"] = (
                "{" + ",".join(f'"custom_{k:02d}":"v{k}"' for k in range(1, 52)) + "}"
            )
        elif kind == "attributes_bad_json":
            bad = "{city: Berlin, plan: 'pro'"
            rec["attributes"] = _enc(bad) if f["fmt"] == "jsonl" else bad
        return rec

    def _extra_tables(self) -> None:
        """The re-delivered copies (some updated) and the bad rows, in the row layout."""
        cols = list(_ROW_SCHEMA)
        self.copy_tab = self.ghost_tab = None
        if self.copies:
            cp = self.good[pl.Series([i for i, _, _ in self.copies], dtype=pl.Int64)].select(cols)
            vt = cp["conversation_tags"].to_list()
            plans = cp["plan"].to_list()
            r = self.r
            for k, (_, _, updated) in enumerate(self.copies):
                if not updated:
                    continue
                if plans[k] is None or r() < 0.6:  # e.g. an agent tagged the conversation later
                    old = vt[k].split(";") if vt[k] else []
                    extra = next(
                        x for x in ("escalated", "resolved", "needs-reply") if x not in old
                    )
                    vt[k] = ";".join([*old, extra])
                else:  # the plan changed in the meantime
                    plans[k] = "enterprise" if plans[k] != "enterprise" else "paid"
            self.copy_tab = cp.with_columns(
                conversation_tags=pl.Series(vt, dtype=pl.String),
                plan=pl.Series(plans, dtype=pl.String),
            )
        if self.ghosts:
            self.ghost_tab = pl.DataFrame(
                {k: [g[k] for g in self.ghosts] for k in cols}, schema=_ROW_SCHEMA
            )

    # ------------------------------------------------------------------------ writing
    def _time_tables(self) -> None:
        days, sd = self.cfg.days, self.cfg.start_day
        self.t_base = self.day0 - 3 * 86400
        self.s_dates = pl.Series(
            [date.fromordinal(sd.toordinal() + k - 3).isoformat() + "T" for k in range(days + 7)],
            dtype=pl.String,
        )
        self.s_hms = pl.Series(
            [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)],
            dtype=pl.String,
        )
        self.s_sfx = pl.Series(
            [
                f"{'+' if o >= 0 else '-'}{abs(o) // 60:02d}:{abs(o) % 60:02d}"
                for o in range(-1000, 1001)
            ]
            + ["Z"],
            dtype=pl.String,
        )

    def _iso(self) -> pl.Expr:
        c = pl.col
        is_off = c("tz") < _Z
        rel = c("t") + pl.when(is_off).then(c("tz") * 60).otherwise(0) - self.t_base
        iso = pl.concat_str(
            [
                pl.lit(self.s_dates).gather(rel // 86400),
                pl.lit(self.s_hms).gather(rel % 86400),
                pl.lit(self.s_sfx).gather(pl.when(is_off).then(c("tz") + 1000).otherwise(2001)),
            ]
        )
        return pl.coalesce(c("t_raw"), iso)

    def _jsonl(self, sub: pl.DataFrame, dense: bool) -> bytes:
        if sub.height == 0:
            return b""
        c, lit, cat = pl.col, pl.lit, pl.concat_str  # concat_str: null in, null out
        frags = []
        for name in _ROW_SCHEMA:
            if name in ("tz", "t_raw"):
                continue
            if name == "t":
                fr = (
                    pl.when((c("tz") == _EPOCH) & c("t_raw").is_null())
                    .then(cat([lit('"occurred_at":'), c("t").cast(pl.String)]))
                    .otherwise(cat([lit('"occurred_at":"'), self._iso(), lit('"')]))
                )
            elif name in ("contact_tags", "conversation_tags"):
                fr = cat(
                    [
                        lit(f'"{name}":["'),
                        c(name).str.replace_all(";", '","', literal=True),
                        lit('"]'),
                    ]
                )
            elif name == "attributes":
                fr = cat([lit('"attributes":'), c(name)])
            else:
                fr = cat([lit(f'"{name}":"'), c(name), lit('"')])
            if dense and name != "t":
                fr = fr.fill_null(f'"{name}":null')
            frags.append(fr)
        line = cat([lit("{"), cat(frags, separator=",", ignore_nulls=True), lit("}")])
        buf = io.BytesIO()
        sub.select(line.alias("line")).write_csv(buf, include_header=False, quote_style="never")
        return buf.getvalue()

    def _csv(self, sub: pl.DataFrame) -> bytes:
        buf = io.BytesIO()
        sub.select(
            [self._iso().alias(c) if c == "occurred_at" else pl.col(c) for c in CANONICAL_COLUMNS]
        ).write_csv(buf, quote_style="necessary")
        return buf.getvalue()

    def _parquet(self, sub: pl.DataFrame, native_ts: bool) -> bytes:
        c = pl.col
        if native_ts:
            occ = (
                pl.from_epoch(c("t"), time_unit="s")
                .dt.replace_time_zone("UTC")
                .dt.cast_time_unit("us")
            )
        else:
            occ = self._iso()
        sel = []
        for name in CANONICAL_COLUMNS:
            if name == "occurred_at":
                sel.append(occ.alias(name))
            elif name in ("contact_tags", "conversation_tags"):
                sel.append(c(name).str.split(";"))
            else:
                sel.append(c(name))
        buf = io.BytesIO()
        _write_parquet(sub.select(sel), buf)
        return buf.getvalue()

    def _file_rows(self, f: dict) -> tuple[pl.DataFrame, list[tuple]]:
        """A file's rows in order: its slice of the day, re-deliveries, bad rows where drawn."""
        n, ghost0 = self.n, self.n + len(self.copies)
        cols = list(_ROW_SCHEMA)
        parts = [self.good[self.order.slice(f["lo"], f["hi"] - f["lo"])].select(cols)]
        if f["extra"]:
            parts.append(self.copy_tab[pl.Series([j - n for j in f["extra"]], dtype=pl.Int64)])
        ghosts = [j for _, j in f["inserts"]] + ([f["tail"]] if f["tail"] is not None else [])
        if ghosts:
            parts.append(self.ghost_tab[pl.Series([j - ghost0 for j in ghosts], dtype=pl.Int64)])
        sub = pl.concat(parts, how="vertical") if len(parts) > 1 else parts[0]
        placed: list[tuple] = []
        if ghosts:  # put each bad row where it was drawn (the truncated one last)
            size = sub.height - len(ghosts)
            rows = list(range(size))
            for k, (p_, _) in enumerate(f["inserts"]):
                rows.insert(p_, size + k)
            if f["tail"] is not None:
                rows.append(sub.height - 1)
            for k, j in enumerate(rows):
                if j >= size:
                    g = self.ghosts[ghosts[j - size] - ghost0]
                    placed.append(
                        (g["kind"], k + 2 if f["fmt"] == "csv" else k + 1, g["interaction_id"])
                    )
            sub = sub[pl.Series(rows, dtype=pl.Int64)]
        return sub, placed

    def _write(self, out: Path) -> tuple[Path, int]:
        cfg = self.cfg
        av, tr = out / "askvault", out / "_truth"
        for d in (av, tr):
            if d.exists():
                shutil.rmtree(d)
        tr.mkdir(parents=True)
        self._time_tables()
        day_dirs = []
        for d in range(cfg.days):
            dd = av / date.fromordinal(cfg.start_day.toordinal() + d).isoformat()
            dd.mkdir(parents=True)
            day_dirs.append(dd)
        bad_out: list[tuple] = []
        for f in self.files:
            path = day_dirs[f["day"]] / f["name"]
            rel = path.relative_to(out).as_posix()
            sub, placed = self._file_rows(f)
            bad_out.extend((kind, rel, row, iid) for kind, row, iid in placed)
            if f["fmt"] == "jsonl":
                data = self._jsonl(sub, f["dense"])
                if f["tail"] is not None:  # cut the last line in the middle, no newline
                    cut = data.rfind(b"\n", 0, len(data) - 1) + 1
                    data = data[: cut + (len(data) - cut) // 2]
            elif f["fmt"] == "csv":
                data = self._csv(sub)
            else:
                data = self._parquet(sub, f["native_ts"])
            if f["gz"]:
                data = gzip.compress(data, compresslevel=6, mtime=0)
            path.write_bytes(data)
        if cfg.bad_records:
            path = day_dirs[-1] / "broken.parquet"
            path.write_bytes(
                b"this is not a parquet file, it is a CSV someone renamed\n"
                b"interaction_id,channel,occurred_at\nint_broken,widget,2026-11-01T00:00:00Z\n"
            )
            bad_out.append(("not_parquet", path.relative_to(out).as_posix(), None, None))
        _write_parquet(
            pl.DataFrame(
                {
                    "kind": [b[0] for b in bad_out],
                    "file": [b[1] for b in bad_out],
                    "row": [b[2] for b in bad_out],
                    "interaction_id": [b[3] for b in bad_out],
                },
                schema={
                    "kind": pl.String,
                    "file": pl.String,
                    "row": pl.Int64,
                    "interaction_id": pl.String,
                },
            ),
            tr / "bad_records.parquet",
        )
        truth = tr / "truth.parquet"
        self._write_truth(truth)
        return truth, len(bad_out)

    def _write_truth(self, path: Path) -> None:
        persons, files, c = self.persons, self.files, pl.col
        deliveries: dict[int, int] = {}
        last: dict[int, int] = {}
        updated: set[int] = set()
        for i, target, upd in self.copies:
            deliveries[i] = deliveries.get(i, 1) + 1
            d = files[target]["day"]
            last[i] = max(last.get(i, d), d)
            if upd:
                updated.add(i)
        keys = sorted(deliveries)
        redel = pl.DataFrame(
            {
                "row": pl.Series(keys, dtype=pl.Int64),
                "deliveries": pl.Series([deliveries[i] for i in keys], dtype=pl.Int32),
                "last_day": pl.Series([last[i] for i in keys], dtype=pl.Int32),
                "updated": pl.Series([i in updated for i in keys], dtype=pl.Boolean),
            }
        )
        epoch_days = self.cfg.start_day.toordinal() - date(1970, 1, 1).toordinal()
        per = c("person")
        pcase = pl.lit(pl.Series([p.case for p in persons], dtype=pl.String)).gather(per)
        truth = (
            self.good.with_columns(row=pl.int_range(pl.len(), dtype=pl.Int64))
            .join(redel, on="row", how="left", maintain_order="left")
            .select(
                "interaction_id",
                person_id=pl.lit(pl.Series([p.pid for p in persons], dtype=pl.String)).gather(per),
                case=pl.when(c("deliveries").is_not_null() & (pcase == "plain"))
                .then(pl.lit("redelivered"))
                .otherwise(pcase),
                person_case=pcase,
                case_group=pl.lit(pl.Series([p.group for p in persons], dtype=pl.String)).gather(
                    per
                ),
                related_person_id=c("victim"),
                channel=c("channel").str.to_lowercase(),
                verified=c("user_id").is_not_null() & ~c("forged"),
                forged=c("forged"),
                anonymous=c("user_id").is_null() & c("email").is_null() & c("phone").is_null(),
                typo=c("typo"),
                redelivered=c("deliveries").is_not_null(),
                updated=c("updated").fill_null(False),
                deliveries=c("deliveries").fill_null(1),
                first_export_day=(c("day") + epoch_days).cast(pl.Date),
                last_export_day=(pl.coalesce(c("last_day"), c("day")) + epoch_days).cast(pl.Date),
            )
        )
        _write_parquet(truth, path)


def _spell_email(em: tuple, ev: int, es: int, ep: int) -> str:
    """The bulk twin of ``_Gen._email_value``: a spelling chosen by the bytes ev, es, ep."""
    addr, local, domain, kind = em
    if ev < 184:
        return addr
    if ev < 204:
        if es < 77:
            return addr.upper()
        return local[:1].upper() + local[1:] + "@" + domain[:1].upper() + domain[1:]
    if ev < 217:
        return (" " + addr, addr + " ", "  " + addr + "  ")[es % 3]
    if ev >= 222 and kind == 1:  # gmail: dots do not matter; googlemail.com is gmail.com
        dl = local.replace(".", "")
        if es < 77:
            return dl + "@gmail.com"
        if es < 154:
            i = 1 + ep % max(len(dl) - 1, 1)
            return dl[:i] + "." + dl[i:] + "@gmail.com"
        return local + "@googlemail.com"
    if kind == 2:
        return addr
    return f"{local}+{_PLUS_TAGS[es % len(_PLUS_TAGS)]}@{domain}"


def _spell_name(pa_: _Persona, nv: int) -> str:
    """The bulk twin of ``_Gen._name_value`` for nv >= 194 (the full name below that)."""
    full = pa_.full
    if nv < 207:
        return full.upper()
    if nv < 220:
        return full.lower()
    if nv < 233:
        return full.replace(" ", "  ", 1)
    if nv < 243:
        return " " + full + " "
    if nv < 248:
        return unicodedata.normalize("NFD", full)
    return pa_.first


def _write_parquet(df: pl.DataFrame, where) -> None:
    """Parquet with plain ``string`` / ``list<string>`` columns (Polars would declare the large
    variants) and fixed writer settings, so the bytes only depend on the data."""
    import pyarrow as pa  # imported here: only the writer needs it
    import pyarrow.parquet as pq

    def small(t):
        if pa.types.is_large_string(t):
            return pa.string()
        if pa.types.is_large_list(t):
            return pa.list_(small(t.value_type))
        return t

    table = df.to_arrow()
    table = table.cast(pa.schema([pa.field(f.name, small(f.type)) for f in table.schema]))
    pq.write_table(
        table,
        where,
        compression="snappy",
        use_dictionary=True,
        write_statistics=True,
        version="2.6",
        row_group_size=1 << 20,
    )


def generate_exports(
    out_dir: Path, config: GeneratorConfig = GeneratorConfig()
) -> GeneratedExports:
    """Write ``out_dir/askvault/<day>/<files>`` and ``out_dir/_truth/{truth,bad_records}.parquet``.

    The same ``config`` gives byte-identical files. ``out_dir/askvault`` and ``out_dir/_truth``
    are replaced; nothing else under ``out_dir`` is touched.
    """
    out = Path(out_dir)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of small objects and no cycles: the collector only costs time here
    try:
        g = _Gen(config)
        g._make_persons()
        g._make_conversations()
        g._rows()
        g._layout()
        g._extra_tables()
        truth, n_bad = g._write(out)
        if config.native:
            n_bad += _write_native(g, out)
    finally:
        if gc_was_enabled:
            gc.enable()
    return GeneratedExports(
        root=out, truth_path=truth, interactions=g.n, persons=len(g.persons), bad_records=n_bad
    )


def generate_benchmark_exports(
    out_dir: Path, interactions: int, seed: int = 7, days: int = 10
) -> GeneratedExports:
    """About ``interactions`` distinct interactions (persons = interactions / 4): all three
    formats, bad records on, no gzip."""
    cfg = GeneratorConfig(
        persons=max(1, round(interactions / 4.0)),
        days=days,
        seed=seed,
        formats=("jsonl", "csv", "parquet"),
        interactions_per_person=4.0,
        bad_records=True,
        gzip_some=False,
    )
    return generate_exports(out_dir, cfg)


# ----------------------------------------------------------------------------------------------
# native provider exports (issue "Native channel and CRM exports")
# ----------------------------------------------------------------------------------------------

NATIVE_SOURCES: tuple[str, ...] = ("whatsapp", "slack", "email", "sms", "hubspot", "salesforce")
_BUSINESS_NUMBER = "+14155238886"  # the demo workspace's Twilio / WhatsApp number
_WA_PHONE_NUMBER_ID = "106540352242922"
_SLACK_TEAM = "T0DEMO0001"
# The demo workspace's own domain and inbox: `contacts demo` passes them as staff settings.
DEMO_STAFF_DOMAIN = "askvault-demo.example"
DEMO_SUPPORT_EMAIL = f"support@{DEMO_STAFF_DOMAIN}"
_HUBSPOT_STAGE = {
    "free": "Lead",
    "paid": "Customer",
    "growth": "Customer",
    "enterprise": "Customer",
    "internal": "Other",
}


def _write_native(g: _Gen, out: Path) -> int:
    """Native exports for about a third of the plain persons, from their first persona's facets.

    Each chosen person writes on one to four native channels (on random export days); a share is
    in HubSpot or Salesforce. A separate random stream keeps the askvault output unchanged.
    Truth: ``_truth/native_truth.parquet`` (interaction_id, person_id, source) and
    ``_truth/crm_truth.parquet`` (system, record_id, person_id). Returns the number of malformed
    records planted (one per interaction source on the last day when ``bad_records``).
    """
    from email.message import EmailMessage
    from email.utils import format_datetime, formataddr

    cfg = g.cfg
    rng = random.Random(cfg.seed * 1_000_003 + 17)
    r = rng.random
    for source in NATIVE_SOURCES:
        if (out / source).exists():
            shutil.rmtree(out / source)
    days = [date.fromordinal(cfg.start_day.toordinal() + d).isoformat() for d in range(cfg.days)]
    per_day: dict[tuple[str, int], list[dict]] = {}
    truth: list[tuple[str, str, str]] = []
    crm: dict[str, list[dict]] = {"hubspot": [], "salesforce": []}
    crm_truth: list[tuple[str, str, str]] = []
    n = 0
    for p in g.persons:
        if p.case != "plain" or r() >= 0.35:
            continue
        pa = p.personas[0]
        email = pa.email[0] if pa.email is not None and pa.email[3] != 2 else None
        phone = f"+{pa.phone[0]}{pa.phone[1]}" if pa.phone is not None else None
        channels = [
            ch
            for ch, needs, share in (
                ("whatsapp", phone, 0.6),
                ("email", email, 0.6),
                ("sms", phone, 0.35),
                ("slack", email, 0.3),
            )
            if needs and r() < share
        ]
        for ch in channels:
            for _ in range(1 + int(r() * 3)):
                n += 1
                day = int(r() * cfg.days)
                t = g.day0 + day * 86400 + 28800 + int(r() * 36000)
                per_day.setdefault((ch, day), []).append(
                    {"n": n, "t": t, "p": p, "name": pa.full, "email": email, "phone": phone}
                )
        if (email or phone) and r() < 0.5:
            system = "hubspot" if r() < 0.6 else "salesforce"
            rid = (
                str(100 + len(crm["hubspot"]))
                if system == "hubspot"
                else f"0035g{len(crm['salesforce']) + 1:08d}AAB"
            )
            crm[system].append(
                {"rid": rid, "p": p, "first": pa.first, "last": pa.full[len(pa.first) + 1 :],
                 "email": email, "phone": phone}
            )  # fmt: skip
            crm_truth.append((system, rid, p.pid))

    def folder(source: str, day: int) -> Path:
        path = out / source / days[day]
        path.mkdir(parents=True, exist_ok=True)
        return path

    last = cfg.days - 1
    bad = 0
    for (ch, day), msgs in sorted(per_day.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        msgs.sort(key=lambda m: (m["t"], m["n"]))
        if ch == "whatsapp":
            lines = []
            for m in msgs:
                wa, mid = m["phone"][1:], f"wamid.DEMO{m['n']:012d}"
                value = {
                    "messaging_product": "whatsapp",
                    "metadata": {
                        "display_phone_number": _BUSINESS_NUMBER[1:],
                        "phone_number_id": _WA_PHONE_NUMBER_ID,
                    },
                    "contacts": [{"profile": {"name": m["name"]}, "wa_id": wa}],
                    "messages": [
                        {"from": wa, "id": mid, "timestamp": str(m["t"]), "type": "text",
                         "text": {"body": "Hi!"}}
                    ],
                }  # fmt: skip
                lines.append(_wa_payload(value))
                truth.append((f"wa:{mid}", m["p"].pid, "whatsapp"))
                if m["n"] % 3 == 0:  # the business answered: its delivery receipt arrives too
                    status = {"id": f"wamid.OUT{m['n']:012d}", "status": "delivered",
                              "timestamp": str(m["t"] + 90), "recipient_id": wa}  # fmt: skip
                    lines.append(_wa_payload({"statuses": [status]}))
            if cfg.bad_records and day == last:
                lines.append('{"object": "whatsapp_business_account", "entry": [')
                bad += 1
            (folder("whatsapp", day) / "webhooks.jsonl").write_text("\n".join(lines) + "\n")
        elif ch == "email":
            chunks = []
            prev: dict[str, str] = {}
            for m in msgs:
                msg = EmailMessage()
                msg["From"] = formataddr((m["name"], m["email"]), charset="utf-8")
                msg["To"] = DEMO_SUPPORT_EMAIL
                msg["Subject"] = "Question"
                msg["Date"] = format_datetime(datetime.fromtimestamp(m["t"], timezone.utc))
                mid = f"<demo.{m['n']}@mail.example.net>"
                msg["Message-ID"] = mid
                root = prev.get(m["email"])
                if root is not None:  # a reply in the person's earlier thread
                    msg["In-Reply-To"] = root
                    msg["References"] = root
                prev.setdefault(m["email"], mid)
                msg.set_content("Hello, a question about my account.")
                chunks.append(_mbox_chunk(msg, m["email"], m["t"]))
                truth.append((f"email:{mid[1:-1]}", m["p"].pid, "email"))
                if m["n"] % 4 == 0:  # the support team answers in the thread (staff: skipped)
                    ans = EmailMessage()
                    ans["From"] = f"Demo Support <{DEMO_SUPPORT_EMAIL}>"
                    ans["To"] = formataddr((m["name"], m["email"]), charset="utf-8")
                    ans["Subject"] = "Re: Question"
                    ans["Date"] = format_datetime(
                        datetime.fromtimestamp(m["t"] + 600, timezone.utc)
                    )
                    ans["Message-ID"] = f"<answer.{m['n']}@{DEMO_STAFF_DOMAIN}>"
                    ans["In-Reply-To"] = mid
                    ans["References"] = f"{root or mid}"
                    ans.set_content("Thanks, we are on it.")
                    chunks.append(_mbox_chunk(ans, DEMO_SUPPORT_EMAIL, m["t"] + 600))
            bounce = EmailMessage()
            bounce["From"] = "Mail Delivery Subsystem <MAILER-DAEMON@mx.askvault-demo.example>"
            bounce["To"] = "support@askvault-demo.example"
            bounce["Subject"] = "Undelivered Mail Returned to Sender"
            bounce["Date"] = format_datetime(datetime.fromtimestamp(msgs[0]["t"], timezone.utc))
            bounce["Message-ID"] = f"<bounce.{day}@mx.askvault-demo.example>"
            bounce.set_content("This is the mail system.")
            chunks.append(_mbox_chunk(bounce, "MAILER-DAEMON", msgs[0]["t"]))
            (folder("email", day) / "inbox.mbox").write_bytes(b"".join(chunks))
            if cfg.bad_records and day == last:
                (folder("email", day) / "truncated.mbox").write_bytes(b"Subject: cut\n\n")
                bad += 1
        elif ch == "sms":
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(["From", "To", "Body", "Status", "SentDate", "ApiVersion", "NumSegments",
                        "ErrorCode", "AccountSid", "Sid", "Direction", "Price", "PriceUnit"])  # fmt: skip
            for m in msgs:
                sid = f"SM{hashlib.sha256(str(m['n']).encode()).hexdigest()[:32]}"
                when = datetime.fromtimestamp(m["t"], timezone.utc).isoformat()
                inbound = m["n"] % 2 == 0
                frm, to = (
                    (m["phone"], _BUSINESS_NUMBER) if inbound else (_BUSINESS_NUMBER, m["phone"])
                )
                w.writerow([frm, to, "Hi", "received" if inbound else "delivered", when,
                            "2010-04-01", 1, 0, "ACdemo", sid,
                            "inbound" if inbound else "outbound-api", "-0.0079", "USD"])  # fmt: skip
                truth.append((f"sms:{sid}", m["p"].pid, "sms"))
            if cfg.bad_records and day == last:
                w.writerow(["+15550000000", _BUSINESS_NUMBER, "no sid", "received", "", "", "", "", "", "", "inbound", "", ""])  # fmt: skip
                bad += 1
            (folder("sms", day) / "messages.csv").write_text(buf.getvalue())
        else:  # slack
            export = folder("slack", day) / "slack-export"
            (export / "community").mkdir(parents=True)
            users, seen = [], set()
            messages = []
            for m in msgs:
                uid = f"U{int(m['p'].pid[1:]):09d}"
                if uid not in seen:
                    seen.add(uid)
                    users.append({"id": uid, "team_id": _SLACK_TEAM, "name": uid.lower(),
                                  "deleted": False, "real_name": m["name"], "is_bot": False,
                                  "profile": {"real_name": m["name"], "email": m["email"],
                                              "phone": "", "team": _SLACK_TEAM}})  # fmt: skip
                ts = f"{m['t']}.{m['n'] % 1_000_000:06d}"
                messages.append({"type": "message", "user": uid, "text": "Hi", "ts": ts})
                truth.append((f"slack:C0DEMO0001:{ts}", m["p"].pid, "slack"))
                if m["n"] % 3 == 0:  # a staff member replies in a thread (skipped)
                    messages.append({"type": "message", "user": "U0STAFF001", "text": "On it",
                                     "ts": f"{m['t'] + 60}.000001", "thread_ts": ts})  # fmt: skip
            users.append({"id": "U0STAFF001", "name": "ingrid", "deleted": False,
                          "real_name": "Ingrid Support", "is_bot": False,
                          "profile": {"real_name": "Ingrid Support",
                                      "email": f"ingrid@{DEMO_STAFF_DOMAIN}"}})  # fmt: skip
            users.append({"id": "B0DEMOBOT", "name": "helpbot", "deleted": False,
                          "is_bot": True, "profile": {"real_name": "HelpBot"}})  # fmt: skip
            messages.append({"type": "message", "subtype": "bot_message", "bot_id": "B0DEMOBOT",
                             "text": "Office hours at 3pm", "ts": f"{msgs[-1]['t'] + 1}.000001"})  # fmt: skip
            (export / "users.json").write_text(json.dumps(users, ensure_ascii=False, indent=1))
            (export / "channels.json").write_text(
                json.dumps([{"id": "C0DEMO0001", "name": "community"}], indent=1)
            )
            (export / "community" / f"{days[day]}.json").write_text(
                json.dumps(messages, ensure_ascii=False, indent=1)
            )
            if cfg.bad_records and day == last:
                (export / "community" / "broken.json").write_text('{"ok": false}')
                bad += 1
    for system, rows in crm.items():
        if not rows:
            continue
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        if system == "hubspot":
            w.writerow(["Record ID", "First Name", "Last Name", "Email", "Phone Number",
                        "Company Name", "Lifecycle Stage", "Create Date", "Last Activity Date"])  # fmt: skip
            for x in rows:
                stage = _HUBSPOT_STAGE.get(x["p"].plan or "", "Lead")
                w.writerow([x["rid"], x["first"], x["last"], x["email"] or "", x["phone"] or "",
                            "", stage, cfg.start_day.isoformat() + " 09:00", ""])  # fmt: skip
            name = "hubspot-crm-exports-all-contacts.csv"
        else:
            w.writerow(["Id", "FirstName", "LastName", "Email", "Phone", "MobilePhone",
                        "Account Name", "LeadSource", "Plan__c"])  # fmt: skip
            for x in rows:
                w.writerow([x["rid"], x["first"], x["last"], x["email"] or "", "",
                            x["phone"] or "", "", "Web", (x["p"].plan or "").title()])  # fmt: skip
            name = "Contact.csv"
        (folder(system, last) / name).write_text(buf.getvalue())
    tr = out / "_truth"
    _write_parquet(
        pl.DataFrame(truth, schema=["interaction_id", "person_id", "source"], orient="row"),
        tr / "native_truth.parquet",
    )
    _write_parquet(
        pl.DataFrame(crm_truth, schema=["system", "record_id", "person_id"], orient="row"),
        tr / "crm_truth.parquet",
    )
    return bad


def _wa_payload(value: dict) -> str:
    change = {"value": value, "field": "messages"}
    entry = {"id": "102290129340398", "changes": [change]}
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}, ensure_ascii=False)


def _mbox_chunk(msg, sender: str, t: int) -> bytes:
    """One mbox entry: the `From ` separator line, the message, `>From ` quoting, a blank line."""
    stamp = datetime.fromtimestamp(t, timezone.utc).strftime("%a %b %d %H:%M:%S %Y")
    body = msg.as_bytes()
    body = re.sub(rb"(?m)^(>*From )", rb">\1", body)
    return f"From {sender} {stamp}\n".encode() + body.rstrip(b"\n") + b"\n\n"
