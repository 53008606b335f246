"""Adapters between the Airflow DAG's tasks and the stage functions.

Airflow passes small JSON values between tasks (XCom); these functions turn them into calls of
the same stage functions the CLI uses (`pipelines.run`), log one line a person can read, and
return small JSON values again. No Airflow imports here, no business logic: that stays in the
stage modules.

Each task holds the data directory's lock while it works (the mapped ingest tasks of a night
share it), waiting up to `LOCK_WAIT_SECONDS` for a CLI run to finish; the first task tidies
what a killed run left behind.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 30 * 60


def _lock(settings: dict[str, Any], what: str, *, shared: bool = False) -> AbstractContextManager:
    from pipelines.lock import data_dir_lock

    return data_dir_lock(
        settings["data_dir"],
        what=f"Airflow task {what}",
        wait_seconds=LOCK_WAIT_SECONDS,
        shared=shared,
    )


def find_deliveries(run_date: dt.date, settings: dict[str, Any]) -> list[dict]:
    """Tidy up after a killed run, then list the night's datasets (one mapped task each)."""
    from pipelines.ingest import discover
    from pipelines.recovery import recover
    from pipelines.run import refuse_future

    refuse_future(run_date)
    with _lock(settings, f"find_deliveries {run_date}"):
        recovered = recover(settings["data_dir"], settings["landing"]).rejections_of(run_date)
        found = discover(Path(settings["landing"]) / run_date.isoformat())
    # A rejection a killed run left half-way is this run's (see `run.run_night`).
    finished = [
        {"folder": folder.parent.name, "dataset": folder.name, "recovered": str(folder)}
        for folder in recovered
    ]
    return finished + [{"folder": d.partner_folder, "dataset": d.dataset} for d in found]


def ingest_one(delivery: dict, run_date: dt.date, settings: dict[str, Any]) -> dict:
    """Ingest one dataset; a rejection is a result, not a task failure."""
    from pipelines.ingest import discover, ingest_delivery, outcome_from_quarantine
    from pipelines.run import outcome_record

    if "recovered" in delivery:
        outcome = outcome_from_quarantine(Path(delivery["recovered"]))
        log.warning(outcome.summary())
        return outcome_record(outcome)
    with _lock(settings, f"ingest {run_date}", shared=True):
        matching = [
            d
            for d in discover(Path(settings["landing"]) / run_date.isoformat())
            if (d.partner_folder, d.dataset) == (delivery["folder"], delivery["dataset"])
        ]
        if not matching:
            log.warning("%s/%s is no longer in the landing zone", *delivery.values())
            return {
                **delivery,
                "partner": delivery["folder"],
                "status": "gone",
                "rows": None,
                "rule": None,
                "unchanged_since": None,
                "summary": "no longer delivered",
            }
        outcome = ingest_delivery(matching[0], run_date=run_date, data_dir=settings["data_dir"])
    (log.warning if outcome.rejected else log.info)(outcome.summary())
    return outcome_record(outcome)


def link_stage(run_date: dt.date, settings: dict[str, Any], outcomes: list[dict]) -> dict:
    from pipelines.run import finish_pending, hub_key, link_stage

    start = time.perf_counter()
    with _lock(settings, f"link {run_date}"):
        finish_pending(settings["data_dir"], hub_key(settings["hub_key"]))
        selection, result = link_stage(
            run_date,
            settings["data_dir"],
            hub_key(settings["hub_key"]),
            deliveries_found=len(outcomes),
        )
    log.info(
        "linked %s claims of %s persons; %s at 2+ partners",
        result.claims,
        result.persons,
        result.persons_multi,
    )
    for line in [f"carried forward: {c.describe()}" for c in selection.stale] + [
        f"left out: {c.label}" for c in selection.left_out
    ]:
        log.warning(line)
    return {
        "claims": result.claims,
        "persons": result.persons,
        "persons_multi": result.persons_multi,
        "partners": result.partners,
        "stale": [c.describe() for c in selection.stale],
        "left_out": [c.label for c in selection.left_out],
        "seconds": round(time.perf_counter() - start, 2),
    }


def plans_stage(run_date: dt.date, settings: dict[str, Any]) -> dict:
    from pipelines.run import plans_stage

    start = time.perf_counter()
    with _lock(settings, f"plans {run_date}"):
        summary = plans_stage(run_date, settings["data_dir"])
    log.info("plans: %s", summary.outcomes)
    return {"outcomes": summary.outcomes, "seconds": round(time.perf_counter() - start, 2)}


def signals_stage(run_date: dt.date, settings: dict[str, Any]) -> dict:
    from pipelines.run import hub_key, signals_stage

    start = time.perf_counter()
    with _lock(settings, f"signals {run_date}"):
        summary = signals_stage(run_date, settings["data_dir"], hub_key(settings["hub_key"]))
    log.info("signals: %s for %s gemeenten", summary.signals, len(summary.gemeenten))
    return {"signals": summary.signals, "seconds": round(time.perf_counter() - start, 2)}


def publish_stage(
    run_date: dt.date,
    settings: dict[str, Any],
    outcomes: list[dict],
    started: dt.datetime,
) -> dict:
    from pipelines.delivery import certs_dir
    from pipelines.publish import publish
    from pipelines.run import commit_and_deliver, hub_key

    start = time.perf_counter()
    with _lock(settings, f"publish {run_date}"):
        delivery, rederived = commit_and_deliver(
            run_date,
            settings["data_dir"],
            hub_key(settings["hub_key"]),
            certs_dir(settings["certs"], settings["data_dir"]),
            started=started,
            outcomes=outcomes,
        )
        snapshot = publish(settings["data_dir"])
    if delivery.note:
        log.warning(delivery.note)
    log.info(
        "published %s; signals delivered to %s gemeenten, %s waiting; derived again: %s",
        snapshot,
        len(delivery.delivered),
        len(delivery.waiting),
        ", ".join(map(str, rederived)) or "none",
    )
    return {
        "snapshot": str(snapshot),
        "delivered": delivery.delivered,
        "waiting": delivery.waiting,
        "note": delivery.note,
        "seconds": round(time.perf_counter() - start, 2),
    }


def report_stage(
    run_date: dt.date, settings: dict[str, Any], outcomes: list[dict], timings: dict[str, float]
) -> str:
    from pipelines.report import write_report

    with _lock(settings, f"report {run_date}"):
        path = write_report(settings["data_dir"], run_date, stage_seconds=timings)
    log.info("run report: %s", path)
    return str(path)
