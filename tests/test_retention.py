"""Retention (interfaces.md section 4): run dates older than `history.retention_days` before the
newest run date are removed from every hub table and file, and the removal is recorded in
`runs`. The period is shortened to 2 days here so that a few nights show it."""

from __future__ import annotations

import datetime as dt
import errno
import os
from pathlib import Path

import duckdb
import pytest

import pipelines.retention
from pipelines.layout import Layout
from pipelines.recovery import recover
from pipelines.retention import EXPIRED_PREFIX, RetentionRefused
from pipelines.run import run_night
from privacy.cms import create_demo_certificates
from tests.helpers import deliver_empty_extracts, hub_key_file, write_claims_delivery

NIGHTS = [dt.date(2026, 10, 1) + dt.timedelta(days=i) for i in range(5)]
KEEP_DAYS = 2


@pytest.fixture()
def short_retention(monkeypatch):
    monkeypatch.setattr(pipelines.retention, "retention_days", lambda: KEEP_DAYS)


def deliver(landing: Path, date: dt.date) -> None:
    """A night with signals (A at two partners, over the BD threshold) and, on the first
    night, a rejected delivery (so that the quarantine has the date too)."""
    since = (date - dt.timedelta(days=90)).isoformat()
    a = {"person": "A", "arrears_since": since}
    big = {"outstanding_cents": 70_000, "imposed_cents": 70_000, "arrears_cents": 70_000}
    write_claims_delivery(landing, date, "BD", [{**a, **big}])
    write_claims_delivery(landing, date, "CJIB", [a, {"person": "B", "arrears_since": since}])
    deliver_empty_extracts(landing, date)
    if date == NIGHTS[0]:
        broken = landing / date.isoformat() / "DUO" / "claims.csv"
        broken.write_text(broken.read_text() + "broken;line\n")


def run_date_rows(snapshot: Path) -> dict[str, set[dt.date]]:
    """The run dates found in every snapshot table that has a run_date column."""
    with duckdb.connect(str(snapshot), read_only=True) as con:
        tables = [
            t
            for (t,) in con.execute(
                "select table_name from information_schema.columns where column_name = 'run_date'"
            ).fetchall()
        ]
        return {
            t: {d for (d,) in con.execute(f"select distinct run_date from {t}").fetchall()}
            for t in tables
        }


@pytest.fixture()
def hub(tmp_path, short_retention):
    data = tmp_path / "data"
    certs, gemeente_keys = tmp_path / "certs", tmp_path / "gemeente"
    create_demo_certificates(certs, gemeente_keys, ["GM0363"])
    return data, hub_key_file(tmp_path), certs


def test_old_dates_leave_every_folder_and_table_and_the_removal_is_recorded(hub):
    data, key, certs = hub
    layout = Layout(data)
    for date in NIGHTS:
        deliver(layout.landing, date)
        run_night(date, data_dir=data, hub_key_path=key, certs=certs)
    removed, kept = NIGHTS[:2], NIGHTS[2:]

    # no file or folder of a removed date, anywhere under the data directory
    names = [p.relative_to(data).as_posix() for p in data.rglob("*")]
    for date in removed:
        assert not [n for n in names if date.isoformat() in n], date
    # and no row of one in any table (the runs of the kept dates say which went, and when)
    rows = run_date_rows(layout.snapshot)
    assert rows["persons"] == rows["runs"] == set(kept)
    assert all(dates <= set(kept) for dates in rows.values()), rows
    with duckdb.connect(str(layout.snapshot), read_only=True) as con:
        record = dict(con.execute("select run_date, dates_removed from runs").fetchall())
    assert record == {NIGHTS[2]: [], NIGHTS[3]: [NIGHTS[0]], NIGHTS[4]: [NIGHTS[1]]}
    # nothing else was touched: every kept date has all its folders
    for date in kept:
        for root in (layout.landing, layout.staging, layout.linked, layout.reports):
            assert (root / date.isoformat()).is_dir(), (root, date)
    assert layout.dates(layout.ledger) == kept  # each kept night delivered (night 2 signalled A)
    # bytes: no file holds a claim of a removed night (the claim refs carry the night's date;
    # a kept night may still *name* a removed date, e.g. "unchanged since")
    for path in (p for p in data.rglob("*") if p.is_file()):
        content = path.read_bytes()
        for date in removed:
            assert f"-{date:%Y%m%d}-".encode() not in content, (path, date)
    with duckdb.connect(str(layout.snapshot), read_only=True) as con:
        refs = {r for (r,) in con.execute("select claim_ref from claims").fetchall()}
    assert refs and not [r for r in refs for d in removed if f"-{d:%Y%m%d}-" in r]


def test_a_rerun_keeps_the_record_and_an_expired_date_is_refused(hub):
    data, key, certs = hub
    layout = Layout(data)
    for date in NIGHTS[:4]:
        deliver(layout.landing, date)
        run_night(date, data_dir=data, hub_key_path=key, certs=certs)
    run_night(NIGHTS[3], data_dir=data, hub_key_path=key, certs=certs)  # the same night again
    with duckdb.connect(str(layout.snapshot), read_only=True) as con:
        [(removed,)] = con.execute(
            "select dates_removed from runs where run_date = $d", {"d": NIGHTS[3]}
        ).fetchall()
    assert removed == [NIGHTS[0]]
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    with pytest.raises(RetentionRefused, match="older than the retention period"):
        run_night(NIGHTS[0], data_dir=data, hub_key_path=key, certs=certs)
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before


def test_a_removal_killed_half_way_is_finished_by_the_next_start(tmp_path):
    layout = Layout(tmp_path / "data")
    leftover = layout.staging / f"{EXPIRED_PREFIX}2026-10-01" / "BD"
    leftover.mkdir(parents=True)
    (leftover / "claims.parquet").write_bytes(b"x")
    kept = layout.staging / "2026-10-03"
    kept.mkdir()
    recover(layout.data_dir)
    assert not leftover.parent.exists() and kept.is_dir()


def test_a_landing_zone_that_cannot_be_changed_does_not_stop_the_night(
    tmp_path, caplog, monkeypatch
):
    """A read-only landing zone (the partners' share) keeps its old dates; the hub's own
    folders still lose them, and the run says what it could not remove. (The tests run as root,
    which a read-only mode does not stop: the file system's refusal is simulated.)"""
    from pipelines.retention import remove_expired

    layout = Layout(tmp_path / "data", tmp_path / "landing")
    old = dt.date(2025, 1, 1)
    for root in (layout.landing, layout.staging):
        (root / old.isoformat()).mkdir(parents=True)
    rename = Path.rename

    def read_only_landing(self, target):
        if self.parent == layout.landing:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", read_only_landing)
    removed = remove_expired(layout, [old])
    assert removed == [layout.staging / old.isoformat()]
    assert (layout.landing / old.isoformat()).is_dir()
    assert "could not be removed (Read-only file system)" in caplog.text
