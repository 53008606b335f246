"""Check a delivery contract's rules in one scan, and report them per rule through Great
Expectations.

The rules come from the contract compiler (`pipelines.contract_sql.delivery_rules`). Checking
them one query at a time read the data twice per rule (~70 reads of a national file); here every
rule that is a row condition is counted in one aggregate scan of the parsed delivery (in the
caller's DuckDB connection, in memory), the few of another shape in a query each, and only the
rules that fail have their offending lines listed. Those lines (never a value) go into a small
`rule_hits` table that a Great Expectations suite, built once per process and contract, reads
with one `UnexpectedRowsExpectation` per rule: GX counts each rule's rows and hands back example
lines, and its validation result (per rule, with the rule's SQL in `meta`) is what the hub keeps
and reports. GX's count must equal the scan's, or the check itself failed.

A rule DuckDB cannot evaluate, and any GX error (anything in `exception_info`), raise
`ContractRunnerError`: a check that could not run is a failure of the check, never a verdict on
the data.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.contract_sql import DeliveryRule, counted, identifier, scan_groups
from pipelines.contracts import Contract
from pipelines.errors import CriError

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no telemetry leaves the hub

__all__ = [
    "ContractReport",
    "ContractRunnerError",
    "DeliveryRule",
    "PendingCheck",
    "RuleResult",
    "check_rules",
    "count_offending",
    "start_check",
    "warm_up",
]

EXAMPLE_LINES = 10
HITS_TABLE = "rule_hits"
_ABORTED = "transaction is aborted"
# Errors that say a rule's SQL cannot run on this data (a wrong name, a failed cast). Any other
# DuckDB error (memory, disk) is the machine's and is left for the caller to report as such.
_RULE_ERRORS = (
    duckdb.BinderException,
    duckdb.CatalogException,
    duckdb.ConversionException,
    duckdb.InvalidInputException,
    duckdb.NotImplementedException,
    duckdb.OutOfRangeException,
    duckdb.ParserException,
)


class ContractRunnerError(CriError):
    """A rule could not be evaluated (by DuckDB or by GX); the data was not judged."""


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


@dataclass(frozen=True)
class PendingCheck:
    """A check whose rules are counted and whose GX report is being made in this process's GX
    thread: `scan_passed` is known at once (so the caller can stage the data meanwhile), the
    report is the verdict (`report()` raises what GX or the comparison raised)."""

    counts: list[int]
    future: Future[ContractReport]

    @property
    def scan_passed(self) -> bool:
        return not any(self.counts)

    def report(self) -> ContractReport:
        return self.future.result()


def start_check(
    con: duckdb.DuckDBPyConnection,
    rules: list[DeliveryRule],
    *,
    contract: Contract,
    table: str = "delivery",
) -> PendingCheck:
    """Count `rules` over `table` of `con` (one scan), list the failing rules' lines, and hand
    them to this process's GX thread to report; returns at once after the scan."""
    counts = count_offending(con, rules, table)
    hits = _offending_lines(con, [i for i, n in enumerate(counts) if n], rules, table)
    return PendingCheck(counts, _gx_thread().submit(_report, contract, rules, counts, hits))


def check_rules(
    con: duckdb.DuckDBPyConnection,
    rules: list[DeliveryRule],
    *,
    contract: Contract,
    table: str = "delivery",
) -> ContractReport:
    """Check `rules` over `table` of `con` and report them through this process's GX suite."""
    return start_check(con, rules, contract=contract, table=table).report()


def warm_up() -> None:
    """Start building this process's GX session in the background (importing GX alone takes a
    few seconds), so that it is ready when the first delivery has been parsed."""
    _gx_thread().submit(_session)


def _report(
    contract: Contract, rules: list[DeliveryRule], counts: list[int], hits: pa.Table
) -> ContractReport:
    """Run in the GX thread: GX's verdict per rule, which must agree with the scan."""
    outcome = _session().validate(contract, rules, hits)
    _raise_on_gx_errors(outcome.results)
    by_number = {int(item.expectation_config.meta["rule_no"]): item for item in outcome.results}
    if sorted(by_number) != list(range(len(rules))):
        raise ContractRunnerError("Great Expectations did not report every rule")
    results = [_rule_result(by_number[number]) for number in range(len(rules))]
    mismatched = [r.rule for r, n in zip(results, counts, strict=True) if r.rows != n]
    if mismatched:
        raise ContractRunnerError(
            f"Great Expectations counted other rows than the scan for rule {mismatched[0]}"
        )
    document = json.loads(json.dumps(outcome.to_json_dict(), default=str))
    for item in document.get("results", []):  # the SQL this delivery's rule ran, beside GX's query
        meta = item["expectation_config"]["meta"]
        meta["sql"] = rules[int(meta["rule_no"])].lines_sql("delivery")
    return ContractReport(contract.name, contract.version, results, document)


def count_offending(
    con: duckdb.DuckDBPyConnection, rules: list[DeliveryRule], table: str
) -> list[int]:
    """Every rule's number of offending rows of `table`, in rule order: the row conditions in one
    aggregate scan per alias the contract's SQL gives the table (`contract_sql.scan_groups`:
    one for every contract so far), any other rule in a query of its own."""
    counts = [0] * len(rules)
    for alias, indexes in scan_groups(rules).items():
        relation = identifier(table) + (f" as {identifier(alias)}" if alias else "")
        columns = ", ".join(
            f"{counted(rules[i].where(table))} as {identifier(str(i))}" for i in indexes
        )
        try:
            row = con.sql(f"select {columns} from {relation}").fetchall()[0]
        except _RULE_ERRORS:
            # The rule that cannot run says so; if each runs alone, count them alone.
            row = [_count_alone(con, rules[i], table) for i in indexes]
        for i, value in zip(indexes, row, strict=True):
            counts[i] = int(value or 0)
    for index, rule in enumerate(rules):
        if rule.condition is None:
            counts[index] = _count_alone(con, rule, table)
    return counts


def _count_alone(con: duckdb.DuckDBPyConnection, rule: DeliveryRule, table: str) -> int:
    try:
        return int(con.sql(f"select count(*) from ({rule.lines_sql(table)})").fetchall()[0][0])
    except _RULE_ERRORS as exc:
        raise _unevaluable(rule, exc) from exc


def _unevaluable(rule: DeliveryRule, exc: BaseException) -> ContractRunnerError:
    first_line = (str(exc).splitlines() or ["no detail"])[0][:240]
    return ContractRunnerError(f"DuckDB could not evaluate rule {rule.name}: {first_line}")


def _offending_lines(
    con: duckdb.DuckDBPyConnection, failing: list[int], rules: list[DeliveryRule], table: str
) -> pa.Table:
    """(rule number, line) of every offending row of the failing rules; nothing is read when
    every rule passed."""
    if not failing:
        return pa.table({"rule": pa.array([], pa.int32()), "line": pa.array([], pa.int64())})
    parts = " union all ".join(
        f"select {i}::integer as rule, line from ({rules[i].lines_sql(table)})" for i in failing
    )
    return con.sql(parts).to_arrow_table()


# ---------------------------------------------------------------- Great Expectations


class _GxSession:
    """One ephemeral GX context per process, reading `rule_hits` in a small DuckDB file of its
    own; one suite and validation definition per contract, built on first use. Building these
    costs about half a second and importing GX a few seconds, so a worker pays it once."""

    def __init__(self) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        from pipelines.gx_duckdb import enable_duckdb_persisted_connection

        enable_duckdb_persisted_connection()
        self._gx = gx
        self.pid = os.getpid()
        self.folder = Path(tempfile.mkdtemp(prefix="cri-gx-"))
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.source = self.context.data_sources.add_sql(
            name="hub", connection_string=f"duckdb:///{self.folder / 'rules.duckdb'}"
        )
        self._execute(f"create table {HITS_TABLE} (rule integer, line bigint)")
        self.batch = self.source.add_table_asset(
            name=HITS_TABLE, table_name=HITS_TABLE
        ).add_batch_definition_whole_table("whole")
        self.validations: dict[tuple[Any, ...], Any] = {}

    def _execute(self, statement: str, hits: pa.Table | None = None) -> None:
        # GX keeps one connection open (the DuckDB shim) inside a transaction it never ends, so
        # the hits must be written through that very connection to be seen by its queries.
        with self.source.get_execution_engine().get_connection() as connection:
            raw = connection.connection.driver_connection
            if hits is not None:
                raw.register("hits_in", hits)
            try:
                raw.execute(statement)
            finally:
                if hits is not None:
                    raw.unregister("hits_in")

    def _validation(self, contract: Contract, rules: list[DeliveryRule]) -> Any:
        # One suite serves every partner: its expectations read `rule_hits` only; each rule's
        # own SQL (with the partner's code and date) is added to each run's document instead.
        key = (contract.name, contract.version, tuple((r.name, r.description) for r in rules))
        if key not in self.validations:
            gx = self._gx
            name = f"{contract.name}-{contract.version}-{len(self.validations) + 1}"
            # All expectations at once: adding them one by one re-serialises the suite each time.
            expectations = [
                gx.expectations.UnexpectedRowsExpectation(
                    unexpected_rows_query=(
                        f"select line from {{batch}} where rule = {number} order by line"
                    ),
                    description=rule.description,
                    meta={"rule": rule.name, "rule_no": number},
                )
                for number, rule in enumerate(rules)
            ]
            suite = self.context.suites.add(
                gx.ExpectationSuite(name=name, expectations=expectations)
            )
            self.validations[key] = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=self.batch, suite=suite)
            )
        return self.validations[key]

    def validate(self, contract: Contract, rules: list[DeliveryRule], hits: pa.Table) -> Any:
        validation = self._validation(contract, rules)
        self._execute(f"delete from {HITS_TABLE}")
        if hits.num_rows:
            self._execute(f"insert into {HITS_TABLE} select rule, line from hits_in", hits)
        return validation.run(result_format={"result_format": "COMPLETE"})

    def close(self) -> None:
        if self.pid != os.getpid():  # a forked child leaves its parent's session alone
            return
        from pipelines.gx_duckdb import release_datasource

        try:
            release_datasource(self.source)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


_SESSION: _GxSession | None = None
_THREAD: tuple[int, ThreadPoolExecutor] | None = None


def _gx_thread() -> ThreadPoolExecutor:
    """The one thread of this process that talks to GX (a forked child starts its own). GX is
    pure Python, so its work overlaps DuckDB's (which releases the GIL) in the caller."""
    global _THREAD
    if _THREAD is None or _THREAD[0] != os.getpid():
        _THREAD = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="gx"))
    return _THREAD[1]


def _session() -> _GxSession:
    """This process's GX session, built on first use (in the GX thread)."""
    global _SESSION
    if _SESSION is None or _SESSION.pid != os.getpid():
        _SESSION = _GxSession()
        atexit.register(_SESSION.close)
    return _SESSION


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
