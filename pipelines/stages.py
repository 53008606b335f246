"""The nightly pipeline, declared once: every stage with its function, what it reads, what it
writes and the contract that checks its output.

`run.run_night` (the CLI) runs `STAGES` in order in one process; the Airflow DAG
(`dags/cri_overlap_nightly.py`) makes one task per stage from the same tuple (and, for a stage
with a `fan_out`, one mapped task per item). Both go through `run_stage`, so timing, logging and
the kill points used by the crash tests are the same whichever way a night runs. Adding a stage is
one entry here plus its module.

A stage function takes the `Night` and returns its result; it reads from earlier stages only the
JSON part of the night (outcomes, timings), which is all an Airflow task gets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.faults import kill_point
from pipelines.night import Night
from pipelines.versions import ANALYTICS_CONTRACT

log = logging.getLogger(__name__)

ANALYTICS = "-".join(ANALYTICS_CONTRACT)
LogLines = list[tuple[int, str]]  # (logging level, line) for the task log / --verbose


@dataclass(frozen=True)
class FanOut:
    """How the DAG spreads a stage over mapped tasks: `list_items` (its own task, named
    `list_task`) returns JSON items; `run_item` handles one and returns its outcome record."""

    list_task: str
    list_items: Callable[[Night], list[dict[str, Any]]]
    run_item: Callable[[Night, dict[str, Any]], dict[str, Any]]
    map_label: str  # Jinja template for the mapped task's label in the Airflow UI


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Night], Any]
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    contract: str | None
    summarise: Callable[[Any], dict[str, Any]]
    log_lines: Callable[[Any], LogLines]
    fan_out: FanOut | None = None
    assets: tuple[str, ...] = ()  # what the DAG declares as this task's outlets


# ---- ingest --------------------------------------------------------------------------------


def prepare(night: Night) -> list[Path]:
    """Before any stage: tidy what a killed run left (its unfinished rejections of this date
    are this run's, as they would have been the killed run's) and finish an interrupted
    derivation of later dates."""
    from pipelines.commit import finish_pending
    from pipelines.recovery import recover
    from pipelines.retention import refuse_expired

    refuse_expired(night.layout, night.run_date)
    recovered = recover(night.settings.data_dir, night.settings.landing)
    finish_pending(night.layout, night.key)
    return recovered.rejections_of(night.run_date)


def outcome_record(outcome: Any) -> dict[str, Any]:
    """What the run keeps of one dataset's intake (also the DAG's XCom value)."""
    return {
        "partner": outcome.partner,
        "dataset": outcome.dataset,
        "status": outcome.status,
        "rows": outcome.rows,
        "rule": outcome.rule,
        "unchanged_since": outcome.unchanged_since,
        "summary": outcome.summary(),
    }


def _ingest(night: Night) -> list[dict[str, Any]]:
    """Every dataset of the night, in parallel; returns (and keeps) their outcome records."""
    from pipelines.ingest import ingest_date, outcome_from_quarantine

    finished = [outcome_from_quarantine(folder) for folder in night.recovered]
    for outcome in finished:
        if night.on_dataset:
            night.on_dataset(outcome)
    outcomes = finished + ingest_date(
        night.run_date,
        data_dir=night.settings.data_dir,
        landing=night.settings.landing,
        on_dataset=night.on_dataset,
        workers=night.settings.workers,
    )
    night.outcomes = [outcome_record(o) for o in outcomes]
    return night.outcomes


def _find_deliveries(night: Night) -> list[dict[str, Any]]:
    from pipelines.ingest import discover

    recovered = [
        {"folder": folder.parent.name, "dataset": folder.name, "recovered": str(folder)}
        for folder in night.recovered
    ]
    found = discover(night.layout.landing_date(night.run_date))
    return recovered + [{"folder": d.partner_folder, "dataset": d.dataset} for d in found]


def _ingest_item(night: Night, item: dict[str, Any]) -> dict[str, Any]:
    """One dataset; a rejection is a result, not a failure. A dataset gone from the landing
    zone since it was listed is reported as gone."""
    from pipelines.ingest import discover, ingest_delivery, outcome_from_quarantine

    if "recovered" in item:
        outcome = outcome_from_quarantine(Path(item["recovered"]))
    else:
        matching = [
            d
            for d in discover(night.layout.landing_date(night.run_date))
            if (d.partner_folder, d.dataset) == (item["folder"], item["dataset"])
        ]
        if not matching:
            log.warning("%s/%s is no longer in the landing zone", item["folder"], item["dataset"])
            return _gone(item)
        outcome = ingest_delivery(
            matching[0], run_date=night.run_date, data_dir=night.settings.data_dir
        )
    (log.warning if outcome.rejected else log.info)(outcome.summary())
    return outcome_record(outcome)


def _gone(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "partner": item["folder"],
        "dataset": item["dataset"],
        "status": "gone",
        "rows": None,
        "rule": None,
        "unchanged_since": None,
        "summary": "no longer delivered",
    }


def _ingest_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "datasets": len(records),
        "rejected": sum(r["status"] == "rejected" for r in records),
    }


def _ingest_lines(records: list[dict[str, Any]]) -> LogLines:
    # INFO: each rejection was told as it happened (the CLI's line, the mapped task's log).
    return [(logging.INFO, r["summary"]) for r in records]


# ---- link, plans, signals ------------------------------------------------------------------


def _link(night: Night) -> tuple[Any, Any]:
    """Choose each partner's data (tonight's or carried forward) and link it into a fresh
    work folder."""
    from pipelines.carry_forward import select
    from pipelines.commit import RunFailed
    from pipelines.evict import restore_selection
    from pipelines.link import link_run
    from pipelines.records import SELECTION_RECORD, write_record
    from pipelines.recovery import fresh_folder

    selection = select(night.settings.data_dir, night.run_date)
    if not selection.files("claims"):
        raise RunFailed(
            f"no accepted claims for {night.run_date} nor within the "
            f"{selection.max_staleness_days} days before it "
            f"(deliveries found tonight: {len(night.outcomes)})"
        )
    restore_selection(night.layout, selection)  # only a backfill reaching past the window
    folder = fresh_folder(night.layout.linked_work(night.run_date))
    result = link_run(
        night.run_date,
        data_dir=night.settings.data_dir,
        hub_key=night.key,
        selection=selection,
        folder=folder,
        session=night.session,
    )
    write_record(folder / SELECTION_RECORD, selection.fingerprint())
    return selection, result


def _link_summary(linked: tuple[Any, Any]) -> dict[str, Any]:
    selection, result = linked
    return {
        "claims": result.claims,
        "persons": result.persons,
        "persons_multi": result.persons_multi,
        "partners": result.partners,
        "stale": [c.describe() for c in selection.stale],
        "left_out": [c.label for c in selection.left_out],
    }


def _link_lines(linked: tuple[Any, Any]) -> LogLines:
    selection, result = linked
    return [
        (
            logging.INFO,
            f"linked {result.claims} claims of {result.persons} persons; "
            f"{result.persons_multi} at 2+ partners",
        ),
        *[
            (logging.WARNING, f"{c.label}: carried forward from {c.extract_date}")
            for c in selection.stale
        ],
        *[
            (logging.WARNING, f"{c.label}: no accepted data within the staleness limit; left out")
            for c in selection.left_out
        ],
    ]


def _plans(night: Night) -> Any:
    from pipelines.commit import night_folder
    from pipelines.plans import plan_run

    return plan_run(
        night.run_date,
        folder=night_folder(night.layout, night.run_date),
        session=night.session,
    )


def _feedback(night: Night) -> Any:
    """Take in what gemeenten sent back since the last run, before the signals read it."""
    from pipelines.feedback import take_in

    return take_in(night.settings.data_dir, night.settings.certs, night.run_date)


def _feedback_summary(intake: Any) -> dict[str, Any]:
    return {
        "files": len(intake.files),
        "rows": intake.rows,
        "refused": [f.line() for f in intake.refused],
        "lines": [f.line() for f in intake.files],
    }


def _signals(night: Night) -> Any:
    from pipelines.commit import night_folder
    from pipelines.signals import signal_run

    return signal_run(
        night.run_date,
        data_dir=night.settings.data_dir,
        hub_key=night.key,
        folder=night_folder(night.layout, night.run_date),
        session=night.session,
    )


def _signals_summary(summary: Any) -> dict[str, Any]:
    return {
        "signals": summary.signals,
        "gemeenten": len(summary.gemeenten),
        "excluded": summary.excluded,
        "suppressed_repeats": summary.suppressed_repeats,
        **summary.feedback,  # what the gemeenten' feedback held back or re-routed
    }


# ---- publish, report -----------------------------------------------------------------------


def _publish(night: Night) -> tuple[Any, list[Any], Path]:
    """Commit the night, deliver its outbox, and rebuild the analysts' snapshot. A failure of
    the snapshot after delivery says exactly what was delivered."""
    from pipelines.commit import SnapshotFailed, commit_and_deliver
    from pipelines.publish import publish
    from pipelines.resource_faults import describe as describe_fault

    delivery, rederived = commit_and_deliver(
        night.layout,
        night.run_date,
        night.key,
        night.settings.certs,
        started=night.started,
        outcomes=night.outcomes,
    )
    try:
        snapshot = publish(night.settings.data_dir, night.run_date)
    except Exception as exc:
        why = describe_fault(exc) or (
            f"{type(exc).__name__}: "
            + (str(exc).strip().splitlines() or [""])[0][:300]
            + "; fix the cause and run this date again"
        )
        raise SnapshotFailed(
            f"the night {night.run_date} was committed"
            + (" and its signal files delivered" if delivery.signals_delivered else "")
            + ", but the analysts' database could not be rebuilt (the previous one stands): "
            + why
        ) from exc
    _evict(night)
    return delivery, rederived, snapshot


def _evict(night: Night) -> None:
    """Full copies older than the window go once published; the night stands if they cannot
    (they are tried again the next night)."""
    from pipelines.evict import evict

    try:
        evict(night.layout)
    except OSError as exc:
        log.warning("eviction of old full copies failed (tried again next night): %s", exc)


def _publish_summary(published: tuple[Any, list[Any], Path]) -> dict[str, Any]:
    delivery, rederived, snapshot = published
    return {
        "snapshot": str(snapshot),
        "delivered": delivery.delivered,
        "waiting": delivery.waiting,
        "note": delivery.note,
        "rederived": [d.isoformat() for d in rederived],
        "identities": delivery.identities,  # per gemeente [signals, with a sealed identity]
    }


def _publish_lines(published: tuple[Any, list[Any], Path]) -> LogLines:
    delivery, rederived, snapshot = published
    # INFO: the CLI prints the note itself; the DAG's publish log shows it at INFO.
    lines: LogLines = [(logging.INFO, delivery.note)] if delivery.note else []
    return [
        *lines,
        (
            logging.INFO,
            f"published {snapshot}; signals delivered to {len(delivery.delivered)} gemeenten, "
            f"{len(delivery.waiting)} waiting; "
            f"{sum(m for _, m in delivery.identities.values()):,} of "
            f"{sum(n for n, _ in delivery.identities.values()):,} signals with a sealed "
            "identity; derived again: " + (", ".join(map(str, rederived)) or "none"),
        ),
    ]


def _report(night: Night) -> Path:
    from pipelines.report import write_report

    return write_report(night.settings.data_dir, night.run_date, stage_seconds=dict(night.seconds))


STAGES: tuple[Stage, ...] = (
    Stage(
        "ingest",
        _ingest,
        reads=("landing/<date>/<PARTNER>/",),
        writes=("staging/<date>/", "quarantine/<date>/", "reports/<date>/validation/"),
        contract="the manifest's contract (claims-1.0.0, income-1.0.0)",
        summarise=_ingest_summary,
        log_lines=_ingest_lines,
        fan_out=FanOut(
            "find_deliveries",
            _find_deliveries,
            _ingest_item,
            map_label="{{ task.op_kwargs['item']['folder'] }}/"
            "{{ task.op_kwargs['item']['dataset'] }}",
        ),
    ),
    Stage(
        "link",
        _link,
        reads=("staging/<date - max_staleness_days .. date>/",),
        writes=("linked/.work/<date>/{persons,claims,income,overlap_*}.parquet",),
        contract=ANALYTICS,
        summarise=_link_summary,
        log_lines=_link_lines,
    ),
    Stage(
        "plans",
        _plans,
        reads=("linked/.work/<date>/",),
        writes=("linked/.work/<date>/plan_*.parquet",),
        contract=ANALYTICS,
        summarise=lambda s: {"outcomes": s.outcomes},
        log_lines=lambda s: [
            (logging.INFO, f"plans: {s.outcomes}"),
            *([(logging.WARNING, f"plans: {s.note}")] if s.note else []),
        ],
    ),
    Stage(
        "feedback",
        _feedback,
        reads=("feedback/<GMxxxx>/", "certs/gemeenten/", "ledger/<signal dates>/"),
        writes=("feedback_ledger/<intake id>/",),
        contract="feedback-1.0.0",
        summarise=_feedback_summary,
        log_lines=lambda intake: [
            (logging.WARNING if f.status == "refused" else logging.INFO, f.line())
            for f in intake.files
        ],
    ),
    Stage(
        "signals",
        _signals,
        reads=("linked/.work/<date>/", "ledger/<cool-down window>/", "feedback_ledger/"),
        writes=("linked/.work/<date>/signal*.parquet",),
        contract=ANALYTICS,
        summarise=_signals_summary,
        log_lines=lambda s: [
            (logging.INFO, f"signals: {s.signals} for {len(s.gemeenten)} gemeenten")
        ],
    ),
    Stage(
        "publish",
        _publish,
        reads=("linked/.work/<date>/", "linked/", "ledger/"),
        # and removes the run dates past the retention period from every folder (retention.py)
        writes=(
            "linked/<date>/",
            "outbox/<date>/",
            "ledger/<date>/",
            "warehouse/",
            "feedback_ledger/compacted.parquet",
        ),
        contract=ANALYTICS,
        summarise=_publish_summary,
        log_lines=_publish_lines,
        assets=("snapshot", "signal_files"),
    ),
    Stage(
        "report",
        _report,
        reads=("linked/", "staging/<date>/", "quarantine/<date>/", "warehouse/"),
        writes=("reports/<date>/index.html",),
        contract=None,
        summarise=lambda path: {"report": str(path)},
        log_lines=lambda path: [(logging.INFO, f"run report: {path}")],
        assets=("run_report",),
    ),
)
STAGE_NAMES: tuple[str, ...] = tuple(stage.name for stage in STAGES)


def stage_named(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise KeyError(name)


def run_stage(
    stage: Stage, night: Night, *, on_stage: Callable[[str, float], None] | None = None
) -> Any:
    """Run one stage of the night: time it, keep its result and summary, log its lines."""
    begin = time.perf_counter()
    result = stage.run(night)
    record_stage(stage, night, result, time.perf_counter() - begin, on_stage=on_stage)
    return result


def record_stage(
    stage: Stage,
    night: Night,
    result: Any,
    seconds: float,
    *,
    on_stage: Callable[[str, float], None] | None = None,
) -> None:
    """Keep a finished stage's result, summary and time; log it; then the crash tests' kill
    point after the stage."""
    night.seconds[stage.name] = round(seconds, 2)
    night.results[stage.name] = result
    night.summaries[stage.name] = stage.summarise(result)
    for level, line in stage.log_lines(result):
        log.log(level, "%s", line)
    if on_stage:
        on_stage(stage.name, night.seconds[stage.name])
    kill_point(f"after_{stage.name}")
