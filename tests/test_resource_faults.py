"""Resource faults end in one line on stderr and exit 1, never a traceback.

Each fault is really caused, in a subprocess running the installed `cri-overlap`: a file size
limit (EFBIG), a full disk (a tiny tmpfs in a private mount namespace: ENOSPC), an open-file
limit (EMFILE), an address-space limit (MemoryError), a DuckDB memory limit
(duckdb.OutOfMemoryException), DuckDB writing past the file size limit (duckdb.IOException),
permission denied, and a file where a folder is needed. A few errnos that cannot be caused here
(EDQUOT, ENFILE, EROFS) are checked in process at the end.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import EXTRACT_DATE

CLI = Path(sys.executable).with_name("cri-overlap")
DATE = EXTRACT_DATE.isoformat()
GIB = 2**30

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNS, _MS_REC, _MS_PRIVATE = 0x00020000, 0x4000, 0x40000
_PR_CAPBSET_DROP, _CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 24, 1, 2


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _limit(which: int, value: int):
    """preexec_fn: lower one resource limit in the child (and ignore SIGXFSZ, so that writing
    past RLIMIT_FSIZE fails with EFBIG instead of killing the process)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(which, (value, value))

    return apply


def _full_disk(mount_point: Path, size: str = "16k", fill: bool = False):
    """preexec_fn: the child alone sees a tiny tmpfs at `mount_point` (a private mount namespace:
    nothing is mounted for anyone else, and it vanishes with the child). `fill` fills it up."""

    def apply() -> None:
        _check(_libc.unshare(_CLONE_NEWNS), "unshare")
        _check(_libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "mount --make-rprivate")
        options = f"size={size}".encode()
        _check(_libc.mount(b"tmpfs", os.fsencode(mount_point), b"tmpfs", 0, options), "mount")
        if fill:
            try:
                with open(mount_point / "filler", "wb") as handle:
                    while True:
                        handle.write(b"\0" * 4096)
                        handle.flush()
            except OSError:
                pass

    return apply


def _without_root_override() -> None:
    """preexec_fn: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set, so the
    root-run child obeys file modes like any user after exec."""
    for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        _check(_libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0), "prctl(PR_CAPBSET_DROP)")


def cli(*args: object, preexec_fn=None, env: dict[str, str] | None = None, cwd=None):
    return subprocess.run(
        [str(CLI), *map(str, args)],
        capture_output=True,
        text=True,
        preexec_fn=preexec_fn,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=300,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """Exit 1 and exactly one non-empty line on stderr, no traceback; returns the line."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert lines[0].startswith("error: ")
    return lines[0]


def _can(preexec_fn, tmp_path: Path) -> bool:
    try:
        subprocess.run(["true"], preexec_fn=preexec_fn, check=True, cwd=tmp_path)
    except (subprocess.SubprocessError, OSError):
        return False
    return True


@pytest.fixture()
def mount_point(tmp_path: Path) -> Path:
    point = tmp_path / "disk"
    point.mkdir()
    # CI runs as root on a machine that allows it: a test that cannot do what it says fails
    assert _can(_full_disk(point), tmp_path), "no private mount namespace (needs CAP_SYS_ADMIN)"
    return point


@pytest.fixture(scope="module")
def raw_claims(tmp_path_factory) -> tuple[Path, Path]:
    """A linkage key and one partner's raw claims, made with the real CLI."""
    root = tmp_path_factory.mktemp("raw")
    key = root / "linkage.key.json"
    assert cli("keys", "new", "--purpose", "linkage", "--out", key).returncode == 0
    made = cli("synth", "--date", DATE, "--persons", 300, "--out", root / "raw", "--quiet")
    assert made.returncode == 0, made.stderr
    return key, root / "raw" / "CJIB" / "claims.csv"


# --- a file size limit: EFBIG ----------------------------------------------------------------


def test_file_size_limit_writing_a_key_file(tmp_path):
    key = tmp_path / "hub.key.json"
    result = cli(
        "keys", "new", "--purpose", "hub", "--out", key,
        preexec_fn=_limit(resource.RLIMIT_FSIZE, 0),
    )  # fmt: skip
    line = one_error_line(result)
    assert "file too large" in line and str(key) in line and "ulimit -f" in line
    assert not key.exists(), "an empty key file would block the next attempt"


def test_file_size_limit_in_synth(tmp_path):
    """Polars raises an OSError whose errno is only in its text ("(os error 27)")."""
    result = cli(
        "synth", "--date", DATE, "--persons", 300, "--out", tmp_path / "raw", "--quiet",
        preexec_fn=_limit(resource.RLIMIT_FSIZE, 2000),
    )  # fmt: skip
    assert "file too large" in one_error_line(result)


def test_duckdb_io_error_past_the_file_size_limit(tmp_path, raw_claims):
    """pseudonymise writes with DuckDB's COPY: a duckdb.IOException, reported with its file."""
    key, raw = raw_claims
    out = tmp_path / "delivery"
    result = cli(
        "pseudonymise", "--key", key, "--partner", "CJIB", "--date", DATE, "--in", raw,
        "--out", out, "--quiet",
        preexec_fn=_limit(resource.RLIMIT_FSIZE, 4096),
    )  # fmt: skip
    line = one_error_line(result)
    assert "file too large" in line and str(out) in line


# --- a full disk: ENOSPC ---------------------------------------------------------------------


def test_full_disk_writing_a_key_file(tmp_path, mount_point):
    key = mount_point / "hub.key.json"
    result = cli(
        "keys", "new", "--purpose", "hub", "--out", key,
        preexec_fn=_full_disk(mount_point, size="16k", fill=True),
    )  # fmt: skip
    line = one_error_line(result)
    assert line.startswith(f"error: no space left on device while writing {key}")
    assert f"free space on the disk that holds {mount_point}" in line


def test_full_disk_in_synth(tmp_path, mount_point):
    result = cli(
        "synth", "--date", DATE, "--persons", 300, "--out", mount_point / "raw", "--quiet",
        preexec_fn=_full_disk(mount_point),
    )  # fmt: skip
    assert "no space left on device" in one_error_line(result)


def test_full_disk_under_duckdb(tmp_path, mount_point, raw_claims):
    key, raw = raw_claims
    out = mount_point / "delivery"
    result = cli(
        "pseudonymise", "--key", key, "--partner", "CJIB", "--date", DATE, "--in", raw,
        "--out", out, "--quiet",
        preexec_fn=_full_disk(mount_point),
    )  # fmt: skip
    line = one_error_line(result)
    assert "no space left on device" in line and str(out) in line


# --- too many open files: EMFILE -------------------------------------------------------------


def test_too_many_open_files(tmp_path):
    """synth keeps one file open per partner: 10 descriptors start Python, not all of them."""
    result = cli(
        "synth", "--date", DATE, "--persons", 300, "--out", tmp_path / "raw", "--quiet",
        preexec_fn=_limit(resource.RLIMIT_NOFILE, 10),
    )  # fmt: skip
    line = one_error_line(result)
    assert "too many open files" in line and "ulimit -n, now 10" in line


# --- out of memory: MemoryError, duckdb.OutOfMemoryException ---------------------------------


def test_out_of_memory(tmp_path):
    """open-signals reads the message whole: a 4 GiB (sparse) message under a 2 GiB address
    space limit is a MemoryError, every time. (synth --persons 2000000 under RLIMIT_AS is not
    reliable: polars' allocator may abort the process from Rust, which nothing can catch.)"""
    folder = tmp_path / "outbox"
    folder.mkdir()
    (folder / "signals.manifest.json").write_text("{}")
    message = folder / "signals.csv.p7m"
    with message.open("wb") as handle:
        handle.truncate(4 * GIB)  # no disk used
    result = cli(
        "open-signals", message, "--key", tmp_path / "k", "--cert", tmp_path / "c",
        "--ca", tmp_path / "ca",
        preexec_fn=_limit(resource.RLIMIT_AS, 2 * GIB),
    )  # fmt: skip
    assert one_error_line(result).startswith("error: out of memory:")


def test_duckdb_out_of_memory(night):
    """The operator's DuckDB memory limit, far too low: duckdb.OutOfMemoryException."""
    result = cli(
        "ingest", "--date", DATE, "--data-dir", night, "--workers", 1, "--quiet",
        env={"CRI_DUCKDB_MEMORY_LIMIT": "1MB"},
    )  # fmt: skip
    line = one_error_line(result)
    assert "out of memory" in line.lower() and "CRI_DUCKDB_MEMORY_LIMIT" in line


# --- permission denied, a file where a folder is needed --------------------------------------


def test_permission_denied_on_the_output_folder(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    drop = _without_root_override if os.geteuid() == 0 else None
    if drop is not None and not _can(drop, tmp_path):
        pytest.skip("running as root without CAP_SETPCAP: cannot make the mode bind root")
    try:
        result = cli("keys", "new", "--purpose", "hub", "--out", folder / "k.json", preexec_fn=drop)
    finally:
        folder.chmod(0o755)
    line = one_error_line(result)
    assert line.startswith(f"error: permission denied on {folder / 'k.json'}")


def test_a_file_in_place_of_a_folder(tmp_path):
    """NotADirectoryError: synth makes <out>/<partner>/ below a file."""
    blocker = tmp_path / "raw"
    blocker.write_text("")
    result = cli("synth", "--date", DATE, "--persons", 10, "--out", blocker, "--quiet")
    assert "is a file" in one_error_line(result)


def test_a_file_where_the_output_folder_should_be(tmp_path):
    """FileExistsError: keys new makes the key file's folder, and a file has that name."""
    blocker = tmp_path / "keys"
    blocker.write_text("")
    result = cli("keys", "new", "--purpose", "hub", "--out", blocker / "hub.key.json")
    line = one_error_line(result)
    assert line.startswith(f"error: {blocker} already exists")


# --- errnos that cannot be caused here, through main() in process ----------------------------


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (OSError(errno.EDQUOT, "Disk quota exceeded", "/data/x.parquet"), "disk quota exceeded"),
        (OSError(errno.ENFILE, "Too many open files in system"), "in the system"),
        (OSError(errno.EROFS, "Read-only file system", "/data/x"), "read-only file system at"),
        (MemoryError(), "out of memory"),
    ],
)
def test_errnos_that_cannot_be_caused_here(fault, expected):
    """Faults this machine cannot produce on demand, found also behind a stage's own error."""
    from pipelines.resource_faults import describe

    try:
        try:
            raise fault
        except BaseException as exc:
            raise RuntimeError("a stage wrapped it") from exc  # found through __cause__
    except RuntimeError as wrapped:
        line = describe(wrapped)
    assert line is not None and expected in line and "\n" not in line


def test_other_os_errors_are_not_resource_faults():
    """A bug is not a resource fault: e.g. EINVAL keeps its traceback (main re-raises it)."""
    from pipelines.resource_faults import describe

    assert describe(OSError(errno.EINVAL, "Invalid argument")) is None


def test_full_disk_while_publishing_says_what_was_delivered(tmp_path):
    """The disk that holds the warehouse fills up while the analysts' database is published,
    after the night's files were delivered: one line that says so (not "nothing published"),
    the old snapshot stands, and a rerun with space gives the whole night. (The warehouse gets
    a tiny disk of its own: a publish now needs less space than the ingest before it, so one
    small disk for everything would fill during ingest.)"""
    import datetime as dt

    from tests.helpers import deliver_empty_extracts, hub_key_file, write_claims_delivery

    key = hub_key_file(tmp_path)
    d1, d2 = dt.date(2026, 11, 20), dt.date(2026, 11, 21)
    data = tmp_path / "data"
    for date in (d1, d2):
        write_claims_delivery(data / "landing", date, "BD", [{"person": "X"}, {"person": "Z"}])
        write_claims_delivery(data / "landing", date, "DUO", [{"person": "Z"}])
        deliver_empty_extracts(data / "landing", date)
    first = cli("run", "--date", d1, "--data-dir", data, "--hub-key", key, "--quiet")
    assert first.returncode == 0, first.stderr
    warehouse = data / "warehouse"
    assert _can(_full_disk(warehouse), tmp_path), "no private mount namespace"
    kept = tmp_path / "warehouse-kept"
    shutil.copytree(warehouse, kept)  # hard links become copies: the tiny disk holds copies too
    used = sum(p.stat().st_size for p in kept.rglob("*") if p.is_file())
    snapshot = (kept / "analytics.duckdb").read_bytes()
    # the child alone sees a tmpfs at warehouse/, with the old warehouse and 256 KB to spare
    script = (
        f"cp -a {kept}/. {warehouse}/ && {sys.executable} -m pipelines.cli run --date {d2} "
        f"--data-dir {data} --hub-key {key} --workers 1 --quiet; rc=$?; "
        f"rm -rf {kept} && cp -a {warehouse}/. {kept}/; exit $rc"
    )
    failed = subprocess.run(
        ["bash", "-c", script],
        preexec_fn=_full_disk(warehouse, size=f"{used // 1024 + 256}k"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    line = one_error_line(failed)
    assert "signal files delivered" in line and "could not be rebuilt" in line, line
    assert "no space left on device" in line and "nothing published" not in line, line
    assert (kept / "analytics.duckdb").read_bytes() == snapshot
    assert list((data / "ledger" / d2.isoformat()).glob("*/delivery.json"))
    shutil.rmtree(warehouse)
    shutil.copytree(kept, warehouse)
    again = cli("run", "--date", d2, "--data-dir", data, "--hub-key", key, "--quiet")
    assert again.returncode == 0, again.stderr
