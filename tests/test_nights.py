"""Night after night (interfaces.md sections 3-4, version 2), with the real CLI and real files:
quiet days, missing and rejected partners carried forward, stale partners left out, dates run
in any order, older dates that deliver nothing, two runs at once, and SIGKILL at every stage
boundary followed by a rerun that gives exactly what an uninterrupted run gives."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.faults import KILL_ENV, KILL_POINTS
from pipelines.fileio import sha256_file
from tests.helpers import (
    deliver_empty_extracts,
    hub_key_file,
    write_claims_delivery,
    write_income_delivery,
)

pytestmark = pytest.mark.slow

ANALYTIC = {
    "persons": "run_date, person_id",
    "claims": "run_date, partner, claim_ref",
    "overlap_counts": "run_date, n_partners",
    "overlap_pairs": "run_date, partner_a, partner_b",
    "plan_proposals": "run_date, person_id",
    "plan_lines": "run_date, partner, claim_ref",
    "plan_schedule": "all",
}
SINCE = "2026-01-15"


def cli(data_dir: Path, key: Path, *args: object, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *map(str, args), "--data-dir", str(data_dir)]
        + (["--hub-key", str(key)] if args and args[0] == "run" else []),
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CRI_HUB_KEY_FILE": "", **env},
    )


def run(data_dir: Path, key: Path, date: dt.date, **env: str) -> subprocess.CompletedProcess:
    return cli(data_dir, key, "run", "--date", date, "--workers", 1, "--quiet", **env)


def rows(data_dir: Path, sql: str, **params: object) -> list[tuple]:
    with duckdb.connect(str(data_dir / "warehouse" / "analytics.duckdb"), read_only=True) as con:
        return con.execute(sql, params).fetchall()


def analytic_tables(data_dir: Path) -> dict[str, list[tuple]]:
    return {
        name: rows(data_dir, f"select * from {name} order by {order}")
        for name, order in ANALYTIC.items()
    }


def person(data_dir: Path, name: str, date: dt.date) -> tuple | None:
    """(n_partners, partners, persistence_runs) of the person whose BD claim is BD-<name>."""
    found = rows(
        data_dir,
        "select p.n_partners, p.partners, p.persistence_runs from persons as p "
        "join claims as c using (run_date, person_id) where run_date = $d and c.claim_ref = $ref",
        d=date,
        ref=f"BD-{name}",
    )
    return found[0] if found else None


def signalled(data_dir: Path, date: dt.date) -> dict[str, str]:
    """claim_ref of the person's BD claim -> reasons, for the delivered signals of `date`."""
    return dict(
        rows(
            data_dir,
            "select c.claim_ref, s.reasons from signals s join claims c "
            "on c.run_date = s.run_date and c.person_id = s.person_id and c.partner = 'BD' "
            "where s.run_date = $d",
            d=date,
        )
    )


def claim(name: str, partner: str, cents: int, since: str = SINCE) -> dict:
    return {
        "person": name,
        "claim_ref": f"{partner}-{name}",
        "outstanding_cents": cents,
        "imposed_cents": cents,
        "arrears_cents": cents,
        "arrears_since": since,
    }


def copy_delivery(landing: Path, source: dt.date, target: dt.date, partner: str) -> None:
    """The same bytes as `source`'s delivery, under manifests for `target` (a quiet day)."""
    src, dst = landing / source.isoformat() / partner, landing / target.isoformat() / partner
    shutil.copytree(src, dst)
    for manifest in dst.glob("*.manifest.json"):
        document = json.loads(manifest.read_text())
        document["extract_date"] = target.isoformat()
        manifest.write_text(json.dumps(document))


@pytest.fixture(scope="module")
def key(tmp_path_factory) -> Path:
    return hub_key_file(tmp_path_factory.mktemp("key"))


# ------------------------------------------------------------------ nobody in arrears


def test_a_night_with_nobody_in_arrears_is_published_and_the_next_night_goes_on(tmp_path, key):
    """Every partner delivers, but no claim is in arrears (or nothing at all): an honest night,
    published with exit 0 and zero counts, not a broken contract."""
    quiet, busy = dt.date(2026, 3, 2), dt.date(2026, 3, 3)
    landing = tmp_path / "data" / "landing"
    paid_up = {**claim("ann", "BD", 5_000), "arrears_cents": 0, "arrears_since": ""}
    write_claims_delivery(landing, quiet, "BD", [paid_up])
    deliver_empty_extracts(landing, quiet)
    write_claims_delivery(landing, busy, "BD", [claim("ann", "BD", 5_000)])
    write_claims_delivery(landing, busy, "CJIB", [claim("ann", "CJIB", 7_000)])
    deliver_empty_extracts(landing, busy)
    data = tmp_path / "data"

    done = run(data, key, quiet)
    assert done.returncode == 0, done.stdout + done.stderr
    assert rows(data, "select n_partners, persons from overlap_counts order by n_partners") == [
        (n, 0) for n in range(1, 9)
    ]
    assert rows(data, "select count(*), sum(n_partners) from persons") == [(1, 0)]
    assert rows(data, "select count(*) from signals") == [(0,)]

    done = run(data, key, busy)
    assert done.returncode == 0, done.stdout + done.stderr
    assert rows(
        data,
        "select n_partners, persons from overlap_counts where run_date = $d and persons > 0",
        d=busy,
    ) == [(2, 1)]
    assert rows(data, "select run_date, persons from overlap_counts where n_partners = 1") == [
        (quiet, 0),
        (busy, 0),
    ]
    assert run(data, key, quiet).returncode == 0  # a rerun of the quiet date, out of order


def test_a_night_of_empty_deliveries_is_published(tmp_path, key):
    """All eight partners and TSL deliver empty files: nothing to link, still a published night."""
    date = dt.date(2026, 3, 2)
    deliver_empty_extracts(tmp_path / "data" / "landing", date)
    done = run(tmp_path / "data", key, date)
    assert done.returncode == 0, done.stdout + done.stderr
    assert rows(tmp_path / "data", "select count(*), sum(persons) from overlap_counts") == [(8, 0)]
    assert rows(tmp_path / "data", "select count(*) from persons") == [(0,)]


# ------------------------------------------------------------------ quiet day


def test_a_quiet_day_with_the_same_bytes_is_accepted_and_changes_nothing(tmp_path, key):
    data, landing = tmp_path / "data", tmp_path / "data" / "landing"
    d1, d2 = dt.date(2026, 11, 20), dt.date(2026, 11, 21)
    write_claims_delivery(landing, d1, "BD", [claim("X", "BD", 60_000), claim("Y", "BD", 700)])
    write_claims_delivery(landing, d1, "CJIB", [claim("X", "CJIB", 10_000)])
    write_claims_delivery(landing, d1, "RVO", [claim("Y", "RVO", 900)])
    deliver_empty_extracts(landing, d1)
    assert run(data, key, d1).returncode == 0
    # Night 2: every partner delivers the same bytes again (nothing changed at all).
    for partner in ("BD", "TSL", "CJIB", "CAK", "DUO", "RVO", "SVB", "UWV"):
        copy_delivery(landing, d1, d2, partner)
    done = run(data, key, d2)
    assert done.returncode == 0, done.stderr
    assert rows(data, "select count(*) from rejections") == [(0,)]
    [(unchanged,)] = rows(data, "select datasets_unchanged from runs where run_date = $d", d=d2)
    assert "CJIB/claims unchanged_since 2026-11-20" in unchanged and len(unchanged) == 9
    counts = "select n_partners, persons from overlap_counts where run_date = $d order by 1"
    assert rows(data, counts, d=d2) == rows(data, counts, d=d1) != []
    assert person(data, "X", d2) == (2, ["BD", "CJIB"], 2)  # persistence counts on
    assert signalled(data, d1) == {"BD-X": "MULTI_ARREARS"}
    assert signalled(data, d2) == {}  # held back by the cool-down, not re-signalled
    assert (landing / d2.isoformat() / "CJIB" / "claims.csv").is_file()  # nothing moved


# ------------------------------------------------------------------ carry-forward


@pytest.mark.parametrize("how", ["missing", "rejected"])
def test_a_missing_or_rejected_partner_is_carried_forward_and_comes_back_quietly(
    tmp_path, key, how
):
    data, landing = tmp_path / "data", tmp_path / "data" / "landing"
    d1, d2, d3 = dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22)
    for date in (d1, d2, d3):
        write_claims_delivery(landing, date, "BD", [claim("X", "BD", 60_000)])
        if date != d2 or how == "rejected":
            write_claims_delivery(landing, date, "CJIB", [claim("X", "CJIB", 10_000)])
        deliver_empty_extracts(landing, date)
        if date == d2 and how == "missing":
            shutil.rmtree(landing / date.isoformat() / "CJIB")
    if how == "rejected":
        with (landing / d2.isoformat() / "CJIB" / "claims.csv").open("a") as data_file:
            data_file.write("broken;line\n")
    assert run(data, key, d1).returncode == 0
    second = run(data, key, d2)
    assert second.returncode == 3, second.stderr
    assert "stale (carried forward from an earlier extract): CJIB/claims 2026-11-20" in (
        second.stderr
    )
    assert rows(
        data, "select datasets_stale, partners_left_out from runs where run_date = $d", d=d2
    ) == [(["CJIB/claims 2026-11-20"], [])]
    assert person(data, "X", d2) == (2, ["BD", "CJIB"], 2)  # CJIB still in the picture
    assert run(data, key, d3).returncode == 0
    assert person(data, "X", d3) == (2, ["BD", "CJIB"], 3)
    # X was signalled once, on d1; coming back is not a new partner: no ESCALATION, no repeat
    assert signalled(data, d1) == {"BD-X": "MULTI_ARREARS"}
    assert signalled(data, d2) == {} and signalled(data, d3) == {}
    assert rows(data, "select signals_delivered from runs order by run_date") == [(True,)] * 3


def test_a_partner_stale_beyond_the_limit_withholds_the_signal_files(tmp_path, key):
    data, landing = tmp_path / "data", tmp_path / "data" / "landing"
    d1, d9 = dt.date(2026, 11, 10), dt.date(2026, 11, 18)  # 8 days: beyond max_staleness_days 7
    write_claims_delivery(landing, d1, "BD", [claim("X", "BD", 60_000)])
    write_claims_delivery(landing, d1, "CJIB", [claim("X", "CJIB", 10_000)])
    deliver_empty_extracts(landing, d1)
    write_claims_delivery(landing, d9, "BD", [claim("Z", "BD", 60_000)])
    write_claims_delivery(landing, d9, "DUO", [claim("Z", "DUO", 27_000)])
    deliver_empty_extracts(landing, d9)
    shutil.rmtree(landing / d9.isoformat() / "CJIB")
    assert run(data, key, d1).returncode == 0
    done = run(data, key, d9)
    assert done.returncode == 3
    assert "left out (nothing accepted within 7 days): CJIB/claims" in done.stderr
    assert "no signal files delivered" in done.stderr
    assert rows(
        data, "select partners_left_out, signals_delivered from runs where run_date = $d", d=d9
    ) == [(["CJIB/claims"], False)]
    outbox = data / "outbox" / d9.isoformat()
    assert not list(outbox.glob("GM*")) and (outbox / "partners" / "BD").is_dir()
    assert signalled(data, d9) == {}  # Z would qualify, but the picture is partial
    assert person(data, "Z", d9) == (2, ["BD", "DUO"], 1)  # analytics are still published


# ------------------------------------------------------------------ order and reruns


def four_nights(landing: Path) -> list[dt.date]:
    """Four nights with a partner or the income missing on some (carried forward)."""
    d1, d2, d3, d4 = (dt.date(2026, 11, 10) + dt.timedelta(days=i) for i in range(4))
    night = {
        d1: {
            "BD": [("A", 70_000), ("B", 20_000)],
            "CJIB": [("A", 15_000), ("C", 20_000)],
            "TSL": [("B", 20_000)],
        },
        d2: {"BD": [("A", 70_000), ("B", 25_000)], "TSL": [("B", 20_000), ("C", 15_000)]},
        d3: {"BD": [("A", 72_000)], "CJIB": [("A", 15_000), ("B", 11_000), ("C", 20_000)]},
        d4: {
            "BD": [("A", 72_000), ("C", 40_000)],
            "CJIB": [("C", 20_000)],
            "TSL": [("A", 30_000), ("B", 20_000)],
        },
    }
    income = {d1: 150_000, d3: 90_000, d4: 95_000}  # missing on d2: carried forward
    for date, partners in night.items():
        for partner, claims in partners.items():
            write_claims_delivery(landing, date, partner, [claim(n, partner, c) for n, c in claims])
        if date in income:
            write_income_delivery(
                landing, date, [{"person": "A", "net_income_cents": income[date]}]
            )
        deliver_empty_extracts(landing, date)
    # partners missing that night: remove their empty delivery again
    shutil.rmtree(landing / d2.isoformat() / "CJIB")
    (landing / d2.isoformat() / "TSL" / "income.csv").unlink()
    (landing / d2.isoformat() / "TSL" / "income.manifest.json").unlink()
    shutil.rmtree(landing / d3.isoformat() / "TSL")
    return [d1, d2, d3, d4]


def test_dates_in_any_order_give_the_same_tables_and_old_dates_deliver_nothing(tmp_path, key):
    in_order, shuffled = tmp_path / "in_order", tmp_path / "shuffled"
    dates = four_nights(in_order / "landing")
    shutil.copytree(in_order / "landing", shuffled / "landing")
    for date in dates:
        assert run(in_order, key, date).returncode in (0, 3)
    expected = analytic_tables(in_order)
    d1, d2, d3, d4 = dates
    assert rows(
        in_order,
        "select run_date, persistence_runs from persons p join claims c "
        "using (run_date, person_id) where c.claim_ref = 'BD-A' order by 1",
    ) == [
        (d1, 1),
        (d2, 2),
        (d3, 3),
        (d4, 4),
    ]  # A: BD+CJIB, BD+CJIB (carried forward), BD+CJIB, BD+TSL
    for date in (d3, d1, d4):
        assert run(shuffled, key, date).returncode in (0, 3)
    late = run(shuffled, key, d2)  # a late delivery: d3 and d4 are derived again
    assert late.returncode == 3
    assert "later dates derived again" in late.stderr
    assert analytic_tables(shuffled) == expected
    assert run(shuffled, key, d3).returncode == 3  # and a rerun changes nothing
    assert analytic_tables(shuffled) == expected

    # An older date rerun after later ones: tables recomputed, nothing delivered or moved.
    landing_before = sorted(p.relative_to(in_order) for p in (in_order / "landing").rglob("*"))
    outbox_before = {p: p.read_bytes() for p in (in_order / "outbox").rglob("*") if p.is_file()}
    ledger_before = sorted((in_order / "ledger").glob("????-??-??"))
    again = run(in_order, key, d2)
    assert again.returncode == 3
    assert "nothing delivered" in again.stderr
    assert sorted(p.relative_to(in_order) for p in (in_order / "landing").rglob("*")) == (
        landing_before
    )
    assert {p: p.read_bytes() for p in (in_order / "outbox").rglob("*") if p.is_file()} == (
        outbox_before
    )
    assert sorted((in_order / "ledger").glob("????-??-??")) == ledger_before
    assert not (in_order / "quarantine").exists()
    # The last delivered date rerun re-delivers the same signal ids, byte for byte.
    csvs = sorted((in_order / "outbox" / d4.isoformat()).rglob("*.csv"))
    before = {p: p.read_bytes() for p in csvs}
    assert run(in_order, key, d4).returncode == 0
    assert {p: p.read_bytes() for p in csvs} == before


# ------------------------------------------------------------------ two runs at once


def test_two_runs_at_once_one_is_refused_with_a_clear_line(tmp_path, key):
    data, landing = tmp_path / "data", tmp_path / "data" / "landing"
    d1 = dt.date(2026, 11, 20)
    write_claims_delivery(landing, d1, "BD", [claim("X", "BD", 60_000)])
    deliver_empty_extracts(landing, d1)
    command = [
        sys.executable,
        "-m",
        "pipelines.cli",
        "run",
        "--date",
        d1.isoformat(),
        "--data-dir",
        str(data),
        "--hub-key",
        str(key),
        "--workers",
        "1",
        "--quiet",
    ]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = data / ".cri-overlap.lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip()):
        time.sleep(0.05)
    second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    _, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert second.returncode == 1
    [line] = second.stderr.strip().splitlines()
    assert f"is in use by pid {first.pid} (run --date {d1})" in line


# ------------------------------------------------------------------ SIGKILL


def comparable(data_dir: Path) -> dict[str, object]:
    """Everything a user sees of the nights, minus wall-clock times and the random parts of
    CMS encryption: tables, outbox CSVs and manifests, ledger contents."""
    tables = analytic_tables(data_dir)
    tables["signals"] = rows(data_dir, "select * from signals order by signal_id")
    tables["runs"] = rows(
        data_dir, "select * exclude (started_at, finished_at) from runs order by run_date"
    )
    tables["rejections"] = rows(
        data_dir, "select run_date, partner, dataset, rule from rejections order by all"
    )
    # the versions analysts see now, and by which run
    tables["publications"] = rows(
        data_dir,
        "select run_date, published_by, tables from publications "
        "where superseded_at is null order by all",
    )
    outbox = data_dir / "outbox"
    tables["outbox"] = {
        str(p.relative_to(outbox)): p.read_bytes()
        for p in sorted(outbox.rglob("*"))
        # delivery.json records when it was delivered: the one file a rerun changes
        if p.is_file() and p.suffix in (".csv", ".json") and p.name != "delivery.json"
    }
    # the ledger is append-only: a rerun of the last date adds a delivery of the same ids
    tables["ledger"] = sorted(p.name for p in (data_dir / "ledger").glob("????-??-??"))
    return tables


def assert_nothing_half_written(data_dir: Path) -> None:
    """No visible file a reader or a later stage would take as complete but is not."""
    for manifest in (data_dir / "outbox").rglob("*.manifest.json"):
        document = json.loads(manifest.read_text())
        assert sha256_file(manifest.with_name(document["file"])) == document["sha256"]
    for delivery in (data_dir / "ledger").glob("????-??-??/*/delivery.json"):
        # recorded only once its files are in the outbox
        outbox_record = data_dir / "outbox" / delivery.parent.parent.name / "delivery.json"
        assert outbox_record.is_file()
        assert json.loads(outbox_record.read_text())["delivery_id"] >= delivery.parent.name
    for folder in (data_dir / "linked").glob("????-??-??"):
        assert (folder / "run.json").is_file()


@pytest.fixture(scope="module")
def after_night_one(tmp_path_factory, key) -> tuple[Path, list[dt.date]]:
    """A data dir after night 1, with nights 2 and 3 delivered; and a reference dir where
    night 2 ran uninterrupted."""
    root = tmp_path_factory.mktemp("kill")
    data = root / "template"
    landing = data / "landing"
    d1, d2, d3 = dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22)
    write_claims_delivery(landing, d1, "BD", [claim("X", "BD", 60_000)])
    write_claims_delivery(landing, d1, "CJIB", [claim("X", "CJIB", 10_000)])
    deliver_empty_extracts(landing, d1)
    for date in (d2, d3):
        # Z is new on night 2 (a signal), CJIB is missing on night 2 (carried forward)
        write_claims_delivery(
            landing, date, "BD", [claim("X", "BD", 60_000), claim("Z", "BD", 61_000)]
        )
        write_claims_delivery(landing, date, "DUO", [claim("Z", "DUO", 30_000)])
        if date == d3:
            write_claims_delivery(landing, date, "CJIB", [claim("X", "CJIB", 10_000)])
        deliver_empty_extracts(landing, date)
    shutil.rmtree(landing / d2.isoformat() / "CJIB")
    assert run(data, key, d1).returncode == 0
    reference = root / "reference"
    shutil.copytree(data, reference)
    assert run(reference, key, d2).returncode == 3
    return data, [d1, d2, d3], reference


# quarantine points: tests/test_landing_faults.py; derived_a_later_date needs a later date to
# derive (its own test below)
STAGE_POINTS = [
    p for p in KILL_POINTS if not p.startswith("quarantine") and p != "derived_a_later_date"
]


@pytest.mark.parametrize("point", STAGE_POINTS)
def test_sigkill_at_any_point_then_a_rerun_gives_the_uninterrupted_result(
    after_night_one, key, tmp_path, point
):
    template, (d1, d2, _), reference = after_night_one
    data = tmp_path / "data"
    shutil.copytree(template, data)
    snapshot = data / "warehouse" / "analytics.duckdb"
    killed = run(data, key, d2, **{KILL_ENV: point})
    assert killed.returncode == -9, killed.stderr
    # the last good snapshot and outbox stay readable, nothing half-written is visible
    assert rows(data, "select count(*) from runs where run_date = $d", d=d1) == [(1,)]
    assert_nothing_half_written(data)
    assert (data / "outbox" / d1.isoformat()).is_dir() and snapshot.is_file()
    again = run(data, key, d2)
    assert again.returncode == 3, again.stderr
    assert comparable(data) == comparable(reference)
    leftovers = [p for p in data.rglob(".*.tmp") if "landing" not in p.parts]
    leftovers += list((data / "warehouse" / "history").glob("*/.*"))
    # no version that a killed run built but never published is left behind
    listed = {(str(d), f) for d, f in rows(data, "select run_date, folder from publications")}
    on_disk = {(p.parent.name, p.name) for p in (data / "warehouse" / "history").glob("*/2*")}
    assert on_disk == listed
    work = [
        p
        for root in ("staging", "linked", "outbox", "ledger")
        for p in (data / root / ".work").glob("*")
    ]
    assert leftovers == [] and work == []


def test_a_kill_after_the_signals_stage_does_not_count_them_as_sent(after_night_one, key, tmp_path):
    template, (_, d2, d3), _ = after_night_one
    data = tmp_path / "data"
    shutil.copytree(template, data)
    assert run(data, key, d2, **{KILL_ENV: "after_signals"}).returncode == -9
    # the operator does not rerun night 2; night 3 runs as usual
    assert run(data, key, d3).returncode == 0
    assert signalled(data, d2) == {}  # never delivered
    assert signalled(data, d3) == {"BD-Z": "MULTI_ARREARS"}  # not held back as a repeat


def test_a_kill_between_outbox_and_ledger_is_recorded_by_the_next_night(
    after_night_one, key, tmp_path
):
    """The files reached the outbox, so the gemeente may have them: the next run (of any date)
    records the delivery, and the cool-down holds the person back."""
    template, (_, d2, d3), _ = after_night_one
    data = tmp_path / "data"
    shutil.copytree(template, data)
    assert run(data, key, d2, **{KILL_ENV: "after_outbox"}).returncode == -9
    assert (data / "outbox" / d2.isoformat() / "GM0363" / "signals.csv").is_file()
    assert run(data, key, d3).returncode == 0
    assert signalled(data, d2) == {"BD-Z": "MULTI_ARREARS"}  # recorded after all
    assert signalled(data, d3) == {}  # Z held back by the cool-down, not signalled twice
    assert rows(data, "select signals_delivered from runs where run_date = $d", d=d2) == [(True,)]


def test_a_changed_rerun_of_the_last_date_never_erases_a_delivered_signal(tmp_path, key):
    data, landing = tmp_path / "data", tmp_path / "data" / "landing"
    d1, d2 = dt.date(2026, 11, 20), dt.date(2026, 11, 21)
    for date in (d1, d2):
        write_claims_delivery(
            landing, date, "BD", [claim("X", "BD", 60_000), claim("Y", "BD", 60_000)]
        )
        write_claims_delivery(
            landing, date, "DUO", [claim("X", "DUO", 27_000), claim("Y", "DUO", 27_000)]
        )
        deliver_empty_extracts(landing, date)
    assert run(data, key, d1).returncode == 0
    assert signalled(data, d1) == {"BD-X": "MULTI_ARREARS", "BD-Y": "MULTI_ARREARS"}
    # DUO corrects its d1 extract (Y's claim was wrong) and d1 is run again
    shutil.rmtree(landing / d1.isoformat() / "DUO")
    write_claims_delivery(landing, d1, "DUO", [claim("X", "DUO", 27_000)])
    assert run(data, key, d1).returncode == 0
    csv = (data / "outbox" / d1.isoformat() / "GM0363" / "signals.csv").read_text()
    assert csv.count("SIG-") == 1  # today's file holds X only
    # but Y's signal was delivered: it stays a fact, for analysts and for the cool-down
    assert signalled(data, d1) == {"BD-X": "MULTI_ARREARS", "BD-Y": "MULTI_ARREARS"}
    assert len(list((data / "ledger" / d1.isoformat()).glob("2*"))) == 2  # appended
    assert run(data, key, d2).returncode == 0
    assert signalled(data, d2) == {}  # Y back at BD+DUO: still inside its cool-down


def test_a_kill_while_deriving_later_dates_is_finished_by_the_next_run(tmp_path, key):
    reference, data = tmp_path / "reference", tmp_path / "data"
    dates = four_nights(data / "landing")
    for date in dates:
        assert run(data, key, date).returncode in (0, 3)
    # a corrected d1 (A had no CJIB claim): persistence of A changes on every later date
    d1 = dates[0]
    shutil.rmtree(data / "landing" / d1.isoformat() / "CJIB")
    write_claims_delivery(data / "landing", d1, "CJIB", [claim("C", "CJIB", 20_000)])
    shutil.copytree(data / "landing", reference / "landing")
    for date in dates:
        assert run(reference, key, date).returncode in (0, 3)
    killed = run(data, key, d1, **{KILL_ENV: "derived_a_later_date"})
    assert killed.returncode == -9
    # the operator runs the newest date again, not d1: the walk is finished first
    assert run(data, key, dates[-1]).returncode in (0, 3)
    assert analytic_tables(data) == analytic_tables(reference)
