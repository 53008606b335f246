"""The analysts' history: one immutable partition per run date and version, under
`warehouse/history/`, that the snapshot's views read (`pipelines.publish`).

    warehouse/history/<run date>/<version>/     version: the UTC time it was published (sortable)
        persons.parquet, claims.parquet, ...    hard links of linked/<date>/ (no second copy)
        signals.parquet, signal_monitoring...   that date's delivered signals (the ledger's latest)
        runs, rejections, agg_*.parquet         built here from that date's records and rows
        version.json                            written last: what it was built from, when, by whom

Why: rebuilding the whole snapshot each night made every night cost more than the one before
(issue 14 measured publish at 1.3 s, 3.0 s, 5.0 s on nights 1-3 at 100,000 persons). A date's
tables are a function of its own sources (its `linked/` folder, its ledger deliveries, its
quarantine), so a date is published again only when one of those files changed: tonight's date,
and a later date derived again after a backfill. Whether a source changed is read off the file
system (inode, size, modification time of each source file; a rerun or a refresh writes new
files), so a publish that was killed or failed is completed by the next one without bookkeeping.

A partition is never changed after its `version.json` is written, and a new version of a date
leaves the old one in place: a reader holding an older snapshot keeps reading the files it
refers to, and analysts can still query a date as it was first published (time travel, the
snapshot's `as_published` schema). Retention removes a date's whole folder.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from pipelines.contracts import Contract
from pipelines.faults import kill_point
from pipelines.layout import Layout
from pipelines.ledger import delivered_files
from pipelines.records import REASON, RUN_RECORD, read_json, write_record
from pipelines.sql import connect, create_table, parquet_view, query, run_script
from pipelines.stage_contracts import check_tables, empty_table, write_tables
from privacy.suppression import SMALL_CELL

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
PUBLISHED = (*FROM_LINKED, *FROM_LEDGER, *BUILT_HERE)
VERSION_RECORD = "version.json"
BUILDING = ".building-"  # a version folder being written; removed by the next publish
# The small-cell threshold lives in privacy.suppression alone; the SQL gets it bound, and the
# contract's rules may use it as `$small_cell`.
SUPPRESSION = {"small_cell": SMALL_CELL}


@dataclass(frozen=True)
class Version:
    """One published partition of a run date."""

    run_date: dt.date
    folder: Path
    published_at: dt.datetime
    published_by: dt.date | None
    tables: tuple[str, ...]
    sources: dict[str, list[int]]

    def file(self, table: str) -> Path | None:
        """The partition's Parquet file of `table`, or None when the date has no such rows."""
        return self.folder / f"{table}.parquet" if table in self.tables else None


def sources(layout: Layout, run_date: dt.date) -> list[Path]:
    """Every file a date's partition is built from."""
    linked = layout.linked_date(run_date)
    found = [linked / f"{table}.parquet" for table in FROM_LINKED] + [linked / RUN_RECORD]
    for table in FROM_LEDGER:
        found += delivered_files(layout.data_dir, table, [run_date])
    quarantine = layout.quarantine_date(run_date)
    if quarantine.is_dir():
        found += [
            p for p in sorted(quarantine.glob(f"*/*/{REASON}")) if not p.parent.name.startswith(".")
        ]
    return [p for p in found if p.is_file()]


def fingerprint(layout: Layout, files: list[Path]) -> dict[str, list[int]]:
    """Size and modification time (ns) of each source file, keyed by its path under the data
    directory: a rerun or a refresh writes new files, so any change is a new fingerprint, while
    a copy or restore of the data directory that keeps modification times is not."""
    prints = {}
    for path in files:
        status = path.stat()
        key = path.relative_to(layout.data_dir).as_posix()
        prints[key] = [status.st_size, status.st_mtime_ns]
    return prints


def versions(layout: Layout, run_date: dt.date) -> list[Version]:
    """The complete versions of a date, oldest first."""
    found = []
    for folder in sorted(layout.history_date(run_date).glob("[0-9]*")):
        record = folder / VERSION_RECORD
        if record.is_file():
            found.append(_version(folder, read_json(record)))
    return found


def _version(folder: Path, record: dict[str, Any]) -> Version:
    by = record.get("published_by")
    return Version(
        run_date=dt.date.fromisoformat(record["run_date"]),
        folder=folder,
        published_at=dt.datetime.fromisoformat(record["published_at"]),
        published_by=dt.date.fromisoformat(by) if by else None,
        tables=tuple(record["tables"]),
        sources=record["sources"],
    )


def publish_date(
    layout: Layout,
    run_date: dt.date,
    contract: Contract,
    published_by: dt.date | None,
    published: set[str] | None,
) -> tuple[list[Version], bool]:
    """Make sure the date's latest version is built from its present sources: a new version
    when any source changed since (or there is none yet). Returns every version of the date,
    oldest first, and whether a new one was made.

    `published`: the version folders the current snapshot names (None: unknown, keep all). A
    version built by a publish that was killed before its snapshot was swapped in was never
    seen by anyone: it is dropped when it is not the one to show now, so that version 1 is
    always what analysts first saw."""
    known = versions(layout, run_date)
    prints = fingerprint(layout, sources(layout, run_date))
    reuse = known[-1] if known and known[-1].sources == prints else None
    kept = []
    for version in known:
        if version is reuse or published is None or _key(version) in published:
            kept.append(version)
        else:
            shutil.rmtree(version.folder, ignore_errors=True)
    if reuse is not None:
        return kept, False
    return [*kept, _build(layout, run_date, contract, prints, published_by)], True


def _key(version: Version) -> str:
    return f"{version.run_date.isoformat()}/{version.folder.name}"


def published_versions(snapshot: Path) -> set[str] | None:
    """`<run date>/<version folder>` of every version the snapshot at `snapshot` names, or
    None when there is no snapshot with a publications table to ask."""
    if not snapshot.is_file():
        return None
    try:
        with duckdb.connect(str(snapshot), read_only=True) as con:
            rows = query(con, "publish/published_versions").fetchall()
    except duckdb.Error:
        return None  # a snapshot of an earlier version: no partitions were published then
    return {f"{run_date.isoformat()}/{folder}" for run_date, folder in rows}


def _build(
    layout: Layout,
    run_date: dt.date,
    contract: Contract,
    prints: dict[str, list[int]],
    published_by: dt.date | None,
) -> Version:
    """Write a new version folder under a temporary name, `version.json` last, then rename."""
    now = dt.datetime.now(dt.UTC)
    final = layout.history_date(run_date) / f"{now:%Y%m%dT%H%M%S%fZ}"
    work = final.with_name(BUILDING + final.name)
    for leftover in final.parent.glob(BUILDING + "*"):
        shutil.rmtree(leftover, ignore_errors=True)  # a publish killed half-way
    work.mkdir(parents=True)
    tables = _link_tables(layout, run_date, work)
    with connect() as con:
        _load(con, layout, run_date, contract, work)
        tables += _built_tables(con, contract, work)
    record = {
        "run_date": run_date.isoformat(),
        "published_at": now.isoformat(),
        "published_by": published_by.isoformat() if published_by else None,
        "contract": f"{contract.name}-{contract.version}",
        "tables": sorted(tables),
        "sources": prints,
    }
    write_record(work / VERSION_RECORD, record)
    kill_point("history_version_written")
    os.rename(work, final)
    return _version(final, record)


def _link_tables(layout: Layout, run_date: dt.date, work: Path) -> list[str]:
    """Hard links of the date's linked tables: the same bytes, no second copy on disk (a rerun
    writes new files under linked/, so these stay as they were published)."""
    linked = []
    for table in FROM_LINKED:
        source = layout.linked_date(run_date) / f"{table}.parquet"
        if source.is_file():
            try:
                os.link(source, work / source.name)
            except OSError:  # another file system, or no hard links there: a copy
                shutil.copy2(source, work / source.name)
            linked.append(table)
    return linked


def _load(
    con: duckdb.DuckDBPyConnection,
    layout: Layout,
    run_date: dt.date,
    contract: Contract,
    work: Path,
) -> None:
    """The date's tables that the built ones are computed from, and its ledger tables."""
    for table in ("persons", "overlap_pairs"):
        file = work / f"{table}.parquet"
        if file.is_file():
            parquet_view(con, table, [file])
        else:
            empty_table(con, contract, table)
    for table in FROM_LEDGER:
        files = delivered_files(layout.data_dir, table, [run_date])
        if files:
            create_table(con, f"publish/{table}", {"ledger_files": [str(f) for f in files]})
        else:
            empty_table(con, contract, table)
    _runs(con, layout, run_date, contract)
    _rejections(con, layout, run_date, contract)


def _built_tables(con: duckdb.DuckDBPyConnection, contract: Contract, work: Path) -> list[str]:
    """Aggregates with small cells suppressed, checked with runs and rejections against the
    contract; every table with rows is written into the version folder."""
    from pipelines.aggregates import agg_gemeente_partners, agg_signal_monitoring

    agg_gemeente_partners(con, contract)
    create_table(con, "publish/agg_partner_pairs", SUPPRESSION)
    agg_signal_monitoring(con, contract)
    # the ledger tables were checked by the signals stage before they were delivered
    check_tables(con, contract, list(BUILT_HERE), SUPPRESSION)
    with_rows = [t for t in (*FROM_LEDGER, *BUILT_HERE) if con.table(t).limit(1).fetchall()]
    write_tables(con, contract, with_rows, work)
    return with_rows


def _runs(
    con: duckdb.DuckDBPyConnection, layout: Layout, run_date: dt.date, contract: Contract
) -> None:
    """The date's row from its `run.json`; `signals_delivered` from the ledger (what happened,
    not what the run meant to do)."""
    empty_table(con, contract, "runs")
    record_path = layout.linked_date(run_date) / RUN_RECORD
    if not record_path.is_file():
        return
    record = read_json(record_path)
    delivered = bool(delivered_files(layout.data_dir, "signals", [run_date]))
    run_script(
        con,
        "publish/runs_insert",
        {
            "unchanged": record.get("datasets_unchanged", []),
            "stale": record.get("datasets_stale", []),
            "left_out": record.get("partners_left_out", []),
            "signals_delivered": delivered,
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


def _rejections(
    con: duckdb.DuckDBPyConnection, layout: Layout, run_date: dt.date, contract: Contract
) -> None:
    """One row per quarantined delivery of the date, from its `reason.json`."""
    empty_table(con, contract, "rejections")
    quarantine = layout.quarantine
    for reason_path in sources(layout, run_date):
        if reason_path.name != REASON:
            continue
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
