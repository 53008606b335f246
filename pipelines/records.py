"""The small JSON files the pipeline reads and writes, each defined once: its name, its fields
and how it is read.

- manifest (`<dataset>.manifest.json`): written by the partner tool next to each data file,
  checked by ingest (interfaces.md section 2).
- receipt (`<dataset>.receipt.json`): written by ingest next to each staged Parquet file; what
  was accepted, from which bytes (carry-forward and `unchanged_since` read it).
- reason (`reason.json`): written by ingest in each quarantine folder; the rule, the rows and the
  remedy, never a value.
- run record (`run.json`): written last into a date's linked folder; its presence marks the
  folder as complete (the `runs` table reads it).
- delivery record (`delivery.json`): in the outbox and the ledger (see `pipelines.ledger`).
- export manifest (`<file>.manifest.json` next to a partner export or signal file).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pipelines.fileio import write_json_atomically

log = logging.getLogger(__name__)

MANIFEST_SUFFIX = ".manifest.json"
SIGNALS_MANIFEST = "signals.manifest.json"  # next to each gemeente's signal file, whatever its name
RECEIPT_SUFFIX = ".receipt.json"
REASON = "reason.json"
RUN_RECORD = "run.json"
EVICTED_RECORD = "evicted.json"  # linked/<date>/: tables removed after publishing (evict.py)
SELECTION_RECORD = "selection.json"
DELIVERY_RECORD = "delivery.json"
VALIDATION_RESULT = "validation.json"

# A manifest is a few hundred bytes; anything far larger is not one, and is not read whole.
MANIFEST_MAX_BYTES = 64 * 1024
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


def manifest_path(folder: Path, dataset: str) -> Path:
    """`<dataset>.manifest.json` in a delivery folder."""
    return Path(folder) / f"{dataset}{MANIFEST_SUFFIX}"


def export_manifest_path(data_file: Path) -> Path:
    """The manifest next to an exported file: `signals.csv.p7m` -> `signals.manifest.json`."""
    stem = Path(data_file).name.split(".", 1)[0]
    return Path(data_file).with_name(f"{stem}{MANIFEST_SUFFIX}")


def receipt_path(staged: Path) -> Path:
    """`<dataset>.receipt.json` next to `<dataset>.parquet`."""
    staged = Path(staged)
    return staged.with_name(staged.name.removesuffix(".parquet") + RECEIPT_SUFFIX)


def read_json(path: Path) -> dict[str, Any]:
    """One of our records; raises FileNotFoundError / ValueError as json does."""
    return json.loads(Path(path).read_text("utf-8"))


def read_optional(path: Path, what: str) -> dict[str, Any] | None:
    """A record that may be missing (None) or damaged (None, with a warning naming it)."""
    try:
        return read_json(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        log.warning("unreadable %s %s ignored", what, path)
        return None


def read_receipt(path: Path) -> dict[str, Any] | None:
    """A staged dataset's receipt, or None when there is none (or it is unreadable)."""
    return read_optional(path, "receipt")


def write_record(path: Path, document: dict[str, Any]) -> Path:
    """Every record is written atomically (UTF-8, indented)."""
    return write_json_atomically(path, document)
