"""SIGTERM ends a running command at once with one line; finished work is kept (each write is atomic)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["stop_on_sigterm"]

_SIGNAL_SOCKETS: list = []
_TERMINATED = "synbench: terminated (SIGTERM); finished work is kept: rerun the same command to resume."


def stop_on_sigterm() -> None:
    """SIGTERM ends the command within a moment, exit 143 with one line, whatever handler Prefect installs.

    Python writes each signal's number to the wakeup socket from its C handler, whichever Python handler
    is set (Prefect's own raises in the main thread, which then waits for the running tasks), so a
    watcher thread sees it at once. Stored work survives a hard stop: each chunk, table and part is
    written atomically and the next run resumes a partial feature group.
    """
    import shutil
    import signal
    import socket
    import tempfile
    import threading

    if threading.current_thread() is not threading.main_thread():  # signals belong to the main thread
        return
    reader, writer = socket.socketpair()
    _SIGNAL_SOCKETS[:] = [reader, writer]  # kept open for the life of the process
    writer.setblocking(False)
    signal.signal(signal.SIGTERM, lambda *_: None)  # a Python-level handler: Python then writes to the socket
    signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)

    def watch() -> None:
        received = b""
        while int(signal.SIGTERM) not in received:
            received = reader.recv(64)
            if not received:  # the socket closed: the process is ending anyway
                return
        print(_TERMINATED, file=sys.stderr, flush=True)
        home = os.environ.get("PREFECT_HOME", "")
        if Path(home).name.startswith("synbench-prefect-") and Path(home).parent == Path(tempfile.gettempdir()):
            shutil.rmtree(home, ignore_errors=True)  # this process's own Prefect home (its atexit will not run)
        os._exit(128 + signal.SIGTERM)

    threading.Thread(target=watch, name="synbench-sigterm", daemon=True).start()
