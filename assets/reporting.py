"""Small helpers that turn frames into Dagster metadata."""

import polars as pl


def md_table(frame: pl.DataFrame, limit: int = 20) -> str:
    """A Markdown table for asset metadata (values escaped for the table syntax)."""
    if frame.height == 0:
        return "_none_"
    rows = frame.head(limit).rows()
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"

    def cell(v: object) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")[:120]

    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])
