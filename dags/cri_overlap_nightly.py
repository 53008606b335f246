"""
### cri_overlap_nightly

The nightly batch of **cri-overlap** for one extract date: the DAG run's logical date.

`find_deliveries` → `ingest` (mapped: one task per delivered dataset, independent, a bad one
never blocks the others) → `link` → `plans` → `signals` → `publish` → `report`.

Night after night: a missing or rejected dataset is carried forward (listed as stale in the
`link` and `publish` logs and the report); a run of an older date (a rerun, a backfill with
`airflow backfill create`) recomputes its tables and those of later dates it changes, but
delivers no signals; each task holds the data directory's lock, so a CLI run and a DAG run
never work on it at once.

Each task calls the same stage function as `cri-overlap run` (`pipelines/`); this file only wires
them together. A rejected dataset does not fail its task: the run ends green, with the rejection
in the task log, the quarantine (`quarantine/<date>/`) and the run report. A failure before
`publish` leaves the previous snapshot and outbox untouched and the run red.

Settings come from the same environment variables as the CLI (`CRI_DATA_DIR`,
`CRI_LANDING_DIR`, `CRI_HUB_KEY_FILE`, `CRI_CERTS_DIR`) or from the DAG params of a run.
Outputs are declared as assets: the analysts' snapshot, the signal files and the run report.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, Param, dag, get_current_context, task

SNAPSHOT = Asset(
    name="cri_overlap_analytics_snapshot", uri="file:///cri-overlap/warehouse/analytics.duckdb"
)
SIGNAL_FILES = Asset(name="cri_overlap_signal_files", uri="file:///cri-overlap/outbox")
RUN_REPORT = Asset(name="cri_overlap_run_report", uri="file:///cri-overlap/reports")

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


def _run() -> tuple[dt.date, dict]:
    """The run date (the logical date) and the settings of this DAG run."""
    from pipelines.settings import run_settings

    context = get_current_context()
    when = context.get("logical_date") or context["dag_run"].run_after
    return when.date(), run_settings(context["params"])


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
    @task
    def find_deliveries() -> list[dict]:
        from pipelines.dag_tasks import find_deliveries

        run_date, settings = _run()
        return find_deliveries(run_date, settings)

    @task(
        map_index_template="{{ task.op_kwargs['delivery']['folder'] }}/"
        "{{ task.op_kwargs['delivery']['dataset'] }}"
    )
    def ingest(delivery: dict) -> dict:
        from pipelines.dag_tasks import ingest_one

        run_date, settings = _run()
        return ingest_one(delivery, run_date, settings)

    @task
    def link(outcomes: list[dict]) -> dict:
        from pipelines.dag_tasks import link_stage

        run_date, settings = _run()
        return link_stage(run_date, settings, outcomes)

    @task
    def plans(linked: dict) -> dict:
        from pipelines.dag_tasks import plans_stage

        run_date, settings = _run()
        return plans_stage(run_date, settings)

    @task
    def signals(planned: dict) -> dict:
        from pipelines.dag_tasks import signals_stage

        run_date, settings = _run()
        return signals_stage(run_date, settings)

    @task(outlets=[SNAPSHOT, SIGNAL_FILES])
    def publish(outcomes: list[dict], linked: dict, signalled: dict) -> dict:
        from pipelines.dag_tasks import publish_stage

        run_date, settings = _run()
        started = get_current_context()["dag_run"].start_date
        return publish_stage(run_date, settings, outcomes, started)

    @task(outlets=[RUN_REPORT])
    def report(
        outcomes: list[dict], linked: dict, planned: dict, signalled: dict, published: dict
    ) -> str:
        from pipelines.dag_tasks import report_stage

        run_date, settings = _run()
        timings = {
            name: stage["seconds"]
            for name, stage in (
                ("link", linked),
                ("plans", planned),
                ("signals", signalled),
                ("publish", published),
            )
        }
        return report_stage(run_date, settings, outcomes, timings)

    outcomes = ingest.expand(delivery=find_deliveries())
    linked = link(outcomes)
    planned = plans(linked)
    signalled = signals(planned)
    published = publish(outcomes, linked, signalled)
    report(outcomes, linked, planned, signalled, published)


cri_overlap_nightly()
