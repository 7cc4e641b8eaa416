"""The analyst queries in docs/schema.md run against a real published file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import query

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = re.findall(r"```sql\n(.*?)```", (ROOT / "docs" / "schema.md").read_text(), re.S)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from typer.testing import CliRunner

    from contacts.cli import app

    folder = tmp_path_factory.mktemp("demo") / "demo"
    result = CliRunner().invoke(
        app, ["demo", "--dir", str(folder), "--persons", "50", "--days", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "published file" in result.output and "quarantined records" in result.output
    return folder / "contacts.duckdb"


IDS = ["multichannel", "history", "crm", "quarantine", "list", "detail", "engagement", "fulltext"]


def test_examples_are_documented() -> None:
    assert len(EXAMPLES) == len(IDS)


@pytest.mark.parametrize("sql", EXAMPLES, ids=IDS)
def test_example_query_runs_and_returns_rows(demo_db: Path, sql: str) -> None:
    assert query(demo_db, sql).height > 0


def test_every_published_table_and_view_is_documented(demo_db: Path) -> None:
    doc = (ROOT / "docs" / "schema.md").read_text()
    names = query(
        demo_db,
        "SELECT table_name AS name FROM duckdb_tables() WHERE schema_name = 'main' "
        "UNION SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal",
    ).get_column("name")
    assert names.len() > 15
    missing = [n for n in names.to_list() if f"`{n}`" not in doc]
    assert missing == []
