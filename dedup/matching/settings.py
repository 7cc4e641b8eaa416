"""Splink settings for contacts: comparisons and blocking rules, backend-agnostic.

Every level is built from Splink's level library or from SQL that Splink translates per dialect
(the conditions below are plain equality, `jaro_winkler_similarity` and array functions, which
the DuckDB and Spark dialects both provide), so the same settings run on `DuckDBAPI` and
`SparkAPI`.

Design notes (docs/matching.md):
- No "shares an email" level: two contacts that share an address were merged by auto-merge,
  unless the address is ambiguous, and ambiguous addresses are hidden from the matcher (measured
  at 1M interactions: 0 of 5.0M candidate pairs shared one; carrying every contact's email list
  through Splink's joins only cost time).
- Email is compared for the two typos people make: a mistyped
  domain with the same local part (`gmial.com`), or two adjacent letters of the local part
  swapped (`jonh.smith@`). A general small edit distance is not used: addresses are built from
  names, so two people called Zoe Lopez own `zoe.lopez@`, `zoelopez@` and `zlopez@` at one
  provider, one or two edits apart (measured at 20,000 people: most false proposals at 0.8 were
  such pairs), and `kevindavis47@` vs `kevindavis4@` are two people. No "same username" level
  either: it would count name agreement twice.
- Company and full name carry term-frequency adjustments: a big employer and "John Smith" must
  count for less than a rare value. The name's adjustment is halved: on a small workspace every
  duplicated name is "common" (seen at least twice), and the full adjustment drowned the very
  pairs it should rank (measured: a one-person work/personal email pair fell from 0.98 to 0.44).
  Phones carry none: a phone shared by more than two identities (a switchboard) never reaches
  the matcher (`records.MAX_SHARED_IDENTITIES`), and one shared by two is exactly the evidence
  a person with two emails leaves.
- Every level starts from an expert m probability (how often the level is reached by a true
  duplicate that auto-merge left behind). u always comes from random sampling; EM refines m when
  there is enough data (`TrainingConfig.em_min_contacts`). On a small workspace EM over a few
  hundred contacts drives unobserved levels to 0 or 1 and the model falls apart (measured on the
  generator's 400-person sample: the second-email pair scored 0.62 after EM, 0.99 without).
"""

from __future__ import annotations

import re

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import SettingsCreator, block_on
from splink.blocking_rule_library import CustomRule


def _only_if(cheap: str, costly: str) -> str:
    """`cheap AND costly`, with `costly` evaluated only where `cheap` holds. DuckDB evaluates
    every operand of an AND over the whole batch, but only the matching rows of a CASE branch:
    an edit distance behind a cheap necessary condition cost 0.03 s instead of 0.27 s on the
    276,000 pairs of two different phones among the 1M benchmark's (first name, surname)
    candidates. Spark evaluates CASE lazily too."""
    return f"CASE WHEN {cheap} THEN {costly} ELSE false END"


# Two first names that are plainly not one person's: both given, not equal, neither a nickname
# of the other, not spelled alike. Households and colleagues share a surname with a phone or an
# employer; where this holds, that phone or employer is neutral (PHONE, COMPANY, EMPLOYER).
# It reads no column of the (first name, surname) blocking rule: Splink leaves untrained, in an
# EM session, every comparison whose SQL reads a column of the session's rule, and the email,
# company and employer comparisons learn their m from that session's pairs (with
# `first_name_canonical` here they kept their starting m). `first_name_forms` holds the table's
# formal name, so two nicknames of one name (`bob`, `rob`) still share a form.
FIRST_NAMES_DIFFER = (
    "first_name_l <> first_name_r "
    "AND NOT coalesce(size(array_intersect(first_name_forms_l, first_name_forms_r)) > 0, false) "
    "AND NOT coalesce(array_contains(first_name_forms_l, first_name_r), false) "
    "AND NOT coalesce(array_contains(first_name_forms_r, first_name_l), false) "
    "AND jaro_winkler_similarity(first_name_l, first_name_r) < 0.9"
)
COLLEAGUES = "same company, first names differ: colleagues"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _colleagues(same: str) -> cll.CustomLevel:
    """`same` employer where the first names plainly differ: neutral (m = u, fixed: 0 bits).
    Surname and employer are independent among strangers but not among colleagues who are
    relatives (a family business, a couple at one firm): an independently written generator
    (benchmarks/independent_contacts.py) had Ida and Jacek Tlustek at one company proposed at
    0.977, +7 bits for the rare surname and +9 for the company. One person's two records with
    plainly different first names at one employer are rare; on the project's generator at
    20,000 people all 91 stored pairs with the same surname only and the same company were two
    people."""
    return cll.CustomLevel(
        _only_if(same, FIRST_NAMES_DIFFER), COLLEAGUES, base_dialect_str="spark"
    ).configure(
        fix_m_probability=True, m_probability=0.01, fix_u_probability=True, u_probability=0.01
    )


NAME = cl.CustomComparison(
    output_column_name="name",
    comparison_description="First name and surname",
    comparison_levels=[
        cll.CustomLevel("(first_name_l IS NULL OR first_name_r IS NULL)", "name missing").configure(
            is_null_level=True
        ),
        cll.ExactMatchLevel("full_name", term_frequency_adjustments=True).configure(
            m_probability=0.70, tf_adjustment_weight=0.5
        ),
        # The table's one formal name, or a direct relation of the `nicknames` package read
        # both ways (dedup.matching.nicknames); the label stays, so saved models still apply.
        cll.CustomLevel(
            _only_if(
                "surname_l = surname_r",
                "first_name_canonical_l = first_name_canonical_r "
                "OR array_contains(first_name_forms_l, first_name_r) "
                "OR array_contains(first_name_forms_r, first_name_l)",
            ),
            "nickname of the same first name, same surname",
            base_dialect_str="spark",
        ).configure(m_probability=0.08),
        cll.CustomLevel(
            "first_name_l = surname_r AND surname_l = first_name_r",
            "first name and surname swapped",
        ).configure(m_probability=0.02),
        cll.CustomLevel(
            "jaro_winkler_similarity(first_name_l, first_name_r) >= 0.9 "
            "AND jaro_winkler_similarity(surname_l, surname_r) >= 0.9",
            "both names similar (Jaro-Winkler >= 0.9)",
        ).configure(m_probability=0.10),
        cll.CustomLevel(
            "first_name_canonical_l = first_name_canonical_r "
            "AND (surname_l IS NULL OR surname_r IS NULL)",
            "same first name, one side gave no surname",
        ).configure(m_probability=0.05),
        # A common surname shared is weak evidence, a rare one strong: the level's u is replaced
        # by the surname's own share (frequencies.term_frequencies), as for the full name.
        cll.CustomLevel("surname_l = surname_r", "same surname only").configure(
            m_probability=0.04, tf_adjustment_column="surname", tf_adjustment_weight=1.0
        ),
        cll.ElseLevel().configure(m_probability=0.06),
    ],
)


EMAIL = cl.CustomComparison(
    output_column_name="email",
    comparison_description="Email addresses",
    comparison_levels=[
        cll.NullLevel("email"),
        cll.CustomLevel(
            # Local parts without dots (`email_user`, records.py): a Gmail address typed at
            # `gmial.com` kept its dots. The domains must differ: at one provider the dots
            # make two mailboxes.
            _only_if(
                "email_user_l = email_user_r AND email_domain_l <> email_domain_r",
                "levenshtein(email_domain_l, email_domain_r) <= 2",
            ),
            "same local part, domain one or two characters apart",
            base_dialect_str="duckdb",
        ).configure(m_probability=0.10),
        cll.CustomLevel(
            # A swap of two letters keeps the length.
            _only_if(
                "email_domain_l = email_domain_r AND length(email_local_l) = length(email_local_r)",
                "damerau_levenshtein(email_local_l, email_local_r) = 1 "
                "AND levenshtein(email_local_l, email_local_r) = 2",
            ),
            "same domain, two adjacent letters of the local part swapped",
            base_dialect_str="duckdb",
        ).configure(m_probability=0.05),
        # Any other one-character slip, if it is a letter (`whitney_rogers98@` and
        # `whtney_rogers98@`): the local parts' digits and punctuation are the same, in order.
        # Namesakes' addresses differ in exactly those (`zoe.lopez@` / `zoelopez@`,
        # `kevindavis47@` / `kevindavis4@`), or by more than one edit (`zlopez@`). An
        # independently written generator's e-mail typos of this kind scored 0.52-0.59 at the
        # same full name, all one person. Not where the first letters differ or the first names
        # plainly do: colleagues' addresses are an initial and a surname (`itlustek@` /
        # `jtlustek@`), and with this level alone such pairs of relatives were proposed at 0.999.
        cll.CustomLevel(
            _only_if(
                "email_domain_l = email_domain_r AND left(email_local_l, 1) = left(email_local_r, 1) "
                "AND abs(length(email_local_l) - length(email_local_r)) <= 1",
                f"NOT coalesce({FIRST_NAMES_DIFFER}, false) "
                "AND damerau_levenshtein(email_local_l, email_local_r) = 1 "
                f"AND translate(email_local_l, '{_LETTERS}', '') "
                f"= translate(email_local_r, '{_LETTERS}', '')",
            ),
            "same domain, one letter of the local part typed wrong",
            # Spark's dialect: the first names' test is written in it (PHONE), and `translate`
            # deletes every listed letter in both engines.
            base_dialect_str="spark",
        ).configure(m_probability=0.05),
        cll.ElseLevel().configure(m_probability=0.80),
    ],
)

PHONE = cl.CustomComparison(
    output_column_name="phone",
    comparison_description="Phone numbers (E.164)",
    comparison_levels=[
        cll.NullLevel("phone"),
        # A household's members share the home phone and a surname: two fields that are
        # independent among strangers but not in a family, so their weights must not add up.
        # Where the first names plainly differ (not equal, no nickname of each other, not
        # spelled alike), the shared phone is neutral (m = u, fixed: 0 bits) and the names
        # decide. Random sampling put the phone's u at 1e-5 in a workspace of unique phones
        # (FEBRL1), +15 bits: a mother and son sharing a phone were proposed at 0.99.
        # A phone auto-merge already saw with two identities (`phone_shared`) is one person's
        # two addresses or a household; where a side gave no first name, nothing tells which,
        # so it is neutral too (a nameless household member was proposed at 0.94).
        cll.CustomLevel(
            _only_if(
                "phone_l = phone_r",
                # The canonical names' test, kept from before FIRST_NAMES_DIFFER was shared,
                # keeps the phone out of the name session's EM as it always was.
                f"({FIRST_NAMES_DIFFER} AND first_name_canonical_l <> first_name_canonical_r) "
                "OR (coalesce(phone_shared_l, false) "
                "AND (first_name_l IS NULL OR first_name_r IS NULL))",
            ),
            "same phone, first names differ: a shared phone",
            base_dialect_str="spark",
        ).configure(
            fix_m_probability=True, m_probability=0.01, fix_u_probability=True, u_probability=0.01
        ),
        cll.ExactMatchLevel("phone").configure(m_probability=0.45),
        cll.ArrayIntersectLevel("phones", min_intersection=1).configure(m_probability=0.05),
        # Splink's `DamerauLevenshteinLevel("phone", 1)`, its label included (a saved model's
        # m/u follow the label), computed only where one edit is possible: an edit at position p
        # leaves the first p characters equal, and everything after p + 1 equal counted from the
        # end, so two numbers of 12 characters or more one edit apart share their first 6 or
        # their last 5 (checked on 200,000 random single edits of 8-16 characters).
        cll.CustomLevel(
            _only_if(
                "least(length(phone_l), length(phone_r)) < 12 "
                "OR left(phone_l, 6) = left(phone_r, 6) OR right(phone_l, 5) = right(phone_r, 5)",
                "damerau_levenshtein(phone_l, phone_r) <= 1",
            ),
            "Damerau-Levenshtein distance of phone <= 1",
            base_dialect_str="duckdb",
        ).configure(m_probability=0.10),
        cll.ExactMatchLevel("phone_last7").configure(m_probability=0.05),
        cll.ElseLevel().configure(m_probability=0.35),
    ],
)

COMPANY = cl.CustomComparison(
    output_column_name="company",
    comparison_description="Company, legal suffixes removed",
    comparison_levels=[
        cll.NullLevel("company"),
        _colleagues("company_l = company_r"),
        cll.ExactMatchLevel("company", term_frequency_adjustments=True).configure(
            m_probability=0.65
        ),
        # A company typed short (`Fuentes` / `Fuentes Group`, `Ramos e Filhos`): one name is the
        # other's first words. Its u is sampled like every level's, so a workspace where `Acme`
        # and `Acme Studio` are two firms learns that it is weak there.
        cll.CustomLevel(
            "starts_with(company_l || ' ', company_r || ' ') "
            "OR starts_with(company_r || ' ', company_l || ' ')",
            "one company name begins the other",
            base_dialect_str="duckdb",
        ).configure(m_probability=0.10),
        cll.JaroWinklerLevel("company", 0.9).configure(m_probability=0.15),
        cll.ElseLevel().configure(m_probability=0.20),
    ],
)

# A company typed on one side against the employer the other side's work email domain names
# (dedup.matching.employer): a personal address with the company typed into a form and the work
# address with none are one employer. Where both typed a company, the company comparison decides
# and this one stays neutral, so no evidence counts twice; two work addresses at one domain are
# not compared here (a family's own domain looks the same).
# `employer` is `c:<key>` for a typed company, `d:<key>` for a work email domain alone
# (employer.employer_key).
_TYPED_VS_DOMAIN = (
    "(left(employer_l, 2) = 'c:' AND left(employer_r, 2) = 'd:') OR "
    "(left(employer_l, 2) = 'd:' AND left(employer_r, 2) = 'c:')"
)
EMPLOYER = cl.CustomComparison(
    output_column_name="employer",
    comparison_description="A company typed on one side, the other side's work email domain",
    comparison_levels=[
        cll.CustomLevel(
            f"employer_l IS NULL OR employer_r IS NULL OR NOT ({_TYPED_VS_DOMAIN})",
            "no typed company against a work email domain",
        ).configure(is_null_level=True),
        _colleagues("substr(employer_l, 3) = substr(employer_r, 3)"),
        cll.CustomLevel(
            "substr(employer_l, 3) = substr(employer_r, 3)",
            "same employer: company name or work email domain",
        ).configure(fix_m_probability=True, m_probability=0.8),
        cll.ElseLevel().configure(fix_m_probability=True, m_probability=0.2),
    ],
)


def _shared(column: str) -> str:
    """SQL: how many elements the two records' `column` lists share (a record's list holds
    distinct values). Spark SQL, translated by Splink (sqlglot) for DuckDB. A filter of one list
    by the other, not `array_intersect`: DuckDB's intersect builds a hash set per pair, and on
    these short lists the filter was 5x faster (the attribute levels on the 1M benchmark's 3.6M
    (first name, surname) pairs: 1.9-2.0 s → 0.38-0.39 s, every pair on the same level)."""
    return f"size(filter({column}_l, x -> array_contains({column}_r, x)))"


# Custom attributes as `key=value` arrays (records.attribute_arrays_of). A shared key with different
# values (another city, another signup source) is the strongest sign of two people; each further
# agreeing value lowers the chance that a stranger of the same name matches by coincidence.
_SHARED_KEYS = _shared("attr_keys")
_SHARED_VALUES = _shared("attr_values")
ATTRIBUTES = cl.CustomComparison(
    output_column_name="attributes",
    comparison_description="Custom attributes (key=value)",
    comparison_levels=[
        cll.NullLevel("attr_values"),
        cll.CustomLevel(
            f"{_SHARED_KEYS} > {_SHARED_VALUES}",
            "an attribute both have differs",
            base_dialect_str="spark",
        ).configure(fix_m_probability=True, m_probability=0.03),
        cll.CustomLevel(
            f"{_SHARED_VALUES} >= 3", "three or more attributes agree", base_dialect_str="spark"
        ).configure(fix_m_probability=True, m_probability=0.25),
        cll.CustomLevel(
            f"{_SHARED_VALUES} = 2", "two attributes agree", base_dialect_str="spark"
        ).configure(fix_m_probability=True, m_probability=0.25),
        cll.CustomLevel(
            f"{_SHARED_VALUES} = 1", "one attribute agrees", base_dialect_str="spark"
        ).configure(fix_m_probability=True, m_probability=0.40),
        cll.ElseLevel().configure(fix_m_probability=True, m_probability=0.07),
    ],
)

# Contact tags (segments such as `vip`, `beta`): a shared set of two or more is rare between
# strangers. Tags accumulate over time, so disjoint tags are only mild evidence against.
TAGS = cl.CustomComparison(
    output_column_name="tags",
    comparison_description="Contact tags",
    comparison_levels=[
        cll.NullLevel("tags"),
        cll.ArrayIntersectLevel("tags", min_intersection=2).configure(
            fix_m_probability=True, m_probability=0.30
        ),
        cll.ArrayIntersectLevel("tags", min_intersection=1).configure(
            fix_m_probability=True, m_probability=0.40
        ),
        cll.ElseLevel().configure(fix_m_probability=True, m_probability=0.30),
    ],
)

# Candidate pairs: each rule is cheap (an equality) and catches one kind of duplicate that
# auto-merge leaves behind. Counts per rule are measured in docs/matching.md.
BLOCKING_RULES = [
    block_on("first_name_canonical", "surname"),  # second email, nickname
    block_on("phone_last7"),  # phone typo, number written differently
    # Email domain typo: the same local part at a domain one or two edits away, what the email
    # comparison rewards. The equality alone also paired every `info@` or `john@` across all
    # domains: at 1M interactions 1.41M of 5.2M candidate pairs, for the same proposals.
    CustomRule(
        "l.email_user = r.email_user AND l.email_domain <> r.email_domain "
        "AND levenshtein(l.email_domain, r.email_domain) <= 2",
        "duckdb",
    ),
    block_on("surname", "company"),  # first-name typo at the same company
    block_on("first_name", "company"),  # surname typo at the same company
    CustomRule("l.first_name = r.surname AND l.surname = r.first_name"),  # swapped names
]
# What the rules above reach, in the comparisons' own levels (prior_fit.blocking_recall reads
# the model's m of these to say what share of true pairs blocking can find at all). A level is
# counted where a rule *may* reach it: the phone levels beside the exact one (a typo in the
# last seven digits escapes `phone_last7`) and nickname forms that are no canonical pair make
# the share a little too large, so the prior it sizes errs low, on the side it always had.
# `email_user` equality with a domain typo is the email comparison's first level exactly.
BLOCKED_LEVELS: dict[str, tuple[str, ...]] = {
    "name": (
        "Exact match on full_name",
        "nickname of the same first name, same surname",
        "first name and surname swapped",
    ),
    "phone": (
        "same phone, first names differ: a shared phone",
        "Exact match on phone",
        "Array intersection size >= 1",
        "Damerau-Levenshtein distance of phone <= 1",
        "Exact match on phone_last7",
    ),
    "email": ("same local part, domain one or two characters apart",),
}
# Name levels that agree on one part (a first name or a surname): the company rules and the
# matched properties' rules reach them together with an exact company or property.
NAME_PART_LEVELS = (
    "both names similar (Jaro-Winkler >= 0.9)",
    "same first name, one side gave no surname",
    "same surname only",
)
# The record column whose presence decides each comparison's null level.
PRESENCE_COLUMN = {"name": "first_name", "phone": "phone", "email": "email", "company": "company"}

# Not a rule: a first name with no surname (a WhatsApp profile name) against that first name with
# any surname. Measured at 20,000 people (docs/matching.md): 201,000 more candidate pairs (7x the
# rules above), 240 more true pairs reached, +0.0003 recall at 0.8 — a first name alone is too
# weak to propose on, and the rule grows with (contacts / distinct first names)².

# What each rule in BLOCKING_RULES joins on, to count its candidate pairs before running it:
# equal columns, or (left column, right column) pairs for the swapped-name rule. (A rule's
# further conditions only filter its join, so the count is the most it can make.)
BLOCKING_KEYS: list[tuple[tuple[str, str], ...]] = [
    (("first_name_canonical", "first_name_canonical"), ("surname", "surname")),
    (("phone_last7", "phone_last7"),),
    (("email_user", "email_user"),),
    (("surname", "surname"), ("company", "company")),
    (("first_name", "first_name"), ("company", "company")),
    (("first_name", "surname"), ("surname", "first_name")),
]

# EM sessions block on these prediction rules (by position in BLOCKING_RULES / BLOCKING_KEYS),
# each session training the comparisons its rule does not fix. The email session blocks on the
# local part alone: EM needs the non-matches of a block as well as its matches, and the
# domain-typo filter would leave it almost only matches.
#
# Splink leaves untrained the comparisons whose columns a session's rule reads, because the
# session's pairs are chosen by those columns. Local parts are mostly built from names
# (`john.smith@`), so pairs chosen by local part are chosen by name as well: one person's two
# records there nearly always spell the name alike, and that session alone moved the nickname
# level's m from 0.05 (the phone session's estimate) to 0.026 at 20,000 generated people. The
# rule therefore names `first_name` in a condition every pair meets (a coalesce ending in '' is
# never NULL): the same pairs, and the name comparison is trained by the phone session only.
EMAIL_TRAINING_BLOCK = CustomRule(
    "l.email_user = r.email_user AND coalesce(l.first_name, r.first_name, '') IS NOT NULL"
)
TRAINING_RULES: tuple[int, ...] = (0, 1, 2)
TRAINING_BLOCKS = [BLOCKING_RULES[0], BLOCKING_RULES[1], EMAIL_TRAINING_BLOCK]

# Column sets whose exact agreement almost surely means one person: they size the prior.
DETERMINISTIC_COLUMNS: list[tuple[str, ...]] = [
    ("full_name", "company"),
    ("full_name", "phone_last7"),
    # The same custom attributes, two values or more (a city alone is not enough): a workspace
    # with no companies or phones (Splink's fake_1000: name, email, dob, city) otherwise counts
    # no pair and gets the floor prior, ~360x too low there.
    ("full_name", "attr_values"),
]


# Typed custom properties that the workspace marks `match = true` (dedup.properties) become
# record columns `p_<type>_<key>` with a comparison of their own (a date one digit off is a typo,
# not a conflict) and blocking rules that pair them with a first name or a surname. The type is
# in the column name, so records and a saved model both say which comparisons they need.
PROPERTY_COLUMN = re.compile(r"^p_(date|string|exact)_[a-z0-9_]+$")


def property_column(key: str, kind: str) -> str:
    """The record column of a matched property: `date`, `string`, or `exact` (enum, email,
    phone), and its key lower-cased with every other character an underscore."""
    return f"p_{kind}_{re.sub(r'[^a-z0-9]+', '_', key.lower()).strip('_') or 'x'}"


def property_columns(columns: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The matched-property columns among `columns` (records or a model's comparisons), sorted."""
    return tuple(sorted(c for c in columns if PROPERTY_COLUMN.match(c)))


def property_comparison(column: str) -> cl.CustomComparison:
    kind = column.split("_", 2)[1]
    if kind == "date":
        levels = [
            cll.ExactMatchLevel(column, term_frequency_adjustments=True).configure(
                m_probability=0.80
            ),
            # One digit typed wrong or two swapped (1987-03-12 / 1987-03-21): a typo of the
            # same date far more often than another person's.
            cll.DamerauLevenshteinLevel(column, 1).configure(m_probability=0.12),
            # A day or month typed wrong (1982-06-22 / 1982-09-12): one person far more often
            # than two, though weaker evidence than one digit off.
            cll.AbsoluteDateDifferenceLevel(
                column, input_is_string=True, threshold=1, metric="year"
            ).configure(m_probability=0.06),
        ]
    elif kind == "string":
        levels = [
            cll.ExactMatchLevel(column, term_frequency_adjustments=True).configure(
                m_probability=0.80
            ),
            cll.JaroWinklerLevel(column, 0.9).configure(m_probability=0.12),
            cll.JaroWinklerLevel(column, 0.8).configure(m_probability=0.04),
        ]
    else:
        levels = [
            cll.ExactMatchLevel(column, term_frequency_adjustments=True).configure(
                m_probability=0.90
            )
        ]
    return cl.CustomComparison(
        output_column_name=column,
        comparison_description=f"Custom property {column} ({kind})",
        comparison_levels=[
            cll.NullLevel(column),
            *levels,
            cll.ElseLevel().configure(m_probability={"date": 0.02, "string": 0.04}.get(kind, 0.10)),
        ],
    )


def blocking_rules(properties: tuple[str, ...] = ()) -> list:
    """BLOCKING_RULES, then (first name, property) and (surname, property) for each matched
    property: a typo in one name part still meets its duplicate through the other."""
    return BLOCKING_RULES + [
        block_on(part, column) for column in properties for part in ("first_name", "surname")
    ]


def blocking_keys(properties: tuple[str, ...] = ()) -> list[tuple[tuple[str, str], ...]]:
    """What each rule of `blocking_rules(properties)` joins on, in the same order."""
    return BLOCKING_KEYS + [
        ((part, part), (column, column))
        for column in properties
        for part in ("first_name", "surname")
    ]


def deterministic_columns(properties: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """DETERMINISTIC_COLUMNS and (full name, property) for each matched property."""
    return DETERMINISTIC_COLUMNS + [("full_name", column) for column in properties]


def contact_settings(prior: float = 1e-4, properties: tuple[str, ...] = ()) -> SettingsCreator:
    """Settings for records with the matched-property columns `properties` (none by default)."""
    return SettingsCreator(
        probability_two_random_records_match=prior,
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            NAME,
            EMAIL,
            PHONE,
            COMPANY,
            EMPLOYER,
            *(property_comparison(c) for c in properties),
            ATTRIBUTES,
            TAGS,
        ],
        blocking_rules_to_generate_predictions=blocking_rules(properties),
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=True,
    )
