"""The analysts' history: one immutable partition per run date and version, under
`warehouse/history/`, that the snapshot's views read (`pipelines.publish`).

    warehouse/history/<run date>/<version>/     version: the UTC time it was published (sortable)
        persons.added.parquet, .removed.parquet  the per-person tables, change-only (below)
        overlap_counts.parquet, ...             small per-date tables (hard links of linked/)
        signals.parquet, signal_monitoring...   that date's delivered signals (the ledger's latest)
        runs, rejections, agg_*.parquet         built here from that date's records and rows
        <table>.frozen.parquet                  (version 1 only) the date as first published,
                                                written when a later version changed it
        version.json                            written last: sources, base, state, who, when

Why: rebuilding the whole snapshot each night made every night cost more than the one before
(issue 14 measured publish at 1.3 s, 3.0 s, 5.0 s on nights 1-3 at 100,000 persons), and a full
copy of every table per night made the history grow by a copy a night.

Change-only: the tables with a primary key in the contract (persons, claims and the plan
tables; key = primary key without run_date) are kept as a type-2 history, as dbt snapshots keep
it: a date stores the rows that are new or changed since the run date before it (`added`, with
`valid_from`) and the keys that went or changed (`removed`, with `removed_on`); the oldest run
date stores everything (a keyframe). A version of a row holds from its valid_from to the first
removal of its key after it, which the snapshot's views turn back into one row per run date.
`persistence_runs` would change every night for everyone, so it is stored as of valid_from and
counted on by the views (contract: customProperty `history: run_counter`).

A date is published again only when it changed: one of its source files (its `linked/` tables,
its ledger deliveries, its quarantine) was rewritten, or the run date before it is another one
or has other contents (a date run late was put before it; retention removed it). So a night
publishes tonight's date, and after a backfill the dates derived again. Whether a source changed
is read off the file system (size and modification time), so a publish that was killed is
completed by the next one without bookkeeping.

A partition is never changed after its `version.json` is written, and a new version of a date
leaves the old one in place: a reader holding an older snapshot keeps reading the files it
refers to, and analysts can read a date as it was first published (`as_published`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines import contract_sql
from pipelines.contracts import Contract
from pipelines.errors import CriError
from pipelines.faults import kill_point
from pipelines.layout import Layout
from pipelines.ledger import delivered_files
from pipelines.records import EVICTED_RECORD, REASON, RUN_RECORD, read_json, write_record
from pipelines.sql import (
    attach_read_only,
    connect,
    copy_query,
    copy_relation,
    create_table,
    parquet_view,
    query,
    run_script,
)
from pipelines.stage_contracts import (
    add_missing_columns,
    check_tables,
    empty_table,
    table_schema,
    write_tables,
)
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
FROM_LEDGER = ("signals", "signal_monitoring", "signal_partners")
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
ADDED, REMOVED, FROZEN = ".added.parquet", ".removed.parquet", ".frozen.parquet"
# The small-cell threshold lives in privacy.suppression alone; the SQL gets it bound, and the
# contract's rules may use it as `$small_cell`.
SUPPRESSION = {"small_cell": SMALL_CELL}


def change_only(contract: Contract) -> dict[str, contract_sql.HistoryShape]:
    """The published tables kept change-only, with their shapes (from the contract's keys)."""
    shapes = {}
    for table in FROM_LINKED:
        shape = contract_sql.history_shape(table_schema(contract, table), table)
        if shape is not None:
            shapes[table] = shape
    return shapes


@dataclass(frozen=True)
class Version:
    """One published partition of a run date."""

    run_date: dt.date
    folder: Path
    published_at: dt.datetime
    published_by: dt.date | None
    tables: tuple[str, ...]
    sources: dict[str, list[int]]
    run: bool = False
    base: dict[str, str] | None = None
    state: str | None = None
    content: str | None = None
    changes: dict[str, list[int]] = field(default_factory=dict)
    contract: str | None = None  # e.g. analytics-1.5.0: the columns its files have

    def file(self, table: str) -> Path | None:
        """The partition's Parquet file of a per-date table, or None when it has no rows."""
        return self.folder / f"{table}.parquet" if table in self.tables else None

    def part(self, table: str, suffix: str) -> Path | None:
        """The `added`, `removed` or `frozen` file of a change-only table, if written."""
        path = self.folder / f"{table}{suffix}"
        return path if path.is_file() else None

    @property
    def keyframe(self) -> bool:
        return self.run and self.base is None


def sources(layout: Layout, run_date: dt.date) -> list[Path]:
    """Every file a date's partition is built from (present ones; see `fingerprint`)."""
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


def fingerprint(layout: Layout, run_date: dt.date) -> dict[str, list[int]]:
    """Size and modification time (ns) of each source file, keyed by its path under the data
    directory: a rerun or a refresh writes new files, so any change is a new fingerprint, while
    a copy or restore of the data directory that keeps modification times is not. A file
    evicted from `linked/` after publishing (`pipelines.evict`) counts as it was."""
    evicted = (
        read_json(layout.linked_date(run_date) / EVICTED_RECORD)
        if (layout.linked_date(run_date) / EVICTED_RECORD).is_file()
        else {}
    )
    prints = dict(evicted.get("files", {}))
    for path in sources(layout, run_date):
        status = path.stat()
        key = path.relative_to(layout.data_dir).as_posix()
        prints[key] = [status.st_size, status.st_mtime_ns]
    return dict(sorted(prints.items()))


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
        run=bool(record.get("run")),
        base=record.get("base"),
        state=record.get("state"),
        content=record.get("content"),
        changes=record.get("changes", {}),
        contract=record.get("contract"),
    )


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


class HistoryError(CriError):
    """A date's history cannot be published."""


class Publisher:
    """Publishes the dates of one night, oldest first (each date's changes are stored against
    the run date before it, so that one must be current first)."""

    def __init__(self, layout: Layout, contract: Contract, published_by: dt.date | None) -> None:
        self.layout, self.contract, self.published_by = layout, contract, published_by
        self.shapes = change_only(contract)
        self.published = published_versions(layout.snapshot)
        self.latest: dict[dt.date, Version] = {}
        self.made: list[dt.date] = []

    def publish(self, dates: list[dt.date]) -> dict[dt.date, list[Version]]:
        """Every version of every date, after making each date's latest one current."""
        history, base = {}, None
        for date in dates:
            run = (self.layout.linked_date(date) / RUN_RECORD).is_file()
            history[date] = self._date(date, base if run else None, run)
            self.latest[date] = history[date][-1]
            if run:
                base = {"run_date": date.isoformat(), "state": history[date][-1].state}
        return history

    def tidy(self, expired_before: dt.date) -> None:
        """After the new snapshot is in place: drop the partitions of the dates retention
        removed, and the removals of the oldest date's versions that were stored against such
        a date (they name rows of the removed date, and retention means none of it remains; if
        that date's first publication changed since, it is frozen whole). Read off the disk,
        so a run killed before this point is tidied by the next. A reader still holding an
        older snapshot loses the removed dates (docs/analysts.md)."""
        dates = self.layout.dates(self.layout.history)
        for date in dates:
            if date < expired_before:
                shutil.rmtree(self.layout.history_date(date), ignore_errors=True)
        oldest = [d for d in dates if d >= expired_before][:1]
        for version in versions(self.layout, oldest[0])[:-1] if oldest else []:
            base = version.base["run_date"] if version.base else None
            if base is not None and dt.date.fromisoformat(base) < expired_before:
                for path in version.folder.glob(f"*{REMOVED}"):
                    path.unlink()

    def _date(self, date: dt.date, base: dict[str, str] | None, run: bool) -> list[Version]:
        known = versions(self.layout, date)
        prints = fingerprint(self.layout, date)
        latest = known[-1] if known else None
        current = (
            latest is not None
            and latest.sources == prints
            and latest.base == base
            and latest.run == run
        )
        kept = []
        for version in known:
            if (
                (version is latest and current)
                or self.published is None
                or _key(version) in self.published
            ):
                kept.append(version)
            else:
                # built by a publish killed before its snapshot was swapped in: nobody saw it
                shutil.rmtree(version.folder, ignore_errors=True)
        if current:
            return kept
        previous = kept[-1] if kept else None
        new = self._build(date, prints, base, run, previous, kept[0] if kept else None)
        self.made.append(date)
        return [*kept, new]

    # ------------------------------------------------------------ one new version

    def _build(
        self,
        date: dt.date,
        prints: dict[str, list[int]],
        base: dict[str, str] | None,
        run: bool,
        previous: Version | None,
        first: Version | None,
    ) -> Version:
        """Write a new version folder under a temporary name, `version.json` last, rename.
        Before the rename, the date's first publication is frozen if this version changes
        what the date reads (so a kill in between repeats the freeze, never skips it)."""
        now = dt.datetime.now(dt.UTC)
        if previous is not None and now <= previous.published_at:  # the clock stepped back
            now = previous.published_at + dt.timedelta(microseconds=1)
        final = self.layout.history_date(date) / f"{now:%Y%m%dT%H%M%S%fZ}"
        work = final.with_name(BUILDING + final.name)
        for leftover in final.parent.glob(BUILDING + "*"):
            shutil.rmtree(leftover, ignore_errors=True)  # a publish killed half-way
        work.mkdir(parents=True)
        tables = self._link_small_tables(date, work)
        state, content, changes = None, None, {}
        with connect() as con:
            if run:
                state, content, changes = self._store_changes(con, date, base, previous, work)
            else:
                empty_table(con, self.contract, "persons")
            _load(con, self.layout, date, self.contract, work)
            tables += _built_tables(con, self.contract, work)
        record = {
            "run_date": date.isoformat(),
            "published_at": now.isoformat(),
            "published_by": self.published_by.isoformat() if self.published_by else None,
            "contract": f"{self.contract.name}-{self.contract.version}",
            "run": run,
            "base": base,
            "state": state,
            "content": content,
            "changes": changes,
            "tables": sorted(tables),
            "sources": prints,
        }
        if run and first is not None and content != first.content:
            self._freeze_first(first)
        write_record(work / VERSION_RECORD, record)
        kill_point("history_version_written")
        os.rename(work, final)
        return _version(final, record)

    def _link_small_tables(self, date: dt.date, work: Path) -> list[str]:
        """Hard links of the date's small linked tables (no second copy on disk; a rerun
        writes new files under linked/, so these stay as they were published)."""
        linked = []
        for table in FROM_LINKED:
            source = self.layout.linked_date(date) / f"{table}.parquet"
            if table not in self.shapes and source.is_file():
                try:
                    os.link(source, work / source.name)
                except OSError:  # another file system, or no hard links there: a copy
                    shutil.copy2(source, work / source.name)
                linked.append(table)
        return linked

    def _store_changes(
        self,
        con: duckdb.DuckDBPyConnection,
        date: dt.date,
        base: dict[str, str] | None,
        previous: Version | None,
        work: Path,
    ) -> tuple[str, str, dict[str, list[int]]]:
        """The change-only tables' added and removed rows against the base date; returns the
        date's state digest (keys and values), its content digest (with the run counters) and
        the number of rows added and removed per table. `persons` is
        left in the connection for the aggregates."""
        states: list[str] = []
        contents: list[str] = []
        changes = {}
        base_date = dt.date.fromisoformat(base["run_date"]) if base else None
        for table, shape in self.shapes.items():
            self._state(con, date, table, previous, "cur_state")
            if base_date is not None:
                self._state(con, base_date, table, self.latest[base_date], "prev_state")
            else:
                con.execute(contract_sql.empty_view_statement(shape, "prev_state"))
            for side in ("cur", "prev"):  # keys, counters and hashes (the rows stay in the file)
                hashed = contract_sql.history_hashed_sql(shape, f"{side}_state", whole=False)
                con.sql(hashed).create(f"{side}_hashed")
            counts = [
                copy_query(
                    con,
                    contract_sql.history_added_sql(shape),
                    work / f"{table}{ADDED}",
                    {"valid_from": date},
                ),
                copy_query(
                    con,
                    contract_sql.history_removed_sql(shape),
                    work / f"{table}{REMOVED}",
                    {"removed_on": date},
                ),
            ]
            for rows, suffix in zip(counts, (ADDED, REMOVED), strict=True):
                if rows == 0:
                    (work / f"{table}{suffix}").unlink()
            changes[table] = counts
            state, content = con.execute(contract_sql.history_digest_sql(shape)).fetchall()[0]
            states.append(state)
            contents.append(content)
            if table == "persons":
                con.table("cur_state").create("persons")  # for the aggregates
            for name in ("cur_hashed", "prev_hashed"):
                con.execute(f"drop table {name}")
            for name in ("cur_state", "prev_state"):
                con.execute(f"drop view {name}")
        scheme = f"duckdb-{duckdb.__version__}:"  # whose `hash` made the digests
        return scheme + "/".join(states), scheme + "/".join(contents), changes

    # ------------------------------------------------------------ a date's contents

    def _state(
        self,
        con: duckdb.DuckDBPyConnection,
        date: dt.date,
        table: str,
        version: Version | None,
        name: str,
    ) -> None:
        """View `name`: the date's rows of a change-only table. From `linked/` while the file
        is there (always for tonight and the nights before it); after eviction from the
        stored versions when they are at hand (a keyframe, or changes against one: the oldest
        dates, which retention moves on), else from the published snapshot (after a backfill:
        its views hold every date as it was published)."""
        path = self.layout.linked_date(date) / f"{table}.parquet"
        if path.is_file():
            parquet_view(con, name, [path])
            return
        relation = self._reconstructed(con, date, table, version)
        if relation is None:
            relation = self._from_snapshot(con, date, table)
        relation.create_view(name)

    def _reconstructed(
        self, con: duckdb.DuckDBPyConnection, date: dt.date, table: str, version: Version | None
    ) -> duckdb.DuckDBPyRelation | None:
        if version is None:
            return None
        chain = [version]
        if not version.keyframe:
            base = versions(self.layout, dt.date.fromisoformat(version.base["run_date"]))
            if not (base and base[-1].keyframe and base[-1].state == version.base["state"]):
                return None
            chain = [base[-1], version]
        body = contract_sql.history_view_sql(
            self.shapes[table],
            [str(p) for v in chain if (p := v.part(table, ADDED))],
            [str(p) for v in chain if (p := v.part(table, REMOVED))],
            [v.run_date for v in chain],
        )
        return con.sql(body).filter(f"run_date = cast('{date.isoformat()}' as date)")

    def _from_snapshot(
        self, con: duckdb.DuckDBPyConnection, date: dt.date, table: str
    ) -> duckdb.DuckDBPyRelation:
        if self.published is None:
            raise HistoryError(
                f"run date {date}: its {table} rows were evicted from {self.layout.linked} and "
                f"no snapshot holds them ({self.layout.snapshot} is missing); restore the data "
                "directory from a backup, or run the dates again from the landing zone"
            )
        attach_read_only(con, self.layout.snapshot, "published")
        return con.table(f"published.main.{table}").filter(
            f"run_date = cast('{date.isoformat()}' as date)"
        )

    def _freeze_first(self, first: Version) -> None:
        """Write a date's contents as first published (from the snapshot, which shows them)
        into version 1, table by table (each atomically; one already there is kept):
        `as_published` reads them."""
        if self.published is None:
            log.warning("%s: no snapshot to keep the first publication from", first.run_date)
            return
        with connect() as con:
            for table in self.shapes:
                target = first.folder / f"{table}{FROZEN}"
                if target.is_file():
                    continue
                temporary = target.with_name("." + target.name)
                copy_relation(self._from_snapshot(con, first.run_date, table), temporary)
                os.replace(temporary, target)


def _load(
    con: duckdb.DuckDBPyConnection,
    layout: Layout,
    run_date: dt.date,
    contract: Contract,
    work: Path,
) -> None:
    """The date's tables that the built ones are computed from (`persons` is there already),
    and its ledger tables."""
    file = work / "overlap_pairs.parquet"
    if file.is_file():
        parquet_view(con, "overlap_pairs", [file])
    else:
        empty_table(con, contract, "overlap_pairs")
    for table in FROM_LEDGER:
        files = delivered_files(layout.data_dir, table, [run_date])
        if files:
            create_table(con, f"publish/{table}", {"ledger_files": [str(f) for f in files]})
            add_missing_columns(con, contract, table)  # delivered under an older contract
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
