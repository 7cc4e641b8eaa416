"""The population and its planted duplicate cases: the traps a deterministic merger must not
fall into, and the true duplicates it should find.

Households and switchboards share a phone between different people; throwaway addresses and
kiosk sessions are shared by strangers; a forger sends a real verified person's user id with a
hash that does not verify; second emails, typos (name, email or phone) and nicknames are one
person under two spellings. Each ``_case_*`` returns the members of one planted group; at least
half of the population stays plain.
"""

from __future__ import annotations

from contacts.demo.identifiers import user_hash
from contacts.demo.people import People
from contacts.demo.state import Person, Persona
from contacts.demo.vocabulary import FIRST_ALL, LAST, NICK, NICK_FORMAL, THROWAWAY

# a small population receives one group of each case first, in this order
_CASE_ORDER = (
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


class Cases(People):
    """The population step: planted groups, plain people, forged ids; shuffled and numbered."""

    def _make_persons(self) -> None:
        self._make_companies()
        special, forgers = self._make_special(self._plan_cases())
        plain = []
        for _ in range(self.cfg.persons - len(special)):
            p = self._base_person("plain")
            p.personas = [self._persona(p)]
            plain.append(p)
        self._forge(forgers, plain, special)
        people = special + plain
        self.rng.shuffle(people)
        width = max(6, len(str(len(people))))
        for i, p in enumerate(people):
            p.idx = i
            p.pid = f"p{i + 1:0{width}d}"
        self.persons = people

    def _plan_cases(self) -> list[tuple[str, int, int]]:
        """(case, group number, group size) of every planted group."""
        rr = self.rng.randrange
        P = self.cfg.persons
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
            for case in _CASE_ORDER:
                if k < len(sizes[case]) and sizes[case][k] <= budget:
                    planned.append((case, k, sizes[case][k]))
                    budget -= sizes[case][k]
        return planned

    def _make_special(self, planned: list[tuple[str, int, int]]) -> tuple[list, list]:
        """The members of every planted group, and the forgers among them."""
        special: list[Person] = []
        forgers: list[Person] = []
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
        return special, forgers

    def _forge(self, forgers: list[Person], plain: list[Person], special: list[Person]) -> None:
        """Each forger's planted interaction: a real verified person's user id with a hash that
        does not verify, plus the forger's own email (an id nobody owns if nobody is verified)."""
        rr = self.rng.randrange
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

    def _bad_hash(self, uid: str) -> str:
        x = self.r()
        if x < 0.35:
            return user_hash(b"not-the-workspace-secret", uid)  # signed with a wrong secret
        if x < 0.6:
            return f"{self.rng.getrandbits(256):064x}"
        if x < 0.8:
            return user_hash(self.secret, uid)[:32]  # truncated real hash
        return user_hash(self.secret, uid + "0")  # the valid hash of another id

    # each _case_* returns the members of one planted group
    def _case_household(self, size: int, k: int) -> list[Person]:
        last = LAST[int(self.r() * len(LAST))]
        home = self._phone("US")
        firsts: list[str] = []
        while len(firsts) < size:
            f = FIRST_ALL[int(self.r() * len(FIRST_ALL))]
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

    def _case_switchboard(self, size: int, k: int) -> list[Person]:
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

    def _case_throwaway_email(self, size: int, k: int) -> list[Person]:
        fake = THROWAWAY[k % len(THROWAWAY)]
        local, _, dom = fake.partition("@")
        out = []
        for _ in range(size):
            p = self._base_person("throwaway_email", verified=False)
            ph = self._phone(p.region)
            throw = Persona(
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

    def _case_kiosk(self, size: int, k: int) -> list[Person]:
        kiosk = self._sid()
        out = []
        for _ in range(size):
            p = self._base_person("kiosk")
            p.personas = [self._persona(p, email=self._email(p.first, p.last, None))]
            p.forced.append((0, "widget", {"need_email": True, "session": kiosk, "name": True}))
            out.append(p)
        return out

    def _case_forged(self, size: int, k: int) -> list[Person]:
        p = self._base_person("forged", verified=False)
        p.personas = [self._persona(p, email=self._email(p.first, p.last, None))]
        return [p]

    def _case_second_email(self, size: int, k: int) -> list[Person]:
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

    def _case_second_email_nokey(self, size: int, k: int) -> list[Person]:
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

    def _case_typo(self, size: int, k: int) -> list[Person]:
        p = self._base_person("typo", company=int(self.r() * len(self.companies)))
        ph = self._phone(p.region)
        p.personas = [self._persona(p, email=self._email(p.first, p.last, None), phone=ph)]
        return [p]

    def _plant_typo(self, p: Person, kind: str) -> None:
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

    def _case_nickname(self, size: int, k: int) -> list[Person]:
        formal = NICK_FORMAL[int(self.r() * len(NICK_FORMAL))]
        nicks = NICK[formal]
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
