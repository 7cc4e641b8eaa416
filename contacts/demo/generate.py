"""The generator's entry points: ``generate_exports`` runs every stage in order over one state
(``Generator``), then the native exports when asked; ``generate_benchmark_exports`` sizes a
config for a benchmark.
"""

from __future__ import annotations

import gc
from pathlib import Path

from contacts.demo.config import GeneratedExports, GeneratorConfig
from contacts.demo.files import Files
from contacts.demo.native import write_native


class Generator(Files):
    """Every stage: people, cases, conversations, rows, layout, files (see ``state.py``)."""


_DEFAULT = GeneratorConfig()  # frozen: one shared default is safe


def generate_exports(out_dir: Path, config: GeneratorConfig = _DEFAULT) -> GeneratedExports:
    """Write ``out_dir/askvault/<day>/<files>`` and ``out_dir/_truth/{truth,bad_records}.parquet``.

    The same ``config`` gives byte-identical files. ``out_dir/askvault`` and ``out_dir/_truth``
    are replaced; nothing else under ``out_dir`` is touched.
    """
    out = Path(out_dir)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of small objects and no cycles: the collector only costs time here
    try:
        g = Generator(config)
        g._make_persons()
        g._make_conversations()
        g._rows()
        g._layout()
        g._extra_tables()
        truth, n_bad = g._write(out)
        if config.native:
            n_bad += write_native(g, out)
    finally:
        if gc_was_enabled:
            gc.enable()
    return GeneratedExports(
        root=out, truth_path=truth, interactions=g.n, persons=len(g.persons), bad_records=n_bad
    )


def generate_benchmark_exports(
    out_dir: Path, interactions: int, seed: int = 7, days: int = 10
) -> GeneratedExports:
    """About ``interactions`` distinct interactions (persons = interactions / 4): all three
    formats, bad records on, no gzip."""
    cfg = GeneratorConfig(
        persons=max(1, round(interactions / 4.0)),
        days=days,
        seed=seed,
        formats=("jsonl", "csv", "parquet"),
        interactions_per_person=4.0,
        bad_records=True,
        gzip_some=False,
    )
    return generate_exports(out_dir, cfg)
