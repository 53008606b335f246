"""The run report (`reports/<date>/index.html`) rendered from a small hand-made data directory:
a snapshot with the analytics contract's own tables, the run's monitoring file, receipts and a
quarantined delivery. Stage timings keep the pipeline's order, held-back signals are counted with
their reason, a hostile partner folder name is escaped, rejected and stale datasets are named."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path, PurePosixPath

import duckdb
import pytest

from pipelines.contracts import load_contract
from pipelines.layout import Layout
from pipelines.link import ANALYTICS_CONTRACT
from pipelines.publish import PUBLISHED
from pipelines.records import REASON, write_record
from pipelines.report import render_report, write_report
from pipelines.settings import SQL_DIR
from pipelines.stage_contracts import table_schema

DATE = dt.date(2026, 11, 22)
PIPELINE_ORDER = {"ingest": 1.5, "link": 9.0, "plans": 0.4, "signals": 3.2, "publish": 2.0}
HOSTILE = "<script>"  # a partner folder name: no slash, but markup
MESSAGE = "the manifest says 10 rows, the file has 9"
ROOT = Path(__file__).resolve().parents[1]


def make_snapshot(layout: Layout, *, delivered: bool = True, note: str | None = None) -> None:
    """Every published table (empty, typed as the contract says), plus one run of DATE with
    claims at BD and CJIB, one stale dataset, and no delivered signals."""
    contract = load_contract(*ANALYTICS_CONTRACT)
    layout.snapshot.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(layout.snapshot)) as con:
        for table in PUBLISHED:
            columns = ", ".join(
                f'"{p.name}" {p.physicalType}' for p in table_schema(contract, table).properties
            )
            con.execute(f"create table {table} ({columns})")
        con.execute(
            "insert into runs by name select $d as run_date, 3 as claims, 2 as persons, "
            "['CJIB/claims'] as datasets_stale, [] as datasets_unchanged, "
            "[] as partners_left_out, $delivered as signals_delivered, $note as delivery_note",
            {"d": DATE, "delivered": delivered, "note": note},
        )
        con.execute(
            "insert into claims by name select $d as run_date, unnest(['BD', 'CJIB']) as partner",
            {"d": DATE},
        )
        con.execute("insert into overlap_counts values ($d, 1, 1), ($d, 2, 1)", {"d": DATE})
        con.execute("insert into overlap_pairs values ($d, 'BD', 'CJIB', 1)", {"d": DATE})


def make_monitoring(layout: Layout, *, signals: int, suppressed: int, excluded: int) -> None:
    """The run's own `signal_monitoring.parquet`, as the signals stage writes it."""
    folder = layout.linked_date(DATE)
    folder.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        con.execute(
            "copy (select $d::date as run_date, 'GM0363' as gemeente_code, $s::bigint as signals,"
            " $s::bigint as multi_arrears, 0::bigint as no_capacity, 0::bigint as escalations, "
            "$e::bigint as excluded_debt_assistance, $r::bigint as suppressed_repeats) "
            f"to '{folder / 'signal_monitoring.parquet'}' (format parquet)",
            {"d": DATE, "s": signals, "e": excluded, "r": suppressed},
        )


def make_records(layout: Layout, partner_folder: str = "CJIB", message: str = MESSAGE) -> None:
    """An accepted BD/claims (its receipt) and a rejected delivery from `partner_folder`."""
    write_record(
        layout.staging_date(DATE) / "BD" / "claims.receipt.json",
        {"partner": "BD", "dataset": "claims", "rows": 1234},
    )
    write_record(
        layout.quarantine_date(DATE) / partner_folder / "claims" / REASON,
        {
            "partner": partner_folder,
            "dataset": "claims",
            "rule": "row_count_matches_manifest",
            "message": message,
            "rows": 1,
            "example_lines": [4, 7],
        },
    )


@pytest.fixture()
def layout(tmp_path) -> Layout:
    layout = Layout(tmp_path / "data")
    make_snapshot(layout)
    make_records(layout)
    return layout


def figure(page: str, caption: str) -> str:
    """The HTML of the figure whose caption starts with `caption`."""
    found = re.search(rf"<figure><figcaption>{re.escape(caption)}.*?</figure>", page, re.S)
    assert found, f"no figure {caption!r} in the page"
    return found.group(0)


def section(page: str, heading: str) -> str:
    """The HTML from an `<h2>` heading to the next one."""
    return page.split(f"<h2>{heading}</h2>", 1)[1].split("<h2>", 1)[0]


def test_stage_timings_are_in_pipeline_order_not_by_duration(layout):
    page = render_report(layout.data_dir, DATE, stage_seconds=PIPELINE_ORDER)
    timings = figure(page, "Seconds per stage")
    labels = re.findall(r'text-anchor="end">([^<]+)</text>', timings)
    assert labels == list(PIPELINE_ORDER)
    assert "9 s" in timings and "0.4 s" in timings


def test_held_back_signals_are_counted_with_their_reason_when_none_are_new(layout):
    make_monitoring(layout, signals=0, suppressed=1200, excluded=7)
    page = section(render_report(layout.data_dir, DATE), "Signals to gemeenten")
    assert "No new signals in this run; 1,207 held back" in page
    held = page.split("<h3>Held back</h3>", 1)[1]
    assert re.search(r"cool-down: signalled within the last 180 days.*?<td>1,200</td>", held, re.S)
    assert re.search(r"excluded: in debt assistance</td><td>7</td>", held)
    assert "<p>none</p>" not in page


def test_signals_not_delivered_are_held_back_with_the_delivery_note(tmp_path):
    layout = Layout(tmp_path / "data")
    note = "no signal files delivered: CJIB/claims left out (no accepted data within 7 days)"
    make_snapshot(layout, delivered=False, note=note)
    make_monitoring(layout, signals=40, suppressed=0, excluded=0)
    page = section(render_report(layout.data_dir, DATE), "Signals to gemeenten")
    assert "No new signals in this run; 40 held back" in page
    assert f"not delivered ({note})</td><td>40</td>" in page
    assert "cool-down" not in page  # a reason that held back nobody is not listed


def test_without_a_monitoring_file_no_signals_still_says_none(layout):
    page = section(render_report(layout.data_dir, DATE), "Signals to gemeenten")
    assert page.count("<p>none</p>") == 2 and "Held back" not in page


def test_a_hostile_partner_folder_name_is_escaped(tmp_path):
    layout = Layout(tmp_path / "data")
    make_snapshot(layout)
    make_records(layout, partner_folder=HOSTILE, message='"><img src=x onerror=alert(1)>')
    page = render_report(layout.data_dir, DATE, stage_seconds={HOSTILE: 1.0})
    assert "<script" not in page and "<img" not in page
    deliveries = section(page, "Deliveries")
    assert "<td>&lt;script&gt;</td><td>claims</td><td>rejected</td>" in deliveries
    assert "<td>&#34;&gt;&lt;img src=x onerror=alert(1)&gt;</td>" in deliveries
    assert 'text-anchor="end">&lt;script&gt;</text>' in figure(page, "Seconds per stage")


def test_rejected_and_stale_datasets_are_named(layout):
    path = write_report(layout.data_dir, DATE, stage_seconds=PIPELINE_ORDER)
    assert path == layout.report_file(DATE)
    page = path.read_text("utf-8")
    deliveries = section(page, "Deliveries")
    assert "<td>CJIB</td><td>claims</td><td>rejected</td><td>row_count_matches_manifest" in (
        deliveries
    )
    assert f"{MESSAGE}</td><td>4, 7</td>" in deliveries
    assert "<td>BD</td><td>claims</td><td>accepted</td><td>1,234 rows</td>" in deliveries
    assert "<td>stale (carried forward)</td><td>CJIB/claims</td>" in deliveries
    assert "1 datasets accepted" in page and '<span class="bad">1 rejected</span>' in page
    assert figure(page, "Persons in arrears at both partners").count("<rect") == 4


def test_the_templates_ship_with_the_package():
    """Every template file matches a `[tool.setuptools.package-data]` pattern, so a non-editable
    install carries them too."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["pipelines"]
    package = ROOT / "pipelines"
    templates = [p for p in (package / "templates").rglob("*") if p.is_file()]
    assert templates
    for path in templates:
        relative = path.relative_to(package).as_posix()
        assert any(PurePosixPath(relative).match(p) for p in patterns), relative


def test_report_sql_files_state_their_grain_and_bind_parameters():
    files = sorted((SQL_DIR / "report").glob("*.sql"))
    assert files
    for path in files:
        text = path.read_text("utf-8")
        assert text.startswith("-- grain: "), path.name
        assert "{" not in text and "%s" not in text, path.name  # bound as $name, never pasted
