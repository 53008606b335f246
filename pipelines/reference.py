"""Reference data (partners, claim types, gemeenten, bijstandsnormen), read from
`data_contracts/reference/` so each fact lives in exactly one file."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

from pipelines.settings import REFERENCE_DIR


def _rows(name: str) -> list[dict[str, str]]:
    path: Path = REFERENCE_DIR / name
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@cache
def partner_codes() -> tuple[str, ...]:
    """The eight CRI partner codes, in the order of `partners.csv`."""
    return tuple(row["partner"] for row in _rows("partners.csv"))


@cache
def claim_types() -> dict[str, tuple[str, ...]]:
    """Claim types per partner."""
    result: dict[str, list[str]] = {code: [] for code in partner_codes()}
    for row in _rows("claim_types.csv"):
        result[row["partner"]].append(row["claim_type"])
    return {partner: tuple(types) for partner, types in result.items()}


@cache
def gemeenten() -> tuple[tuple[str, str, int], ...]:
    """(gemeente_code, name, population) for every gemeente on the reference date."""
    return tuple(
        (row["gemeente_code"], row["name"], int(row["population"]))
        for row in _rows("gemeenten.csv")
    )


def reference_csv(name: str) -> Path:
    """Path of a reference file, for SQL that reads it directly."""
    return REFERENCE_DIR / name
