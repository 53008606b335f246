"""Every query in docs/analysts.md runs against a demo database and returns rows.

The database holds two demo nights: the first, then the next night after the gemeenten sent
feedback on the first night's signals (signed with their demo certificates, as
`cri-overlap feedback` signs it), so the queries on what became of the signals have feedback to
count and the monitoring columns of the feedback a delivered night to show."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import pytest

from pipelines.demo import deliver_demo_night, demo_settings, run_demo
from pipelines.feedback_file import feedback_file_name, sign_feedback
from pipelines.layout import Layout
from pipelines.run import run_night
from pipelines.settings import PROJECT_ROOT
from tests.helpers import EXTRACT_DATE

QUERIES = re.findall(
    r"```sql\n(.*?)```", (PROJECT_ROOT / "docs" / "analysts.md").read_text(), flags=re.S
)
PERSONS, SEED = 5_000, 3
FEEDBACK_NIGHT = EXTRACT_DATE + dt.timedelta(days=1)
# what the gemeenten report, signal after signal (every status, the results that change a rule
# and some that do not); every eleventh signal gets no feedback
OUTCOMES: tuple[tuple[str, str] | None, ...] = (
    ("picked_up", "follow_up_help"),
    ("picked_up", "no_help_wanted"),
    ("picked_up", "no_contact"),
    ("picked_up", "already_known_debt_help"),
    ("picked_up", "quick_fix"),
    ("not_picked_up_unjustified", ""),
    ("not_picked_up_repeat", ""),
    ("deceased", ""),
    ("not_resident", ""),
    ("open", ""),
    None,
)


def send_demo_feedback(data_dir: Path, signal_date: dt.date, status_date: dt.date) -> int:
    """Each gemeente's signed feedback on its signals of `signal_date`, into the hub's
    `feedback/<GM>/` folder; the gemeente's CSV is made on its side of the demo. Returns the
    rows sent."""
    layout = Layout(data_dir)
    signals = duckdb.sql(
        "select gemeente_code, signal_id from read_parquet($file) order by signal_id",
        params={"file": str(layout.linked_date(signal_date) / "signals.parquet")},
    ).fetchall()
    rows: dict[str, list[str]] = {}
    for index, (gemeente, signal_id) in enumerate(signals):
        outcome = OUTCOMES[index % len(OUTCOMES)]
        if outcome is not None:
            status, result = outcome
            rows.setdefault(gemeente, []).append(f"{signal_id};{status_date};{status};{result}")
    for gemeente, lines in rows.items():
        source = layout.gemeente_side / "feedback" / f"{gemeente}.csv"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("signal_id;status_date;status;result\n" + "\n".join(lines) + "\n")
        sign_feedback(
            gemeente,
            source,
            layout.gemeente_keys / f"{gemeente}.key",
            layout.gemeente_keys / f"{gemeente}.crt",
            out=layout.feedback / gemeente / feedback_file_name(status_date),
        )
    return sum(len(lines) for lines in rows.values())


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("demo")
    run_demo(data_dir, persons=PERSONS, extract_date=EXTRACT_DATE, seed=SEED)
    sent = send_demo_feedback(data_dir, EXTRACT_DATE, status_date=FEEDBACK_NIGHT)
    deliver_demo_night(data_dir, persons=PERSONS, extract_date=FEEDBACK_NIGHT, seed=SEED)
    night = run_night(FEEDBACK_NIGHT, settings=demo_settings(data_dir))
    assert night.exit_code == 0
    intake = night.results["feedback"]
    assert sent > 0 and intake.rows == sent and not intake.refused
    return night.snapshot


def test_the_page_has_ten_example_queries():
    assert len(QUERIES) >= 10


@pytest.mark.parametrize("query", QUERIES, ids=[f"query-{i + 1}" for i in range(len(QUERIES))])
def test_query_runs_on_the_demo_database(demo_database, query):
    with duckdb.connect(str(demo_database), read_only=True) as con:
        rows = con.execute(query).fetchall()
    assert rows, query
