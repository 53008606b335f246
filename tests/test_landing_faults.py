"""Faults around the landing zone, proven with the real CLI on real files (review findings 1-9).

Each test builds a small night by hand (`tests/helpers.py`), runs `python -m pipelines.cli` in a
subprocess where the finding is about the process (exit code, stderr, a kill, a lock, workers),
and then looks at what a user would look at: the landing zone, the quarantine, the staging
receipts and the analysts' database. Nothing of the pipeline is mocked.

A CLI run of a fresh night costs ~15 s (Great Expectations per dataset), so most tests start from
a copy of one night that has already run (`ran`): a rerun of it finds every dataset `unchanged`
and costs a few seconds, and only what a test adds to it is judged afresh.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import duckdb
import pytest

from tests.helpers import (
    deliver_empty_extracts,
    hub_key_file,
    write_claims_delivery,
)

# ~2 minutes: four fresh nights through Great Expectations and a 3,000-person night with workers.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
D = dt.date(2026, 11, 24)  # the night of these tests (before today, 2026-11-29)
DAY = D.isoformat()
W = dt.date(2026, 11, 26)  # the synthetic night of finding 7
DATASETS = 9  # claims of the eight partners + TSL income: a complete night


# ---------------------------------------------------------------- helpers


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any CRI_* setting of the caller (a stray CRI_KILL_AT or memory
    limit must not leak in), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRI_")}
    return {**env, **extra}


def cli(*args: object, env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env or clean_env(),
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


def run_cli(data: Path, key: Path, *extra: object, env: dict[str, str] | None = None):
    return cli(
        "run", "--date", DAY, "--data-dir", data, "--hub-key", key, "--workers", 1, *extra,
        env=env,
    )  # fmt: skip


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """Exit 1, exactly one non-empty line on stderr, no traceback; returns the line."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def tree(root: Path) -> dict[str, tuple]:
    """Every entry under `root` (links not followed): kind, content hash, size, mtime."""
    found: dict[str, tuple] = {}
    for path in sorted(Path(root).rglob("*")):
        rel = path.relative_to(root).as_posix()
        info = path.lstat()
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path), info.st_mtime_ns)
        elif path.is_dir():
            found[rel] = ("dir", info.st_mtime_ns)
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[rel] = ("file", digest, info.st_size, info.st_mtime_ns)
    return found


def snapshot(data: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(data / "warehouse" / "analytics.duckdb"), read_only=True)


def rejections(data: Path) -> list[tuple[str, str, str]]:
    with snapshot(data) as con:
        return con.execute(
            "select partner, dataset, rule from rejections where run_date = $d "
            "order by partner, dataset",
            {"d": D},
        ).fetchall()


def run_record(data: Path) -> tuple[int, int]:
    with snapshot(data) as con:
        return con.execute(
            "select datasets_accepted, datasets_rejected from runs where run_date = $d", {"d": D}
        ).fetchone()


def quarantined(data: Path, partner: str, date: str = DAY) -> list[Path]:
    folder = data / "quarantine" / date / partner
    return sorted(folder.iterdir()) if folder.is_dir() else []


def partial_folders(data: Path) -> list[Path]:
    return [p for p in data.rglob("*") if p.name.endswith(".partial")]


def receipt(data: Path, partner: str, dataset: str = "claims") -> dict:
    return json.loads((data / "staging" / DAY / partner / f"{dataset}.receipt.json").read_text())


# ---------------------------------------------------------------- shared nights


@pytest.fixture(scope="module")
def hub_key(tmp_path_factory) -> Path:
    return hub_key_file(tmp_path_factory.mktemp("hub"))


@pytest.fixture(scope="module")
def night_template(tmp_path_factory) -> Path:
    """A complete night D, not yet run: `<root>/data/landing/<D>/...`."""
    root = tmp_path_factory.mktemp("night")
    landing = root / "data" / "landing"
    write_claims_delivery(landing, D, "BD", [{"person": "P1"}, {"person": "P2"}])
    write_claims_delivery(landing, D, "CJIB", [{"person": "P1"}, {"person": "P3"}])
    write_claims_delivery(landing, D, "TSL", [{"person": "P2"}, {"person": "P3"}])
    deliver_empty_extracts(landing, D)
    return root / "data"


@pytest.fixture(scope="module")
def ran_template(tmp_path_factory, night_template, hub_key) -> Path:
    """The same night after one successful `run` (every dataset accepted and staged)."""
    data = tmp_path_factory.mktemp("ran") / "data"
    shutil.copytree(night_template, data)
    done = run_cli(data, hub_key)
    assert done.returncode == 0, done.stdout + done.stderr
    return data


@pytest.fixture()
def fresh(tmp_path, night_template) -> Path:
    data = tmp_path / "data"
    shutil.copytree(night_template, data, symlinks=True)
    return data


@pytest.fixture()
def ran(tmp_path, ran_template) -> Path:
    data = tmp_path / "data"
    shutil.copytree(ran_template, data, symlinks=True)
    return data


# ---------------------------------------------------------------- 1. a fault is not the data


def test_a_system_fault_in_ingest_is_not_blamed_on_the_data(fresh, hub_key):
    landing_before = tree(fresh / "landing")
    failed = run_cli(fresh, hub_key, env=clean_env(CRI_DUCKDB_MEMORY_LIMIT="1MB"))
    line = one_error_line(failed)
    # It really failed in ingest, in DuckDB, on the first dataset, and says nothing was loaded.
    assert "ingest done" not in failed.stdout
    assert "BD/claims" in line and "out of memory" in line.lower(), line
    assert "left in the landing zone" in line, line
    # The data is not blamed: the landing zone is exactly as delivered, nothing quarantined,
    # nothing staged, nothing published.
    assert tree(fresh / "landing") == landing_before
    assert not (fresh / "quarantine").exists() or not any((fresh / "quarantine").rglob("*"))
    assert not list((fresh / "staging").rglob("*.receipt.json"))
    assert not list((fresh / "staging").rglob("*.parquet"))
    assert not (fresh / "warehouse" / "analytics.duckdb").exists()

    done = run_cli(fresh, hub_key)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": accepted, ") == DATASETS, done.stdout
    assert "REJECTED" not in done.stdout
    assert len(list((fresh / "staging" / DAY).rglob("*.receipt.json"))) == DATASETS
    assert run_record(fresh) == (DATASETS, 0)
    assert rejections(fresh) == []


# ---------------------------------------------------------------- 2. killed while quarantining


@pytest.mark.parametrize("point", ["quarantine_reason_written", "quarantine_file_moved"])
def test_a_run_killed_while_quarantining_loses_nothing(ran, hub_key, point):
    cjib = ran / "landing" / DAY / "CJIB"
    with (cjib / "claims.csv").open("a") as handle:
        handle.write("broken;line\n")  # the sha256 in the manifest no longer matches
    delivered = {
        name: (cjib / name).read_bytes() for name in ("claims.csv", "claims.manifest.json")
    }

    killed = run_cli(ran, hub_key, env=clean_env(CRI_KILL_AT=point))
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert partial_folders(ran), "the kill did not happen inside the quarantine"

    rerun = run_cli(ran, hub_key)
    assert rerun.returncode in (0, 3), rerun.stdout + rerun.stderr
    assert "Traceback" not in rerun.stderr
    assert rejections(ran) == [("CJIB", "claims", "sha256_mismatch")]
    [folder] = quarantined(ran, "CJIB")
    assert folder.name.startswith("claims-") and not folder.name.startswith(".")
    assert sorted(p.name for p in folder.iterdir()) == [
        "claims.csv",
        "claims.manifest.json",
        "reason.json",
    ]
    for name, content in delivered.items():
        assert (folder / name).read_bytes() == content, name
    reason = json.loads((folder / "reason.json").read_text())
    assert reason["rule"] == "sha256_mismatch"
    assert not [p for p in cjib.iterdir() if p.name.startswith("claims")]
    assert partial_folders(ran) == []
    # Interfaces.md section 4: the next run "completes as if the killed one never happened".
    # Without the kill this night exits 3 and records CJIB/claims as rejected.
    assert rerun.returncode == 3, (
        "the rerun after the kill reports a clean night although CJIB/claims of this date was "
        f"rejected: exit {rerun.returncode}, runs = {run_record(ran)}\n{rerun.stderr}"
    )
    assert "CJIB/claims" in rerun.stderr
    assert run_record(ran)[1] == 1


# ---------------------------------------------------------------- 3. dates after today


def test_a_run_for_a_date_after_today_is_a_usage_error(tmp_path, hub_key):
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    data = tmp_path / "data"
    refused = cli("run", "--date", tomorrow, "--data-dir", data, "--hub-key", hub_key)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    reason = [line for line in refused.stderr.splitlines() if "after today" in line]
    assert len(reason) == 1, refused.stderr
    assert tomorrow.isoformat() in reason[0] and dt.date.today().isoformat() in reason[0]
    assert not data.exists(), "a refused run must not touch the data directory"


def test_a_manifest_dated_after_today_is_rejected(tmp_path):
    from pipelines.ingest import ingest_date

    today, tomorrow = dt.date.today(), dt.date.today() + dt.timedelta(days=1)
    # (i) a date folder of tomorrow, ingested directly for that date (the CLI refuses it).
    data = tmp_path / "data"
    write_claims_delivery(data / "landing", tomorrow, "BD", [{"person": "P1"}])
    [outcome] = ingest_date(tomorrow, data_dir=data)
    assert outcome.rejected and outcome.rule == "extract_date_in_future"
    [folder] = quarantined(data, "BD", tomorrow.isoformat())
    assert json.loads((folder / "reason.json").read_text())["rule"] == "extract_date_in_future"
    assert not (data / "staging" / tomorrow.isoformat()).exists()

    # (ii) a manifest of tomorrow in today's folder: both extract_date_in_future and
    # date_mismatch apply; the placement checks run the future-date rule first, and it is the
    # one reported (the partner's real mistake is the date, not the folder).
    other = tmp_path / "other"
    write_claims_delivery(other / "landing", tomorrow, "CJIB", [{"person": "P1"}])
    (other / "landing" / today.isoformat()).mkdir(parents=True)
    os.rename(
        other / "landing" / tomorrow.isoformat() / "CJIB",
        other / "landing" / today.isoformat() / "CJIB",
    )
    checked = cli("ingest", "--date", today, "--data-dir", other, "--workers", 1)
    assert checked.returncode == 3, checked.stdout + checked.stderr
    assert "CJIB claims: REJECTED [extract_date_in_future]" in checked.stdout
    [folder] = quarantined(other, "CJIB", today.isoformat())
    reason = json.loads((folder / "reason.json").read_text())
    assert reason["rule"] == "extract_date_in_future"
    assert [v["rule"] for v in reason["violations"]] == ["extract_date_in_future"]


# ---------------------------------------------------------------- 4. symbolic links


def test_symbolic_links_are_rejected_and_never_followed(ran, hub_key, tmp_path):
    outside = tmp_path / "outside"  # another place on the machine, outside the data dir
    write_claims_delivery(outside, D, "DUO", [{"person": "P7"}, {"person": "P8"}])
    write_claims_delivery(outside, D, "SVB", [{"person": "P9"}])
    target_folder = outside / DAY / "DUO"
    target_file = outside / DAY / "SVB" / "claims.csv"
    landing = ran / "landing" / DAY
    # (a) the partner folder DUO is a link to a folder with a valid delivery
    shutil.rmtree(landing / "DUO")
    (landing / "DUO").symlink_to(target_folder, target_is_directory=True)
    # (b) SVB's data file is a link to a file outside; its manifest matches the target's bytes
    (landing / "SVB" / "claims.csv").unlink()
    (landing / "SVB" / "claims.csv").symlink_to(target_file)
    manifest = "claims.manifest.json"
    shutil.copyfile(outside / DAY / "SVB" / manifest, landing / "SVB" / manifest)
    receipts_before = {p: receipt(ran, p)["sha256"] for p in ("DUO", "SVB")}
    outside_before = tree(outside)

    done = run_cli(ran, hub_key)
    assert done.returncode == 3, done.stdout + done.stderr
    assert rejections(ran) == [
        ("DUO", "DUO", "symlink_not_allowed"),
        ("SVB", "claims", "symlink_not_allowed"),
    ]
    # The targets are untouched: same entries, bytes and mtimes.
    assert tree(outside) == outside_before
    # (a) the link itself was moved into the quarantine, still pointing where it pointed.
    [folder] = quarantined(ran, "DUO")
    moved = folder / "DUO"
    assert moved.is_symlink() and Path(os.readlink(moved)) == target_folder
    assert not os.path.lexists(landing / "DUO")
    # (b) the linked data file (as a link) and its manifest were moved.
    [folder] = quarantined(ran, "SVB")
    assert (folder / "claims.csv").is_symlink()
    assert Path(os.readlink(folder / "claims.csv")) == target_file
    assert (folder / "claims.manifest.json").is_file()
    assert sorted(p.name for p in (landing / "SVB").iterdir()) == []
    # Nothing behind a link was loaded; the rest of the night loaded and was published.
    assert {p: receipt(ran, p)["sha256"] for p in ("DUO", "SVB")} == receipts_before
    assert done.stdout.count("✓") == DATASETS - 2
    assert run_record(ran) == (DATASETS - 2, 2)


# ---------------------------------------------------------------- 5. manifests


def test_hostile_manifests_are_rejected_and_the_run_goes_on(ran, hub_key):
    landing = ran / "landing" / DAY
    nested = "[" * 30_000 + "]" * 30_000
    assert len(nested) < 64 * 1024
    (landing / "BD" / "claims.manifest.json").write_text(nested)
    huge = landing / "CAK" / "claims.manifest.json"
    with huge.open("wb") as handle:
        handle.write(b'{"contract": "claims", "padding": "')
        handle.truncate(50 * 2**20)  # 50 MB, sparse: no disk used

    started = time.monotonic()
    done = run_cli(ran, hub_key)
    seconds = time.monotonic() - started
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "RecursionError" not in done.stdout + done.stderr
    assert "BD claims: REJECTED [manifest_unreadable]" in done.stdout
    assert "CAK claims: REJECTED [manifest_too_large]" in done.stdout
    assert rejections(ran) == [
        ("BD", "claims", "manifest_unreadable"),
        ("CAK", "claims", "manifest_too_large"),
    ]
    assert done.stdout.count("✓") == DATASETS - 2  # the other partners went through
    [folder] = quarantined(ran, "CAK")
    assert (folder / "claims.manifest.json").stat().st_size == 50 * 2**20
    assert seconds < 60, seconds


def test_a_huge_manifest_is_not_read_whole(tmp_path):
    from pipelines.ingest import MANIFEST_MAX_BYTES, datasets_in, ingest_delivery

    write_claims_delivery(tmp_path / "landing", D, "CJIB", [{"person": "P1"}])
    folder = tmp_path / "landing" / DAY / "CJIB"
    with (folder / "claims.manifest.json").open("wb") as handle:
        handle.write(b'{"contract": "claims", "padding": "')
        handle.write(b"x" * (1 << 20))  # real bytes first, then a sparse tail
        handle.truncate(50 * 2**20)
    [delivery] = datasets_in(folder)
    tracemalloc.start()
    try:
        started = time.monotonic()
        outcome = ingest_delivery(delivery, run_date=D, data_dir=tmp_path)
        seconds = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.rejected and outcome.rule == "manifest_too_large"
    assert peak < 16 * MANIFEST_MAX_BYTES, f"peak {peak:,} bytes: the manifest was read whole"
    assert seconds < 5, seconds


# ---------------------------------------------------------------- 6. stray files, odd names


def test_stray_files_are_quarantined_and_the_night_publishes(fresh, hub_key):
    landing = fresh / "landing" / DAY
    (landing / "notes.txt").write_text("call CJIB on monday\n")
    (landing / "BD" / "readme.txt").write_text("extract of 24 November\n")

    done = run_cli(fresh, hub_key)
    assert done.returncode == 3, done.stdout + done.stderr
    assert rejections(fresh) == [
        ("BD", "readme.txt", "unexpected_file"),
        ("_date_folder", "notes.txt", "unexpected_file"),
    ]
    [folder] = quarantined(fresh, "_date_folder")
    assert (folder / "notes.txt").read_text() == "call CJIB on monday\n"
    assert json.loads((folder / "reason.json").read_text())["rule"] == "unexpected_file"
    [folder] = quarantined(fresh, "BD")
    assert (folder / "readme.txt").read_text() == "extract of 24 November\n"
    assert not (landing / "notes.txt").exists() and not (landing / "BD" / "readme.txt").exists()
    # The stray files cost nothing else: every dataset accepted, the night published.
    assert done.stdout.count(": accepted, ") == DATASETS, done.stdout
    assert run_record(fresh) == (DATASETS, 2)
    assert "published, but rejected" in done.stderr


def test_control_characters_in_names_are_never_printed_raw(ran, hub_key):
    landing = ran / "landing" / DAY
    odd = landing / "BD\x1b[31m"
    shutil.copytree(landing / "BD", odd)
    (landing / "CJIB" / "notes\x1b[2J.txt").write_text("x\n")

    done = run_cli(ran, hub_key)
    assert done.returncode == 3, done.stdout + done.stderr
    assert {rule for *_, rule in rejections(ran)} == {"unknown_partner", "unexpected_file"}
    assert "\\x1b" in done.stdout  # shown, escaped
    raw_out = [line for line in done.stdout.splitlines() if "\x1b" in line]
    raw_err = [line for line in done.stderr.splitlines() if "\x1b" in line]
    assert raw_out == [] and raw_err == [], (
        f"raw ESC printed: stdout {raw_out!r}, stderr {raw_err!r}"
    )


# ---------------------------------------------------------------- 7. orphaned workers

_SUBREAPER = """
import ctypes, subprocess, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
out, err = open(sys.argv[1], "w"), open(sys.argv[2], "w")
child = subprocess.Popen(sys.argv[3:], stdout=out, stderr=err)
print(child.pid, flush=True)
sys.stdin.read()  # stay (and adopt orphans) until the test is done
"""


@pytest.fixture(scope="module")
def synthetic_night(tmp_path_factory) -> Path:
    """Every partner's dataset for W, 3,000 synthetic persons, made with the partner tool."""
    from pipelines.pseudonymise import pseudonymise_extract
    from pipelines.synth import synth
    from privacy.keys import new_key

    root = tmp_path_factory.mktemp("synthetic")
    raw = synth(root / "raw", extract_date=W, persons=3000, seed=11)
    key = new_key("linkage")
    landing = root / "data" / "landing" / W.isoformat()
    for (partner, _), (path, _) in raw.files.items():
        pseudonymise_extract(path, landing / partner, key=key, partner=partner, extract_date=W)
    for reject_file in landing.rglob("*.rejects.csv"):
        reject_file.unlink()
    return root / "data"


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in task.read_text().split()]
    return found


def _descendants(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        found += [child, *_descendants(child)]
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int, started: str) -> bool:
    """Running (not a zombie), and the same process (its start time) as when first seen."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z" and fields[19] == started


def _start_time(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


@pytest.mark.parametrize(
    ("moment", "subreaper"),
    [
        # the workers are checking datasets (their start-up is long done)
        ("busy", False),
        # the workers have just been spawned, and the run was started by a supervisor that
        # adopts orphans (systemd --user, tini -s, ...): they are not re-parented to pid 1
        ("starting", True),
    ],
)
def test_killing_the_run_leaves_no_orphaned_workers(
    tmp_path, synthetic_night, hub_key, moment, subreaper
):
    if subreaper and not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_CHILD_SUBREAPER is Linux only")
    data = tmp_path / "data"
    shutil.copytree(synthetic_night, data)
    command = [
        sys.executable, "-m", "pipelines.cli", "run", "--date", W.isoformat(),
        "--data-dir", str(data), "--hub-key", str(hub_key), "--workers", "2",
    ]  # fmt: skip
    wrapper = None
    if subreaper:
        wrapper = subprocess.Popen(
            [sys.executable, "-c", _SUBREAPER, tmp_path / "out", tmp_path / "err", *command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=clean_env(),
            cwd=ROOT,
        )
        run_pid = int(wrapper.stdout.readline())
        run = None
    else:
        run = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=clean_env(),
            cwd=ROOT,
        )
        run_pid = run.pid
    run_started = _start_time(run_pid)
    seen: dict[int, str] = {}
    survivors: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while True:
            assert time.monotonic() < deadline, "the run never had two busy worker processes"
            assert _alive(run_pid, run_started), "the run ended before it was killed"
            for pid in _descendants(run_pid):
                if pid not in seen:
                    with contextlib.suppress(OSError):
                        seen[pid] = _start_time(pid)
            workers = [p for p in _descendants(run_pid) if "spawn_main" in _cmdline(p)]
            work = data / "staging" / ".work"  # a worker checks a dataset in <pid>-*/ there
            busy = {int(p.name.split("-")[0]) for p in work.glob("*-*")} if work.is_dir() else set()
            if len(workers) >= 2 and (moment == "starting" or set(workers) <= busy):
                break
            time.sleep(0.02)
        os.kill(run_pid, signal.SIGKILL)
        if run is not None:
            run.wait(timeout=30)
        give_up = time.monotonic() + 10
        while (survivors := [p for p, t in seen.items() if _alive(p, t)]) and (
            time.monotonic() < give_up
        ):
            time.sleep(0.2)
        described = {p: _cmdline(p)[:100] for p in survivors}
    finally:  # end only the processes this test's run started, by their id
        for pid, started in [(run_pid, run_started), *seen.items()]:
            if _alive(pid, started):
                os.kill(pid, signal.SIGKILL)
        if wrapper is not None:
            wrapper.stdin.close()
            wrapper.wait(timeout=30)
    assert survivors == [], f"still running 10 s after the run was killed: {described}"
    if moment != "busy":
        return  # the rerun is proven once (below); it costs ~20 s
    rerun = cli("run", "--date", W, "--data-dir", data, "--hub-key", hub_key, "--workers", 2)
    assert rerun.returncode in (0, 3), rerun.stdout + rerun.stderr
    assert "Traceback" not in rerun.stderr and "error:" not in rerun.stderr
    with duckdb.connect(str(data / "warehouse" / "analytics.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from runs where run_date = $d", {"d": W}).fetchone()[0]


# ---------------------------------------------------------------- 8. leftovers of a killed run


def test_temporary_files_of_a_killed_run_are_removed_at_the_next_start(ran, hub_key):
    leftovers = [
        ran / "outbox" / DAY / "GM0363" / ".signals.csv.1234.tmp",
        ran / "staging" / DAY / "BD" / ".claims.parquet.99.tmp",
        ran / "warehouse" / ".analytics.duckdb.77.tmp",
        ran / "warehouse" / ".analytics.duckdb.77.tmp.wal",
        ran / "linked" / ".work" / DAY / "x.parquet",
    ]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half-written")
    partner_writing = ran / "landing" / DAY / "BD" / ".claims.csv.5.tmp"
    partner_writing.write_bytes(b"person_pseudonym;claim_ref\n")  # a partner tool, mid-write
    before = tree(ran / "landing")

    done = run_cli(ran, hub_key)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [p for p in leftovers if os.path.lexists(p)] == []
    assert not any((ran / "linked" / ".work").rglob("*.parquet"))
    # The landing zone belongs to the partners: their temporary file is left alone, unread.
    assert tree(ran / "landing") == before
    assert partner_writing.read_bytes() == b"person_pseudonym;claim_ref\n"
    assert "REJECTED" not in done.stdout


# ---------------------------------------------------------------- 9. one run at a time

_HOLDER = """
import sys, time
from pipelines.lock import data_dir_lock
with data_dir_lock(sys.argv[1], what="test"):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_second_run_is_refused_while_the_data_dir_is_held(ran, hub_key):
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(ran)],
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=ROOT,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        before = tree(ran)
        refused = run_cli(ran, hub_key)
        line = one_error_line(refused)
        assert f"in use by pid {holder.pid} (test)" in line, line
        assert tree(ran) == before, "the refused run wrote into the data directory"
    finally:
        holder.send_signal(signal.SIGKILL)  # a holder killed hard leaves no stale lock
        holder.wait(timeout=30)
    done = run_cli(ran, hub_key)
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------- fault-injection pass


def test_a_landing_zone_on_another_file_system_quarantines_by_copy(ran, hub_key):
    """A landing zone on its own disk (an SFTP mount): a rejection moves the files across file
    systems (copy, flush, remove) instead of failing every night after it."""
    import tempfile

    # /dev/shm: a tmpfs, another file system than the data dir's; a private mkdtemp inside it
    landing = Path(tempfile.mkdtemp(prefix="cri-landing-", dir="/dev/shm")) / "landing"
    try:
        shutil.copytree(ran / "landing", landing)
        assert os.stat(landing).st_dev != os.stat(ran).st_dev, "needs /dev/shm on its own fs"
        cjib = landing / DAY / "CJIB"
        delivered = {p.name: p.read_bytes() for p in cjib.iterdir()}
        with (cjib / "claims.csv").open("a") as handle:
            handle.write("broken;line\n")
        delivered["claims.csv"] += b"broken;line\n"
        done = run_cli(ran, hub_key, "--landing", landing)
        assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
        [folder] = quarantined(ran, "CJIB")
        assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name in delivered} == (
            delivered
        )
        assert not list(cjib.glob("claims*"))  # gone from the landing zone
        assert partial_folders(ran) == []
        assert rejections(ran) == [("CJIB", "claims", "sha256_mismatch")]
        # the next run is not stuck (CJIB's earlier accepted extract of the date stands)
        again = run_cli(ran, hub_key, "--landing", landing)
        assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    finally:
        shutil.rmtree(landing.parent, ignore_errors=True)


def test_a_landing_zone_inside_the_data_dir_under_another_name_is_never_tidied(ran, hub_key):
    """The partners' own temporary files are theirs, wherever the landing zone lives."""
    landing = ran / "sftp-in"
    (ran / "landing").rename(landing)
    partner_writing = landing / DAY / "BD" / ".claims.csv.4242.tmp"
    partner_writing.write_text("half a file")
    done = run_cli(ran, hub_key, "--landing", landing)
    assert done.returncode == 0, done.stderr
    assert partner_writing.read_text() == "half a file"


def test_a_symlinked_date_folder_fails_the_run_in_one_line(ran, hub_key, tmp_path):
    outside = tmp_path / "elsewhere"
    (ran / "landing" / DAY).rename(outside)
    (ran / "landing" / DAY).symlink_to(outside)
    line = one_error_line(run_cli(ran, hub_key))
    assert "symbolic link" in line and "never followed" in line
    assert sorted(p.name for p in outside.iterdir()) == sorted(
        ["BD", "CAK", "CJIB", "DUO", "RVO", "SVB", "TSL", "UWV"]
    )


def test_a_night_without_any_delivery_says_so(ran, hub_key):
    """A mistyped --landing must not look like a quiet night."""
    empty = ran / "empty-landing"
    empty.mkdir()
    done = run_cli(ran, hub_key, "--landing", empty)
    # the date's data was accepted by an earlier run, so the night is whole; but it is said
    assert done.returncode == 0
    assert f"no deliveries found for {DAY}" in done.stderr


def test_ingest_workers_leave_the_terminal_clean(fresh):
    """Checking datasets in worker processes (which hold Great Expectations and DuckDB until
    they exit) prints the night's outcome and nothing from the workers' teardown."""
    checked = cli("ingest", "--date", DAY, "--data-dir", fresh, "--workers", 2)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "nanobind" not in checked.stderr and "leaked" not in checked.stderr, checked.stderr
    assert "Traceback" not in checked.stderr
    assert len(list((fresh / "staging" / DAY).glob("*/*.parquet"))) == DATASETS
