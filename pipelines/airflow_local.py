"""`make airflow`: a local `airflow standalone` that one Ctrl+C stops completely.

`airflow standalone` on its own does not, every time. Ctrl+C reaches every component (and the
scheduler's 32 LocalExecutor workers) straight from the terminal, and then standalone sends each
component a SIGTERM too. Airflow 3.3's dag-processor can deadlock in its signal handler on that
second signal (both handlers log; the second waits for the lock the first holds), and the
scheduler was seen to hang with its workers as well: standalone and make then wait forever, and
a second Ctrl+C leaves the hung processes running on their own. Task processes run in process
groups of their own, so Ctrl+C never reaches them at all.

So this runs standalone in a session of its own and turns Ctrl+C (or SIGTERM, SIGHUP) into one
SIGINT to standalone, which stops each component once; whatever of that session still runs after
`GRACE_SECONDS` (task processes included) is killed. A second Ctrl+C kills at once.

It also refuses a port that is taken, and moves Airflow's log servers (8793 for the scheduler's
tasks, 8794 for the triggerer) out of the way when `AIRFLOW__API__PORT` is one of them.
Usage: `python -m pipelines.airflow_local`, with the settings in the environment (the Makefile).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

# Idle, standalone stops in about 10 s; with a task running it cannot (the api-server the task
# reports to stops first), so the task and the scheduler waiting for it are killed after this.
GRACE_SECONDS = 15
LOG_SERVER_PORTS = {
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": 8793,
    "AIRFLOW__LOGGING__TRIGGERER_LOG_SERVER_PORT": 8794,
}


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))  # noqa: S104 - the api-server binds here too
        except OSError:
            return True
    return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def session_processes(sid: int) -> list[int]:
    """Live (not zombie) processes of session `sid`: everything standalone started."""
    import psutil

    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getsid(proc.pid) == sid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except (OSError, psutil.Error):
            continue
    return found


def _say(message: str) -> None:
    print(f"airflow_local | {message}", flush=True)


def _environment(port: int) -> dict[str, str]:
    """The environment for `airflow standalone`: log-server ports moved off the API port."""
    env = dict(os.environ)
    for key, default in LOG_SERVER_PORTS.items():
        if int(env.get(key, default)) == port:
            env[key] = str(_free_port())
            _say(f"{key} moved to {env[key]} (it was the API port)")
    return env


def _stop(standalone: subprocess.Popen, signals: list[int]) -> None:
    """Ask once (SIGINT, up to GRACE_SECONDS; a second Ctrl+C skips the wait), then kill every
    process left in its session."""
    if signals and standalone.poll() is None:
        _say(f"stopping (up to {GRACE_SECONDS} s; Ctrl+C again to kill at once)")
        standalone.send_signal(signal.SIGINT)
        deadline = time.monotonic() + GRACE_SECONDS
        while time.monotonic() < deadline and len(signals) < 2:
            if standalone.poll() is not None and not session_processes(standalone.pid):
                break
            time.sleep(0.2)
    leftovers = session_processes(standalone.pid)
    deadline = time.monotonic() + 10
    while (alive := session_processes(standalone.pid)) and time.monotonic() < deadline:
        for pid in alive:  # again until none is left: a dying parent may still fork
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    standalone.wait()
    if leftovers:
        _say(f"killed {len(leftovers)} process(es) that did not stop: {leftovers}")


def main() -> int:
    port = int(os.environ.get("AIRFLOW__API__PORT", "8080"))
    if _port_taken(port):
        _say(f"port {port} is in use; pick another one, e.g. make airflow AIRFLOW_PORT=8091")
        return 1
    env = _environment(port)
    signals: list[int] = []

    def on_signal(signum, frame):
        signals.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    standalone = subprocess.Popen(  # noqa: S603 - our own venv's airflow
        [airflow, "standalone"], env=env, stdin=subprocess.DEVNULL, start_new_session=True
    )
    ready = False
    while standalone.poll() is None and not signals:
        if not ready and _answers(port):
            ready = True
            _say(f"Airflow UI and API at http://localhost:{port}; Ctrl+C stops all of it")
        time.sleep(0.2)
    _stop(standalone, signals)
    _say("stopped")
    return 0 if signals else standalone.returncode


if __name__ == "__main__":
    sys.exit(main())
