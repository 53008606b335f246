"""The hub's data directory: every folder and well-known file, named once.

    <data-dir>/
      landing/<date>/<PARTNER>/      what partners deliver (theirs; the hub only moves rejects)
      staging/<date>/<PARTNER>/      accepted datasets as Parquet, each with its receipt
      quarantine/<date>/<PARTNER>/   rejected deliveries, unchanged, next to reason.json
      linked/<date>/                 link, plans and signals of a date; run.json marks it done
      outbox/<date>/                 what leaves the hub: partner exports and signal files
      ledger/<date>/<delivery id>/   append-only record of the signals delivered
      warehouse/analytics.duckdb     the analysts' snapshot: views over warehouse/history/
      warehouse/history/<date>/<v>/  each run date's published partition, one folder per version
      reports/<date>/                the run report and the validation results
      feedback/<GMxxxx>/             what gemeenten send back about their signals (theirs)
      feedback_ledger/<intake id>/   each feedback intake: the files taken in, its rows until
                                     folded into feedback_ledger/compacted.parquet
      keys/, certs/                  the demo's key files and certificates
      partner-side/, gemeente-side/  the demo's stand-ins for the partners' and gemeenten' machines
      .cri-overlap.lock              one run at a time

A stage asks a `Layout` for a path instead of spelling a folder name, so that moving a folder is
a change here only. The landing zone may live elsewhere (`--landing`, `CRI_LANDING_DIR`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

DATE_GLOB = "????-??-??"  # a date folder: YYYY-MM-DD
WORK = ".work"  # under a swapped root: where a stage builds a folder before it is swapped in


def _day(date: dt.date | str) -> str:
    return date if isinstance(date, str) else date.isoformat()


@dataclass(frozen=True)
class Layout:
    """Paths under one data directory (and its landing zone)."""

    data_dir: Path
    landing_dir: Path | None = None  # None: <data-dir>/landing

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.landing_dir is not None:
            object.__setattr__(self, "landing_dir", Path(self.landing_dir))

    # the roots
    @property
    def landing(self) -> Path:
        return self.landing_dir or self.data_dir / "landing"

    @property
    def staging(self) -> Path:
        return self.data_dir / "staging"

    @property
    def quarantine(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def linked(self) -> Path:
        return self.data_dir / "linked"

    @property
    def outbox(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def ledger(self) -> Path:
        return self.data_dir / "ledger"

    @property
    def warehouse(self) -> Path:
        return self.data_dir / "warehouse"

    @property
    def feedback(self) -> Path:
        """Where gemeenten put their signed feedback files, one folder per gemeente."""
        return self.data_dir / "feedback"

    @property
    def feedback_ledger(self) -> Path:
        return self.data_dir / "feedback_ledger"

    @property
    def reports(self) -> Path:
        return self.data_dir / "reports"

    @property
    def keys(self) -> Path:
        return self.data_dir / "keys"

    @property
    def certs(self) -> Path:
        return self.data_dir / "certs"

    @property
    def gemeente_side(self) -> Path:
        """The demo's stand-in for the gemeenten' own machines (their private keys)."""
        return self.data_dir / "gemeente-side"

    @property
    def gemeente_keys(self) -> Path:
        return self.gemeente_side / "keys"

    @property
    def partner_side(self) -> Path:
        """The demo's stand-in for the partners' own machines (raw extracts, with BSNs)."""
        return self.data_dir / "partner-side"

    @property
    def lock_file(self) -> Path:
        return self.data_dir / ".cri-overlap.lock"

    @property
    def snapshot(self) -> Path:
        return self.warehouse / "analytics.duckdb"

    @property
    def history(self) -> Path:
        """Published partitions, one folder per run date (`pipelines.history`)."""
        return self.warehouse / "history"

    # swapped roots: folders built under <root>/.work/ and renamed into place whole
    @property
    def swapped_roots(self) -> tuple[Path, ...]:
        return (self.linked, self.outbox)

    @property
    def derived_roots(self) -> tuple[Path, ...]:
        """Roots the hub derives (everything but the landing zone and the quarantine)."""
        return (self.staging, self.linked, self.outbox, self.ledger, self.warehouse, self.reports)

    # one date
    def landing_date(self, date: dt.date | str) -> Path:
        return self.landing / _day(date)

    def staging_date(self, date: dt.date | str) -> Path:
        return self.staging / _day(date)

    def quarantine_date(self, date: dt.date | str) -> Path:
        return self.quarantine / _day(date)

    def linked_date(self, date: dt.date | str) -> Path:
        return self.linked / _day(date)

    def linked_work(self, date: dt.date | str) -> Path:
        return self.linked / WORK / _day(date)

    def outbox_date(self, date: dt.date | str) -> Path:
        return self.outbox / _day(date)

    def partner_exports(self, date: dt.date | str) -> Path:
        """Each partner's share of a night's plans (`outbox/<date>/partners/<PARTNER>/`)."""
        return self.outbox_date(date) / "partners"

    def outbox_work(self, date: dt.date | str) -> Path:
        return self.outbox / WORK / _day(date)

    def ledger_date(self, date: dt.date | str) -> Path:
        return self.ledger / _day(date)

    def history_date(self, date: dt.date | str) -> Path:
        return self.history / _day(date)

    def report_date(self, date: dt.date | str) -> Path:
        return self.reports / _day(date)

    def report_file(self, date: dt.date | str) -> Path:
        return self.report_date(date) / "index.html"

    def validation_date(self, date: dt.date | str) -> Path:
        """Great Expectations' validation results of the datasets a date accepted."""
        return self.report_date(date) / "validation"

    @property
    def pending(self) -> Path:
        """Markers of dates whose later dates are being derived again (`commit.finish_pending`)."""
        return self.linked / ".pending"

    def pending_marker(self, date: dt.date | str) -> Path:
        return self.pending / _day(date)

    def demo_key(self, purpose: str) -> Path:
        return self.keys / f"{purpose}.key.json"

    def dates(self, root: Path) -> list[dt.date]:
        """The date folders directly under a root, oldest first."""
        if not root.is_dir():
            return []
        found = []
        for folder in root.glob(DATE_GLOB):
            try:
                found.append(dt.date.fromisoformat(folder.name))
            except ValueError:
                continue
        return sorted(found)
