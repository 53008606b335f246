"""The analysts' history (issue 14, interfaces.md section 4): publish adds only what changed,
the snapshot equals the full rebuild it replaced, readers of an old snapshot are undisturbed,
and every date can be read as it was first published."""

from __future__ import annotations

import datetime as dt
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


def contract_rows(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    """The table's rows in the contract's columns, sorted."""
    schema = table_schema(load_contract(*ANALYTICS_CONTRACT), table)
    return con.execute(contract_sql.select_columns(schema, table) + " order by all").fetchall()


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


def test_a_night_publishes_only_what_changed(hub):
    data, key = hub
    layout = Layout(data)
    run_night(D1, data_dir=data, hub_key_path=key)
    run_night(D2, data_dir=data, hub_key_path=key)
    assert [len(versions(layout, d)) for d in (D1, D2)] == [1, 1]
    first = versions(layout, D1)[0]
    publish(data)  # nothing changed: a new snapshot, no new partition
    assert versions(layout, D1) == [first] and len(versions(layout, D2)) == 1
    # the partitions hold the linked files themselves (hard links), not copies
    linked = layout.linked_date(D1) / "persons.parquet"
    assert linked.stat().st_ino == (first.folder / "persons.parquet").stat().st_ino
    # the snapshot is views: its size does not depend on the rows
    assert Layout(data).snapshot.stat().st_size < 2_000_000


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
