"""Pins the Great Expectations + DuckDB behaviour the contract runner relies on.

If GX fixes its DuckDB defect, `test_defect_still_present_without_shim` fails: remove the shim.
If a GX or duckdb-engine upgrade breaks the shim, `test_shim_makes_expectations_work` fails.
"""

from __future__ import annotations

import duckdb
import pytest
from duckdb.sqltypes import BIGINT

from pipelines import contract_runner
from pipelines.contract_runner import (
    ContractRunnerError,
    DeliveryRule,
    check_rules,
    count_offending,
)
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


def _delivery(con):
    con.execute(
        "create table delivery as select range + 1 as line, (range % 7)::int as x from range(1000)"
    )


def test_runner_counts_rows_and_gives_lines_not_values():
    contract = load_contract("claims", "1.0.0")
    rules = [
        DeliveryRule("x.six", "x is not 6", "x = 6"),
        DeliveryRule("x.big", "x is small", "x > 100"),
        DeliveryRule(
            "x.seven",
            "x is not 0 (a query of its own)",
            None,
            query="select line from {object} as t where t.x = 0",
        ),
    ]
    with duckdb.connect() as con:
        _delivery(con)
        report = check_rules(con, rules, contract=contract)
    six, big, zero = report.results
    assert six.rows == 142 and six.example_lines == [7, 14, 21, 28, 35, 42, 49, 56, 63, 70]
    assert big.passed and big.example_lines == []
    assert zero.rows == 143 and zero.example_lines[:2] == [1, 8]
    # GX judged every rule: its result document has one result per rule, with GX's own counts.
    results = report.gx_result["results"]
    assert [r["expectation_config"]["meta"]["rule"] for r in results] == [
        "x.six",
        "x.big",
        "x.seven",
    ]
    assert [r["result"]["observed_value"] for r in results] == [142, 0, 143]
    assert [r["success"] for r in results] == [False, True, False]
    assert '"x"' not in str(report.gx_result.get("results"))


def test_the_rules_are_counted_in_one_scan():
    """Every row condition is counted in one pass over the data, not one query per rule: each
    value is read through a function that counts its calls."""
    calls = []

    def read(x: int) -> int:
        calls.append(x)
        return x

    rules = [DeliveryRule(f"x.is{n}", f"x is not {n}", f"x = {n}") for n in range(7)]
    with duckdb.connect() as con:
        con.create_function("read_x", read, [BIGINT], BIGINT, side_effects=True)
        con.execute(
            "create table base as select range + 1 as line, range % 7 as x from range(1000)"
        )
        con.execute("create view delivery as select line, read_x(x) as x from base")
        assert count_offending(con, rules, "delivery") == [143, 143, 143, 143, 143, 143, 142]
    assert len(calls) == 1000


def test_a_rule_duckdb_cannot_evaluate_is_an_error_not_a_data_failure():
    contract = load_contract("claims", "1.0.0")
    rules = [
        DeliveryRule("ok", "fine", "x = 6"),
        DeliveryRule("broken", "names a column that does not exist", "no_such_column = 1"),
    ]
    with duckdb.connect() as con, pytest.raises(ContractRunnerError, match="rule broken"):
        _delivery(con)
        check_rules(con, rules, contract=contract)


def test_a_gx_error_is_an_error_of_the_check():
    """When GX cannot run an expectation (here: its table lost the `line` column its queries
    read), the check fails loudly, naming the rule."""
    contract = load_contract("claims", "1.0.0")
    rules = [DeliveryRule("ok", "fine", "x = 6")]
    with duckdb.connect() as con:
        _delivery(con)
        check_rules(con, rules, contract=contract)  # the session and its suite exist
        session = contract_runner._session()
        table = contract_runner.HITS_TABLE
        session._execute(f"drop table {table}; create table {table} (rule integer, lines bigint)")
        try:
            with pytest.raises(ContractRunnerError, match="rule ok"):
                check_rules(con, rules, contract=contract)
        finally:
            contract_runner._SESSION = None  # the next check builds a fresh session


def test_each_report_keeps_the_sql_of_its_own_rules():
    """A partner's rules carry its own code: the report of the second partner checked in the
    same process names that partner's SQL, not the first one's (suites are cached per SQL)."""
    contract = load_contract("claims", "1.0.0")
    with duckdb.connect() as con:
        _delivery(con)
        for value in (6, 5):
            rules = [DeliveryRule("x.value", "x is not the partner's", f"x = {value}")]
            report = check_rules(con, rules, contract=contract)
            [result] = report.gx_result["results"]
            assert f"x = {value}" in result["expectation_config"]["meta"]["sql"]
            assert (
                result["result"]["observed_value"] == report.results[0].rows == 143 - (value == 6)
            )
