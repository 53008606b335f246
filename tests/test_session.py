"""One DuckDB session for link, plans and signals in a one-process run (`pipelines.session`):
the same tables as the stages reading each other's files (as Airflow tasks do), and memory is
used only while it still says what the file says."""

from __future__ import annotations

import datetime as dt
import errno
import os
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

import pipelines.link
from pipelines.layout import Layout
from pipelines.link import load_linked_tables
from pipelines.lock import data_dir_lock
from pipelines.night import Night
from pipelines.run import run_night
from pipelines.session import Session, connection
from pipelines.settings import PROJECT_ROOT, Settings
from pipelines.stages import STAGES, prepare, run_stage
from tests.helpers import EXTRACT_DATE, deliver_empty_extracts, hub_key_file


def _tables(folder: Path) -> dict[str, list[tuple]]:
    with duckdb.connect() as con:
        return {
            path.name: sorted(
                con.execute(f"select * from read_parquet('{path}')").fetchall(), key=repr
            )
            for path in sorted(folder.glob("*.parquet"))
        }


def _stage_by_stage(data_dir: Path, key: Path, session: Session | None = None) -> dict:
    """Every stage on its own, as the Airflow tasks run them (without a session: reading the
    files the stage before wrote); returns the session's tables after each stage."""
    settings = Settings.resolve(data_dir=data_dir, hub_key_file=key)
    night = Night(EXTRACT_DATE, settings)
    night.session = session
    held = {}
    with data_dir_lock(data_dir, what="test"):
        night.recovered = prepare(night)
        for stage in STAGES:
            run_stage(stage, night)
            if session is not None:
                held[stage.name] = {r[0] for r in session.con.execute("show tables").fetchall()}
    return held


def test_one_session_gives_the_same_tables_and_files_as_stage_by_stage(
    tmp_path, night_template, monkeypatch
):
    key = hub_key_file(tmp_path)
    one, apart = tmp_path / "one", tmp_path / "apart"
    for data_dir in (one, apart):
        shutil.copytree(night_template, data_dir / "landing")
        deliver_empty_extracts(data_dir / "landing", EXTRACT_DATE)  # every partner delivered
    read_back: list[str] = []  # the linked tables a stage read from their files
    create_table = pipelines.link.create_table

    def spied(con, name, parameters=None, **how):
        if name == "link/linked_table":
            read_back.append(how["table"])
        return create_table(con, name, parameters, **how)

    monkeypatch.setattr(pipelines.link, "create_table", spied)
    summary = run_night(EXTRACT_DATE, data_dir=one, hub_key_path=key)
    # plans and signals took link's and plans' tables from memory; only delivery reads a file
    assert read_back == ["signals"]
    read_back.clear()
    _stage_by_stage(apart, key)
    assert read_back == [
        "persons",
        "claims",
        "income",
        "persons",
        "claims",
        "plan_proposals",
        "signals",
    ]
    assert summary.session is None  # the run's session ends with it
    linked = [Layout(d).linked_date(EXTRACT_DATE) for d in (one, apart)]
    tables = [_tables(folder) for folder in linked]
    assert {
        "claims.parquet",
        "persons.parquet",
        "plan_proposals.parquet",
        "signals.parquet",
    } <= set(tables[0])
    assert tables[0] == tables[1]
    outboxes = [Layout(d).outbox_date(EXTRACT_DATE) for d in (one, apart)]
    signal_files = [sorted(o.rglob("signals.csv")) for o in outboxes]
    assert signal_files[0], "the night should signal someone"
    assert [p.relative_to(outboxes[0]) for p in signal_files[0]] == [
        p.relative_to(outboxes[1]) for p in signal_files[1]
    ]
    for mine, theirs in zip(*signal_files, strict=True):
        assert mine.read_bytes() == theirs.read_bytes()


def test_a_kept_table_is_used_only_while_its_file_is_unchanged(tmp_path):
    folder = tmp_path / "linked"
    folder.mkdir()
    session = Session()
    try:
        with connection(session) as con:
            con.execute("create table persons as select 2 as b, 1 as a")
            con.execute(f"copy (select a, b from persons) to '{folder / 'persons.parquet'}'")
            session.keep("persons", folder / "persons.parquet", ["a", "b"])
            con.execute("create table scratch as select 1 as x")
            con.register("registered", pa.table({"y": [1]}))
        # the stage ended: its scratch is gone, the kept table is the file's columns, in order
        names = {r[0] for r in session.con.execute("show tables").fetchall()}
        assert names == {"persons"}
        assert session.con.execute("select * from persons").fetchall() == [(1, 2)]
        assert session.holds("persons", folder / "persons.parquet")
        assert not session.holds("persons", tmp_path / "elsewhere" / "persons.parquet")

        # the file is replaced (a rerun of the stage elsewhere, a restore): read it again
        with duckdb.connect() as other:
            other.execute(f"copy (select 7 as a, 8 as b) to '{tmp_path / 'new.parquet'}'")
        os.replace(tmp_path / "new.parquet", folder / "persons.parquet")
        assert not session.holds("persons", folder / "persons.parquet")
        with connection(session) as con:
            load_linked_tables(con, folder, ("persons",), session)
            assert con.execute("select * from persons").fetchall() == [(7, 8)]

        session.release(("persons",))
        assert session.con.execute("show tables").fetchall() == []
    finally:
        session.close()


def test_the_session_holds_only_what_a_later_stage_reads(tmp_path, night_template):
    shutil.copytree(night_template, tmp_path / "landing")
    deliver_empty_extracts(tmp_path / "landing", EXTRACT_DATE)
    session = Session()
    try:
        held = _stage_by_stage(tmp_path, hub_key_file(tmp_path), session)
    finally:
        session.close()
    assert held["link"] == {"claims", "persons", "income"}
    assert held["plans"] == {"claims", "persons", "plan_proposals"}  # income was plans' alone
    assert held["feedback"] == held["plans"]
    assert held["signals"] == held["publish"] == held["report"] == set()


def test_a_failing_stage_leaves_only_the_kept_tables_and_its_own_error(tmp_path):
    session = Session()
    file = tmp_path / "persons.parquet"
    try:
        with connection(session) as con:
            con.execute("create table persons as select 1 as a")
            con.execute(f"copy persons to '{file}'")
            session.keep("persons", file, ["a"])
        try:
            with connection(session) as con:
                con.execute("create table half_done as select 1 as x")
                con.execute("create temp table persons as select 999 as a")  # would shadow
                con.execute("create schema scratch")
                con.execute("create table scratch.big as select 1 as x")
                con.execute(f"attach '{tmp_path / 'other.duckdb'}' as other")
                raise RuntimeError("the stage failed")
        except RuntimeError as exc:
            assert str(exc) == "the stage failed"
        tables = session.con.execute(
            "select database_name, schema_name, table_name from duckdb_tables()"
        ).fetchall()
        assert tables == [("memory", "main", "persons")]
        assert session.con.execute("select * from persons").fetchall() == [(1,)]
        databases = {r[0] for r in session.con.execute("show databases").fetchall()}
        assert "other" not in databases
    finally:
        session.close()


def test_partners_in_arrears_worked_by_hand():
    """sql/link/persons.sql: a partner counts when the person's arrears there are above zero
    (one claim with arrears is enough); the list is alphabetical; routing takes the gemeente
    of most claims, ties to the smallest code."""
    with duckdb.connect() as con:
        con.execute(
            "create table claims as select * from (values "
            "('p1', 'TSL', 0, 500, 'GM0002', false, null),"
            "('p1', 'TSL', 250, 500, 'GM0002', false, date '2026-01-05'),"
            "('p1', 'BD', 0, 900, 'GM0001', false, null),"
            "('p1', 'CJIB', 100, 100, 'GM0001', true, date '2025-12-01'),"
            "('p2', 'BD', 0, 300, 'GM0003', false, null),"
            "('p3', 'UWV', 40, 40, 'GM0004', false, date '2026-02-01')"
            ") as t(person_id, partner, arrears_cents, outstanding_cents, gemeente_code, "
            "debt_assistance, arrears_since)"
        )
        con.execute(
            "create table previous_persons as select 'p1' as person_id, 3 as persistence_runs"
        )
        sql = (PROJECT_ROOT / "sql" / "link" / "persons.sql").read_text()
        rows = con.execute(
            "select person_id, n_partners, partners, arrears_cents, outstanding_cents, "
            "oldest_arrears_since, gemeente_code, debt_assistance, persistence_runs "
            f"from ({sql}) order by person_id",
            {"run_date": "2026-03-01"},
        ).fetchall()
    assert rows == [
        ("p1", 2, ["CJIB", "TSL"], 350, 2000, dt.date(2025, 12, 1), "GM0001", True, 4),
        ("p2", 0, [], 0, 300, None, "GM0003", False, 0),
        ("p3", 1, ["UWV"], 40, 40, dt.date(2026, 2, 1), "GM0004", False, 0),
    ]


def test_a_write_error_told_at_the_outbox_flush_keeps_the_outbox_out(
    tmp_path, night_template, monkeypatch
):
    """The gemeente files are flushed once, before the outbox is swapped in: a write the disk
    failed (reported by fsync) stops the night there, with no outbox and no ledger entry."""
    shutil.copytree(night_template, tmp_path / "landing")
    deliver_empty_extracts(tmp_path / "landing", EXTRACT_DATE)
    fsync = os.fsync
    failed = []

    def disk_error(descriptor: int) -> None:
        path = os.readlink(f"/proc/self/fd/{descriptor}")
        if "/outbox/" in path and path.endswith("signals.csv"):
            failed.append(path)
            raise OSError(errno.EIO, "Input/output error")
        fsync(descriptor)

    monkeypatch.setattr(os, "fsync", disk_error)
    with pytest.raises(OSError, match="Input/output error"):
        run_night(EXTRACT_DATE, data_dir=tmp_path, hub_key_path=hub_key_file(tmp_path))
    assert failed
    layout = Layout(tmp_path)
    assert not layout.outbox_date(EXTRACT_DATE).exists()
    assert not (layout.ledger / EXTRACT_DATE.isoformat()).exists()
