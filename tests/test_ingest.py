"""Ingest behaviour beyond single rejections: idempotence, redelivery, Parquet, check-delivery."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import duckdb
import polars as pl

from pipelines.ingest import check_delivery, ingest_date
from tests.conftest import NIGHT_PARTNERS
from tests.delivery_edits import edit_lines, manifest, resign, set_field
from tests.helpers import EXTRACT_DATE

DATE = EXTRACT_DATE.isoformat()


def test_a_good_night_is_staged_exactly(night):
    outcomes = ingest_date(EXTRACT_DATE, data_dir=night)
    assert sorted((o.partner, o.dataset, o.status) for o in outcomes) == sorted(
        (p, d, "accepted") for p, d in NIGHT_PARTNERS
    )
    staged = night / "staging" / DATE / "CJIB" / "claims.parquet"
    delivered = pl.read_csv(
        night / "landing" / DATE / "CJIB" / "claims.csv", separator=";", try_parse_dates=True
    )
    frame = pl.read_parquet(staged)
    assert frame.drop("partner", "extract_date").equals(
        delivered.cast(frame.drop("partner", "extract_date").schema)
    )
    assert frame["partner"].unique().to_list() == ["CJIB"]
    receipt = json.loads(staged.with_name("claims.receipt.json").read_text())
    assert (
        receipt["rows"] == frame.height
        and receipt["sha256"] == manifest(night / "landing" / DATE / "CJIB")["sha256"]
    )
    assert (night / "reports" / DATE / "validation" / "CJIB-claims.json").exists()


def test_the_same_delivery_twice_changes_nothing(night):
    ingest_date(EXTRACT_DATE, data_dir=night)
    staged = night / "staging" / DATE / "BD" / "claims.parquet"
    before = (staged.read_bytes(), staged.stat().st_mtime_ns)
    again = ingest_date(EXTRACT_DATE, data_dir=night)
    assert {o.status for o in again} == {"unchanged"}
    assert (staged.read_bytes(), staged.stat().st_mtime_ns) == before
    assert not (night / "quarantine").exists()


def test_a_corrected_redelivery_for_the_same_date_replaces_the_staged_data(night):
    ingest_date(EXTRACT_DATE, data_dir=night)
    folder = night / "landing" / DATE / "CJIB"
    edit_lines(folder, lambda lines: lines[:-1])
    [outcome] = [o for o in ingest_date(EXTRACT_DATE, data_dir=night) if o.partner == "CJIB"]
    assert outcome.status == "accepted"
    assert outcome.rows == manifest(folder)["row_count"]
    assert pl.read_parquet(outcome.staged_path).height == outcome.rows


def test_a_rejected_redelivery_keeps_the_last_good_data(night):
    ingest_date(EXTRACT_DATE, data_dir=night)
    staged = night / "staging" / DATE / "CJIB" / "claims.parquet"
    good = staged.read_bytes()
    set_field(night / "landing" / DATE / "CJIB", 2, "stage", "unknown")
    [outcome] = [o for o in ingest_date(EXTRACT_DATE, data_dir=night) if o.partner == "CJIB"]
    assert outcome.rejected and staged.read_bytes() == good


def test_parquet_delivery_is_accepted(night):
    folder = night / "landing" / DATE / "CJIB"
    frame = pl.read_csv(folder / "claims.csv", separator=";", try_parse_dates=True)
    (folder / "claims.csv").unlink()
    frame.write_parquet(folder / "claims.parquet")
    document = manifest(folder)
    document["file"] = "claims.parquet"
    (folder / "claims.manifest.json").write_text(json.dumps(document))
    resign(folder)
    [outcome] = [o for o in ingest_date(EXTRACT_DATE, data_dir=night) if o.partner == "CJIB"]
    assert outcome.status == "accepted" and outcome.rows == frame.height


def test_leak_guard_sql_matches_python(tmp_path):
    from pipelines.sql import run_script
    from privacy.bsn import looks_like_raw_bsn

    samples = [
        "123456782",
        "1234.56.782",
        "123 456 782",
        "123456783",
        "12345678",
        "",
        "CJIB-123456782",
        "000000000",
        "249566758",
        "2495.667.58 ",
        None,
    ]
    with duckdb.connect() as con:
        run_script(con, "privacy/bsn_macros.sql")
        got = [
            con.execute("select looks_like_raw_bsn($t)", {"t": s}).fetchone()[0] for s in samples
        ]
    assert got == [looks_like_raw_bsn(s) for s in samples]


def test_check_delivery_loads_nothing_and_reports(night):
    date_dir = night / "landing" / DATE
    set_field(date_dir / "CJIB", 3, "debt_assistance", "yes")
    before = sorted(p.relative_to(night) for p in night.rglob("*"))
    outcomes = {(o.partner, o.dataset): o for o in check_delivery(date_dir)}
    assert outcomes[("CJIB", "claims")].rule == "debt_assistance.format"
    assert outcomes[("BD", "claims")].status == "ok"
    assert sorted(p.relative_to(night) for p in night.rglob("*")) == before


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_cli_exit_codes_and_one_line_per_dataset(night):
    ok = cli("check-delivery", night / "landing" / DATE / "BD")
    assert ok.returncode == 0 and "BD claims: passes all checks" in ok.stdout
    set_field(night / "landing" / DATE / "CJIB", 2, "stage", "unknown")
    run = cli("ingest", "--date", DATE, "--data-dir", night)
    assert run.returncode == 3, run.stderr
    lines = [x for x in run.stdout.splitlines() if x.startswith(("✓", "✗"))]
    assert len(lines) == len(NIGHT_PARTNERS)
    assert any("CJIB claims: REJECTED [stage.stage_known]" in x and "lines 3" in x for x in lines)
    assert "Traceback" not in run.stderr
    missing = cli("ingest", "--date", "2020-01-01", "--data-dir", night)
    assert missing.returncode == 1 and "no deliveries" in missing.stderr


def test_parallel_ingest_equals_sequential(night, tmp_path_factory):
    other = tmp_path_factory.mktemp("sequential")
    shutil.copytree(night / "landing", other / "landing")
    set_field(night / "landing" / DATE / "CJIB", 2, "stage", "unknown")
    set_field(other / "landing" / DATE / "CJIB", 2, "stage", "unknown")
    parallel = ingest_date(EXTRACT_DATE, data_dir=night, workers=2)
    sequential = ingest_date(EXTRACT_DATE, data_dir=other, workers=1)
    summary = [(o.partner, o.dataset, o.status, o.rows, o.rule) for o in parallel]
    assert summary == [(o.partner, o.dataset, o.status, o.rows, o.rule) for o in sequential]
    for outcome in parallel:
        if outcome.staged_path:
            twin = other / outcome.staged_path.relative_to(night)
            assert pl.read_parquet(outcome.staged_path).equals(pl.read_parquet(twin))


def test_detail_lines_name_the_file_and_every_broken_rule(night):
    folder = night / "landing" / DATE / "CJIB"
    set_field(folder, 2, "stage", "unknown")
    set_field(folder, 3, "debt_assistance", "yes")
    set_field(folder, 4, "debt_assistance", "no")
    outcomes = {(o.partner, o.dataset): o for o in check_delivery(folder)}
    rejected = outcomes[("CJIB", "claims")]
    head, *rules = rejected.detail_lines()
    assert head == f"{folder / 'claims.csv'}: 2 rules broken"
    assert rules == [
        f"[{v.rule}] {v.message} ({v.rows} row{'s' * (v.rows > 1)}: "
        f"line{'s' * (v.rows > 1)} {', '.join(map(str, v.example_lines))}). Remedy: correct "
        "the rows at the listed lines and deliver the whole dataset again."
        for v in rejected.violations
    ]
    assert [v.rule for v in rejected.violations] == ["debt_assistance.format", "stage.stage_known"]
    assert "1 more rule(s) broken" in rejected.summary()  # the one-line summary is unchanged
    assert check_delivery(night / "landing" / DATE / "BD")[0].detail_lines() == []


def test_detail_lines_show_a_few_lines_and_every_remedy():
    from pipelines.ingest import IngestOutcome, Violation

    outcome = IngestOutcome(
        "CJIB",
        "claims",
        "rejected",
        violations=[
            Violation("missing_column", "missing column(s): stage"),
            Violation("claim_ref.unique", "claim_ref must be unique", 12, list(range(2, 12))),
        ],
        data_file=None,
    )
    assert outcome.detail_lines() == [
        "CJIB/claims: 2 rules broken",
        "[missing_column] missing column(s): stage. Remedy: deliver every column of the "
        "contract, named exactly as in the contract.",
        "[claim_ref.unique] claim_ref must be unique (12 rows: lines 2, 3, 4, 5, 6 and more). "
        "Remedy: correct the rows at the listed lines and deliver the whole dataset again.",
    ]


def test_line_numbers_hold_for_a_file_read_in_parallel_pieces(tmp_path):
    """The parsed rows keep file order, so each row's line (reported to partners) is its place
    in the file, also for a file large enough that DuckDB reads it in parallel pieces: here
    every row carries its own line number as text."""
    from pipelines.contracts import load_contract
    from pipelines.ingest import parse_csv

    contract = load_contract("feedback", "1.0.0")
    path = tmp_path / "big.csv"
    rows = 400_000
    with path.open("w") as handle:
        handle.write(";".join(contract.columns) + "\n")
        for line in range(2, rows + 2):
            handle.write(f"{line};2026-11-01;picked_up;\n")
    assert path.stat().st_size > 8 * 2**20  # several of DuckDB's CSV buffers
    with duckdb.connect() as con:
        con.execute("set threads = 4")
        parsed, violations = parse_csv(con, path, contract)
        assert (parsed, violations) == (rows, [])
        wrong = con.execute(
            "select count(*) from delivery_text where line <> cast(signal_id as bigint)"
        ).fetchall()
        first, last = con.execute("select min(line), max(line) from delivery_text").fetchall()[0]
    assert wrong == [(0,)] and (first, last) == (2, rows + 1)
