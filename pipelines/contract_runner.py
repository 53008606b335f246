"""Turn an ODCS contract into a Great Expectations suite and run it inside DuckDB.

Every row rule becomes an `UnexpectedRowsExpectation` whose query selects only the `line` of
offending rows: GX runs it in DuckDB (no pandas copy), counts the rows, and hands back example line
numbers. No rule ever selects a value, so neither the rejection reason nor the stored validation
result can leak a pseudonym or a BSN. Rules come from the contract (required, type formats,
pattern, length, range, unique, `invalidValues`, SQL quality rules) plus the hub's raw-BSN leak
guard on every text column.

The checked relation is a DuckDB view `delivery` with a `line` column, each column typed as the
contract says (`try_cast`), and for non-text columns the delivered text as `<column>__text`, so a
format error is reported as such and never as a confusing range error.

A GX error (anything in `exception_info`) raises `ContractRunnerError`: a check that could not run
is a failure of the check, never a verdict on the data.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.contracts import Contract

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no telemetry leaves the hub

EXAMPLE_LINES = 10
TEXT_SUFFIX = "__text"
_COUNT_PREFIX = re.compile(r"^\s*select\s+count\(\*\)\s+from\s+", re.IGNORECASE)
_ABORTED = "transaction is aborted"
_INTEGER = "-?[0-9]{1,18}"
_DATE = "[0-9]{4}-[0-9]{2}-[0-9]{2}"


class ContractRunnerError(Exception):
    """Great Expectations could not evaluate a rule; the data was not judged."""


@dataclass(frozen=True)
class Rule:
    """One check: a stable name partners can look up, a sentence, and the SQL that finds rows."""

    name: str
    description: str
    query: str  # GX query: `select line from {batch} where ...`, braces of literals doubled


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


def _literal(text: str) -> str:
    """A SQL string literal, with braces doubled so GX's query formatting leaves it alone."""
    quoted = "'" + text.replace("'", "''") + "'"
    return quoted.replace("{", "{{").replace("}", "}}")


def _rows_where(condition: str) -> str:
    return f"select line from {{batch}} where {condition} order by line"


def _sql_value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _literal(str(value))
    return str(value)


def text_column(name: str, logical_type: str | None) -> str:
    """The column holding a property's delivered text in the `delivery` view."""
    return name if logical_type in (None, "string") else f"{name}{TEXT_SUFFIX}"


def contract_rules(contract: Contract, *, parameters: dict[str, str]) -> list[Rule]:
    """The contract's rules as row queries, format and presence first, then values.

    `parameters` fills `$name` placeholders of the contract's SQL rules (e.g. `$partner`,
    `$extract_date`); values are the hub's own, validated, and inserted as SQL literals because
    GX cannot bind parameters.
    """
    presence: list[Rule] = []
    values: list[Rule] = []
    for prop in contract.properties:
        name, logical = prop.name, prop.logicalType
        text = text_column(name, logical)
        column = f'"{name}"'
        if prop.required:
            presence.append(
                Rule(
                    f"{name}.required",
                    f"{name} must not be empty",
                    _rows_where(f'"{text}" is null'),
                )
            )
        fmt = {
            "integer": (
                f'regexp_full_match("{text}", {_literal(_INTEGER)})',
                f"{name} must be a whole number of cents (digits only, no decimals)",
            ),
            "date": (
                f'regexp_full_match("{text}", {_literal(_DATE)}) '
                f'and try_cast("{text}" as date) is not null',
                f"{name} must be a date written YYYY-MM-DD",
            ),
            "boolean": (
                f"\"{text}\" in ('true', 'false')",
                f"{name} must be true or false (lower case)",
            ),
        }.get(logical or "string")
        if fmt:
            presence.append(
                Rule(
                    f"{name}.format",
                    fmt[1],
                    _rows_where(f'"{text}" is not null and not ({fmt[0]})'),
                )
            )
        options = prop.logicalTypeOptions or {}
        if "pattern" in options:
            values.append(
                Rule(
                    f"{name}.pattern",
                    f"{name} must match {options['pattern']}",
                    _rows_where(
                        f"{column} is not null and not regexp_full_match({column}, "
                        f"{_literal(options['pattern'])})"
                    ),
                )
            )
        for key, op in (("minLength", "<"), ("maxLength", ">")):
            if key in options:
                values.append(
                    Rule(
                        f"{name}.{key}",
                        f"{name} length must be {key} {options[key]}",
                        _rows_where(f"length({column}) {op} {int(options[key])}"),
                    )
                )
        for key, op, word in (("minimum", "<", "at least"), ("maximum", ">", "at most")):
            if key in options:
                values.append(
                    Rule(
                        f"{name}.{key}",
                        f"{name} must be {word} {options[key]}",
                        _rows_where(f"{column} {op} {_sql_value(options[key])}"),
                    )
                )
        if prop.unique:
            values.append(
                Rule(
                    f"{name}.unique",
                    f"{name} must be unique within the file",
                    _rows_where(
                        f"{column} in (select {column} from {{batch}} "
                        f"group by {column} having count(*) > 1)"
                    ),
                )
            )
        for quality in prop.quality or []:
            values.append(_quality_rule(name, quality, parameters))
    return presence + values


def _quality_rule(column: str, quality: Any, parameters: dict[str, str]) -> Rule:
    name = f"{column}.{quality.name}"
    description = quality.description or name
    if quality.type == "library" and quality.metric == "invalidValues":
        allowed = ", ".join(_literal(v) for v in quality.arguments["validValues"])
        return Rule(
            name,
            description or f"{column} must be one of the listed values",
            _rows_where(f'"{column}" is not null and "{column}" not in ({allowed})'),
        )
    if quality.type == "sql":
        if not _COUNT_PREFIX.match(quality.query or "") or "{object}" not in quality.query:
            raise ContractRunnerError(
                f"rule {name}: SQL rules must read `select count(*) from {{object}} ...`"
            )
        # Contract SQL counts offending rows; listing them is the same query selecting `line`.
        # GX inserts `{batch}` as `(...) AS subselect`; wrapping it once more keeps an alias
        # the contract gives `{object}` valid.
        query = _COUNT_PREFIX.sub("select line from ", quality.query, count=1)
        query = query.replace("{object}", "(select * from {batch})")
        for key, value in parameters.items():
            query = query.replace(f"${key}", _literal(value))
        return Rule(name, description, f"{query} order by line")
    raise ContractRunnerError(f"rule {name}: unsupported quality rule {quality.type}")


def leak_guard_rules(contract: Contract) -> list[Rule]:
    """The hub's own guard: no text column may hold what looks like a raw BSN."""
    return [
        Rule(
            f"{p.name}.raw_bsn",
            f"{p.name} holds what looks like a raw BSN (9 digits passing the elfproef); "
            "BSNs must be pseudonymised before delivery",
            _rows_where(f'looks_like_raw_bsn("{p.name}")'),
        )
        for p in contract.properties
        if p.logicalType in (None, "string")
    ]


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
    results = []
    for item in outcome.results:
        rule_name = item.expectation_config.meta["rule"]
        rows = int(item.result.get("observed_value") or 0)
        details = item.result.get("details", {}).get("unexpected_rows", [])
        lines = [int(row["line"]) for row in details[:EXAMPLE_LINES]]
        description = item.expectation_config.description or rule_name
        results.append(RuleResult(rule_name, description, rows, lines))
    document = json.loads(json.dumps(outcome.to_json_dict(), default=str))
    return ContractReport(contract.name, contract.version, results, document)


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
