"""Splink's dashboards and charts for the current proposals, as standalone HTML for admins.

- `comparison_viewer.html`: Splink's comparison viewer over the pending proposals (one section
  per combination of levels, with example pairs and their waterfall);
- `cluster_studio.html`: Splink's cluster studio over the clusters the proposals would make if
  all were accepted (largest first);
- `match_weights.html`, `m_u_parameters.html`: the model's charts.

Splink renders the dashboards from templates in its package with vega, vega-lite, vega-embed
and d3 embedded in the file, and the charts with `to_html(inline=True)` (libraries inlined
instead of loaded from a CDN); the templates' Google web-font links are removed, so the files
open without network and fetch nothing.

Cost is bounded: at most `max_pairs` proposals (a seeded random sample when there are more) are
handed to Splink, and the linker behind the dashboards sees only the records of those pairs.
No Dagster here; the database API is a parameter (`DuckDBAPI()` by default).
"""

from __future__ import annotations

import html
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from splink import DuckDBAPI, Linker
from splink.internals.pipeline import CTEPipeline

from dedup.duck import private_session
from dedup.matching.model import SPLINK_LOG_LEVEL, dialect_of, portable_settings

COMPARISON_VIEWER = "comparison_viewer.html"
CLUSTER_STUDIO = "cluster_studio.html"
MATCH_WEIGHTS = "match_weights.html"
M_U_PARAMETERS = "m_u_parameters.html"
INDEX = "index.html"


@dataclass(frozen=True)
class ReportFiles:
    folder: Path
    files: dict[str, Path]
    pairs_total: int
    pairs_shown: int


def sample_pairs(scored: pl.DataFrame, max_pairs: int, seed: int = 7) -> pl.DataFrame:
    """At most `max_pairs` of `scored` (seeded, so a rerun shows the same pairs)."""
    if scored.height <= max_pairs:
        return scored
    return scored.sample(n=max_pairs, seed=seed)


def write_reports(
    records: pl.DataFrame,
    settings: dict[str, Any],
    scored: pl.DataFrame,
    folder: Path,
    threshold: float,
    max_pairs: int = 2_000,
    clusters_shown: int = 25,
    db_api: Any | None = None,
) -> ReportFiles:
    """Write the dashboards and charts into `folder`, replacing it as a whole.

    Args:
        records: tonight's matcher records (`records.contact_records`).
        settings: the saved Splink model.
        scored: Splink's scored pairs of the current proposals, with every column Splink's
            `predict` keeps (gamma, bf, tf and the compared values on both sides).
        folder: the published reports folder; built beside it and swapped in with renames, so
            a reader never sees half of tonight's files.
        threshold: the proposal threshold (clusters join pairs at or above it).
    """
    if scored.is_empty() or "unique_id_l" not in scored.columns:
        # No proposal tonight: only the model's charts, over a token input.
        shown, subset = pl.DataFrame(), records.head(2)
    else:
        shown = sample_pairs(scored, max_pairs)
        ids = pl.concat([shown.get_column("unique_id_l"), shown.get_column("unique_id_r")])
        subset = records.filter(pl.col("unique_id").is_in(ids.unique().implode()))
    api = db_api if db_api is not None else DuckDBAPI(private_session("splink-reports"))
    # The model is fixed: only its settings (in this backend's SQL dialect) and the sampled
    # records are needed.
    settings = portable_settings(settings, dialect_of(db_api))
    linker = Linker(api.register(subset.to_arrow()), settings, log_level=SPLINK_LOG_LEVEL)

    folder.parent.mkdir(parents=True, exist_ok=True)
    for leftover in folder.parent.glob(f".{folder.name}-*"):  # from a killed run (one at a time)
        shutil.rmtree(leftover, ignore_errors=True)
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    building.chmod(0o755)  # mkdtemp makes it private; the reports are for people to open
    files: dict[str, Path] = {}
    try:
        vis = linker.visualisations
        for name, chart in (
            (MATCH_WEIGHTS, vis.match_weights_chart()),
            (M_U_PARAMETERS, vis.m_u_parameters_chart()),
        ):
            (building / name).write_text(chart.to_html(inline=True), encoding="utf-8")
            files[name] = folder / name
        if shown.height:
            predictions = _materialised_predictions(api, shown)
            vis.comparison_viewer_dashboard(
                predictions, str(building / COMPARISON_VIEWER), overwrite=True
            )
            files[COMPARISON_VIEWER] = folder / COMPARISON_VIEWER
            clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
                predictions, threshold_match_probability=threshold
            )
            vis.cluster_studio_dashboard(
                predictions,
                clusters,
                str(building / CLUSTER_STUDIO),
                sampling_method="by_cluster_size",
                sample_size=clusters_shown,
                overwrite=True,
            )
            files[CLUSTER_STUDIO] = folder / CLUSTER_STUDIO
        for name in (COMPARISON_VIEWER, CLUSTER_STUDIO):
            if (building / name).exists():
                page = building / name
                page.write_text(_offline(page.read_text(encoding="utf-8")), encoding="utf-8")
        (building / INDEX).write_text(_index(files, scored.height, shown.height), encoding="utf-8")
        files[INDEX] = folder / INDEX
        _swap_in(building, folder)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return ReportFiles(folder, files, scored.height, shown.height)


def _materialised_predictions(api: Any, pairs: pl.DataFrame) -> Any:
    """`pairs` as a table Splink made, under the name `predict` gives it: the dashboards' SQL
    reads `__splink__df_predict` and, on DuckDB, a base table's `rowid` (a registered Arrow
    view has none)."""
    raw = api.register(pairs.to_arrow(), table_name="__contacts_report_pairs")
    pipeline = CTEPipeline([raw])
    pipeline.enqueue_sql("select * from __contacts_report_pairs", "__splink__df_predict")
    return api.sql_pipeline_to_splink_dataframe(pipeline)


# Splink's dashboard templates load one web font from Google; without network the browser
# falls back to its sans-serif, and with network an admin's browser would tell Google who opens
# contact data. The font links go; every script is already inline.
_FONT_LINKS = re.compile(r"<link[^>]+(fonts\.googleapis\.com|fonts\.gstatic\.com)[^>]*>\s*")


def _offline(page: str) -> str:
    return _FONT_LINKS.sub("", page)


def _swap_in(building: Path, folder: Path) -> None:
    """Replace `folder` by `building`: two renames, the old folder removed after."""
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    building.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def _index(files: dict[str, Path], total: int, shown: int) -> str:
    titles = {
        COMPARISON_VIEWER: "Comparison viewer (pending proposals by combination of levels)",
        CLUSTER_STUDIO: "Cluster studio (contacts the proposals would join, largest first)",
        MATCH_WEIGHTS: "Match weights of the model",
        M_U_PARAMETERS: "m and u probabilities of the model",
    }
    items = "".join(
        f'<li><a href="{html.escape(name)}">{html.escape(titles[name])}</a></li>'
        for name in files
        if name in titles
    )
    note = f"{shown:,} of {total:,} pending proposals shown" + (
        " (a random sample)" if shown < total else ""
    )
    return (
        "<!doctype html><meta charset='utf-8'><title>Merge proposals: Splink reports</title>"
        f"<h1>Merge proposals: Splink reports</h1><p>{note}.</p><ul>{items}</ul>"
    )
