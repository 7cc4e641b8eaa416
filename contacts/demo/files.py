"""The file writers: every export file in its format, the planted bad file, and the truth.

JSONL (null fields omitted, or written as ``null`` in "dense" files; lists as arrays,
``attributes`` as an object, ``occurred_at`` sometimes epoch seconds) is rendered in bulk with
Polars string expressions; CSV (lists ``;``-joined, ``attributes`` a JSON string, empty cell =
null) and Parquet (lists as ``list<string>``, ``attributes`` a JSON string, ``occurred_at`` a
``timestamp[us, UTC]`` in every other Parquet file and ISO text in the rest). ``occurred_at``
text is ISO 8601 with ``Z`` or the person's offset. Writer settings are fixed and gzip uses
``mtime=0``, so the bytes depend on the data only.
"""

from __future__ import annotations

import gzip
import io
import shutil
from datetime import date
from pathlib import Path

import polars as pl

from contacts.demo.config import CANONICAL_COLUMNS
from contacts.demo.layout import Layout
from contacts.demo.rows import ROW_SCHEMA, TZ_EPOCH, TZ_Z


class Files(Layout):
    """The writing step: ``askvault/<day>/export-NNN.<fmt>[.gz]`` and ``_truth/``."""

    def _time_tables(self) -> None:
        days, sd = self.cfg.days, self.cfg.start_day
        self.t_base = self.day0 - 3 * 86400
        self.s_dates = pl.Series(
            [date.fromordinal(sd.toordinal() + k - 3).isoformat() + "T" for k in range(days + 7)],
            dtype=pl.String,
        )
        self.s_hms = pl.Series(
            [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)],
            dtype=pl.String,
        )
        self.s_sfx = pl.Series(
            [
                f"{'+' if o >= 0 else '-'}{abs(o) // 60:02d}:{abs(o) % 60:02d}"
                for o in range(-1000, 1001)
            ]
            + ["Z"],
            dtype=pl.String,
        )

    def _iso(self) -> pl.Expr:
        c = pl.col
        is_off = c("tz") < TZ_Z
        rel = c("t") + pl.when(is_off).then(c("tz") * 60).otherwise(0) - self.t_base
        iso = pl.concat_str(
            [
                pl.lit(self.s_dates).gather(rel // 86400),
                pl.lit(self.s_hms).gather(rel % 86400),
                pl.lit(self.s_sfx).gather(pl.when(is_off).then(c("tz") + 1000).otherwise(2001)),
            ]
        )
        return pl.coalesce(c("t_raw"), iso)

    def _jsonl(self, sub: pl.DataFrame, dense: bool) -> bytes:
        if sub.height == 0:
            return b""
        c, lit, cat = pl.col, pl.lit, pl.concat_str  # concat_str: null in, null out
        frags = []
        for name in ROW_SCHEMA:
            if name in ("tz", "t_raw"):
                continue
            if name == "t":
                fr = (
                    pl.when((c("tz") == TZ_EPOCH) & c("t_raw").is_null())
                    .then(cat([lit('"occurred_at":'), c("t").cast(pl.String)]))
                    .otherwise(cat([lit('"occurred_at":"'), self._iso(), lit('"')]))
                )
            elif name in ("contact_tags", "conversation_tags"):
                fr = cat(
                    [
                        lit(f'"{name}":["'),
                        c(name).str.replace_all(";", '","', literal=True),
                        lit('"]'),
                    ]
                )
            elif name == "attributes":
                fr = cat([lit('"attributes":'), c(name)])
            else:
                fr = cat([lit(f'"{name}":"'), c(name), lit('"')])
            if dense and name != "t":
                fr = fr.fill_null(f'"{name}":null')
            frags.append(fr)
        line = cat([lit("{"), cat(frags, separator=",", ignore_nulls=True), lit("}")])
        buf = io.BytesIO()
        sub.select(line.alias("line")).write_csv(buf, include_header=False, quote_style="never")
        return buf.getvalue()

    def _csv(self, sub: pl.DataFrame) -> bytes:
        buf = io.BytesIO()
        sub.select(
            [self._iso().alias(c) if c == "occurred_at" else pl.col(c) for c in CANONICAL_COLUMNS]
        ).write_csv(buf, quote_style="necessary")
        return buf.getvalue()

    def _parquet(self, sub: pl.DataFrame, native_ts: bool) -> bytes:
        c = pl.col
        if native_ts:
            occ = (
                pl.from_epoch(c("t"), time_unit="s")
                .dt.replace_time_zone("UTC")
                .dt.cast_time_unit("us")
            )
        else:
            occ = self._iso()
        sel = []
        for name in CANONICAL_COLUMNS:
            if name == "occurred_at":
                sel.append(occ.alias(name))
            elif name in ("contact_tags", "conversation_tags"):
                sel.append(c(name).str.split(";"))
            else:
                sel.append(c(name))
        buf = io.BytesIO()
        write_parquet(sub.select(sel), buf)
        return buf.getvalue()

    def _file_rows(self, f: dict) -> tuple[pl.DataFrame, list[tuple]]:
        """A file's rows in order: its slice of the day, re-deliveries, bad rows where drawn."""
        n, ghost0 = self.n, self.n + len(self.copies)
        cols = list(ROW_SCHEMA)
        parts = [self.good[self.order.slice(f["lo"], f["hi"] - f["lo"])].select(cols)]
        if f["extra"]:
            parts.append(self.copy_tab[pl.Series([j - n for j in f["extra"]], dtype=pl.Int64)])
        ghosts = [j for _, j in f["inserts"]] + ([f["tail"]] if f["tail"] is not None else [])
        if ghosts:
            parts.append(self.ghost_tab[pl.Series([j - ghost0 for j in ghosts], dtype=pl.Int64)])
        sub = pl.concat(parts, how="vertical") if len(parts) > 1 else parts[0]
        placed: list[tuple] = []
        if ghosts:  # put each bad row where it was drawn (the truncated one last)
            size = sub.height - len(ghosts)
            rows = list(range(size))
            for k, (p_, _) in enumerate(f["inserts"]):
                rows.insert(p_, size + k)
            if f["tail"] is not None:
                rows.append(sub.height - 1)
            for k, j in enumerate(rows):
                if j >= size:
                    g = self.ghosts[ghosts[j - size] - ghost0]
                    placed.append(
                        (g["kind"], k + 2 if f["fmt"] == "csv" else k + 1, g["interaction_id"])
                    )
            sub = sub[pl.Series(rows, dtype=pl.Int64)]
        return sub, placed

    def _write(self, out: Path) -> tuple[Path, int]:
        cfg = self.cfg
        av, tr = out / "askvault", out / "_truth"
        for d in (av, tr):
            if d.exists():
                shutil.rmtree(d)
        tr.mkdir(parents=True)
        self._time_tables()
        day_dirs = []
        for d in range(cfg.days):
            dd = av / date.fromordinal(cfg.start_day.toordinal() + d).isoformat()
            dd.mkdir(parents=True)
            day_dirs.append(dd)
        bad_out: list[tuple] = []
        for f in self.files:
            path = day_dirs[f["day"]] / f["name"]
            rel = path.relative_to(out).as_posix()
            sub, placed = self._file_rows(f)
            bad_out.extend((kind, rel, row, iid) for kind, row, iid in placed)
            if f["fmt"] == "jsonl":
                data = self._jsonl(sub, f["dense"])
                if f["tail"] is not None:  # cut the last line in the middle, no newline
                    cut = data.rfind(b"\n", 0, len(data) - 1) + 1
                    data = data[: cut + (len(data) - cut) // 2]
            elif f["fmt"] == "csv":
                data = self._csv(sub)
            else:
                data = self._parquet(sub, f["native_ts"])
            if f["gz"]:
                data = gzip.compress(data, compresslevel=6, mtime=0)
            path.write_bytes(data)
        if cfg.bad_records:
            path = day_dirs[-1] / "broken.parquet"
            path.write_bytes(
                b"this is not a parquet file, it is a CSV someone renamed\n"
                b"interaction_id,channel,occurred_at\nint_broken,widget,2026-11-01T00:00:00Z\n"
            )
            bad_out.append(("not_parquet", path.relative_to(out).as_posix(), None, None))
        write_parquet(
            pl.DataFrame(
                {
                    "kind": [b[0] for b in bad_out],
                    "file": [b[1] for b in bad_out],
                    "row": [b[2] for b in bad_out],
                    "interaction_id": [b[3] for b in bad_out],
                },
                schema={
                    "kind": pl.String,
                    "file": pl.String,
                    "row": pl.Int64,
                    "interaction_id": pl.String,
                },
            ),
            tr / "bad_records.parquet",
        )
        truth = tr / "truth.parquet"
        self._write_truth(truth)
        return truth, len(bad_out)

    def _write_truth(self, path: Path) -> None:
        persons, files, c = self.persons, self.files, pl.col
        deliveries: dict[int, int] = {}
        last: dict[int, int] = {}
        updated: set[int] = set()
        for i, target, upd in self.copies:
            deliveries[i] = deliveries.get(i, 1) + 1
            d = files[target]["day"]
            last[i] = max(last.get(i, d), d)
            if upd:
                updated.add(i)
        keys = sorted(deliveries)
        redel = pl.DataFrame(
            {
                "row": pl.Series(keys, dtype=pl.Int64),
                "deliveries": pl.Series([deliveries[i] for i in keys], dtype=pl.Int32),
                "last_day": pl.Series([last[i] for i in keys], dtype=pl.Int32),
                "updated": pl.Series([i in updated for i in keys], dtype=pl.Boolean),
            }
        )
        epoch_days = self.cfg.start_day.toordinal() - date(1970, 1, 1).toordinal()
        per = c("person")
        pcase = pl.lit(pl.Series([p.case for p in persons], dtype=pl.String)).gather(per)
        truth = (
            self.good.with_columns(row=pl.int_range(pl.len(), dtype=pl.Int64))
            .join(redel, on="row", how="left", maintain_order="left")
            .select(
                "interaction_id",
                person_id=pl.lit(pl.Series([p.pid for p in persons], dtype=pl.String)).gather(per),
                case=pl.when(c("deliveries").is_not_null() & (pcase == "plain"))
                .then(pl.lit("redelivered"))
                .otherwise(pcase),
                person_case=pcase,
                case_group=pl.lit(pl.Series([p.group for p in persons], dtype=pl.String)).gather(
                    per
                ),
                related_person_id=c("victim"),
                channel=c("channel").str.to_lowercase(),
                verified=c("user_id").is_not_null() & ~c("forged"),
                forged=c("forged"),
                anonymous=c("user_id").is_null() & c("email").is_null() & c("phone").is_null(),
                typo=c("typo"),
                redelivered=c("deliveries").is_not_null(),
                updated=c("updated").fill_null(False),
                deliveries=c("deliveries").fill_null(1),
                first_export_day=(c("day") + epoch_days).cast(pl.Date),
                last_export_day=(pl.coalesce(c("last_day"), c("day")) + epoch_days).cast(pl.Date),
            )
        )
        write_parquet(truth, path)


def write_parquet(df: pl.DataFrame, where) -> None:
    """Parquet with plain ``string`` / ``list<string>`` columns (Polars would declare the large
    variants) and fixed writer settings, so the bytes only depend on the data."""
    import pyarrow as pa  # imported here: only the writer needs it
    import pyarrow.parquet as pq

    def small(t):
        if pa.types.is_large_string(t):
            return pa.string()
        if pa.types.is_large_list(t):
            return pa.list_(small(t.value_type))
        return t

    table = df.to_arrow()
    table = table.cast(pa.schema([pa.field(f.name, small(f.type)) for f in table.schema]))
    pq.write_table(
        table,
        where,
        compression="snappy",
        use_dictionary=True,
        write_statistics=True,
        version="2.6",
        row_group_size=1 << 20,
    )
