"""The SQL runner (`pipelines.sql`): a failing statement names its file (and table), parameters
are bound, and every SQL file starts with the grain of its result."""

from __future__ import annotations

import duckdb
import pytest

from pipelines import sql
from pipelines.errors import CriError
from pipelines.settings import SQL_DIR


@pytest.fixture()
def con():
    with sql.connect() as connection:
        yield connection


def test_an_error_names_the_file_and_the_table(con):
    # sql/link/link_counts.sql reads tables `claims` and `persons`, which do not exist here.
    with pytest.raises(sql.SqlError, match=r"^sql/link/link_counts\.sql: ") as failure:
        sql.query(con, "link/link_counts")
    assert isinstance(failure.value, CriError)
    with pytest.raises(sql.SqlError, match=r"sql/link/persons\.sql \(building table persons\)"):
        sql.create_table(con, "link/persons", {"run_date": "2026-11-22"})


def test_a_script_error_names_the_file(con):
    with pytest.raises(sql.SqlError, match=r"^sql/publish/runs_insert\.sql: "):
        sql.run_script(con, "publish/runs_insert", {"run_date": "2026-11-22"})


def test_parameters_are_bound_including_a_list_of_files(con, tmp_path):
    files = []
    for n in (1, 2):
        path = tmp_path / f"part {n}'s.parquet"  # a quote in the path must not matter
        quoted = str(path).replace(chr(39), chr(39) * 2)
        con.execute(f"copy (select {n} as x, 's{n}' as signal_id) to '{quoted}'")
        files.append(str(path))
    sql.create_table(con, "publish/signals", {"ledger_files": files}, table="parts")
    assert con.execute("select x from parts order by x").fetchall() == [(1,), (2,)]


def test_copy_to_writes_with_the_options_given(con, tmp_path):
    con.execute("create table pseudonymised as select 3 as source_row, 'bsn_missing' as x")
    con.execute("alter table pseudonymised rename column x to rejection_reason")
    target = tmp_path / "rejects.csv"
    sql.copy_to(
        con, "partner/rejected_rows", target, {"line_offset": 1}, "(format csv, header true)"
    )
    assert target.read_text().splitlines() == ["line,reason", "4,bsn_missing"]


def test_parquet_view_reads_the_files_when_queried(con, tmp_path):
    path = tmp_path / "staged.parquet"
    duckdb.sql("select 'p' as person_pseudonym").write_parquet(str(path))
    sql.parquet_view(con, "staged_claims", [path], union_by_name=True)
    assert con.execute("select * from staged_claims").fetchall() == [("p",)]


def test_every_sql_file_states_its_grain_on_line_one():
    files = sorted(SQL_DIR.rglob("*.sql"))
    assert files
    missing = [
        str(f.relative_to(SQL_DIR))
        for f in files
        if not f.read_text("utf-8").startswith("-- grain:")
    ]
    assert not missing, f"line 1 must be '-- grain: ...': {missing}"
