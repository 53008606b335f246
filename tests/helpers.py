"""Shared test helpers: valid BSNs, small raw extracts, keys in temporary folders."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
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


def pseudonym_of(name: str) -> str:
    """A stable fake linkage pseudonym for a hand-worked person ("P1", "P2", ...)."""

    return hashlib.sha256(f"test-person-{name}".encode()).hexdigest()


CLAIM_DEFAULTS = {
    "claim_type": None,
    "imposed_cents": 50000,
    "outstanding_cents": 50000,
    "arrears_cents": 50000,
    "arrears_since": "2026-01-15",
    "stage": "final_notice",
    "debt_assistance": "false",
    "gemeente_code": "GM0363",
}
FIRST_CLAIM_TYPE = {
    "BD": "INKOMSTENBELASTING",
    "TSL": "TERUGVORDERING_ZORGTOESLAG",
    "CJIB": "WAHV",
    "CAK": "EIGEN_BIJDRAGE_WMO",
    "DUO": "STUDIESCHULD",
    "RVO": "TERUGVORDERING_SUBSIDIE",
    "SVB": "TERUGVORDERING_AOW",
    "UWV": "TERUGVORDERING_WW",
}


def write_claims_delivery(landing: Path, date: dt.date, partner: str, claims: list[dict]) -> Path:
    """A hand-made claims delivery (CSV + manifest) for `partner` on `date`.

    Each claim is a dict with at least `person` (a name for `pseudonym_of`); other columns
    default to CLAIM_DEFAULTS. Set arrears_cents to 0 and arrears_since to "" for no arrears.
    """
    folder = Path(landing) / date.isoformat() / partner
    folder.mkdir(parents=True, exist_ok=True)
    header = ["person_pseudonym", "claim_ref", *CLAIM_DEFAULTS]
    lines = [";".join(header)]
    for index, claim in enumerate(claims, start=1):
        row = {**CLAIM_DEFAULTS, "claim_type": FIRST_CLAIM_TYPE[partner], **claim}
        row["person_pseudonym"] = pseudonym_of(row.pop("person"))
        row["claim_ref"] = row.get("claim_ref", f"{partner}-{date:%Y%m%d}-{index}")
        lines.append(";".join(str(row[column]) for column in header))
    return _deliver(folder, "claims", partner, date, lines)


def hub_key_file(folder: Path) -> Path:
    """A hub key file in a test folder."""
    return write_key_file(new_key("hub"), Path(folder) / "hub.key.json")


def write_income_delivery(landing: Path, date: dt.date, rows: list[dict]) -> Path:
    """A hand-made TSL income delivery: rows with `person`, `net_income_cents` and optionally
    `household_type` (default single)."""
    folder = Path(landing) / date.isoformat() / "TSL"
    folder.mkdir(parents=True, exist_ok=True)
    month = date.replace(day=1).isoformat()
    lines = ["person_pseudonym;household_type;net_income_cents;income_month"]
    lines += [
        f"{pseudonym_of(r['person'])};{r.get('household_type', 'single')};"
        f"{r['net_income_cents']};{month}"
        for r in rows
    ]
    return _deliver(folder, "income", "TSL", date, lines)


def write_identities_delivery(
    landing: Path, date: dt.date, partner: str, rows: list[dict], certs: Path
) -> Path:
    """A hand-made identities delivery, sealed with real cryptography as the partner tool seals
    (privacy.sealing): rows with `person`, `bsn` (9 digits) and `gemeente_code` (default
    GM0363); one key file per gemeente to `certs/<GM>.crt`."""
    from privacy.cms import load_certificate
    from privacy.sealing import (
        associated_data,
        key_file,
        new_identity_key,
        seal_identities,
        wrap_key,
    )

    folder = Path(landing) / date.isoformat() / partner
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["person_pseudonym;gemeente_code;identity_sealed"]
    digests = {}
    by_gemeente: dict[str, list[dict]] = {}
    for row in rows:
        by_gemeente.setdefault(row.get("gemeente_code", "GM0363"), []).append(row)
    for gemeente, members in sorted(by_gemeente.items()):
        key = new_identity_key()
        sealed = seal_identities(
            key, [r["bsn"] for r in members], associated_data(partner, date, gemeente)
        )
        lines += [
            f"{pseudonym_of(r['person'])};{gemeente};{value}"
            for r, value in zip(members, sealed, strict=True)
        ]
        path = key_file(folder, gemeente)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(wrap_key(key, load_certificate(Path(certs) / f"{gemeente}.crt")))
        digests[gemeente] = hashlib.sha256(path.read_bytes()).hexdigest()
    _deliver(folder, "identities", partner, date, lines)
    manifest_file = folder / "identities.manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["identity_keys"] = digests
    manifest_file.write_text(json.dumps(manifest))
    return folder


def _deliver(folder: Path, dataset: str, partner: str, date: dt.date, lines: list[str]) -> Path:
    """Write the CSV lines (header first) and a manifest an honest partner tool would write."""
    data = folder / f"{dataset}.csv"
    data.write_text("\n".join(lines) + "\n")
    manifest = {
        "contract": dataset,
        "contract_version": "1.0.0",
        "partner": partner,
        "extract_date": date.isoformat(),
        "key_id": "link-test",
        "file": data.name,
        "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
        "row_count": len(lines) - 1,
    }
    (folder / f"{dataset}.manifest.json").write_text(json.dumps(manifest))
    return folder


def deliver_empty_extracts(landing: Path, date: dt.date) -> None:
    """Every partner that has no claims delivery for `date` delivers an empty one (no open
    claims), and TSL an empty income file if it has none: a complete night, so that no partner
    is "missing" (which would withhold the signal files, interfaces.md section 3)."""
    for partner in FIRST_CLAIM_TYPE:
        if not (Path(landing) / date.isoformat() / partner / "claims.manifest.json").exists():
            write_claims_delivery(landing, date, partner, [])
    if not (Path(landing) / date.isoformat() / "TSL" / "income.manifest.json").exists():
        write_income_delivery(landing, date, [])
