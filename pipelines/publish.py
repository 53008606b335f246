"""Publish: the analysts' snapshot `warehouse/analytics.duckdb`, rebuilt and swapped atomically.

Every run date in `linked/` goes in (history is kept; a rerun of a date replaced that date's
folder, so nothing doubles), the delivered signals from the ledger (`ledger/<date>/`), plus
`runs` (from `linked/<date>/run.json`), `rejections` (from the quarantine's reason.json files)
and the aggregates for wide sharing with small cells suppressed
(`privacy.suppression`). The snapshot is written to a temporary file next to the old one,
checked against the `analytics` contract, commented from it, and then renamed over the old one:
a reader that opened the old file keeps reading it, a new reader gets the new one, and a failed
publish leaves the previous snapshot in place.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.contracts import Contract, load_contract
from pipelines.errors import CriError
from pipelines.faults import kill_point
from pipelines.fileio import replace_atomically
from pipelines.layout import Layout
from pipelines.ledger import delivered_files, ledger_dates
from pipelines.link import ANALYTICS_CONTRACT, linked_dates
from pipelines.sql import connect, create_table, query, relation, run_script
from pipelines.stage_contracts import check_tables, comment_statements, table_schema
from privacy.suppression import SMALL_CELL, suppress, suppress_grid

log = logging.getLogger(__name__)

FROM_LINKED = (
    "persons",
    "claims",
    "overlap_counts",
    "overlap_pairs",
    "plan_proposals",
    "plan_lines",
    "plan_schedule",
)
FROM_LEDGER = ("signals", "signal_monitoring")
BUILT_HERE = (
    "runs",
    "rejections",
    "agg_gemeente_partners",
    "agg_partner_pairs",
    "agg_signal_monitoring",
)
PUBLISHED = (
    *FROM_LINKED,
    *FROM_LEDGER,
    "runs",
    "rejections",
    "agg_gemeente_partners",
    "agg_partner_pairs",
    "agg_signal_monitoring",
)
PARTNER_BUCKETS = ("1", "2", "3", "4+")
# The small-cell threshold lives in privacy.suppression alone; the SQL gets it bound, and the
# contract's rules may use it as `$small_cell`.
SUPPRESSION = {"small_cell": SMALL_CELL}


class PublishError(CriError):
    """There is nothing to publish, or the snapshot breaks its contract."""


def publish(data_dir: Path) -> Path:
    """Rebuild and swap in `warehouse/analytics.duckdb`; return its path."""
    data_dir = Path(data_dir)
    dates = linked_dates(data_dir)
    if not dates:
        raise PublishError(f"{Layout(data_dir).linked}: no linked run to publish")
    final = Layout(data_dir).snapshot
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        _build(temporary, data_dir, dates)
        kill_point("snapshot_built")
        replace_atomically(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
        temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)
    log.info("published %s with %s run date(s)", final, len(dates))
    return final


def _build(database: Path, data_dir: Path, dates: list) -> None:
    """Every published table into the new snapshot file, checked and commented."""
    contract = load_contract(*ANALYTICS_CONTRACT)
    with connect(database) as con:
        delivered = ledger_dates(data_dir)
        _from_linked(con, contract, data_dir, dates)
        _from_ledger(con, contract, data_dir, delivered)
        _runs(con, data_dir, dates, contract, set(delivered))
        _rejections(con, data_dir, contract)
        _agg_gemeente_partners(con, contract)
        _agg_partner_pairs(con)
        _agg_signal_monitoring(con, contract)
        # The cool-down rule compares each signal with the earlier ones.
        # The tables copied from linked/ were checked against this same contract by their
        # own stage before they were written (signals against the full signal history);
        # re-checking every run date's rows here cost 6.6 s of 17 s at 2,000,000 persons
        # and grows with history. Publish checks what it builds itself.
        check_tables(con, contract, list(BUILT_HERE), SUPPRESSION)
        for table in PUBLISHED:
            for statement in comment_statements(contract, table):
                con.execute(statement)
        con.checkpoint()


def _from_linked(
    con: duckdb.DuckDBPyConnection, contract: Contract, data_dir: Path, dates: list
) -> None:
    """Each table of `linked/`: the rows of every run date (a rerun replaced its date's folder,
    so nothing doubles); the contract's empty table where no date has the file."""
    layout = Layout(data_dir)
    for table in FROM_LINKED:
        files = [layout.linked_date(d) / f"{table}.parquet" for d in dates]
        files = [str(f) for f in files if f.is_file()]
        if not files:
            _create_empty(con, contract, table)
            continue
        create_table(con, "publish/linked_history", {"linked_files": files}, table=table)


def _from_ledger(
    con: duckdb.DuckDBPyConnection, contract: Contract, data_dir: Path, delivered: list
) -> None:
    """`signals`: every signal ever delivered (a signal id delivered twice, by a rerun of the
    last date, counts once: its latest delivery); `signal_monitoring`: per date, that of the
    latest delivery."""
    for table in FROM_LEDGER:
        files = delivered_files(data_dir, table, delivered)
        if not files:
            _create_empty(con, contract, table)
            continue
        create_table(con, f"publish/{table}", {"ledger_files": [str(f) for f in files]})


def _create_empty(con: duckdb.DuckDBPyConnection, contract: Contract, table: str) -> None:
    """The contract's table with no rows. Its columns and types are the contract's, so this one
    line of DDL is built from it rather than kept in a file that would repeat the contract."""
    columns = ", ".join(
        f'"{p.name}" {p.physicalType}' for p in table_schema(contract, table).properties or []
    )
    con.execute(f"create table {table} ({columns})")


def _runs(
    con: duckdb.DuckDBPyConnection,
    data_dir: Path,
    dates: list,
    contract: Contract,
    delivered: set,
) -> None:
    """One row per run date from its `run.json`; `signals_delivered` from the ledger (what
    happened, not what the run meant to do)."""
    _create_empty(con, contract, "runs")
    for run_date in dates:
        record_path = Layout(data_dir).linked_date(run_date) / "run.json"
        if not record_path.is_file():
            continue
        record = json.loads(record_path.read_text("utf-8"))
        run_script(
            con,
            "publish/runs_insert",
            {
                "unchanged": record.get("datasets_unchanged", []),
                "stale": record.get("datasets_stale", []),
                "left_out": record.get("partners_left_out", []),
                "signals_delivered": run_date in delivered,
                "delivery_note": record.get("delivery_note"),
                "dates_removed": record.get("dates_removed", []),
                "run_date": record["run_date"],
                "started_at": record["started_at"],
                "finished_at": record["finished_at"],
                "accepted": record["datasets_accepted"],
                "rejected": record["datasets_rejected"],
                "claims": record["claims"],
                "persons": record["persons"],
                "partners": record["partners"],
            },
        )


def _rejections(con: duckdb.DuckDBPyConnection, data_dir: Path, contract: Contract) -> None:
    """One row per quarantined delivery, from its `reason.json`."""
    _create_empty(con, contract, "rejections")
    quarantine = Layout(data_dir).quarantine
    for reason_path in sorted(quarantine.glob("*/*/*/reason.json")):
        if reason_path.parent.name.startswith("."):
            continue  # a quarantine left half-way by a killed run; finished at the next start
        reason = json.loads(reason_path.read_text("utf-8"))
        run_script(
            con,
            "publish/rejections_insert",
            {
                "run_date": reason_path.parts[-4],
                "partner": reason["partner"],
                "dataset": reason["dataset"],
                "received": reason["received"],
                "rule": reason["rule"],
                "message": reason["message"],
                "rows": reason["rows"],
                "lines": reason["example_lines"],
                "folder": reason_path.parent.relative_to(quarantine).as_posix(),
            },
        )


def _agg_gemeente_partners(con: duckdb.DuckDBPyConnection, contract: Contract) -> None:
    """Persons per gemeente and bucket of partners for sharing, with row and column totals, so
    secondary suppression protects every withheld cell (`privacy.suppression.suppress_grid`)."""
    _create_empty(con, contract, "agg_gemeente_partners")
    counts = query(con, "publish/gemeente_partner_counts").fetchall()
    by_date: dict = {}
    for run_date, gemeente, bucket, persons in counts:
        by_date.setdefault(run_date, {})[(gemeente, bucket)] = persons
    rows = []
    for run_date, cells in sorted(by_date.items()):
        gemeenten = sorted({gemeente for gemeente, _ in cells})
        values, withheld = suppress_grid(cells, gemeenten, list(PARTNER_BUCKETS))
        for (gemeente, bucket), persons in sorted(values.items()):
            hidden = (gemeente, bucket) in withheld
            rows.append((run_date, gemeente, bucket, None if hidden else persons, hidden))
    if rows:
        frame = pa.Table.from_pylist(
            [
                dict(
                    zip(
                        ("run_date", "gemeente_code", "n_partners", "persons", "suppressed"),
                        row,
                        strict=True,
                    )
                )
                for row in rows
            ]
        )
        con.register("suppressed_cells", frame)
        run_script(con, "publish/agg_gemeente_partners_insert")
        con.unregister("suppressed_cells")


def _agg_signal_monitoring(con: duckdb.DuckDBPyConnection, contract: Contract) -> None:
    """Monitoring counts for sharing: national totals per measure are shown, so each measure
    column is a group for secondary suppression."""
    _create_empty(con, contract, "agg_signal_monitoring")
    measures = [
        p.name
        for p in table_schema(contract, "signal_monitoring").properties
        if p.name not in ("run_date", "gemeente_code")
    ]
    frame = relation(con, "publish/signal_monitoring_by_date").pl()
    rows = []
    for (run_date,), part in frame.group_by("run_date", maintain_order=True):
        values = {
            (g, m): int(v)
            for g, *vs in part.select(["gemeente_code", *measures]).rows()
            for m, v in zip(measures, vs, strict=True)
        }
        gemeenten = sorted({g for g, _ in values})
        for m in measures:
            values[("ALL", m)] = sum(values[(g, m)] for g in gemeenten)
        groups = [(("ALL", m), [(g, m) for g in gemeenten]) for m in measures]
        withheld = suppress(values, groups)
        rows += [
            (run_date, g, m, None if (g, m) in withheld else v, (g, m) in withheld)
            for (g, m), v in sorted(values.items())
        ]
    if rows:
        con.register(
            "monitoring_rows",
            pa.Table.from_pylist(
                [
                    dict(
                        zip(
                            ("run_date", "gemeente_code", "measure", "value", "suppressed"),
                            r,
                            strict=True,
                        )
                    )
                    for r in rows
                ]
            ),
        )
        run_script(con, "publish/agg_signal_monitoring_insert")
        con.unregister("monitoring_rows")


def _agg_partner_pairs(con: duckdb.DuckDBPyConnection) -> None:
    """Pair counts for wide sharing, small cells withheld (no totals are published with the
    pair table, so primary suppression is enough)."""
    create_table(con, "publish/agg_partner_pairs", SUPPRESSION)
