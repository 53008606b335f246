"""A real Airflow backfill: `airflow backfill create` over three consecutive nights, run by a real
api-server, scheduler (LocalExecutor) and dag-processor in a temporary AIRFLOW_HOME (SQLite), gives
the analysts' tables of three `cri-overlap run`s of the same deliveries in date order.

A backfill only creates DAG runs; the scheduler runs them, and its task runners report to the
api-server's execution API. Backfill runs are not bound by the DAG's `max_active_runs`, only by
the backfill's own (10 unless `--max-active-runs` says otherwise), so the nights run one at a time
and oldest first only with `--max-active-runs 1` (and without `--run-backwards`); the test checks
that each run started after the previous one ended.

The backfill is created while no other Airflow process writes the database: SQLite has one
writer, and `backfill create` commits each run in a transaction that reads before it writes. If a
scheduler's heartbeat holds the write lock at that moment, SQLite answers "database is locked" at
once (no wait can help: each would wait for the other). So the dag-processor serializes the DAG
and stops, the backfill is created beside an idle api-server, and only then do the scheduler and
dag-processor start.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from pipelines.airflow_local import session_processes
from pipelines.run import run_night
from pipelines.settings import PROJECT_ROOT
from tests.test_airflow import AIRFLOW, COMPARED, DAG_ID, deliveries, hub_key_file, table

pytestmark = pytest.mark.slow
DATES = [dt.date(2026, 9, 14), dt.date(2026, 9, 15), dt.date(2026, 9, 16)]
GROW = (0, 0, 60_000)  # A escalates on the third night, as in tests/test_airflow.py
TIMEOUT_SECONDS = 600


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def airflow_env(home: Path, data_dir: Path, key: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{Path(AIRFLOW).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        # sqlite's own wait for a lock is 5 s; the scheduler, API server, dag-processor and
        # a CLI write the same file on 2 shared cores, so one write can wait longer than that
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}?timeout=60",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        # only the backfill's runs: no scheduled run for today once the DAG is switched on
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        # not 8793/8794, which a `make airflow` on this machine may hold
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGERER_LOG_SERVER_PORT": str(free_port()),
        "CRI_DATA_DIR": str(data_dir),
        "CRI_HUB_KEY_FILE": str(key),
        "CRI_CERTS_DIR": str(data_dir / "certs"),
    }


@contextmanager
def airflow_services(env: dict[str, str], logs: Path, *services: str):
    """These Airflow services (`api-server`, `scheduler`, `dag-processor`), each in a session of
    its own; on the way out everything in those sessions is killed, task processes (own process
    groups) included."""
    started = []
    try:
        for service in services:
            with (logs / f"{service}.log").open("ab") as out:
                started.append(
                    subprocess.Popen(
                        [AIRFLOW, service],
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        yield
    finally:
        survivors = kill_sessions([proc.pid for proc in started])
        for proc in started:
            proc.wait(timeout=30)
        assert not survivors, f"Airflow processes survived: {survivors}"


def kill_sessions(sids: list[int], seconds: float = 30) -> list[int]:
    """SIGKILL every process of these sessions until none is left (a dying parent may still
    fork); returns those still alive after `seconds`."""
    deadline = time.monotonic() + seconds
    while (alive := [pid for sid in sids for pid in session_processes(sid)]) and (
        time.monotonic() < deadline
    ):
        for pid in alive:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    return alive


def api(port: int, path: str, method: str = "GET", body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v2/{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own server
        return json.load(response)


def wait_for(what: str, check, deadline: float, logs: Path):
    while time.monotonic() < deadline:
        try:
            if found := check():
                return found
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"timed out waiting for {what}\n{tails(logs)}")


def tails(logs: Path, lines: int = 25) -> str:
    return "\n".join(
        f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        for log in sorted(logs.glob("*.log"))
    )


def task_errors(home: Path, run_id: str) -> str:
    """The error events in the task logs of one DAG run (JSON lines)."""
    found = []
    for log in sorted((home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}").rglob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if '"level":"error"' in line.replace(" ", "") or "Traceback" in line:
                found.append(f"{log.parent.name}/{log.name}: {line[:3000]}")
    return "\n".join(found[-10:])


def test_backfill_of_three_nights_matches_three_cli_runs(tmp_path):
    started_at = time.monotonic()
    deadline = started_at + TIMEOUT_SECONDS
    via_airflow, via_cli, home, logs = (
        tmp_path / "airflow",
        tmp_path / "cli",
        tmp_path / "airflow_home",
        tmp_path / "logs",
    )
    home.mkdir()
    logs.mkdir()
    key = hub_key_file(tmp_path)
    for date, grow in zip(DATES, GROW, strict=True):
        for root in (via_airflow, via_cli):
            deliveries(root / "landing", date, grow=grow)
            if date == DATES[1]:  # a bad delivery on the second night: the run stays green
                with (root / "landing" / date.isoformat() / "CJIB" / "claims.csv").open("a") as f:
                    f.write("broken;line\n")
    port = free_port()
    env = airflow_env(home, via_airflow, key, port)
    subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300
    )
    with airflow_services(env, logs, "api-server"):
        with airflow_services(env, logs, "dag-processor"):
            wait_for(
                "the dag-processor to serialize the DAG",
                lambda: api(port, f"dags/{DAG_ID}"),
                deadline,
                logs,
            )
        api(port, f"dags/{DAG_ID}", "PATCH", {"is_paused": False})
        created = subprocess.run(
            [
                *(AIRFLOW, "backfill", "create", "--dag-id", DAG_ID),
                *("--from-date", DATES[0].isoformat(), "--to-date", DATES[-1].isoformat()),
                *("--max-active-runs", "1"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert created.returncode == 0, created.stdout[-3000:] + created.stderr[-3000:]
        backfill_created = time.monotonic()
        with airflow_services(env, logs, "scheduler", "dag-processor"):
            for date in DATES:  # the same nights through the CLI, while Airflow runs them
                run_night(date, data_dir=via_cli, hub_key_path=key)

            def finished() -> list[dict] | None:
                """The backfill's runs once all succeeded; fails at the first task that failed
                (its retries would take minutes)."""
                troubled = api(
                    port,
                    f"dags/{DAG_ID}/dagRuns/~/taskInstances"
                    "?state=failed&state=up_for_retry&state=upstream_failed",
                )["task_instances"]
                assert not troubled, "\n".join(
                    f"{t['dag_run_id']} {t['task_id']}[{t['map_index']}]: {t['state']}\n"
                    + task_errors(home, t["dag_run_id"])
                    for t in troubled
                )
                runs = api(port, f"dags/{DAG_ID}/dagRuns?run_type=backfill&order_by=logical_date")
                runs = runs["dag_runs"]
                assert all(r["state"] != "failed" for r in runs), runs
                return runs if [r["state"] for r in runs] == ["success"] * len(DATES) else None

            runs = wait_for("the backfill's three runs", finished, deadline, logs)
    seconds = time.monotonic() - started_at

    assert [dt.datetime.fromisoformat(r["logical_date"]) for r in runs] == [
        dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC) for d in DATES
    ]
    for earlier, later in itertools.pairwise(runs):  # one at a time, oldest first
        ended, started = (
            dt.datetime.fromisoformat(earlier["end_date"]),
            dt.datetime.fromisoformat(later["start_date"]),
        )
        assert started >= ended, (earlier, later)
    for name in COMPARED:
        assert table(via_airflow, name) == table(via_cli, name), name
    assert len(table(via_airflow, "persons")) > 0
    # signals depend on the nights before: the second repeats the first, the third escalates
    signals = table(via_airflow, "signals")
    assert {row[0] for row in signals} == {DATES[0], DATES[2]}
    assert [row[4] for row in signals if row[0] == DATES[2]] == ["MULTI_ARREARS|ESCALATION"]
    assert [row[:2] for row in table(via_airflow, "rejections")] == [(DATES[1], "CJIB")]
    print(
        f"backfill of {len(DATES)} nights: {seconds:.0f} s in all, "
        f"{backfill_created - started_at:.0f} s to start Airflow and create the backfill"
    )
