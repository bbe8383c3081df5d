"""Prefect settings for the embedded default; call before prefect is imported."""

from __future__ import annotations

import os
from pathlib import Path


def configure_prefect(root: Path, verbose: bool = False) -> None:
    """Keep Prefect's home, results and database under the root, offline and quiet.

    Variables the user already set win, so a shared server (PREFECT_API_URL) still works.
    """
    home = root / ".prefect"
    home.mkdir(parents=True, exist_ok=True)
    defaults = {
        "PREFECT_HOME": str(home),
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(home / "results"),
        "PREFECT_LOGGING_LEVEL": "INFO" if verbose else "WARNING",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",  # no client telemetry either: SynBench runs offline
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    }
    if not verbose:
        # A failed task or flow logs its traceback; the CLI prints our errors once, as one line.
        defaults["PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL"] = "CRITICAL"
        defaults["PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL"] = "CRITICAL"
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
