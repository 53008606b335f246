"""Where things live: project folders (SQL, contracts, reference data) and the user's data dir.

The data directory defaults to `./data` and moves with `--data-dir` or `CRI_DATA_DIR`, as
`interfaces.md` section 4 promises; both the CLI and the DAG resolve it here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pipelines.layout import Layout

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = PROJECT_ROOT / "sql"
CONTRACTS_DIR = PROJECT_ROOT / "data_contracts"
REFERENCE_DIR = CONTRACTS_DIR / "reference"

DATA_DIR_ENV = "CRI_DATA_DIR"
LANDING_DIR_ENV = "CRI_LANDING_DIR"
HUB_KEY_ENV = "CRI_HUB_KEY_FILE"
CERTS_ENV = "CRI_CERTS_DIR"
# DuckDB's memory limit for the checks of a delivery (e.g. `4GB`); DuckDB's default when unset.
MEMORY_LIMIT_ENV = "CRI_DUCKDB_MEMORY_LIMIT"


def data_dir(explicit: Path | None = None) -> Path:
    """The hub's data directory: explicit argument, else `CRI_DATA_DIR`, else `./data`."""
    if explicit is not None:
        return Path(explicit)
    return Path(os.environ.get(DATA_DIR_ENV) or "data")


def landing_dir(explicit: Path | None, data: Path) -> Path:
    """The landing zone: explicit argument, else `CRI_LANDING_DIR`, else `<data>/landing`."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(LANDING_DIR_ENV)
    return Path(env) if env else Path(data) / "landing"


@cache
def sql_text(relative: str) -> str:
    """The text of one SQL file under `sql/`, e.g. `partner/pseudonymised_extract.sql`."""
    return (SQL_DIR / relative).read_text(encoding="utf-8")


def sql_statements(relative: str) -> list[str]:
    """The statements of a SQL file, split at a `;` that ends a line, without comment lines."""
    code = "\n".join(
        line for line in sql_text(relative).splitlines() if not line.lstrip().startswith("--")
    )
    return [s.strip() for s in re.split(r";\s*\n", code + "\n") if s.strip(" \n;")]


def execute_sql_file(con: Any, relative: str, parameters: dict[str, Any] | None = None) -> None:
    """Run every statement of a SQL file, binding to each only the `$name` parameters it uses
    (DuckDB binds parameters for one statement at a time)."""
    for statement in sql_statements(relative):
        used = parameters_used(statement, parameters)
        con.execute(statement, used) if used else con.execute(statement)


def parameters_used(sql: str, parameters: dict[str, Any] | None) -> dict[str, Any]:
    """The `$name` parameters a statement refers to: DuckDB refuses unused ones."""
    return {k: v for k, v in (parameters or {}).items() if f"${k}" in sql}


def create_stage_tables(
    con: Any, stage: str, tables: Iterable[str], parameters: dict[str, Any] | None = None
) -> None:
    """Create each table from `sql/<stage>/<table>.sql` (one select per file), in order."""
    for table in tables:
        sql = sql_text(f"{stage}/{table}.sql")
        con.execute(f"create or replace table {table} as {sql}", parameters_used(sql, parameters))


@dataclass(frozen=True)
class Settings:
    """What a run needs to know, resolved once: explicit values (CLI options, DAG params) first,
    then the environment, then the defaults. The CLI and the DAG both build one with `resolve`."""

    data_dir: Path
    landing: Path
    hub_key_file: Path | None
    certs: Path
    workers: int = 1

    @classmethod
    def resolve(
        cls,
        *,
        data_dir: Path | str | None = None,
        landing_dir: Path | str | None = None,
        hub_key_file: Path | str | None = None,
        certs_dir: Path | str | None = None,
        workers: int | None = None,
    ) -> Settings:
        """`CRI_DATA_DIR` (default `./data`), `CRI_LANDING_DIR` (default `<data>/landing`),
        `CRI_HUB_KEY_FILE` (no default: a key is never made up), `CRI_CERTS_DIR` (default
        `<data>/certs`); an empty value counts as not given."""
        data = Path(data_dir or os.environ.get(DATA_DIR_ENV) or "data")
        landing = landing_dir or os.environ.get(LANDING_DIR_ENV)
        key = hub_key_file or os.environ.get(HUB_KEY_ENV)
        certs = certs_dir or os.environ.get(CERTS_ENV)
        return cls(
            data_dir=data,
            landing=Path(landing) if landing else Layout(data).landing,
            hub_key_file=Path(key) if key else None,
            certs=Path(certs) if certs else Layout(data).certs,
            workers=workers or 1,
        )

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> Settings:
        """From the DAG's params (`data_dir`, `landing_dir`, `hub_key_file`, `certs_dir`)."""
        given = params or {}
        return cls.resolve(
            data_dir=given.get("data_dir"),
            landing_dir=given.get("landing_dir"),
            hub_key_file=given.get("hub_key_file"),
            certs_dir=given.get("certs_dir"),
        )

    @property
    def layout(self) -> Layout:
        return Layout(self.data_dir, self.landing)
