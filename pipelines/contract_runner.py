"""Run a delivery contract's rules as one Great Expectations suite inside DuckDB.

The rules come from the contract compiler (`pipelines.contract_sql.delivery_rules`): each is an
`UnexpectedRowsExpectation` whose query selects only the `line` of offending rows, so GX runs it
in DuckDB (no pandas copy), counts the rows, and hands back example line numbers. No rule ever
selects a value, so neither the rejection reason nor the stored validation result can leak a
pseudonym or a BSN.

A GX error (anything in `exception_info`) raises `ContractRunnerError`: a check that could not run
is a failure of the check, never a verdict on the data.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.contract_sql import Rule
from pipelines.contracts import Contract
from pipelines.errors import CriError

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no telemetry leaves the hub

__all__ = ["ContractReport", "ContractRunnerError", "Rule", "RuleResult", "run_rules"]

EXAMPLE_LINES = 10
_ABORTED = "transaction is aborted"


class ContractRunnerError(CriError):
    """Great Expectations could not evaluate a rule; the data was not judged."""


@dataclass(frozen=True)
class RuleResult:
    rule: str
    description: str
    rows: int
    example_lines: list[int] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.rows == 0


@dataclass(frozen=True)
class ContractReport:
    """All rule results of one validation, plus GX's own result document (values-free)."""

    contract: str
    version: str
    results: list[RuleResult]
    gx_result: dict[str, Any]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[RuleResult]:
        return [r for r in self.results if not r.passed]


def run_rules(
    database: Path,
    rules: list[Rule],
    *,
    contract: Contract,
    suite_name: str,
    table: str = "delivery",
) -> ContractReport:
    """Run `rules` as one GX suite over `table` in the DuckDB file `database`.

    The DuckDB file must not be open for writing elsewhere in this process while GX runs.
    """
    import great_expectations as gx

    from pipelines.gx_duckdb import enable_duckdb_persisted_connection, release_datasource

    enable_duckdb_persisted_connection()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_sql(
        name="hub", connection_string=f"duckdb:///{Path(database).resolve()}"
    )
    try:
        batch = source.add_table_asset(
            name=table, table_name=table
        ).add_batch_definition_whole_table("whole")
        suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
        for rule in rules:
            suite.add_expectation(
                gx.expectations.UnexpectedRowsExpectation(
                    unexpected_rows_query=rule.query,
                    description=rule.description,
                    meta={"rule": rule.name},
                )
            )
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
        )
        outcome = validation.run(result_format={"result_format": "COMPLETE"})
    finally:
        release_datasource(source)

    _raise_on_gx_errors(outcome.results)
    results = [_rule_result(item) for item in outcome.results]
    document = json.loads(json.dumps(outcome.to_json_dict(), default=str))
    return ContractReport(contract.name, contract.version, results, document)


def _rule_result(item: Any) -> RuleResult:
    """One expectation's verdict: the row count and the first lines, never a value."""
    rule_name = item.expectation_config.meta["rule"]
    rows = int(item.result.get("observed_value") or 0)
    details = item.result.get("details", {}).get("unexpected_rows", [])
    lines = [int(row["line"]) for row in details[:EXAMPLE_LINES]]
    description = item.expectation_config.description or rule_name
    return RuleResult(rule_name, description, rows, lines)


def _exception_messages(item: Any) -> list[str]:
    """The messages of every exception GX recorded for one expectation result."""
    info = item.exception_info or {}
    entries = [info] + [v for v in info.values() if isinstance(v, dict)]
    return [str(e.get("exception_message") or "") for e in entries if e.get("raised_exception")]


def _raise_on_gx_errors(results: list[Any]) -> None:
    """Any recorded exception means GX did not judge the data: fail loudly, naming the rule whose
    error came first (later queries only report the aborted transaction)."""
    failed = [
        (item.expectation_config.meta["rule"], message)
        for item in results
        for message in _exception_messages(item)
    ]
    if not failed:
        return
    rule, message = next(((r, m) for r, m in failed if _ABORTED not in m), failed[0])
    first_line = message.splitlines()[0][:240] if message else "no detail"
    raise ContractRunnerError(
        f"Great Expectations could not evaluate rule {rule} ({len(failed)} errors): {first_line}"
    )
