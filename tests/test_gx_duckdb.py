"""Pins the Great Expectations + DuckDB behaviour the contract runner relies on.

If GX fixes its DuckDB defect, `test_defect_still_present_without_shim` fails: remove the shim.
If a GX or duckdb-engine upgrade breaks the shim, `test_shim_makes_expectations_work` fails.
"""

from __future__ import annotations

import duckdb
import pytest

from pipelines.contract_runner import ContractRunnerError, Rule, run_rules
from pipelines.contracts import load_contract
from pipelines.gx_duckdb import (
    disable_duckdb_persisted_connection,
    duckdb_keeps_connection,
    enable_duckdb_persisted_connection,
)


@pytest.fixture()
def database(tmp_path):
    path = tmp_path / "t.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "create table delivery as select range + 1 as line, (range % 7)::int as x "
            "from range(1000)"
        )
    return path


def _validate_plain(path):
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_sql(name="d", connection_string=f"duckdb:///{path}")
    batch = (
        source.add_table_asset(name="delivery", table_name="delivery")
        .add_batch_definition_whole_table("all")
        .get_batch()
    )
    suite = gx.ExpectationSuite(name="s")
    suite.add_expectation(gx.expectations.ExpectTableRowCountToEqual(value=1000))
    result = batch.validate(suite)
    return result.results[0]


def test_defect_still_present_without_shim(database):
    disable_duckdb_persisted_connection()
    try:
        result = _validate_plain(database)
    finally:
        enable_duckdb_persisted_connection()
    assert not result.success
    assert any(
        isinstance(v, dict) and v.get("raised_exception") for v in result.exception_info.values()
    ), "GX fixed the defect: drop the shim"


def test_shim_makes_expectations_work(database):
    enable_duckdb_persisted_connection()
    assert duckdb_keeps_connection()
    result = _validate_plain(database)
    assert result.success and result.result["observed_value"] == 1000


def test_runner_counts_rows_and_gives_lines_not_values(database):
    contract = load_contract("claims", "1.0.0")
    rules = [Rule("x.six", "x is not 6", "select line from {batch} where x = 6 order by line")]
    report = run_rules(database, rules, contract=contract, suite_name="t")
    [result] = report.results
    assert result.rows == 142 and result.example_lines == [7, 14, 21, 28, 35, 42, 49, 56, 63, 70]
    assert '"x"' not in str(report.gx_result.get("results"))
    # The database file is released: it can be reopened read-only at once.
    duckdb.connect(str(database), read_only=True).close()


def test_a_rule_gx_cannot_evaluate_is_an_error_not_a_data_failure(database):
    contract = load_contract("claims", "1.0.0")
    rules = [
        Rule("ok", "fine", "select line from {batch} where x = 6"),
        Rule(
            "broken",
            "names a column that does not exist",
            "select line from {batch} where no_such_column = 1",
        ),
    ]
    with pytest.raises(ContractRunnerError, match="rule broken"):
        run_rules(database, rules, contract=contract, suite_name="t")
