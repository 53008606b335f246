"""The nightly run for one extract date: ingest -> link -> plans -> signals -> publish (the
snapshot, the partner exports and the signed, encrypted signal files; the report joins later).
The CLI's `run` and the Airflow DAG call these same stage functions.

Exit codes (interfaces.md section 5): 0 all datasets accepted and published; 3 published, but
one or more datasets were rejected; 1 failed, nothing published. Any failure before publish
leaves the previous snapshot untouched.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.delivery import DeliveryReport, certs_dir, deliver_signals
from pipelines.fileio import write_json_atomically
from pipelines.ingest import IngestOutcome, ingest_date
from pipelines.link import LinkResult, link_run, linked_root
from pipelines.plans import PlanSummary, plan_run, write_partner_exports
from pipelines.publish import publish
from pipelines.report import write_report
from pipelines.settings import HUB_KEY_ENV
from pipelines.signals import SignalSummary, signal_run
from privacy.keys import KeyFileError, KeyMaterial, load_key_file

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_REJECTIONS = 0, 1, 3


class RunFailed(Exception):
    """The run stopped before publishing; the previous outputs stand."""


@dataclass
class RunSummary:
    run_date: dt.date
    outcomes: list[IngestOutcome] = field(default_factory=list)
    link: LinkResult | None = None
    plans: PlanSummary | None = None
    signals: SignalSummary | None = None
    delivery: DeliveryReport | None = None
    report: Path | None = None
    snapshot: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rejected(self) -> list[IngestOutcome]:
        return [o for o in self.outcomes if o.rejected]

    @property
    def exit_code(self) -> int:
        return EXIT_REJECTIONS if self.rejected else EXIT_OK


def hub_key(path: Path | None) -> KeyMaterial:
    """The hub key from `--hub-key` or `CRI_HUB_KEY_FILE`; never from code."""
    chosen = path or (Path(os.environ[HUB_KEY_ENV]) if os.environ.get(HUB_KEY_ENV) else None)
    if chosen is None:
        raise KeyFileError(f"no hub key: pass --hub-key FILE or set {HUB_KEY_ENV}")
    return load_key_file(chosen, "hub")


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
) -> RunSummary:
    """Run every stage for `run_date`; raise `RunFailed` when nothing can be published."""
    key = hub_key(hub_key_path)
    started = dt.datetime.now(dt.UTC)
    summary = RunSummary(run_date)

    def stage(name: str, work: Callable[[], object]) -> object:
        begin = time.perf_counter()
        result = work()
        summary.seconds[name] = round(time.perf_counter() - begin, 2)
        if on_stage:
            on_stage(name, summary.seconds[name])
        return result

    summary.outcomes = stage(
        "ingest",
        lambda: ingest_date(
            run_date, data_dir=data_dir, landing=landing, on_dataset=on_dataset, workers=workers
        ),
    )
    require_staged_claims(data_dir, run_date, deliveries_found=len(summary.outcomes))
    summary.link = stage("link", lambda: link_run(run_date, data_dir=data_dir, hub_key=key))
    summary.plans = stage("plans", lambda: plan_run(run_date, data_dir=data_dir))
    summary.signals = stage("signals", lambda: signal_run(run_date, data_dir=data_dir, hub_key=key))
    record_run(
        data_dir,
        run_date,
        started=started,
        rejected=len(summary.rejected),
        claims=summary.link.claims,
        persons=summary.link.persons,
        partners=summary.link.partners,
    )

    def publish_all() -> Path:
        snapshot, summary.delivery = publish_run(data_dir, run_date, certs)
        return snapshot

    summary.snapshot = stage("publish", publish_all)
    summary.report = stage(
        "report", lambda: write_report(data_dir, run_date, stage_seconds=dict(summary.seconds))
    )
    return summary


def require_staged_claims(data_dir: Path, run_date: dt.date, *, deliveries_found: int) -> None:
    """Stop the run before link when no claims of `run_date` were accepted (now or earlier)."""
    if not any((Path(data_dir) / "staging" / run_date.isoformat()).glob("*/claims.parquet")):
        raise RunFailed(f"no accepted claims for {run_date} (deliveries found: {deliveries_found})")


def record_run(
    data_dir: Path,
    run_date: dt.date,
    *,
    started: dt.datetime,
    rejected: int,
    claims: int,
    persons: int,
    partners: list[str],
) -> Path:
    """`linked/<date>/run.json`: what this run loaded and rejected (the `runs` table)."""
    staging = Path(data_dir) / "staging" / run_date.isoformat()
    return write_json_atomically(
        linked_root(data_dir) / run_date.isoformat() / "run.json",
        {
            "run_date": run_date.isoformat(),
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "datasets_accepted": len(list(staging.glob("*/*.receipt.json"))),
            "datasets_rejected": rejected,
            "claims": claims,
            "persons": persons,
            "partners": partners,
        },
    )


def publish_run(
    data_dir: Path, run_date: dt.date, certs: Path | None = None
) -> tuple[Path, DeliveryReport]:
    """Everything that leaves the hub: the analysts' snapshot, the partner exports and the
    signed, encrypted signal files."""
    snapshot = publish(data_dir)
    write_partner_exports(data_dir, run_date)
    return snapshot, deliver_signals(data_dir, run_date, certs_dir(certs, data_dir))
