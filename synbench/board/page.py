"""Pictures and pages: curve plots (PNG) and a self-contained, sortable HTML leaderboard."""

from __future__ import annotations

import base64
import html
import re

import pandas as pd

from ..core.provenance import code_version, utc_now
from ..stages.probes import load_replicate_curves, named_replicates
from ..store.parquet import read_frame
from ..store.roots import Location, atomic_write_bytes, location, safe_path
from .names import SHORT, display_name, short_names, with_display_names
from .plots import plot_model_curves, plot_series
from .ranking import DEFAULT_RANK_KEY, RankKey
from .series import CHECKPOINTS, LAYERS, series_records, series_table
from .tables import summary_table, table_notes, usable_key

__all__ = [
    "agreement_html",
    "write_reports",
    "render_page",
    "board_html",
    "display_name",
]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80] or "model"


def agreement_html(models: pd.DataFrame, stats: pd.DataFrame, png: bytes, data: str) -> str:
    """The page's section on real linear probing: per-model table (agree.model_table), statistics per rank key."""
    shown = models.assign(model=[display_name(m) for m in models["model"]])
    return (
        f"<h2>Agreement with linear probing on {html.escape(data)}</h2>"
        + _scrolling(stats.to_html(index=False, float_format="%.3f", border=0))
        + f'<img alt="score vs accuracy" width="620" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        + _scrolling(shown.to_html(index=False, classes="sortable", float_format="%.4f", border=0))
    )


def _plots(root: Location, board: pd.DataFrame) -> dict[str, tuple[str, bytes]]:
    """PNG bytes of each (spec, model)'s curves, keyed by caption, with the file name they are saved under."""
    plots = {}
    board = with_display_names(board)
    groups = board.groupby(["spec_name", "spec_hash", "model_fingerprint", "display_name", "curves_file"])
    for (spec_name, spec_hash, fingerprint, shown, curves_file), rows in groups:
        curves = read_frame(safe_path(root, "curves", curves_file))
        name = f"{shown} ({spec_name} {spec_hash[:8]})"
        if name in plots:  # another fingerprint under the same name: its fingerprint tells them apart
            name = f"{shown} {{{fingerprint[:SHORT]}}} ({spec_name} {spec_hash[:8]})"
        replicates = named_replicates(root, rows)
        png = plot_model_curves(curves, name, replicates=load_replicate_curves(replicates) if replicates else None)
        plots[name] = (f"{_slug(spec_name)}-{spec_hash[:8]}--{_slug(shown)}-{fingerprint[:SHORT]}.png", png)
    return plots


_GROUPS = ["kind", "spec_name", "spec_hash", "series"]
_SECTIONS = {  # kind: heading, note
    CHECKPOINTS: ("Checkpoint series", "at each saved step of one training run"),
    LAYERS: ("Layer series", "at each stage of one model (its feature_info, average-pooled), then its head"),
}


def _shown_kind(series_kind: str, rank_kind: str) -> str:
    """A layer series shows score_dm whatever the rank key: a model's stages differ in width, which the paper score
    confounds (METHOD.md section 7); a checkpoint series shows the rank key's kind."""
    return "score_dm" if series_kind == LAYERS else rank_kind


def _series_plots(board: pd.DataFrame, rank_key: RankKey) -> dict[str, tuple[str, bytes]]:
    """Score-against-step (checkpoints) or -depth (layers) PNG of each series on the board, in the rank key's score
    kind, keyed by caption, with its file name."""
    plots, kind = {}, usable_key(board, rank_key).kind
    for (series_kind, spec_name, spec_hash, name), rows in series_records(board).groupby(_GROUPS):
        caption = f"{display_name(name)} ({spec_name} {spec_hash[:8]}): {rows['step'].nunique()} {series_kind}"
        if caption in plots:  # the same file names in another folder: show the whole series name
            caption = f"{name} ({spec_name} {spec_hash[:8]}): {rows['step'].nunique()} {series_kind}"
        png = plot_series(rows, caption, _shown_kind(series_kind, kind))
        plots[caption] = (f"series-{_slug(spec_name)}-{spec_hash[:8]}--{_slug(name)}.png", png)
    return plots


def _series_html(board: pd.DataFrame, plots: dict[str, tuple[str, bytes]], rank_key: RankKey) -> str:
    sections, kind = [], usable_key(board, rank_key).kind
    for series_kind, (heading, where) in _SECTIONS.items():
        figures = {caption: png for caption, (_, png) in plots.items() if caption.endswith(f" {series_kind}")}
        if not figures:
            continue
        tables = "".join(
            f"<h3>{html.escape(display_name(name))} ({html.escape(spec_name)} {spec_hash[:8]})</h3>"
            + _scrolling(
                series_table(rows, _shown_kind(series_kind, kind)).to_html(index=False, classes="sortable", border=0)
            )
            for (_, spec_name, spec_hash, name), rows in series_records(board).groupby(_GROUPS)
            if rows["kind"].iloc[0] == series_kind
        )
        shown = _shown_kind(series_kind, kind)
        why = "the stages differ in width" if series_kind == LAYERS else "the rank key's score"
        note = f"{shown} ({why}) {where} with its 95% interval, best eps per threshold; plots alike."
        sections.append(f"<h2>{heading}</h2><p class='note'>{note}</p>" + _figures(figures) + tables)
    return "".join(sections)


def _scrolling(table_html: str) -> str:
    """A table in a box that scrolls sideways, so a wide table never widens the page past the screen."""
    return f'<div class="wide">{table_html}</div>'


def _breakable(table: pd.DataFrame) -> pd.DataFrame:
    """Summary cells that may wrap only before their eps and between words of the power note, so that the table
    fits a 1280-pixel screen: ``1.0337† ±0.155`` stays on one line, ``(eps 0.2)`` goes under it."""
    keep = {" ±": "\u00a0±", "(eps ": "(eps\u00a0", "r/n ": "r/n\u00a0"}

    def joined(value: object) -> object:
        if not isinstance(value, str):
            return value
        for plain, bound in keep.items():
            value = value.replace(plain, bound)
        return value

    table = table.drop(columns="spec") if table["spec"].nunique() == 1 else table  # the page's header names it
    table = table.assign(model=short_names(list(table["model"])))  # all rows, below, give the whole name
    return table.assign(**{column: table[column].map(joined) for column in table.columns if column != "model"})


def render_page(
    root: str | Location, board: pd.DataFrame, rank_key: RankKey = DEFAULT_RANK_KEY, extra_html: str = ""
) -> str:
    """The board page with its plots embedded (and ``extra_html``, e.g. the stored agreement); writes nothing."""
    images = {name: png for name, (_, png) in _plots(location(root), board).items()}
    series = _series_html(board, _series_plots(board, rank_key), rank_key)
    return board_html(board, images, series + extra_html, rank_key)


def write_reports(
    root: Location, board: pd.DataFrame, extra_html: str = "", rank_key: RankKey = DEFAULT_RANK_KEY
) -> tuple[list, Location]:
    """PNGs under ``reports/`` (curves per (spec, model), one per checkpoint series) and ``leaderboard.html``."""
    plots, series = _plots(root, board), _series_plots(board, rank_key)
    files = []
    for file_name, png in [*plots.values(), *series.values()]:
        files.append(safe_path(root, "reports", file_name))
        atomic_write_bytes(files[-1], png)
    page = safe_path(root, "reports", "leaderboard.html")
    images = {name: png for name, (_, png) in plots.items()}
    html_text = board_html(board, images, _series_html(board, series, rank_key) + extra_html, rank_key)
    atomic_write_bytes(page, html_text.encode())
    return files, page


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
p{max-width:75em}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;overflow-wrap:break-word}
td:first-child,td:nth-child(n+3){white-space:nowrap} td:nth-child(2){min-width:14em;max-width:30em}
th{background:#f0f0f0;cursor:pointer;user-select:none;white-space:nowrap}
th[data-dir=desc]::after{content:" \\25BC"} th[data-dir=asc]::after{content:" \\25B2"}
td,th{text-align:left} td:nth-child(n+3){text-align:right}
tr.best td{background:#eef7ee}
tr.under td{color:#a33}
.plots{display:flex;flex-wrap:wrap;gap:1em}
.plots figure{margin:0}
.plots figcaption{font-size:12px;text-align:center}
.note{color:#555;font-size:13px}
.wide{overflow-x:auto;max-width:100%}
table.summary td,table.summary th{white-space:normal} table.summary td:first-child{overflow-wrap:anywhere}
"""

_SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function(th, col){
  th.addEventListener('click', function(){
    var body = th.closest('table').tBodies[0], rows = Array.from(body.rows);
    // first click: best first (low rank, high score, names A-Z); each further click flips
    var lowFirst = /rank|model|spec|device|dtype|fingerprint|hash/.test(th.textContent);
    var dir = th.dataset.dir ? (th.dataset.dir === 'asc' ? 'desc' : 'asc') : (lowFirst ? 'asc' : 'desc');
    th.closest('tr').querySelectorAll('th').forEach(function(h){ delete h.dataset.dir; });
    th.dataset.dir = dir; var sign = dir === 'asc' ? 1 : -1;
    rows.sort(function(a, b){
      var x = a.cells[col].textContent, y = b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      return (isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny) * sign;
    });
    rows.forEach(function(r){ body.appendChild(r); });
  });
});
"""


def _header(board: pd.DataFrame) -> str:
    pairs = zip(board.get("spec_name", []), board.get("spec_hash", []), strict=True)
    specs = ", ".join(sorted({f"{n} ({h[:12]})" for n, h in pairs}))
    return html.escape(f"Made {utc_now()[:16].replace('T', ' ')} UTC with {code_version()}; spec: {specs or 'none'}.")


def _figures(images: dict[str, bytes]) -> str:
    if not images:
        return ""
    return (
        '<div class="plots">'
        + "".join(
            f'<figure><img alt="{html.escape(name)}" width="520" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode()}"><figcaption>{html.escape(name)}</figcaption></figure>'
            for name, png in images.items()
        )
        + "</div>"
    )


_ROW_COLUMNS = (
    "model spec_name eps threshold score score_low score_high best_eps score_dm score_dm_low score_dm_high best_eps_dm "
    "probe_rank r_over_n underpowered n_train_needed model_fingerprint spec_hash device dtype created_at"
).split()


def _cell(row: pd.Series, column: str) -> str:
    value = row[column]
    if column.startswith("score") or column == "r_over_n":
        return "—" if pd.isna(value) else f"{value:.4f}"
    return str(value)


def board_html(
    board: pd.DataFrame, images: dict[str, bytes], extra_html: str = "", rank_key: RankKey = DEFAULT_RANK_KEY
) -> str:
    """A single HTML file with no network assets: summary, sortable rows, embedded plots."""
    summary = "<p>No rows yet.</p>"
    if not board.empty:
        table, rank_key = summary_table(board, rank_key), usable_key(board, rank_key)
        notes = "".join(f"<p class='note'>{html.escape(line)}</p>" for line in table_notes(table, rank_key).split("\n"))
        summary = _scrolling(_breakable(table).to_html(index=False, classes="sortable summary", border=0)) + notes
        board = with_display_names(board)
        board = board.assign(model=board["display_name"])
    columns = [c for c in _ROW_COLUMNS if c in board.columns]
    rows = []
    for _, row in board.iterrows():
        cells = "".join(f"<td>{html.escape(_cell(row, c))}</td>" for c in columns)
        under = row.get("underpowered")
        style = "under" if pd.notna(under) and bool(under) else "best" if row.get("best_eps") else ""
        rows.append(f'<tr class="{style}">{cells}</tr>')
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    figures = _figures(images)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>SynBench leaderboard</title>
<style>{_STYLE}</style></head><body>
<h1>SynBench leaderboard</h1>
<p class="note">{_header(board)}</p>
<p class="note">SynBench-Score: area under the encoder's robustness-accuracy curve on synthetic Gaussian tasks,
relative to the Bayes-optimal curve on the raw inputs (1.0 = no information lost). Click a column to sort.</p>
<h2>Summary (best eps per threshold), ranked by {html.escape(str(rank_key))}</h2>
<p class="note">score: the paper's SynBench-Score; score_dm: the same area relative to what a lossless representation
of the same rank reaches with the same probe and sample sizes (docs/METHOD.md section 7), so that feature width and
sample size do not rank the models. Intervals: 95%, half-sampling (section 6).</p>{summary}
{extra_html}
<h2>Curves</h2>{figures or "<p>No plots.</p>"}
<h2>All rows</h2><div class="wide"><table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody>
</table></div>
<script>{_SORT_SCRIPT}</script></body></html>"""
