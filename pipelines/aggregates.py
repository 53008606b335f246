"""Aggregates for wide sharing, with small cells suppressed (`privacy.suppression`).

Computed per run date by `pipelines.history` from that date's tables (`persons`,
`signal_monitoring`) in the connection it hands over; each function fills the contract's table
of the same name. Secondary suppression needs totals to protect, so each grid is built with the
totals that are published next to it.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from pipelines.contracts import Contract
from pipelines.sql import query, relation, run_script
from pipelines.stage_contracts import empty_table, table_schema
from privacy.suppression import suppress, suppress_grid

PARTNER_BUCKETS = ("1", "2", "3", "4+")


def _rows_table(names: tuple[str, ...], rows: list[tuple]) -> pa.Table:
    return pa.Table.from_pylist([dict(zip(names, row, strict=True)) for row in rows])


def agg_gemeente_partners(con: duckdb.DuckDBPyConnection, contract: Contract) -> None:
    """Persons per gemeente and bucket of partners for sharing, with row and column totals, so
    secondary suppression protects every withheld cell (`privacy.suppression.suppress_grid`)."""
    empty_table(con, contract, "agg_gemeente_partners")
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
        names = ("run_date", "gemeente_code", "n_partners", "persons", "suppressed")
        con.register("suppressed_cells", _rows_table(names, rows))
        run_script(con, "publish/agg_gemeente_partners_insert")
        con.unregister("suppressed_cells")


def agg_signal_monitoring(con: duckdb.DuckDBPyConnection, contract: Contract) -> None:
    """Monitoring counts for sharing: national totals per measure are shown, so each measure
    column is a group for secondary suppression."""
    empty_table(con, contract, "agg_signal_monitoring")
    measures = [
        p.name
        for p in table_schema(contract, "signal_monitoring").properties
        if p.name not in ("run_date", "gemeente_code")
    ]
    frame = relation(con, "publish/signal_monitoring_by_date").pl()
    rows = []
    for (run_date,), part in frame.group_by("run_date", maintain_order=True):
        # a measure the night did not record (null: delivered before the contract had it) is
        # left out, not shown as 0
        values = {
            (g, m): int(v)
            for g, *vs in part.select(["gemeente_code", *measures]).rows()
            for m, v in zip(measures, vs, strict=True)
            if v is not None
        }
        gemeenten = sorted({g for g, _ in values})
        recorded = [m for m in measures if any((g, m) in values for g in gemeenten)]
        for m in recorded:
            values[("ALL", m)] = sum(values.get((g, m), 0) for g in gemeenten)
        groups = [(("ALL", m), [(g, m) for g in gemeenten if (g, m) in values]) for m in recorded]
        withheld = suppress(values, groups)
        rows += [
            (run_date, g, m, None if (g, m) in withheld else v, (g, m) in withheld)
            for (g, m), v in sorted(values.items())
        ]
    if rows:
        names = ("run_date", "gemeente_code", "measure", "value", "suppressed")
        con.register("monitoring_rows", _rows_table(names, rows))
        run_script(con, "publish/agg_signal_monitoring_insert")
        con.unregister("monitoring_rows")


FUNNEL_KEYS = ("as_of", "gemeente_code", "month")
PARTNER_KEYS = ("as_of", "partner", "month")


def _measures(contract: Contract, table: str, keys: tuple[str, ...]) -> list[str]:
    return [p.name for p in table_schema(contract, table).properties if p.name not in keys]


def agg_signal_funnel(con: duckdb.DuckDBPyConnection, contract: Contract) -> None:
    """The funnel for sharing: per month, the national total of each measure is shown, so each
    measure of a month is a group for secondary suppression (as in agg_signal_monitoring).
    A month's `signals_sent` and `with_identity` are the totals of its nights, which
    agg_signal_monitoring shows one by one: where it withholds a night, the month is withheld
    too (`publish/funnel_forced`), or the night would follow by subtraction."""
    empty_table(con, contract, "agg_signal_funnel")
    forced: dict = {}
    for gemeente, month, measure in query(con, "publish/funnel_forced").fetchall():
        forced.setdefault(month, set()).add((gemeente, measure))
    measures = _measures(contract, "signal_funnel", FUNNEL_KEYS)
    frame = con.table("signal_funnel").pl()
    rows = []
    for (as_of, month), part in frame.group_by("as_of", "month", maintain_order=True):
        values = {
            (g, m): int(v)
            for g, *vs in part.select(["gemeente_code", *measures]).rows()
            for m, v in zip(measures, vs, strict=True)
        }
        gemeenten = sorted({g for g, _ in values if g != "ALL"})
        groups = [(("ALL", m), [(g, m) for g in gemeenten]) for m in measures]
        withheld = suppress(values, groups, forced.get(month, ()))
        rows += [
            (as_of, g, month, m, None if (g, m) in withheld else v, (g, m) in withheld)
            for (g, m), v in sorted(values.items())
        ]
    _insert(con, "agg_signal_funnel", (*FUNNEL_KEYS[:2], "month", "measure"), rows)


def agg_partner_feedback(con: duckdb.DuckDBPyConnection, contract: Contract) -> None:
    """The partners' counts for sharing: every cell of 1 to 9 withheld (there is no total
    shown beside them to recover one from)."""
    empty_table(con, contract, "agg_partner_feedback")
    measures = _measures(contract, "partner_feedback", PARTNER_KEYS)
    rows = []
    for as_of, partner, month, *values in (
        con.table("partner_feedback").select(*PARTNER_KEYS, *measures).fetchall()
    ):
        cells = {(partner, m): int(v) for m, v in zip(measures, values, strict=True)}
        withheld = suppress(cells, [])
        rows += [
            (
                as_of,
                partner,
                month,
                m,
                None if (partner, m) in withheld else v,
                (partner, m) in withheld,
            )
            for (partner, m), v in cells.items()
        ]
    _insert(con, "agg_partner_feedback", ("as_of", "partner", "month", "measure"), rows)


def _insert(
    con: duckdb.DuckDBPyConnection, table: str, keys: tuple[str, ...], rows: list[tuple]
) -> None:
    if not rows:
        return
    con.register("suppressed_rows", _rows_table((*keys, "value", "suppressed"), rows))
    run_script(con, f"publish/{table}_insert")
    con.unregister("suppressed_rows")
