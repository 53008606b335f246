"""Retention: run dates older than `history.retention_days` (policy, default 400) are removed
from every hub folder (interfaces.md section 4, "History, reruns and order").

Measured from the newest run date the hub has committed (or tonight's, if newer): a date D is
kept while `newest - D <= retention_days`. Every folder of such a date goes: the partners'
deliveries (`landing/`), `staging/`, `quarantine/`, `linked/`, `outbox/`, the ledger and the
run reports; the publish of the same night then drops the date's partitions from
`warehouse/history/` (after storing the oldest date kept whole: `pipelines.history`), so the
new snapshot has none of its rows. The committing run records the dates it
removes in its run record (`runs.dates_removed`) before it removes them, so a removal is never
unrecorded; a folder is first renamed to a hidden name and then deleted, so a kill half-way
leaves either the whole date or a hidden leftover that the next run's recovery deletes.

A run of a date already outside the retention period is refused: it would be removed again at
once, with the partners' deliveries of that date.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

from pipelines.errors import CriError
from pipelines.faults import kill_point
from pipelines.layout import Layout
from pipelines.policy import load_policy

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 400
EXPIRED_PREFIX = ".expired-"  # a date folder being removed (see `remove_expired`)


class RetentionRefused(CriError):
    """The run date is older than the retention period."""


def retention_days() -> int:
    """How many days of run dates the hub keeps (policy `history.retention_days`)."""
    history = load_policy().get("history") or {}
    return int(history.get("retention_days", DEFAULT_RETENTION_DAYS))


def _roots(layout: Layout) -> tuple[Path, ...]:
    """Every root whose date folders retention removes."""
    return (
        layout.landing,
        layout.staging,
        layout.quarantine,
        layout.linked,
        layout.outbox,
        layout.ledger,
        layout.reports,
    )


def newest_date(layout: Layout) -> dt.date | None:
    """The newest committed run date (a date folder in `linked/`)."""
    dates = layout.dates(layout.linked)
    return dates[-1] if dates else None


def cutoff(layout: Layout, run_date: dt.date) -> dt.date:
    """The oldest run date kept when `run_date` runs."""
    newest = max(run_date, newest_date(layout) or run_date)
    return newest - dt.timedelta(days=retention_days())


def refuse_expired(layout: Layout, run_date: dt.date) -> None:
    """Refuse a run of a date outside the retention period (before it touches anything)."""
    oldest = cutoff(layout, run_date)
    if run_date < oldest:
        raise RetentionRefused(
            f"run date {run_date} is older than the retention period: the hub keeps run dates "
            f"from {oldest} ({retention_days()} days before its newest run date; policy "
            "history.retention_days)"
        )


def expired_dates(layout: Layout, run_date: dt.date) -> list[dt.date]:
    """The dates with a folder anywhere that fall before the cutoff of a run of `run_date`."""
    oldest = cutoff(layout, run_date)
    found = {d for root in _roots(layout) for d in layout.dates(root) if d < oldest}
    return sorted(found)


def remove_expired(layout: Layout, dates: list[dt.date]) -> list[Path]:
    """Remove every folder of `dates`: each renamed to a hidden name first, then deleted."""
    removed = []
    for root in _roots(layout):
        for date in dates:
            folder = root / date.isoformat()
            if not folder.exists():
                continue
            doomed = root / f"{EXPIRED_PREFIX}{date.isoformat()}"
            shutil.rmtree(doomed, ignore_errors=True)
            try:
                folder.rename(doomed)
            except OSError as exc:
                # e.g. a read-only landing zone: the night stands; the next run tries again.
                log.warning("retention: %s could not be removed (%s)", folder, exc.strerror)
                continue
            kill_point("retention_renamed")
            shutil.rmtree(doomed, ignore_errors=True)
            removed.append(folder)
    if dates:
        log.warning(
            "retention: removed run dates %s (older than %s days)",
            ", ".join(map(str, dates)),
            retention_days(),
        )
    return removed


def finish_removals(layout: Layout) -> list[Path]:
    """Delete what a killed removal left (hidden `.expired-<date>` folders); for recovery."""
    leftovers = [
        folder
        for root in _roots(layout)
        if root.is_dir()
        for folder in root.glob(f"{EXPIRED_PREFIX}*")
    ]
    for folder in leftovers:
        shutil.rmtree(folder, ignore_errors=True)
    return leftovers
