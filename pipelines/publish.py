"""Publish: the analysts' snapshot `warehouse/analytics.duckdb`, swapped in atomically.

The snapshot holds no rows of its own run dates: it is a small DuckDB file of views over the
immutable per-date partitions of `warehouse/history/` (`pipelines.history`), so a night costs the
same whether the history holds two dates or four hundred. Each night publishes a new partition
only for the dates whose sources changed (tonight's; a later date derived again after a
backfill; a date whose publish failed before), then writes the views afresh:

- `persons`, `claims`, ... (every table of the `analytics` contract): every retained run date,
  each in its latest version;
- `as_published.persons`, ...: every run date as it was first published (time travel);
- `publications`: every version of every date, when and by which run it was published, and
  when a later version superseded it.

The file is written under a temporary name next to the old one (a partition file missing fails
here, not in an analyst's query), its own table is checked against the contract, every table,
view and column is commented from the contract, and then it is renamed over the old one: a
reader that opened the old file keeps reading it (the partitions it names stay in place), a new
reader gets the new one, and a failed publish leaves the previous snapshot.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines import contract_sql
from pipelines.contracts import Contract, load_contract
from pipelines.errors import CriError
from pipelines.faults import kill_point
from pipelines.fileio import replace_atomically
from pipelines.history import (
    ADDED,
    FROZEN,
    PUBLISHED,
    REMOVED,
    SUPPRESSION,
    Publisher,
    Version,
)
from pipelines.layout import Layout
from pipelines.ledger import ledger_dates
from pipelines.link import ANALYTICS_CONTRACT, linked_dates
from pipelines.sql import connect, create_table, relation, run_script
from pipelines.stage_contracts import (
    check_tables,
    comment_statements,
    empty_table,
    table_schema,
)

log = logging.getLogger(__name__)

AS_PUBLISHED = "as_published"
AS_PUBLISHED_PREFACE = (
    "As first published: every run date in its first version (see publications); the view of "
    "the same name in the main schema shows the latest. "
)
# tables of the snapshot itself (not per run date): the publications, and the funnel of what
# became of the signals as of the newest run date (rules.md section 5), rebuilt every publish
OWN_TABLES = (
    "publications",
    "signal_funnel",
    "partner_feedback",
    "agg_signal_funnel",
    "agg_partner_feedback",
)


class PublishError(CriError):
    """There is nothing to publish, or the snapshot breaks its contract."""


def publish(data_dir: Path, run_date: dt.date | None = None) -> Path:
    """Publish what changed since the last publish and swap in a new snapshot; return its path.
    `run_date` is the run that publishes (recorded as each new version's `published_by`)."""
    layout = Layout(Path(data_dir).resolve())
    if not linked_dates(layout.data_dir):
        raise PublishError(f"{layout.linked}: no linked run to publish")
    contract = load_contract(*ANALYTICS_CONTRACT)
    dates = _dates(layout)
    publisher = Publisher(layout, contract, run_date)
    history = publisher.publish(dates)
    new = publisher.made
    final = layout.snapshot
    temporary = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        _write_snapshot(temporary, layout, contract, history)
        kill_point("snapshot_built")
        replace_atomically(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
        temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)
    publisher.tidy(expired_before=dates[0])
    log.info(
        "published %s: %s run date(s), new partitions for %s",
        final,
        len(history),
        ", ".join(map(str, new)) or "none",
    )
    return final


def _dates(layout: Layout) -> list[dt.date]:
    """Every run date with something to publish: a linked run, a delivery, a rejection."""
    found = set(linked_dates(layout.data_dir)) | set(ledger_dates(layout.data_dir))
    found |= set(layout.dates(layout.quarantine))
    return sorted(found)


def _write_snapshot(
    database: Path, layout: Layout, contract: Contract, history: dict[dt.date, list[Version]]
) -> None:
    """The views, the publications table, their checks and comments, in a new database file."""
    with connect(database) as con:
        con.begin()  # one transaction: a view's definition is written once, not per comment
        con.execute(f"create schema {contract_sql.identifier(AS_PUBLISHED)}")
        calendar = [d for d, v in history.items() if v[-1].run]
        for table in PUBLISHED:
            for statement in _view_statements(contract, table, history, calendar):
                con.execute(statement)
        _publications(con, history)
        _feedback_tables(con, layout, contract, history)
        check_tables(con, contract, list(OWN_TABLES), SUPPRESSION)
        for table in OWN_TABLES:
            for statement in comment_statements(contract, table):
                con.execute(statement)
        for table in PUBLISHED:
            for statement in (
                *comment_statements(contract, table, kind="view"),
                *comment_statements(
                    contract,
                    table,
                    kind="view",
                    schema_name=AS_PUBLISHED,
                    preface=AS_PUBLISHED_PREFACE,
                ),
            ):
                con.execute(statement)
        con.commit()
        con.checkpoint()


def _view_statements(
    contract: Contract, table: str, history: dict[dt.date, list[Version]], calendar: list
) -> list[str]:
    """The table's view in the main schema (every date, latest version) and in
    `as_published` (every date, first version)."""
    schema = table_schema(contract, table)
    shape = contract_sql.history_shape(schema, table)
    if shape is None:  # a small table stored whole per date
        latest = [v[-1] for v in history.values()]
        first = [v[0] for v in history.values()]
        return [
            contract_sql.parquet_view_statement(
                schema,
                table,
                _paths([v.file(table) for v in latest]),
                columns_of=_older_columns(contract, table, latest),
            ),
            contract_sql.parquet_view_statement(
                schema,
                table,
                _paths([v.file(table) for v in first]),
                schema_name=AS_PUBLISHED,
                columns_of=_older_columns(contract, table, first),
            ),
        ]
    added = _paths([v[-1].part(table, ADDED) for v in history.values()])
    removed = _paths([v[-1].part(table, REMOVED) for v in history.values()])
    frozen = {d: v[0].part(table, FROZEN) for d, v in history.items() if v[0].part(table, FROZEN)}
    return [
        contract_sql.view_statement(
            table, contract_sql.history_view_sql(shape, added, removed, calendar)
        ),
        contract_sql.view_statement(
            table,
            contract_sql.as_published_sql(shape, _paths(list(frozen.values())), list(frozen)),
            schema_name=AS_PUBLISHED,
        ),
    ]


def _older_columns(
    contract: Contract, table: str, versions: list[Version]
) -> dict[str, frozenset[str]]:
    """For each file of `table` published under an older version of the contract, the columns
    that version had (a table's columns only grow from one version to the next)."""
    found = {}
    for version in versions:
        file = version.file(table)
        if file is None or version.contract in (None, f"{contract.name}-{contract.version}"):
            continue
        name, _, number = version.contract.rpartition("-")
        try:
            older = table_schema(load_contract(name, number), table)
        except CriError:  # the table did not exist then; it has no file either
            continue
        found[str(file)] = frozenset(p.name for p in older.properties or [])
    return found


def _paths(files: list[Path | None]) -> list[str]:
    """The files' paths as the views name them (absolute: the data directory is resolved).
    A view binds to its first file only, so a missing one is looked for here."""
    paths = [f for f in files if f is not None]
    missing = next((f for f in paths if not f.is_file()), None)
    if missing is not None:
        raise PublishError(f"{missing}: a published partition file is missing; nothing swapped in")
    return [str(f) for f in paths]


def _feedback_tables(
    con: duckdb.DuckDBPyConnection,
    layout: Layout,
    contract: Contract,
    history: dict[dt.date, list[Version]],
) -> None:
    """`signal_funnel` and `partner_feedback` as of the newest run date, with their `agg_`
    versions. Computed in a connection of its own, so that no row of the feedback (per signal,
    with its person) is ever written into the analysts' database file, not even as freed
    pages: only the counts come across."""
    from pipelines.aggregates import agg_partner_feedback, agg_signal_funnel
    from pipelines.feedback import standing

    dates = sorted(history)
    parameters = {"as_of": dates[-1], "since": dates[0]}
    latest = [versions[-1] for versions in history.values()]
    with connect() as work:
        for table in ("signal_monitoring", "signal_partners"):
            work.execute(
                contract_sql.parquet_view_statement(
                    table_schema(contract, table),
                    table,
                    _paths([v.file(table) for v in latest]),
                    columns_of=_older_columns(contract, table, latest),
                )
            )
        standing(work, layout.data_dir, dates[-1], own_signals=True)
        tables = {
            table: relation(work, f"publish/{table}", parameters).to_arrow_table()
            for table in ("signal_funnel", "partner_feedback")
        }
    for table, rows in tables.items():
        empty_table(con, contract, table)
        con.register("counted", rows)
        run_script(con, f"publish/{table}_insert")
        con.unregister("counted")
    agg_signal_funnel(con, contract)
    agg_partner_feedback(con, contract)


def _publications(con: duckdb.DuckDBPyConnection, history: dict[dt.date, list[Version]]) -> None:
    """One row per version of every run date: when, by which run, until when."""
    rows = []
    for run_date, versions in history.items():
        for number, version in enumerate(versions, start=1):
            later = versions[number] if number < len(versions) else None
            rows.append(
                {
                    "run_date": run_date,
                    "version": number,
                    "published_at": version.published_at.replace(tzinfo=None),
                    "published_by": version.published_by,
                    "superseded_at": later.published_at.replace(tzinfo=None) if later else None,
                    "tables": list(version.tables),
                    "folder": version.folder.name,
                }
            )
    con.register("publication_rows", pa.Table.from_pylist(rows))
    create_table(con, "publish/publications")
    con.unregister("publication_rows")
