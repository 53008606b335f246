"""The pipeline declared once: the stage list, the night handed between stages, and the rules
of the layout (folder names, SQL and record files each with one home), checked on the code."""

from __future__ import annotations

import ast
import datetime as dt
import re
from pathlib import Path

import pytest

from pipelines.dag_tasks import _night_from
from pipelines.errors import CriError, explain
from pipelines.layout import Layout
from pipelines.night import Night
from pipelines.settings import PROJECT_ROOT, Settings
from pipelines.stages import STAGE_NAMES, STAGES, record_stage, stage_named

PIPELINES = PROJECT_ROOT / "pipelines"
FOLDERS = ("staging", "linked", "quarantine", "outbox", "reports", "warehouse", "ledger")


def test_the_stages_in_pipeline_order_each_with_what_it_reads_and_writes():
    assert STAGE_NAMES == ("ingest", "link", "plans", "feedback", "signals", "publish", "report")
    for stage in STAGES:
        assert stage.reads and stage.writes and callable(stage.run), stage.name
    assert [s.name for s in STAGES if s.fan_out] == ["ingest"]
    assert stage_named("publish").assets == ("snapshot", "signal_files")


def test_a_night_survives_the_trip_between_airflow_tasks(tmp_path):
    settings = Settings.resolve(data_dir=tmp_path, hub_key_file=tmp_path / "k.json")
    night = Night(dt.date(2026, 11, 2), settings)
    night.outcomes = [{"partner": "BD", "dataset": "claims", "status": "rejected"}]
    night.seconds = {"ingest": 1.5, "link": 0.25}
    night.summaries = {"link": {"stale": ["CJIB/claims from 2026-11-01"], "left_out": []}}
    again = Night.from_xcom(night.to_xcom(), settings)
    assert (again.run_date, again.started, again.outcomes, again.seconds) == (
        night.run_date,
        night.started,
        night.outcomes,
        night.seconds,
    )
    assert list(again.seconds) == ["ingest", "link"]  # the order is the pipeline's
    assert again.incomplete and again.exit_code == 3


def test_after_the_mapped_ingest_tasks_the_night_holds_their_outcomes_and_time(tmp_path):
    settings = Settings.resolve(data_dir=tmp_path)
    records = [
        {
            "partner": "BD",
            "dataset": "claims",
            "status": "accepted",
            "summary": "BD ok",
            "seconds": 2.0,
        },
        {
            "partner": "TSL",
            "dataset": "income",
            "status": "rejected",
            "summary": "x",
            "seconds": 1.0,
        },
    ]
    started = dt.datetime(2026, 11, 2, 1, tzinfo=dt.UTC)
    night = _night_from("link", records, dt.date(2026, 11, 2), settings, started)
    assert night.seconds == {"ingest": 3.0}
    assert [o["partner"] for o in night.outcomes] == ["BD", "TSL"]
    assert all("seconds" not in o for o in night.outcomes)
    assert night.summaries["ingest"] == {"datasets": 2, "rejected": 1}
    assert night.started == started and night.exit_code == 3


def test_a_stage_is_timed_and_summarised_the_same_way_for_the_cli_and_the_dag(tmp_path):
    night = Night(dt.date(2026, 11, 2), Settings.resolve(data_dir=tmp_path))
    seen = []
    record_stage(stage_named("ingest"), night, [], 0.123, on_stage=lambda n, s: seen.append((n, s)))
    assert night.seconds == {"ingest": 0.12} and seen == [("ingest", 0.12)]
    assert night.summaries["ingest"] == {"datasets": 0, "rejected": 0}


def test_settings_resolve_options_then_environment_then_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("CRI_DATA_DIR", str(tmp_path / "env-data"))
    monkeypatch.setenv("CRI_CERTS_DIR", "")
    monkeypatch.delenv("CRI_LANDING_DIR", raising=False)
    monkeypatch.delenv("CRI_HUB_KEY_FILE", raising=False)
    from_env = Settings.resolve()
    assert from_env.data_dir == tmp_path / "env-data"
    assert from_env.landing == tmp_path / "env-data" / "landing"
    assert from_env.certs == tmp_path / "env-data" / "certs"  # empty counts as not given
    assert from_env.hub_key_file is None
    given = Settings.from_params({"data_dir": str(tmp_path / "p"), "landing_dir": None})
    assert given.data_dir == tmp_path / "p" and given.layout == Layout(
        tmp_path / "p", given.landing
    )


def test_without_a_hub_key_the_error_says_where_the_demo_keeps_one(tmp_path):
    from pipelines.night import hub_key

    settings = Settings.resolve(data_dir=tmp_path)
    with pytest.raises(Exception, match=r"cri-overlap demo --data-dir .* makes one in"):
        hub_key(settings)
    Layout(tmp_path).demo_key("hub").parent.mkdir(parents=True)
    Layout(tmp_path).demo_key("hub").write_text("{}")
    with pytest.raises(Exception, match=r"the demo made one: --hub-key .*hub\.key\.json"):
        hub_key(settings)


def test_every_error_a_person_can_act_on_is_one_line_with_its_exit_code():
    class Broken(CriError):
        exit_code = 3

    assert explain(Broken("first line\nsecond")) == ("first line", 3)
    assert explain(FileNotFoundError("no such file")) == ("no such file", 1)
    assert explain(ValueError("a bug")) is None


def _string_literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text("utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_the_data_folders_are_named_only_in_the_layout():
    found = [
        f"{path.name}:{line} {text!r}"
        for path in sorted(PIPELINES.glob("*.py"))
        if path.name != "layout.py"
        for line, text in _string_literals(path)
        if text in FOLDERS
    ]
    assert found == []


def test_no_sql_statements_in_python_only_in_sql_files():
    statement = re.compile(
        r"^\s*(select|with|create|insert|copy|attach|update|delete)\b.*\b(from|as|table|to)\b",
        re.IGNORECASE | re.DOTALL,
    )
    # The runner wraps a file's query in one-line templates; the contract compiler's job is to
    # write SQL from a contract.
    writers_of_sql = {"sql.py", "contract_sql.py"}
    found = [
        f"{path.name}:{line}"
        for path in sorted(PIPELINES.glob("*.py"))
        if path.name not in writers_of_sql
        for line, text in _string_literals(path)
        if statement.search(text) and len(text) > 40
    ]
    assert found == []


def test_every_sql_file_states_its_grain_on_line_one():
    for path in sorted((PROJECT_ROOT / "sql").rglob("*.sql")):
        first = path.read_text("utf-8").splitlines()[0]
        assert re.match(r"-- grain: \S", first), (path, first)


def test_a_machine_fault_in_a_sql_file_is_told_as_one(tmp_path):
    """Out of memory (or a full disk) while running one of our SQL files is the machine's
    fault: the line says what to do, not which SQL failed."""
    import duckdb

    from pipelines.sql import SqlError, _fail

    failure = _fail("link/claims", duckdb.OutOfMemoryException("could not allocate block"), "x")
    assert isinstance(failure, SqlError) and str(failure).startswith("DuckDB ran out of memory")
    bug = _fail("link/claims", duckdb.BinderException("no such column"), "claims")
    assert str(bug) == "sql/link/claims.sql (building table claims): no such column"


def test_a_stage_failing_after_publish_does_not_say_nothing_was_published(tmp_path, monkeypatch):
    import pipelines.report
    from pipelines.commit import AfterCommitFailed
    from pipelines.run import run_night
    from pipelines.sql import SqlError
    from tests.helpers import deliver_empty_extracts, hub_key_file, write_claims_delivery

    day = dt.date(2026, 11, 2)
    data = tmp_path / "data"
    write_claims_delivery(data / "landing", day, "BD", [{"person": "A"}])
    deliver_empty_extracts(data / "landing", day)

    def broken(*args, **kwargs):
        raise SqlError("sql/report/run.sql: simulated")

    monkeypatch.setattr(pipelines.report, "write_report", broken)
    with pytest.raises(AfterCommitFailed, match="was published, but the report stage failed"):
        run_night(day, data_dir=data, hub_key_path=hub_key_file(tmp_path))
    assert (Layout(data).linked_date(day) / "run.json").is_file()
    assert Layout(data).snapshot.is_file()


def test_the_dag_parses_without_the_heavy_libraries():
    """The DAG file imports the stage list at every parse (the dag-processor re-parses it all
    the time): the stage modules, DuckDB, GX and cryptography load only inside tasks."""
    import subprocess
    import sys

    code = (
        "import sys, pipelines.stages, pipelines.dag_tasks\n"
        "heavy = ['duckdb', 'polars', 'great_expectations', 'open_data_contract_standard',"
        " 'cryptography', 'pipelines.ingest', 'pipelines.link']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
