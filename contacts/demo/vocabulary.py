"""The generator's word lists and constants: names, nicknames, companies and their legal forms,
email domains (and their typos), tags, plans, attributes, regions (cities, languages, time zones,
phone prefixes) and channels.

Every word is checked at import to need no JSON escaping: the JSONL writer renders in bulk
without escaping. ``to_ascii`` folds a name to the ASCII letters of an email address.
"""

from __future__ import annotations

import json
import unicodedata

# ----------------------------------------------------------------------------------------------
# vocabularies
# ----------------------------------------------------------------------------------------------

FIRST = (
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
NICK = {
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
NICK_FORMAL = tuple(NICK)
FIRST_ALL = FIRST + NICK_FORMAL
LAST = (
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
COMPANY_A = (
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
COMPANY_B = (
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
LEGAL = {
    "inc": ("{B} Inc", "{B}, Inc.", "{B} Incorporated", "{B}", "{U}, INC.", "{l} inc"),
    "llc": ("{B} LLC", "{B}, L.L.C.", "{B}", "{B} llc", "{U} LLC"),
    "ltd": ("{B} Ltd", "{B} Ltd.", "{B} Limited", "{B}", "{U} LTD"),
    "gmbh": ("{B} GmbH", "{B} G.m.b.H.", "{B}", "{B} gmbh"),
    "corp": ("{B} Corp", "{B} Corp.", "{B} Corporation", "{B}", "{U} CORP"),
    "sa": ("{B} SA", "{B} S.A.", "{B}", "{U} S.A."),
    "none": ("{B}", "{U}", "{l}"),
}
LEGAL_KINDS = ("inc", "inc", "inc", "llc", "ltd", "gmbh", "corp", "sa", "none")
TLDS = (".com", ".com", ".com", ".io", ".co", ".de", ".net")
PERSONAL_DOMAINS = (
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
DOMAIN_TYPOS = {
    "gmail.com": ("gmial.com", "gmail.con", "gamil.com", "gmai.com"),
    "yahoo.com": ("yaho.com", "yahooo.com"),
    "outlook.com": ("outlok.com", "outlook.co"),
    "hotmail.com": ("hotmial.com", "hotmail.co"),
    "icloud.com": ("icloud.co", "iclod.com"),
}
THROWAWAY = ("test@test.com", "asdf@asdf.com", "no@no.com", "a@a.com", "none@example.com")
PLUS_TAGS = ("news", "support", "shop", "work", "2026", "spam", "promo", "askvault")
PLANS = ("free", "free", "paid", "paid", "growth", "enterprise", "internal")
CONTACT_TAGS = (
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
CONV_TAGS = (
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
SOURCES = ("organic", "google-ads", "referral", "partner", "webinar", "product-hunt", "linkedin")
CAMPAIGNS = ("black-friday-2026", "q4-launch", "webinar-nov", "retargeting", "newsletter-44")
SEATS = (1, 3, 5, 10, 25, 50, 200)
CITIES = {
    "US": ("New York", "San Francisco", "Boston", "Chicago", "Austin", "Seattle", "Denver"),
    "GB": ("London", "Manchester", "Edinburgh"),
    "DE": ("Berlin", "München", "Köln", "Hamburg"),
    "FR": ("Paris", "Lyon", "Marseille"),
    "IN": ("Bengaluru", "Mumbai", "Pune"),
    "XX": ("São Paulo", "Zürich", "Kraków", "Oslo", "Hà Nội", "Montréal", "Tōkyō", "Amsterdam"),
}
LANG = {"US": "en", "GB": "en", "DE": "de", "FR": "fr", "IN": "hi", "XX": "pt-BR"}
TZ = {
    "US": (-300, -300, -360, -420, -480),
    "GB": (0,),
    "DE": (60,),
    "FR": (60,),
    "IN": (330,),
    "XX": (-180, 60, 120, 420, 540, -300),
}
# US area codes whose every [2-9]xx exchange is valid in libphonenumber's metadata (checked at
# import in identifiers.py on a sample; numbers stay away from the fictional 555 and N11
# exchanges).
US_AREAS = (
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
DE_PREFIXES = (
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
CC = {"US": 1, "GB": 44, "DE": 49, "FR": 33, "IN": 91}
CHANNELS = ("widget", "whatsapp", "slack", "email", "sms", "api")
CHANNELS_CAPS = ("Widget", "WhatsApp", "Slack", "Email", "SMS", "API")
CH = {c: k for k, c in enumerate(CHANNELS)}
CONV_SIZES = {
    "widget": (1, 1, 2, 2, 2, 3, 3, 4),
    "whatsapp": (1, 1, 2, 2, 3, 4, 5),
    "email": (1, 1, 1, 2, 2, 3),
    "sms": (1, 1, 2, 2, 3),
    "slack": (1, 1, 2, 3),
    "api": (1, 1, 1, 1, 2),
}


def to_ascii(s: str) -> str:
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


ASCII_OF = {n: to_ascii(n) for n in FIRST_ALL + LAST + tuple(x for v in NICK.values() for x in v)}

json_str = json.encoder.encode_basestring  # C-accelerated; keeps non-ASCII (files are UTF-8)


def _check_vocabulary() -> None:
    # JSONL is rendered in bulk without escaping: no generated text may need it
    words = (
        FIRST_ALL
        + LAST
        + COMPANY_A
        + COMPANY_B
        + PERSONAL_DOMAINS
        + CONTACT_TAGS
        + CONV_TAGS
        + PLANS
        + THROWAWAY
        + tuple(x for v in NICK.values() for x in v)
        + tuple(x for v in LEGAL.values() for x in v)
    )
    for w in words:
        if any(c in w for c in '"\\;') or any(ord(c) < 32 for c in w):
            raise RuntimeError(f"vocabulary word needs escaping: {w!r}")


_check_vocabulary()
