"""Prefect settings for the embedded default; call before prefect is imported."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from synbench_flows.reaper import SESSION_ENV

from synbench.store.roots import is_remote


def configure_prefect(root: Path, verbose: bool = False) -> None:
    """Keep Prefect offline and quiet, its results under the root and its database private to this process.

    The store (not Prefect's database) is the source of truth and the cache records live in result
    storage, so each CLI process gets a throw-away ``PREFECT_HOME``: parallel runs never race on
    one SQLite file. Variables the user already set win, so a shared server (PREFECT_API_URL) still works.
    """
    home = os.environ.get("PREFECT_HOME") or tempfile.mkdtemp(prefix="synbench-prefect-")
    if home != os.environ.get("PREFECT_HOME"):
        atexit.register(shutil.rmtree, home, True)
        os.environ["PREFECT_HOME"] = home
    # cache records beside the artifacts; an object-store root keeps them in this process's home
    results = Path(home) / "results" if is_remote(root) else root / ".prefect" / "results"
    results.mkdir(parents=True, exist_ok=True)
    defaults = {
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(results),
        "PREFECT_LOGGING_LEVEL": "INFO" if verbose else "WARNING",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",  # no client telemetry either: SynBench runs offline
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        # several CLI processes starting their ephemeral servers at once on 2 cores need more than 20 s
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    }
    if not verbose:
        # A failed task or flow logs its traceback; the CLI prints our errors once, as one line.
        defaults["PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL"] = "CRITICAL"
        defaults["PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL"] = "CRITICAL"
    for name, value in defaults.items():
        os.environ.setdefault(name, value)


def stop_server_with_this_process() -> None:
    """Start a small reaper that stops Prefect's ephemeral server when this process dies, even on kill -9."""
    if SESSION_ENV in os.environ or not Path("/proc").is_dir():
        return
    session = uuid.uuid4().hex
    os.environ[SESSION_ENV] = session  # inherited by the server Prefect starts next
    subprocess.Popen(
        [sys.executable, "-m", "synbench_flows.reaper", str(os.getpid()), session],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
