"""Link: all accepted datasets of a run become persons, claims and overlap tables.

The linkage pseudonym is replaced by the hub person id (a keyed hash under the hub's own secret,
`privacy.hashing.create_person_ids`) in the first step, so nothing this stage writes carries a
partner pseudonym. Outputs are Parquet files in `linked/<date>/`, checked against the
`analytics` contract before they are written, and swapped in as a whole folder so a rerun of a
date replaces that date and a crash leaves the previous result.

Persistence (rules.md section 2) needs the previous run: the latest earlier date in `linked/`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.contracts import load_contract
from pipelines.reference import reference_csv
from pipelines.settings import create_stage_tables
from pipelines.stage_contracts import check_tables, write_tables
from privacy.hashing import create_person_ids
from privacy.keys import KeyMaterial

log = logging.getLogger(__name__)

ANALYTICS_CONTRACT = ("analytics", "1.2.0")
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
        if (folder / "persons.parquet").is_file():
            try:
                dates.append(dt.date.fromisoformat(folder.name))
            except ValueError:
                continue
    return sorted(dates)


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def link_run(run_date: dt.date, *, data_dir: Path, hub_key: KeyMaterial) -> LinkResult:
    """Link the staged datasets of `run_date` into `linked/<date>/`."""
    if hub_key.purpose != "hub":
        raise LinkError("link needs the hub key (purpose 'hub'), not a linkage key")
    staging = Path(data_dir) / "staging" / run_date.isoformat()
    claim_files = sorted(staging.glob("*/claims.parquet"))
    if not claim_files:
        raise LinkError(f"{staging}: no accepted claims for {run_date}; nothing to link")
    income_files = sorted(staging.glob("*/income.parquet"))
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
        folder = _write(con, data_dir, run_date)
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


def _write(con: duckdb.DuckDBPyConnection, data_dir: Path, run_date: dt.date) -> Path:
    """Write every table to a temporary folder, then swap it in for the date's folder."""
    root = linked_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / run_date.isoformat()
    temporary = root / f".{run_date.isoformat()}.{os.getpid()}.tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    write_tables(con, load_contract(*ANALYTICS_CONTRACT), list(CHECKED_TABLES), temporary)
    # income is an internal input of the plans stage, not a published table: no contract
    income = ", ".join(f'"{c}"' for c in INCOME_COLUMNS)
    target = str(temporary / "income.parquet").replace("'", "''")
    con.execute(f"copy (select {income} from income) to '{target}' (format parquet)")
    retired = root / f".{run_date.isoformat()}.{os.getpid()}.old"
    if final.exists():
        final.rename(retired)
    temporary.rename(final)
    shutil.rmtree(retired, ignore_errors=True)
    return final
