"""Progress of long commands: a bar per model in a terminal (``BarProgress``), plain lines for a log file or a
pipe (``PlainProgress``). Both name the stage a model is in, from its extraction to its publication.

Plain lines go where no one watches a bar, so they say when something started, how far it is, and when
it ended.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["PlainProgress", "BarProgress", "stage"]

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


class BarProgress:
    """A rich progress bar per model: extraction blocks fill it, and its label names the stage the model is in
    (``model: intervals``), so a long stage after extraction never looks like a finished bar. Show ``bar``."""

    def __init__(self, console=None) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        self.bar = Progress(*columns, console=console)
        self.tasks: dict[str, object] = {}

    def _task(self, model: str):
        if model not in self.tasks:
            self.tasks[model] = self.bar.add_task(f"{model}: load", total=None)
        return self.tasks[model]

    def __call__(self, model: str, done: int, total: int) -> None:
        self.bar.update(self._task(model), completed=done, total=total)

    def stage(self, model: str, name: str, event: str) -> None:
        """``event``: started, done or failed; the label shows the stage running, or how the last one ended."""
        label = name if event == "started" else "done" if event == "done" and name == "publish" else None
        label = label or (f"{name} failed" if event == "failed" else f"{name} done")
        self.bar.update(self._task(model), description=f"{model}: {label}")


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
