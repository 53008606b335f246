"""Where things live: project folders (SQL, contracts, reference data) and the user's data dir.

The data directory defaults to `./data` and moves with `--data-dir` or `CRI_DATA_DIR`, as
`interfaces.md` section 4 promises; both the CLI and the DAG resolve it here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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
