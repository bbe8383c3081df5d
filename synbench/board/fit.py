"""Tables sized to a screen: a few columns by default, every column (``wide``) or the ones asked for
(``columns``), within a width (a terminal's, 100 when piped): long names are cut first, then the columns
furthest right are left out, and the table says which.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import pandas as pd

from ..core.errors import SynBenchError
from .names import short_names
from .ranking import DEFAULT_RANK_KEY, RankKey
from .tables import summary_table, table_notes, usable_key

__all__ = ["PIPED_WIDTH", "pick_columns", "fit_table", "wrap_lines", "format_leaderboard"]

PIPED_WIDTH = 100  # characters per line when the output is not a terminal
_MIN_TEXT = 16  # a cut name keeps at least this many characters
_WIDE_ONLY_NOT = ("r/n",)  # compact columns that the wide table replaces with its own (power)


def pick_columns(
    frame: pd.DataFrame,
    compact: Sequence[str],
    wide: bool = False,
    columns: Sequence[str] | None = None,
    others: Sequence[pd.DataFrame] = (),
) -> pd.DataFrame:
    """``frame`` with the compact columns it has, all of them (``wide``), or ``columns`` in the order given.

    A requested name matches a column exactly or by its last word (``t=0.6`` for ``score_dm t=0.6``), either case.
    With ``others`` (tables printed together), a name that only they hold is skipped here.

    Raises:
        SynBenchError: a requested name matches no column of any table (the message lists the valid ones).
    """
    if columns:
        every = [column for table in (frame, *others) for column in table.columns]
        for name in columns:
            _column(every, name)  # known somewhere, or one line listing the valid names
        return frame[[found for name in columns if (found := _column(frame.columns, name, missing_ok=True))]]
    if wide:
        return frame
    return frame[[column for column in compact if column in frame.columns]]


def _column(available: Sequence[str], name: str, missing_ok: bool = False) -> str | None:
    wanted = name.strip().lower()
    for column in available:
        if wanted in (str(column).lower(), str(column).lower().rsplit(" ", 1)[-1]):
            return column
    if missing_ok:
        return None
    listed = ", ".join(dict.fromkeys(str(c) for c in available))
    raise SynBenchError(f"unknown column {name!r}; use --columns with names from: {listed}.")


def _cut(value: object, size: int) -> object:
    """A string longer than ``size`` cut in its middle (``…``), keeping both ends: a name's start and its
    file or digest."""
    if not isinstance(value, str) or len(value) <= size:
        return value
    head = (size - 1) // 2
    return value[:head] + "…" + value[len(value) - (size - 1 - head) :]


def _render(frame: pd.DataFrame, floatfmt: str) -> str:
    """A boxed table; cells that are text stay as written (``0.25`` is not reformatted as ``0.2500``), and
    columns of numbers, written or not, are aligned right."""
    texts = [i for i, dtype in enumerate(frame.dtypes) if not pd.api.types.is_numeric_dtype(dtype)]
    align = ["right" if i not in texts or _numbers(frame.iloc[:, i]) else "left" for i in range(frame.shape[1])]
    return frame.to_markdown(
        index=False, tablefmt="simple_outline", floatfmt=floatfmt, disable_numparse=texts, colalign=align
    )


def _numbers(values: pd.Series) -> bool:
    written = [str(v) for v in values if str(v) not in ("—", "", "nan", "None")]
    return bool(written) and all(text.replace(".", "", 1).lstrip("+-").isdigit() for text in written)


def _width(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def fit_table(frame: pd.DataFrame, width: int | None, shrink: Sequence[str] = ("model",), floatfmt: str = ".4f") -> str:
    """The table as text no wider than ``width`` (None: as wide as it is): the ``shrink`` columns' long values
    are cut (``…``) down to a minimum, then columns are left out from the right and listed under the table."""
    text = _render(frame, floatfmt)
    if width is None or _width(text) <= width:
        return text
    for column in (c for c in shrink if c in frame.columns):
        longest = int(frame[column].astype(str).str.len().max())
        size = max(_MIN_TEXT, longest - (_width(text) - width))
        frame = frame.assign(**{column: [_cut(v, size) for v in frame[column]]})
        text = _render(frame, floatfmt)
    left_out = []
    while _width(text) > width and len(frame.columns) > 2:
        left_out.insert(0, str(frame.columns[-1]))
        frame = frame.iloc[:, :-1]
        text = _render(frame, floatfmt)
    if left_out:
        text += "\n" + wrap_lines(f"Left out to fit {width} columns: {', '.join(left_out)} (--wide shows them).", width)
    return text


def wrap_lines(text: str, width: int | None) -> str:
    """Each line wrapped to ``width`` (continued lines indented); None leaves them as they are."""
    if width is None:
        return text
    return "\n".join(
        "\n".join(textwrap.wrap(line, width, subsequent_indent="  ", break_on_hyphens=False)) or line
        for line in text.splitlines()
    )


def format_leaderboard(
    board: pd.DataFrame,
    rank_key: RankKey = DEFAULT_RANK_KEY,
    width: int | None = PIPED_WIDTH,
    wide: bool = False,
    columns: Sequence[str] | None = None,
) -> str:
    """The board for people: rank, band, short name, p, the rank key with its interval and r/n by default,
    sized to ``width``; ``wide``: every column (one per threshold, eps, power), unsized; then how to read it."""
    if board.empty:
        return "The leaderboard is empty: run `synbench run MODEL_REF` or `synbench demo` first."
    rank_key = usable_key(board, rank_key)
    table = summary_table(board, rank_key, compact=True)
    compact = ["rank", "band", "model", "p", str(rank_key), "r/n"]
    if table["spec"].nunique() > 1:
        compact.insert(0, "spec")
    if wide and not columns:
        table = table.drop(columns=[str(rank_key), *_WIDE_ONLY_NOT])
        return f"{_render(table, '.4f')}\n{table_notes(table, rank_key)}\n"
    shown = pick_columns(table, compact, columns=columns)
    if "model" in shown:
        shown = shown.assign(model=short_names(list(shown["model"])))
    notes = table_notes(shown, rank_key, compact=str(rank_key) in shown.columns)
    return f"{fit_table(shown, width)}\n{wrap_lines(notes, width)}\n"
