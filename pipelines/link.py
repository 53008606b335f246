"""Link: all accepted datasets of a run become persons, claims and overlap tables.

The linkage pseudonym is replaced by the hub person id (a keyed hash under the hub's own secret,
`privacy.hashing.create_person_ids`) in the first step, so nothing this stage writes carries a
partner pseudonym. Which staged datasets go in is the run's `carry_forward.Selection`
(tonight's, or a partner's latest within the staleness limit). Outputs are Parquet files in the
run's work folder, checked against the `analytics` contract before they are written; the run
swaps the whole folder in as `linked/<date>/` once every stage is done (`pipelines.run`), so a
rerun of a date replaces that date and a crash leaves the previous result.

Persistence (rules.md section 2) needs the previous run: the latest earlier date in `linked/`.
A run of an older date refreshes the persistence of the dates after it (`refresh_persistence`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.carry_forward import Selection
from pipelines.contracts import load_contract
from pipelines.errors import CriError
from pipelines.fileio import replace_atomically, temporary_sibling
from pipelines.layout import Layout
from pipelines.reference import reference_csv
from pipelines.session import Session, connection
from pipelines.sql import (
    attach_read_only,
    connect,
    copy_to,
    create_table,
    create_tables,
    parquet_view,
    query,
    run_script,
    sql_text,
)
from pipelines.stage_contracts import check_tables, write_tables
from pipelines.versions import ANALYTICS_CONTRACT
from privacy.hashing import create_person_ids
from privacy.keys import KeyMaterial

log = logging.getLogger(__name__)

# Tables in build order; each is sql/link/<name>.sql over the ones before it.
LINKED_TABLES = ("claims", "income", "persons", "overlap_counts", "overlap_pairs")
CHECKED_TABLES = ("claims", "persons", "overlap_counts", "overlap_pairs")
# what plans and signals read of link's tables (kept in memory in a one-process run)
HANDED_OVER = ("claims", "persons")


class LinkError(CriError):
    """The run has nothing to link, or its inputs are unusable."""


@dataclass(frozen=True)
class LinkResult:
    run_date: dt.date
    folder: Path
    claims: int
    persons: int
    persons_multi: int
    partners: list[str]


def linked_root(data_dir: Path) -> Path:
    """`linked/` of a data directory (kept for the modules that import it)."""
    return Layout(data_dir).linked


def load_linked_tables(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    tables: Iterable[str],
    session: Session | None = None,
) -> None:
    """Create in-memory tables from a run's `linked/<date>/<table>.parquet` files; a table the
    `session` keeps as that very file's content is used as it is (`pipelines.session`)."""
    for table in tables:
        linked_file = Path(folder) / f"{table}.parquet"
        if session is not None and session.holds(table, linked_file):
            continue
        create_table(con, "link/linked_table", {"linked_file": str(linked_file)}, table=table)


def linked_dates(data_dir: Path) -> list[dt.date]:
    """Run dates with a complete linked folder (one with its run.json), oldest first."""
    layout = Layout(data_dir)
    return [
        d for d in layout.dates(layout.linked) if (layout.linked_date(d) / "run.json").is_file()
    ]


def _previous_persons(con: duckdb.DuckDBPyConnection, data_dir: Path, run_date: dt.date) -> None:
    """`previous_persons(person_id, persistence_runs)` of the latest linked date before
    `run_date` (empty without one): persistence counts on from there (rules.md section 2)."""
    previous = [d for d in linked_dates(data_dir) if d < run_date]
    if not previous:
        create_table(con, "link/previous_persons_none", table="previous_persons")
        return
    prior = Layout(data_dir).linked_date(previous[-1]) / "persons.parquet"
    if prior.is_file():
        create_table(con, "link/previous_persons", {"previous_file": str(prior)})
    else:  # evicted after publishing: the snapshot holds it (a backfill reaching back)
        attach_read_only(con, Layout(data_dir).snapshot, "published")
        parameters = {"run_date": previous[-1]}
        create_table(con, "link/previous_persons_published", parameters, table="previous_persons")


def _stage_inputs(con: duckdb.DuckDBPyConnection, selection: Selection) -> None:
    """Views `staged_claims` and `staged_income` over the selected staged files (views: the
    files are read where the SQL needs them, never held twice)."""
    parquet_view(con, "staged_claims", selection.files("claims"), union_by_name=True)
    income_files = selection.files("income")
    if income_files:
        parquet_view(con, "staged_income", income_files)
    else:
        run_script(con, "link/staged_income_none")


def link_run(
    run_date: dt.date,
    *,
    data_dir: Path,
    hub_key: KeyMaterial,
    selection: Selection,
    folder: Path,
    session: Session | None = None,
) -> LinkResult:
    """Link the selected staged datasets of `run_date` into the work `folder` (and, with a
    `session`, keep what plans and signals read in memory for them)."""
    if hub_key.purpose != "hub":
        raise LinkError("link needs the hub key (purpose 'hub'), not a linkage key")
    if not selection.files("claims"):
        raise LinkError(
            f"no accepted claims for {run_date} or the {selection.max_staleness_days} days "
            "before it; nothing to link"
        )
    with connection(session) as con:
        _stage_inputs(con, selection)
        create_person_ids(con, sql_text("link/staged_pseudonyms"), hub_key.secret)
        _previous_persons(con, data_dir, run_date)
        create_table(con, "link/ref_partners", {"partners_csv": str(reference_csv("partners.csv"))})
        create_tables(con, "link", LINKED_TABLES, {"run_date": run_date})
        # From here on no relation may hold a linkage pseudonym.
        con.execute("drop table person_ids")
        check_tables(con, load_contract(*ANALYTICS_CONTRACT), list(CHECKED_TABLES))
        _write(con, folder, session)
        claims, persons, multi = query(con, "link/link_counts").fetchone()
        partners = [row[0] for row in query(con, "link/claim_partners").fetchall()]
    log.info(
        "linked %s: %s claims, %s persons, %s at 2+ partners", run_date, claims, persons, multi
    )
    return LinkResult(run_date, folder, claims, persons, multi, partners)


def _write(con: duckdb.DuckDBPyConnection, folder: Path, session: Session | None) -> None:
    """Write every table into the run's work folder (swapped in whole by the run)."""
    contract = load_contract(*ANALYTICS_CONTRACT)
    tables = list(CHECKED_TABLES)
    write_tables(con, contract, tables, folder, session=session, keep=HANDED_OVER)
    # income is an internal input of the plans stage, not a published table: no contract
    income = Path(folder) / "income.parquet"
    copy_to(con, "link/income_file", income)
    if session is not None:
        create_table(con, "link/income_file", table="income")  # as written, for plans
        columns = [row[0] for row in con.execute("describe income").fetchall()]
        session.keep("income", income, columns)


def refresh_persistence(data_dir: Path, run_date: dt.date) -> bool:
    """Recompute `persistence_runs` of a committed date from the run before it (after an
    older date was run or rerun); rewrite `persons.parquet` only when a value changed.
    Returns whether anything changed, so the caller can stop walking forward."""
    folder = Layout(data_dir).linked_date(run_date)
    persons_path = folder / "persons.parquet"
    with connect() as con:
        if persons_path.is_file():
            load_linked_tables(con, folder, ("persons",))
        else:  # evicted after publishing: as the snapshot holds it
            attach_read_only(con, Layout(data_dir).snapshot, "published")
            parameters = {"run_date": run_date}
            create_table(con, "link/published_persons", parameters, table="persons")
        _previous_persons(con, data_dir, run_date)
        create_table(con, "link/persistence_refreshed")
        changed = query(con, "link/persistence_changed").fetchone()[0]
        if not changed:
            return False
        temporary = temporary_sibling(persons_path)
        copy_to(con, "link/persons_refreshed", temporary)
    replace_atomically(temporary, persons_path)
    log.info("persistence of %s refreshed: %s persons changed", run_date, changed)
    return True
