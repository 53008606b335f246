"""Ingest: accept or reject each delivered dataset whole, and lose nothing.

One dataset is a data file plus its manifest in `<landing>/<date>/<PARTNER>/`. Checks run in
this order and the first failure decides: the partner folder, the manifest (present, readable,
known contract and version, partner and date agreeing with the folders), the data file's sha256,
replay protection, then a strict parse in the CSV dialect (or Parquet types), the manifest's
row_count, and finally the contract rules plus the raw-BSN leak guard, run by Great Expectations
inside DuckDB (`contract_runner`).

Accepted: typed Parquet in `staging/<date>/<PARTNER>/<dataset>.parquet` plus a receipt (sha256,
rows, extract date) written last. Rejected: the original files are moved unchanged to
`quarantine/<date>/<PARTNER>/<dataset>-<received>/` with `reason.json` (rule, row count, up to
10 line numbers, never a value). Delivering the same bytes again for the same date changes
nothing. Datasets are independent: one per call, so the DAG can map over them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines.contract_runner import (
    TEXT_SUFFIX,
    ContractReport,
    contract_rules,
    leak_guard_rules,
    run_rules,
    text_column,
)
from pipelines.contracts import PARTNER_DATASETS, Contract, available_versions, load_contract
from pipelines.dialect import QUOTE, SEPARATOR
from pipelines.fileio import (
    replace_atomically,
    sha256_file,
    temporary_sibling,
    write_json_atomically,
)
from pipelines.reference import partner_codes, reference_csv
from pipelines.settings import execute_sql_file, landing_dir

log = logging.getLogger(__name__)

DATA_SUFFIXES = (".csv", ".parquet")
MANIFEST_SUFFIX = ".manifest.json"
PARTNER_REJECTS_SUFFIX = ".rejects.csv"  # the partner tool's own BSN reject list: informational
MANIFEST_FIELDS: dict[str, type] = {
    "contract": str,
    "contract_version": str,
    "partner": str,
    "extract_date": str,
    "key_id": str,
    "file": str,
    "sha256": str,
    "row_count": int,
}
_SHA256 = re.compile(r"[0-9a-f]{64}")

_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}

# What a partner should do about each rule; contract rules share the last entry.
REMEDIES = {
    "unknown_partner": "deliver under one of the partner codes " + ", ".join(partner_codes()),
    "manifest_missing": "deliver the manifest with the data file (the partner tool writes both)",
    "manifest_unreadable": "write the manifest as JSON with all fields (the partner tool does)",
    "data_file_missing": "deliver the data file the manifest names, in the same folder",
    "manifest_mismatch": "name the data file after the manifest's contract, e.g. claims.csv",
    "unknown_contract": "use a contract from data_contracts/ (claims or income)",
    "unknown_contract_version": "use a contract version present in data_contracts/",
    "partner_mismatch": "put the delivery in the folder of the partner the manifest names",
    "partner_not_allowed": "only the partners the contract lists deliver this dataset",
    "date_mismatch": "put the delivery in the folder of its extract_date",
    "sha256_mismatch": "the file changed after the manifest was written; deliver both again",
    "replay_same_bytes": "this exact file was loaded for an earlier date; send a fresh extract",
    "replay_older_extract": "an extract with a later date was already loaded; send the newest",
    "wrong_separator": "use ';' as the separator (the CSV dialect of the contract)",
    "missing_column": "deliver every column of the contract, named exactly as in the contract",
    "unexpected_column": "remove columns the contract does not list",
    "unparseable": "write UTF-8 CSV with ';' separator, '\"' quoting, one record per line",
    "wrong_type": "write the Parquet columns with the contract's types",
    "row_count_mismatch": "set row_count in the manifest to the number of data rows",
    "contract": "correct the rows at the listed lines and deliver the whole dataset again",
}


@dataclass(frozen=True)
class Delivery:
    """One dataset as found in the landing zone (files may be missing: that is a finding)."""

    folder: Path
    partner_folder: str
    dataset: str
    files: tuple[Path, ...]

    @property
    def manifest_path(self) -> Path:
        return self.folder / f"{self.dataset}{MANIFEST_SUFFIX}"

    @property
    def label(self) -> str:
        return f"{self.partner_folder}/{self.dataset}"


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str
    rows: int | None = None
    example_lines: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "message": self.message,
            "rows": self.rows,
            "example_lines": self.example_lines,
        }


@dataclass(frozen=True)
class IngestOutcome:
    """What happened to one dataset. `status` is accepted, unchanged, rejected or ok (checked)."""

    partner: str
    dataset: str
    status: str
    rows: int | None = None
    violations: list[Violation] = field(default_factory=list)
    staged_path: Path | None = None
    quarantine_path: Path | None = None
    extract_date: str | None = None

    @property
    def rejected(self) -> bool:
        return self.status == "rejected"

    @property
    def rule(self) -> str | None:
        return self.violations[0].rule if self.violations else None

    def summary(self) -> str:
        """One line a partner's data engineer understands."""
        if not self.rejected:
            verb = {
                "accepted": "accepted",
                "unchanged": "unchanged (already loaded)",
                "ok": "passes all checks",
            }[self.status]
            return f"{self.partner} {self.dataset}: {verb}, {self.rows:,} rows"
        first = self.violations[0]
        lines = (
            f" (lines {', '.join(map(str, first.example_lines))})" if first.example_lines else ""
        )
        more = (
            f"; {len(self.violations) - 1} more rule(s) broken" if len(self.violations) > 1 else ""
        )
        remedy = REMEDIES.get(first.rule, REMEDIES["contract"])
        return (
            f"{self.partner} {self.dataset}: REJECTED [{first.rule}] {first.message}"
            f"{lines}{more}. Remedy: {remedy}."
        )


class _Rejected(Exception):  # control flow inside this module, never escapes
    def __init__(
        self, *violations: Violation, rows: int | None = None, report: ContractReport | None = None
    ) -> None:
        super().__init__(violations[0].message)
        self.violations = list(violations)
        self.rows = rows
        self.report = report  # the GX result, when the contract rules ran


# ---------------------------------------------------------------- discovery


def discover(date_dir: Path) -> list[Delivery]:
    """Every dataset in `<landing>/<date>/`, grouped by partner folder and dataset name."""
    date_dir = Path(date_dir)
    if not date_dir.is_dir():
        return []
    return [
        delivery
        for folder in sorted(p for p in date_dir.iterdir() if p.is_dir())
        for delivery in datasets_in(folder)
    ]


def datasets_in(folder: Path) -> list[Delivery]:
    """The datasets in one partner folder: files grouped by name up to the first dot."""
    groups: dict[str, list[Path]] = {}
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file()):
        name = path.name
        if name.startswith(".") or name.endswith(PARTNER_REJECTS_SUFFIX):
            continue
        if name.endswith(MANIFEST_SUFFIX) or path.suffix in DATA_SUFFIXES:
            groups.setdefault(name.split(".", 1)[0], []).append(path)
        else:
            log.warning("%s: ignoring %s (not a data file or manifest)", folder, name)
    return [
        Delivery(Path(folder), Path(folder).name, stem, tuple(files))
        for stem, files in sorted(groups.items())
    ]


# ---------------------------------------------------------------- checks


def _read_manifest(delivery: Delivery) -> dict[str, Any]:
    if not delivery.manifest_path.is_file():
        raise _Rejected(
            Violation("manifest_missing", f"no {delivery.manifest_path.name} next to the data file")
        )
    try:
        manifest = json.loads(delivery.manifest_path.read_text("utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise _Rejected(
            Violation(
                "manifest_unreadable", f"{delivery.manifest_path.name} is not valid UTF-8 JSON"
            )
        ) from None
    if not isinstance(manifest, dict):
        raise _Rejected(Violation("manifest_unreadable", "the manifest is not a JSON object"))
    problems = [
        f"{key} ({kind.__name__})"
        for key, kind in MANIFEST_FIELDS.items()
        if not isinstance(manifest.get(key), kind) or isinstance(manifest.get(key), bool)
    ]
    if problems:
        raise _Rejected(
            Violation(
                "manifest_unreadable",
                f"manifest field(s) missing or mistyped: {', '.join(problems)}",
            )
        )
    try:
        dt.date.fromisoformat(manifest["extract_date"])
    except ValueError:
        raise _Rejected(
            Violation("manifest_unreadable", "manifest extract_date is not YYYY-MM-DD")
        ) from None
    if not _SHA256.fullmatch(manifest["sha256"]) or manifest["row_count"] < 0:
        raise _Rejected(
            Violation(
                "manifest_unreadable", "manifest sha256 must be 64 lowercase hex, row_count >= 0"
            )
        )
    return manifest


def _contract_for(manifest: dict[str, Any], delivery: Delivery) -> Contract:
    name, version = manifest["contract"], manifest["contract_version"]
    if name not in PARTNER_DATASETS or not available_versions(name):
        raise _Rejected(Violation("unknown_contract", f"unknown contract {name!r}"))
    if version not in available_versions(name):
        raise _Rejected(
            Violation(
                "unknown_contract_version",
                f"contract {name} has no version {version!r} "
                f"(known: {', '.join(available_versions(name))})",
            )
        )
    if delivery.dataset != name:
        raise _Rejected(
            Violation(
                "manifest_mismatch",
                f"{delivery.manifest_path.name} describes contract {name}, not {delivery.dataset}",
            )
        )
    return load_contract(name, version)


def _check_placement(
    manifest: dict[str, Any], contract: Contract, delivery: Delivery, run_date: dt.date | None
) -> Path:
    partner = manifest["partner"]
    if partner not in partner_codes():
        raise _Rejected(Violation("unknown_partner", f"manifest names unknown partner {partner!r}"))
    if run_date is not None and partner != delivery.partner_folder:
        raise _Rejected(
            Violation(
                "partner_mismatch",
                f"manifest partner {partner} does not match folder {delivery.partner_folder}",
            )
        )
    allowed = contract.custom_property("partners") or partner_codes()
    if partner not in allowed:
        raise _Rejected(
            Violation(
                "partner_not_allowed",
                f"{partner} does not deliver {contract.name} (only {', '.join(allowed)})",
            )
        )
    if run_date is not None and manifest["extract_date"] != run_date.isoformat():
        raise _Rejected(
            Violation(
                "date_mismatch",
                f"manifest extract_date {manifest['extract_date']} does not match the date folder "
                f"{run_date.isoformat()}",
            )
        )
    data_path = delivery.folder / manifest["file"]
    if Path(manifest["file"]).name != manifest["file"] or not data_path.is_file():
        raise _Rejected(
            Violation(
                "data_file_missing",
                f"the data file {manifest['file']!r} named by the manifest is not in the folder",
            )
        )
    if data_path.suffix not in DATA_SUFFIXES or data_path.name.split(".", 1)[0] != contract.name:
        raise _Rejected(
            Violation(
                "manifest_mismatch",
                f"data file {manifest['file']} must be {contract.name}.csv "
                f"or {contract.name}.parquet",
            )
        )
    return data_path


def _receipts(staging: Path, partner: str) -> list[tuple[str, dict[str, Any]]]:
    """(date folder, receipt) for every dataset of `partner` loaded so far."""
    found = []
    for path in sorted(staging.glob(f"*/{partner}/*.receipt.json")):
        try:
            found.append((path.parent.parent.name, json.loads(path.read_text("utf-8"))))
        except (OSError, json.JSONDecodeError):
            log.warning("unreadable receipt %s ignored", path)
    return found


def _check_replay(
    manifest: dict[str, Any], dataset: str, digest: str, run_date: dt.date, staging: Path
) -> dict[str, Any] | None:
    """Refuse re-sent old extracts; return this date's existing receipt (for idempotence)."""
    same_date = None
    latest_other = None
    for folder, receipt in _receipts(staging, manifest["partner"]):
        if folder == run_date.isoformat():
            if receipt.get("dataset") == dataset:
                same_date = receipt
            continue
        if receipt.get("dataset") == dataset and receipt.get("sha256") == digest:
            raise _Rejected(
                Violation(
                    "replay_same_bytes",
                    f"the same file was already loaded for extract date {receipt['extract_date']}",
                )
            )
        if latest_other is None or receipt["extract_date"] > latest_other:
            latest_other = receipt["extract_date"]
    if latest_other is not None and latest_other > manifest["extract_date"]:
        raise _Rejected(
            Violation(
                "replay_older_extract",
                f"extract date {manifest['extract_date']} is older than {latest_other}, "
                "already loaded for this partner",
            )
        )
    return same_date


# ---------------------------------------------------------------- parse


def _csv_header(path: Path) -> list[str]:
    with path.open("rb") as handle:
        first = handle.readline(1 << 16)
    if not first.strip():
        raise _Rejected(Violation("unparseable", "the file is empty (no header row)"))
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _Rejected(Violation("unparseable", "the header row is not UTF-8", 1, [1])) from None
    return next(csv.reader(io.StringIO(text), delimiter=SEPARATOR, quotechar=QUOTE))


def _check_columns(found: list[str], contract: Contract) -> None:
    expected = contract.columns
    if len(found) == 1 and "," in found[0]:
        raise _Rejected(
            Violation("wrong_separator", "the header is separated by ',' instead of ';'", 1, [1])
        )
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    duplicated = sorted({c for c in found if found.count(c) > 1})
    violations = []
    if missing:
        violations.append(Violation("missing_column", f"missing column(s): {', '.join(missing)}"))
    if extra or duplicated:
        names = ", ".join(extra + [f"{c} (twice)" for c in duplicated])
        violations.append(Violation("unexpected_column", f"unexpected column(s): {names}"))
    if violations:
        raise _Rejected(*violations)


def _load_csv(con: duckdb.DuckDBPyConnection, path: Path, contract: Contract) -> None:
    header = _csv_header(path)
    _check_columns(header, contract)
    columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in header) + "}"
    try:
        con.execute(
            f"""create table delivery_text as
            select ordinality + 1 as line, * exclude (ordinality)
            from read_csv($path, delim = '{SEPARATOR}', quote = '{QUOTE}', escape = '{QUOTE}',
                          header = true, auto_detect = false, columns = {columns},
                          strict_mode = true, null_padding = false, encoding = 'utf-8',
                          store_rejects = true, rejects_table = 'parse_errors',
                          rejects_scan = 'parse_scans', max_line_size = 1048576)
                 with ordinality""",
            {"path": str(path)},
        )
    except duckdb.Error as exc:
        # DuckDB's message can quote file content; report only its kind.
        raise _Rejected(
            Violation("unparseable", f"the file cannot be read as CSV ({type(exc).__name__})")
        ) from None
    errors = con.execute("select line, error_type from parse_errors order by line").fetchall()
    if errors:
        kinds = sorted({kind for _, kind in errors})
        lines = sorted({int(line) for line, _ in errors})
        raise _Rejected(
            Violation(
                "unparseable",
                f"{len(lines)} line(s) do not fit the dialect "
                f"({', '.join(k.lower() for k in kinds)})",
                len(lines),
                lines[:10],
            )
        )


def _load_parquet(con: duckdb.DuckDBPyConnection, path: Path, contract: Contract) -> None:
    try:
        described = con.execute(
            "describe select * from read_parquet($path)", {"path": str(path)}
        ).fetchall()
    except duckdb.Error as exc:
        raise _Rejected(
            Violation("unparseable", f"the file cannot be read as Parquet ({type(exc).__name__})")
        ) from None
    found = {name: kind for name, kind, *_ in described}
    _check_columns(list(found), contract)
    wrong = []
    for name, expected in contract.physical_types.items():
        kind = found[name]
        ok = kind in _INTEGER_TYPES if expected == "BIGINT" else kind == expected
        if not ok:
            wrong.append(f"{name} is {kind}, expected {expected}")
    if wrong:
        raise _Rejected(Violation("wrong_type", "; ".join(wrong)))
    casts = ", ".join(f'cast("{c}" as varchar) as "{c}"' for c in contract.columns)
    con.execute(
        f"""create table delivery_text as select file_row_number + 1 as line, {casts}
            from read_parquet($path, file_row_number = true)""",
        {"path": str(path)},
    )


def _typed_view(con: duckdb.DuckDBPyConnection, contract: Contract) -> None:
    parts = ["line"]
    for prop in contract.properties:
        name, physical = prop.name, prop.physicalType
        if text_column(name, prop.logicalType) == name:
            parts.append(f'"{name}"')
        else:
            parts.append(f'try_cast("{name}" as {physical}) as "{name}"')
            parts.append(f'"{name}" as "{name}{TEXT_SUFFIX}"')
    con.execute(f"create or replace view delivery as select {', '.join(parts)} from delivery_text")


def _connect(database: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection for batch work: no terminal progress bar (it would print from workers)."""
    con = duckdb.connect(str(database), read_only=read_only)
    con.execute("set enable_progress_bar = false")
    return con


def _prepare(database: Path, data_path: Path, contract: Contract) -> int:
    """Parse the data file into `delivery_text` (+ typed view) in a fresh DuckDB file."""
    database.unlink(missing_ok=True)
    with _connect(database) as con:
        execute_sql_file(con, "privacy/bsn_macros.sql")
        execute_sql_file(
            con,
            "ingest/reference_tables.sql",
            {
                "claim_types_csv": str(reference_csv("claim_types.csv")),
                "gemeenten_csv": str(reference_csv("gemeenten.csv")),
            },
        )
        if data_path.suffix == ".csv":
            _load_csv(con, data_path, contract)
        else:
            _load_parquet(con, data_path, contract)
        _typed_view(con, contract)
        return con.execute("select count(*) from delivery_text").fetchone()[0]


def _validate(
    database: Path, contract: Contract, manifest: dict[str, Any], label: str
) -> ContractReport:
    parameters = {"partner": manifest["partner"], "extract_date": manifest["extract_date"]}
    rules = contract_rules(contract, parameters=parameters) + leak_guard_rules(contract)
    return run_rules(database, rules, contract=contract, suite_name=label)


def _stage(database: Path, contract: Contract, manifest: dict[str, Any], target: Path) -> None:
    columns = ", ".join(f'"{c}"' for c in contract.columns)
    temporary = temporary_sibling(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _connect(database, read_only=True) as con:
        con.execute(
            f"""copy (select {columns}, '{manifest["partner"]}' as partner,
                       date '{manifest["extract_date"]}' as extract_date
                      from delivery order by line)
                to '{str(temporary).replace("'", "''")}' (format parquet)"""
        )
    replace_atomically(temporary, target)


# ---------------------------------------------------------------- one dataset


@dataclass(frozen=True)
class _Paths:
    staging: Path
    quarantine: Path
    reports: Path


def hub_paths(data_dir: Path, run_date: dt.date) -> _Paths:
    data_dir = Path(data_dir)
    return _Paths(
        staging=data_dir / "staging",
        quarantine=data_dir / "quarantine",
        reports=data_dir / "reports" / run_date.isoformat() / "validation",
    )


def ingest_delivery(delivery: Delivery, *, run_date: dt.date, data_dir: Path) -> IngestOutcome:
    """Accept or reject one dataset of `run_date` whole (see the module docstring)."""
    paths = hub_paths(data_dir, run_date)
    partner = delivery.partner_folder
    manifest: dict[str, Any] | None = None
    try:
        if partner not in partner_codes():
            raise _Rejected(Violation("unknown_partner", f"unknown partner folder {partner!r}"))
        manifest = _read_manifest(delivery)
        contract, data_path, digest = _check_files(manifest, delivery, run_date)
        existing = _check_replay(manifest, delivery.dataset, digest, run_date, paths.staging)
        staged = paths.staging / run_date.isoformat() / partner / f"{delivery.dataset}.parquet"
        if existing and existing.get("sha256") == digest and staged.is_file():
            return IngestOutcome(
                partner,
                delivery.dataset,
                "unchanged",
                rows=existing["rows"],
                staged_path=staged,
                extract_date=manifest["extract_date"],
            )
        outcome_rows, report = _check_content(
            delivery,
            contract,
            manifest,
            data_path,
            work_dir=paths.staging / ".work",
            stage_to=staged,
        )
        write_json_atomically(
            paths.reports / f"{partner}-{delivery.dataset}.json", report.gx_result
        )
        write_json_atomically(
            staged.with_name(f"{delivery.dataset}.receipt.json"),
            {
                "partner": partner,
                "dataset": delivery.dataset,
                "extract_date": manifest["extract_date"],
                "contract": contract.name,
                "contract_version": contract.version,
                "key_id": manifest["key_id"],
                "sha256": digest,
                "rows": outcome_rows,
                "file": data_path.name,
                "staged_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            },
        )
        log.info("%s accepted, %s rows", delivery.label, outcome_rows)
        return IngestOutcome(
            partner,
            delivery.dataset,
            "accepted",
            rows=outcome_rows,
            staged_path=staged,
            extract_date=manifest["extract_date"],
        )
    except _Rejected as rejection:
        target = _quarantine(delivery, rejection, manifest, paths.quarantine / run_date.isoformat())
        log.info("%s rejected: %s", delivery.label, rejection.violations[0].rule)
        return _rejected_outcome(partner, delivery, rejection, manifest, target)


def _check_files(
    manifest: dict[str, Any], delivery: Delivery, run_date: dt.date | None
) -> tuple[Contract, Path, str]:
    """The checks that need no hub history: contract, placement, sha256."""
    contract = _contract_for(manifest, delivery)
    data_path = _check_placement(manifest, contract, delivery, run_date)
    digest = sha256_file(data_path)
    if digest != manifest["sha256"]:
        raise _Rejected(
            Violation("sha256_mismatch", "the data file's sha256 differs from the manifest")
        )
    return contract, data_path, digest


def _rejected_outcome(
    partner: str,
    delivery: Delivery,
    rejection: _Rejected,
    manifest: dict[str, Any] | None,
    quarantine_path: Path | None = None,
) -> IngestOutcome:
    return IngestOutcome(
        partner,
        delivery.dataset,
        "rejected",
        rows=rejection.rows,
        violations=rejection.violations,
        quarantine_path=quarantine_path,
        extract_date=(manifest or {}).get("extract_date"),
    )


def _check_content(
    delivery: Delivery,
    contract: Contract,
    manifest: dict[str, Any],
    data_path: Path,
    *,
    work_dir: Path,
    stage_to: Path | None,
) -> tuple[int, ContractReport]:
    """Parse, count and validate; stage the typed data when `stage_to` is given."""
    work_dir.mkdir(parents=True, exist_ok=True)
    database = work_dir / f"{delivery.partner_folder}-{delivery.dataset}.duckdb"
    try:
        rows = _prepare(database, data_path, contract)
        if rows != manifest["row_count"]:
            raise _Rejected(
                Violation(
                    "row_count_mismatch",
                    f"the file has {rows:,} data rows but the manifest says "
                    f"{manifest['row_count']:,}",
                ),
                rows=rows,
            )
        report = _validate(database, contract, manifest, delivery.label.replace("/", "-"))
        if not report.passed:
            raise _Rejected(
                *[
                    Violation(f.rule, f.description, f.rows, f.example_lines)
                    for f in report.failures
                ],
                rows=rows,
                report=report,
            )
        if stage_to is not None:
            _stage(database, contract, manifest, stage_to)
        return rows, report
    finally:
        database.unlink(missing_ok=True)
        database.with_name(database.name + ".wal").unlink(missing_ok=True)


def _quarantine(
    delivery: Delivery, rejection: _Rejected, manifest: dict[str, Any] | None, date_quarantine: Path
) -> Path:
    """Move the delivery's files, unchanged, next to a machine-readable reason."""
    received = dt.datetime.now(dt.UTC)
    target = (
        date_quarantine
        / delivery.partner_folder
        / f"{delivery.dataset}-{received:%Y%m%dT%H%M%S%fZ}"
    )
    target.mkdir(parents=True, exist_ok=False)
    moved = []
    for path in delivery.files:
        if path.exists():
            shutil.move(str(path), target / path.name)
            moved.append(path.name)
    first = rejection.violations[0]
    write_json_atomically(
        target / "reason.json",
        {
            "partner": delivery.partner_folder,
            "dataset": delivery.dataset,
            "extract_date": (manifest or {}).get("extract_date"),
            "received": received.isoformat(timespec="seconds"),
            "rule": first.rule,
            "message": first.message,
            "rows": first.rows,
            "example_lines": first.example_lines,
            "remedy": REMEDIES.get(first.rule, REMEDIES["contract"]),
            "violations": [v.as_dict() for v in rejection.violations],
            "files": moved,
        },
    )
    if rejection.report is not None:
        write_json_atomically(target / "validation.json", rejection.report.gx_result)
    return target


# ---------------------------------------------------------------- a whole date


def ingest_date(
    run_date: dt.date,
    *,
    data_dir: Path,
    landing: Path | None = None,
    on_dataset: Any = None,
    workers: int = 1,
) -> list[IngestOutcome]:
    """Ingest every dataset delivered for `run_date`; one bad dataset never stops the others.

    Datasets are independent (own work file, own outputs), so `workers > 1` checks them in
    parallel processes, as the DAG's mapped tasks do: GX spends much of its time in
    single-threaded Python, which then overlaps with DuckDB's work. Outcomes come back in
    discovery order; `on_dataset` is called as each finishes.
    """
    landing = landing_dir(landing, data_dir)
    deliveries = discover(landing / run_date.isoformat())
    if workers <= 1 or len(deliveries) <= 1:
        outcomes = []
        for delivery in deliveries:
            outcomes.append(ingest_delivery(delivery, run_date=run_date, data_dir=data_dir))
            if on_dataset:
                on_dataset(outcomes[-1])
        return outcomes
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: a forked child would share DuckDB's and GX's in-process state with the parent.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(deliveries)), mp_context=context) as pool:
        futures = {
            pool.submit(ingest_delivery, delivery, run_date=run_date, data_dir=data_dir): index
            for index, delivery in enumerate(deliveries)
        }
        results: dict[int, IngestOutcome] = {}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            if on_dataset:
                on_dataset(results[futures[future]])
    return [results[index] for index in range(len(deliveries))]


def check_delivery(folder: Path) -> list[IngestOutcome]:
    """Partner side: run every check the hub runs on the datasets in `folder`, loading nothing.

    `folder` is a partner folder (with manifests) or a date folder (with partner folders).
    Folder-name checks apply only when the path looks like `<YYYY-MM-DD>/<PARTNER>`; replay
    checks need the hub's history and are skipped.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such delivery folder")
    partner_folders = (
        [folder] if datasets_in(folder) else sorted(p for p in folder.iterdir() if p.is_dir())
    )
    with tempfile.TemporaryDirectory(prefix="cri-check-") as work:
        return [
            _check_only(delivery, Path(work))
            for partner_folder in partner_folders
            for delivery in datasets_in(partner_folder)
        ]


def _date_or_none(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _check_only(delivery: Delivery, work: Path) -> IngestOutcome:
    # Folder names are checked only in a landing layout `<YYYY-MM-DD>/<PARTNER>`.
    run_date = _date_or_none(delivery.folder.parent.name)
    if delivery.partner_folder not in partner_codes():
        run_date = None
    partner = delivery.partner_folder
    manifest: dict[str, Any] | None = None
    try:
        manifest = _read_manifest(delivery)
        partner = manifest["partner"]
        contract, data_path, _ = _check_files(manifest, delivery, run_date)
        rows, _ = _check_content(
            delivery, contract, manifest, data_path, work_dir=work, stage_to=None
        )
        return IngestOutcome(
            partner, delivery.dataset, "ok", rows=rows, extract_date=manifest["extract_date"]
        )
    except _Rejected as rejection:
        return _rejected_outcome(partner, delivery, rejection, manifest)
