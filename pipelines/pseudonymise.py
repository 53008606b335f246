"""Partner side: turn one raw extract (with BSNs) into a landing dataset (data file + manifest).

Every partner runs this same code, so every partner hashes identically. Raw extracts never leave
the partner: the output holds `person_pseudonym` in place of `bsn`, rows whose BSN is invalid go
to a reject file with line number and reason only (never the value), and the manifest is written
last, so a half-written delivery has no manifest and is never picked up.

Speed: the raw file is read by Polars (ordered, so line numbers are exact) and the check plus the
HMAC run as one DuckDB query over it on all cores; see `privacy.hashing` for why that is safe.

Sealed identities (interfaces.md section 3): given the gemeenten's certificates, a claims extract
also yields the `identities` dataset, each accepted person's BSN sealed for the gemeente of the
claim (`privacy.sealing`), so a gemeente can find a person it is signalled about while the hub
stays blind. The BSNs are taken from the same DuckDB tables the hashing used, grouped by gemeente
and sealed one gemeente per call (the per-value AES-GCM is the only per-row Python).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
from cryptography import x509

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
from pipelines.sql import copy_to, create_table, query, relation, run_script
from privacy.cms import CmsError, load_certificate
from privacy.hashing import hmac_sql_parameters
from privacy.keys import KeyMaterial
from privacy.sealing import (
    KEYS_FOLDER,
    associated_data,
    key_file,
    new_identity_key,
    seal_identities,
    wrap_key,
)

log = logging.getLogger(__name__)

FORMATS = ("csv", "parquet")
PSEUDONYM_COLUMN = "person_pseudonym"
BSN_COLUMN = "bsn"
# The identities dataset is written by this tool, from a claims extract (the only dataset with a
# gemeente); a raw extract is never called identities.
IDENTITIES = "identities"
IDENTITIES_SOURCE = "claims"
RAW_DATASETS = tuple(d for d in PARTNER_DATASETS if d != IDENTITIES)
IDENTITY_COLUMNS = ["person_pseudonym", "gemeente_code", "identity_sealed"]
CERTIFICATE_SUFFIX = ".crt"
# Only a code of this form is looked up as a file name (no path tricks from the extract's data).
GEMEENTE_CODE = re.compile(r"^GM[0-9]{4}$")
MISSING_EXAMPLES = 5


class PseudonymiseError(CriError):
    """The raw extract cannot be turned into a delivery; the message names file, rule and remedy."""


@dataclass(frozen=True)
class IdentitiesResult:
    """What the partner tool wrote of the identities dataset (counts and paths, never a value)."""

    rows: int
    gemeenten: int
    data_path: Path
    manifest_path: Path
    gemeenten_without_certificate: tuple[str, ...] = ()


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
    identities: IdentitiesResult | None = None


@dataclass(frozen=True)
class _SealingPlan:
    """Per gemeente of the extract: its fresh key and that key wrapped to its certificate, made
    before anything is written so that a bad certificate fails the run with nothing new out."""

    keys: dict[str, bytes]
    wrapped: dict[str, bytes]
    persons: dict[str, int]
    without_certificate: dict[str, int]


def dataset_of(path: Path) -> tuple[str, str]:
    """(dataset, format) from a file name such as `claims.csv` or `income.parquet`.

    Only raw extracts are accepted (`claims`, `income`): the identities dataset is an output of
    this tool, so a file named `identities.*` is refused rather than hashed as something else."""
    stem, _, suffix = Path(path).name.partition(".")
    if stem not in RAW_DATASETS or suffix not in FORMATS:
        why = (
            "the identities dataset is written by this tool from a claims extract "
            "(--gemeente-certs)"
            if stem == IDENTITIES
            else "cannot tell the dataset from the file name"
        )
        raise PseudonymiseError(
            f"{path}: {why}; name the raw extract "
            f"{' or '.join(f'{d}.csv/.parquet' for d in RAW_DATASETS)}"
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
    gemeente_certs: Path | None = None,
) -> PseudonymiseResult:
    """Hash the BSNs of one raw extract and write `<out_dir>/<dataset>.<fmt>` plus its manifest.

    Args:
        raw_path: `claims.csv|parquet` or `income.csv|parquet` with a `bsn` column.
        out_dir: the partner's folder of the delivery, e.g. `landing/2026-11-22/CJIB`.
        key: the partners' linkage key (purpose `linkage`).
        partner: partner code; checked against the reference list and the contract.
        extract_date: the extract date written into the manifest.
        gemeente_certs: a folder of gemeente certificates `<GMxxxx>.crt`; with a claims extract
            the identities dataset is written too (`identities.<fmt>`, its manifest and
            `identity-keys/`). Without it, a claims run removes an earlier identities dataset
            from `out_dir`, so stale identities never travel with new claims.

    Returns:
        What was written, with counts of accepted and rejected rows (and of identities).
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
    certs_dir = _certificates_folder(gemeente_certs, dataset)
    raw_columns = [BSN_COLUMN if c == PSEUDONYM_COLUMN else c for c in contract.columns]
    frame = _read_raw(raw_path, fmt, raw_columns).with_row_index("source_row", offset=1)
    log.info("read %s rows from %s", frame.height, raw_path.name)

    out_dir.mkdir(parents=True, exist_ok=True)
    data_path = out_dir / f"{dataset}.{fmt}"
    reject_path = out_dir / reject_name(dataset)
    manifest_path = records.manifest_path(out_dir, dataset)
    # An earlier manifest must not describe the new data during the rewrite; nor may an
    # earlier identities manifest stand beside new claims.
    manifest_path.unlink(missing_ok=True)
    if dataset == IDENTITIES_SOURCE:
        records.manifest_path(out_dir, IDENTITIES).unlink(missing_ok=True)

    identities = None
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
        plan = _plan_sealing(con, certs_dir) if certs_dir is not None else None
        rows_written, by_reason = _write_rows(con, fmt, data_path, reject_path)
        write_json_atomically(
            manifest_path,
            _manifest(contract, partner, extract_date, key, data_path, rows_written),
        )
        rows_rejected = sum(by_reason.values())
        log.info(
            "%s %s: wrote %s rows, rejected %s invalid BSNs",
            partner,
            dataset,
            rows_written,
            rows_rejected,
        )
        if plan is not None:
            identities = _write_identities(
                con, plan, out_dir, fmt, key=key, partner=partner, extract_date=extract_date
            )
        elif dataset == IDENTITIES_SOURCE:
            _remove_identities(out_dir)
    return PseudonymiseResult(
        dataset=dataset,
        partner=partner,
        data_path=data_path,
        manifest_path=manifest_path,
        rows_written=rows_written,
        rows_rejected=rows_rejected,
        reject_path=reject_path if rows_rejected else None,
        rejected_by_reason=by_reason,
        identities=identities,
    )


def _manifest(
    contract: Contract,
    partner: str,
    extract_date: dt.date,
    key: KeyMaterial,
    data_path: Path,
    row_count: int,
) -> dict[str, object]:
    """The manifest of one data file (interfaces.md section 3); its sha256 read back from disk."""
    return {
        "contract": contract.name,
        "contract_version": contract.version,
        "partner": partner,
        "extract_date": extract_date.isoformat(),
        "key_id": key.key_id,
        "file": data_path.name,
        "sha256": sha256_file(data_path),
        "row_count": row_count,
    }


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


def _certificates_folder(gemeente_certs: Path | None, dataset: str) -> Path | None:
    """The folder of gemeente certificates to seal for, or None when nothing is to be sealed.

    Checked before the raw extract is read, so a mistyped folder fails at once, in one line."""
    if gemeente_certs is None:
        return None
    if dataset != IDENTITIES_SOURCE:
        log.info(
            "gemeente certificates given with a %s extract: nothing sealed; sealed identities "
            "come from %s extracts (the dataset with a gemeente per row)",
            dataset,
            IDENTITIES_SOURCE,
        )
        return None
    folder = Path(gemeente_certs)
    if not folder.is_dir():
        raise PseudonymiseError(
            f"{folder}: no such folder of gemeente certificates; give the folder that holds "
            f"<GMxxxx>{CERTIFICATE_SUFFIX} (PEM) for the gemeenten of the extract"
        )
    return folder


def _plan_sealing(con: duckdb.DuckDBPyConnection, certs_dir: Path) -> _SealingPlan:
    """Load the certificate of every gemeente of the accepted rows, draw its fresh key and wrap
    it; gemeenten without a certificate are counted and warned about in one line (their people
    are still delivered in claims, without a sealed identity)."""
    persons = dict(query(con, "partner/identity_gemeenten").fetchall())
    keys: dict[str, bytes] = {}
    wrapped: dict[str, bytes] = {}
    without: dict[str, int] = {}
    for code, count in persons.items():
        path = certs_dir / f"{code}{CERTIFICATE_SUFFIX}"
        if not GEMEENTE_CODE.match(code) or not path.exists():
            without[code] = count
            continue
        try:
            certificate: x509.Certificate = load_certificate(path)
        except CmsError:
            raise PseudonymiseError(
                f"{path}: not a readable PEM certificate; replace it with gemeente {code}'s "
                "certificate (PEM) or remove it"
            ) from None
        key = new_identity_key()
        try:
            wrapped[code] = wrap_key(key, certificate)
        except (TypeError, ValueError):
            raise PseudonymiseError(
                f"{path}: cannot encrypt a key to this certificate (an RSA certificate for "
                "key encipherment is needed)"
            ) from None
        keys[code] = key
    if without:
        codes = sorted(without)
        more = f" and {len(codes) - MISSING_EXAMPLES} more" if len(codes) > MISSING_EXAMPLES else ""
        log.warning(
            "sealed identities: %s of the extract (%s persons) without a certificate "
            "in %s, so those persons get no sealed identity (they are still in claims): %s%s; "
            "to seal for them, put %s/<GMxxxx>%s",
            f"{len(codes)} gemeente" if len(codes) == 1 else f"{len(codes)} gemeenten",
            sum(without.values()),
            certs_dir,
            ", ".join(codes[:MISSING_EXAMPLES]),
            more,
            certs_dir,
            CERTIFICATE_SUFFIX,
        )
    return _SealingPlan(keys=keys, wrapped=wrapped, persons=persons, without_certificate=without)


def _write_identities(
    con: duckdb.DuckDBPyConnection,
    plan: _SealingPlan,
    out_dir: Path,
    fmt: str,
    *,
    key: KeyMaterial,
    partner: str,
    extract_date: dt.date,
) -> IdentitiesResult:
    """Write the identities dataset in the order that keeps a half-written one from being picked
    up: (old manifest already gone) key files swapped in, data file renamed into place, the
    manifest last, listing the sha256 of every key file."""
    contract = current_contract(IDENTITIES)
    if contract.columns != IDENTITY_COLUMNS:
        raise PseudonymiseError(
            f"{contract.path.name}: columns {', '.join(contract.columns)} differ from what the "
            f"partner tool writes ({', '.join(IDENTITY_COLUMNS)}); update pipelines/pseudonymise.py"
        )
    data_path = out_dir / f"{IDENTITIES}.{fmt}"
    manifest_path = records.manifest_path(out_dir, IDENTITIES)
    manifest_path.unlink(missing_ok=True)
    for other in FORMATS:
        if other != fmt:
            (out_dir / f"{IDENTITIES}.{other}").unlink(missing_ok=True)

    _install_key_files(out_dir, plan.wrapped)
    sealed = _seal(con, plan, partner, extract_date)
    con.register("identities_sealed", sealed)
    temporary = temporary_sibling(data_path)
    copy_to(
        con,
        "partner/identities_rows",
        temporary,
        options=DUCKDB_COPY_CSV if fmt == "csv" else "(format parquet)",
    )
    replace_atomically(temporary, data_path)
    con.unregister("identities_sealed")

    manifest = _manifest(contract, partner, extract_date, key, data_path, sealed.num_rows)
    manifest["identity_keys"] = {
        code: hashlib.sha256(plan.wrapped[code]).hexdigest() for code in sorted(plan.wrapped)
    }
    write_json_atomically(manifest_path, manifest)
    log.info(
        "%s %s: sealed %s identities for %s gemeenten",
        partner,
        IDENTITIES,
        sealed.num_rows,
        len(plan.wrapped),
    )
    return IdentitiesResult(
        rows=sealed.num_rows,
        gemeenten=len(plan.wrapped),
        data_path=data_path,
        manifest_path=manifest_path,
        gemeenten_without_certificate=tuple(sorted(plan.without_certificate)),
    )


def _seal(
    con: duckdb.DuckDBPyConnection, plan: _SealingPlan, partner: str, extract_date: dt.date
) -> pa.Table:
    """(person_pseudonym, gemeente_code, identity_sealed) for every gemeente with a key.

    One query returns the BSNs ordered by gemeente (Arrow, columnar); each gemeente's run of
    rows is sealed in one call, so the only per-row Python is the AES-GCM itself. The BSNs
    live only in that Arrow table and the per-gemeente list, both dropped on return."""
    table = relation(con, "partner/identity_bsns").to_arrow_table()
    pieces = []
    offset = 0
    for code, count in plan.persons.items():
        part = table.slice(offset, count)
        offset += count
        codes = part.column("gemeente_code")
        if count and not (codes[0].as_py() == code == codes[count - 1].as_py()):
            raise RuntimeError(f"identity rows of {code} are not where the counts put them")
        if code not in plan.keys:
            continue
        values = seal_identities(
            plan.keys[code],
            part.column("bsn9").to_pylist(),
            associated_data(partner, extract_date, code),
        )
        pieces.append(
            pa.table(
                {
                    "person_pseudonym": part.column("person_pseudonym"),
                    "gemeente_code": codes,
                    "identity_sealed": pa.array(values, pa.string()),
                }
            )
        )
    if offset != table.num_rows:
        raise RuntimeError("identity rows and per-gemeente counts differ")
    if not pieces:
        return pa.table({column: pa.array([], pa.string()) for column in IDENTITY_COLUMNS})
    return pa.concat_tables(pieces)


def _install_key_files(out_dir: Path, wrapped: dict[str, bytes]) -> None:
    """Write the key files into a hidden folder, then swap it in for `identity-keys/`, so the
    folder holds exactly this run's keys (a key of an earlier run never survives)."""
    final = out_dir / KEYS_FOLDER
    _remove_leftover_key_folders(out_dir)
    staging = temporary_sibling(final)
    staging.mkdir()
    for code, message in wrapped.items():
        with (staging / key_file(out_dir, code).name).open("wb") as handle:
            handle.write(message)
            handle.flush()
            os.fsync(handle.fileno())
    retired = out_dir / f".{KEYS_FOLDER}.{os.getpid()}.old"
    if final.exists():
        os.replace(final, retired)
    os.replace(staging, final)
    shutil.rmtree(retired, ignore_errors=True)


def _remove_leftover_key_folders(out_dir: Path) -> None:
    """Hidden key folders a killed run left behind (`.identity-keys.<pid>.tmp|.old`)."""
    for leftover in out_dir.glob(f".{KEYS_FOLDER}.*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _remove_identities(out_dir: Path) -> None:
    """A claims run without certificates: remove an identities dataset of an earlier run (data,
    manifest, key files), so stale identities never go out beside new claims."""
    found = sorted(out_dir.glob(f"{IDENTITIES}.*"))
    keys = out_dir / KEYS_FOLDER
    _remove_leftover_key_folders(out_dir)
    if not found and not keys.exists():
        return
    # The manifest first: without it the rest is never picked up.
    for path in sorted(found, key=lambda p: not p.name.endswith(records.MANIFEST_SUFFIX)):
        path.unlink(missing_ok=True)
    shutil.rmtree(keys, ignore_errors=True)
    log.info(
        "removed the identities dataset of an earlier run from %s (no gemeente certificates "
        "given this time; stale identities must not go out with new claims)",
        out_dir,
    )
