"""Committing a night: its tables swapped in whole, the later dates it changes derived again,
and its outbox delivered (interfaces.md sections 3 and 4, version 2).

link, plans and signals build a date's tables in `linked/.work/<date>/`; `commit_and_deliver`
writes the run record (`run.json`, which marks the folder complete) and swaps the folder in as
`linked/<date>/`, so a run killed before that leaves the previous result of the date, and one
killed after it is redone identically. Every date's tables depend only on the deliveries of that
date and earlier ones: committing an older date derives again the later dates whose
carried-forward data it changes and refreshes their persistence, so running dates in any order
gives the same tables. A marker (`linked/.pending/<date>`) makes the next run finish a walk that
a kill interrupted.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path
from typing import Any

from pipelines.carry_forward import Selection, optional_datasets, select
from pipelines.delivery import DeliveryReport, decide, deliver_night
from pipelines.errors import CriError
from pipelines.evict import restore_selection
from pipelines.faults import kill_point
from pipelines.feedback import expire as expire_feedback
from pipelines.layout import Layout
from pipelines.link import link_run, linked_dates, refresh_persistence
from pipelines.plans import plan_run
from pipelines.records import RUN_RECORD, SELECTION_RECORD, read_json, read_optional, write_record
from pipelines.recovery import fresh_folder, swap_in
from pipelines.retention import cutoff, expired_dates, remove_expired
from pipelines.sql import query
from privacy.keys import KeyMaterial

log = logging.getLogger(__name__)

# Files of a committed date that link and plans do not make: kept when a later date is derived
# again after an older date ran (its signals stay what they were: signals only go forward).
KEPT_ON_REDERIVE = ("signals.parquet", "signal_monitoring.parquet", "signal_partners.parquet")


class RunFailed(CriError):
    """The run stopped before publishing; the previous outputs stand."""

    nothing_published = True


class AfterCommitFailed(RunFailed):
    """The night's tables were committed (and perhaps its files delivered) before a later step
    failed; a rerun of the date finishes it (and delivers the same signals again)."""

    nothing_published = False


class SnapshotFailed(AfterCommitFailed):
    """The night's files were delivered, but the analysts' snapshot could not be rebuilt (the
    previous one stands); a rerun of the date delivers the same signals and publishes."""


def night_folder(layout: Layout, run_date: dt.date, *, needs: str = SELECTION_RECORD) -> Path:
    """The work folder this run's link stage made for `run_date`; `needs` names the file the
    stage before the caller leaves there (so a stage run out of order fails in one line)."""
    folder = layout.linked_work(run_date)
    if not (folder / needs).is_file():
        stage = "link" if needs == SELECTION_RECORD else "signals"
        raise RunFailed(f"{folder}: the {stage} stage of {run_date} has not run in this run")
    return folder


def commit_and_deliver(
    layout: Layout,
    run_date: dt.date,
    key: KeyMaterial,
    certs: Path,
    *,
    started: dt.datetime,
    outcomes: list[dict[str, Any]],
) -> tuple[DeliveryReport, list[dt.date]]:
    """Swap the date's work folder in, derive later dates again where it changes them, and
    deliver the night's outbox (when its date allows)."""
    folder = night_folder(layout, run_date, needs="signals.parquet")
    selection = select(layout.data_dir, run_date)
    decision = decide(layout.data_dir, run_date, selection)
    expired = expired_dates(layout, run_date)
    record_run(
        folder,
        run_date,
        started=started,
        outcomes=outcomes,
        selection=selection,
        delivery_note=decision.note,
        dates_removed=expired + _removed_before(layout, run_date),
    )
    marker = layout.pending_marker(run_date)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    final = swap_in(folder, layout.linked_date(run_date))
    kill_point("after_commit")
    remove_expired(layout, expired)  # recorded in run.json above, before anything goes
    expire_feedback(layout, cutoff(layout, run_date))
    try:
        rederived = derive_later_dates(layout, run_date, key)
        marker.unlink()
        delivery = deliver_night(
            layout.data_dir, run_date, folder=final, decision=decision, hub_key=key, certs=certs
        )
    except CriError as exc:
        raise AfterCommitFailed(
            f"the night {run_date} was committed, but {exc.one_line()}; run this date again"
        ) from exc
    return delivery, rederived


def record_run(
    folder: Path,
    run_date: dt.date,
    *,
    started: dt.datetime,
    outcomes: list[dict[str, Any]],
    selection: Selection,
    delivery_note: str | None,
    dates_removed: list[dt.date],
) -> Path:
    """`run.json` in the date's folder: what this run loaded, rejected and carried forward, and
    why it delivers nothing, if so (the `runs` table; whether signals were delivered is read
    from the ledger, which is what happened); its presence marks the folder as complete."""
    return write_record(
        Path(folder) / RUN_RECORD,
        {
            "run_date": run_date.isoformat(),
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "datasets_accepted": sum(o["status"] in ("accepted", "unchanged") for o in outcomes),
            "datasets_rejected": sum(o["status"] == "rejected" for o in outcomes),
            **link_counts(folder),
            "datasets_unchanged": [
                f"{o['partner']}/{o['dataset']} unchanged_since {o['unchanged_since']}"
                for o in outcomes
                if o.get("unchanged_since")
            ],
            **_selection_facts(selection),
            "delivery_note": delivery_note,
            "dates_removed": sorted({d.isoformat() for d in dates_removed}),
        },
    )


def _removed_before(layout: Layout, run_date: dt.date) -> list[dt.date]:
    """The dates an earlier run of this date removed (a rerun keeps that record)."""
    earlier = read_optional(layout.linked_date(run_date) / RUN_RECORD, "run record") or {}
    return [dt.date.fromisoformat(d) for d in earlier.get("dates_removed", [])]


def _selection_facts(selection: Selection) -> dict[str, Any]:
    return {
        "datasets_stale": [c.describe() for c in selection.stale],
        "partners_left_out": [c.label for c in selection.left_out],
        "selection": selection.fingerprint(),
    }


def link_counts(folder: Path) -> dict[str, Any]:
    """Claims, persons and partners of a linked folder (for the run record)."""
    import duckdb

    with duckdb.connect() as con:
        claims, persons, partners = query(
            con,
            "commit/link_counts",
            {"claims": str(folder / "claims.parquet"), "persons": str(folder / "persons.parquet")},
        ).fetchone()
    return {"claims": claims, "persons": persons, "partners": list(partners)}


def finish_pending(layout: Layout, key: KeyMaterial) -> list[dt.date]:
    """Derive again the later dates of a date whose run was killed while committing it (or
    while deriving them): thoroughly, since the walk was interrupted half-way."""
    rederived = []
    for marker in sorted(layout.pending.glob("????-??-??")):
        date = dt.date.fromisoformat(marker.name)
        log.warning("after an interrupted run: bringing the dates after %s up to date", date)
        rederived += derive_later_dates(layout, date, key, thorough=True)
        marker.unlink()
    return rederived


def derive_later_dates(
    layout: Layout, run_date: dt.date, key: KeyMaterial, *, thorough: bool = False
) -> list[dt.date]:
    """After `run_date` was (re)run, bring the later dates' tables up to date.

    A later date whose carried-forward data now differs (this date's delivery is newer than
    what it carried) is linked and planned again; the others only get their persistence
    refreshed. The walk stops at the first date past the staleness window whose persistence did
    not change, so the nightly run of the newest date costs nothing here; `thorough` walks to
    the end (after an interrupted walk, where "unchanged" proves nothing about the dates after)."""
    later = [d for d in linked_dates(layout.data_dir) if d > run_date]
    rederived: list[dt.date] = []
    previous_changed = True
    for date in later:
        record = read_json(layout.linked_date(date) / RUN_RECORD)
        selection = select(layout.data_dir, date)
        if selection.fingerprint() != record.get("selection"):
            _derive_again(layout, date, key, selection, record)
            rederived.append(date)
            changed = True
        elif previous_changed or thorough:
            changed = refresh_persistence(layout.data_dir, date)
        else:
            changed = False
        kill_point("derived_a_later_date")
        if not (changed or thorough) and (date - run_date).days > selection.max_staleness_days:
            break
        previous_changed = changed
    if rederived:
        log.warning("derived again after %s: %s", run_date, ", ".join(map(str, rederived)))
    return rederived


def _derive_again(
    layout: Layout, date: dt.date, key: KeyMaterial, selection: Selection, record: dict
) -> None:
    restore_selection(layout, selection)  # staged copies evicted after publishing
    folder = fresh_folder(layout.linked_work(date))
    link_run(date, data_dir=layout.data_dir, hub_key=key, selection=selection, folder=folder)
    plan_run(date, folder=folder)
    committed = layout.linked_date(date)
    for name in KEPT_ON_REDERIVE:
        if (committed / name).is_file():
            shutil.copyfile(committed / name, folder / name)
    facts = _selection_facts(selection)
    # the link's inputs as chosen now; the identities as recorded, since the date's signal
    # files (which used them) are kept
    facts["datasets_stale"] = [
        *(c.describe() for c in selection.chosen if c.status == "stale"),
        *(item for item in record.get("datasets_stale", []) if _optional_item(item)),
    ]
    write_record(folder / RUN_RECORD, {**record, **link_counts(folder), **facts})
    swap_in(folder, committed)


def _optional_item(item: str) -> bool:
    """Whether a `datasets_stale` entry (`PARTNER/dataset DATE`) names an optional dataset."""
    label = item.rsplit(" ", 1)[0]
    return tuple(label.rsplit("/", 1)) in optional_datasets()
