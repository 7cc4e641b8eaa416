"""People and their facets: a person's names, region, time zone, company, verified user id,
tags and attributes, and the personas (faces) through which they write: email, phone, browser
sessions and the channels each persona can use.

Every draw comes from the generator's one stream; emails and phones are unique across people
(by their SPEC norm), so two people never share one by accident, only where a case plants it.
"""

from __future__ import annotations

from contacts.demo.identifiers import fast_valid, norm_email
from contacts.demo.state import Person, Persona, State
from contacts.demo.vocabulary import (
    ASCII_OF,
    CAMPAIGNS,
    CC,
    CITIES,
    COMPANY_A,
    COMPANY_B,
    CONTACT_TAGS,
    DE_PREFIXES,
    DOMAIN_TYPOS,
    FIRST_ALL,
    LANG,
    LAST,
    LEGAL,
    LEGAL_KINDS,
    PERSONAL_DOMAINS,
    PLANS,
    SEATS,
    SOURCES,
    TLDS,
    TZ,
    US_AREAS,
    json_str,
    to_ascii,
)

# the attributes' JSON text is assembled from these fragments (every value is pre-escaped)
_CITY_FRAG = {k: tuple('{"city":' + json_str(x) for x in v) for k, v in CITIES.items()}
_SOURCE_FRAG = tuple(',"signup_source":' + json_str(x) for x in SOURCES)
_LANG_FRAG = {k: ',"language":' + json_str(v) for k, v in LANG.items()}
_CAMPAIGN_FRAG = tuple(',"utm_campaign":' + json_str(x) for x in CAMPAIGNS)
_SEATS_FRAG = tuple(f',"seats":{x}' for x in SEATS)


class People(State):
    """The facet step: companies, phones, emails (and their typos), attributes, personas."""

    # ------------------------------------------------------------------------------ facets
    def _make_companies(self) -> None:
        combos = [(a, b) for a in COMPANY_A for b in COMPANY_B]
        self.rng.shuffle(combos)
        for a, b in combos[: min(len(combos), max(12, self.cfg.persons // 8))]:
            base = a + b
            kind = LEGAL_KINDS[int(self.r() * len(LEGAL_KINDS))]
            dom = to_ascii(a) + to_ascii(b) + TLDS[int(self.r() * len(TLDS))]
            self.companies.append((base, dom, kind))
            self.comp_canon.append(LEGAL[kind][0].replace("{B}", base))

    def _company_name(self, ci: int) -> str:
        if self.r() < 0.6:
            return self.comp_canon[ci]
        base, _, kind = self.companies[ci]
        forms = LEGAL[kind]
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
                key = (1, f"{US_AREAS[int(r() * len(US_AREAS))]}{x}")
            else:
                if region == "GB":
                    nsn = "7" + "45789"[int(r() * 5)] + f"{int(r() * 10**8):08d}"
                elif region == "DE":
                    nsn = DE_PREFIXES[int(r() * len(DE_PREFIXES))] + f"{int(r() * 10**8):08d}"
                elif region == "FR":
                    nsn = "6" + f"{int(r() * 10**8):08d}"
                else:
                    nsn = "6789"[int(r() * 4)] + f"{int(r() * 10**9):09d}"
                key = (CC[region], nsn)
                if not fast_valid(*key):
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
            if key not in self.used_phone and (cc == 1 or fast_valid(*key)):
                self.used_phone.add(key)
                return key

    def _email(self, first: str, last: str, domain: str | None) -> tuple[str, str, str, int]:
        r = self.r
        f = ASCII_OF.get(first) or to_ascii(first) or "x"
        l_ = ASCII_OF.get(last) or to_ascii(last) or "y"
        work = domain is not None
        if domain is None:
            domain = PERSONAL_DOMAINS[int(r() * len(PERSONAL_DOMAINS))]
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
            typos = DOMAIN_TYPOS.get(domain)
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
            norm = norm_email(addr)
            if norm not in self.used_email:
                self.used_email.add(norm)
                return addr

    @staticmethod
    def _name_typo(first: str) -> str:
        for i in range(len(first) - 2, 0, -1):  # swap two adjacent letters, late first: Jonh
            if first[i] != first[i + 1]:
                return first[:i] + first[i + 1] + first[i] + first[i + 2 :]
        return first + first[-1]

    def _attrs(self, p: Person) -> None:
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
    ) -> Person:
        r = self.r
        p = Person(case)
        p.first = first or FIRST_ALL[int(r() * len(FIRST_ALL))]
        p.last = last or LAST[int(r() * len(LAST))]
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
        tzs = TZ[region]
        p.tz = tzs[int(r() * len(tzs))]
        if company is None:
            company = int(r() * len(self.companies)) if r() < 0.65 else -1
        p.company = company
        if verified is None:
            verified = r() < 0.3
        if verified:
            p.uid = self._uid()
            p.uhash = self.sign(p.uid)
            p.plan = PLANS[int(r() * len(PLANS))]
        p.api = verified or r() < 0.1
        x = r()
        if x < 0.55:
            p.tags = None
        else:
            nt = len(CONTACT_TAGS)
            a = int(r() * nt)
            tags = [CONTACT_TAGS[a]]
            if x >= 0.85:
                b = (a + 1 + int(r() * (nt - 1))) % nt
                tags.append(CONTACT_TAGS[b])
                if x >= 0.97:
                    c = (b + 1 + int(r() * (nt - 2))) % nt
                    if c == a:
                        c = (c + 1) % nt
                    if c == b:
                        c = (c + 1) % nt
                    tags.append(CONTACT_TAGS[c])
            p.tags = ";".join(tags)
        self._attrs(p)
        return p

    def _persona(
        self,
        p: Person,
        *,
        first=None,
        email="auto",
        phone="auto",
        sessions=None,
        uid_ok=True,
        wa=None,
        slack=None,
    ) -> Persona:
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
        pa_ = Persona(
            first or p.first, p.last, email, phone, sessions or self._sessions(), uid_ok, wa, slack
        )
        self._channels(p, pa_)
        return pa_

    def _channels(self, p: Person, pa_: Persona) -> None:
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
