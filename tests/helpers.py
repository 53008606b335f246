"""Shared test helpers: valid BSNs, small raw extracts, keys in temporary folders."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import polars as pl

from privacy.bsn import ELFPROEF_WEIGHTS
from privacy.keys import KeyMaterial, new_key, write_key_file

EXTRACT_DATE = dt.date(2026, 11, 22)


def make_valid_bsn(rnd: random.Random) -> str:
    """A random BSN that passes the elfproef (9 digits, leading zeros possible)."""
    while True:
        digits = [rnd.randrange(10) for _ in range(8)]
        check = sum(w * d for w, d in zip(ELFPROEF_WEIGHTS[:8], digits, strict=True)) % 11
        if check < 10 and any(digits):
            return "".join(map(str, digits)) + str(check)


def linkage_key(folder: Path) -> tuple[KeyMaterial, Path]:
    key = new_key("linkage")
    path = write_key_file(key, Path(folder) / "linkage.key.json")
    return key, path


def raw_claims_frame(bsns: list[str | None], partner: str = "CJIB") -> pl.DataFrame:
    """A raw claims extract with one ordinary claim per given BSN text."""
    n = len(bsns)
    return pl.DataFrame(
        {
            "bsn": pl.Series(bsns, dtype=pl.String),
            "claim_ref": [f"{partner}-{i:06d}" for i in range(n)],
            "claim_type": ["WAHV"] * n,
            "imposed_cents": [30000] * n,
            "outstanding_cents": [30000] * n,
            "arrears_cents": [30000] * n,
            "arrears_since": [dt.date(2026, 1, 15)] * n,
            "stage": ["final_notice"] * n,
            "debt_assistance": [False] * n,
            "gemeente_code": ["GM0363"] * n,
        }
    )


def write_raw_csv(frame: pl.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path, separator=";", null_value="", date_format="%Y-%m-%d")
    return path
