"""Plans: a joint payment-plan proposal for every person in arrears at two or more partners.

rules.md section 3, exact to the cent, in SQL over the whole population (`sql/plans/`): the total,
the ability to pay from the Toeslagen income and the bijstandsnorm in force, the standard term,
the outcome (standard, personal, refer, excluded), the pro-rata split over the claims with the
largest-remainder rule, and the month-by-month schedule. The term table and percentages come
from the versioned policy file, and every proposal records that version.

Outputs go next to the link outputs in the run's work folder (plan_proposals, plan_lines,
plan_schedule), checked by the `analytics` contract first; the partner-facing export per partner
is written by `write_partner_exports` when the night's outbox is delivered.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.contracts import load_contract
from pipelines.dialect import DUCKDB_COPY_CSV
from pipelines.errors import CriError
from pipelines.fileio import (
    replace_atomically,
    sha256_file,
    temporary_sibling,
    write_json_atomically,
)
from pipelines.link import ANALYTICS_CONTRACT, load_linked_tables
from pipelines.policy import load_policy
from pipelines.records import export_manifest_path
from pipelines.reference import reference_csv
from pipelines.session import Session, connection
from pipelines.sql import connect, copy_to, create_table, create_tables, query
from pipelines.stage_contracts import check_tables, write_tables

log = logging.getLogger(__name__)

PLAN_TABLES = ("plan_proposals", "plan_lines", "plan_schedule")
HANDED_OVER = ("plan_proposals",)  # what signals reads of the plans
OUTCOMES = ("standard", "personal", "refer", "excluded")


class PlanError(CriError):
    """The run has no linked data to plan on."""


@dataclass(frozen=True)
class PlanSummary:
    """What the plans stage decided, for the run summary and the demo."""

    run_date: dt.date
    outcomes: dict[str, int]
    monthly_cents_by_partner: dict[str, int]
    rules_version: str
    note: str | None = None  # e.g. no bijstandsnorm in force on the run date (`norm_gap`)

    @property
    def proposals(self) -> int:
        return sum(self.outcomes.values())

    @property
    def referral_share(self) -> float:
        return self.outcomes.get("refer", 0) / self.proposals if self.proposals else 0.0


def _register_policy(con: duckdb.DuckDBPyConnection, policy: dict) -> None:
    """Tables `policy_terms`, `household_norms` (from the policy file) and `ref_norms` (the
    bijstandsnormen) that the plan SQL joins: the numbers live in the policy, not the SQL."""
    plans = policy["plans"]
    con.register("policy_terms_rows", pa.Table.from_pylist(plans["term_table"]))
    create_table(con, "plans/policy_terms")
    con.register(
        "household_rows",
        pa.Table.from_pylist(
            [{"household_type": k, "household_norm": v} for k, v in plans["household_norm"].items()]
        ),
    )
    create_table(con, "plans/household_norms")
    norms_csv = str(reference_csv("bijstandsnormen.csv"))
    create_table(con, "plans/ref_norms", {"bijstandsnormen_csv": norms_csv})


def build_plan_tables(con: duckdb.DuckDBPyConnection, run_date: dt.date, policy: dict) -> None:
    """Create plan_proposals, plan_lines and plan_schedule from the tables `persons`, `claims`
    and `income` on `con` (the SQL of `sql/plans/`, parameters from the policy)."""
    plans = policy["plans"]
    parameters = {
        "run_date": run_date,
        "rules_version": str(policy["version"]),
        "protected_income_percent": int(plans["protected_income_percent"]),
        "term_otherwise_months": int(plans["term_otherwise_months"]),
        "max_term_months": int(plans["max_term_months"]),
    }
    _register_policy(con, policy)
    create_tables(con, "plans", PLAN_TABLES, parameters)


def plan_run(run_date: dt.date, *, folder: Path, session: Session | None = None) -> PlanSummary:
    """Build and check the plan tables of `run_date` from the link outputs in `folder` (with a
    `session`: from memory where it keeps them, and keep the proposals for signals)."""
    if not (folder / "persons.parquet").is_file():
        raise PlanError(f"{folder}: no linked run for {run_date}; run link first")
    policy = load_policy()
    contract = load_contract(*ANALYTICS_CONTRACT)
    with connection(session) as con:
        load_linked_tables(con, folder, ("persons", "claims", "income"), session)
        build_plan_tables(con, run_date, policy)
        check_tables(con, contract, list(PLAN_TABLES))
        write_tables(con, contract, list(PLAN_TABLES), folder, session=session, keep=HANDED_OVER)
        note = norm_gap(con, run_date)
        outcomes = dict(query(con, "plans/outcome_counts").fetchall())
        by_partner = dict(query(con, "plans/monthly_by_partner").fetchall())
        if session is not None:
            session.release(("income",))  # read by plans alone
    summary = PlanSummary(
        run_date,
        {o: outcomes.get(o, 0) for o in OUTCOMES},
        by_partner,
        str(policy["version"]),
        note,
    )
    log.info("plans %s: %s", run_date, summary.outcomes)
    return summary


def norm_gap(con: duckdb.DuckDBPyConnection, run_date: dt.date) -> str | None:
    """One line when a household norm of the policy has no bijstandsnorm in force on
    `run_date` (a backfill of a date before the reference's rows, or a norm the reference
    lacks): rules.md section 3 then has no norm to protect, so capacity is unknown (null) and
    the plan standard, as without an income row. Said, not silent: the operator can add the
    norms of that period to the reference."""
    missing = query(con, "plans/norms_missing", {"run_date": run_date}).fetchall()
    if not missing:
        return None
    norms = ", ".join(
        f"{norm} (its first: {first})" if first else f"{norm} (none)" for norm, first in missing
    )
    return (
        f"no bijstandsnorm in force on {run_date} for {norms} in "
        "data_contracts/reference/bijstandsnormen.csv: capacity unknown for those households, "
        "so their plans are standard; add the norms of that period to the reference"
    )


def write_partner_exports(folder: Path, outbox: Path, run_date: dt.date) -> list[Path]:
    """Per partner, the plan lines of its own claims, so each agency can book its part:
    `<outbox>/partners/<PARTNER>/plan_lines.csv` + manifest (`outbox` is the night's outbox
    folder being built). Only the partner's own claim_ref and amounts: no person id, nothing
    about other partners' claims."""
    lines_path = folder / "plan_lines.parquet"
    if not lines_path.is_file():
        return []
    root = Path(outbox) / "partners"
    written = []
    with connect() as con:
        create_table(
            con,
            "plans/partner_export",
            {
                "lines_file": str(lines_path),
                "proposals_file": str(folder / "plan_proposals.parquet"),
            },
        )
        partners = [row[0] for row in query(con, "plans/export_partners").fetchall()]
        for partner in partners:
            written.append(_write_partner_export(con, root / partner, partner, run_date))
    return written


def _write_partner_export(
    con: duckdb.DuckDBPyConnection, target_dir: Path, partner: str, run_date: dt.date
) -> Path:
    """One partner's `plan_lines.csv` (the CSV dialect), with its manifest."""
    return write_partner_file(
        con,
        target_dir / "plan_lines.csv",
        ("plans/partner_plan_lines", "plans/partner_export_rows"),
        partner,
        run_date,
        rules_version=str(load_policy()["version"]),
    )


def write_partner_file(
    con: duckdb.DuckDBPyConnection,
    target: Path,
    queries: tuple[str, str],
    partner: str,
    run_date: dt.date,
    **facts: str,
) -> Path:
    """A file for one partner in the CSV dialect from `queries` (its rows, their number; both
    bound to `$partner`), written atomically, then its manifest (written last, so a manifest
    always describes a complete file) with the partner, date, sha256, rows and `facts`."""
    rows_query, count_query = queries
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(target)
    copy_to(con, rows_query, temporary, {"partner": partner}, DUCKDB_COPY_CSV)
    rows = query(con, count_query, {"partner": partner}).fetchone()[0]
    replace_atomically(temporary, target)
    write_json_atomically(
        export_manifest_path(target),
        {
            "partner": partner,
            "run_date": run_date.isoformat(),
            "file": target.name,
            "sha256": sha256_file(target),
            "row_count": rows,
            **facts,
        },
    )
    return target
