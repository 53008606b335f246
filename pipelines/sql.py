"""The one way the pipeline runs SQL: every statement lives in `sql/<stage>/<name>.sql`.

A file holds one query (for `create_table` and `query`) or a script of statements ending a line
with `;` (for `run_script`). Parameters are bound by DuckDB (`$name`), never pasted into the
text; each statement gets only the parameters it uses, since DuckDB refuses unused ones. An error
names the file (and the table it was building), so a failing night points at the SQL to read.
Line 1 of each file is a comment stating the grain of its result.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from pipelines.errors import CriError
from pipelines.resource_faults import describe as describe_fault
from pipelines.settings import SQL_DIR


class SqlError(CriError):
    """A statement of one of our SQL files failed."""


@cache
def sql_text(name: str) -> str:
    """The text of `sql/<name>.sql` (name like `link/claims`; `.sql` may be given)."""
    relative = name if name.endswith(".sql") else f"{name}.sql"
    return (SQL_DIR / relative).read_text(encoding="utf-8")


def statements(name: str) -> list[str]:
    """The statements of a script, split at a `;` that ends a line, comment lines dropped."""
    code = "\n".join(
        line for line in sql_text(name).splitlines() if not line.lstrip().startswith("--")
    )
    return [s.strip() for s in re.split(r";\s*\n", code + "\n") if s.strip(" \n;")]


def parameters_used(sql: str, parameters: dict[str, Any] | None) -> dict[str, Any]:
    """The `$name` parameters a statement refers to (DuckDB refuses unused ones)."""
    return {k: v for k, v in (parameters or {}).items() if re.search(rf"\${re.escape(k)}\b", sql)}


def _fail(name: str, exc: duckdb.Error, table: str | None = None) -> SqlError:
    """The error naming the file (and table); a fault of the machine (out of memory, disk
    full, a file limit) keeps its own line saying what to do, since the SQL is not at fault."""
    resource = describe_fault(exc)
    if resource is not None:
        return SqlError(resource)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    target = f" (building table {table})" if table else ""
    return SqlError(f"sql/{name.removesuffix('.sql')}.sql{target}: {first}")


def run_script(con: Any, name: str, parameters: dict[str, Any] | None = None) -> None:
    """Run every statement of a script file in order."""
    for statement in statements(name):
        used = parameters_used(statement, parameters)
        try:
            con.execute(statement, used) if used else con.execute(statement)
        except duckdb.Error as exc:
            raise _fail(name, exc) from exc


def create_table(
    con: Any,
    name: str,
    parameters: dict[str, Any] | None = None,
    *,
    table: str | None = None,
    temp: bool = False,
) -> str:
    """`create or replace table <table> as <sql/name.sql>`; the table is named after the file
    unless given. Returns the table's name."""
    table = table or name.rsplit("/", 1)[-1].removesuffix(".sql")
    sql = sql_text(name)
    kind = "temp table" if temp else "table"
    try:
        con.execute(f"create or replace {kind} {table} as {sql}", parameters_used(sql, parameters))
    except duckdb.Error as exc:
        raise _fail(name, exc, table) from exc
    return table


def create_tables(
    con: Any, stage: str, tables: tuple[str, ...] | list[str], parameters: dict | None = None
) -> None:
    """Each table of a stage from `sql/<stage>/<table>.sql`, in order."""
    for table in tables:
        create_table(con, f"{stage}/{table}", parameters)


def query(con: Any, name: str, parameters: dict[str, Any] | None = None) -> Any:
    """Run the query of `sql/<name>.sql` and return DuckDB's result (fetch from it)."""
    sql = sql_text(name)
    try:
        return con.execute(sql, parameters_used(sql, parameters))
    except duckdb.Error as exc:
        raise _fail(name, exc) from exc


def copy_to(
    con: Any,
    name: str,
    target: str | Path,
    parameters: dict[str, Any] | None = None,
    options: str = "(format parquet)",
) -> None:
    """Write the result of `sql/<name>.sql` to a file with the given COPY options (e.g.
    `pipelines.dialect.DUCKDB_COPY_CSV`); the default is Parquet as DuckDB writes it plainly.
    The options may bind parameters too (e.g. `kv_metadata {key: $value}`)."""
    sql = sql_text(name)
    try:
        con.execute(
            f"copy ({sql}) to '{str(target).replace(chr(39), chr(39) * 2)}' {options}",
            parameters_used(f"{sql}\n{options}", parameters),
        )
    except duckdb.Error as exc:
        raise _fail(name, exc) from exc


def relation(con: Any, name: str, parameters: dict[str, Any] | None = None) -> Any:
    """The query of `sql/<name>.sql` as a DuckDB relation, for `.pl()` (a Polars frame, which a
    plain result cannot give). Binding errors name the file; it runs when fetched."""
    sql = sql_text(name)
    try:
        return con.sql(sql, params=parameters_used(sql, parameters))
    except duckdb.Error as exc:
        raise _fail(name, exc) from exc


def parquet_view(
    con: Any, view: str, files: list, *, union_by_name: bool = False, filename: bool = False
) -> str:
    """A view `view` over Parquet files. DuckDB refuses bound parameters in a view and a path
    is never pasted into SQL text, so the relation API builds it; the files are read when the
    view is (a view, not a table: nothing is held twice in memory); `filename` adds each row's
    file as column `filename`. Returns the view's name."""
    try:
        con.read_parquet(
            [str(f) for f in files], union_by_name=union_by_name, filename=filename
        ).create_view(view)
    except duckdb.Error as exc:
        resource = describe_fault(exc)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SqlError(
            resource or f"{files[0] if files else view}: cannot be read as Parquet ({first})"
        ) from exc
    return view


def attach_read_only(con: Any, database: str | Path, alias: str) -> None:
    """Attach another DuckDB file read-only under `alias` (once per connection). ATTACH takes
    no bound parameters, so the path is quoted here."""
    path = "'" + str(database).replace("'", "''") + "'"
    con.execute(f"attach if not exists {path} as {alias} (read_only)")


def copy_query(
    con: Any, sql: str, target: str | Path, parameters: dict[str, Any] | None = None
) -> int:
    """Write the result of a query the contract compiler wrote to a Parquet file; returns the
    number of rows written."""
    path = "'" + str(target).replace("'", "''") + "'"
    try:
        return con.execute(f"copy ({sql}) to {path} (format parquet)", parameters).fetchall()[0][0]
    except duckdb.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SqlError(describe_fault(exc) or f"{target}: cannot be written ({first})") from exc


def copy_relation(relation: Any, target: str | Path) -> None:
    """Write a relation to a Parquet file."""
    try:
        relation.write_parquet(str(target))
    except duckdb.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SqlError(describe_fault(exc) or f"{target}: cannot be written ({first})") from exc


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def keep_columns(con: Any, table: str, columns: list[str]) -> None:
    """Make `table` hold exactly `columns`, in that order (a copy only when they differ)."""
    present = [row[0] for row in con.execute(f"describe {_quoted(table)}").fetchall()]
    if present != columns:
        select = ", ".join(_quoted(c) for c in columns)
        name = _quoted(table)
        con.execute(f"create or replace table {name} as select {select} from {name}")


def drop_object(
    con: Any, kind: str, name: str, database: str = "memory", schema: str = "main"
) -> None:
    """Drop a table or view by its full name (a registered Python object is unregistered),
    or detach an attached database."""
    if kind == "database":
        con.execute(f"detach {_quoted(name)}")
        return
    full = ".".join(_quoted(part) for part in (database, schema, name))
    if kind == "view":
        if database == "temp":
            con.unregister(name)  # a registered Arrow table or frame (no-op for a plain view)
        con.execute(f"drop view if exists {full}")
    else:
        con.execute(f"drop table if exists {full}")


def connect(database: str | Path = ":memory:") -> Any:
    """A DuckDB connection for a stage: no progress bar (the pipeline logs; a bar garbles the
    log of a night). DuckDB refuses this setting in `config`, so it is set once here."""
    con = duckdb.connect(str(database))
    con.execute("set enable_progress_bar = false")
    return con
