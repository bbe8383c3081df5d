"""Stops the Prefect server a CLI process started once that process is gone, even after kill -9.

Started by the CLI as ``python -m synbench_flows.reaper PID SESSION`` in its own session; every
process whose environment carries ``SYNBENCH_CLI_SESSION=SESSION`` (Prefect's ephemeral server
inherits it) is terminated when PID no longer runs. Imports nothing heavy: it must start fast.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

SESSION_ENV = "SYNBENCH_CLI_SESSION"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z")  # a zombie is gone


def session_processes(session: str) -> list[int]:
    """Pids (other than this one) whose environment names the session."""
    needle = f"{SESSION_ENV}={session}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def reap(parent: int, session: str, poll_s: float = 0.5) -> None:
    while _alive(parent):
        time.sleep(poll_s)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in session_processes(session):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(1.0)


if __name__ == "__main__":
    reap(int(sys.argv[1]), sys.argv[2])
