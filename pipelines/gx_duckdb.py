"""Make Great Expectations 1.24 evaluate expectations on DuckDB (via duckdb-engine).

Known defect (GX issues #10738, #11579): GX opens a connection per query, and with duckdb-engine
the result rows are fetched after that connection is released, so every metric comes back empty
and every expectation "fails" with the real cause hidden in `exception_info`. GX already keeps one
connection open for SQLite and SQL Server (`_PERSISTED_CONNECTION_DIALECTS`); registering DuckDB
there fixes it. `tests/test_gx_duckdb.py` pins both facts: the defect still exists without this
shim, and the shim makes it work. When GX fixes the defect the first test fails: remove the shim.
"""

from __future__ import annotations

from typing import Any

from great_expectations.execution_engine import sqlalchemy_execution_engine as _engine_module

DUCKDB_DIALECT = "duckdb"


class _DialectName(str):
    """A dialect name that behaves like a `GXSqlDialect` member where GX compares it."""

    @property
    def value(self) -> str:
        return str(self)


def duckdb_keeps_connection() -> bool:
    """True when GX treats DuckDB as a dialect with one persisted connection."""
    return any(d == DUCKDB_DIALECT for d in _engine_module._PERSISTED_CONNECTION_DIALECTS)


def enable_duckdb_persisted_connection() -> None:
    """Register DuckDB as a persisted-connection dialect (idempotent)."""
    if not duckdb_keeps_connection():
        _engine_module._PERSISTED_CONNECTION_DIALECTS = (
            *_engine_module._PERSISTED_CONNECTION_DIALECTS,
            _DialectName(DUCKDB_DIALECT),
        )


def disable_duckdb_persisted_connection() -> None:
    """Undo the shim (used by the test that proves the defect still exists)."""
    _engine_module._PERSISTED_CONNECTION_DIALECTS = tuple(
        d for d in _engine_module._PERSISTED_CONNECTION_DIALECTS if d != DUCKDB_DIALECT
    )


def release_datasource(datasource: Any) -> None:
    """Close every DuckDB connection a GX SQL datasource holds.

    Two engines hold the file open: the execution engine, whose persisted connection GX's
    `close()` leaves checked out, and the datasource's own engine (used to inspect tables).
    Until both are closed DuckDB keeps the database file open, and this process cannot reopen it
    with another configuration (e.g. read-only).
    """
    execution_engine = datasource.get_execution_engine()
    connection = getattr(execution_engine, "_connection", None)
    if connection is not None:
        connection.close()
        execution_engine._connection = None
    execution_engine.close()
    datasource.get_engine().dispose()
