"""The real Airflow: the DAG loads, runs whole under `airflow dags test` on a migrated SQLite
metadata database in a temporary AIRFLOW_HOME, and gives the same outputs as `cri-overlap run`;
the run report renders its charts in headless Chromium."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.run import run_night
from pipelines.settings import PROJECT_ROOT
from pipelines.stages import STAGE_NAMES
from tests.helpers import (
    deliver_empty_extracts,
    hub_key_file,
    write_claims_delivery,
    write_income_delivery,
)

pytestmark = pytest.mark.slow
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_ID = "cri_overlap_nightly"
DATES = [dt.date(2026, 9, 1), dt.date(2026, 10, 1), dt.date(2026, 11, 1)]
COMPARED = {
    "persons": "run_date, person_id",
    "claims": "run_date, partner, claim_ref",
    "overlap_counts": "run_date, n_partners",
    "overlap_pairs": "run_date, partner_a, partner_b",
    "plan_proposals": "run_date, person_id",
    "plan_lines": "run_date, partner, claim_ref",
    "signals": "run_date, person_id",
    "signal_monitoring": "run_date, gemeente_code",
    "rejections": "run_date, partner, dataset",
}


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # sqlite's own wait for a lock is 5 s; the scheduler, API server, dag-processor and
        # a CLI write the same file on 2 shared cores, so one write can wait longer than that
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}?timeout=60",
    }
    subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=600
    )
    return env


def deliveries(landing: Path, date: dt.date, *, grow: int = 0) -> None:
    """A small night: three partners and income; amounts grow by date so signals escalate."""
    since = (date - dt.timedelta(days=60)).isoformat()
    write_claims_delivery(
        landing,
        date,
        "BD",
        [
            {
                "person": "A",
                "outstanding_cents": 70_000 + grow,
                "imposed_cents": 70_000 + grow,
                "arrears_cents": 70_000 + grow,
                "arrears_since": since,
            },
            {"person": "B", "arrears_since": since},
            {"person": "C", "arrears_since": since},
        ],
    )
    write_claims_delivery(
        landing,
        date,
        "CJIB",
        [
            {"person": "A", "arrears_since": since},
            {"person": "B", "arrears_since": since},
            {"person": "D", "arrears_since": since, "stage": "garnishment"},
        ],
    )
    write_claims_delivery(
        landing,
        date,
        "TSL",
        [{"person": "C", "arrears_since": since}, {"person": "D", "arrears_since": since}],
    )
    write_income_delivery(landing, date, [{"person": "D", "net_income_cents": 90_000}])
    deliver_empty_extracts(landing, date)  # the other partners: no open claims tonight


def dags_test(env: dict, date: dt.date, data_dir: Path, key: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [AIRFLOW, "dags", "test", DAG_ID, date.isoformat()],
        env={
            **env,
            "CRI_DATA_DIR": str(data_dir),
            "CRI_HUB_KEY_FILE": str(key),
            "CRI_CERTS_DIR": str(data_dir / "certs"),
        },
        capture_output=True,
        text=True,
        timeout=900,
    )


def stage_labels(page: str) -> list[str]:
    """The labels of the report's "seconds per stage" chart, in the order drawn."""
    figure = page.split("Seconds per stage", 1)[1].split("</figure>", 1)[0]
    return re.findall(r'text-anchor="end">([^<]+)</text>', figure)


def table(data_dir: Path, name: str) -> list[tuple]:
    with duckdb.connect(str(data_dir / "warehouse" / "analytics.duckdb"), read_only=True) as con:
        return con.execute(
            f"select * exclude (received, quarantine_folder) from {name} order by {COMPARED[name]}"
            if name == "rejections"
            else f"select * from {name} order by {COMPARED[name]}"
        ).fetchall()


def test_dag_loads_with_tags_retries_and_mapping(airflow_env):
    code = (
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(PROJECT_ROOT / 'dags')!r})\n"
        "assert bag.import_errors == {}, bag.import_errors\n"
        f"dag = bag.get_dag({DAG_ID!r})\n"
        "assert {'cri-overlap', 'nightly'} <= set(dag.tags)\n"
        "assert dag.max_active_runs == 1 and dag.doc_md and 'find_deliveries' in dag.doc_md\n"
        "assert all(t.retries >= 2 and t.retry_exponential_backoff for t in dag.tasks)\n"
        "ids = [t.task_id for t in dag.tasks]\n"
        "assert ids == ['find_deliveries', 'ingest', 'link', 'plans', 'feedback', 'signals',"
        " 'publish', 'report'], ids\n"
        "from pipelines.stages import STAGE_NAMES\n"
        "assert ids[1:] == list(STAGE_NAMES), ids  # made from the one declaration\n"
        "assert dag.get_task('ingest').is_mapped\n"
        "assert dag.get_task('publish').outlets and dag.get_task('report').outlets\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=airflow_env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    source = (PROJECT_ROOT / "dags" / "cri_overlap_nightly.py").read_text()
    assert "import duckdb" not in source and "import polars" not in source  # heavy at parse


def test_three_dates_in_order_match_three_cli_runs(airflow_env, tmp_path):
    via_airflow, via_cli = tmp_path / "airflow", tmp_path / "cli"
    key = hub_key_file(tmp_path)
    # A: 70,000 at BD + 50,000 at CJIB = 120,000 on the first night; on the third, BD grows by
    # 60,000 to 180,000 in total: exactly 150%, an ESCALATION inside the cool-down.
    for date, grow in zip(DATES, (0, 0, 60_000), strict=True):
        for root in (via_airflow, via_cli):
            deliveries(root / "landing", date, grow=grow)
        # a bad delivery on the second night: the run must still end green
        if date == DATES[1]:
            for root in (via_airflow, via_cli):
                (root / "landing" / date.isoformat() / "CJIB" / "claims.csv").open("a").write(
                    "broken;line\n"
                )
        done = dags_test(airflow_env, date, via_airflow, key)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "DagRun Finished" in done.stdout + done.stderr and "state=success" in (
            done.stdout + done.stderr
        )
        run_night(date, data_dir=via_cli, hub_key_path=key)
    for name in COMPARED:
        assert table(via_airflow, name) == table(via_cli, name), name
    signals = table(via_airflow, "signals")
    assert {row[0] for row in signals} == {DATES[0], DATES[2]}  # the second night repeats
    assert [row[4] for row in signals if row[0] == DATES[2]] == ["MULTI_ARREARS|ESCALATION"]
    for date in DATES:
        outbox_a = via_airflow / "outbox" / date.isoformat()
        outbox_c = via_cli / "outbox" / date.isoformat()
        files_a = sorted(p.relative_to(outbox_a) for p in outbox_a.rglob("*.csv"))
        assert files_a == sorted(p.relative_to(outbox_c) for p in outbox_c.rglob("*.csv"))
        for relative in files_a:
            assert (outbox_a / relative).read_bytes() == (outbox_c / relative).read_bytes()
        # both reports time every stage but the report itself, in the declared order
        for root in (via_airflow, via_cli):
            page = (root / "reports" / date.isoformat() / "index.html").read_text("utf-8")
            assert stage_labels(page) == list(STAGE_NAMES[:-1]), (root, stage_labels(page))
        for relative in sorted(p.relative_to(outbox_c) for p in outbox_c.rglob("*.json")):
            if relative.name != "delivery.json":  # delivery ids and times differ
                assert (outbox_a / relative).read_bytes() == (outbox_c / relative).read_bytes()
    [rejection] = table(via_airflow, "rejections")
    assert rejection[:4] == (DATES[1], "CJIB", "claims", "sha256_mismatch")


def test_report_renders_its_charts_in_headless_chromium(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is required for this test (.ci/run installs it)"
    data_dir = tmp_path / "data"
    key = hub_key_file(tmp_path)
    deliveries(data_dir / "landing", DATES[0])
    summary = run_night(DATES[0], data_dir=data_dir, hub_key_path=key)
    page = summary.report.resolve().as_uri()
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", page], capture_output=True, text=True, timeout=120
    ).stdout
    assert dom.count("<svg") >= 7, "charts missing from the rendered page"
    assert "Persons in arrears at both partners" in dom and "<rect" in dom
    assert "Contract results" in dom and "Stage timings" in dom
    screenshot = tmp_path / "report.png"
    subprocess.run(
        [chromium, *flags, "--window-size=1100,3200", f"--screenshot={screenshot}", page],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert screenshot.stat().st_size > 20_000
    print(f"report screenshot: {screenshot}")
