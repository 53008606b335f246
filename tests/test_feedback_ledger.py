"""The feedback ledger compacted night after night (`pipelines.feedback.compact`): what a night
reads stays the size of the statuses that differ, not of everything gemeenten ever re-sent, and
compacting never changes what stands on any run date, nor does a kill at any moment.

The ledgers here are written directly (rows files of intakes, in the columns an intake writes),
so that every order of intakes, files, lines and status dates can be tried; the intake itself,
with signatures and contracts, is tested in tests/test_feedback.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.feedback import (
    COMPACTED,
    FeedbackError,
    compact,
    expire,
    feedback_files,
    standing,
)
from pipelines.layout import Layout

SIGNAL_DATE = dt.date(2026, 1, 10)
LONG_AGO = dt.date(2000, 1, 1)  # a retention cut that drops nothing
SIGNALS = [f"SIG-20260110-{n:016x}" for n in range(3)]
STATUS_DATES = [SIGNAL_DATE + dt.timedelta(days=d) for d in (-5, 0, 3, 9)]
STATUSES = [("open", None), ("picked_up", "quick_fix"), ("deceased", None)]


def write_intake(
    data: Path,
    intake_id: str,
    rows: list[tuple],
    run_date: dt.date = SIGNAL_DATE,
    files: tuple[str, ...] = (),
) -> Path:
    """One intake folder as `pipelines.feedback._record` leaves it: rows file + record (of the
    night `run_date`, which took in `files`). A row is (signal number, status date, status,
    result, file, line)."""
    folder = data / "feedback_ledger" / intake_id
    folder.mkdir(parents=True)
    con = duckdb.connect()
    con.execute(
        "create table r (gemeente_code varchar, signal_id varchar, signal_date date, "
        "person_id varchar, qualifying_partners varchar[], status_date date, status varchar, "
        "result varchar, file varchar, sha256 varchar, line bigint, intake_id varchar)"
    )
    for signal, status_date, status, result, file, line in rows:
        con.execute(
            "insert into r values ('GM0363', ?, ?, ?, ['BD', 'CJIB'], ?, ?, ?, ?, ?, ?, ?)",
            [
                SIGNALS[signal],
                SIGNAL_DATE,
                f"{signal:032x}",
                status_date,
                status,
                result,
                f"feedback/GM0363/{file}",
                "0" * 64,
                line,
                intake_id,
            ],
        )
    con.execute(f"copy r to '{folder / 'feedback.parquet'}' (format parquet)")
    record = {
        "intake_id": intake_id,
        "run_date": run_date.isoformat(),
        "files": [{"gemeente": "GM0363", "file": f, "sha256": "0" * 64} for f in files],
    }
    (folder / "intake.json").write_text(json.dumps(record))
    return folder


def standing_on(
    data: Path,
    run_date: dt.date,
    *,
    own_signals: bool,
    con: duckdb.DuckDBPyConnection | None = None,
) -> list[tuple]:
    con = con or duckdb.connect()
    standing(con, data, run_date, own_signals=own_signals)
    return con.sql("select * from feedback_standing order by signal_id").fetchall()


def every_standing(data: Path) -> list[list[tuple]]:
    """What stands on each run date that can differ (a status date, the day before one, the
    signal date and the day after it), for the rules and for the monitoring."""
    dates = {SIGNAL_DATE, SIGNAL_DATE + dt.timedelta(days=1)}
    dates |= {d + dt.timedelta(days=k) for d in STATUS_DATES for k in (-1, 0)}
    con = duckdb.connect()
    return [
        standing_on(data, d, own_signals=own, con=con)
        for d in sorted(dates)
        for own in (False, True)
    ]


def ledger_rows(data: Path) -> int:
    files = [str(p) for p in feedback_files(data)]
    return duckdb.sql("select count(*) from read_parquet(?)", params=[files]).fetchall()[0][0]


row = st.tuples(
    st.integers(0, len(SIGNALS) - 1),
    st.sampled_from(STATUS_DATES),
    st.sampled_from(STATUSES),
    st.sampled_from(["feedback-2026-01-11.csv.p7s", "feedback-2026-01-20.csv.p7s"]),
    st.integers(2, 6),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(intakes=st.lists(st.lists(row, min_size=1, max_size=6), min_size=1, max_size=4))
def test_compacting_changes_nothing_that_stands_on_any_date(tmp_path_factory, intakes):
    data = tmp_path_factory.mktemp("hub")
    for number, rows in enumerate(intakes):
        unique = {
            (s, d, f, line): (s, d, status, result, f, line)
            for s, d, (status, result), f, line in rows
        }
        write_intake(data, f"2026011{number}T000000000000Z", list(unique.values()))
    before = every_standing(data)
    compact(Layout(data), LONG_AGO)
    assert every_standing(data) == before
    assert feedback_files(data) == [data / "feedback_ledger" / COMPACTED]
    pairs = {(s, d) for rows in intakes for s, d, *_ in rows}
    assert ledger_rows(data) == len(pairs)  # one row per signal and status date
    # compacting again, or with a later intake, changes nothing either
    write_intake(data, "20260120T000000000000Z", [(0, STATUS_DATES[2], "open", None, "x", 2)])
    before = every_standing(data)
    compact(Layout(data), LONG_AGO)
    assert every_standing(data) == before


def test_a_weekly_full_list_adds_no_rows(tmp_path):
    """A gemeente re-sends all its statuses every week: a year of it is the rows of one week,
    plus one for each status that changed."""
    week = [
        (s, STATUS_DATES[1], "open", None, "feedback-2026-01-11.csv.p7s", s + 2) for s in range(3)
    ]
    for number in range(52):
        rows = list(week)
        if number == 30:  # one status changes
            rows[0] = (0, STATUS_DATES[3], "picked_up", "quick_fix", "f.csv.p7s", 2)
        write_intake(tmp_path, f"2026{number:04d}T000000000000Z", rows)
        compact(Layout(tmp_path), LONG_AGO)
    assert ledger_rows(tmp_path) == 4
    assert [s[6] for s in standing_on(tmp_path, STATUS_DATES[3], own_signals=True)] == [
        "picked_up",
        "open",
        "open",
    ]


def test_nothing_new_rewrites_nothing(tmp_path):
    write_intake(tmp_path, "20260111T000000000000Z", [(0, STATUS_DATES[1], "open", None, "f", 2)])
    assert compact(Layout(tmp_path), LONG_AGO) == 0  # no row went; the intake was folded in
    compacted = tmp_path / "feedback_ledger" / COMPACTED
    before = os.stat(compacted)
    assert compact(Layout(tmp_path), LONG_AGO) == 0
    after = os.stat(compacted)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_retention_drops_what_does_not_last(tmp_path):
    write_intake(
        tmp_path,
        "20260111T000000000000Z",
        [
            (0, STATUS_DATES[1], "open", None, "f", 2),
            (0, STATUS_DATES[1], "open", None, "f", 3),  # the same pair twice: one stays
            (1, STATUS_DATES[1], "deceased", None, "f", 4),
            (2, STATUS_DATES[2], "picked_up", "quick_fix", "f", 5),
        ],
    )
    cut, newest = SIGNAL_DATE + dt.timedelta(days=1), SIGNAL_DATE + dt.timedelta(days=20)
    assert compact(Layout(tmp_path), cut, as_of=newest) == 3
    assert [s[1] for s in standing_on(tmp_path, newest, own_signals=True)] == [SIGNALS[1]]


def test_retention_keeps_what_stands_on_the_newest_date_and_what_is_dated_after_it(tmp_path):
    """A status dated after the newest run date (a typo, or a date to come) has not counted
    yet: the status standing until then stays, and so does the later one, which replaces it
    when its date comes."""
    deceased_on, typo = SIGNAL_DATE + dt.timedelta(days=2), dt.date(2062, 1, 5)
    write_intake(
        tmp_path,
        "20260111T000000000000Z",
        [(0, deceased_on, "deceased", None, "f", 2), (0, typo, "open", None, "f", 3)],
    )
    cut, newest = SIGNAL_DATE + dt.timedelta(days=30), SIGNAL_DATE + dt.timedelta(days=430)
    before = [standing_on(tmp_path, d, own_signals=False) for d in (newest, typo)]
    assert compact(Layout(tmp_path), cut, as_of=newest) == 0
    after = [standing_on(tmp_path, d, own_signals=False) for d in (newest, typo)]
    assert after == before
    assert [(s[6], s[5]) for s in after[0]] == [("deceased", deceased_on)]
    assert [(s[6], s[5]) for s in after[1]] == [("open", typo)]


def killed_compaction(data: Path, point: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import datetime as dt, sys; from pipelines.feedback import compact; "
            "from pipelines.layout import Layout; "
            "compact(Layout(sys.argv[1]), dt.date(2000, 1, 1))",
            str(data),
        ],
        env={**os.environ, "CRI_KILL_AT": point},
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_kill_after_the_replace_reads_the_same_and_is_finished_next_time(tmp_path):
    write_intake(tmp_path, "20260111T000000000000Z", [(0, STATUS_DATES[1], "open", None, "f", 2)])
    compact(Layout(tmp_path), LONG_AGO)
    write_intake(
        tmp_path,
        "20260112T000000000000Z",
        [
            (0, STATUS_DATES[1], "open", None, "f", 2),
            (1, STATUS_DATES[2], "deceased", None, "g", 2),
        ],
    )
    before = every_standing(tmp_path)
    killed = killed_compaction(tmp_path, "feedback_compacted")
    assert killed.returncode == -9, killed.stderr
    ledger = tmp_path / "feedback_ledger"
    assert (ledger / "20260112T000000000000Z" / "feedback.parquet").is_file()  # not yet gone
    assert feedback_files(tmp_path) == [ledger / COMPACTED]  # but read no more
    assert every_standing(tmp_path) == before
    assert compact(Layout(tmp_path), LONG_AGO) == 0
    assert list(ledger.glob("*/feedback.parquet")) == []
    assert every_standing(tmp_path) == before


def test_a_kill_before_the_replace_leaves_the_old_ledger(tmp_path):
    write_intake(tmp_path, "20260111T000000000000Z", [(0, STATUS_DATES[1], "open", None, "f", 2)])
    ledger = tmp_path / "feedback_ledger"
    leftover = ledger / f".{COMPACTED}.4242.tmp"  # what a kill while writing leaves
    leftover.write_bytes(b"half a parquet file")
    assert feedback_files(tmp_path) == [ledger / "20260111T000000000000Z" / "feedback.parquet"]
    before = every_standing(tmp_path)
    compact(Layout(tmp_path), LONG_AGO)
    assert not leftover.exists()
    assert every_standing(tmp_path) == before


def test_expire_compacts(tmp_path):
    for number in range(3):
        write_intake(
            tmp_path,
            f"2026011{number}T000000000000Z",
            [(0, STATUS_DATES[1], "open", None, "f", 2)],
        )
    assert expire(Layout(tmp_path), LONG_AGO) == 2
    assert ledger_rows(tmp_path) == 1


def test_a_damaged_compacted_file_is_one_clear_error(tmp_path):
    write_intake(tmp_path, "20260111T000000000000Z", [(0, STATUS_DATES[1], "open", None, "f", 2)])
    compact(Layout(tmp_path), LONG_AGO)
    compacted = tmp_path / "feedback_ledger" / COMPACTED
    compacted.write_bytes(b"not parquet")
    with pytest.raises(FeedbackError, match=r"compacted\.parquet: not a compacted feedback ledger"):
        feedback_files(tmp_path)
