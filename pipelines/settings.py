"""Where things live: project folders (SQL, contracts, reference data) and the user's data dir.

The data directory defaults to `./data` and moves with `--data-dir` or `CRI_DATA_DIR`, as
`interfaces.md` section 4 promises; both the CLI and the DAG resolve it here.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = PROJECT_ROOT / "sql"
CONTRACTS_DIR = PROJECT_ROOT / "data_contracts"
REFERENCE_DIR = CONTRACTS_DIR / "reference"

DATA_DIR_ENV = "CRI_DATA_DIR"
LANDING_DIR_ENV = "CRI_LANDING_DIR"
HUB_KEY_ENV = "CRI_HUB_KEY_FILE"


def data_dir(explicit: Path | None = None) -> Path:
    """The hub's data directory: explicit argument, else `CRI_DATA_DIR`, else `./data`."""
    if explicit is not None:
        return Path(explicit)
    return Path(os.environ.get(DATA_DIR_ENV) or "data")


@cache
def sql_text(relative: str) -> str:
    """The text of one SQL file under `sql/`, e.g. `partner/pseudonymised_extract.sql`."""
    return (SQL_DIR / relative).read_text(encoding="utf-8")
