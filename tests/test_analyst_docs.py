"""Every query in docs/analysts.md runs against a demo database and returns rows."""

from __future__ import annotations

import re

import duckdb
import pytest

from pipelines.demo import run_demo
from pipelines.settings import PROJECT_ROOT
from tests.helpers import EXTRACT_DATE

QUERIES = re.findall(
    r"```sql\n(.*?)```", (PROJECT_ROOT / "docs" / "analysts.md").read_text(), flags=re.S
)


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory):
    summary = run_demo(
        tmp_path_factory.mktemp("demo"), persons=5_000, extract_date=EXTRACT_DATE, seed=3
    )
    return summary.run.snapshot


def test_the_page_has_ten_example_queries():
    assert len(QUERIES) >= 10


@pytest.mark.parametrize("query", QUERIES, ids=[f"query-{i + 1}" for i in range(len(QUERIES))])
def test_query_runs_on_the_demo_database(demo_database, query):
    with duckdb.connect(str(demo_database), read_only=True) as con:
        rows = con.execute(query).fetchall()
    assert rows, query
