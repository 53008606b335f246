"""Check the hub's own tables against their ODCS contract, inside DuckDB, before they move on.

The link stage checks its outputs before writing them; publish checks the whole snapshot before
swapping it in. Rules come from the contract (required, unique, pattern, minimum/maximum, the
contract's SQL rules, which count offending rows), plus one privacy invariant in code: no text
value may look like a linkage pseudonym (64 lowercase hex). The same contract's descriptions
become the tables' and columns' COMMENTs, so the documentation cannot drift from the checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.contracts import Contract
from pipelines.fileio import replace_atomically, temporary_sibling

LINKAGE_PSEUDONYM = "[0-9a-f]{64}"


class StageContractError(Exception):
    """A stage's output breaks its contract; nothing downstream may read it."""


@dataclass(frozen=True)
class StageRule:
    name: str
    description: str
    count_sql: str  # returns the number of offending rows


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def table_schema(contract: Contract, table: str) -> Any:
    for schema in contract.model.schema_ or []:
        if schema.name == table:
            return schema
    raise StageContractError(f"contract {contract.name} has no table {table}")


def stage_rules(contract: Contract, table: str) -> list[StageRule]:
    """The contract's rules for one table, as count queries against the table itself."""
    schema = table_schema(contract, table)
    rules = []
    for prop in schema.properties or []:
        column, options = f'"{prop.name}"', prop.logicalTypeOptions or {}
        if prop.required:
            rules.append(
                StageRule(
                    f"{table}.{prop.name}.required",
                    f"{prop.name} is never null",
                    f"select count(*) from {table} where {column} is null",
                )
            )
        if prop.unique:
            rules.append(
                StageRule(
                    f"{table}.{prop.name}.unique",
                    f"{prop.name} is unique",
                    f"select count(*) - count(distinct {column}) from {table}",
                )
            )
        if "pattern" in options:
            rules.append(
                StageRule(
                    f"{table}.{prop.name}.pattern",
                    f"{prop.name} matches {options['pattern']}",
                    f"select count(*) from {table} where not regexp_full_match({column}, "
                    f"{_quote(options['pattern'])})",
                )
            )
        for key, op in (("minimum", "<"), ("maximum", ">")):
            if key in options:
                rules.append(
                    StageRule(
                        f"{table}.{prop.name}.{key}",
                        f"{prop.name} {key} {options[key]}",
                        f"select count(*) from {table} where {column} {op} {options[key]}",
                    )
                )
    for quality in schema.quality or []:
        rules.append(
            StageRule(
                f"{table}.{quality.name}",
                quality.description or quality.name,
                quality.query.replace("{object}", table),
            )
        )
    text_columns = [p.name for p in schema.properties or [] if p.physicalType == "VARCHAR"]
    if text_columns:
        condition = " or ".join(
            f'regexp_full_match("{c}", {_quote(LINKAGE_PSEUDONYM)})' for c in text_columns
        )
        rules.append(
            StageRule(
                f"{table}.no_linkage_pseudonym",
                "no text value looks like a linkage pseudonym",
                f"select count(*) from {table} where {condition}",
            )
        )
    return rules


def check_tables(
    con: Any, contract: Contract, tables: list[str], parameters: dict[str, int] | None = None
) -> None:
    """Run every rule of `tables`; raise one error listing each broken rule and its row count.

    `parameters` fill `$name` placeholders in the contract's SQL rules (policy numbers such as
    `$cooldown_days`), so the number stays in the policy file alone.
    """
    broken = []
    for table in tables:
        for rule in stage_rules(contract, table):
            sql = rule.count_sql
            for name, value in (parameters or {}).items():
                sql = sql.replace(f"${name}", str(int(value)))
            offending = con.execute(sql).fetchone()[0]
            if offending:
                broken.append(f"{rule.name} ({offending} rows): {rule.description}")
    if broken:
        raise StageContractError(f"{contract.name} {contract.version} broken: " + "; ".join(broken))


def comment_statements(contract: Contract, table: str) -> list[str]:
    """COMMENT ON statements for a table and its columns, from the contract's descriptions."""
    schema = table_schema(contract, table)
    grain = schema.dataGranularityDescription
    text = f"{schema.description.strip()} Grain: {grain}." if grain else schema.description
    statements = [f"comment on table {table} is {_quote(text)}"]
    statements += [
        f'comment on column {table}."{p.name}" is {_quote(p.description.strip())}'
        for p in schema.properties or []
    ]
    return statements


def write_tables(con: Any, contract: Contract, tables: list[str], folder: Path) -> None:
    """Write each table to `<folder>/<table>.parquet` with exactly the contract's columns, in
    the contract's order, each file atomically (temporary name, then rename)."""
    for table in tables:
        columns = ", ".join(f'"{p.name}"' for p in table_schema(contract, table).properties)
        target = Path(folder) / f"{table}.parquet"
        temporary = temporary_sibling(target)
        con.execute(
            f"copy (select {columns} from {table}) to "
            f"'{str(temporary).replace(chr(39), chr(39) * 2)}' (format parquet)"
        )
        replace_atomically(temporary, target)
