"""Every query in docs/analysts.md runs against a demo database and returns rows.

The demo (`pipelines.demo.run_demo`) runs two nights with feedback from three gemeenten between
them, so the queries on what became of the signals have feedback to count and the second
night's monitoring shows what the feedback held back."""

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


def test_the_demo_database_has_feedback_for_the_feedback_queries(demo_database):
    """Without feedback the queries on it would return rows of zeros and still pass."""
    with duckdb.connect(str(demo_database), read_only=True) as con:
        received, picked_up = con.execute(
            "select sum(feedback_received), sum(picked_up) from signal_funnel "
            "where gemeente_code = 'ALL'"
        ).fetchone()
        held = con.execute(
            "select sum(excluded_after_help), sum(held_deceased) from signal_monitoring "
            "where run_date = (select max(run_date) from signal_monitoring)"
        ).fetchone()
    assert received > 0 and picked_up > 0
    assert all(n > 0 for n in held), held


@pytest.mark.parametrize("query", QUERIES, ids=[f"query-{i + 1}" for i in range(len(QUERIES))])
def test_query_runs_on_the_demo_database(demo_database, query):
    with duckdb.connect(str(demo_database), read_only=True) as con:
        rows = con.execute(query).fetchall()
    assert rows, query
