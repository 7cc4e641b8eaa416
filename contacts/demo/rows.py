"""Rows, in bulk: the conversations expanded into interactions and every field decided with
Polars expressions (1M interactions in seconds), then the planted interactions patched in.

The rules are those of ``Conversations._forced_values`` / ``_email_value`` / ``_name_value``,
vectorized: coin flips are seeded uniform bytes (``u_*``, 0..255: ``u < 218`` is p = 0.85), one
Polars seeded sample per column, its seed drawn from the generator's stream. The result is
``State.good``: one row per good interaction in ``ROW_SCHEMA`` plus ``day``, ``person`` and the
truth flags (``forged``, ``victim``, ``typo``).
"""

from __future__ import annotations

import itertools
import unicodedata

import polars as pl

from contacts.demo.conversations import Conversations
from contacts.demo.identifiers import fmt_phone, id_expr
from contacts.demo.state import Persona
from contacts.demo.vocabulary import CH, CHANNELS, CHANNELS_CAPS, LEGAL, PLUS_TAGS

# the canonical row layout while generating: tags as ";"-joined text, time as epoch + zone code
ROW_SCHEMA = {
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
TZ_Z = 10000  # tz code: render with "Z"
TZ_EPOCH = 10001  # tz code: epoch seconds in JSONL ("Z" elsewhere)

# the coin-flip byte columns (u_<name>), drawn in this order
_BYTES = (
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

# channel tests over the row frame
_ch = pl.col("ch")
_IS_W, _IS_WA, _IS_SL = _ch == CH["widget"], _ch == CH["whatsapp"], _ch == CH["slack"]
_IS_EM, _IS_SMS, _IS_API = _ch == CH["email"], _ch == CH["sms"], _ch == CH["api"]
# a widget interaction that is not anonymous
_LIVE_W = _IS_W & ~(pl.col("anon") & (pl.col("k") == 0))


class Rows(Conversations):
    """The bulk step: ``State.good``, one row per distinct good interaction."""

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
        rows, ids = self._expand()
        rows = self._switches(self._with_facets(rows))
        rows = self._generic_values(rows)
        email, name = self._spellings(rows)
        self.good = self._good_frame(rows, ids, self._patch_planted(rows, email, name))

    def _expand(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """One row per interaction (its conversation's columns, ``k`` = position in it) with its
        coin-flip bytes; and each conversation's conversation and session id."""
        c = pl.col
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
            cid=id_expr(
                "conv_",
                pl.when(c("flags") // 4 % 2 == 1).then(pl.int_range(pl.len(), dtype=pl.Int64) + 1),
                self.k_conv,
            ),
            sid=id_expr("sess_", c("sess"), self.k_sess),
        )
        rows = (
            conv.drop("flags", "sess")
            .with_row_index("ci")
            .with_columns(k=pl.int_ranges(0, c("size"), dtype=pl.Int32))
            .explode("k")
        )
        n = self.n = rows.height
        return rows.with_columns([self._u8(n).alias("u_" + k) for k in _BYTES]), ids

    def _with_facets(self, rows: pl.DataFrame) -> pl.DataFrame:
        """The persona's address and phone presence, whether a user id may show, the company."""
        persons, personas = self.persons, self.personas_all
        c, lit = pl.col, pl.lit
        s_addr = pl.Series(
            [pa_.email[0] if pa_.email else None for pa_ in personas], dtype=pl.String
        )
        has_phone = pl.Series([pa_.phone is not None for pa_ in personas], dtype=pl.Boolean)
        s_uid = pl.Series([p.uid for p in persons], dtype=pl.String)
        per, pna = c("person"), c("persona")
        return rows.with_columns(
            addr=lit(s_addr).gather(pna),
            has_phone=lit(has_phone).gather(pna),
            can_uid=(
                lit(pl.Series([pa_.uid_ok for pa_ in personas], dtype=pl.Boolean)).gather(pna)
                & lit(s_uid).gather(per).is_not_null()
            ),
            p_comp=lit(pl.Series([p.company for p in persons], dtype=pl.Int64)).gather(per),
            row=pl.int_range(pl.len(), dtype=pl.Int64),
        )

    def _switches(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Which identity fields each row shows (``*_on``), and ``ecs``: the running sum of the
        gaps between a conversation's interactions."""
        c = pl.col
        is_w, is_wa, is_sl, is_em, is_sms, is_api = _IS_W, _IS_WA, _IS_SL, _IS_EM, _IS_SMS, _IS_API
        live_w = _LIVE_W
        has_email, has_comp = c("addr").is_not_null(), c("p_comp") >= 0
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
        return rows

    def _generic_values(self, rows: pl.DataFrame) -> pl.DataFrame:
        """The values the switched-on fields show (``g_*``), in their most common spelling."""
        persons, personas = self.persons, self.personas_all
        c, lit = pl.col, pl.lit
        is_wa, per, pna, nv = _IS_WA, c("person"), c("persona"), c("u_nvar")
        ps = c("u_pstyle")
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
        s_uid = pl.Series([p.uid for p in persons], dtype=pl.String)
        s_first = pl.Series([pa_.first for pa_ in personas], dtype=pl.String)
        s_full = pl.Series([pa_.full for pa_ in personas], dtype=pl.String)
        s_phone, s_forms = self._phone_spellings(), self._company_forms()
        uid_on = c("uid_on")
        return rows.with_columns(
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

    def _phone_spellings(self) -> pl.Series:
        """Every persona's phone spellings, at index style * personas + persona; styles 0-4 as
        typed (``fmt_phone``), 5 the WhatsApp id."""
        personas = self.personas_all
        np_ = len(personas)
        flat: list[str | None] = [None] * (6 * np_)
        for i, pa_ in enumerate(personas):
            if pa_.phone is None:
                continue
            cc, nsn = pa_.phone
            if cc == 1:  # fmt_phone, inlined for the common case
                a, b, d = nsn[:3], nsn[3:6], nsn[6:]
                flat[i] = f"({a}) {b}-{d}"
                flat[np_ + i] = f"{a}.{b}.{d}"
                flat[2 * np_ + i] = f"+1 {a} {b} {d}"
                flat[3 * np_ + i] = "+1" + nsn
                flat[4 * np_ + i] = f"{a}-{b}-{d}"
            else:
                grouped, plus = fmt_phone(cc, nsn, 0), f"+{cc}{nsn}"
                flat[i] = flat[2 * np_ + i] = flat[4 * np_ + i] = grouped
                flat[np_ + i] = flat[3 * np_ + i] = plus
            flat[5 * np_ + i] = f"{cc}{nsn}"
        return pl.Series(flat, dtype=pl.String)

    def _company_forms(self) -> pl.Series:
        """Six spellings of every company's name (legal form, case), at company * 6 + form."""
        forms = []
        for base, _, kind in self.companies:
            fs = LEGAL[kind]
            for j in range(6):
                forms.append(
                    fs[j % len(fs)]
                    .replace("{B}", base)
                    .replace("{U}", base.upper())
                    .replace("{l}", base.lower())
                )
        return pl.Series(forms, dtype=pl.String)

    def _spellings(self, rows: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
        """The email and name columns with their spelling variants: only ~1 row in 4 gets one,
        so they are made in Python."""
        personas, c, ch, nv = self.personas_all, pl.col, _ch, pl.col("u_nvar")
        is_wa = _IS_WA
        display_ch = CH["email"]
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
        return email, name

    def _patch_planted(
        self, rows: pl.DataFrame, email: pl.Series, name: pl.Series
    ) -> dict[str, pl.Series]:
        """The identity columns with the planted interactions' values (decided in Python)."""
        starts = [0, *itertools.accumulate(self.c_size)]
        xs = sorted(self.explicit)
        xrows = pl.Series([starts[ci] for ci in xs], dtype=pl.Int64)
        cols = {}
        for j, k in enumerate(("uid", "uhash", "plan", "email", "phone", "name", "comp")):
            base = email if k == "email" else name if k == "name" else rows.get_column("g_" + k)
            vals = pl.Series([self.explicit[ci][j] for ci in xs], dtype=pl.String)
            cols[k] = base.clone().scatter(xrows, vals) if xs else base
        return cols

    def _sparse(self, values: dict, dtype) -> pl.Series:
        """A column that is null except on the first row of the conversations in ``values``."""
        starts = [0, *itertools.accumulate(self.c_size)]
        keys = sorted(values)
        out = pl.Series([None] * self.n, dtype=dtype)
        if keys:
            out = out.scatter(
                pl.Series([starts[ci] for ci in keys], dtype=pl.Int64),
                pl.Series([values[ci] for ci in keys], dtype=dtype),
            )
        return out

    def _good_frame(
        self, rows: pl.DataFrame, ids: pl.DataFrame, cols: dict[str, pl.Series]
    ) -> pl.DataFrame:
        """The good interactions in ``ROW_SCHEMA`` plus day, person and the truth flags."""
        persons, c, lit, ch, per = self.persons, pl.col, pl.lit, _ch, pl.col("person")
        sparse = self._sparse

        def pget(values, dtype) -> pl.Expr:
            return lit(pl.Series(values, dtype=dtype)).gather(per)

        u_at = c("u_at")
        return rows.select(
            interaction_id=id_expr("int_", c("row") + 1, self.k_int),
            channel=lit(pl.Series(list(CHANNELS + CHANNELS_CAPS), dtype=pl.String)).gather(
                ch + pl.when(c("u_caps") < 5).then(6).otherwise(0)
            ),
            t=c("t0") + c("ecs") - c("ecs").gather(c("row") - c("k")),
            tz=(
                pl.when(c("u_tz") < 141)
                .then(TZ_Z)
                .when(c("u_tz") < 225)
                .then(pget([p.tz for p in persons], pl.Int64))
                .otherwise(TZ_EPOCH)
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


def _spell_email(em: tuple, ev: int, es: int, ep: int) -> str:
    """The bulk twin of ``Conversations._email_value``: a spelling chosen by bytes ev, es, ep."""
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
    return f"{local}+{PLUS_TAGS[es % len(PLUS_TAGS)]}@{domain}"


def _spell_name(pa_: Persona, nv: int) -> str:
    """The bulk twin of ``Conversations._name_value`` for nv >= 194 (the full name below that)."""
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
