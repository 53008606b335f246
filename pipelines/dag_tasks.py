"""Adapters between the Airflow DAG's tasks and the stage functions.

Airflow passes small JSON values between tasks (XCom); these functions turn them into calls of
the same stage functions the CLI uses, log one line a person can read, and return small JSON
values again. No Airflow imports here, no business logic: that stays in the stage modules.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def ingest_one(delivery: dict, run_date: dt.date, settings: dict[str, Any]) -> dict:
    """Ingest one dataset; a rejection is a result, not a task failure."""
    from pipelines.ingest import datasets_in, ingest_delivery

    [found] = [d for d in datasets_in(Path(delivery["folder"])) if d.dataset == delivery["dataset"]]
    outcome = ingest_delivery(found, run_date=run_date, data_dir=settings["data_dir"])
    (log.warning if outcome.rejected else log.info)(outcome.summary())
    return {
        "partner": outcome.partner,
        "dataset": outcome.dataset,
        "status": outcome.status,
        "rows": outcome.rows,
        "rule": outcome.rule,
        "summary": outcome.summary(),
    }


def link_stage(run_date: dt.date, settings: dict[str, Any], outcomes: list[dict]) -> dict:
    from pipelines.link import link_run
    from pipelines.run import hub_key, require_staged_claims

    start = time.perf_counter()
    require_staged_claims(settings["data_dir"], run_date, deliveries_found=len(outcomes))
    result = link_run(run_date, data_dir=settings["data_dir"], hub_key=hub_key(settings["hub_key"]))
    log.info(
        "linked %s claims of %s persons; %s at 2+ partners",
        result.claims,
        result.persons,
        result.persons_multi,
    )
    return {
        "claims": result.claims,
        "persons": result.persons,
        "persons_multi": result.persons_multi,
        "partners": result.partners,
        "seconds": round(time.perf_counter() - start, 2),
    }


def plans_stage(run_date: dt.date, settings: dict[str, Any]) -> dict:
    from pipelines.plans import plan_run

    start = time.perf_counter()
    summary = plan_run(run_date, data_dir=settings["data_dir"])
    log.info("plans: %s", summary.outcomes)
    return {"outcomes": summary.outcomes, "seconds": round(time.perf_counter() - start, 2)}


def signals_stage(run_date: dt.date, settings: dict[str, Any]) -> dict:
    from pipelines.run import hub_key
    from pipelines.signals import signal_run

    start = time.perf_counter()
    summary = signal_run(
        run_date, data_dir=settings["data_dir"], hub_key=hub_key(settings["hub_key"])
    )
    log.info("signals: %s to %s gemeenten", summary.signals, len(summary.gemeenten))
    return {"signals": summary.signals, "seconds": round(time.perf_counter() - start, 2)}


def publish_stage(
    run_date: dt.date,
    settings: dict[str, Any],
    outcomes: list[dict],
    linked: dict,
    started: dt.datetime,
) -> dict:
    from pipelines.run import publish_run, record_run

    start = time.perf_counter()
    record_run(
        settings["data_dir"],
        run_date,
        started=started,
        rejected=sum(o["status"] == "rejected" for o in outcomes),
        claims=linked["claims"],
        persons=linked["persons"],
        partners=linked["partners"],
    )
    snapshot, delivery = publish_run(settings["data_dir"], run_date, settings["certs"])
    log.info(
        "published %s; signals delivered to %s gemeenten, %s waiting",
        snapshot,
        len(delivery.delivered),
        len(delivery.waiting),
    )
    return {
        "snapshot": str(snapshot),
        "delivered": delivery.delivered,
        "waiting": delivery.waiting,
        "seconds": round(time.perf_counter() - start, 2),
    }


def report_stage(
    run_date: dt.date, settings: dict[str, Any], outcomes: list[dict], timings: dict[str, float]
) -> str:
    from pipelines.report import write_report

    path = write_report(settings["data_dir"], run_date, stage_seconds=timings)
    log.info("run report: %s", path)
    return str(path)
