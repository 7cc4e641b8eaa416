"""How the generator makes and spells identifiers: scrambled ids (``int_``/``conv_``/``sess_``),
the HMAC user hash, valid phone numbers and their typed spellings, and the SPEC email norm.

``num_id`` and ``id_expr`` are one bijection in Python and in Polars; US area codes are checked
against libphonenumber's metadata at import.
"""

from __future__ import annotations

import hashlib
import hmac
import re

import phonenumbers
import polars as pl

from contacts.demo.vocabulary import US_AREAS

_MASK64 = (1 << 64) - 1
_MULT = 0x9E3779B97F4A7C15  # odd: n -> (n + k) * _MULT mod 2**64 is a bijection


def norm_email(addr: str) -> str:
    """SPEC ``email_norm`` of a clean generated address (keeps different people's emails apart)."""
    local, _, domain = addr.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        return local.replace(".", "") + "@gmail.com"
    return local + "@" + domain


def valid_phone(cc: int, nsn: str) -> bool:
    return phonenumbers.is_valid_number(
        phonenumbers.PhoneNumber(country_code=cc, national_number=int(nsn))
    )


_MOBILE: dict[int, tuple] = {}


def fast_valid(cc: int, nsn: str) -> bool:
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
    for a in US_AREAS:
        for ex, line in ((200, 0), (549, 1234), (999, 9999)):
            if not valid_phone(1, f"{a}{ex}{line:04d}"):  # pragma: no cover - metadata drift
                raise RuntimeError(f"phonenumbers no longer accepts US area code {a}")


_check_us_areas()


def fmt_phone(cc: int, nsn: str, style: int) -> str:
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


def user_hash(secret: bytes, user_id: str) -> str:
    """Hex HMAC-SHA256 of ``user_id`` under ``secret`` (what the widget's identify() sends)."""
    return hmac.digest(secret, user_id.encode(), "sha256").hex()


class Signer:
    """``user_hash`` for one secret, with the HMAC pads hashed once (many ids, same key)."""

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


def num_id(prefix: str, n: int, key: int) -> str:
    """``prefix`` + a 64-bit scramble of the counter ``n`` (a bijection: ids never collide)."""
    return f"{prefix}{((n + key) * _MULT) & _MASK64}"


def id_expr(prefix: str, num: pl.Expr, key: int) -> pl.Expr:
    """Vectorized ``num_id`` (UInt64 arithmetic wraps like the mask); null stays null."""
    v = (num.cast(pl.UInt64) + pl.lit(key, pl.UInt64)) * pl.lit(_MULT, pl.UInt64)
    return pl.lit(prefix) + v.cast(pl.String)
