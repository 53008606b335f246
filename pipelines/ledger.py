"""The ledger of delivered signals: `ledger/<date>/<delivery id>/`, append-only.

A signal that reached a gemeente is a fact: the cool-down must see it for 180 days, and the
analysts' `signals` table must show it, whatever happens to the run that produced it later. So
every delivery of a night's signal files adds one folder (its signals, their monitoring, and to
whom they went); nothing in the ledger is ever replaced or removed (until retention).

A delivery is recorded only after its files are in the outbox (`pipelines.delivery`), and the
outbox carries the same `delivery.json` the ledger entry will hold. So a run killed between the
two leaves an outbox whose delivery is not in the ledger; `complete_from_outbox` (run by
`pipelines.recovery` at the next start, whatever its date) records it then, from the committed
`linked/<date>/` tables those files were made of.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from pathlib import Path

import pyarrow as pa

from pipelines.layout import DATE_GLOB, Layout
from pipelines.records import DELIVERY_RECORD, read_json, write_record
from pipelines.sql import connect, copy_query, parquet_view, sql_text

log = logging.getLogger(__name__)

LEDGER_TABLES = ("signals", "signal_monitoring", "signal_partners")


def ledger_root(data_dir: Path) -> Path:
    return Layout(data_dir).ledger


def ledger_dates(data_dir: Path) -> list[dt.date]:
    """Dates with at least one recorded delivery of signal files, oldest first."""
    dates = set()
    for record in ledger_root(data_dir).glob(f"{DATE_GLOB}/*/{DELIVERY_RECORD}"):
        try:
            dates.add(dt.date.fromisoformat(record.parent.parent.name))
        except ValueError:
            continue
    return sorted(dates)


def delivered_files(data_dir: Path, table: str, dates: list[dt.date]) -> list[Path]:
    """Every recorded delivery's `<table>.parquet` of `dates`, in delivery order per date."""
    files = []
    for date in dates:
        for folder in sorted(Layout(data_dir).ledger_date(date).glob("[0-9]*")):
            if (folder / DELIVERY_RECORD).is_file() and (folder / f"{table}.parquet").is_file():
                files.append(folder / f"{table}.parquet")
    return files


def new_delivery(run_date: dt.date, **facts: object) -> dict:
    """The record of one delivery: its id (UTC time, sortable) and what was delivered."""
    now = dt.datetime.now(dt.UTC)
    return {
        "delivery_id": f"{now:%Y%m%dT%H%M%S%fZ}",
        "run_date": run_date.isoformat(),
        "delivered_at": now.isoformat(timespec="seconds"),
        **facts,
    }


def record(data_dir: Path, folder: Path, delivery: dict) -> Path:
    """Append `delivery` (with the signals in the committed `folder`) to the ledger. A new
    folder, renamed into place whole; recording the same delivery again changes nothing."""
    target = Layout(data_dir).ledger_date(delivery["run_date"]) / delivery["delivery_id"]
    if (target / DELIVERY_RECORD).is_file():
        return target
    work = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for table in LEDGER_TABLES:
        source = Path(folder) / f"{table}.parquet"
        if table == "signal_monitoring":
            _monitoring_as_delivered(source, work / source.name, delivery)
        elif source.is_file():  # signal_partners: absent from a date committed before 1.6.0
            shutil.copyfile(source, work / source.name)
    write_record(work / DELIVERY_RECORD, delivery)
    os.rename(work, target)
    return target


def _monitoring_as_delivered(source: Path, target: Path, delivery: dict) -> None:
    """The night's monitoring with `with_identity` as delivered: per gemeente, how many of its
    signals carried a sealed identity (the delivery record's `identities`), which only the
    signal files know."""
    counts = [
        {"gemeente_code": code, "with_identity": int(pair[1])}
        for code, pair in (delivery.get("identities") or {}).items()
    ]
    with connect() as con:
        parquet_view(con, "made", [source])
        schema = pa.schema([("gemeente_code", pa.string()), ("with_identity", pa.int64())])
        con.register("identity_counts", pa.Table.from_pylist(counts, schema=schema))
        copy_query(con, sql_text("signals/monitoring_as_delivered"), target)


def complete_from_outbox(data_dir: Path) -> list[Path]:
    """Record the deliveries that reached the outbox but not the ledger (a killed run)."""
    done = []
    layout = Layout(data_dir)
    for outbox_record in sorted(layout.outbox.glob(f"{DATE_GLOB}/{DELIVERY_RECORD}")):
        delivery = read_json(outbox_record)
        if not delivery.get("signals"):
            continue
        target = layout.ledger_date(delivery["run_date"]) / delivery["delivery_id"]
        if (target / DELIVERY_RECORD).is_file():
            continue
        linked = layout.linked_date(delivery["run_date"])
        done.append(record(data_dir, linked, delivery))
        log.warning(
            "recorded in the ledger the delivery of %s that a killed run left out",
            delivery["run_date"],
        )
    return done
