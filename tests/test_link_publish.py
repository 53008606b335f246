"""Link, overlap and publish on hand-worked deliveries where every count is known in advance."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.publish import OWN_TABLES, PUBLISHED, publish
from pipelines.run import run_night
from privacy.hashing import hub_person_id
from privacy.keys import load_key_file
from tests.helpers import deliver_empty_extracts, hub_key_file, pseudonym_of, write_claims_delivery

D1, D2, D3 = dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22)
NO_ARREARS = {"arrears_cents": 0, "arrears_since": "", "stage": "payment_plan"}


def night_one(landing: Path, date: dt.date) -> None:
    """P1: BD+TSL+CJIB. P2: BD+TSL. P3: BD (CJIB claim without arrears). P4: CJIB.
    P5: only a BD claim without arrears. P6: TSL+CJIB, one claim in GM0599 and one in GM0363."""
    write_claims_delivery(
        landing,
        date,
        "BD",
        [{"person": "P1"}, {"person": "P2"}, {"person": "P3"}, {"person": "P5", **NO_ARREARS}],
    )
    write_claims_delivery(
        landing,
        date,
        "TSL",
        [{"person": "P1"}, {"person": "P2"}, {"person": "P6", "gemeente_code": "GM0599"}],
    )
    write_claims_delivery(
        landing,
        date,
        "CJIB",
        [
            {"person": "P1"},
            {"person": "P3", **NO_ARREARS},
            {"person": "P4"},
            {"person": "P6", "gemeente_code": "GM0363"},
        ],
    )


@pytest.fixture()
def hub(tmp_path):
    return tmp_path / "data", hub_key_file(tmp_path)


def snapshot(data_dir: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(data_dir / "warehouse" / "analytics.duckdb"), read_only=True)


def test_counts_pairs_and_persons_are_exact(hub):
    data_dir, key = hub
    night_one(data_dir / "landing", D1)
    deliver_empty_extracts(data_dir / "landing", D1)
    summary = run_night(D1, data_dir=data_dir, hub_key_path=key)
    assert summary.exit_code == 0
    with snapshot(data_dir) as con:
        counts = dict(con.execute("select n_partners, persons from overlap_counts").fetchall())
        assert counts == {1: 2, 2: 2, 3: 1, 4: 0, 5: 0, 6: 0, 7: 0, 8: 0}
        pairs = {
            (a, b): n
            for a, b, n in con.execute(
                "select partner_a, partner_b, persons from overlap_pairs"
            ).fetchall()
        }
        assert len(pairs) == 28
        assert {k: v for k, v in pairs.items() if v} == {
            ("BD", "TSL"): 2,
            ("BD", "CJIB"): 1,
            ("CJIB", "TSL"): 2,
        }
        persons = {
            row[0]: row[1:]
            for row in con.execute(
                "select person_id, n_partners, partners, gemeente_code, arrears_cents, "
                "outstanding_cents from persons"
            ).fetchall()
        }
        assert len(persons) == 6
        by_count = sorted((v[0], v[1]) for v in persons.values())
        assert by_count == [
            (0, []),
            (1, ["BD"]),
            (1, ["CJIB"]),
            (2, ["BD", "TSL"]),
            (2, ["CJIB", "TSL"]),
            (3, ["BD", "CJIB", "TSL"]),
        ]
        p6 = next(v for v in persons.values() if v[1] == ["CJIB", "TSL"])
        assert p6[2] == "GM0363"  # one claim each in GM0363 and GM0599: the smaller code
        p3 = next(v for v in persons.values() if v[1] == ["BD"])
        assert p3[3:] == (50000, 100000)  # the CJIB claim counts as outstanding, not arrears
        assert con.execute("select count(*) from claims").fetchone()[0] == 11


def test_persistence_over_three_dates_and_a_rerun(hub):
    data_dir, key = hub
    landing = data_dir / "landing"
    night_one(landing, D1)
    deliver_empty_extracts(data_dir / "landing", D1)
    run_night(D1, data_dir=data_dir, hub_key_path=key)
    # D2: P2 only at BD now; P1 and P6 stay at 2+ partners.
    write_claims_delivery(landing, D2, "BD", [{"person": "P1"}, {"person": "P2"}])
    write_claims_delivery(landing, D2, "TSL", [{"person": "P1"}, {"person": "P6"}])
    write_claims_delivery(landing, D2, "CJIB", [{"person": "P6"}])
    deliver_empty_extracts(data_dir / "landing", D2)
    run_night(D2, data_dir=data_dir, hub_key_path=key)
    # D3: P1, P2 and P6 all at 2+ partners.
    write_claims_delivery(landing, D3, "BD", [{"person": "P1"}, {"person": "P2"}])
    write_claims_delivery(
        landing, D3, "TSL", [{"person": "P1"}, {"person": "P2"}, {"person": "P6"}]
    )
    write_claims_delivery(landing, D3, "CJIB", [{"person": "P6"}])
    deliver_empty_extracts(data_dir / "landing", D3)
    run_night(D3, data_dir=data_dir, hub_key_path=key)

    secret = load_key_file(key, "hub").secret
    ids = {name: hub_person_id(secret, pseudonym_of(name)) for name in ("P1", "P2", "P6")}

    def persistence() -> dict:
        with snapshot(data_dir) as con:
            found = dict(
                con.execute(
                    "select person_id, persistence_runs from persons where run_date = $d", {"d": D3}
                ).fetchall()
            )
        return {name: found[person_id] for name, person_id in ids.items()}

    # P1 and P6 at 2+ partners on all three dates; P2 dropped to one partner on D2.
    assert persistence() == {"P1": 3, "P2": 1, "P6": 3}
    # Rerunning D3 replaces D3: nothing doubles, persistence is the same.
    deliver_empty_extracts(data_dir / "landing", D3)
    run_night(D3, data_dir=data_dir, hub_key_path=key)
    assert persistence() == {"P1": 3, "P2": 1, "P6": 3}
    with snapshot(data_dir) as con:
        assert con.execute("select count(*) from runs").fetchone()[0] == 3
        assert (
            con.execute("select count(*) from persons where run_date = $d", {"d": D3}).fetchone()[0]
            == 3
        )
        assert (
            con.execute("select count(*) from persons where run_date = $d", {"d": D1}).fetchone()[0]
            == 6
        )


def test_every_table_and_column_has_a_comment(hub):
    data_dir, key = hub
    night_one(data_dir / "landing", D1)
    deliver_empty_extracts(data_dir / "landing", D1)
    run_night(D1, data_dir=data_dir, hub_key_path=key)
    with snapshot(data_dir) as con:
        tables = con.execute(
            "select table_name, comment from duckdb_tables() "
            "union all select schema_name || '.' || view_name, comment "
            "from duckdb_views() where not internal"
        ).fetchall()
        columns = con.execute(
            "select schema_name, table_name, column_name, comment "
            "from duckdb_columns() where schema_name in ('main', 'as_published') "
            "and not internal"
        ).fetchall()
    # the tables of the contract are views over the published partitions, in two schemas
    names = {t.removeprefix("main.") for t, _ in tables}
    # and the snapshot's own tables: publications, and the feedback funnel (issue 16)
    assert names == {*OWN_TABLES, *PUBLISHED, *(f"as_published.{t}" for t in PUBLISHED)}
    assert names >= {
        "persons",
        "claims",
        "overlap_pairs",
        "overlap_counts",
        "runs",
        "rejections",
        "agg_gemeente_partners",
        "agg_partner_pairs",
    }
    assert all(comment and "Grain:" in comment for _, comment in tables)
    assert len(columns) > 100
    assert all(comment for *_, comment in columns), [c for c in columns if not c[-1]]


def test_no_pseudonym_or_key_material_in_outputs_or_logs(hub, caplog):
    import base64
    import json
    import logging

    caplog.set_level(logging.DEBUG)
    data_dir, key = hub
    night_one(data_dir / "landing", D1)
    deliver_empty_extracts(data_dir / "landing", D1)
    run_night(D1, data_dir=data_dir, hub_key_path=key)
    pseudonyms = {pseudonym_of(f"P{i}") for i in range(1, 7)}
    secret_b64 = json.loads(key.read_text())["secret"]
    secret_hex = base64.b64decode(secret_b64).hex()
    forbidden = [*pseudonyms, secret_b64, secret_hex]
    with snapshot(data_dir) as con:
        for table, column in con.execute(
            "select table_name, column_name from duckdb_columns() where schema_name = 'main' "
            "and not internal and data_type in ('VARCHAR', 'VARCHAR[]')"
        ).fetchall():
            values = con.execute(
                f'select distinct cast("{column}" as varchar) from {table}'
            ).fetchall()
            text = " ".join(str(v[0]) for v in values)
            assert not any(f in text for f in forbidden), (table, column)
    for path in [*(data_dir / "reports").rglob("*"), *(data_dir / "linked").rglob("*.json")]:
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not any(f in text for f in forbidden), path
    for path in (data_dir / "linked").rglob("*.parquet"):
        with duckdb.connect() as con:
            rows = con.execute(f"select * from read_parquet('{path}')").fetchall()
        assert not any(f in str(rows) for f in forbidden), path
    assert not any(f in caplog.text for f in forbidden)


def test_readers_always_see_a_complete_snapshot(hub):
    data_dir, key = hub
    night_one(data_dir / "landing", D1)
    deliver_empty_extracts(data_dir / "landing", D1)
    run_night(D1, data_dir=data_dir, hub_key_path=key)
    write_claims_delivery(data_dir / "landing", D2, "BD", [{"person": "P1"}])
    deliver_empty_extracts(data_dir / "landing", D2)
    run_night(D2, data_dir=data_dir, hub_key_path=key)
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys; from pipelines.publish import publish\n"
                "for _ in range(8): publish(sys.argv[1])"
            ),
            str(data_dir),
        ]
    )
    seen = 0
    try:
        while writer.poll() is None or seen == 0:
            with snapshot(data_dir) as con:
                runs = con.execute("select count(*) from runs").fetchone()[0]
                dates = con.execute("select count(distinct run_date) from persons").fetchone()[0]
                tables = con.execute(
                    "select count(*) from duckdb_views() where schema_name = 'main' "
                    "and not internal"
                ).fetchone()[0]
            assert runs == dates == 2 and tables == len(PUBLISHED)
            seen += 1
            time.sleep(0.01)
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0 and seen > 1


def test_a_failed_run_leaves_the_previous_snapshot(hub):
    data_dir, key = hub
    night_one(data_dir / "landing", D1)
    deliver_empty_extracts(data_dir / "landing", D1)
    run_night(D1, data_dir=data_dir, hub_key_path=key)
    path = data_dir / "warehouse" / "analytics.duckdb"
    before = path.read_bytes()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "run",
            "--date",
            # no deliveries that night nor within max_staleness_days before it
            (D1 - dt.timedelta(days=30)).isoformat(),
            "--data-dir",
            str(data_dir),
            "--hub-key",
            str(key),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1 and "no accepted claims" in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert path.read_bytes() == before
    publish(data_dir)  # publishing again is harmless


def test_cli_run_exit_codes(hub):
    data_dir, key = hub
    night_one(data_dir / "landing", D1)
    (data_dir / "landing" / D1.isoformat() / "CJIB" / "claims.csv").open("a").write("x\n")

    def cli(*args, **env):
        import os

        return subprocess.run(
            [sys.executable, "-m", "pipelines.cli", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **env},
        )

    no_key = cli("run", "--date", D1, "--data-dir", data_dir, CRI_HUB_KEY_FILE="")
    assert no_key.returncode == 1 and "no hub key" in no_key.stderr
    done = cli("run", "--date", D1, "--data-dir", data_dir, CRI_HUB_KEY_FILE=str(key))
    assert done.returncode == 3, done.stderr
    assert "CJIB claims: REJECTED [sha256_mismatch]" in done.stdout
    assert "published, but rejected: CJIB/claims" in done.stderr
    with snapshot(data_dir) as con:
        assert con.execute("select rule from rejections").fetchall() == [("sha256_mismatch",)]
        assert con.execute("select datasets_rejected from runs").fetchone()[0] == 1


def test_plans_in_the_run_and_the_partner_export(hub):
    data_dir, key = hub
    night_one(data_dir / "landing", D1)
    deliver_empty_extracts(data_dir / "landing", D1)
    summary = run_night(D1, data_dir=data_dir, hub_key_path=key)
    # P1: 3 x 50,000 = 150,000 -> term 18 -> 8,334 a month, 18 months; lines 2,778 each.
    # P2 and P6: 2 x 50,000 = 100,000 -> term 12 -> 8,334 a month; lines 4,167 each.
    assert summary.plans.outcomes == {"standard": 3, "personal": 0, "refer": 0, "excluded": 0}
    assert summary.plans.monthly_cents_by_partner == {
        "BD": 2_778 + 4_167,
        "TSL": 2_778 + 4_167 + 4_167,
        "CJIB": 2_778 + 4_167,
    }
    with snapshot(data_dir) as con:
        plans = sorted(
            con.execute(
                "select total_cents, monthly_cents, term_months from plan_proposals"
            ).fetchall()
        )
        assert plans == [(100_000, 8_334, 12), (100_000, 8_334, 12), (150_000, 8_334, 18)]
        last = con.execute(
            "select amount_cents from plan_schedule where month_number = 18"
        ).fetchall()
        assert last == [(150_000 - 17 * 8_334,)]
    export = data_dir / "outbox" / D1.isoformat() / "partners" / "BD" / "plan_lines.csv"
    assert export.read_text().splitlines() == [
        "claim_ref;plan_outcome;monthly_cents;term_months",
        "BD-20261120-1;standard;2778;18",
        "BD-20261120-2;standard;4167;12",
    ]
    assert (export.parent / "plan_lines.manifest.json").is_file()
