"""The nightly run for one extract date: ingest -> link -> plans -> signals -> commit and deliver
-> publish -> report. The CLI's `run` and the Airflow DAG call these same stage functions.

Night after night (interfaces.md sections 3 and 4, version 2):
- One run at a time per data directory (`pipelines.lock`); a run first tidies what a killed run
  left behind (`pipelines.recovery`).
- link, plans and signals build the date's tables in a work folder (`linked/.work/<date>/`);
  `commit_and_deliver` swaps it in whole as `linked/<date>/`, so a run killed before that leaves
  the previous result of the date, and one killed after it is redone identically.
- Missing or rejected datasets are carried forward within `max_staleness_days`
  (`pipelines.carry_forward`); the run lists them and exits 3.
- Every date's tables depend only on the deliveries of that date and earlier ones: a run of an
  older date derives again the later dates whose carried-forward data it changes and refreshes
  their persistence, so running dates in any order gives the same tables.
- Signals only go forward in time, and are recorded in the ledger once delivered
  (`pipelines.delivery`).

Exit codes (interfaces.md section 5): 0 all datasets accepted and published; 3 published, but
one or more datasets were rejected, missing or stale; 1 failed, nothing published.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.carry_forward import Selection, select
from pipelines.delivery import DeliveryReport, certs_dir, decide, deliver_night
from pipelines.faults import kill_point
from pipelines.fileio import write_json_atomically
from pipelines.ingest import IngestOutcome, ingest_date, outcome_from_quarantine
from pipelines.link import LinkResult, link_run, linked_dates, linked_root, refresh_persistence
from pipelines.lock import data_dir_lock
from pipelines.plans import PlanSummary, plan_run
from pipelines.publish import publish
from pipelines.recovery import WORK, recover, swap_in, work_folder
from pipelines.report import write_report
from pipelines.resource_faults import describe as describe_fault
from pipelines.settings import HUB_KEY_ENV, landing_dir
from pipelines.signals import SignalSummary, signal_run
from privacy.keys import KeyFileError, KeyMaterial, load_key_file

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_REJECTIONS = 0, 1, 3
# Files of a committed date that link and plans do not make: kept when a later date is derived
# again after an older date ran (its signals stay what they were: signals only go forward).
KEPT_ON_REDERIVE = ("signals.parquet", "signal_monitoring.parquet")


class RunFailed(Exception):
    """The run stopped before publishing; the previous outputs stand."""

    nothing_published = True


class SnapshotFailed(RunFailed):
    """The night's files were delivered, but the analysts' snapshot could not be rebuilt (the
    previous one stands); a rerun of the date delivers the same signals and publishes."""

    nothing_published = False


@dataclass
class RunSummary:
    run_date: dt.date
    outcomes: list[IngestOutcome] = field(default_factory=list)
    selection: Selection | None = None
    link: LinkResult | None = None
    plans: PlanSummary | None = None
    signals: SignalSummary | None = None
    delivery: DeliveryReport | None = None
    rederived: list[dt.date] = field(default_factory=list)
    report: Path | None = None
    snapshot: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rejected(self) -> list[IngestOutcome]:
        return [o for o in self.outcomes if o.rejected]

    @property
    def incomplete(self) -> bool:
        """Anything rejected, missing, carried forward or left out tonight."""
        stale = self.selection is not None and any(
            c.status != "fresh" for c in self.selection.chosen
        )
        return bool(self.rejected) or stale

    @property
    def exit_code(self) -> int:
        return EXIT_REJECTIONS if self.incomplete else EXIT_OK


def hub_key(path: Path | None) -> KeyMaterial:
    """The hub key from `--hub-key` or `CRI_HUB_KEY_FILE`; never from code."""
    chosen = path or (Path(os.environ[HUB_KEY_ENV]) if os.environ.get(HUB_KEY_ENV) else None)
    if chosen is None:
        raise KeyFileError(
            f"no hub key: pass --hub-key FILE or set {HUB_KEY_ENV} "
            "(`cri-overlap demo` puts one in <data-dir>/keys/hub.key.json)"
        )
    return load_key_file(chosen, "hub")


def refuse_future(run_date: dt.date) -> None:
    """A run for a date after today would judge extracts that cannot exist yet."""
    if run_date > dt.date.today():
        raise RunFailed(f"run date {run_date} is after today ({dt.date.today()}); nothing done")


def run_night(
    run_date: dt.date,
    *,
    data_dir: Path,
    landing: Path | None = None,
    hub_key_path: Path | None = None,
    workers: int = 1,
    certs: Path | None = None,
    on_dataset: Callable[[IngestOutcome], None] | None = None,
    on_stage: Callable[[str, float], None] | None = None,
    wait_for_lock: float = 0.0,
) -> RunSummary:
    """Run every stage for `run_date`; raise `RunFailed` when nothing can be published."""
    refuse_future(run_date)
    key = hub_key(hub_key_path)
    data_dir = Path(data_dir)
    with data_dir_lock(data_dir, what=f"run --date {run_date}", wait_seconds=wait_for_lock):
        recovered = recover(data_dir, landing_dir(landing, data_dir)).rejections_of(run_date)
        finish_pending(data_dir, key)
        return _run_locked(
            run_date, data_dir, landing, key, workers, certs, on_dataset, on_stage, recovered
        )


def _run_locked(
    run_date: dt.date,
    data_dir: Path,
    landing: Path | None,
    key: KeyMaterial,
    workers: int,
    certs: Path | None,
    on_dataset: Callable[[IngestOutcome], None] | None,
    on_stage: Callable[[str, float], None] | None,
    recovered_rejections: list[Path],
) -> RunSummary:
    started = dt.datetime.now(dt.UTC)
    summary = RunSummary(run_date)

    def stage(name: str, work: Callable[[], Any]) -> Any:
        begin = time.perf_counter()
        result = work()
        summary.seconds[name] = round(time.perf_counter() - begin, 2)
        if on_stage:
            on_stage(name, summary.seconds[name])
        return result

    # Rejections a killed run of this date left half-way (finished by `recover`) are this
    # run's, as they would have been the killed run's.
    finished = [outcome_from_quarantine(folder) for folder in recovered_rejections]
    for outcome in finished:
        if on_dataset:
            on_dataset(outcome)
    summary.outcomes = finished + stage(
        "ingest",
        lambda: ingest_date(
            run_date, data_dir=data_dir, landing=landing, on_dataset=on_dataset, workers=workers
        ),
    )
    kill_point("after_ingest")
    summary.selection, summary.link = stage(
        "link", lambda: link_stage(run_date, data_dir, key, deliveries_found=len(summary.outcomes))
    )
    kill_point("after_link")
    summary.plans = stage("plans", lambda: plans_stage(run_date, data_dir))
    kill_point("after_plans")
    summary.signals = stage("signals", lambda: signals_stage(run_date, data_dir, key))
    kill_point("after_signals")

    def commit_publish() -> Path:
        summary.delivery, summary.rederived = commit_and_deliver(
            run_date,
            data_dir,
            key,
            certs_dir(certs, data_dir),
            started=started,
            outcomes=[outcome_record(o) for o in summary.outcomes],
        )
        try:
            return publish(data_dir)
        except Exception as exc:
            delivered = summary.delivery is not None and summary.delivery.signals_delivered
            why = describe_fault(exc) or (
                f"{type(exc).__name__}: "
                + (str(exc).strip().splitlines() or [""])[0][:300]
                + "; fix the cause and run this date again"
            )
            raise SnapshotFailed(
                f"the night {run_date} was committed"
                + (" and its signal files delivered" if delivered else "")
                + ", but the analysts' database could not be rebuilt (the previous one stands): "
                + why
            ) from exc

    summary.snapshot = stage("publish", commit_publish)
    kill_point("after_publish")
    summary.report = stage(
        "report", lambda: write_report(data_dir, run_date, stage_seconds=dict(summary.seconds))
    )
    return summary


def outcome_record(outcome: IngestOutcome) -> dict[str, Any]:
    """What the run record keeps of one dataset's intake (also the DAG's XCom value)."""
    return {
        "partner": outcome.partner,
        "dataset": outcome.dataset,
        "status": outcome.status,
        "rows": outcome.rows,
        "rule": outcome.rule,
        "unchanged_since": outcome.unchanged_since,
        "summary": outcome.summary(),
    }


def night_folder(data_dir: Path, run_date: dt.date) -> Path:
    """The work folder where link, plans and signals build a date's tables."""
    return linked_root(data_dir) / WORK / run_date.isoformat()


def link_stage(
    run_date: dt.date, data_dir: Path, key: KeyMaterial, *, deliveries_found: int
) -> tuple[Selection, LinkResult]:
    """Choose each partner's data (tonight's or carried forward) and link it into a fresh
    work folder."""
    selection = select(data_dir, run_date)
    if not selection.files("claims"):
        raise RunFailed(
            f"no accepted claims for {run_date} nor within the {selection.max_staleness_days} "
            f"days before it (deliveries found tonight: {deliveries_found})"
        )
    for chosen in selection.stale:
        log.warning("%s: carried forward from %s", chosen.label, chosen.extract_date)
    for chosen in selection.left_out:
        log.warning("%s: no accepted data within the staleness limit; left out", chosen.label)
    folder = work_folder(data_dir, "linked", run_date.isoformat())
    result = link_run(run_date, data_dir=data_dir, hub_key=key, selection=selection, folder=folder)
    write_json_atomically(folder / "selection.json", selection.fingerprint())
    return selection, result


def _night_folder_of_this_run(data_dir: Path, run_date: dt.date) -> Path:
    folder = night_folder(data_dir, run_date)
    if not (folder / "selection.json").is_file():
        raise RunFailed(f"{folder}: the link stage of {run_date} has not run in this run")
    return folder


def plans_stage(run_date: dt.date, data_dir: Path) -> PlanSummary:
    return plan_run(run_date, folder=_night_folder_of_this_run(data_dir, run_date))


def signals_stage(run_date: dt.date, data_dir: Path, key: KeyMaterial) -> SignalSummary:
    return signal_run(
        run_date,
        data_dir=data_dir,
        hub_key=key,
        folder=_night_folder_of_this_run(data_dir, run_date),
    )


def commit_and_deliver(
    run_date: dt.date,
    data_dir: Path,
    key: KeyMaterial,
    certs: Path,
    *,
    started: dt.datetime,
    outcomes: list[dict[str, Any]],
) -> tuple[DeliveryReport, list[dt.date]]:
    """Swap the date's work folder in, derive later dates again where it changes them, and
    deliver the night's outbox (when its date allows)."""
    folder = _night_folder_of_this_run(data_dir, run_date)
    if not (folder / "signals.parquet").is_file():
        raise RunFailed(f"{folder}: the signals stage of {run_date} has not run in this run")
    selection = select(data_dir, run_date)
    decision = decide(data_dir, run_date, selection)
    record_run(
        folder,
        run_date,
        started=started,
        outcomes=outcomes,
        selection=selection,
        delivery_note=decision.note,
    )
    marker = pending_marker(data_dir, run_date)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    final = swap_in(folder, linked_root(data_dir) / run_date.isoformat())
    kill_point("after_commit")
    rederived = derive_later_dates(data_dir, run_date, key)
    marker.unlink()
    delivery = deliver_night(
        data_dir, run_date, folder=final, decision=decision, hub_key=key, certs=certs
    )
    return delivery, rederived


def record_run(
    folder: Path,
    run_date: dt.date,
    *,
    started: dt.datetime,
    outcomes: list[dict[str, Any]],
    selection: Selection,
    delivery_note: str | None,
) -> Path:
    """`run.json` in the date's folder: what this run loaded, rejected and carried forward, and
    why it delivers nothing, if so (the `runs` table; whether signals were delivered is read
    from the ledger, which is what happened); its presence marks the folder as complete."""
    counts = _link_counts(folder)
    return write_json_atomically(
        Path(folder) / "run.json",
        {
            "run_date": run_date.isoformat(),
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "datasets_accepted": sum(o["status"] in ("accepted", "unchanged") for o in outcomes),
            "datasets_rejected": sum(o["status"] == "rejected" for o in outcomes),
            **counts,
            "datasets_unchanged": [
                f"{o['partner']}/{o['dataset']} since {o['unchanged_since']}"
                for o in outcomes
                if o.get("unchanged_since")
            ],
            "datasets_stale": [c.describe() for c in selection.stale],
            "partners_left_out": [c.label for c in selection.left_out],
            "delivery_note": delivery_note,
            "selection": selection.fingerprint(),
        },
    )


def _link_counts(folder: Path) -> dict[str, Any]:
    import duckdb

    with duckdb.connect() as con:
        claims, persons, partners = con.execute(
            "select (select count(*) from read_parquet($c)), (select count(*) from "
            "read_parquet($p)), (select coalesce(list(distinct partner order by partner), []) "
            "from read_parquet($c))",
            {"c": str(folder / "claims.parquet"), "p": str(folder / "persons.parquet")},
        ).fetchone()
    return {"claims": claims, "persons": persons, "partners": list(partners)}


def pending_marker(data_dir: Path, run_date: dt.date) -> Path:
    """Present from just before a date is committed until the later dates are derived again:
    left behind only by a killed run, and then finished by the next run (`finish_pending`)."""
    return linked_root(data_dir) / ".pending" / run_date.isoformat()


def finish_pending(data_dir: Path, key: KeyMaterial) -> list[dt.date]:
    """Derive again the later dates of a date whose run was killed while committing it (or
    while deriving them): thoroughly, since the walk was interrupted half-way."""
    rederived = []
    for marker in sorted((linked_root(data_dir) / ".pending").glob("????-??-??")):
        date = dt.date.fromisoformat(marker.name)
        log.warning("after an interrupted run: bringing the dates after %s up to date", date)
        rederived += derive_later_dates(data_dir, date, key, thorough=True)
        marker.unlink()
    return rederived


def derive_later_dates(
    data_dir: Path, run_date: dt.date, key: KeyMaterial, *, thorough: bool = False
) -> list[dt.date]:
    """After `run_date` was (re)run, bring the later dates' tables up to date.

    A later date whose carried-forward data now differs (this date's delivery is newer than
    what it carried) is linked and planned again; the others only get their persistence
    refreshed. The walk stops at the first date past the staleness window whose persistence did
    not change, so the nightly run of the newest date costs nothing here; `thorough` walks to
    the end (after an interrupted walk, where "unchanged" proves nothing about the dates after)."""
    later = [d for d in linked_dates(data_dir) if d > run_date]
    rederived: list[dt.date] = []
    previous_changed = True
    for date in later:
        record_path = linked_root(data_dir) / date.isoformat() / "run.json"
        record = json.loads(record_path.read_text("utf-8"))
        selection = select(data_dir, date)
        if selection.fingerprint() != record.get("selection"):
            _derive_again(data_dir, date, key, selection, record)
            rederived.append(date)
            changed = True
        elif previous_changed or thorough:
            changed = refresh_persistence(data_dir, date)
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
    data_dir: Path, date: dt.date, key: KeyMaterial, selection: Selection, record: dict
) -> None:
    folder = work_folder(data_dir, "linked", date.isoformat())
    link_run(date, data_dir=data_dir, hub_key=key, selection=selection, folder=folder)
    plan_run(date, folder=folder)
    committed = linked_root(data_dir) / date.isoformat()
    for name in KEPT_ON_REDERIVE:
        if (committed / name).is_file():
            shutil.copyfile(committed / name, folder / name)
    write_json_atomically(
        folder / "run.json",
        {
            **record,
            **_link_counts(folder),
            "datasets_stale": [c.describe() for c in selection.stale],
            "partners_left_out": [c.label for c in selection.left_out],
            "selection": selection.fingerprint(),
        },
    )
    swap_in(folder, committed)
