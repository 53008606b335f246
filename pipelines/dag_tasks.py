"""The Airflow side of `pipelines.stages`: one function per kind of task, no business logic.

Airflow hands small JSON values between tasks (XCom). A stage's task rebuilds the `Night` from
its upstream's value, runs the stage through `stages.run_stage` (the same call the CLI makes) and
returns the night's JSON part again. A stage with a `fan_out` becomes a listing task and one
mapped task per item; the next stage's task collects their outcome records (and counts their
time as the stage's).

Each task holds the data directory's lock while it works (the mapped tasks of a night share it),
waiting up to `LOCK_WAIT_SECONDS` for a CLI run to finish; the listing task tidies what a killed
run left behind. No Airflow imports here.
"""

from __future__ import annotations

import datetime as dt
import time
from contextlib import AbstractContextManager
from typing import Any

from pipelines.night import Night
from pipelines.settings import Settings
from pipelines.stages import STAGE_NAMES, prepare, record_stage, run_stage, stage_named

LOCK_WAIT_SECONDS = 30 * 60


def _lock(settings: Settings, what: str, *, shared: bool = False) -> AbstractContextManager:
    from pipelines.lock import data_dir_lock

    return data_dir_lock(
        settings.data_dir,
        what=f"Airflow task {what}",
        wait_seconds=LOCK_WAIT_SECONDS,
        shared=shared,
    )


def list_items(stage: str, run_date: dt.date, params: dict[str, Any] | None) -> list[dict]:
    """The listing task of a fan-out stage: tidy up after a killed run, then list the items
    (one mapped task each)."""
    from pipelines.run import refuse_future

    refuse_future(run_date)
    night = Night(run_date, Settings.from_params(params))
    fan_out = stage_named(stage).fan_out
    assert fan_out is not None, stage
    with _lock(night.settings, f"{fan_out.list_task} {run_date}"):
        night.recovered = prepare(night)
        return fan_out.list_items(night)


def run_item(
    stage: str, item: dict[str, Any], run_date: dt.date, params: dict[str, Any] | None
) -> dict:
    """One mapped task of a fan-out stage; its outcome record, with the seconds it took."""
    night = Night(run_date, Settings.from_params(params))
    fan_out = stage_named(stage).fan_out
    assert fan_out is not None, stage
    begin = time.perf_counter()
    with _lock(night.settings, f"{stage} {run_date}", shared=True):
        record = fan_out.run_item(night, item)
    return {**record, "seconds": round(time.perf_counter() - begin, 2)}


def run_task(
    stage: str,
    upstream: Any,
    run_date: dt.date,
    params: dict[str, Any] | None,
    started: dt.datetime,
) -> dict[str, Any]:
    """The task of one stage: the night so far (from the upstream task), the stage, the night
    again for the next task."""
    settings = Settings.from_params(params)
    night = _night_from(stage, upstream, run_date, settings, started)
    with _lock(settings, f"{stage} {run_date}"):
        run_stage(stage_named(stage), night)
    return night.to_xcom()


def _night_from(
    stage: str, upstream: Any, run_date: dt.date, settings: Settings, started: dt.datetime
) -> Night:
    """From the upstream's night; after a fan-out, from its outcome records (recorded as that
    stage's result, with the sum of the mapped tasks' time)."""
    if isinstance(upstream, dict) and "run_date" in upstream:
        return Night.from_xcom(upstream, settings)
    night = Night(run_date, settings, started=started)
    previous = STAGE_NAMES.index(stage) - 1
    if previous >= 0 and upstream is not None:
        records = [dict(r) for r in upstream]
        seconds = sum(r.pop("seconds", 0.0) for r in records)
        night.outcomes = records
        record_stage(stage_named(STAGE_NAMES[previous]), night, records, seconds)
    return night
