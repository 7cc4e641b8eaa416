"""The layout of the export folder: each day split into one to three files in rotating
formats (some gzip), some interactions re-delivered in a later file (40% of them updated), and
the malformed records planted in the last days (``bad_records``).

A bad record ("ghost") belongs to someone who is in no truth row, so it must never be accepted.
Nothing is written here; ``Files`` renders what this step decides.
"""

from __future__ import annotations

import bisect

import polars as pl

from contacts.demo.identifiers import num_id
from contacts.demo.rows import ROW_SCHEMA, TZ_Z, Rows
from contacts.demo.vocabulary import json_str


class Layout(Rows):
    """The layout step: ``files``, ``copies`` (re-deliveries) and ``ghosts`` (bad records)."""

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
            "interaction_id": num_id("int_", self.n + 1_000_000_000 + len(self.ghosts), self.k_int),
            "channel": "widget",
            "t": self.day0 + f["day"] * 86400 + int(self.r() * 79200),
            "tz": TZ_Z,
            "t_raw": None,
            "conversation_id": num_id("conv_", len(self.c_ch) + 1 + len(self.ghosts), self.k_conv),
            "session_id": num_id("sess_", self._sid(), self.k_sess),
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
            rec["attributes"] = json_str(bad) if f["fmt"] == "jsonl" else bad
        return rec

    def _extra_tables(self) -> None:
        """The re-delivered copies (some updated) and the bad rows, in the row layout."""
        cols = list(ROW_SCHEMA)
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
                {k: [g[k] for g in self.ghosts] for k in cols}, schema=ROW_SCHEMA
            )
