"""Named points where a test can kill the process, to prove crash safety.

`CRI_KILL_AT=<point>` makes the process send itself SIGKILL when it reaches that point: no
cleanup, no `finally`, exactly what a power cut or the OOM killer does. The points are the
stage boundaries and the moments between the renames of publish, delivery and quarantining
(`KILL_POINTS`). Unset (always, outside the tests) it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

KILL_ENV = "CRI_KILL_AT"
KILL_POINTS = (
    "quarantine_reason_written",
    "quarantine_file_moved",
    "after_ingest",
    "after_link",
    "after_plans",
    "after_signals",
    "after_commit",
    "derived_a_later_date",
    "outbox_built",
    "after_outbox",
    "after_ledger",
    "history_version_written",
    "snapshot_built",
    "after_publish",
)


def kill_point(name: str) -> None:
    """SIGKILL this process if `CRI_KILL_AT` names this point (tests only)."""
    if os.environ.get(KILL_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
