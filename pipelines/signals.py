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
(`privacy.recipients`). Version 2 of the file (rules.md) adds, for each signal, the sealed
identity a partner delivered for that person and gemeente (`identity_key`, `identity_sealed`,
copied unchanged: the hub cannot open it), chosen by `signal_identities.sql` among the identities
datasets the night uses: each partner's of tonight, or else carried forward within the limit like
any dataset (`carry_forward.Selection.files("identities")`).
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from pipelines.contracts import load_contract
from pipelines.dialect import SEPARATOR
from pipelines.errors import CriError
from pipelines.feedback import effects as feedback_effects
from pipelines.fileio import (
    replace_atomically,
    sha256_file,
    temporary_sibling,
    write_json_atomically,
)
from pipelines.layout import Layout
from pipelines.ledger import delivered_files, ledger_dates
from pipelines.link import ANALYTICS_CONTRACT, load_linked_tables
from pipelines.policy import load_policy
from pipelines.records import SIGNALS_MANIFEST
from pipelines.session import Session, connection
from pipelines.sql import (
    connect,
    create_table,
    create_tables,
    parquet_view,
    query,
    relation,
    sql_text,
)
from pipelines.stage_contracts import check_tables, write_tables
from privacy.hashing import create_person_ids
from privacy.keys import KeyMaterial
from privacy.recipients import add_signal_ids, create_person_refs
from privacy.sealing import KEY_SUFFIX, KEYS_FOLDER

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
    "identity_key",
    "identity_sealed",
)
SIGNAL_TABLES = ("signals", "signal_monitoring", "signal_partners")
SIGNAL_COUNTS = (
    "signals",
    "multi_arrears",
    "no_capacity",
    "escalations",
    "excluded_debt_assistance",
    "suppressed_repeats",
    "excluded_after_help",
    "suppressed_no_help_wanted",
    "held_deceased",
    "held_not_resident",
    "rerouted",
)
# what the gemeenten' feedback changed on the run (rules.md section 5)
FEEDBACK_COUNTS = SIGNAL_COUNTS[6:]
FORMAT_VERSION = 2  # rules.md "Signal file, version 2": sealed identity, signed manifest


class SignalError(CriError):
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
    feedback: dict[str, int] = field(default_factory=dict)  # FEEDBACK_COUNTS


def _history(
    con: duckdb.DuckDBPyConnection, data_dir: Path, run_date: dt.date, window_days: int
) -> None:
    """`signal_history`: delivered signals of the dates before `run_date` inside the window."""
    earliest = run_date - dt.timedelta(days=window_days)
    earlier = delivered_files(
        data_dir, "signals", [d for d in ledger_dates(data_dir) if earliest <= d < run_date]
    )
    if earlier:
        history_files = [str(p) for p in earlier]
        create_table(con, "signals/signal_history", {"history_files": history_files})
    else:
        create_table(con, "signals/signal_history_none", table="signal_history")


def _thresholds(con: duckdb.DuckDBPyConnection, signals_policy: dict) -> None:
    """`signal_thresholds(partner, min_arrears_cents, min_days)` from the policy file."""
    rows = [
        {
            "partner": partner,
            "min_arrears_cents": int(t["min_arrears_cents"]),
            "min_days": int(t["min_days"]),
        }
        for partner, t in signals_policy["thresholds"].items()
    ]
    con.register("threshold_rows", pa.Table.from_pylist(rows))
    create_table(con, "signals/signal_thresholds")


def signal_run(
    run_date: dt.date,
    *,
    data_dir: Path,
    hub_key: KeyMaterial,
    folder: Path,
    session: Session | None = None,
) -> SignalSummary:
    """Decide the signals of `run_date` from the tables in the work `folder` (with a `session`:
    from memory where it keeps them) and check them; the files are written only when the night
    is delivered (`pipelines.delivery`)."""
    if not (folder / "plan_proposals.parquet").is_file():
        raise SignalError(f"{folder}: no plans for {run_date}; run link and plans first")
    policy = load_policy()
    signals_policy = policy["signals"]
    feedback_policy = policy["feedback"]
    parameters = {
        "run_date": run_date,
        "cooldown_days": int(signals_policy["cooldown_days"]),
        "escalation_percent": int(signals_policy["escalation_percent"]),
        "rules_version": str(policy["version"]),
        "exclusion_days": int(feedback_policy["exclusion_days"]),
        "feedback_cooldown_days": int(feedback_policy["cooldown_days"]),
    }
    window = max(parameters["cooldown_days"], parameters["feedback_cooldown_days"])
    contract = load_contract(*ANALYTICS_CONTRACT)
    with connection(session) as con:
        load_linked_tables(con, folder, ("persons", "claims", "plan_proposals"), session)
        _thresholds(con, signals_policy)
        _history(con, data_dir, run_date, window)
        feedback_effects(con, data_dir, run_date, policy)
        create_tables(con, "signals", ("signal_decisions", "signals"), parameters)
        add_signal_ids(con, "signals", hub_key.secret, run_date)
        create_tables(con, "signals", ("signal_monitoring", "signal_partners"), parameters)
        check_tables(
            con,
            contract,
            list(SIGNAL_TABLES),
            {
                "cooldown_days": parameters["cooldown_days"],
                "exclusion_days": parameters["exclusion_days"],
            },
        )
        write_tables(con, contract, list(SIGNAL_TABLES), folder)
        counts = dict(
            zip(
                SIGNAL_COUNTS,
                (int(c) for c in query(con, "signals/signal_counts").fetchone()),
                strict=True,
            )
        )
        gemeenten = [row[0] for row in query(con, "signals/signal_gemeenten").fetchall()]
        if session is not None:
            session.release(("persons", "claims", "plan_proposals"))  # the last stage reading them
    summary = SignalSummary(
        run_date,
        counts["signals"],
        {
            "MULTI_ARREARS": counts["multi_arrears"],
            "NO_CAPACITY": counts["no_capacity"],
            "ESCALATION": counts["escalations"],
        },
        counts["excluded_debt_assistance"],
        counts["suppressed_repeats"],
        gemeenten,
        Layout(data_dir).outbox_date(run_date),
        {name: counts[name] for name in FEEDBACK_COUNTS},
    )
    log.info("signals %s: %s for %s gemeenten", run_date, summary.signals, len(gemeenten))
    return summary


def signal_file_rows(
    folder: Path, hub_key: KeyMaterial, identities: list[Path] | None = None
) -> pl.DataFrame:
    """The rows of every gemeente's signal file, from the signals in `folder`: each person
    under the `person_ref` of the gemeente the signal goes to, with the sealed identity of
    `signal_identities.sql` from the staged `identities` files (none: empty columns)."""
    with connect() as con:
        load_linked_tables(con, folder, ("signals",))
        create_person_refs(con, sql_text("signals/signal_recipients"), hub_key.secret)
        if identities:
            parquet_view(con, "staged_identities", identities, filename=True)
            create_person_ids(con, sql_text("signals/identity_pseudonyms"), hub_key.secret)
            create_table(con, "signals/signal_identities")
        else:
            create_table(con, "signals/signal_identities_none", table="signal_identities")
        return relation(con, "signals/signal_file_rows").pl()


def write_signal_files(
    rows: pl.DataFrame, outbox: Path, run_date: dt.date, rules_version: str
) -> list[str]:
    """One signals.csv + manifest per gemeente with signals, into the night's outbox folder
    being built, with the key files its sealed identities refer to (from staging);
    gemeenten without signals get no folder. The files are not flushed one by one: the
    builder of the outbox calls `flush_folder` before it swaps the folder in."""
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
        replace_atomically(temporary, target, flush=False)
        write_json_atomically(
            target.with_name(SIGNALS_MANIFEST),
            {
                "gemeente_code": code,
                "run_date": run_date.isoformat(),
                "file": target.name,
                "row_count": frame.height,
                "sha256": sha256_file(target),
                "rules_version": rules_version,
                "format_version": FORMAT_VERSION,
            },
            flush=False,
        )
        _copy_key_files(frame, code, outbox / code / KEYS_FOLDER)
    return gemeenten


def _copy_key_files(frame: pl.DataFrame, gemeente: str, target: Path) -> None:
    """The partners' key files the gemeente's sealed identities refer to, copied unchanged from
    beside the staged identities file each value came from, as
    `identity-keys/<PARTNER>-<extract_date>.p7m`."""
    used = (
        frame.filter(pl.col("identity_key").is_not_null())
        .select("identity_key", "identity_file")
        .unique()
        .sort("identity_key", "identity_file")
    )
    for name, staged_file in used.iter_rows():
        source = Path(staged_file).parent / KEYS_FOLDER / f"{gemeente}{KEY_SUFFIX}"
        if not source.is_file():
            raise SignalError(
                f"{source}: the key file of accepted identities is missing from staging; "
                "run the night again (its identities dataset is staged again)"
            )
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target / f"{name}{KEY_SUFFIX}")
