"""Pictures and pages: curve plots (PNG) and a self-contained, sortable HTML leaderboard."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .store import atomic_write_bytes, safe_path  # noqa: E402

__all__ = ["plot_model_curves", "write_reports", "board_html"]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80] or "model"


def plot_model_curves(curves: pd.DataFrame, title: str, path: Path) -> Path:
    """Empirical curve per eps against the reference curve, as a PNG."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    first = curves[curves["eps"] == curves["eps"].min()]
    ax.plot(first["accuracy_threshold"], first["reference"], color="black", lw=2.5, label="reference (Bayes, raw data)")
    colours = plt.cm.viridis_r(
        [0.15 + 0.7 * i / max(1, curves["eps"].nunique() - 1) for i in range(curves["eps"].nunique())]
    )
    for colour, (eps, part) in zip(colours, curves.groupby("eps"), strict=True):
        ax.plot(
            part["accuracy_threshold"], part["empirical"], color=colour, lw=1.5, label=f"representation, eps={eps:g}"
        )
    short = title if len(title) <= 60 else f"{title[:28]}...{title[-29:]}"
    ax.set(xlabel="accuracy threshold a", ylabel="expected scaled bound E(a)", title=short, xlim=(0.6, 1.0))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_reports(root: Path, board: pd.DataFrame) -> tuple[list[Path], Path]:
    """One PNG per (spec, model) under ``reports/`` and ``reports/leaderboard.html``."""
    images: dict[str, Path] = {}
    for (spec_name, model, curves_file), _ in board.groupby(["spec_name", "model", "curves_file"]):
        curves = pd.read_parquet(safe_path(root, "curves", curves_file))
        png = safe_path(root, "reports", f"{_slug(spec_name)}--{_slug(model)}.png")
        images[f"{model} ({spec_name})"] = plot_model_curves(curves, f"{model}  [{spec_name}]", png)
    page = safe_path(root, "reports", "leaderboard.html")
    atomic_write_bytes(page, board_html(board, images).encode())
    return list(images.values()), page


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#f0f0f0;cursor:pointer;user-select:none}
td:first-child,td:nth-child(2),th:first-child{text-align:left}
tr.best td{background:#eef7ee}
.plots{display:flex;flex-wrap:wrap;gap:1em}
.plots figure{margin:0}
.plots figcaption{font-size:12px;text-align:center}
.note{color:#555;font-size:13px}
"""

_SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function(th, col){
  th.addEventListener('click', function(){
    var body = th.closest('table').tBodies[0], rows = Array.from(body.rows);
    var dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir === 1 ? 'asc' : 'desc';
    rows.sort(function(a, b){
      var x = a.cells[col].textContent, y = b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      return (isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny) * dir;
    });
    rows.forEach(function(r){ body.appendChild(r); });
  });
});
"""


def board_html(board: pd.DataFrame, images: dict[str, Path]) -> str:
    """A single HTML file with no network assets: summary, sortable rows, embedded plots."""
    from .leaderboard import summary_table

    columns = [
        "model",
        "spec_name",
        "eps",
        "threshold",
        "score",
        "best_eps",
        "model_fingerprint",
        "spec_hash",
        "device",
        "dtype",
        "created_at",
    ]
    columns = [c for c in columns if c in board.columns]
    rows = []
    for _, row in board.iterrows():
        cells = "".join(f"<td>{html.escape(f'{row[c]:.4f}' if c == 'score' else str(row[c]))}</td>" for c in columns)
        rows.append(f'<tr class="{"best" if row.get("best_eps") else ""}">{cells}</tr>')
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    summary = (
        summary_table(board).to_html(index=False, classes="sortable", border=0)
        if not board.empty
        else "<p>No rows yet.</p>"
    )
    figures = "".join(
        f'<figure><img alt="{html.escape(name)}" width="520" src="data:image/png;base64,'
        f'{base64.b64encode(path.read_bytes()).decode()}"><figcaption>{html.escape(name)}</figcaption></figure>'
        for name, path in images.items()
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>SynBench leaderboard</title>
<style>{_STYLE}</style></head><body>
<h1>SynBench leaderboard</h1>
<p class="note">SynBench-Score: area under the encoder's robustness-accuracy curve on synthetic Gaussian tasks,
relative to the Bayes-optimal curve on the raw inputs (1.0 = no information lost). Click a column to sort.</p>
<h2>Summary (best eps per threshold)</h2>{summary}
<h2>Curves</h2><div class="plots">{figures or "<p>No plots.</p>"}</div>
<h2>All rows</h2><table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>
<script>{_SORT_SCRIPT}</script></body></html>"""
