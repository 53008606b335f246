"""The command line as users run it: real subprocesses, exit codes, one-line errors."""

import json
import subprocess
import sys

from tests.helpers import EXTRACT_DATE, raw_claims_frame, write_raw_csv


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_keys_new_writes_a_key_and_never_prints_the_secret(tmp_path):
    path = tmp_path / "link.json"
    result = cli("keys", "new", "--purpose", "linkage", "--out", path)
    assert result.returncode == 0, result.stderr
    secret = json.loads(path.read_text())["secret"]
    assert secret not in result.stdout + result.stderr
    assert json.loads(path.read_text())["key_id"] in result.stdout


def test_errors_are_one_line_without_traceback(tmp_path):
    path = tmp_path / "link.json"
    cli("keys", "new", "--purpose", "linkage", "--out", path)
    again = cli("keys", "new", "--purpose", "linkage", "--out", path)
    assert again.returncode == 1
    assert again.stderr.strip().count("\n") == 0
    assert "already exists" in again.stderr and "Traceback" not in again.stderr

    missing = cli(
        "pseudonymise",
        "--key",
        tmp_path / "none.json",
        "--partner",
        "CJIB",
        "--date",
        EXTRACT_DATE,
        "--in",
        tmp_path / "claims.csv",
        "--out",
        tmp_path,
    )
    assert missing.returncode == 1
    assert "key file not found" in missing.stderr and "Traceback" not in missing.stderr


def test_usage_errors_exit_2():
    assert cli("synth", "--persons", "10").returncode == 2
    assert cli("synth", "--date", "22-11-2026", "--persons", "1", "--out", "x").returncode == 2
    assert cli("keys", "new", "--purpose", "other", "--out", "x").returncode == 2


def test_synth_then_pseudonymise(tmp_path):
    key = tmp_path / "link.json"
    assert cli("keys", "new", "--purpose", "linkage", "--out", key).returncode == 0
    made = cli(
        "synth",
        "--date",
        EXTRACT_DATE,
        "--persons",
        500,
        "--out",
        tmp_path / "raw",
        "--seed",
        1,
        "--quiet",
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout == ""
    done = cli(
        "pseudonymise",
        "--key",
        key,
        "--partner",
        "TSL",
        "--date",
        EXTRACT_DATE,
        "--in",
        tmp_path / "raw" / "TSL" / "income.csv",
        "--out",
        tmp_path / "land",
    )
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "land" / "income.manifest.json").read_text())
    assert manifest["contract"] == "income" and manifest["partner"] == "TSL"


def test_pseudonymise_reports_rejected_bsns(tmp_path):
    key = tmp_path / "link.json"
    cli("keys", "new", "--purpose", "linkage", "--out", key)
    raw = write_raw_csv(raw_claims_frame(["123456782", "123456789"]), tmp_path / "claims.csv")
    done = cli(
        "pseudonymise",
        "--key",
        key,
        "--partner",
        "CJIB",
        "--date",
        EXTRACT_DATE,
        "--in",
        raw,
        "--out",
        tmp_path / "land",
    )
    assert done.returncode == 0
    assert "1 rows with an invalid BSN" in done.stdout
    assert "123456789" not in done.stdout + done.stderr


def test_demo_builds_a_landing_zone(tmp_path):
    done = cli("demo", "--data-dir", tmp_path, "--persons", 2000, "--date", EXTRACT_DATE, "--quiet")
    assert done.returncode == 0, done.stderr
    landing = tmp_path / "landing" / EXTRACT_DATE.isoformat()
    manifests = sorted(p.relative_to(landing).as_posix() for p in landing.rglob("*.manifest.json"))
    # claims of 8 partners, TSL's income, and the identities each partner sealed (issue 15)
    assert len(manifests) == 17 and "TSL/income.manifest.json" in manifests
    assert len([m for m in manifests if m.endswith("identities.manifest.json")]) == 8
    assert not list(landing.rglob("*.key.json"))
    assert (tmp_path / "warehouse" / "analytics.duckdb").is_file()
    # the demo ends with a gemeente opening its file and finding people by BSN
    assert "opened its signal file" in done.stdout and "with a BSN" in done.stdout
