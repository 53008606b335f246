"""The analysts' history (issue 14, interfaces.md section 4): publish adds only what changed,
the snapshot equals the full rebuild it replaced, readers of an old snapshot are undisturbed,
and every date can be read as it was first published."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines import contract_sql
from pipelines.contracts import load_contract
from pipelines.history import PUBLISHED, versions
from pipelines.layout import Layout
from pipelines.link import ANALYTICS_CONTRACT
from pipelines.publish import publish
from pipelines.run import run_night
from pipelines.stage_contracts import table_schema
from tests.helpers import deliver_empty_extracts, hub_key_file, write_claims_delivery
from tests.publish_reference import full_rebuild

D1, D2, D3, D4 = (dt.date(2026, 11, 10) + dt.timedelta(days=i) for i in range(4))
SINCE = "2026-06-01"


def claim(name: str, partner: str, cents: int) -> dict:
    return {
        "person": name,
        "claim_ref": f"{partner}-{name}",
        "outstanding_cents": cents,
        "imposed_cents": cents,
        "arrears_cents": cents,
        "arrears_since": SINCE,
    }


def deliver(landing: Path, date: dt.date, extra: int = 0) -> None:
    """X at BD and CJIB (signalled), Y at BD; from D2 on Z at CJIB and DUO; on D1 a broken
    DUO delivery (a rejection); `extra` cents more on Y's claim (a changed delivery)."""
    write_claims_delivery(
        landing, date, "BD", [claim("X", "BD", 60_000), claim("Y", "BD", 30_000 + extra)]
    )
    cjib = [claim("X", "CJIB", 20_000)] + ([claim("Z", "CJIB", 40_000)] if date > D1 else [])
    write_claims_delivery(landing, date, "CJIB", cjib)
    if date > D1:
        write_claims_delivery(landing, date, "DUO", [claim("Z", "DUO", 27_000)])
    deliver_empty_extracts(landing, date)
    if date == D1:
        broken = landing / date.isoformat() / "DUO" / "claims.csv"
        broken.write_text(broken.read_text() + "broken;line\n")


@pytest.fixture()
def hub(tmp_path):
    data = tmp_path / "data"
    for date in (D1, D2, D3, D4):
        deliver(data / "landing", date)
    return data, hub_key_file(tmp_path)


def snapshot(data: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(Layout(data).snapshot), read_only=True)


def contract_rows(con: duckdb.DuckDBPyConnection, table: str, schema: str = "main") -> list[tuple]:
    """The table's rows in the contract's columns, sorted."""
    columns = table_schema(load_contract(*ANALYTICS_CONTRACT), table)
    select = contract_sql.select_columns(columns, table).replace(" from ", f" from {schema}.")
    return con.execute(select + " order by all").fetchall()


def test_the_snapshot_equals_the_full_rebuild_over_a_history_run_out_of_order(hub):
    """Dates run 1, 2, 4, then 3 late (4 is derived again), then 4 rerun: every table of the
    snapshot has exactly the rows the old full rebuild gives from the same files."""
    data, key = hub
    for date in (D1, D2, D4, D3, D4):
        run_night(date, data_dir=data, hub_key_path=key)
    reference = full_rebuild(data)
    with snapshot(data) as con:
        for table in PUBLISHED:
            assert contract_rows(con, table) == contract_rows(reference, table), table
        dates = con.execute("select distinct run_date from persons order by 1").fetchall()
        rejected = con.execute("select run_date, partner from rejections").fetchall()
    assert [d for (d,) in dates] == [D1, D2, D3, D4]
    assert rejected == [(D1, "DUO")]
    # the tables actually hold rows of every kind (a comparison of empty tables proves nothing)
    counts = {t: len(contract_rows(reference, t)) for t in PUBLISHED}
    assert all(counts[t] for t in PUBLISHED if t != "rejections" and t != "agg_partner_pairs")


def test_a_night_publishes_only_what_changed_and_stores_only_the_changes(hub):
    """D1 is stored whole; D2 adds Z (two claims, one person with a plan); D3 is the same as D2
    (only persistence counts on): nothing of the per-person tables is stored for it, and the
    views still show every row of every date."""
    data, key = hub
    layout = Layout(data)
    deliver(data / "landing", D3)  # same claims as D2
    for date in (D1, D2, D3):
        run_night(date, data_dir=data, hub_key_path=key)
    assert [len(versions(layout, d)) for d in (D1, D2, D3)] == [1, 1, 1]
    first, second, third = (versions(layout, d)[0] for d in (D1, D2, D3))
    assert first.keyframe and first.changes["persons"] == [2, 0]  # X and Y, stored whole
    assert second.changes["persons"] == [1, 0] and second.changes["claims"] == [2, 0]
    assert all(added == removed == 0 for added, removed in third.changes.values())
    assert third.part("persons", ".added.parquet") is None
    publish(data)  # nothing changed: a new snapshot, no new partition
    assert [versions(layout, d)[-1] for d in (D1, D2, D3)] == [first, second, third]
    # the small per-date tables are the linked files themselves (hard links), not copies
    linked = layout.linked_date(D1) / "overlap_counts.parquet"
    assert linked.stat().st_ino == (first.folder / "overlap_counts.parquet").stat().st_ino
    with snapshot(data) as con:
        persons = con.execute(
            "select run_date, count(*), max(persistence_runs) from persons group by 1 order by 1"
        ).fetchall()
    assert persons == [(D1, 2, 1), (D2, 3, 2), (D3, 3, 3)]
    assert Layout(data).snapshot.stat().st_size < 2_000_000  # views: no rows in the file


def test_a_reader_holding_the_old_snapshot_keeps_reading_it(hub):
    data, key = hub
    run_night(D1, data_dir=data, hub_key_path=key)
    run_night(D2, data_dir=data, hub_key_path=key)
    reader = snapshot(data)
    query = "select person_id, arrears_cents from persons where run_date = $d order by all"
    before = reader.execute(query, {"d": D2}).fetchall()
    runs_before = reader.execute("select run_date from runs order by 1").fetchall()
    # D2 delivered again with Y owing more (a rerun: a new version of D2), then D3
    deliver(data / "landing", D2, extra=5_000)
    run_night(D2, data_dir=data, hub_key_path=key)
    run_night(D3, data_dir=data, hub_key_path=key)
    assert reader.execute(query, {"d": D2}).fetchall() == before
    assert reader.execute("select run_date from runs order by 1").fetchall() == runs_before
    reader.close()
    with snapshot(data) as con:
        after = con.execute(query, {"d": D2}).fetchall()
        assert after != before and sum(a for _, a in after) == sum(a for _, a in before) + 5_000
        # the first version is still there to query: time travel
        assert (
            con.execute(query.replace("persons", "as_published.persons"), {"d": D2}).fetchall()
            == before
        )


def test_a_date_derived_again_keeps_its_first_publication(hub):
    """D4 runs before D3; D3's late run derives D4 again (persistence counts D3 now). The main
    views show D4 as it is now, `as_published` as it was first published, and `publications`
    says which run published which version."""
    data, key = hub
    for date in (D1, D2, D4):
        run_night(date, data_dir=data, hub_key_path=key)
    persistence = "select person_id, persistence_runs from persons where run_date = $d order by 1"
    with snapshot(data) as con:
        first = con.execute(persistence, {"d": D4}).fetchall()
    run_night(D3, data_dir=data, hub_key_path=key)
    with snapshot(data) as con:
        now = con.execute(persistence, {"d": D4}).fetchall()
        as_published = con.execute(
            persistence.replace("from persons", "from as_published.persons"), {"d": D4}
        ).fetchall()
        versions_of_d4 = con.execute(
            "select version, published_by, superseded_at is null from publications "
            "where run_date = $d order by version",
            {"d": D4},
        ).fetchall()
    assert as_published == first and now != first
    assert versions_of_d4 == [(1, D4, False), (2, D3, True)]


def test_a_publish_killed_before_its_snapshot_leaves_no_version_behind(hub, monkeypatch):
    """A version built by a publish that never swapped its snapshot in was seen by nobody: the
    next publish drops it, so that version 1 is always what analysts first saw."""
    import pipelines.publish

    data, key = hub
    layout = Layout(data)
    run_night(D1, data_dir=data, hub_key_path=key)

    def killed(*args, **kwargs):
        raise RuntimeError("killed before the swap")

    monkeypatch.setattr(pipelines.publish, "replace_atomically", killed)
    with pytest.raises(Exception, match="could not be rebuilt"):
        run_night(D2, data_dir=data, hub_key_path=key)
    assert len(versions(layout, D2)) == 1  # built, never shown
    monkeypatch.undo()
    deliver(data / "landing", D2, extra=1_000)
    run_night(D2, data_dir=data, hub_key_path=key)
    assert len(versions(layout, D2)) == 1
    with snapshot(data) as con:
        assert con.execute(
            "select count(*) from publications where run_date = $d", {"d": D2}
        ).fetchone() == (1,)


def rerun_d3_with_z_paid_at_cjib(landing: Path) -> None:
    """D3 delivered again: Z's CJIB claim is gone, so Z's persistence starts over and the later
    dates are refreshed (DUO still missing on D3: carried forward from D2)."""
    write_claims_delivery(landing, D3, "CJIB", [claim("X", "CJIB", 20_000)])


def everything(data: Path) -> dict[str, list[tuple]]:
    """Every published table (runs without its wall-clock times), as first published too,
    and the versions."""
    found = {}
    with snapshot(data) as con:
        for table in PUBLISHED:
            for schema in ("main", "as_published"):
                rows = contract_rows(con, table, schema)
                if table == "runs":
                    rows = [r[:1] + r[3:] for r in rows]  # started_at, finished_at
                if table == "rejections":
                    rows = [r[:3] + r[4:-1] for r in rows]  # received, its folder name
                found[f"{schema}.{table}"] = rows
        found["publications"] = con.execute(
            "select run_date, version, published_by, tables from publications order by all"
        ).fetchall()
    return found


def test_evicted_dates_read_the_same_and_a_backfill_reaching_them_restores_them(
    tmp_path, monkeypatch
):
    """Two hubs run the same six nights (DUO missing on D3) and then a late rerun of D3: one
    keeps every full copy, the other evicts all but the newest date's. Every table, as now and
    as first published, is the same; the rerun stages DUO's D2 delivery again from the landing
    zone, reads D2's persons from the snapshot and refreshes D4's persistence from it."""
    import pipelines.evict

    key = hub_key_file(tmp_path)
    nights = [D1 + dt.timedelta(days=i) for i in range(6)]
    results = {}
    for name, window in (("full", None), ("evicted", 1)):
        if window is not None:
            monkeypatch.setattr(pipelines.evict, "full_copies_days", lambda days=window: days)
        data = tmp_path / name
        for date in nights:
            deliver(data / "landing", date)
            if date == D3:  # DUO misses a night: carried forward from D2
                shutil.rmtree(data / "landing" / date.isoformat() / "DUO")
            run_night(date, data_dir=data, hub_key_path=key)
        rerun_d3_with_z_paid_at_cjib(data / "landing")
        run_night(D3, data_dir=data, hub_key_path=key)
        results[name] = everything(data)
        stale = [r[7] for r in results[name]["main.runs"] if r[0] == D3]
        assert stale == [["DUO/claims 2026-11-11"]], stale  # carried forward from D2
    assert results["evicted"]["publications"] == results["full"]["publications"]
    assert results["evicted"] == results["full"]
    # what the evicting hub keeps of an old date: the records and small tables, no full copy
    layout = Layout(tmp_path / "evicted")
    for date in nights[:4]:
        assert not (layout.linked_date(date) / "claims.parquet").exists()
        assert (layout.linked_date(date) / "evicted.json").is_file()
        assert list(layout.staging_date(date).glob("*/*.parquet")) == []
    # ... and the later dates derived from the late D3 were published again
    with snapshot(tmp_path / "evicted") as con:
        z_persistence = con.execute(
            "select run_date, persistence_runs from persons p join claims c using "
            "(run_date, person_id) where c.claim_ref = 'DUO-Z' order by 1"
        ).fetchall()
    assert [p for _, p in z_persistence] == [1, 0, 1, 2, 3]


def test_after_retention_the_oldest_date_kept_is_stored_whole_and_reads_the_same(hub, monkeypatch):
    """Retention of 2 days over 5 nights: each night the oldest date kept becomes a keyframe
    (stored whole, from the date before it and its own changes), the expired partitions go,
    and every table still equals the full rebuild of the dates kept."""
    import pipelines.retention

    monkeypatch.setattr(pipelines.retention, "retention_days", lambda: 2)
    data, key = hub
    layout = Layout(data)
    nights = [D1 + dt.timedelta(days=i) for i in range(5)]
    for date in nights:
        deliver(data / "landing", date)
        run_night(date, data_dir=data, hub_key_path=key)
    assert layout.dates(layout.history) == nights[2:]
    oldest = versions(layout, nights[2])
    assert oldest[-1].keyframe and not oldest[0].keyframe
    assert list(oldest[0].folder.glob("*.removed.parquet")) == []  # named rows of expired dates
    reference = full_rebuild(data)
    with snapshot(data) as con:
        for table in PUBLISHED:
            assert contract_rows(con, table) == contract_rows(reference, table), table


def test_a_backfill_that_needs_an_evicted_delivery_changed_since_is_refused(tmp_path, monkeypatch):
    """The rerun of D3 carries DUO forward from D2, whose staged copy was evicted; the D2
    delivery in the landing zone no longer has the accepted bytes: the run stops with one line
    saying so, and nothing is quarantined."""
    import pipelines.evict
    from pipelines.errors import CriError

    monkeypatch.setattr(pipelines.evict, "full_copies_days", lambda: 1)
    key = hub_key_file(tmp_path)
    data = tmp_path / "data"
    for date in (D1, D2, D3, D4, D4 + dt.timedelta(days=1)):
        deliver(data / "landing", date)
        if date == D3:
            shutil.rmtree(data / "landing" / date.isoformat() / "DUO")
        run_night(date, data_dir=data, hub_key_path=key)
    assert not list(Layout(data).staging_date(D2).glob("DUO/*.parquet"))  # evicted
    duo = data / "landing" / D2.isoformat() / "DUO" / "claims.csv"
    duo.write_text(duo.read_text().replace("27000", "27001"))
    rerun_d3_with_z_paid_at_cjib(data / "landing")
    with pytest.raises(CriError, match="has changed since it was accepted"):
        run_night(D3, data_dir=data, hub_key_path=key)
    assert duo.is_file() and not (data / "quarantine" / D2.isoformat()).exists()
