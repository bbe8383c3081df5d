"""What the commands print about a board: tables sized to the terminal, the outcome of a batch."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..core.errors import EXIT_FAILED, EXIT_OK

__all__ = ["screen_width", "print_board", "report_batch"]


def screen_width() -> int:
    """Characters per line of the terminal (COLUMNS wins); 100 when the output is piped or written to a file."""
    from ..board.fit import PIPED_WIDTH

    return shutil.get_terminal_size((PIPED_WIDTH, 24)).columns


def print_board(root: Path, spec_hash: str) -> None:
    """The board of one spec, compact and sized to the terminal."""
    from ..board.fit import format_leaderboard
    from ..board.read import read_board

    print(format_leaderboard(read_board(root, spec=spec_hash), width=screen_width()))


def report_batch(outcomes: list[dict], root: Path, spec_hash: str) -> int:
    """Per-model outcome table (short names, sized to the terminal) with each failure's error in full under it,
    then the board; exit 1 when any model failed."""
    import pandas as pd

    from ..board.fit import fit_table, wrap_lines
    from ..board.names import display_name, short_names

    width = screen_width()
    table = pd.DataFrame(
        [[o["status"], o.get("written_chunks", ""), o.get("skipped_chunks", "")] for o in outcomes],
        columns=["status", "chunks written", "chunks reused"],
    )
    table.insert(0, "model", short_names([display_name(o["model"]) for o in outcomes]))
    print(fit_table(table, width))
    for outcome in (o for o in outcomes if "error" in o):
        print(wrap_lines(f"{outcome['model']} failed: {outcome['error']}", width))
    print_board(root, spec_hash)
    return EXIT_OK if all(o["status"] == "ok" for o in outcomes) else EXIT_FAILED
