"""The full rebuild that publish did before issue 14, kept as the reference the incremental
publish is compared with (tests/test_history.py): every table built from every run date's files
at once, in one DuckDB database. Frozen on purpose; the aggregates use the same functions that
publish used then (`pipelines.aggregates`, moved there unchanged)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from pipelines.aggregates import agg_gemeente_partners, agg_signal_monitoring
from pipelines.contracts import load_contract
from pipelines.history import FROM_LEDGER, FROM_LINKED
from pipelines.layout import Layout
from pipelines.ledger import delivered_files, ledger_dates
from pipelines.link import ANALYTICS_CONTRACT, linked_dates
from pipelines.stage_contracts import empty_table

LATEST_SIGNAL = """
    select * exclude (filename) from read_parquet($files, filename = true)
    qualify row_number() over (partition by signal_id order by filename desc) = 1"""
LATEST_MONITORING = """
    select * exclude (filename) from read_parquet($files, filename = true)
    qualify max(filename) over (partition by run_date) = filename"""


def full_rebuild(data_dir: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory database with every published table rebuilt from all run dates."""
    layout = Layout(data_dir)
    contract = load_contract(*ANALYTICS_CONTRACT)
    con = duckdb.connect()
    dates = linked_dates(data_dir)
    for table in FROM_LINKED:
        files = [str(layout.linked_date(d) / f"{table}.parquet") for d in dates]
        files = [f for f in files if Path(f).is_file()]
        if files:
            con.execute(
                f"create table {table} as select * from read_parquet($files)", {"files": files}
            )
        else:
            empty_table(con, contract, table)
    delivered = ledger_dates(data_dir)
    # signal_partners (contract 1.6.0) is per run date like the monitoring
    latest = (LATEST_SIGNAL, LATEST_MONITORING, LATEST_MONITORING)
    for table, sql in zip(FROM_LEDGER, latest, strict=True):
        files = [str(f) for f in delivered_files(data_dir, table, delivered)]
        if files:
            con.execute(f"create table {table} as {sql}", {"files": files})
        else:
            empty_table(con, contract, table)
    _runs(con, layout, dates, set(delivered), contract)
    _rejections(con, layout, contract)
    agg_gemeente_partners(con, contract)
    con.execute(
        "create table agg_partner_pairs as select run_date, partner_a, partner_b, "
        "case when persons between 1 and 9 then null else persons end as persons, "
        "persons between 1 and 9 as suppressed from overlap_pairs"
    )
    agg_signal_monitoring(con, contract)
    return con


def _runs(con, layout: Layout, dates: list, delivered: set, contract) -> None:
    empty_table(con, contract, "runs")
    for run_date in dates:
        record = json.loads((layout.linked_date(run_date) / "run.json").read_text("utf-8"))
        con.execute(
            "insert into runs values ($run_date, $started_at, $finished_at, $accepted, $rejected, "
            "$claims, $persons, $partners, $unchanged, $stale, $left_out, $delivered, $note, "
            "cast($removed as date[]))",
            {
                "run_date": record["run_date"],
                "started_at": record["started_at"],
                "finished_at": record["finished_at"],
                "accepted": record["datasets_accepted"],
                "rejected": record["datasets_rejected"],
                "claims": record["claims"],
                "persons": record["persons"],
                "partners": record["partners"],
                "unchanged": record.get("datasets_unchanged", []),
                "stale": record.get("datasets_stale", []),
                "left_out": record.get("partners_left_out", []),
                "delivered": run_date in delivered,
                "note": record.get("delivery_note"),
                "removed": record.get("dates_removed", []),
            },
        )


def _rejections(con, layout: Layout, contract) -> None:
    empty_table(con, contract, "rejections")
    quarantine = layout.quarantine
    for reason_path in sorted(quarantine.glob("*/*/*/reason.json")):
        if reason_path.parent.name.startswith("."):
            continue
        reason = json.loads(reason_path.read_text("utf-8"))
        con.execute(
            "insert into rejections values ($d, $p, $ds, $r, $rule, $m, $rows, $lines, $f)",
            {
                "d": reason_path.parts[-4],
                "p": reason["partner"],
                "ds": reason["dataset"],
                "r": reason["received"],
                "rule": reason["rule"],
                "m": reason["message"],
                "rows": reason["rows"],
                "lines": reason["example_lines"],
                "f": reason_path.parent.relative_to(quarantine).as_posix(),
            },
        )
