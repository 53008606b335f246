"""Signals: early-warning signals to gemeenten (rules.md section 4), and their monitoring.

Per-partner qualification with the thresholds of the policy file, the reasons MULTI_ARREARS,
NO_CAPACITY and ESCALATION, exclusion of persons in debt assistance, and the cool-down against the
ledger of signals actually delivered on earlier dates (`pipelines.ledger`, written only once a
night's files are in the outbox, so a killed run never counts as sent; only the ledger dates
inside the cool-down window are read, so the cost does not grow with the history).
Checked against the `analytics` contract into the run's work folder.

Whether the signals are delivered is decided later, when the night is delivered
(`pipelines.delivery`): `write_signal_files` then writes one file per gemeente,
`<outbox>/<GMxxxx>/signals.csv` (UTF-8 with BOM for Excel, the CSV dialect of interfaces.md) with
`signals.manifest.json`; each person appears under a `person_ref` that only that gemeente gets
(`privacy.recipients`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from pipelines.contracts import load_contract
from pipelines.dialect import SEPARATOR
from pipelines.fileio import (
    replace_atomically,
    sha256_file,
    temporary_sibling,
    write_json_atomically,
)
from pipelines.ledger import delivered_files, ledger_dates
from pipelines.link import ANALYTICS_CONTRACT, load_linked_tables
from pipelines.policy import load_policy
from pipelines.settings import create_stage_tables
from pipelines.stage_contracts import check_tables, write_tables
from privacy.keys import KeyMaterial
from privacy.recipients import add_signal_ids, create_person_refs

log = logging.getLogger(__name__)

SIGNAL_FILE_COLUMNS = (
    "signal_id",
    "signal_date",
    "person_ref",
    "reasons",
    "partners",
    "arrears_cents",
    "outstanding_cents",
    "arrears_since",
    "plan_outcome",
    "plan_monthly_cents",
    "crisis",
)
MONITORING_SQL = """
    select cast($run_date as date) as run_date, gemeente_code,
        count(*) filter (where decision = 'signalled') as signals,
        count(*) filter (where decision = 'signalled' and reasons like '%MULTI_ARREARS%')
            as multi_arrears,
        count(*) filter (where decision = 'signalled' and reasons like '%NO_CAPACITY%')
            as no_capacity,
        count(*) filter (where decision = 'signalled' and reasons like '%ESCALATION%')
            as escalations,
        count(*) filter (where decision = 'excluded') as excluded_debt_assistance,
        count(*) filter (where decision = 'suppressed_repeat') as suppressed_repeats
    from signal_decisions group by gemeente_code
"""
HISTORY_COLUMNS = "run_date, person_id, qualifying_partners, arrears_cents"


class SignalError(Exception):
    """The run has no linked data or plans to signal on."""


@dataclass(frozen=True)
class SignalSummary:
    run_date: dt.date
    signals: int
    by_reason: dict[str, int]
    excluded: int
    suppressed_repeats: int
    gemeenten: list[str]
    outbox: Path


def _history(
    con: duckdb.DuckDBPyConnection, data_dir: Path, run_date: dt.date, window_days: int
) -> None:
    """`signal_history`: delivered signals of the dates before `run_date` inside the window."""
    earliest = run_date - dt.timedelta(days=window_days)
    earlier = delivered_files(
        data_dir, "signals", [d for d in ledger_dates(data_dir) if earliest <= d < run_date]
    )
    if earlier:
        listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in earlier)
        con.execute(
            f"create table signal_history as select {HISTORY_COLUMNS} from read_parquet([{listed}])"
        )
    else:
        con.execute(
            "create table signal_history (run_date date, person_id varchar, "
            "qualifying_partners varchar[], arrears_cents bigint)"
        )


def signal_run(
    run_date: dt.date, *, data_dir: Path, hub_key: KeyMaterial, folder: Path
) -> SignalSummary:
    """Decide the signals of `run_date` from the tables in the work `folder` and check them;
    the files are written only when the night is delivered (`pipelines.delivery`)."""
    if not (folder / "plan_proposals.parquet").is_file():
        raise SignalError(f"{folder}: no plans for {run_date}; run link and plans first")
    policy = load_policy()
    signals_policy = policy["signals"]
    parameters = {
        "run_date": run_date,
        "cooldown_days": int(signals_policy["cooldown_days"]),
        "escalation_percent": int(signals_policy["escalation_percent"]),
        "rules_version": str(policy["version"]),
    }
    contract = load_contract(*ANALYTICS_CONTRACT)
    with duckdb.connect() as con:
        con.execute("set enable_progress_bar = false")
        load_linked_tables(con, folder, ("persons", "claims", "plan_proposals"))
        con.register(
            "threshold_rows",
            pa.Table.from_pylist(
                [
                    {
                        "partner": partner,
                        "min_arrears_cents": int(t["min_arrears_cents"]),
                        "min_days": int(t["min_days"]),
                    }
                    for partner, t in signals_policy["thresholds"].items()
                ]
            ),
        )
        con.execute("create table signal_thresholds as select * from threshold_rows")
        _history(con, data_dir, run_date, parameters["cooldown_days"])
        create_stage_tables(con, "signals", ("signal_decisions", "signals"), parameters)
        add_signal_ids(con, "signals", hub_key.secret, run_date)
        con.execute(f"create table signal_monitoring as {MONITORING_SQL}", {"run_date": run_date})
        check_tables(
            con,
            contract,
            ["signals", "signal_monitoring"],
            {"cooldown_days": parameters["cooldown_days"]},
        )
        write_tables(con, contract, ["signals", "signal_monitoring"], folder)
        counts = con.execute(
            "select coalesce(sum(signals), 0), coalesce(sum(multi_arrears), 0), "
            "coalesce(sum(no_capacity), 0), coalesce(sum(escalations), 0), "
            "coalesce(sum(excluded_debt_assistance), 0), coalesce(sum(suppressed_repeats), 0) "
            "from signal_monitoring"
        ).fetchone()
        gemeenten = [
            row[0]
            for row in con.execute(
                "select distinct gemeente_code from signals order by 1"
            ).fetchall()
        ]
    summary = SignalSummary(
        run_date,
        int(counts[0]),
        {
            "MULTI_ARREARS": int(counts[1]),
            "NO_CAPACITY": int(counts[2]),
            "ESCALATION": int(counts[3]),
        },
        int(counts[4]),
        int(counts[5]),
        gemeenten,
        Path(data_dir) / "outbox" / run_date.isoformat(),
    )
    log.info("signals %s: %s for %s gemeenten", run_date, summary.signals, len(gemeenten))
    return summary


def signal_file_rows(folder: Path, hub_key: KeyMaterial) -> pl.DataFrame:
    """The rows of every gemeente's signal file, from the signals in `folder`: each person
    under the `person_ref` of the gemeente the signal goes to."""
    with duckdb.connect() as con:
        con.execute("set enable_progress_bar = false")
        load_linked_tables(con, folder, ("signals",))
        create_person_refs(con, "select person_id, gemeente_code from signals", hub_key.secret)
        return con.sql(
            "select s.gemeente_code, s.signal_id, s.run_date as signal_date, r.person_ref, "
            "s.reasons, array_to_string(s.partners, '|') as partners, s.arrears_cents, "
            "s.outstanding_cents, s.arrears_since, s.plan_outcome, s.plan_monthly_cents, "
            "s.crisis from signals as s inner join person_refs as r "
            "on s.person_id = r.person_id and s.gemeente_code = r.gemeente_code "
            "order by s.gemeente_code, s.signal_id"
        ).pl()


def write_signal_files(
    rows: pl.DataFrame, outbox: Path, run_date: dt.date, rules_version: str
) -> list[str]:
    """One signals.csv + manifest per gemeente with signals, into the night's outbox folder
    being built; gemeenten without signals get no folder."""
    outbox.mkdir(parents=True, exist_ok=True)
    gemeenten = sorted(rows["gemeente_code"].unique().to_list()) if rows.height else []
    for gemeente, frame in rows.group_by("gemeente_code", maintain_order=True):
        code = gemeente[0]
        target = outbox / code / "signals.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = temporary_sibling(target)
        with temporary.open("wb") as handle:
            handle.write("\ufeff".encode())  # Excel opens UTF-8 only with a BOM
            frame.select(SIGNAL_FILE_COLUMNS).write_csv(
                handle,
                separator=SEPARATOR,
                null_value="",
                date_format="%Y-%m-%d",
                quote_style="necessary",
            )
        replace_atomically(temporary, target)
        write_json_atomically(
            target.with_name("signals.manifest.json"),
            {
                "gemeente_code": code,
                "run_date": run_date.isoformat(),
                "file": target.name,
                "row_count": frame.height,
                "sha256": sha256_file(target),
                "rules_version": rules_version,
            },
        )
    return gemeenten
