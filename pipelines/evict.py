"""Eviction: after a night is published, the full per-date copies that only a rerun could still
need go, once they are older than `history.full_copies_days` (policy, default 14) before the
newest run date (issue 14: the hub's derived data grows with the changes, not by a copy a night).

What goes, per run date, once the date's history is published (`pipelines.history`):
- `linked/<date>/` the per-person tables (persons, claims, plan tables: kept change-only in
  `warehouse/history/`) and `income.parquet` (an input of the plans stage);
- `staging/<date>/<PARTNER>/<dataset>.parquet` (the parsed copy of a delivery; its receipt stays,
  and so does the delivery itself in the landing zone) and an identities delivery's copied
  `identity-keys/` (staged again with it);
- `outbox/<date>/partners/` (each partner's share of the night's plans, fetched long since).

What stays: run records, the small per-date tables, the ledger, signal files, reports, the
history. `linked/<date>/evicted.json` lists what went, with the size and modification time each
file had, so that publishing sees the date unchanged.

A rerun or backfill that reaches an evicted date restores what it needs: a staged dataset is
ingested again from the landing zone (`restore_staged`), a date's persons are read from the
snapshot (`pipelines.link`). The window must be longer than the carry-forward limit, so that a
normal night never restores anything.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path
from typing import Any

from pipelines.errors import CriError
from pipelines.fileio import sha256_file
from pipelines.layout import Layout
from pipelines.policy import load_policy
from pipelines.records import (
    EVICTED_RECORD,
    RUN_RECORD,
    read_json,
    read_receipt,
    receipt_path,
    write_record,
)
from privacy.sealing import KEYS_FOLDER

log = logging.getLogger(__name__)

DEFAULT_FULL_COPIES_DAYS = 14
LINKED_EVICTED = ("persons", "claims", "plan_proposals", "plan_lines", "plan_schedule", "income")


class RestoreError(CriError):
    """An evicted dataset cannot be staged again from the landing zone."""


def full_copies_days() -> int:
    """Days of full per-date copies kept behind the newest run date (policy
    `history.full_copies_days`); at least one more than the carry-forward limit."""
    from pipelines.carry_forward import max_staleness_days

    history = load_policy().get("history") or {}
    days = int(history.get("full_copies_days", DEFAULT_FULL_COPIES_DAYS))
    return max(days, max_staleness_days() + 1)


def evict(layout: Layout) -> list[dt.date]:
    """Evict every published date older than the window; returns the dates evicted now."""
    from pipelines.history import fingerprint, versions

    dates = [
        d for d in layout.dates(layout.linked) if (layout.linked_date(d) / RUN_RECORD).is_file()
    ]
    if not dates:
        return []
    cutoff = dates[-1] - dt.timedelta(days=full_copies_days())
    evicted = []
    for date in (d for d in dates if d < cutoff):
        files = _present(layout, date)
        if not files:
            continue
        published = versions(layout, date)
        if not published or published[-1].sources != fingerprint(layout, date):
            continue  # not published as it is now: keep it all until it is
        _evict_date(layout, date, files)
        evicted.append(date)
    if evicted:
        log.info("evicted the full copies of %s (kept change-only)", ", ".join(map(str, evicted)))
    return evicted


def _present(layout: Layout, date: dt.date) -> list[Path]:
    linked = [layout.linked_date(date) / f"{t}.parquet" for t in LINKED_EVICTED]
    staged = sorted(layout.staging_date(date).glob("*/*.parquet"))
    staged += sorted(layout.staging_date(date).glob(f"*/{KEYS_FOLDER}"))  # identities' key files
    exports = layout.partner_exports(date)
    return [p for p in linked if p.is_file()] + staged + ([exports] if exports.exists() else [])


def _evict_date(layout: Layout, date: dt.date, files: list[Path]) -> None:
    """Record what goes (with the stats publishing compares), then remove it."""
    record_path = layout.linked_date(date) / EVICTED_RECORD
    record = read_json(record_path) if record_path.is_file() else {"files": {}}
    from pipelines.history import FROM_LINKED

    for path in files:
        # the published tables' sources, as publishing saw them (see history.fingerprint)
        if path.parent == layout.linked_date(date) and path.stem in FROM_LINKED:
            status = path.stat()
            key = path.relative_to(layout.data_dir).as_posix()
            record["files"][key] = [status.st_size, status.st_mtime_ns]
    record["evicted_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    write_record(record_path, record)
    for path in files:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def restore_staged(layout: Layout, staged_files: list[Path]) -> list[Path]:
    """Stage again, from the landing zone, each of `staged_files` that was evicted (a rerun or
    backfill reaching back past the window). Its bytes must be those of the receipt; it is
    checked again as on its night, and nothing is quarantined if that fails now."""
    from pipelines.ingest import datasets_in, restage

    restored = []
    for staged in staged_files:
        keys_missing = staged.stem == "identities" and not (staged.parent / KEYS_FOLDER).is_dir()
        if staged.is_file() and not keys_missing:
            continue
        receipt = read_receipt(receipt_path(staged)) or {}
        day = dt.date.fromisoformat(staged.parent.parent.name)
        partner, dataset = staged.parent.name, staged.stem
        folder = layout.landing_date(day) / partner
        found = [d for d in datasets_in(folder) if d.dataset == dataset] if folder.is_dir() else []
        if not found:
            raise RestoreError(
                f"{staged}: evicted, and its delivery is no longer in {folder}; put the "
                "delivery back in the landing zone and run again"
            )
        data_file = found[0].data_file
        if data_file is None or sha256_file(data_file) != receipt.get("sha256"):
            raise RestoreError(
                f"{folder}: the delivery has changed since it was accepted on {day} (its sha256 "
                "differs from the receipt); put the accepted delivery back and run again"
            )
        restage(found[0], run_date=day, data_dir=layout.data_dir)
        restored.append(staged)
    if restored:
        log.warning("staged again from the landing zone: %s", ", ".join(map(str, restored)))
    return restored


def restore_selection(layout: Layout, selection: Any) -> list[Path]:
    """`restore_staged` for every dataset a run's selection (`carry_forward.select`) links."""
    return restore_staged(layout, [*selection.files("claims"), *selection.files("income")])
