"""Check the hub's own tables against their ODCS contract, inside DuckDB, before they move on.

The link stage checks its outputs before writing them; publish checks each partition it builds
(`pipelines.history`) and the snapshot's own tables before swapping it in. The rules come from
the contract compiler (`pipelines.contract_sql.stage_rules`): required, unique, pattern,
minimum/maximum, the contract's SQL rules (which count offending rows), plus one privacy
invariant in code: no text value may look like a linkage pseudonym (64 lowercase hex). The same
contract's descriptions become the tables' and columns' COMMENTs, so the documentation cannot
drift from the checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from pipelines import contract_sql
from pipelines.contracts import Contract
from pipelines.errors import CriError
from pipelines.fileio import replace_atomically, temporary_sibling


class StageContractError(CriError):
    """A stage's output breaks its contract; nothing downstream may read it."""


def table_schema(contract: Contract, table: str) -> Any:
    """The ODCS schema object of one table of a stage contract."""
    for schema in contract.model.schema_ or []:
        if schema.name == table:
            return schema
    raise StageContractError(f"contract {contract.name} has no table {table}")


def stage_rules(
    contract: Contract, table: str, parameters: dict[str, int] | None = None
) -> list[contract_sql.Rule]:
    """The contract's rules for one table, as count queries against the table itself."""
    return contract_sql.stage_rules(table_schema(contract, table), table, parameters)


def check_tables(
    con: Any, contract: Contract, tables: list[str], parameters: dict[str, int] | None = None
) -> None:
    """Run every rule of `tables`; raise one error listing each broken rule and its row count.

    A table's rules are counted together in one scan (per alias its contract's SQL gives it:
    one so far), a rule of another shape on its own. `parameters` fill `$name` placeholders in
    the contract's SQL rules (policy numbers such as `$cooldown_days`), so the number stays in
    the policy file alone.
    """
    broken = []
    for table in tables:
        rules = stage_rules(contract, table, parameters)
        for rule, offending in zip(rules, count_rules(con, table, rules), strict=True):
            if offending:
                broken.append(f"{rule.name} ({offending} rows): {rule.description}")
    if broken:
        raise StageContractError(f"{contract.name} {contract.version} broken: " + "; ".join(broken))


def count_rules(con: Any, table: str, rules: list[contract_sql.Rule]) -> list[int]:
    """Each rule's number of offending rows of `table`, in rule order (see `check_tables`)."""
    counts = [0] * len(rules)
    for index, rule in enumerate(rules):
        if rule.aggregate is None:
            counts[index] = _count_alone(con, rule)
    for alias, indexes in contract_sql.scan_groups(rules).items():
        relation = contract_sql.identifier(table)
        if alias:
            relation += f" as {contract_sql.identifier(alias)}"
        aggregates = ", ".join(str(rules[i].aggregate) for i in indexes)
        try:
            row = con.execute(f"select {aggregates} from {relation}").fetchall()[0]
        except duckdb.Error:
            # The rule that cannot run raises its own error; if each runs alone, count alone.
            row = [_count_alone(con, rules[i]) for i in indexes]
        for i, value in zip(indexes, row, strict=True):
            counts[i] = int(value or 0)
    return counts


def _count_alone(con: Any, rule: contract_sql.Rule) -> int:
    return int(con.execute(rule.query).fetchall()[0][0] or 0)


def comment_statements(contract: Contract, table: str, **how: Any) -> list[str]:
    """COMMENT ON statements for a table (or view) and its columns, from the contract's
    descriptions (`how`: see `contract_sql.comment_statements`)."""
    return contract_sql.comment_statements(table_schema(contract, table), table, **how)


def empty_table(con: Any, contract: Contract, table: str) -> None:
    """The contract's table with no rows (its columns and types are the contract's, so the
    DDL is built from it rather than kept in a file that would repeat the contract)."""
    con.execute(contract_sql.empty_table_statement(table_schema(contract, table), table))


def add_missing_columns(con: Any, contract: Contract, table: str) -> None:
    """Add the contract's columns a table lacks, as nulls: rows made under an older contract
    version (a ledger delivery before the columns existed) read as 'not recorded then'."""
    present = {
        row[0] for row in con.execute(f"describe {contract_sql.identifier(table)}").fetchall()
    }
    for prop in table_schema(contract, table).properties or []:
        if prop.name not in present:
            con.execute(
                f"alter table {contract_sql.identifier(table)} add column "
                f"{contract_sql.identifier(prop.name)} {prop.physicalType}"
            )


def write_tables(
    con: Any,
    contract: Contract,
    tables: list[str],
    folder: Path,
    *,
    session: Any = None,
    keep: tuple[str, ...] = (),
) -> None:
    """Write each table to `<folder>/<table>.parquet` with exactly the contract's columns, in
    the contract's order, each file atomically (temporary name, then rename). With a
    `pipelines.session.Session`, the tables named in `keep` stay in memory for a later stage."""
    for table in tables:
        schema = table_schema(contract, table)
        select = contract_sql.select_columns(schema, table)
        target = Path(folder) / f"{table}.parquet"
        temporary = temporary_sibling(target)
        con.execute(f"copy ({select}) to {contract_sql.literal(str(temporary))} (format parquet)")
        replace_atomically(temporary, target)
        if session is not None and table in keep:
            session.keep(table, target, [p.name for p in schema.properties or []])
