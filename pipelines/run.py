"""The nightly run for one extract date in one process: the stages of `pipelines.stages`, in
order, under the data directory's lock. The CLI's `run` and `demo` call `run_night`; the
Airflow DAG runs the same stages as tasks (`pipelines.dag_tasks`).

Night after night (interfaces.md sections 3 and 4, version 2):
- One run at a time per data directory (`pipelines.lock`); a run first tidies what a killed run
  left behind (`pipelines.recovery`) and finishes an interrupted derivation (`pipelines.commit`).
- Missing or rejected datasets are carried forward within `max_staleness_days`
  (`pipelines.carry_forward`); the run lists them and exits 3.
- Running dates in any order gives the same tables; signals only go forward in time and are
  recorded in the ledger once delivered (`pipelines.commit`, `pipelines.delivery`).

Exit codes (interfaces.md section 5): 0 all datasets accepted and published; 3 published, but
one or more datasets were rejected, missing or stale; 1 failed, nothing published.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.commit import AfterCommitFailed, RunFailed, SnapshotFailed
from pipelines.errors import EXIT_FAILED, EXIT_OK, EXIT_REJECTIONS, CriError
from pipelines.lock import data_dir_lock
from pipelines.night import Night, hub_key
from pipelines.session import Session
from pipelines.settings import Settings
from pipelines.stages import STAGES, prepare, run_stage

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_REJECTIONS",
    "RunFailed",
    "RunSummary",
    "SnapshotFailed",
    "refuse_future",
    "run_night",
]

# What the CLI, the demo and the tests read of a finished run.
RunSummary = Night


def refuse_future(run_date: dt.date) -> None:
    """A run for a date after today would judge extracts that cannot exist yet."""
    if run_date > dt.date.today():
        raise RunFailed(f"run date {run_date} is after today ({dt.date.today()}); nothing done")


def run_night(
    run_date: dt.date,
    *,
    data_dir: Path | None = None,
    landing: Path | None = None,
    hub_key_path: Path | None = None,
    workers: int = 1,
    certs: Path | None = None,
    settings: Settings | None = None,
    on_dataset: Callable[[Any], None] | None = None,
    on_stage: Callable[[str, float], None] | None = None,
    on_stage_start: Callable[[str], None] | None = None,
    wait_for_lock: float = 0.0,
) -> Night:
    """Run every stage for `run_date`; raise `RunFailed` when nothing can be published.

    Settings come from `settings` or, for each value not given, from the environment
    (`Settings.resolve`)."""
    refuse_future(run_date)
    settings = settings or Settings.resolve(
        data_dir=data_dir,
        landing_dir=landing,
        hub_key_file=hub_key_path,
        certs_dir=certs,
        workers=workers,
    )
    night = Night(run_date, settings, on_dataset=on_dataset)
    night._key = hub_key(settings)  # before the lock: a missing key is said at once
    with data_dir_lock(
        settings.data_dir, what=f"run --date {run_date}", wait_seconds=wait_for_lock
    ):
        night.recovered = prepare(night)
        night.session = Session()  # link -> plans -> signals without re-reading their tables
        try:
            _run_stages(night, on_stage, on_stage_start)
        finally:
            night.session.close()
            night.session = None
    return night


def _run_stages(
    night: Night,
    on_stage: Callable[[str, float], None] | None,
    on_stage_start: Callable[[str], None] | None,
) -> None:
    for stage in STAGES:
        if on_stage_start:
            on_stage_start(stage.name)
        try:
            run_stage(stage, night, on_stage=on_stage)
        except CriError as exc:
            if "publish" in night.results and getattr(exc, "nothing_published", True):
                raise AfterCommitFailed(
                    f"the night {night.run_date} was published, but the {stage.name} stage "
                    f"failed: {exc.one_line()}"
                ) from exc
            raise
