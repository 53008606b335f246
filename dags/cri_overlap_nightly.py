"""
### cri_overlap_nightly

The nightly batch of **cri-overlap** for one extract date: the DAG run's logical date.

`find_deliveries` → `ingest` (mapped: one task per delivered dataset, independent, a bad one
never blocks the others) → `link` → `plans` → `feedback` (what gemeenten sent back about
their signals, verified and taken in) → `signals` → `publish` → `report`.

Night after night: a missing or rejected dataset is carried forward (listed as stale in the
`link` and `publish` logs and the report); a run of an older date (a rerun, a backfill with
`airflow backfill create`) recomputes its tables and those of later dates it changes, but
delivers no signals; each task holds the data directory's lock, so a CLI run and a DAG run
never work on it at once.

The tasks are made from the stage list in `pipelines/stages.py`, the one the CLI's
`cri-overlap run` runs: this file only turns it into tasks. A rejected dataset does not fail its
task: the run ends green, with the rejection in the task log, the quarantine
(`quarantine/<date>/`) and the run report. A failure before `publish` leaves the previous
snapshot and outbox untouched and the run red.

Settings come from the same environment variables as the CLI (`CRI_DATA_DIR`,
`CRI_LANDING_DIR`, `CRI_HUB_KEY_FILE`, `CRI_CERTS_DIR`) or from the DAG params of a run.
Outputs are declared as assets: the analysts' snapshot, the signal files and the run report.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import Asset, Param, dag, get_current_context, task

from pipelines.stages import STAGES, Stage

ASSETS = {
    "snapshot": Asset(
        name="cri_overlap_analytics_snapshot", uri="file:///cri-overlap/warehouse/analytics.duckdb"
    ),
    "signal_files": Asset(name="cri_overlap_signal_files", uri="file:///cri-overlap/outbox"),
    "run_report": Asset(name="cri_overlap_run_report", uri="file:///cri-overlap/reports"),
}
DEFAULT_ARGS = {
    "owner": "cri-overlap",
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=20),
}
PARAMS = {
    "data_dir": Param(None, type=["null", "string"], description="Overrides CRI_DATA_DIR."),
    "landing_dir": Param(None, type=["null", "string"], description="Overrides CRI_LANDING_DIR."),
    "hub_key_file": Param(None, type=["null", "string"], description="Overrides CRI_HUB_KEY_FILE."),
    "certs_dir": Param(None, type=["null", "string"], description="Overrides CRI_CERTS_DIR."),
}


def _run() -> tuple[dt.date, dict, dt.datetime]:
    """The run date (the logical date), the params and the start of this DAG run."""
    context = get_current_context()
    when = context.get("logical_date") or context["dag_run"].run_after
    return when.date(), context["params"], context["dag_run"].start_date


def _fan_out_tasks(stage: Stage) -> Any:
    """A listing task and one mapped task per item it lists."""
    assert stage.fan_out is not None

    @task(task_id=stage.fan_out.list_task)
    def list_items() -> list[dict]:
        from pipelines.dag_tasks import list_items

        run_date, params, _ = _run()
        return list_items(stage.name, run_date, params)

    @task(task_id=stage.name, map_index_template=stage.fan_out.map_label)
    def run_item(item: dict) -> dict:
        from pipelines.dag_tasks import run_item

        run_date, params, _ = _run()
        return run_item(stage.name, item, run_date, params)

    return run_item.expand(item=list_items())


def _stage_task(stage: Stage, upstream: Any) -> Any:
    @task(task_id=stage.name, outlets=[ASSETS[name] for name in stage.assets])
    def run_stage(night: Any) -> dict:
        from pipelines.dag_tasks import run_task

        run_date, params, started = _run()
        return run_task(stage.name, night, run_date, params, started)

    return run_stage(upstream)


@dag(
    dag_id="cri_overlap_nightly",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    tags=["cri-overlap", "nightly", "pseudonymised"],
    doc_md=__doc__,
)
def cri_overlap_nightly() -> None:
    upstream = None
    for stage in STAGES:
        upstream = _fan_out_tasks(stage) if stage.fan_out else _stage_task(stage, upstream)


cri_overlap_nightly()
