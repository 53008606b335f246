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
from pipelines.fileio import replace_atomically, temporary_sibling
from pipelines.reference import reference_csv
from pipelines.settings import create_stage_tables, execute_sql_file
from pipelines.stage_contracts import check_tables, write_tables
from privacy.hashing import create_person_ids
from privacy.keys import KeyMaterial

log = logging.getLogger(__name__)

ANALYTICS_CONTRACT = ("analytics", "1.3.0")
# Tables in build order; each is sql/link/<name>.sql over the ones before it.
LINKED_TABLES = ("claims", "income", "persons", "overlap_counts", "overlap_pairs")
CHECKED_TABLES = ("claims", "persons", "overlap_counts", "overlap_pairs")
INCOME_COLUMNS = ("run_date", "person_id", "household_type", "net_income_cents", "income_month")


class LinkError(Exception):
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
    return Path(data_dir) / "linked"


def load_linked_tables(con: duckdb.DuckDBPyConnection, folder: Path, tables: Iterable[str]) -> None:
    """Create in-memory tables from a run's `linked/<date>/<table>.parquet` files."""
    for table in tables:
        path = str(Path(folder) / f"{table}.parquet").replace("'", "''")
        con.execute(f"create table {table} as select * from read_parquet('{path}')")


def linked_dates(data_dir: Path) -> list[dt.date]:
    """Run dates with a complete linked folder, oldest first."""
    dates = []
    for folder in linked_root(data_dir).glob("????-??-??"):
        if (folder / "run.json").is_file():
            try:
                dates.append(dt.date.fromisoformat(folder.name))
            except ValueError:
                continue
    return sorted(dates)


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def link_run(
    run_date: dt.date,
    *,
    data_dir: Path,
    hub_key: KeyMaterial,
    selection: Selection,
    folder: Path,
) -> LinkResult:
    """Link the selected staged datasets of `run_date` into the work `folder`."""
    if hub_key.purpose != "hub":
        raise LinkError("link needs the hub key (purpose 'hub'), not a linkage key")
    claim_files = selection.files("claims")
    if not claim_files:
        raise LinkError(
            f"no accepted claims for {run_date} or the {selection.max_staleness_days} days "
            "before it; nothing to link"
        )
    income_files = selection.files("income")
    previous = [d for d in linked_dates(data_dir) if d < run_date]

    with duckdb.connect() as con:
        con.execute("set enable_progress_bar = false")
        con.execute(
            f"create view staged_claims as select * from read_parquet("
            f"{_sql_list(claim_files)}, union_by_name = true)"
        )
        if income_files:
            con.execute(
                f"create view staged_income as select * from read_parquet("
                f"{_sql_list(income_files)})"
            )
        else:
            con.execute(
                "create view staged_income as select cast(null as varchar) as "
                "person_pseudonym, cast(null as varchar) as household_type, "
                "cast(null as bigint) as net_income_cents, cast(null as date) as "
                "income_month where false"
            )
        create_person_ids(
            con,
            "select person_pseudonym from staged_claims union all "
            "select person_pseudonym from staged_income",
            hub_key.secret,
        )
        if previous:
            prior = linked_root(data_dir) / previous[-1].isoformat() / "persons.parquet"
            con.execute(
                f"create view previous_persons as select person_id, persistence_runs "
                f"from read_parquet({_sql_list([prior])})"
            )
        else:
            con.execute(
                "create view previous_persons as select cast(null as varchar) as "
                "person_id, 0 as persistence_runs where false"
            )
        con.execute(
            "create table ref_partners as select partner from read_csv($path, "
            "header = true, all_varchar = true)",
            {"path": str(reference_csv("partners.csv"))},
        )
        create_stage_tables(con, "link", LINKED_TABLES, {"run_date": run_date})
        # From here on no relation may hold a linkage pseudonym.
        con.execute("drop table person_ids")
        check_tables(con, load_contract(*ANALYTICS_CONTRACT), list(CHECKED_TABLES))
        _write(con, folder)
        claims, persons, multi = con.execute(
            "select (select count(*) from claims), (select count(*) from persons), "
            "(select count(*) from persons where n_partners >= 2)"
        ).fetchone()
        partners = [
            row[0]
            for row in con.execute("select distinct partner from claims order by 1").fetchall()
        ]
    log.info(
        "linked %s: %s claims, %s persons, %s at 2+ partners", run_date, claims, persons, multi
    )
    return LinkResult(run_date, folder, claims, persons, multi, partners)


def _write(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """Write every table into the run's work folder (swapped in whole by the run)."""
    write_tables(con, load_contract(*ANALYTICS_CONTRACT), list(CHECKED_TABLES), folder)
    # income is an internal input of the plans stage, not a published table: no contract
    income = ", ".join(f'"{c}"' for c in INCOME_COLUMNS)
    target = str(Path(folder) / "income.parquet").replace("'", "''")
    con.execute(f"copy (select {income} from income) to '{target}' (format parquet)")


def refresh_persistence(data_dir: Path, run_date: dt.date) -> bool:
    """Recompute `persistence_runs` of a committed date from the run before it (after an
    older date was run or rerun); rewrite `persons.parquet` only when a value changed.
    Returns whether anything changed, so the caller can stop walking forward."""
    root = linked_root(data_dir)
    persons_path = root / run_date.isoformat() / "persons.parquet"
    previous = [d for d in linked_dates(data_dir) if d < run_date]
    with duckdb.connect() as con:
        con.execute("set enable_progress_bar = false")
        con.execute(
            "create table persons as select * from read_parquet($p)", {"p": str(persons_path)}
        )
        if previous:
            prior = root / previous[-1].isoformat() / "persons.parquet"
            con.execute(
                "create table previous_persons as select person_id, persistence_runs "
                "from read_parquet($p)",
                {"p": str(prior)},
            )
        else:
            con.execute("create table previous_persons (person_id varchar, persistence_runs int)")
        execute_sql_file(con, "link/persistence_refreshed.sql")
        changed = con.execute(
            "select count(*) from persons as p join persistence_refreshed as r using (person_id) "
            "where p.persistence_runs <> r.persistence_runs"
        ).fetchone()[0]
        if not changed:
            return False
        columns = ", ".join(
            "r.persistence_runs" if name == "persistence_runs" else f'p."{name}"'
            for (name,) in con.execute("select column_name from (describe persons)").fetchall()
        )
        temporary = temporary_sibling(persons_path)
        con.execute(
            f"copy (select {columns} from persons as p join persistence_refreshed as r "
            f"using (person_id)) to '{str(temporary).replace(chr(39), chr(39) * 2)}' "
            "(format parquet)"
        )
    replace_atomically(temporary, persons_path)
    log.info("persistence of %s refreshed: %s persons changed", run_date, changed)
    return True
