"""One DuckDB session for link, plans and signals in a one-process run (`pipelines.session`):
the same tables as the stages reading each other's files (as Airflow tasks do), and memory is
used only while it still says what the file says."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa

import pipelines.link
from pipelines.layout import Layout
from pipelines.link import load_linked_tables
from pipelines.lock import data_dir_lock
from pipelines.night import Night
from pipelines.run import run_night
from pipelines.session import Session, connection
from pipelines.settings import Settings
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


def _as_airflow_does(data_dir: Path, key: Path) -> None:
    """Every stage on its own, reading the files the one before wrote (no session)."""
    settings = Settings.resolve(data_dir=data_dir, hub_key_file=key)
    night = Night(EXTRACT_DATE, settings)
    with data_dir_lock(data_dir, what="test"):
        night.recovered = prepare(night)
        for stage in STAGES:
            assert night.session is None
            run_stage(stage, night)


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
    _as_airflow_does(apart, key)
    assert read_back == [
        "persons",
        "claims",
        "income",
        "persons",
        "claims",
        "plan_proposals",
        "signals",
    ]
    assert summary.session is None  # closed with the run
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


def test_a_failing_stage_leaves_only_the_kept_tables(tmp_path):
    session = Session()
    try:
        try:
            with connection(session) as con:
                con.execute("create table half_done as select 1 as x")
                con.execute(f"attach '{tmp_path / 'other.duckdb'}' as other")
                raise RuntimeError("the stage failed")
        except RuntimeError:
            pass
        assert session.con.execute("show tables").fetchall() == []
        databases = {r[0] for r in session.con.execute("show databases").fetchall()}
        assert "other" not in databases
    finally:
        session.close()
