"""Commands that read a stored root: leaderboard, compare, audit, agree; ``main.py`` maps their errors."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..core.errors import EXIT_FAILED, EXIT_OK, SynBenchError
from .output import screen_width


def _write_output(text: str, output: str | None) -> None:
    if output is None:
        print(text)
        return
    from ..store.roots import atomic_write_bytes

    atomic_write_bytes(Path(output), text.encode())
    print(f"wrote {output}")


def read_ranked_board(root, args: argparse.Namespace):
    """The board the command line asks for, holding the rank key's threshold; returns (board, rank key)."""
    from ..board.ranking import parse_rank_key
    from ..board.read import read_board

    rank_key = parse_rank_key(getattr(args, "rank_by", None))
    shape = getattr(args, "input_shape", None)
    board = read_board(root, spec=args.spec, eps=args.eps, threshold=args.threshold, input_shape=shape)
    wanted = rank_key.threshold
    if wanted is not None and not board.empty and not (board["threshold"] - wanted).abs().lt(1e-9).any():
        thresholds = sorted({*board["threshold"].round(9), wanted})
        board = read_board(root, spec=args.spec, eps=args.eps, threshold=thresholds, warn=False, input_shape=shape)
    return board, rank_key


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from ..board.fit import format_leaderboard
    from ..board.tables import format_board, format_history
    from ..store.roots import open_root

    root = open_root(args.root, create=False)
    if args.history:
        _write_output(format_history(root, args.format, args.eps, args.threshold), args.output)
        return EXIT_OK
    board, rank_key = read_ranked_board(root, args)
    if args.format == "html":
        from ..board.page import render_page

        _write_output(render_page(root, board, rank_key, stored_agreement_html(root, board, rank_key)), args.output)
    elif args.format == "table":
        width = None if args.output else screen_width()
        _write_output(format_leaderboard(board, rank_key, width, args.wide, args.columns), args.output)
    else:
        _write_output(format_board(board, args.format, summary=args.summary, rank_key=rank_key), args.output)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from ..board.compare import compare_models
    from ..board.read import read_board
    from ..store.roots import open_root

    board = read_board(open_root(args.root, create=False), spec=args.spec, eps=args.eps, threshold=args.threshold)
    if board.empty:
        raise SynBenchError("the leaderboard is empty: run both models with `synbench run` first.")
    table = compare_models(board, args.model_a, args.model_b)
    if args.format == "json":
        print(table.to_json(orient="records", indent=1))
        return EXIT_OK
    from ..board.fit import fit_table, pick_columns, wrap_lines

    width = screen_width()
    print(wrap_lines(f"A = {table['model_a'].iloc[0]}\nB = {table['model_b'].iloc[0]}", width))
    print(f"spec {table['spec_name'].iloc[0]} ({table['spec_hash'].iloc[0]})")
    shown = pick_columns(_compare_frame(table, args.wide), _COMPARE_COMPACT, args.wide, args.columns)
    print(fit_table(shown, None if args.wide else width, shrink=("verdict",)))
    print(wrap_lines(_COMPARE_NOTE, width))
    return EXIT_OK


_COMPARE_COMPACT = ("kind", "t", "A", "B", "A - B [95%]", "verdict")
_COMPARE_NOTE = (
    "A - B: A's score minus B's at accuracy threshold t, each model at its best eps, with the paired 95% interval "
    "(same inputs, same half-samples): 'A higher' or 'B higher' when it excludes 0. --wide: each eps and the "
    "number of paired half-samples."
)


def _compare_frame(table, wide: bool):
    """The comparison's columns for people: the wide ones, the compact ones, a short verdict unless ``wide``."""
    shown = table.drop(columns=["spec_name", "spec_hash", "model_a", "model_b"]).rename(columns={"difference": "A - B"})
    interval = [
        f"{d:+.4f}" + ("" if low != low else f" [{low:+.4f}, {high:+.4f}]")
        for d, low, high in zip(table["difference"], table["difference_low"], table["difference_high"], strict=True)
    ]
    thresholds = [f"{t:g}" for t in table["threshold"]]
    shown = shown.assign(t=thresholds, A=table["value_a"], B=table["value_b"], **{"A - B [95%]": interval})
    return shown if wide else shown.assign(verdict=[_short_verdict(row) for _, row in table.iterrows()])


def _short_verdict(row) -> str:
    weak = [side for side in ("A", "B") if row[f"underpowered_{side.lower()}"]]
    if weak:
        return f"not comparable: {' and '.join(weak)} underpowered"
    if row["difference"] != row["difference"]:
        return "not a number"
    if row["difference_low"] != row["difference_low"]:
        return "no interval (--ci none)"
    return (
        "A higher" if row["difference_low"] > 0 else "B higher" if row["difference_high"] < 0 else "not distinguishable"
    )


def cmd_audit(args: argparse.Namespace) -> int:
    from ..audit.root import audit_root
    from ..store.roots import open_root

    report = audit_root(open_root(args.root, create=False), repair=args.repair, allow_py=args.allow_py, deep=args.deep)
    for line in report.repaired:
        print(f"repaired: {line}")
    for line in report.problems:
        print(f"PROBLEM: {line}")
    for line in report.notes:
        print(f"note: {line}")
    print(
        f"audit: {report.groups} feature groups, {report.chunks} chunks, {report.parquet_files} Parquet files, "
        f"{report.scores_checked} scores recomputed; {len(report.problems)} problem(s)"
    )
    return EXIT_OK if report.ok else EXIT_FAILED


def _robust_rows(args: argparse.Namespace, root: Path, spec: str | None, rank_key):
    from ..agree.robust_probing import robust_agreement

    options = {"models": getattr(args, "models", None), "device": args.device, "eps": args.robust_eps}
    return robust_agreement(root, args.data, spec=spec, rank_key=rank_key, **options)


def cmd_board(args: argparse.Namespace) -> int:
    from ..board.edit import remove_entry, rename_entry
    from ..store.roots import open_root

    root = open_root(args.root, create=False)
    if args.board_action == "remove":
        print(remove_entry(root, args.model, spec=args.spec))
    else:
        print(rename_entry(root, args.model, args.new_name))
    return EXIT_OK


_PER_SAMPLE = ["correct_counts", "sample_groups"]  # stored for the audit and the bootstrap; too long to print


def _accuracy_note(per_model) -> str:
    first = per_model.iloc[0]
    grouped = f", folds grouped by {first['n_groups']} regions" if first["n_groups"] < first["n_test"] else ""
    return (
        f"Accuracy: {first['n_folds']}-fold x {first['n_repeats']} stratified cross-validation{grouped}; every one of "
        f"the {first['n_test']} samples tested; 95% Wilson interval at the effective sample size. tau and rho: 95% "
        "bootstrap intervals over models and test samples (docs/METHOD.md section 9)."
    )


def agreement_section(args: argparse.Namespace, root: Path, spec: str | None, rank_key=None) -> tuple[str, str, str]:
    """Run the agreement check (and with ``args.robust`` the robust heads); returns its table, its JSON and its
    HTML section. Its Parquet files and scatter PNG are written only once all of it has been computed."""
    from ..agree.agreement import agreement, store_agreement
    from ..agree.robust_probing import robust_table, store_robust
    from ..board.ranking import DEFAULT_RANK_KEY
    from ..store.roots import atomic_write_bytes, safe_path

    rank_key = rank_key or DEFAULT_RANK_KEY
    result = agreement(root, args.data, spec=spec, models=getattr(args, "models", None), device=args.device)
    per_model, stats = result.per_model, result.stats
    models, shown, png, section = _section(per_model, stats, rank_key)
    robust = _robust_rows(args, root, spec, rank_key) if getattr(args, "robust", False) else None
    notes = "".join(f"\nskipped {item['model']}: {item['reason']}." for item in result.skipped)
    table = _agreement_text(models, shown, args, f"\n{_accuracy_note(per_model)}{notes}", rank_key)
    table += f"\n{robust_table(robust)}" if robust is not None else ""
    rows = per_model.drop(columns=[*_PER_SAMPLE, "score_replicates", "score_dm_replicates"], errors="ignore")
    found = {
        "models": json.loads(rows.to_json(orient="records")),
        "agreement": json.loads(stats.to_json(orient="records")),
        "skipped": result.skipped,
    }
    if robust is not None:
        found["robust"] = json.loads(robust.to_json(orient="records"))
    store_agreement(root, result)
    if robust is not None:
        store_robust(root, robust)
    atomic_write_bytes(safe_path(root, "reports", f"agree-{per_model['data_digest'].iloc[0]}.png"), png)
    return table, json.dumps(found, indent=1), section


def _section(per_model, stats, rank_key):
    """The agreement's per-model table, its statistics, the scatter PNG for ``rank_key`` and the page's section."""
    from ..agree.agreement import key_values, model_table, stats_view
    from ..board.page import agreement_html
    from ..board.plots import plot_agreement

    data = str(per_model["data"].iloc[0])
    stat = stats[stats["rank_key"] == str(rank_key)].iloc[0]
    png = plot_agreement(key_values(per_model, rank_key), stat, data, str(rank_key))
    models = model_table(per_model)
    shown = stats_view(stats)
    return models, shown, png, agreement_html(models, shown, png, data)


_AGREE_WIDE_ONLY = ("p (tau)", "p (rho)", "underpowered left out")  # the intervals say more; the count is noted
_AGREE_NOTE = (
    "accuracy: a linear probe's cross-validated accuracy on the real data, with its 95% interval. Kendall tau, "
    "Spearman rho: how well each rank key orders the powered models (at least 3) as that accuracy does, 1 = the "
    "same order, with 95% intervals; 'saturated' where the accuracies cannot rank the models. --wide: every column."
)


def _agreement_text(models, shown, args: argparse.Namespace, notes: str, rank_key) -> str:
    """Both tables fitted to the terminal (``--wide``, ``--columns``), with how to read them; the compact view
    leaves out the other score kind's mean and what the rank key's name says."""
    from ..board.fit import fit_table, pick_columns, wrap_lines

    wide, columns = getattr(args, "wide", False), getattr(args, "columns", None)
    width = None if wide else screen_width()
    if not wide and not columns:
        models = _compact_models(models)
    other_mean = f"{'score' if rank_key.kind == 'score_dm' else 'score_dm'}@mean"
    parts = []
    for frame, other, floatfmt in ((models, shown, ".4f"), (shown, models, ".3f")):
        compact = [c for c in frame.columns if c not in (*_AGREE_WIDE_ONLY, other_mean)]
        picked = pick_columns(frame, compact, wide, columns, others=[other])
        if len(picked.columns):
            parts.append(fit_table(picked, width, floatfmt=floatfmt))
    left_out = int(shown["underpowered left out"].max()) if "underpowered left out" in shown else 0
    note = _AGREE_NOTE + (f" {left_out} underpowered model(s) left out." if left_out else "")
    return "\n".join(parts) + wrap_lines(notes, width) + "\n" + wrap_lines(note, width)


def _compact_models(models):
    """The per-model table for a narrow screen: short names, and an accuracy's interval in its cell."""
    from ..board.names import display_name, short_names

    models = models.assign(model=short_names([display_name(m) for m in models["model"]]))
    if {"accuracy", "accuracy_low", "accuracy_high"} <= set(models.columns):
        cells = [
            f"{a:.4f} [{low:.3f}, {high:.3f}]"
            for a, low, high in zip(models["accuracy"], models["accuracy_low"], models["accuracy_high"], strict=True)
        ]
        at = list(models.columns).index("accuracy")
        models = models.drop(columns=["accuracy", "accuracy_low", "accuracy_high"])
        models.insert(at, "accuracy [95%]", cells)
    return models


def stored_agreement_html(root: Path, board, rank_key) -> str:
    """The page's agreement sections from the tables ``synbench agree`` stored for the board's specs (none run)."""
    from ..store.parquet import read_frame

    if board.empty:
        return ""
    sections = []
    for models_file in sorted((root / "agreement").glob("*-models.parquet"), key=str):
        stats_file = models_file.with_name(models_file.name.replace("-models.parquet", "-stats.parquet"))
        per_model = read_frame(models_file)
        if per_model.empty or per_model["spec_hash"].iloc[0] not in set(board["spec_hash"]) or not stats_file.is_file():
            continue
        stats = read_frame(stats_file)
        if (stats["rank_key"] == str(rank_key)).any():
            sections.append(_section(per_model, stats, rank_key)[3])
    return "".join(sections)


def cmd_agree(args: argparse.Namespace) -> int:
    from ..agree.reruns import check_powered
    from ..board.ranking import parse_rank_key
    from ..models.encoders import ALLOW_PY_ENV
    from ..store.roots import open_root

    root = open_root(args.root, create=False)
    if args.allow_py:
        os.environ[ALLOW_PY_ENV] = "1"
    check_powered(root, args.spec, args.models)
    table, as_json, _ = agreement_section(args, root, args.spec, parse_rank_key(args.rank_by))
    print(as_json if args.format == "json" else table)
    return EXIT_OK
