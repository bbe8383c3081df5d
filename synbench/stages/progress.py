"""Progress of long commands as plain lines, for a log file or a pipe: each model's stages, and its extraction.

A terminal gets a progress bar instead (``commands``); these lines go where no one watches a bar, so
they say when something started, how far it is, and when it ended.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["PlainProgress", "stage"]

_PRINT_LOCK = threading.Lock()  # module-level: a reporter is passed as a task parameter and may be copied


class PlainProgress:
    """Lines on stderr: a stage's start and end (``stage``), and extraction blocks as a callback ``(model, done,
    total)`` every ``step`` of the blocks or every ``every_s`` seconds, whichever comes first."""

    def __init__(self, step: float = 0.1, every_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.step, self.every_s, self.clock = step, every_s, clock
        self.shown: dict[str, tuple[float, float]] = {}  # model -> (fraction, time) last shown
        self.started: dict[tuple[str, str], float] = {}

    def __call__(self, model: str, done: int, total: int) -> None:
        now, fraction = self.clock(), done / total if total else 1.0
        last = self.shown.get(model)
        if last is not None:
            shown_fraction, shown_at = last
            due = fraction >= 1 or fraction - shown_fraction >= self.step - 1e-9 or now - shown_at >= self.every_s
            if shown_fraction >= 1 or not due:
                return
        self.shown[model] = (fraction, now)
        self.write(f"{model}: extract {done}/{total} blocks ({fraction:.0%})")

    def stage(self, model: str, name: str, event: str) -> None:
        """``event``: started, done or failed."""
        if event == "started":
            self.started[(model, name)] = self.clock()
            self.write(f"{model}: {name} started")
            return
        seconds = self.clock() - self.started.pop((model, name), self.clock())
        self.write(f"{model}: {name} {'done in' if event == 'done' else 'failed after'} {seconds:.1f} s")

    @staticmethod
    def write(text: str) -> None:
        with _PRINT_LOCK:
            print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@contextmanager
def stage(progress: object, model: str, name: str) -> Iterator[None]:
    """Tell a reporter with a ``stage`` method (``PlainProgress``) that a stage starts and ends; others hear nothing."""
    report = getattr(progress, "stage", None) or (lambda *_: None)
    report(model, name, "started")
    try:
        yield
    except BaseException:
        report(model, name, "failed")
        raise
    report(model, name, "done")
