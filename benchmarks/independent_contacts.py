"""The matcher on contacts it was not written for: an independently written generator (issue 24).

The project's own generator (`contacts/demo/`) and the matcher were written by the same team,
so a figure on it says little about data shaped otherwise. This module is a second generator,
written without reading that one or `dedup/matching/`: people come from Faker in eight locales
(real first names, surnames, companies with their legal forms, free-mail providers and TLDs of
each country), phones from libphonenumber's numbering plans, nicknames from the `nicknames`
package. It writes the product's own export (askvault JSONL, SPEC.md) over several export days
and a truth: every interaction's person and identity, every person's planted kind, every trap
group.

One person has one or more *identities*: sets of touchpoints (a web-widget session, a mail
thread, a Slack member, a WhatsApp chat, SMS) that share an exact key. A planted duplicate is a
person with two identities that share no key; the kind says what evidence is left (a full name
and company with a work and a personal address, a name typo, a nickname, an e-mail typo, a phone
one digit off). Kinds the exact keys should join (an anonymous session that later gives its
e-mail, a verified login on two addresses, a lead form carrying e-mail and phone) and kinds
with no or weak evidence (WhatsApp profile name only, SMS with no name) are there because a
chat workspace has them. Traps are groups of different people sharing something: a household
(surname and landline, sometimes a family mailbox), same-name strangers at other companies,
role and test addresses (info@, test@test.com), a company switchboard typed by its employees.

Then the real nightly job runs on the export (`contacts.runner.run_pipeline`, the proposal
threshold lowered to 0.5 so every proposal at a measured threshold is kept) and the result is
scored here, with this module's own scoring (pairs of interactions, union-find over accepted
proposals), not the project's evaluation code:

    .venv/bin/python benchmarks/independent_contacts.py [--people 8000] [--seed 7] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import re
import sys
import tempfile
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import phonenumbers as pn  # noqa: E402
import polars as pl  # noqa: E402
from faker import Faker  # noqa: E402
from nicknames import NickNamer  # noqa: E402

THRESHOLDS = (0.5, 0.8, 0.9, 0.99)
SECRET = "independent-generator-secret"
FIRST_DAY = date(2026, 11, 2)
DAYS = 7

# Locale -> (share of people, phone region, company TLD). Shares are a guess at a European and
# American B2B SaaS audience, not a measurement.
LOCALES = {
    "en_US": (0.28, "US", "com"),
    "en_GB": (0.12, "GB", "co.uk"),
    "de_DE": (0.12, "DE", "de"),
    "fr_FR": (0.10, "FR", "fr"),
    "es_ES": (0.08, "ES", "es"),
    "pt_BR": (0.10, "BR", "com.br"),
    "nl_NL": (0.10, "NL", "nl"),
    "pl_PL": (0.10, "PL", "pl"),
}

# Planted kinds of the people who are in no trap, with their shares. "Evidence" kinds leave
# two identities that share no exact key but carry evidence a matcher should see; "auto" kinds
# share an exact key; "weak" kinds carry a name at most.
KINDS = {
    "single": 0.33,
    "session_then_email": 0.07,  # auto: anonymous widget messages, then a lead form, one session
    "verified_login": 0.04,  # auto: two addresses, one verified user_id
    "lead_form_links_phone": 0.07,  # auto: e-mail side and WhatsApp/SMS side meet in a lead form
    "work_personal": 0.08,  # evidence: full name + company typed with work and free-mail address
    "name_typo": 0.06,  # evidence: one edit in the name, same company
    "nickname": 0.06,  # evidence: nickname, same surname and company
    "email_typo": 0.06,  # evidence: one edit in the address (local part or domain), same name
    "phone_typo": 0.06,  # evidence: one digit off, same name
    "whatsapp_name_only": 0.05,  # weak: WhatsApp profile with the full name, nothing else shared
    "sms_no_name": 0.04,  # none: SMS from the person's mobile, no name anywhere
    "multi_channel": 0.08,  # auto: mail + widget + Slack on one address
}
EVIDENCE_KINDS = ("work_personal", "name_typo", "nickname", "email_typo", "phone_typo")
TRAP_KINDS = ("household", "same_name_strangers", "role_address", "test_address", "switchboard")

KEYBOARD = {
    c: n
    for c, n in zip(
        "qwertyuiopasdfghjklzxcvbnm",
        [
            "wa", "qes", "wrd", "etf", "ryg", "tuh", "yij", "uok", "ipl", "ol",
            "qsz", "awdx", "sefc", "drgv", "fthb", "gyjn", "hukm", "jil", "kop",
            "axs", "zdc", "xfv", "cgb", "vhn", "bjm", "nk",
        ],
        strict=True,
    )
}  # fmt: skip
FREEMAIL_TYPOS = {
    "gmail.com": ["gmial.com", "gmail.co", "gmai.com", "gnail.com"],
    "hotmail.com": ["hotmial.com", "hotmail.co", "hotmai.com"],
    "yahoo.com": ["yaho.com", "yahooo.com", "yahoo.co"],
}


@dataclass
class Company:
    name: str
    bare: str  # the name without its legal form, as people often type it
    domain: str
    locale: str
    pattern: str  # work-address pattern
    switchboard: str | None = None


@dataclass
class Person:
    pid: str
    locale: str
    first: str
    last: str
    company: Company | None
    kind: str = "single"
    trap: str | None = None
    trap_group: str | None = None
    work_email: str | None = None
    personal_email: str | None = None
    mobile: str | None = None  # E.164


@dataclass
class Touch:
    """One touchpoint: a channel and what it captured, written as `n` interactions."""

    person: Person
    identity: str
    channel: str
    n: int
    email: str | None = None
    phone: str | None = None
    name: str | None = None
    company: str | None = None
    session: str | None = None
    user_id: str | None = None
    anonymous_first: int = 0  # widget: messages before the lead form, session only
    attributes: dict = field(default_factory=dict)


def ascii_fold(text: str) -> str:
    text = text.replace("ł", "l").replace("Ł", "L").replace("ß", "ss").replace("ø", "o")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", ascii_fold(text).lower())


class World:
    """Seeded sources of names, companies, addresses and phones; every draw goes through it."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.fake = Faker(list(LOCALES))
        self.fake.seed_instance(seed)
        self.nick = NickNamer()
        self.used_emails: set[str] = set()
        self.used_phones: set[str] = set()
        self.companies: dict[str, list[Company]] = {loc: [] for loc in LOCALES}
        self.suffixes = {loc: self._suffixes(loc) for loc in LOCALES}

    def _suffixes(self, loc: str) -> list[str]:
        for provider in self.fake[loc].providers:
            if hasattr(provider, "company_suffixes"):
                return sorted(set(provider.company_suffixes), key=len, reverse=True)
        return []

    def locale(self) -> str:
        return self.rng.choices(list(LOCALES), [v[0] for v in LOCALES.values()])[0]

    def company(self, loc: str) -> Company:
        """A new company, or (more often as the pool grows) an existing one of the locale."""
        pool = self.companies[loc]
        if pool and self.rng.random() < min(0.85, len(pool) / 60):
            return self.rng.choice(pool)
        taken = {c.name for cs in self.companies.values() for c in cs}
        name = self.fake[loc].company()
        while name in taken:
            name = self.fake[loc].company()
        bare = name
        for sfx in self.suffixes[loc]:
            if bare.endswith(" " + sfx) or bare.endswith(" - " + sfx.lstrip("- ")):
                bare = bare[: -len(sfx)].rstrip(" -")
                break
        words = [slug(w) for w in re.split(r"[\s,&/-]+", bare) if slug(w) not in ("", "and")]
        stem = "-".join(words[:2]) if self.rng.random() < 0.4 else "".join(words[:2])
        tld = LOCALES[loc][2] if self.rng.random() < 0.7 else "com"
        domain = f"{stem or 'co'}.{tld}"
        while any(c.domain == domain for cs in self.companies.values() for c in cs):
            domain = f"{stem}{self.rng.randint(2, 99)}.{tld}"
        pattern = self.rng.choice(["first.last", "flast", "first", "first_last", "f.last"])
        company = Company(name, bare, domain, loc, pattern)
        pool.append(company)
        return company

    def phone(self, loc: str, mobile: bool = True) -> str:
        """A valid number of the locale's plan (E.164), never handed out twice."""
        region = LOCALES[loc][1]
        kind = pn.PhoneNumberType.MOBILE if mobile else pn.PhoneNumberType.FIXED_LINE
        example = pn.example_number_for_type(region, kind)
        nsn = str(example.national_number)
        keep = 2 if region in ("DE", "BR", "GB") else 1
        for _ in range(500):
            digits = nsn[:keep] + "".join(str(self.rng.randint(0, 9)) for _ in nsn[keep:])
            number = pn.parse(f"+{example.country_code}{digits}")
            wanted = {kind, pn.PhoneNumberType.FIXED_LINE_OR_MOBILE}
            if pn.is_valid_number(number) and pn.number_type(number) in wanted:
                e164 = pn.format_number(number, pn.PhoneNumberFormat.E164)
                if e164 not in self.used_phones:
                    self.used_phones.add(e164)
                    return e164
        raise RuntimeError(f"no {region} number found")

    def typed_phone(self, e164: str) -> str:
        """The number as a person types it in a form: national in the US, else international."""
        number = pn.parse(e164)
        if number.country_code == 1 and self.rng.random() < 0.8:
            return pn.format_number(number, pn.PhoneNumberFormat.NATIONAL)
        fmt = self.rng.choice([pn.PhoneNumberFormat.INTERNATIONAL, pn.PhoneNumberFormat.E164])
        return pn.format_number(number, fmt)

    def unique_email(self, local: str, domain: str) -> str:
        local = re.sub(r"[^a-z0-9._-]", "", local.lower()).strip(".") or "x"
        address, n = f"{local}@{domain}", 1
        while address in self.used_emails:
            n += 1
            address = f"{local}{n}@{domain}"
        self.used_emails.add(address)
        return address

    def work_email(self, p: Person) -> str:
        first, last = slug(p.first.split()[0]), slug(p.last.replace(" ", ""))
        local = {
            "first.last": f"{first}.{last}",
            "flast": f"{first[:1]}{last}",
            "first": first,
            "first_last": f"{first}_{last}",
            "f.last": f"{first[:1]}.{last}",
        }[p.company.pattern]
        return self.unique_email(local, p.company.domain)

    def personal_email(self, p: Person) -> str:
        first, last = slug(p.first.split()[0]), slug(p.last.replace(" ", ""))
        year = str(
            self.rng.randint(60, 99) if self.rng.random() < 0.6 else self.rng.randint(0, 9999)
        )
        local = self.rng.choice(
            [
                f"{first}.{last}",
                f"{first}{last}{year}",
                f"{first[:1]}{last}",
                f"{first}_{last}{year[-2:]}",
                f"{last}.{first}",
                slug(self.fake[p.locale].user_name()),  # a handle unrelated to the name
            ]
        )
        return self.unique_email(local, self.fake[p.locale].free_email_domain())

    def nickname(self, first: str) -> str | None:
        nicks = sorted(self.nick.nicknames_of(first.lower()))
        nicks = [n for n in nicks if len(n) >= 3 and n != first.lower()]
        return self.rng.choice(nicks).capitalize() if nicks else None

    def session(self) -> str:
        return f"sess_{self.rng.getrandbits(64):016x}"


def name_typo(rng: random.Random, name: str) -> str:
    """One edit a person makes typing a name: a neighbour key, a swap, a dropped or doubled
    letter, or an accent left out."""
    for _ in range(20):
        i = rng.randrange(1, len(name)) if len(name) > 2 else 0
        c = name[i].lower()
        op = rng.choice(["neighbour", "swap", "drop", "double", "accent"])
        if op == "accent" and ascii_fold(name) != name:
            return ascii_fold(name)
        if op == "neighbour" and c in KEYBOARD:
            out = name[:i] + rng.choice(KEYBOARD[c]) + name[i + 1 :]
        elif op == "swap" and i + 1 < len(name) and name[i] != name[i + 1]:
            out = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
        elif op == "drop" and len(name) > 3:
            out = name[:i] + name[i + 1 :]
        elif op == "double" and c.isalpha():
            out = name[:i] + name[i] + name[i:]
        else:
            continue
        if " " not in out.strip() or " " in name:
            return out
    return name + name[-1]


def email_typo(rng: random.Random, address: str) -> str:
    local, domain = address.split("@")
    if domain in FREEMAIL_TYPOS and rng.random() < 0.6:
        return f"{local}@{rng.choice(FREEMAIL_TYPOS[domain])}"
    if rng.random() < 0.5:
        head, dot, tld = domain.partition(".")
        return f"{local}@{name_typo(rng, head).lower()}{dot}{tld}"
    return f"{name_typo(rng, local).lower()}@{domain}"


def phone_typo(rng: random.Random, e164: str) -> str:
    number = pn.parse(e164)
    nsn = str(number.national_number)
    for _ in range(50):
        i = rng.randrange(max(1, len(nsn) - 7), len(nsn))
        digit = rng.choice([d for d in "0123456789" if d != nsn[i]])
        other = pn.parse(f"+{number.country_code}{nsn[:i]}{digit}{nsn[i + 1 :]}")
        if pn.is_valid_number(other):
            return pn.format_number(other, pn.PhoneNumberFormat.E164)
    raise RuntimeError("no one-digit-off number")


def typed_company(w: World, c: Company) -> str:
    """How a person types their employer: with or without the legal form, sometimes lower case."""
    text = c.name if w.rng.random() < 0.6 else c.bare
    return text.lower() if w.rng.random() < 0.1 else text


def full(p: Person, first: str | None = None, last: str | None = None) -> str:
    return f"{first or p.first} {last or p.last}"


def n_msgs(w: World, mean: float = 1.2) -> int:
    """Messages in one touchpoint: 1 + a geometric tail."""
    n = 1
    while w.rng.random() < mean / (mean + 1) and n < 12:
        n += 1
    return n


def email_side(w: World, p: Person, ident: str, address: str, company: str | None) -> list[Touch]:
    """How a person reaches the workspace with one address: a widget lead form, and/or mail,
    and for a work address sometimes Slack Connect."""
    touches = [
        Touch(p, ident, "widget", n_msgs(w), email=address, name=full(p), company=company,
              session=w.session(), attributes=person_attributes(w, p))
    ]  # fmt: skip
    if w.rng.random() < 0.5:
        touches.append(Touch(p, ident, "email", n_msgs(w), email=address, name=full(p)))
    if company and w.rng.random() < 0.15:
        member = f"slack:T{w.rng.getrandbits(24):06X}:U{w.rng.getrandbits(32):08X}"
        touches.append(
            Touch(p, ident, "slack", n_msgs(w), email=address, name=full(p), session=member)
        )
    return touches


def person_attributes(w: World, p: Person) -> dict:
    """Custom attributes a lead form may carry: the country, sometimes a job title."""
    attrs = {"country": LOCALES[p.locale][1]}
    if w.rng.random() < 0.3:
        attrs["job_title"] = w.fake[p.locale].job()
    return attrs


def phone_side(w: World, p: Person, ident: str, profile: str | None) -> list[Touch]:
    if w.rng.random() < 0.65:
        return [Touch(p, ident, "whatsapp", n_msgs(w, 2.5), phone=p.mobile, name=profile)]
    return [Touch(p, ident, "sms", n_msgs(w), phone=w.typed_phone(p.mobile))]


def base_address(w: World, p: Person) -> tuple[str, str | None]:
    if p.company:
        return p.work_email, typed_company(w, p.company)
    return p.personal_email, None


def plant(w: World, p: Person) -> list[Touch]:
    """The touchpoints of one person, by their planted kind."""
    rng, kind = w.rng, p.kind
    address, company = base_address(w, p)
    a = email_side(w, p, "a", address, company)
    if kind in ("single", "multi_channel"):
        if kind == "multi_channel":
            a.append(Touch(p, "b", "email", n_msgs(w), email=address, name=full(p)))
            a.append(Touch(p, "b", "widget", n_msgs(w), email=address.upper(), session=w.session()))
        return a
    if kind == "session_then_email":
        a[0].anonymous_first = 1 + rng.randrange(3)
        return a
    if kind == "verified_login":
        user = f"usr_{rng.getrandbits(40):010x}"
        a[0].user_id = user
        other = p.personal_email if p.company else w.personal_email(p)
        return [
            *a,
            Touch(
                p,
                "b",
                "widget",
                n_msgs(w),
                email=other,
                name=full(p),
                session=w.session(),
                user_id=user,
            ),
        ]
    if kind == "lead_form_links_phone":
        form = Touch(
            p,
            "a",
            "widget",
            1,
            email=address,
            phone=w.typed_phone(p.mobile),
            name=full(p),
            session=w.session(),
        )
        return [*a, form, *phone_side(w, p, "b", profile_name(w, p))]
    if kind == "whatsapp_name_only":
        return [*a, Touch(p, "b", "whatsapp", n_msgs(w, 2.5), phone=p.mobile, name=full(p))]
    if kind == "sms_no_name":
        return [*a, Touch(p, "b", "sms", n_msgs(w), phone=w.typed_phone(p.mobile))]
    return a + planted_duplicate(w, p)


def planted_duplicate(w: World, p: Person) -> list[Touch]:
    """Identity b of an evidence kind: shares no exact key with identity a."""
    rng, kind = w.rng, p.kind
    if kind == "work_personal":
        return email_side(w, p, "b", p.personal_email, typed_company(w, p.company))
    if kind in ("name_typo", "nickname"):
        if kind == "nickname":
            first, last = w.nickname(p.first), p.last
        elif rng.random() < 0.6:
            first, last = p.first, name_typo(rng, p.last)
        else:
            first, last = name_typo(rng, p.first), p.last
        other = w.personal_email(p)
        return [Touch(p, "b", "widget", n_msgs(w), email=other, name=full(p, first, last),
                      company=typed_company(w, p.company), session=w.session())]  # fmt: skip
    if kind == "email_typo":
        address = p.work_email or p.personal_email
        typo = email_typo(rng, address)
        w.used_emails.add(typo)
        company = typed_company(w, p.company) if p.company and rng.random() < 0.5 else None
        return [
            Touch(
                p,
                "b",
                "widget",
                n_msgs(w),
                email=typo,
                name=full(p),
                company=company,
                session=w.session(),
            )
        ]
    if kind == "phone_typo":
        typo = phone_typo(rng, p.mobile)
        w.used_phones.add(typo)
        return [
            Touch(p, "a", "widget", 1, email=p.work_email or p.personal_email, phone=w.typed_phone(p.mobile),
                  name=full(p), session=w.session()),
            Touch(p, "b", "widget", n_msgs(w), phone=w.typed_phone(typo), name=full(p), session=w.session()),
        ]  # fmt: skip
    raise ValueError(kind)


def profile_name(w: World, p: Person) -> str | None:
    """A WhatsApp profile name: the full name, the first name, a nickname, or nothing."""
    r = w.rng.random()
    if r < 0.45:
        return full(p)
    if r < 0.75:
        return p.first
    if r < 0.9:
        return w.nickname(p.first) or f"{p.first} {w.rng.choice(['🌴', '☀️', '✨'])}"
    return None


def new_person(w: World, pid: str, loc: str | None = None, employed: float = 0.7) -> Person:
    loc = loc or w.locale()
    f = w.fake[loc]
    p = Person(pid, loc, f.first_name(), f.last_name(), None)
    if w.rng.random() < employed:
        p.company = w.company(loc)
        p.work_email = w.work_email(p)
    p.personal_email = w.personal_email(p)
    p.mobile = w.phone(loc)
    return p


def make_people(w: World, n: int) -> tuple[list[Person], list[Touch]]:
    """`n` people: about 12% in trap groups, the rest with one planted kind each."""
    people: list[Person] = []
    touches: list[Touch] = []
    trap_budget = int(n * 0.12)
    builders = [household, same_name_strangers, switchboard, role_address, test_address]
    shares = [0.25, 0.25, 0.3, 0.15, 0.05]
    for builder, share in zip(builders, shares, strict=True):
        spent = 0
        while spent < trap_budget * share:
            group, group_touches = builder(w, len(people), len(people) // 1000 + spent)
            people += group
            touches += group_touches
            spent += len(group)
    kinds, weights = list(KINDS), list(KINDS.values())
    while len(people) < n:
        kind = w.rng.choices(kinds, weights)[0]
        loc = "en_US" if kind == "nickname" and w.rng.random() < 0.5 else None
        p = new_person(w, f"p{len(people):06d}", loc, 1.0 if kind in EVIDENCE_KINDS[:3] else 0.7)
        if kind == "nickname":
            first = p.first
            while w.nickname(first) is None:
                first = w.fake[p.locale].first_name()
            if first != p.first:
                rename(w, p, first, p.last)
        p.kind = kind
        people.append(p)
        touches += plant(w, p)
    return people, touches


def household(w: World, start: int, gid: int) -> tuple[list[Person], list[Touch]]:
    """2-4 people with one surname and one landline; a third of families share a mailbox."""
    size = w.rng.choice([2, 2, 3, 3, 4])
    loc = w.locale()
    landline = w.phone(loc, mobile=False)
    group = f"household-{start}"
    people = [new_person(w, f"p{start + i:06d}", loc) for i in range(size)]
    family_mail = None
    if w.rng.random() < 0.35:
        family_mail = w.unique_email(
            f"familie.{slug(people[0].last)}", w.fake[loc].free_email_domain()
        )
    touches = []
    for p in people:
        rename(w, p, p.first, people[0].last)
        p.trap, p.trap_group = "household", group
        p.kind = "household_member"
        address, company = base_address(w, p)
        touches += email_side(w, p, "a", address, company)
        touches.append(
            Touch(
                p,
                "h",
                "widget",
                n_msgs(w),
                phone=w.typed_phone(landline),
                name=full(p),
                session=w.session(),
            )
        )
        if family_mail and w.rng.random() < 0.7:
            touches.append(Touch(p, "h", "email", n_msgs(w), email=family_mail, name=full(p)))
    return people, touches


def same_name_strangers(w: World, start: int, gid: int) -> tuple[list[Person], list[Touch]]:
    """Two people with one full name, each at their own company (or none)."""
    a = new_person(w, f"p{start:06d}")
    b = new_person(w, f"p{start + 1:06d}", a.locale)
    if b.company:
        while b.company is a.company:
            b.company = w.company(b.locale)
    rename(w, b, a.first, a.last)
    touches = []
    for p in (a, b):
        p.trap, p.trap_group = "same_name_strangers", f"same-name-{start}"
        touches += email_side(w, p, "a", *base_address(w, p))
    return [a, b], touches


def switchboard(w: World, start: int, gid: int) -> tuple[list[Person], list[Touch]]:
    """3-8 employees of one company who each type its switchboard number in a lead form."""
    size = w.rng.randint(3, 8)
    loc = w.locale()
    company = w.company(loc)
    company.switchboard = company.switchboard or w.phone(loc, mobile=False)
    people = []
    touches = []
    for i in range(size):
        p = new_person(w, f"p{start + i:06d}", loc, employed=1.0)
        p.company, p.trap, p.trap_group = company, "switchboard", f"switchboard-{start}"
        p.work_email = w.work_email(p)
        people.append(p)
        t = email_side(w, p, "a", p.work_email, typed_company(w, company))
        t[0].phone = w.typed_phone(company.switchboard)
        touches += t
    return people, touches


def role_address(w: World, start: int, gid: int) -> tuple[list[Person], list[Touch]]:
    """2-3 colleagues who write from the company's info@/sales@ box, signing with their name."""
    size = w.rng.randint(2, 3)
    loc = w.locale()
    company = w.company(loc)
    role = w.unique_email(
        w.rng.choice(["info", "sales", "office", "contact", "support"]), company.domain
    )
    people, touches = [], []
    for i in range(size):
        p = new_person(w, f"p{start + i:06d}", loc, employed=1.0)
        p.company, p.trap, p.trap_group = company, "role_address", f"role-{start}"
        p.kind = "role_address_member"
        p.work_email = w.work_email(p)
        people.append(p)
        touches += email_side(w, p, "a", p.work_email, typed_company(w, company))
        touches.append(Touch(p, "r", "email", n_msgs(w), email=role, name=full(p)))
    return people, touches


def test_address(w: World, start: int, gid: int) -> tuple[list[Person], list[Touch]]:
    """4-8 unrelated people who typed a throwaway test address into the widget."""
    size = w.rng.randint(4, 8)
    fake = w.rng.choice(
        ["test@test.com", "test@example.com", "asdf@asdf.com", "a@a.com", "none@none.com"]
    )
    people, touches = [], []
    for i in range(size):
        p = new_person(w, f"p{start + i:06d}")
        p.trap, p.trap_group = "test_address", f"test-{start}"
        p.kind = "test_address_member"
        people.append(p)
        touches += email_side(w, p, "a", *base_address(w, p))
        touches.append(Touch(p, "t", "widget", 1, email=fake, name=full(p) if w.rng.random() < 0.5 else None,
                             session=w.session()))  # fmt: skip
    return people, touches


def rename(w: World, p: Person, first: str, last: str) -> None:
    """Give a person another name and addresses that follow it."""
    p.first, p.last = first, last
    if p.company:
        p.work_email = w.work_email(p)
    p.personal_email = w.personal_email(p)


# ---------------------------------------------------------------- writing the export and truth


def occurred(w: World, start: datetime, loc: str) -> str:
    """ISO 8601, mostly UTC `Z`, sometimes with the person's local offset (same instant)."""
    if w.rng.random() < 0.8:
        return start.strftime("%Y-%m-%dT%H:%M:%SZ")
    hours = {"en_US": -5, "pt_BR": -3, "en_GB": 0}.get(loc, 1)
    local = start + timedelta(hours=hours)
    sign = "+" if hours >= 0 else "-"
    return local.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{abs(hours):02d}:00"


def render(w: World, t: Touch) -> list[tuple[datetime, dict, str]]:
    """The interactions of one touchpoint, in the canonical askvault record."""
    window = (DAYS - 1) * 86400
    at = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=UTC)
    at += timedelta(seconds=w.rng.randrange(window))
    conversation = f"conv_{w.rng.getrandbits(64):016x}"
    rows = []
    for i in range(t.anonymous_first + t.n):
        row = {
            "interaction_id": f"iv_{w.rng.getrandbits(64):016x}",
            "channel": t.channel,
            "occurred_at": occurred(w, at, t.person.locale),
            "conversation_id": conversation,
        }
        if t.session:
            row["session_id"] = t.session
        lead = i == t.anonymous_first
        if i >= t.anonymous_first:
            row.update(identifiers(w, t, lead))
        # The anonymous messages before a lead form are their own identity: the session joins them.
        rows.append((at, row, "b" if i < t.anonymous_first else t.identity))
        at += timedelta(minutes=w.rng.randint(1, 300))
    return rows


def identifiers(w: World, t: Touch, lead: bool) -> dict:
    """What one message of a touchpoint carries: everything on a lead form, a mail or a chat;
    on later widget messages the session, the login, and half the time the address."""
    out: dict = {}
    if t.channel != "widget" or lead:
        if t.email:
            email = t.email
            if t.channel == "email" and t.name and w.rng.random() < 0.3:
                email = f"{t.name} <{t.email}>"
            out["email"] = email
        for key, value in (("phone", t.phone), ("name", t.name), ("company", t.company)):
            if value:
                out[key] = value
        if lead and t.attributes:
            out["attributes"] = t.attributes
    elif t.email and w.rng.random() < 0.5:
        out["email"] = t.email
    if t.user_id:
        out["user_id"] = t.user_id
        out["user_hash"] = hmac.new(SECRET.encode(), t.user_id.encode(), hashlib.sha256).hexdigest()
        out["plan"] = "pro"
    return out


PLANTED_QUARANTINE = [
    (
        {
            "interaction_id": "iv_bad_channel",
            "channel": "fax",
            "occurred_at": "2026-11-08T10:00:00Z",
        },
        "channel",
    ),
    (
        {"interaction_id": "iv_bad_time", "channel": "widget", "occurred_at": "yesterday"},
        "occurred_at",
    ),
    (
        {"channel": "widget", "occurred_at": "2026-11-08T10:00:00Z", "email": "x@y.org"},
        "interaction_id",
    ),
    ('{"interaction_id": "iv_bad_json", "channel": ', "json"),
]


def generate(out: Path, people: int = 8000, seed: int = 7, quarantine: bool = True) -> dict:
    """Write `out/exports/askvault/<day>/part-*.jsonl` and `out/truth/*`; return the counts."""
    w = World(seed)
    persons, touches = make_people(w, people)
    rows: list[tuple[datetime, dict, Touch, str]] = []
    for t in touches:
        rows += [(at, row, t, ident) for at, row, ident in render(w, t)]
    rows.sort(key=lambda r: (r[0], r[1]["interaction_id"]))
    last = FIRST_DAY + timedelta(days=DAYS - 1)
    by_day: dict[date, list[str]] = {}
    for at, row, _, _ in rows:
        day = min(at.date(), last)
        line = json.dumps(row, ensure_ascii=False)
        by_day.setdefault(day, []).append(line)
        if day < last and w.rng.random() < 0.02:  # delivered again, unchanged, the next day
            by_day.setdefault(day + timedelta(days=1), []).append(line)
    planted = []
    if quarantine:
        for record, why in PLANTED_QUARANTINE:
            by_day[last].append(record if isinstance(record, str) else json.dumps(record))
            planted.append({"day": last.isoformat(), "row": len(by_day[last]), "field": why})
    for day, lines in by_day.items():
        folder = out / "exports" / "askvault" / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        for part in range(0, len(lines), 4000):
            name = f"part-{part // 4000:03d}.jsonl"
            (folder / name).write_text(
                "\n".join(lines[part : part + 4000]) + "\n", encoding="utf-8"
            )
    for q in planted:  # the row number inside the part file that holds it
        q["file"] = f"askvault/{q['day']}/part-{(q['row'] - 1) // 4000:03d}.jsonl"
        q["row"] = (q["row"] - 1) % 4000 + 1
    write_truth(out / "truth", persons, rows, planted)
    return {"people": len(persons), "interactions": len(rows), "planted_quarantine": len(planted)}


def write_truth(folder: Path, persons: list[Person], rows: list, planted: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        {
            "interaction_id": [r["interaction_id"] for _, r, _, _ in rows],
            "person_id": [t.person.pid for _, _, t, _ in rows],
            "identity": [ident for _, _, _, ident in rows],
            "channel": [t.channel for _, _, t, _ in rows],
        }
    ).write_parquet(folder / "interactions.parquet")
    pl.DataFrame(
        {
            "person_id": [p.pid for p in persons],
            "locale": [p.locale for p in persons],
            "kind": [p.kind for p in persons],
            "trap": [p.trap for p in persons],
            "trap_group": [p.trap_group for p in persons],
            "name": [full(p) for p in persons],
            "company": [p.company.name if p.company else None for p in persons],
        },
        schema_overrides={"trap": pl.String, "trap_group": pl.String, "company": pl.String},
    ).write_parquet(folder / "persons.parquet")
    (folder / "planted_quarantine.json").write_text(json.dumps(planted, indent=1))


# ---------------------------------------------------------------- running the job and scoring


def run_job(root: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, float]:
    """The real nightly job on `root/exports`; the interactions' contacts, pending proposals,
    quarantine rows and the job's seconds."""
    from benchmarks.night_run import run_night

    os.environ["ASKVAULT_IDENTITY_SECRET"] = SECRET
    night = run_night(root, min(THRESHOLDS))
    return night.assignment, night.proposals, night.quarantine, night.seconds


def clusters_at(
    assignment: pl.DataFrame, proposals: pl.DataFrame, threshold: float | None
) -> pl.DataFrame:
    """interaction_id -> cluster: contacts joined by every pending proposal >= threshold
    (union-find); None is auto-merge alone."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    if threshold is not None:
        accepted = proposals.filter(pl.col("match_probability") >= threshold)
        for left, right in accepted.select("contact_id_l", "contact_id_r").iter_rows():
            a, b = find(left), find(right)
            if a != b:
                parent[max(a, b)] = min(a, b)
    roots = {c: find(c) for c in assignment["contact_id"].unique().to_list()}
    return assignment.with_columns(cluster=pl.col("contact_id").replace_strict(roots))


def pairs(col: pl.Expr) -> pl.Expr:
    return (col.cast(pl.Int64) * (col.cast(pl.Int64) - 1) / 2).sum()


def pairwise(clustered: pl.DataFrame) -> tuple[float, float, float]:
    """Precision, recall, F1 over pairs of interactions (clustered joins the truth)."""
    tp = clustered.group_by("cluster", "person_id").len().select(pairs(pl.col("len"))).item()
    predicted = clustered.group_by("cluster").len().select(pairs(pl.col("len"))).item()
    true = clustered.group_by("person_id").len().select(pairs(pl.col("len"))).item()
    p = tp / predicted if predicted else 1.0
    r = tp / true if true else 1.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def cross_identity_recall(clustered: pl.DataFrame) -> pl.DataFrame:
    """Per kind: pairs of one person's interactions from two different identities (what the
    plant split), and the share of them in one cluster."""
    per = clustered.group_by("kind", "person_id", "identity", "cluster").len()
    ident = per.group_by("kind", "person_id", "identity").agg(pl.col("len").sum())
    person = ident.group_by("kind", "person_id").agg(
        total=pl.col("len").sum(), sq=(pl.col("len").cast(pl.Int64) ** 2).sum()
    )
    total = person.group_by("kind").agg(cross=((pl.col("total") ** 2 - pl.col("sq")) / 2).sum())
    same = per.group_by("kind", "person_id", "cluster").agg(
        n=pl.col("len").sum(), sq=(pl.col("len").cast(pl.Int64) ** 2).sum()
    )
    joined = same.group_by("kind").agg(
        joined=((pl.col("n").cast(pl.Int64) ** 2 - pl.col("sq")) / 2).sum()
    )
    return (
        total.join(joined, on="kind", how="left")
        .filter(pl.col("cross") > 0)
        .with_columns(
            pl.col("cross").cast(pl.Int64), recall=pl.col("joined").fill_null(0) / pl.col("cross")
        )
        .sort("kind")
    )


def traps_joined(clustered: pl.DataFrame, own_only: bool = False) -> pl.DataFrame:
    """Per trap kind: groups, and groups with two of their people in one cluster. `own_only`
    looks only at each person's own identity (their own address), not at the interactions
    that carry the shared key (the household phone, the role or test address)."""
    members = clustered.filter(pl.col("trap").is_not_null())
    if own_only:
        members = members.filter(pl.col("identity") == "a")
    per_cluster = members.group_by("trap", "trap_group", "cluster").agg(
        pl.col("person_id").n_unique()
    )
    per_group = per_cluster.group_by("trap", "trap_group").agg(
        joined=(pl.col("person_id") >= 2).any()
    )
    return per_group.group_by("trap").agg(groups=pl.len(), joined=pl.col("joined").sum())


def unproposed(clustered: pl.DataFrame, proposals: pl.DataFrame) -> pl.DataFrame:
    """Per evidence kind: persons whose identities a and b sit in different contacts with no
    pending proposal between any of them (never reached the floor threshold)."""
    sides = (
        clustered.filter(
            pl.col("kind").is_in(EVIDENCE_KINDS) & pl.col("identity").is_in(["a", "b"])
        )
        .select("kind", "person_id", "identity", "contact_id")
        .unique()
    )
    a = sides.filter(pl.col("identity") == "a").drop("identity")
    b = sides.filter(pl.col("identity") == "b").drop("identity", "kind")
    cross = a.join(b, on="person_id", suffix="_b").filter(
        pl.col("contact_id") != pl.col("contact_id_b")
    )
    links = pl.concat(
        [
            proposals.select(
                pl.col("contact_id_l").alias("x"),
                pl.col("contact_id_r").alias("y"),
                "match_probability",
            ),
            proposals.select(
                pl.col("contact_id_r").alias("x"),
                pl.col("contact_id_l").alias("y"),
                "match_probability",
            ),
        ]
    )
    scored = cross.join(
        links, left_on=["contact_id", "contact_id_b"], right_on=["x", "y"], how="left"
    )
    best = scored.group_by("kind", "person_id").agg(pl.col("match_probability").max().alias("best"))
    return (
        best.group_by("kind")
        .agg(
            split=pl.len(),
            no_proposal=pl.col("best").is_null().sum(),
            below_0_9=(pl.col("best") < 0.9).sum(),
        )
        .sort("kind")
    )


def print_table(frame: pl.DataFrame) -> None:
    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.4f}"
        if isinstance(v, int):
            return f"{v:,}"
        return "–" if v is None else str(v)

    print("| " + " | ".join(frame.columns) + " |")
    print(
        "|" + "".join(" --- |" if frame[c].dtype == pl.String else " ---: |" for c in frame.columns)
    )
    for row in frame.iter_rows():
        print("| " + " | ".join(cell(v) for v in row) + " |")
    print()


def kind_class(kind: str) -> str:
    if kind in EVIDENCE_KINDS:
        return "evidence"
    if kind in ("whatsapp_name_only", "sms_no_name"):
        return "weak/none"
    if kind.endswith("_member"):
        return "trap member"
    return "exact key"


def owners(labelled: pl.DataFrame) -> pl.DataFrame:
    """contact_id -> the person holding most of its interactions."""
    return (
        labelled.group_by("contact_id", "person_id")
        .len()
        .sort(["len", "person_id"], descending=[True, False])
        .unique("contact_id", keep="first")
        .select("contact_id", "person_id")
    )


def report(root: Path, assignment: pl.DataFrame, proposals: pl.DataFrame) -> None:
    truth = pl.read_parquet(root / "truth" / "interactions.parquet")
    persons = pl.read_parquet(root / "truth" / "persons.parquet")
    labelled = assignment.join(truth, on="interaction_id").join(
        persons.select("person_id", "kind", "trap", "trap_group"), on="person_id"
    )
    lost = truth.join(assignment, on="interaction_id", how="anti").height
    print(f"interactions in truth missing from the published file: {lost}\n")
    owner = owners(labelled)
    judged = proposals.join(owner, left_on="contact_id_l", right_on="contact_id").join(
        owner, left_on="contact_id_r", right_on="contact_id", suffix="_r"
    )
    stages = {"auto-merge": None, **{f"≥ {t}": t for t in THRESHOLDS}}
    clustered = {name: clusters_at(labelled, proposals, t) for name, t in stages.items()}
    rows = []
    for name, t in stages.items():
        mine = judged.filter(pl.col("match_probability") >= t) if t is not None else judged.clear()
        right = mine.filter(pl.col("person_id") == pl.col("person_id_r")).height
        p, r, f1 = pairwise(clustered[name])
        rows.append((name if t is None else f"+ proposals {name}", mine.height,
                     right / mine.height if mine.height else None, p, r, f1))  # fmt: skip
    print(
        "Pairwise over interaction pairs (every pending proposal at or above the threshold accepted):\n"
    )
    print_table(
        pl.DataFrame(
            rows,
            schema=["accepted", "proposals", "proposal precision", "precision", "recall", "F1"],
            orient="row",
        )
    )
    kinds = persons.group_by("kind").len().rename({"len": "people"})
    table = None
    for name, frame in clustered.items():
        rec = cross_identity_recall(frame).select("kind", "cross", pl.col("recall").alias(name))
        table = rec if table is None else table.join(rec.drop("cross"), on="kind")
    table = table.join(kinds, on="kind").with_columns(
        pl.col("kind").map_elements(kind_class, return_dtype=pl.String).alias("class")
    )
    order = ["kind", "class", "people", "cross", *stages]
    print(
        "Recall per planted kind (pairs of one person's interactions across the identities the plant split):\n"
    )
    print_table(table.select(order).rename({"cross": "split pairs"}).sort("class", "kind"))
    for own in (False, True):
        traps = None
        for name, frame in clustered.items():
            j = traps_joined(frame, own).rename({"joined": name})
            traps = j if traps is None else traps.join(j.drop("groups"), on="trap")
        what = "their own addresses' interactions" if own else "any of their interactions"
        print(f"Trap groups joined (two of the group's people in one cluster, {what}):\n")
        print_table(traps.sort("trap"))
    print(
        f"Evidence-kind people left in two contacts by auto-merge, and the best proposal between them (floor {min(THRESHOLDS)}):\n"
    )
    print_table(unproposed(labelled, proposals))
    wrong_auto(labelled, persons)
    wrong_proposals(judged, labelled, persons, 0.9)


def wrong_auto(labelled: pl.DataFrame, persons: pl.DataFrame) -> None:
    mixed = (
        labelled.group_by("contact_id")
        .agg(pl.col("person_id").n_unique().alias("people"), pl.col("person_id").unique().sort())
        .filter(pl.col("people") > 1)
    )
    print(f"Contacts auto-merge built from more than one person: {mixed.height}")
    for cid, _, pids in mixed.head(5).iter_rows():
        who = (
            persons.filter(pl.col("person_id").is_in(pids))
            .select("name", "company", "kind", "trap")
            .rows()
        )
        print(f"  {cid}: {who}")
    print()


def wrong_proposals(
    judged: pl.DataFrame, labelled: pl.DataFrame, persons: pl.DataFrame, threshold: float
) -> None:
    """Proposals at or above `threshold` whose two contacts belong to different people, split by
    whether a side is a contact auto-merge already built from several people (a lumped role
    mailbox or household phone: the proposal then only follows that lump)."""
    mixed = (
        labelled.group_by("contact_id")
        .agg(pl.col("person_id").n_unique().alias("n"))
        .filter(pl.col("n") > 1)
    )
    lumped = set(mixed["contact_id"].to_list())
    wrong = judged.filter(
        (pl.col("match_probability") >= threshold) & (pl.col("person_id") != pl.col("person_id_r"))
    ).with_columns(
        lump=pl.col("contact_id_l").is_in(list(lumped)) | pl.col("contact_id_r").is_in(list(lumped))
    )
    pure = wrong.filter(~pl.col("lump"))
    print(
        f"Proposals ≥ {threshold} joining two people: {wrong.height} ({wrong.height - pure.height} "
        f"with a side auto-merge built from several people; {pure.height} between two one-person contacts)"
    )
    info = persons.select("person_id", "name", "company", "kind", "trap")
    for row in pure.sort("match_probability", descending=True).head(10).iter_rows(named=True):
        a = info.filter(pl.col("person_id") == row["person_id"]).row(0)
        b = info.filter(pl.col("person_id") == row["person_id_r"]).row(0)
        print(f"  {row['match_probability']:.3f}: {a[1:]} | {b[1:]}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (else a temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        if args.keep and (root / "exports").exists():
            raise SystemExit(f"{root} already holds a run; give an empty folder")
        counts = generate(root, args.people, args.seed)
        assignment, proposals, quarantine, seconds = run_job(root)
        planted = json.loads((root / "truth" / "planted_quarantine.json").read_text())
        print(
            f"seed {args.seed}: {counts['people']:,} people, {counts['interactions']:,} interactions, "
            f"{assignment['contact_id'].n_unique():,} contacts after auto-merge, {proposals.height:,} "
            f"pending proposals ≥ {min(THRESHOLDS)}; nightly job {seconds:.0f} s; quarantine "
            f"{quarantine.height} rows ({len(planted)} planted)\n"
        )
        unexpected = quarantine.join(
            pl.DataFrame(planted).select("file", "row"), on=["file", "row"], how="anti"
        )
        if unexpected.height:
            print("Quarantine rows not planted:\n")
            print_table(unexpected.head(10))
        report(root, assignment, proposals)


if __name__ == "__main__":
    main()
