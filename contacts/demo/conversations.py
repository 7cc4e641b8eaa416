"""Conversations: how many each person has, on which channel, when, with which persona and
session, and the planted ("forced") single interactions whose values are decided here.

Kept in Python, one list entry per conversation (``State.c_*``); the interactions inside the
ordinary conversations are expanded and decided in bulk by ``Rows``. ``_email_value`` and
``_name_value`` are the spelling rules ``rows._spell_email`` / ``rows._spell_name`` mirror.
"""

from __future__ import annotations

import math
import unicodedata

from contacts.demo.cases import Cases
from contacts.demo.identifiers import fmt_phone
from contacts.demo.state import Person, Persona
from contacts.demo.vocabulary import CH, CONV_SIZES, CONV_TAGS, PLUS_TAGS


class Conversations(Cases):
    """The conversation step: one entry per conversation, planted interactions decided."""

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
        conv_tags, ntags, ch_code, sizes_of = CONV_TAGS, len(CONV_TAGS), CH, CONV_SIZES
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

    def _forced(self, p: Person, pa_: Persona, ch: str, kw: dict) -> None:
        """A planted single-interaction conversation; its identity values are decided here."""
        r = self.r
        d = int(r() * self.days)
        t0 = self.day0 + d * 86400 + int(r() * 79200)
        if r() < 0.05:
            t0 -= 86400
        ci = len(self.c_ch)
        self.c_person.append(p.idx)
        self.c_persona.append(pa_.gid)
        self.c_ch.append(CH[ch])
        self.c_flags.append(4 if ch != "api" or r() < 0.7 else 0)
        if "session" in kw:
            self.c_sess.append(kw["session"])
        elif ch == "widget":
            self.c_sess.append(pa_.sessions[int(r() * len(pa_.sessions))])
        else:
            self.c_sess.append(None)
        self.c_tags.append(CONV_TAGS[int(r() * len(CONV_TAGS))] if r() < 0.5 else None)
        self.c_day.append(d)
        self.c_t0.append(t0)
        self.c_size.append(1)
        self.explicit[ci] = self._forced_values(p, pa_, ch, kw)
        if "forged" in kw:
            self.forged_conv[ci] = kw["forged"].pid if kw["forged"] is not None else None
        if "typo" in kw:
            self.typo_conv[ci] = kw["typo"]

    def _forced_values(self, p: Person, pa_: Persona, ch: str, kw: dict) -> tuple:
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
            ph_val = f"{cc}{nsn}" if ch == "whatsapp" else fmt_phone(cc, nsn, int(r() * 5))
        if name:
            n_val = f"{kw['first']} {p.last}" if "first" in kw else self._name_value(pa_, ch, r())
        if comp:
            c_val = self._company_name(p.company)
        return (uid, uhash, plan, e_val, ph_val, n_val, c_val)

    def _email_value(self, pa_: Persona, x: float) -> str:
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
        return f"{local}+{PLUS_TAGS[int(r() * len(PLUS_TAGS))]}@{domain}"

    def _name_value(self, pa_: Persona, ch: str, x: float) -> str:
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
