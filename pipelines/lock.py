"""One run at a time per data directory (interfaces.md section 4).

An advisory `flock` on `<data-dir>/.cri-overlap.lock`: the kernel drops it when the process that
holds it ends, however it ends (SIGKILL included), so a killed run never leaves a stale lock
behind. Who holds it (pid, command, since when) is written into the lock file for the error
line of the run that has to wait or give up.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from pipelines.errors import CriError
from pipelines.layout import Layout


class DataDirBusy(CriError):
    """Another run holds the data directory."""


def _holder(handle: TextIO) -> str:
    handle.seek(0)
    text = handle.read().strip()
    return text or "another process"


@contextmanager
def data_dir_lock(
    data_dir: Path, *, what: str, wait_seconds: float = 0.0, shared: bool = False
) -> Iterator[None]:
    """Hold the data directory for `what` (e.g. `run --date 2026-11-22`).

    With `wait_seconds` 0 a busy directory raises `DataDirBusy` at once, naming the holder;
    otherwise it waits up to that long (the DAG's tasks wait; a person at the CLI is told).
    `shared`: the DAG's mapped ingest tasks of one night write disjoint files and hold the
    directory together; any exclusive holder (a whole `run`, a later stage) excludes them."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = Layout(data_dir).lock_file
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    handle = os.fdopen(fd, "r+", encoding="utf-8")
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DataDirBusy(
                        f"{data_dir} is in use by {_holder(handle)}; wait for it to finish "
                        "(or stop it) and run again"
                    ) from None
                time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        if not shared:
            handle.seek(0)
            handle.truncate()
            started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            handle.write(f"pid {os.getpid()} ({what}) since {started}\n")
            handle.flush()
        try:
            yield
        finally:
            if not shared:
                handle.seek(0)
                handle.truncate()
                handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()
