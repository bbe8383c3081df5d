import struct

import numpy as np
import pandas as pd

from synbench.board.page import board_html, plot_model_curves, write_reports
from synbench.method.score import THRESHOLD_GRID


def _png_size(path):
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_curve_plot_is_a_real_png(tmp_path):
    curves = pd.concat(
        pd.DataFrame(
            {
                "eps": e,
                "accuracy_threshold": THRESHOLD_GRID,
                "empirical": np.linspace(1, 0, 100) * (1 - e),
                "reference": np.linspace(1.2, 0, 100),
            }
        )
        for e in (0.0, 0.2)
    )
    path = plot_model_curves(curves, "identity:3x4x4 [tiny]", tmp_path / "plot.png")
    width, height = _png_size(path)
    assert (width, height) == (660, 440) and path.stat().st_size > 10_000


def test_reports_for_a_real_board(tmp_path):
    from test_audit import _benchmark

    from synbench.board.read import read_board
    from synbench.core.spec import BenchmarkSpec
    from synbench.store.roots import open_root

    root = open_root(tmp_path / "root")
    spec = BenchmarkSpec(name="tiny", scales=(0.5, 1.5, 2.5), n_train=64, n_test=64, eps=(0.0, 0.2), block_size=32)
    _benchmark(root, spec, "identity:3x4x4")
    _benchmark(root, spec, "noise:3x4x4")
    images, page = write_reports(root, read_board(root))
    assert len(images) == 2 and all(_png_size(p)[0] == 660 for p in images)
    html = page.read_text()
    assert html.count("data:image/png;base64,") == 2 and html.count("<tr") >= 1 + 2 + 1 + 16
    assert "identity:3x4x4" in html and "noise:3x4x4" in html and "<script>" in html


def test_empty_board_page():
    html = board_html(pd.DataFrame(), {})
    assert "No rows yet." in html and "No plots." in html


def test_agreement_labels_of_clustered_points_keep_apart_and_lone_ones_stay_put():
    from synbench.board.plots import _label_heights

    x = np.array([1.0, 1.01, 1.02, 0.99, 0.0, 0.3])
    y = np.array([0.99, 0.985, 0.98, 0.97, 0.11, 0.79])
    heights = np.array(_label_heights(x, y, span=1.02))
    cluster = np.sort(heights[:4])
    assert (np.diff(cluster) >= 0.035 - 1e-12).all() and heights[0] == y[0]
    assert heights[4] == y[4] and heights[5] == y[5]


def test_agreement_plot_of_no_powered_model_is_an_empty_scatter():
    """`agree` on a board whose every model is underpowered (docs/guide/models.md's signal encoder on a small
    spec) plots no point; it crashed on the empty x range."""
    from synbench.board.plots import plot_agreement

    values = pd.DataFrame(columns=["model", "value", "accuracy", "accuracy_low", "accuracy_high"], dtype=float)
    stat = pd.Series({"kendall_tau": np.nan, "kendall_p": np.nan, "spearman_rho": np.nan, "spearman_p": np.nan})
    png = plot_agreement(values, stat, "signals.npz", "score_dm@0.7")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000
