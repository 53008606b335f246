"""Ingest: accept or reject each delivered dataset whole, and lose nothing.

One dataset is a data file plus its manifest in `<landing>/<date>/<PARTNER>/`. Checks run in
this order and the first failure decides: the landing zone's shape (no symlinks, no stray
files), the partner folder, the manifest (present, bounded, readable, known contract and version,
partner and date agreeing with the folders, not dated after today), the data file's sha256, then
a strict parse in the CSV dialect (or Parquet types), the manifest's row_count, and finally the
contract rules plus the raw-BSN leak guard, run by Great Expectations inside DuckDB
(`contract_runner`).

Each delivery is judged on its own date (interfaces.md section 3, version 2): the same bytes as
an earlier date's dataset are a partner's quiet day, accepted and noted `unchanged_since`; a late
delivery for an older date is judged like any other.

Accepted: typed Parquet in `staging/<date>/<PARTNER>/<dataset>.parquet` plus a receipt (sha256,
rows, extract date). The receipt is the commit point: it is removed before the Parquet file is
replaced and written after, so a receipt always describes the file beside it. Rejected: the
original files are moved unchanged to `quarantine/<date>/<PARTNER>/<dataset>-<received>/` with
`reason.json` (rule, row count, up to 10 line numbers, never a value); the reason is written
before anything moves, so a killed run never loses it (`finish_quarantines`). Delivering the same
bytes again for the same date changes nothing. Datasets are independent: one per call, so the
DAG can map over them.

A fault of the machine (out of memory, a full disk, a file vanishing) is never blamed on the
data: it raises `IngestFault`, the run fails and the landing zone is left as it was.
"""

from __future__ import annotations

import csv
import datetime as dt
import errno
import io
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines.contract_runner import ContractReport, PendingCheck, start_check, warm_up
from pipelines.contract_sql import delivery_rules, delivery_views
from pipelines.contracts import PARTNER_DATASETS, Contract, available_versions, load_contract
from pipelines.dialect import QUOTE, SEPARATOR
from pipelines.errors import CriError
from pipelines.faults import kill_point
from pipelines.fileio import replace_atomically, sha256_file, temporary_sibling
from pipelines.layout import WORK, Layout
from pipelines.records import (
    MANIFEST_FIELDS,
    MANIFEST_MAX_BYTES,
    MANIFEST_SUFFIX,
    REASON,
    VALIDATION_RESULT,
    manifest_path,
    read_json,
    read_receipt,  # re-exported: carry_forward imports it from here (for now)
    receipt_path,  # re-exported, as read_receipt
    write_record,
)
from pipelines.reference import partner_codes, reference_csv
from pipelines.resource_faults import describe as describe_fault
from pipelines.settings import MEMORY_LIMIT_ENV
from pipelines.sql import SqlError, copy_to, query, run_script
from privacy.sealing import KEY_SUFFIX, KEYS_FOLDER

log = logging.getLogger(__name__)

QUARANTINE_PARTIAL = ".partial"
DATE_FOLDER_LABEL = "_date_folder"  # quarantine folder for stray files found in a date folder
DATA_SUFFIXES = (".csv", ".parquet")
PARTNER_REJECTS_SUFFIX = ".rejects.csv"  # the partner tool's own BSN reject list: informational
EXAMPLE_LINES_SHOWN = 5  # per broken rule in `IngestOutcome.detail_lines`
_SHA256 = re.compile(r"[0-9a-f]{64}")
_GEMEENTE = re.compile(r"GM[0-9]{4}")
IDENTITIES = "identities"  # the dataset whose manifest lists key files (`identity_keys`)

# DuckDB errors that say something about the file's content. Everything else DuckDB raises
# (out of memory, I/O, a lock, an internal error) is a fault of the machine: see IngestFault.
DATA_ERRORS = (duckdb.InvalidInputException, duckdb.ConversionException)

_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}

# What a partner should do about each rule; contract rules share the last entry.
REMEDIES = {
    "unknown_partner": "deliver under one of the partner codes " + ", ".join(partner_codes()),
    "manifest_missing": "deliver the manifest with the data file (the partner tool writes both)",
    "manifest_unreadable": "write the manifest as JSON with all fields (the partner tool does)",
    "data_file_missing": "deliver the data file the manifest names, in the same folder",
    "manifest_mismatch": "name the data file after the manifest's contract, e.g. claims.csv",
    "unknown_contract": "use a contract from data_contracts/ (claims, income or identities)",
    "unknown_contract_version": "use a contract version present in data_contracts/",
    "partner_mismatch": "put the delivery in the folder of the partner the manifest names",
    "partner_not_allowed": "only the partners the contract lists deliver this dataset",
    "date_mismatch": "put the delivery in the folder of its extract_date",
    "sha256_mismatch": "the file changed after the manifest was written; deliver both again",
    "manifest_too_large": f"write a manifest of at most {MANIFEST_MAX_BYTES:,} bytes",
    "extract_date_in_future": "set extract_date to the date the extract was taken (not later)",
    "symlink_not_allowed": "deliver real files and folders; symbolic links are not followed",
    "unexpected_file": "deliver only <dataset>.csv/.parquet with its manifest in a partner folder",
    "wrong_separator": "use ';' as the separator (the CSV dialect of the contract)",
    "missing_column": "deliver every column of the contract, named exactly as in the contract",
    "unexpected_column": "remove columns the contract does not list",
    "unparseable": "write UTF-8 CSV with ';' separator, '\"' quoting, one record per line",
    "wrong_type": "write the Parquet columns with the contract's types",
    "row_count_mismatch": "set row_count in the manifest to the number of data rows",
    "identity_key_missing": (
        "deliver identity-keys/<GMxxxx>.p7m for every gemeente the manifest's identity_keys "
        "lists (the partner tool writes both)"
    ),
    "identity_key_mismatch": (
        "a key file changed after the manifest was written; deliver the identities dataset again"
    ),
    "contract": "correct the rows at the listed lines and deliver the whole dataset again",
}


@dataclass(frozen=True)
class Delivery:
    """One dataset as found in the landing zone (files may be missing: that is a finding)."""

    folder: Path
    partner_folder: str
    dataset: str
    files: tuple[Path, ...]
    # A finding about the landing zone itself (symlink_not_allowed, unexpected_file): the
    # files are quarantined as they are, without reading them.
    problem: tuple[str, str] | None = None

    @property
    def manifest_path(self) -> Path:
        return manifest_path(self.folder, self.dataset)

    @property
    def data_file(self) -> Path | None:
        """The delivered data file (or, without one, the entry the finding is about)."""
        data = [p for p in self.files if p.suffix in DATA_SUFFIXES]
        return (data or list(self.files) or [None])[0]

    @property
    def label(self) -> str:
        return f"{printable(self.partner_folder)}/{printable(self.dataset)}"


def printable(name: str) -> str:
    """A file or folder name safe to print: control characters shown as escapes, never raw
    (a name is partner input, and a raw escape sequence would drive the operator's terminal)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


class IngestFault(CriError):
    """The check itself could not run (memory, disk, a vanished file): not a fault of the data.
    The run fails and the delivery stays in the landing zone."""


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

    @property
    def remedy(self) -> str:
        """What the partner should do; every contract rule shares one remedy."""
        return REMEDIES.get(self.rule, REMEDIES["contract"])

    def detail(self) -> str:
        """One line: the rule, what it says, how many rows and a few of their line numbers,
        and the remedy (a partner fixes every broken rule in one go, not one per delivery)."""
        shown = ", ".join(map(str, self.example_lines[:EXAMPLE_LINES_SHOWN]))
        if shown and (self.rows or 0) > EXAMPLE_LINES_SHOWN:
            shown += " and more"
        lines = f": line{'s' if len(self.example_lines) > 1 else ''} {shown}" if shown else ""
        rows = f" ({self.rows:,} row{'' if self.rows == 1 else 's'}{lines})" if self.rows else ""
        return f"[{self.rule}] {self.message}{rows}. Remedy: {self.remedy}."


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
    unchanged_since: str | None = None
    data_file: Path | None = None  # where the delivered file is now (landing or quarantine)

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
            since = (  # interfaces.md section 3: "noted as `unchanged_since <date>`"
                f" (unchanged_since {self.unchanged_since}: the same bytes)"
                if self.unchanged_since
                else ""
            )
            return f"{self.partner} {self.dataset}: {verb}, {self.rows:,} rows{since}"
        first = self.violations[0]
        lines = (
            f" (lines {', '.join(map(str, first.example_lines))})" if first.example_lines else ""
        )
        more = (
            f"; {len(self.violations) - 1} more rule(s) broken" if len(self.violations) > 1 else ""
        )
        return (
            f"{printable(self.partner)} {printable(self.dataset)}: REJECTED [{first.rule}] "
            f"{first.message}{lines}{more}. Remedy: {first.remedy}."
        )

    def detail_lines(self) -> list[str]:
        """Every broken rule of a rejected dataset, for a person fixing the file: first the
        file's path and how many rules it breaks, then one line per rule (see
        `Violation.detail`). Empty for a dataset that was not rejected. `summary()` stays one
        line naming the first rule; these go under it."""
        if not self.rejected:
            return []
        where = printable(str(self.data_file or f"{self.partner}/{self.dataset}"))
        count = len(self.violations)
        head = f"{where}: {count} rule{'' if count == 1 else 's'} broken"
        # Messages can quote a folder or manifest value: partner input, never printed raw.
        return [head] + [printable(violation.detail()) for violation in self.violations]


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
    """Every dataset in `<landing>/<date>/`, grouped by partner folder and dataset name.

    Symbolic links are never followed (a link could point anywhere on the machine) and files
    lying directly in the date folder belong to no partner: both become deliveries with a
    `problem`, rejected under their own rule, so nothing is silently ignored. Hidden files
    (a partner tool's temporary files while it writes) are left alone.
    """
    date_dir = Path(date_dir)
    if not date_dir.is_dir() or date_dir.is_symlink():
        return []
    found: list[Delivery] = []
    for entry in sorted(date_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            found.append(_problem(entry, date_dir, "symlink_not_allowed", "is a symbolic link"))
        elif entry.is_dir():
            found.extend(datasets_in(entry))
        else:
            found.append(
                _problem(
                    entry,
                    date_dir,
                    "unexpected_file",
                    "lies in the date folder, not in a partner folder",
                )
            )
    return found


def _problem(path: Path, date_dir: Path, rule: str, what: str) -> Delivery:
    """A finding about one entry of a date folder: a symlinked partner folder keeps the
    partner's name; a stray file is filed under `_date_folder`."""
    partner = path.name if path.is_symlink() else DATE_FOLDER_LABEL
    return Delivery(
        folder=date_dir,
        partner_folder=partner,
        dataset=path.name,
        files=(path,),
        problem=(rule, f"{printable(path.name)} {what}"),
    )


def datasets_in(folder: Path) -> list[Delivery]:
    """The datasets in one partner folder: files grouped by name up to the first dot.

    A dataset with a symbolic link among its files, and any other entry (a subfolder, a file
    that is neither data nor manifest), is a delivery with a `problem`.
    """
    folder = Path(folder)
    groups: dict[str, list[Path]] = {}
    problems: list[Delivery] = []
    for path in sorted(folder.iterdir()):
        name = path.name
        if name.startswith(".") or name.endswith(PARTNER_REJECTS_SUFFIX):
            continue
        named_like_data = name.endswith(MANIFEST_SUFFIX) or path.suffix in DATA_SUFFIXES
        if named_like_data and (path.is_symlink() or path.is_file()):
            groups.setdefault(name.split(".", 1)[0], []).append(path)
            continue
        if name == KEYS_FOLDER and (path.is_symlink() or path.is_dir()):
            # the key files of the identities dataset: judged (and quarantined) with it
            groups.setdefault(IDENTITIES, []).append(path)
            continue
        problems.append(
            Delivery(
                folder,
                folder.name,
                name,
                (path,),
                problem=(
                    ("symlink_not_allowed", f"{printable(name)} is a symbolic link")
                    if path.is_symlink()
                    else ("unexpected_file", f"{printable(name)} is not a data file or manifest")
                ),
            )
        )
    datasets = []
    for stem, files in sorted(groups.items()):
        links = [f.name for f in files if f.is_symlink()]
        problem = (
            ("symlink_not_allowed", f"{printable(', '.join(links))}: symbolic link(s)")
            if links
            else None
        )
        datasets.append(Delivery(folder, folder.name, stem, tuple(files), problem=problem))
    return datasets + problems


# ---------------------------------------------------------------- checks


def _read_manifest(delivery: Delivery) -> dict[str, Any]:
    if not delivery.manifest_path.is_file():
        raise _Rejected(
            Violation("manifest_missing", f"no {delivery.manifest_path.name} next to the data file")
        )
    with delivery.manifest_path.open("rb") as handle:
        raw = handle.read(MANIFEST_MAX_BYTES + 1)
    if len(raw) > MANIFEST_MAX_BYTES:
        raise _Rejected(
            Violation(
                "manifest_too_large",
                f"{delivery.manifest_path.name} is larger than {MANIFEST_MAX_BYTES:,} bytes",
            )
        )
    try:
        manifest = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
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
    if manifest["extract_date"] > dt.date.today().isoformat():
        raise _Rejected(
            Violation(
                "extract_date_in_future",
                f"manifest extract_date {manifest['extract_date']} is after today "
                f"({dt.date.today().isoformat()})",
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


def _unchanged_since(
    layout: Layout, partner: str, dataset: str, digest: str, run_date: dt.date
) -> str | None:
    """The first date of the run of earlier extracts with these same bytes (a quiet partner
    delivers an unchanged extract), or None when the latest earlier extract differs.

    Walks back one date at a time and stops at the first difference, so the cost is the length
    of the quiet spell, not of the history."""
    since = None
    earlier = [d for d in layout.dates(layout.staging) if d < run_date]
    for day in reversed(earlier):
        staged = layout.staging_date(day) / partner / f"{dataset}.parquet"
        receipt = read_receipt(receipt_path(staged))
        if receipt is None:
            continue
        if receipt.get("sha256") != digest:
            break
        since = receipt.get("extract_date", day.isoformat())
    return since


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
    parameters = {
        "csv_path": str(path),
        "separator": SEPARATOR,
        "quote": QUOTE,
        "csv_columns": dict.fromkeys(header, "VARCHAR"),
    }
    try:
        run_script(con, "ingest/delivery_text_csv", parameters)
    except SqlError as exc:
        if not isinstance(exc.__cause__, DATA_ERRORS):
            raise
        # DuckDB's message can quote file content; report only its kind.
        raise _Rejected(
            Violation(
                "unparseable", f"the file cannot be read as CSV ({type(exc.__cause__).__name__})"
            )
        ) from None
    errors = query(con, "ingest/parse_errors").fetchall()
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
    parameters = {"parquet_path": str(path)}
    try:
        described = query(con, "ingest/parquet_columns", parameters).fetchall()
    except SqlError as exc:
        if not isinstance(exc.__cause__, DATA_ERRORS):
            raise
        raise _Rejected(
            Violation(
                "unparseable",
                f"the file cannot be read as Parquet ({type(exc.__cause__).__name__})",
            )
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
    run_script(con, "ingest/delivery_text_parquet", parameters)


def _connect(spill_to: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory database for checking one delivery: no terminal progress bar (it would print
    from workers), the operator's memory limit (`CRI_DUCKDB_MEMORY_LIMIT`, e.g. `4GB`) when one
    is set, and spilling into `spill_to` (the call's own work folder) when memory runs short."""
    con = duckdb.connect()
    run_script(con, "ingest/batch_session")
    run_script(con, "ingest/spill_to", {"temp_directory": str(spill_to)})
    limit = os.environ.get(MEMORY_LIMIT_ENV)
    if limit:
        run_script(con, "ingest/memory_limit", {"memory_limit": limit})
    return con


def _prepare(
    con: duckdb.DuckDBPyConnection, data_path: Path, contract: Contract, manifest: dict[str, Any]
) -> int:
    """Parse the data file into `delivery_text` (+ the typed views) of `con`, next to the
    reference tables and the manifest's key-file list the contract rules read."""
    run_script(con, "privacy/bsn_macros")
    run_script(
        con,
        "ingest/reference_tables",
        {
            "claim_types_csv": str(reference_csv("claim_types.csv")),
            "gemeenten_csv": str(reference_csv("gemeenten.csv")),
        },
    )
    run_script(con, "ingest/identity_keys", {"gemeenten": sorted(identity_keys(manifest))})
    if data_path.suffix == ".csv":
        _load_csv(con, data_path, contract)
    else:
        _load_parquet(con, data_path, contract)
    for statement in delivery_views(contract):
        con.execute(statement)
    return query(con, "ingest/row_count").fetchall()[0][0]


def _validate(
    con: duckdb.DuckDBPyConnection, contract: Contract, manifest: dict[str, Any]
) -> PendingCheck:
    parameters = {"partner": manifest["partner"], "extract_date": manifest["extract_date"]}
    rules = delivery_rules(contract, parameters=parameters)
    return start_check(con, rules, contract=contract)


def parse_csv(
    con: duckdb.DuckDBPyConnection, data_path: Path, contract: Contract
) -> tuple[int, list[Violation]]:
    """Parse a CSV in the exchange dialect into table `delivery_text` of `con` (every column as
    text, with its line), exactly as a partner's delivery is parsed, for an input that comes
    without a manifest (a gemeente's feedback, `pipelines.feedback`): the data rows, or the
    violations of the header and the dialect (none: parsed). Checking the contract's rules is
    the caller's (`contract_sql.delivery_rules`, `contract_runner.check_rules`)."""
    try:
        _load_csv(con, data_path, contract)
    except _Rejected as rejected:
        return 0, rejected.violations
    return query(con, "ingest/row_count").fetchall()[0][0], []


def _write_staged(
    con: duckdb.DuckDBPyConnection,
    manifest: dict[str, Any],
    temporary: Path,
    sealed_on: str | None,
) -> None:
    """The typed rows plus partner and extract date as Parquet, under `temporary` beside the
    staged file (put in place by `_commit_staged` once the check's verdict is in).

    Identities carry the date they were sealed on (`sealed_on`: the first date these same bytes
    were delivered, when a quiet partner delivers them again), since that date is part of what
    opens them (`privacy.sealing.associated_data`) and of the key name a gemeente receives."""
    temporary.parent.mkdir(parents=True, exist_ok=True)
    parameters = {
        "partner": manifest["partner"],
        "extract_date": sealed_on or manifest["extract_date"],
    }
    copy_to(con, "ingest/staged", temporary, parameters)  # plain Parquet, as always


def _commit_staged(
    temporary: Path, manifest: dict[str, Any], data_path: Path, target: Path
) -> None:
    """Replace the staged file with `temporary` (and copy an identities delivery's key files).
    The receipt goes first and comes back last: a receipt always describes the Parquet file
    next to it, whenever a run is killed."""
    receipt_path(target).unlink(missing_ok=True)
    replace_atomically(temporary, target)
    if manifest["contract"] == IDENTITIES:
        _stage_key_files(manifest, data_path.parent, target.parent)


def _stage_key_files(manifest: dict[str, Any], landing_folder: Path, staged_folder: Path) -> None:
    """Copy an identities delivery's key files (unchanged) beside its staged Parquet, replacing
    any earlier copy whole; the outbox copies them from here for the gemeenten signalled. Each
    copy is checked against the manifest again (the file could change after it was checked)
    and on disk before the receipt, the commit point, is written: one `os.sync()` after all
    copies, since an fsync per file cost 0.3 s for a partner's 342 key files."""
    from pipelines.recovery import fresh_folder, swap_in

    keys = identity_keys(manifest)
    work = fresh_folder(temporary_sibling(staged_folder / KEYS_FOLDER))
    for code in sorted(keys):
        copy = work / f"{code}{KEY_SUFFIX}"
        shutil.copyfile(landing_folder / KEYS_FOLDER / copy.name, copy)
        if sha256_file(copy) != keys[code]:
            raise _Rejected(
                Violation(
                    "identity_key_mismatch",
                    f"{KEYS_FOLDER}/{copy.name} changed while it was staged (is the partner "
                    "still writing?)",
                )
            )
    os.sync()
    swap_in(work, staged_folder / KEYS_FOLDER)


# ---------------------------------------------------------------- one dataset


def ingest_delivery(delivery: Delivery, *, run_date: dt.date, data_dir: Path) -> IngestOutcome:
    """Accept or reject one dataset of `run_date` whole (see the module docstring).

    Raises `IngestFault` when the check itself cannot run: the delivery then stays where it is.
    """
    layout = Layout(data_dir)
    partner = delivery.partner_folder
    manifest: dict[str, Any] | None = None
    try:
        if delivery.problem is not None:
            raise _Rejected(Violation(*delivery.problem))
        if partner not in partner_codes():
            raise _Rejected(
                Violation("unknown_partner", f"unknown partner folder '{printable(partner)}'")
            )
        manifest = _read_manifest(delivery)
        return _accept(delivery, manifest, layout, run_date)
    except _Rejected as rejection:
        return _reject(delivery, rejection, manifest, layout.quarantine_date(run_date))
    except FileNotFoundError as exc:
        raise IngestFault(
            f"{delivery.label}: {exc.filename or 'a file'} disappeared while it was checked "
            "(is a partner still writing?); nothing was moved, run again"
        ) from exc


class RestageRefused(CriError):
    """A delivery accepted earlier no longer passes its checks; it stays where it is."""


def restage(delivery: Delivery, *, run_date: dt.date, data_dir: Path) -> IngestOutcome:
    """Check and stage again a delivery accepted on `run_date` whose staged copy was evicted
    (`pipelines.evict`). Unlike `ingest_delivery`, a failing check moves nothing to the
    quarantine: the delivery was accepted then and stays in the landing zone; the caller is
    told why (RestageRefused)."""
    try:
        manifest = _read_manifest(delivery)
        return _accept(delivery, manifest, Layout(data_dir), run_date)
    except _Rejected as rejection:
        raise RestageRefused(
            f"{delivery.label} of {run_date}: accepted then, but it no longer passes: "
            + "; ".join(f"{v.rule}: {v.message}" for v in rejection.violations)
        ) from rejection


def _accept(
    delivery: Delivery, manifest: dict[str, Any], layout: Layout, run_date: dt.date
) -> IngestOutcome:
    """Check and stage a dataset (raises `_Rejected`); the same bytes already staged for this
    date change nothing. The receipt is written last: it is the commit point."""
    partner, dataset = delivery.partner_folder, delivery.dataset
    contract, data_path, digest = _check_files(manifest, delivery, run_date)
    staged = layout.staging_date(run_date) / partner / f"{dataset}.parquet"
    existing = read_receipt(receipt_path(staged))
    if (
        existing
        and existing.get("sha256") == digest
        and existing.get("identity_keys", {}) == identity_keys(manifest)
        and staged.is_file()
        and (contract.name != IDENTITIES or (staged.parent / KEYS_FOLDER).is_dir())
    ):
        return IngestOutcome(
            partner,
            dataset,
            "unchanged",
            rows=existing["rows"],
            staged_path=staged,
            extract_date=manifest["extract_date"],
            unchanged_since=existing.get("unchanged_since"),
            data_file=data_path,
        )
    since = _unchanged_since(layout, partner, dataset, digest, run_date)
    rows, report = _check_content(
        delivery,
        contract,
        manifest,
        data_path,
        work_dir=layout.staging / WORK,
        stage_to=staged,
        sealed_on=since if contract.name == IDENTITIES else None,
    )
    write_record(layout.validation_date(run_date) / f"{partner}-{dataset}.json", report.gx_result)
    write_record(
        receipt_path(staged),
        {
            "partner": partner,
            "dataset": dataset,
            "extract_date": manifest["extract_date"],
            "contract": contract.name,
            "contract_version": contract.version,
            "key_id": manifest["key_id"],
            "sha256": digest,
            "rows": rows,
            "file": data_path.name,
            "unchanged_since": since,
            **({"identity_keys": identity_keys(manifest)} if contract.name == IDENTITIES else {}),
            "staged_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    )
    log.info("%s accepted, %s rows", delivery.label, rows)
    return IngestOutcome(
        partner,
        dataset,
        "accepted",
        rows=rows,
        staged_path=staged,
        extract_date=manifest["extract_date"],
        unchanged_since=since,
        data_file=data_path,
    )


def _reject(
    delivery: Delivery,
    rejection: _Rejected,
    manifest: dict[str, Any] | None,
    date_quarantine: Path,
) -> IngestOutcome:
    """Quarantine a rejected dataset, unless one of its files vanished while it was checked:
    then it was taken away (not the partner's fault, nor final) and the run fails instead."""
    vanished = [p for p in delivery.files if not os.path.lexists(p)]
    if vanished:
        raise IngestFault(
            f"{delivery.label}: {printable(vanished[0].name)} disappeared while it was "
            "checked (is a partner still writing or moving it?); nothing was moved, run again"
        )
    target = _quarantine(delivery, rejection, manifest, date_quarantine)
    log.info("%s rejected: %s", delivery.label, rejection.violations[0].rule)
    return _rejected_outcome(delivery.partner_folder, delivery, rejection, manifest, target)


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
    if contract.name == IDENTITIES:
        _check_key_files(manifest, delivery)
    return contract, data_path, digest


def identity_keys(manifest: dict[str, Any]) -> dict[str, str]:
    """The manifest's `identity_keys` ({GMxxxx: sha256 of its key file}); empty for datasets
    other than identities."""
    keys = manifest.get("identity_keys")
    return dict(keys) if isinstance(keys, dict) else {}


def _check_key_files(manifest: dict[str, Any], delivery: Delivery) -> None:
    """The key files of an identities delivery: exactly those the manifest lists, each with
    its sha256 (the hub cannot open them; it checks they are the ones the partner sent)."""
    keys = manifest.get("identity_keys")
    if not isinstance(keys, dict) or not all(
        isinstance(code, str)
        and _GEMEENTE.fullmatch(code)
        and isinstance(digest, str)
        and _SHA256.fullmatch(digest)
        for code, digest in keys.items()
    ):
        raise _Rejected(
            Violation(
                "manifest_unreadable",
                "manifest identity_keys must map gemeente codes (GMxxxx) to the sha256 "
                "(64 lowercase hex) of their key files",
            )
        )
    folder = delivery.folder / KEYS_FOLDER
    present = {} if not folder.is_dir() else {p.name: p for p in sorted(folder.iterdir())}
    for name, path in present.items():
        if path.is_symlink():
            raise _Rejected(
                Violation(
                    "symlink_not_allowed", f"{KEYS_FOLDER}/{printable(name)} is a symbolic link"
                )
            )
        if not path.is_file() or name.removesuffix(KEY_SUFFIX) not in keys:
            raise _Rejected(
                Violation(
                    "unexpected_file",
                    f"{KEYS_FOLDER}/{printable(name)} is not a key file the manifest's "
                    "identity_keys lists",
                )
            )
    missing = [code for code in sorted(keys) if f"{code}{KEY_SUFFIX}" not in present]
    if missing:
        raise _Rejected(
            Violation(
                "identity_key_missing",
                f"{len(missing)} key file(s) listed in the manifest are not in {KEYS_FOLDER}/ "
                f"(e.g. {missing[0]}{KEY_SUFFIX})",
            )
        )
    changed = [
        code for code in sorted(keys) if sha256_file(present[f"{code}{KEY_SUFFIX}"]) != keys[code]
    ]
    if changed:
        raise _Rejected(
            Violation(
                "identity_key_mismatch",
                f"{len(changed)} key file(s) differ from their sha256 in the manifest "
                f"(e.g. {changed[0]}{KEY_SUFFIX})",
            )
        )


def _rejected_outcome(
    partner: str,
    delivery: Delivery,
    rejection: _Rejected,
    manifest: dict[str, Any] | None,
    quarantine_path: Path | None = None,
) -> IngestOutcome:
    """The outcome of a rejection; its data file is where it now is (quarantine or folder)."""
    data_file = delivery.data_file
    if quarantine_path is not None and data_file is not None:
        data_file = quarantine_path / data_file.name
    return IngestOutcome(
        partner,
        delivery.dataset,
        "rejected",
        rows=rejection.rows,
        violations=rejection.violations,
        quarantine_path=quarantine_path,
        extract_date=(manifest or {}).get("extract_date"),
        data_file=data_file,
    )


def _check_content(
    delivery: Delivery,
    contract: Contract,
    manifest: dict[str, Any],
    data_path: Path,
    *,
    work_dir: Path,
    stage_to: Path | None,
    sealed_on: str | None = None,
) -> tuple[int, ContractReport]:
    """Parse, count and validate; stage the typed data when `stage_to` is given.

    The data is parsed once into an in-memory DuckDB database that checks and stages it; it
    spills into a work folder of its own per call (two processes never share one). Any DuckDB
    error that is not about the file's content is an `IngestFault`."""
    warm_up()  # GX gets ready in its thread while DuckDB parses
    work_dir.mkdir(parents=True, exist_ok=True)
    own = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=work_dir))
    try:
        with _connect(own) as con:
            return _check_parsed(
                con, delivery, contract, manifest, data_path, stage_to=stage_to, sealed_on=sealed_on
            )
    except (duckdb.Error, SqlError) as exc:
        cause = exc.__cause__ if isinstance(exc, SqlError) and exc.__cause__ else exc
        raise _machine_fault(delivery, cause) from cause
    finally:
        shutil.rmtree(own, ignore_errors=True)


def _check_parsed(
    con: duckdb.DuckDBPyConnection,
    delivery: Delivery,
    contract: Contract,
    manifest: dict[str, Any],
    data_path: Path,
    *,
    stage_to: Path | None,
    sealed_on: str | None,
) -> tuple[int, ContractReport]:
    """Count, check and (when `stage_to` is given) stage a delivery parsed into `con`."""
    rows = _prepare(con, data_path, contract, manifest)
    if rows != manifest["row_count"]:
        raise _Rejected(
            Violation(
                "row_count_mismatch",
                f"the file has {rows:,} data rows but the manifest says {manifest['row_count']:,}",
            ),
            rows=rows,
        )
    pending = _validate(con, contract, manifest)
    # GX reports in its own thread while DuckDB writes the Parquet file the scan says may be
    # staged; nothing is put in place before GX's verdict.
    temporary = None
    try:
        if stage_to is not None and pending.scan_passed:
            temporary = temporary_sibling(stage_to)  # named first: a failed write is removed
            _write_staged(con, manifest, temporary, sealed_on)
        report = pending.report()
        if not report.passed:
            raise _Rejected(
                *[
                    Violation(f.rule, f.description, f.rows, f.example_lines)
                    for f in report.failures
                ],
                rows=rows,
                report=report,
            )
        if temporary is not None and stage_to is not None:
            _commit_staged(temporary, manifest, data_path, stage_to)
            temporary = None
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
    return rows, report


def _machine_fault(delivery: Delivery, exc: BaseException) -> IngestFault:
    """A DuckDB error that is not about the file's content: the machine's fault, said the way
    a person acts on it (a full disk, a limit, memory) when it is one of those."""
    told = describe_fault(exc)
    if told is not None:
        return IngestFault(
            f"{delivery.label}: the check could not run: {told} (the delivery was left in "
            "the landing zone and nothing was loaded)"
        )
    return IngestFault(
        f"{delivery.label}: the check could not run ({type(exc).__name__}: "
        f"{str(exc).splitlines()[0][:120]}); the delivery was left in the landing zone and "
        "nothing was loaded; fix the cause and run again"
    )


def _quarantine(
    delivery: Delivery, rejection: _Rejected, manifest: dict[str, Any] | None, date_quarantine: Path
) -> Path:
    """Move the delivery's files, unchanged, next to a machine-readable reason.

    Atomic as seen from outside: the reason is written into a hidden `.partial` folder first,
    the files are renamed into it (a rename moves a symbolic link itself, never its target),
    and the folder is renamed to its final name last. `finish_quarantines` completes a folder
    left half-way by a killed run, so the rejection is never lost and nothing is lost."""
    received = dt.datetime.now(dt.UTC)
    name = f"{delivery.dataset}-{received:%Y%m%dT%H%M%S%fZ}"
    parent = date_quarantine / delivery.partner_folder
    partial = parent / f".{name}{QUARANTINE_PARTIAL}"
    partial.mkdir(parents=True, exist_ok=False)
    first = rejection.violations[0]
    present = [p for p in delivery.files if os.path.lexists(p)]
    write_record(
        partial / REASON,
        {
            "partner": delivery.partner_folder,
            "dataset": delivery.dataset,
            "extract_date": (manifest or {}).get("extract_date"),
            "received": received.isoformat(timespec="seconds"),
            "rule": first.rule,
            "message": first.message,
            "rows": first.rows,
            "example_lines": first.example_lines,
            "remedy": first.remedy,
            "violations": [v.as_dict() for v in rejection.violations],
            "files": [p.name for p in present],
            "landing_folder": str(delivery.folder),
        },
    )
    if rejection.report is not None:
        write_record(partial / VALIDATION_RESULT, rejection.report.gx_result)
    kill_point("quarantine_reason_written")
    for path in present:
        _move_out_of_landing(path, partial / path.name)
        kill_point("quarantine_file_moved")
    target = parent / name
    os.rename(partial, target)
    return target


def _move_out_of_landing(source: Path, target: Path) -> None:
    """Move one landing entry (file, folder or symbolic link, never what a link points to)
    into the quarantine. A rename when both are on one file system; otherwise (a landing zone
    on another disk) a copy, flushed, then the original removed. When the landing zone does not
    let the original go (read-only, immutable), the copy stays in the quarantine as evidence,
    the original stays where it is, and the run says so: the rejection is never lost and never
    blocks the next run."""
    try:
        os.rename(source, target)
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EACCES, errno.EPERM, errno.EROFS, errno.EBUSY):
            raise
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    elif source.is_dir():
        shutil.copytree(source, target, symlinks=True)
    else:
        shutil.copy2(source, target)
        with target.open("rb") as handle:
            os.fsync(handle.fileno())
    try:
        shutil.rmtree(source) if source.is_dir() and not source.is_symlink() else source.unlink()
    except OSError as exc:
        log.warning(
            "%s: could not be removed from the landing zone (%s); a copy is in the quarantine. "
            "Remove it by hand, or it will be judged again",
            printable(str(source)),
            exc.strerror,
        )


def finish_quarantines(quarantine: Path) -> list[Path]:
    """Complete the quarantine folders a killed run left half-way (see `_quarantine`): move the
    files its reason names that are still in the landing folder, then give it its final name.
    A folder without a reason never had a file moved into it and is removed."""
    finished = []
    for partial in sorted(Path(quarantine).glob(f"*/*/.*{QUARANTINE_PARTIAL}")):
        reason = partial / REASON
        if not reason.is_file():
            shutil.rmtree(partial, ignore_errors=True)
            continue
        try:
            record = read_json(reason)
            landing_folder = Path(record.get("landing_folder", ""))
            for name in record.get("files", []):
                source = landing_folder / name
                if os.path.lexists(source) and not os.path.lexists(partial / name):
                    _move_out_of_landing(source, partial / name)
            target = partial.with_name(partial.name[1 : -len(QUARANTINE_PARTIAL)])
            os.rename(partial, target)
        except (OSError, ValueError) as exc:
            # Never let one stuck quarantine stop every later night: say so and go on.
            log.warning("%s: could not be finished (%s); left as it is", partial, exc)
            continue
        finished.append(target)
    return finished


def outcome_from_quarantine(folder: Path) -> IngestOutcome:
    """The rejection recorded in a quarantine folder, e.g. one a killed run left half-way and
    the next run finished: that run reports it as its own, as the killed one would have."""
    reason = read_json(Path(folder) / REASON)
    data_files = [name for name in reason.get("files", []) if Path(name).suffix in DATA_SUFFIXES]
    return IngestOutcome(
        reason["partner"],
        reason["dataset"],
        "rejected",
        rows=reason.get("rows"),
        violations=[Violation(**v) for v in reason["violations"]],
        quarantine_path=Path(folder),
        extract_date=reason.get("extract_date"),
        data_file=Path(folder) / data_files[0] if data_files else None,
    )


# ---------------------------------------------------------------- a whole date


def _die_with_parent(parent: int) -> None:
    """Worker initializer: the kernel kills this worker when the run that started it dies
    (even by SIGKILL), so no orphaned worker holds memory or files after a killed run; and the
    worker leaves without the interpreter's final teardown (see `_leave_quietly`)."""
    import atexit

    atexit.register(_leave_quietly)  # registered first, so it runs after every other handler
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
        if os.getppid() != parent:  # the run died before prctl took effect
            os._exit(1)


def _leave_quietly() -> None:
    """Great Expectations keeps DuckDB objects referenced until shutdown, and DuckDB's bindings
    then print a page of "nanobind: leaked ..." lines on stderr, from every worker, into the
    user's terminal (as `pipelines.cli._exit` explains for the CLI itself). Its work is done
    (outcomes returned, files written atomically, the GX session closed by its own handler):
    leave directly."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def ingest_date(
    run_date: dt.date,
    *,
    data_dir: Path,
    landing: Path | None = None,
    on_dataset: Any = None,
    workers: int = 1,
) -> list[IngestOutcome]:
    """Ingest every dataset delivered for `run_date`; one bad dataset never stops the others.

    Datasets are independent (own work database, own outputs), so `workers > 1` checks them in
    parallel processes, as the DAG's mapped tasks do (each process pays for importing GX, a few
    seconds; in one process GX's work already overlaps DuckDB's, see `contract_runner`).
    Outcomes come back in discovery order (the work is handed out largest file first);
    `on_dataset` is called as each finishes. An
    `IngestFault` of any dataset stops the run (after the other workers are stopped).
    """
    date_dir = Layout(data_dir, landing).landing_date(run_date)
    if date_dir.is_symlink():
        raise IngestFault(
            f"{date_dir} is a symbolic link, which is never followed: deliver into a real folder"
        )
    deliveries = discover(date_dir)
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
    with ProcessPoolExecutor(
        max_workers=min(workers, len(deliveries)),
        mp_context=context,
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    ) as pool:
        # largest first: the workers pick datasets in this order, so no big file starts last
        # and leaves one worker busy while the others wait (at 2,000,000 persons one partner's
        # claims are a quarter of the night's bytes)
        futures = {
            pool.submit(
                ingest_delivery, deliveries[index], run_date=run_date, data_dir=data_dir
            ): index
            for index in sorted(
                range(len(deliveries)), key=lambda i: -_size_of(deliveries[i].data_file)
            )
        }
        results: dict[int, IngestOutcome] = {}
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if on_dataset:
                    on_dataset(results[futures[future]])
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return [results[index] for index in range(len(deliveries))]


def _size_of(path: Path | None) -> int:
    """A delivered file's size, for the order of work (0 when it cannot be read: its
    check will say why)."""
    try:
        return path.stat().st_size if path is not None and not path.is_symlink() else 0
    except OSError:
        return 0


def check_delivery(folder: Path) -> list[IngestOutcome]:
    """Partner side: run every check the hub runs on the datasets in `folder`, loading nothing.

    `folder` is a partner folder (with manifests) or a date folder (with partner folders).
    Folder-name checks apply only when the path looks like `<YYYY-MM-DD>/<PARTNER>`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such delivery folder")
    is_partner_folder = any(
        p.name.endswith(MANIFEST_SUFFIX) or p.suffix in DATA_SUFFIXES for p in folder.iterdir()
    )
    deliveries = datasets_in(folder) if is_partner_folder else discover(folder)
    with tempfile.TemporaryDirectory(prefix="cri-check-") as work:
        return [_check_only(delivery, Path(work)) for delivery in deliveries]


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
        if delivery.problem is not None:
            raise _Rejected(Violation(*delivery.problem))
        manifest = _read_manifest(delivery)
        partner = manifest["partner"]
        contract, data_path, _ = _check_files(manifest, delivery, run_date)
        rows, _ = _check_content(
            delivery, contract, manifest, data_path, work_dir=work, stage_to=None
        )
        return IngestOutcome(
            partner,
            delivery.dataset,
            "ok",
            rows=rows,
            extract_date=manifest["extract_date"],
            data_file=data_path,
        )
    except _Rejected as rejection:
        return _rejected_outcome(partner, delivery, rejection, manifest)
