"""Partner side: turn one raw extract (with BSNs) into a landing dataset (data file + manifest).

Every partner runs this same code, so every partner hashes identically. Raw extracts never leave
the partner: the output holds `person_pseudonym` in place of `bsn`, rows whose BSN is invalid go
to a reject file with line number and reason only (never the value), and the manifest is written
last, so a half-written delivery has no manifest and is never picked up.

Speed: the raw file is read by Polars (ordered, so line numbers are exact) and the check plus the
HMAC run as one DuckDB query over it on all cores; see `privacy.hashing` for why that is safe.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from pipelines import records
from pipelines.contracts import PARTNER_DATASETS, Contract, current_contract
from pipelines.dialect import DUCKDB_COPY_CSV, QUOTE, SEPARATOR
from pipelines.errors import CriError
from pipelines.fileio import (
    replace_atomically,
    sha256_file,
    temporary_sibling,
    write_json_atomically,
)
from pipelines.reference import partner_codes
from pipelines.sql import copy_to, create_table, query, run_script
from privacy.hashing import hmac_sql_parameters
from privacy.keys import KeyMaterial

log = logging.getLogger(__name__)

FORMATS = ("csv", "parquet")
PSEUDONYM_COLUMN = "person_pseudonym"
BSN_COLUMN = "bsn"


class PseudonymiseError(CriError):
    """The raw extract cannot be turned into a delivery; the message names file, rule and remedy."""


@dataclass(frozen=True)
class PseudonymiseResult:
    """What one run of the partner tool wrote."""

    dataset: str
    partner: str
    data_path: Path
    manifest_path: Path
    rows_written: int
    rows_rejected: int
    reject_path: Path | None
    rejected_by_reason: dict[str, int] = field(default_factory=dict)


def dataset_of(path: Path) -> tuple[str, str]:
    """(dataset, format) from a file name such as `claims.csv` or `income.parquet`."""
    stem, _, suffix = Path(path).name.partition(".")
    if stem not in PARTNER_DATASETS or suffix not in FORMATS:
        raise PseudonymiseError(
            f"{path}: cannot tell the dataset from the file name; name it "
            f"{' or '.join(f'{d}.csv/.parquet' for d in PARTNER_DATASETS)}"
        )
    return stem, suffix


def reject_name(dataset: str) -> str:
    return f"{dataset}.rejects.csv"


def _allowed_partners(contract: Contract) -> tuple[str, ...]:
    listed = contract.custom_property("partners")
    return tuple(listed) if listed else partner_codes()


def _read_raw(path: Path, fmt: str, raw_columns: list[str]) -> pl.DataFrame:
    """Read the raw extract in file order. CSV values stay text: the tool only swaps the BSN and
    must not reformat the partner's amounts or dates."""
    try:
        if fmt == "csv":
            frame = pl.read_csv(
                path,
                separator=SEPARATOR,
                quote_char=QUOTE,
                infer_schema=False,
                encoding="utf8",
            )
        else:
            frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise PseudonymiseError(
            f"{path}: cannot be read as {fmt} ({str(exc).splitlines()[0][:160]})"
        ) from None
    # A BOM on the first header is allowed by the dialect.
    frame = frame.rename({frame.columns[0]: frame.columns[0].lstrip("\ufeff")})
    missing = [c for c in raw_columns if c not in frame.columns]
    extra = [c for c in frame.columns if c not in raw_columns]
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if extra:
            problems.append(f"unexpected column(s) {', '.join(extra)}")
        raise PseudonymiseError(
            f"{path}: {'; '.join(problems)}; a raw extract has exactly the contract's columns "
            f"with '{BSN_COLUMN}' in place of '{PSEUDONYM_COLUMN}'"
        )
    return frame.select(raw_columns).with_columns(pl.col(BSN_COLUMN).cast(pl.String))


def pseudonymise_extract(
    raw_path: Path,
    out_dir: Path,
    *,
    key: KeyMaterial,
    partner: str,
    extract_date: dt.date,
) -> PseudonymiseResult:
    """Hash the BSNs of one raw extract and write `<out_dir>/<dataset>.<fmt>` plus its manifest.

    Args:
        raw_path: `claims.csv|parquet` or `income.csv|parquet` with a `bsn` column.
        out_dir: the partner's folder of the delivery, e.g. `landing/2026-11-22/CJIB`.
        key: the partners' linkage key (purpose `linkage`).
        partner: partner code; checked against the reference list and the contract.
        extract_date: the extract date written into the manifest.

    Returns:
        What was written, with counts of accepted and rejected rows.
    """
    raw_path, out_dir = Path(raw_path), Path(out_dir)
    if key.purpose != "linkage":
        raise PseudonymiseError("pseudonymise needs the linkage key (purpose 'linkage')")
    dataset, fmt = dataset_of(raw_path)
    contract = current_contract(dataset)
    if partner not in partner_codes():
        raise PseudonymiseError(
            f"unknown partner {partner!r}: use one of {', '.join(partner_codes())}"
        )
    if partner not in _allowed_partners(contract):
        raise PseudonymiseError(
            f"{raw_path}: partner {partner} does not deliver {dataset} "
            f"(only {', '.join(_allowed_partners(contract))})"
        )
    raw_columns = [BSN_COLUMN if c == PSEUDONYM_COLUMN else c for c in contract.columns]
    frame = _read_raw(raw_path, fmt, raw_columns).with_row_index("source_row", offset=1)
    log.info("read %s rows from %s", frame.height, raw_path.name)

    out_dir.mkdir(parents=True, exist_ok=True)
    data_path = out_dir / f"{dataset}.{fmt}"
    reject_path = out_dir / reject_name(dataset)
    manifest_path = records.manifest_path(out_dir, dataset)
    # An earlier manifest must not describe the new data during the rewrite.
    manifest_path.unlink(missing_ok=True)

    with duckdb.connect() as con:
        con.register("raw_extract", frame)
        run_script(con, "privacy/bsn_macros")
        create_table(
            con,
            "partner/pseudonymised_extract",
            hmac_sql_parameters(key.secret),
            table="pseudonymised",
            temp=True,
        )
        del frame
        rows_written, by_reason = _write_rows(con, fmt, data_path, reject_path)
    rows_rejected = sum(by_reason.values())

    manifest = {
        "contract": contract.name,
        "contract_version": contract.version,
        "partner": partner,
        "extract_date": extract_date.isoformat(),
        "key_id": key.key_id,
        "file": data_path.name,
        "sha256": sha256_file(data_path),
        "row_count": rows_written,
    }
    write_json_atomically(manifest_path, manifest)
    log.info(
        "%s %s: wrote %s rows, rejected %s invalid BSNs",
        partner,
        dataset,
        rows_written,
        rows_rejected,
    )
    return PseudonymiseResult(
        dataset=dataset,
        partner=partner,
        data_path=data_path,
        manifest_path=manifest_path,
        rows_written=rows_written,
        rows_rejected=rows_rejected,
        reject_path=reject_path if rows_rejected else None,
        rejected_by_reason=by_reason,
    )


def _write_rows(
    con: duckdb.DuckDBPyConnection, fmt: str, data_path: Path, reject_path: Path
) -> tuple[int, dict[str, int]]:
    """Write the accepted rows (the delivery's data file, in `fmt`) and, if any row was
    rejected, the reject file (line and reason, never the value); each file atomically.
    Returns the accepted count and the rejected count per reason."""
    temporary = temporary_sibling(data_path)
    copy_options = DUCKDB_COPY_CSV if fmt == "csv" else "(format parquet)"
    copy_to(con, "partner/accepted_rows", temporary, options=copy_options)
    replace_atomically(temporary, data_path)
    rows_written = query(con, "partner/accepted_count").fetchone()[0]
    by_reason = dict(query(con, "partner/rejections_by_reason").fetchall())
    if not by_reason:
        reject_path.unlink(missing_ok=True)
        return rows_written, by_reason
    # CSV: line 1 is the header, so data row n sits on line n + 1. Parquet: the row number.
    line_offset = 1 if fmt == "csv" else 0
    temporary = temporary_sibling(reject_path)
    copy_to(con, "partner/rejected_rows", temporary, {"line_offset": line_offset}, DUCKDB_COPY_CSV)
    replace_atomically(temporary, reject_path)
    return rows_written, by_reason
