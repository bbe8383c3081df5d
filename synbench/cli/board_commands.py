"""Commands that read a stored root: leaderboard, compare, audit, agree; ``main.py`` maps their errors."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..core.errors import EXIT_FAILED, EXIT_OK, SynBenchError


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
    from ..board.tables import format_board, format_history
    from ..store.roots import open_root

    root = open_root(args.root, create=False)
    if args.history:
        _write_output(format_history(root, args.format, args.eps, args.threshold), args.output)
        return EXIT_OK
    board, rank_key = read_ranked_board(root, args)
    if args.format == "html":
        from ..board.page import render_page

        _write_output(render_page(root, board, rank_key), args.output)
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
    print(f"A = {table['model_a'].iloc[0]}\nB = {table['model_b'].iloc[0]}")
    print(f"spec {table['spec_name'].iloc[0]} ({table['spec_hash'].iloc[0]})")
    shown = table.drop(columns=["spec_name", "spec_hash", "model_a", "model_b"]).rename(columns={"difference": "A - B"})
    print(shown.to_markdown(index=False, tablefmt="simple_outline", floatfmt=".4f"))
    print("A - B and its paired 95% interval (same inputs, same half-samples); each model at its best eps.")
    return EXIT_OK


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


def agreement_section(args: argparse.Namespace, root: Path, spec: str | None, rank_key=None) -> tuple[str, str, str]:
    """Run the agreement check (and with ``args.robust`` the robust heads); returns its table, its JSON and its
    HTML section. Its Parquet files and scatter PNG are written only once all of it has been computed."""
    from ..agree.agreement import agreement, key_values, model_table, store_agreement
    from ..agree.robust_probing import robust_table, store_robust
    from ..board.page import agreement_html
    from ..board.plots import plot_agreement
    from ..board.ranking import DEFAULT_RANK_KEY
    from ..store.roots import atomic_write_bytes, safe_path

    rank_key = rank_key or DEFAULT_RANK_KEY
    result = agreement(root, args.data, spec=spec, models=getattr(args, "models", None), device=args.device)
    per_model, stats, data = result.per_model, result.stats, str(result.per_model["data"].iloc[0])
    stat = stats[stats["rank_key"] == str(rank_key)].iloc[0]
    png = plot_agreement(key_values(per_model, rank_key), stat, data, str(rank_key))
    robust = _robust_rows(args, root, spec, rank_key) if getattr(args, "robust", False) else None
    models, shown = model_table(per_model), stats.drop(columns=["data", "data_digest", "spec_hash", "created_at"])
    notes = "".join(f"\nskipped {item['model']}: {item['reason']}." for item in result.skipped)
    table = (
        models.to_markdown(index=False, tablefmt="simple_outline", floatfmt=".4f")
        + "\n"
        + shown.to_markdown(index=False, tablefmt="simple_outline", floatfmt=".3f")
        + notes
        + (f"\n{robust_table(robust)}" if robust is not None else "")
    )
    rows = per_model.drop(columns=["score_replicates", "score_dm_replicates"], errors="ignore")
    found = {
        "models": json.loads(rows.to_json(orient="records")),
        "agreement": json.loads(stats.to_json(orient="records")),
        "skipped": result.skipped,
    }
    if robust is not None:
        found["robust"] = json.loads(robust.to_json(orient="records"))
    section = agreement_html(models, shown, png, data)
    store_agreement(root, result)
    if robust is not None:
        store_robust(root, robust)
    atomic_write_bytes(safe_path(root, "reports", f"agree-{per_model['data_digest'].iloc[0]}.png"), png)
    return table, json.dumps(found, indent=1), section


def cmd_agree(args: argparse.Namespace) -> int:
    from ..board.ranking import parse_rank_key
    from ..models.encoders import ALLOW_PY_ENV
    from ..store.roots import open_root

    root = open_root(args.root, create=False)
    if args.allow_py:
        os.environ[ALLOW_PY_ENV] = "1"
    table, as_json, _ = agreement_section(args, root, args.spec, parse_rank_key(args.rank_by))
    print(as_json if args.format == "json" else table)
    return EXIT_OK
