"""Pictures: curve plots with their interval band, score-vs-step series, score-vs-accuracy scatter (PNG bytes)."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..method.intervals import interval  # noqa: E402
from ..method.score import synbench_score  # noqa: E402
from ..store.roots import atomic_write_bytes  # noqa: E402

__all__ = ["plot_model_curves", "plot_series", "plot_agreement"]


def _png(fig) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def plot_model_curves(
    curves: pd.DataFrame,
    title: str,
    path: Path | None = None,
    threshold: float = 0.6,
    replicates: dict[float, np.ndarray] | None = None,
):
    """Empirical curve per eps against the reference curve, as a PNG; the legend gives each eps's score.

    ``replicates`` (eps -> half-sample curves) draws a 95% band around the best eps's curve.
    """
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    first = curves[curves["eps"] == curves["eps"].min()]
    ax.plot(first["accuracy_threshold"], first["reference"], color="black", lw=2.5, label="reference (Bayes, raw data)")
    colours = plt.cm.viridis_r(
        [0.15 + 0.7 * i / max(1, curves["eps"].nunique() - 1) for i in range(curves["eps"].nunique())]
    )
    scores = {  # each eps against its own reference (they differ for a natural spec, METHOD.md 2)
        eps: synbench_score(part["empirical"].to_numpy(), part["reference"].to_numpy(), threshold)
        for eps, part in curves.groupby("eps")
    }
    best = max(scores, key=lambda e: (scores[e], -e))
    for colour, (eps, part) in zip(colours, curves.groupby("eps"), strict=True):
        label = f"eps={eps:g}: score {scores[eps]:.3f} at t={threshold:g}" + (" (best eps)" if eps == best else "")
        ax.plot(part["accuracy_threshold"], part["empirical"], color=colour, lw=2 if eps == best else 1.2, label=label)
        if eps == best and not np.array_equal(part["reference"], first["reference"]):
            shown = f"reference, eps={eps:g}"
            ax.plot(part["accuracy_threshold"], part["reference"], color="black", lw=1, ls=":", label=shown)
        if eps == best and "oracle" in part:  # what a lossless representation of this rank reaches (METHOD.md 7)
            ax.plot(
                part["accuracy_threshold"], part["oracle"], color=colour, lw=1.2, ls="--", label="oracle (lossless)"
            )
        if replicates is not None and eps == best and eps in replicates:
            bands = [interval(v, column) for v, column in zip(part["empirical"], replicates[eps].T, strict=True)]
            low, high = zip(*bands, strict=True)
            ax.fill_between(part["accuracy_threshold"], low, high, color=colour, alpha=0.25, lw=0, label="95% band")
    ax.set(xlabel="accuracy threshold a", ylabel="expected scaled bound E(a)", xlim=(0.6, 1.0))
    ax.set_title("\n".join(textwrap.wrap(title, 60, break_long_words=True)[:3]), fontsize=9)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    png = _png(fig)
    if path is None:
        return png
    atomic_write_bytes(path, png)
    return path


def plot_series(series: pd.DataFrame, title: str, kind: str = "score") -> bytes:
    """``kind`` (score or score_dm; best eps) with its 95% interval against the training step or the layer's depth,
    one line per threshold.

    ``series`` has columns kind, step, threshold, ``kind``, ``kind``_low, ``kind``_high (series.series_records).
    """
    kind = kind if kind in series and series[kind].notna().any() else "score"
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=110)
    for threshold, rows in series.groupby("threshold"):
        rows = rows.sort_values("step")
        line = ax.plot(rows["step"], rows[kind], marker="o", ms=4, label=f"t={threshold:g}")[0]
        if rows[f"{kind}_high"].notna().any():
            ax.fill_between(
                rows["step"], rows[f"{kind}_low"], rows[f"{kind}_high"], color=line.get_color(), alpha=0.2, lw=0
            )
    layers = series["kind"].iloc[0] == "layers"
    xlabel = "depth: feature_info stage (last: the head)" if layers else "step (from the checkpoint file name)"
    ax.set(xlabel=xlabel, ylabel=f"{kind} (best eps), 95% band")
    if layers:
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title("\n".join(textwrap.wrap(title, 70, break_long_words=True)[:3]), fontsize=9)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(fig)


def plot_agreement(values: pd.DataFrame, stat: pd.Series, data: str, key: str) -> bytes:
    """Scatter of a rank key's value against real linear-probe accuracy, one labelled point per model.

    ``values``: columns model, value, accuracy, accuracy_low, accuracy_high (agree.key_values); ``stat``:
    that key's row of the agreement statistics.
    """
    fig, ax = plt.subplots(figsize=(6.5, 4.5), dpi=110)
    # an interval that ends at 0% or 100% can round past the estimate: error bars are never negative
    below = (values["accuracy"] - values["accuracy_low"]).clip(lower=0)
    above = (values["accuracy_high"] - values["accuracy"]).clip(lower=0)
    ax.errorbar(values["value"], values["accuracy"], yerr=[below, above], fmt="o", color="tab:blue", capsize=3)
    x, y = values["value"].to_numpy(float), values["accuracy"].to_numpy(float)
    span = max(float(np.ptp(x)) if len(x) else 0.0, 1e-9)  # no powered model: an empty scatter
    for (_, row), height in zip(values.iterrows(), _label_heights(x, y, span), strict=True):
        first = row["model"].split(", ")[0]
        label = Path(first.rsplit("@", 1)[1]).stem if "@" in first else first  # a checkpoint by its file name
        moved = abs(height - row["accuracy"]) > 1e-9
        line = {"arrowstyle": "-", "lw": 0.4, "color": "0.6"} if moved else None
        where = (row["value"] + 0.015 * span, height)
        ax.annotate(label, (row["value"], row["accuracy"]), where, fontsize=7, va="center", arrowprops=line)
    title = f"{data}: {_agreement_title(stat)}, {len(values)} powered models"
    ax.set(xlabel=f"{key} (best eps)", ylabel="linear-probe accuracy (k-fold, 95% CI)")
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def _agreement_title(stat: pd.Series) -> str:
    """tau and rho with their p-values and, where the table has them, their 95% intervals; else why there are none."""
    if pd.isna(stat["kendall_tau"]):
        return str(stat.get("note") or "no ranking")

    def interval(name: str) -> str:
        low = stat.get(f"{name}_low", np.nan)
        return "" if pd.isna(low) else f" [{low:.2f}, {stat[f'{name}_high']:.2f}]"

    return (
        f"Kendall tau {stat['kendall_tau']:.2f}{interval('kendall_tau')} (p {stat['kendall_p']:.3f}), "
        f"Spearman rho {stat['spearman_rho']:.2f}{interval('spearman_rho')} (p {stat['spearman_p']:.3f})"
    )


def _label_heights(x: np.ndarray, y: np.ndarray, span: float, gap: float = 0.035) -> list[float]:
    """A height per point label, top down, so that labels of points close in x stay ``gap`` apart in y."""
    heights = {}
    for i in np.argsort(-y, kind="stable"):
        height = y[i]
        near = [h for j, h in heights.items() if abs(x[j] - x[i]) < 0.2 * span]
        while any(abs(height - h) < gap for h in near):
            height = min(h for h in near if abs(height - h) < gap) - gap
        heights[i] = height
    return [heights[i] for i in range(len(y))]
