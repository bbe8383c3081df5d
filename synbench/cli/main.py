"""``synbench`` command line: run, batch, leaderboard, compare, audit, agree, board, demo.

Exit codes: 0 success, 1 internal error or failed audit, 2 user error (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from .. import __version__
from ..core.errors import EXIT_FAILED, EXIT_OK, EXIT_USER, SynBenchError
from .board_commands import cmd_agree, cmd_audit, cmd_board, cmd_compare, cmd_leaderboard
from .commands import cmd_batch, cmd_demo, cmd_run


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (no usage dump), like every other user error."""

    def error(self, message: str):
        self.exit(EXIT_USER, f"synbench: error: {message}; see `{self.prog} --help`.\n")


def _numbers(what: str, kind: type = float) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        from ..core.spec import parse_eps

        try:
            values = parse_eps(text, what, "3,32,32" if kind is int else "0,0.2")
        except SynBenchError as exc:
            raise argparse.ArgumentTypeError(str(exc).rstrip(".")) from None
        if kind is int and not all(v.is_integer() and v > 0 for v in values):
            raise argparse.ArgumentTypeError(f"{what} {text!r} must be positive integers, e.g. 3,32,32 or 2,128")
        return tuple(kind(v) for v in values)

    return parse


def _thresholds(text: str) -> tuple:
    from ..core.spec import MIN_THRESHOLD, threshold_ok

    values = _numbers("threshold")(text)
    if not all(map(threshold_ok, values)):
        raise argparse.ArgumentTypeError(
            f"thresholds {text!r} must lie in [{MIN_THRESHOLD:g}, 1), where the curves' accuracy grid starts; "
            "e.g. 0.6,0.75"
        )
    return values


_MODEL_HELP = "a model as the board shows it, one of its references, or a fingerprint prefix"
_RANK_BY_HELP = (
    "score or score_dm at a threshold or the mean of the thresholds shown: score_dm@0.7 (default), score_dm@mean, "
    "score@0.9"
)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return int(text)


def _column_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"could not read column list {text!r}; use names like rank,model,p")
    return names


def _add_table_options(sub: argparse.ArgumentParser) -> None:
    """Tables fit the terminal (COLUMNS; 100 characters when piped) with a few columns; these ask for more."""
    sub.add_argument("--wide", action="store_true", help="every column, whatever the terminal's width")
    sub.add_argument(
        "--columns", type=_column_names, metavar="A,B,...", help="only these columns, e.g. rank,model,t=0.6"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="synbench", description="Score pretrained encoders on synthetic Gaussian tasks, without real data."
    )
    parser.add_argument("--version", action="version", version=f"synbench {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name: str, func: Callable, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(func=func)
        sub.add_argument("--root", default="data", help="artifact root (default: data)")
        sub.add_argument("--verbose", action="store_true", help="show Prefect's and Dask's logs")
        return sub

    def add_work_options(sub: argparse.ArgumentParser, spec_default: str | None = "quick") -> None:
        sub.add_argument("--spec", default=spec_default, help="preset (quick, paper, demo) or a .toml/.yaml spec file")
        sub.add_argument(
            "--eps", type=_numbers("eps"), help="comma-separated eps list, e.g. 0,0.2 (overrides the spec)"
        )
        sub.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
        sub.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"], help="forward precision (bf16 autocast)")
        sub.add_argument(
            "--input-shape", type=_numbers("input shape", int), help="shape the model is fed: 3,32,32 or 2,128 or 256"
        )
        sub.add_argument(
            "--mean", type=_numbers("mean"), help="per-channel (first axis) mean, e.g. 0.5 or 0.485,0.456,0.406"
        )
        sub.add_argument("--std", type=_numbers("std"), help="per-channel std, e.g. 0.5 or 0.229,0.224,0.225")
        sub.add_argument(
            "--ci", default="half-sampling", choices=["half-sampling", "none"], help="95%% interval of every score"
        )
        sub.add_argument(
            "--ci-replicates", type=_positive_int, default=40, help="half-samples per interval (default 40)"
        )

    run = add("run", cmd_run, "benchmark one model: generate, extract, probe, curves, publish")
    run.add_argument(
        "model_ref", help="e.g. identity:3x4x4, identity:2x128, random:test_convnext, timm:resnet18@w.pt, py:mod:fn"
    )
    add_work_options(run)

    batch = add("batch", cmd_batch, "benchmark many models; one failure does not stop the rest")
    batch.add_argument("models", nargs="+", help="model references and/or one file with a reference per line")
    batch.add_argument("--allow-py", action="store_true", help="run py: encoders listed in the models file")
    batch.add_argument(
        "--layers",
        choices=["all"],
        help="all: every stage of each timm model (its feature_info), then its head, as a layer series",
    )
    batch.add_argument("--workers", type=_positive_int, default=1, help="models benchmarked at once (default 1)")
    batch.add_argument(
        "--dask",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run the models on Dask: a local prefect-dask cluster, or an existing scheduler (tcp://host:8786)",
    )
    add_work_options(batch)

    board = add("leaderboard", cmd_leaderboard, "show the published leaderboard")
    board.add_argument("--spec", help="only this spec (name or hash prefix)")
    board.add_argument("--eps", type=_numbers("eps"), help="only these eps, e.g. 0,0.2 (best eps chosen among them)")
    board.add_argument("--threshold", type=_thresholds, help="thresholds, e.g. 0.75 (any t in [0.6, 1))")
    board.add_argument("--format", default="table", choices=["table", "json", "csv", "html"])
    board.add_argument("--summary", action="store_true", help="json/csv: one ranked row per model and threshold")
    board.add_argument("--output", help="write to this file instead of stdout (e.g. board.html)")
    board.add_argument("--history", action="store_true", help="list the rank snapshots and the latest rank changes")
    board.add_argument("--rank-by", metavar="KEY", help=_RANK_BY_HELP)
    board.add_argument(
        "--input-shape", type=_numbers("input shape", int), help="only models fed this shape, e.g. 3,32,32"
    )
    _add_table_options(board)

    audit = add("audit", cmd_audit, "verify checksums, completeness, Parquet files and recompute scores")
    audit.add_argument(
        "--repair", action="store_true", help="regenerate damaged chunks (damaged files are kept in quarantine/)"
    )
    audit.add_argument("--allow-py", action="store_true", help="allow repair to run stored py: encoders")
    audit.add_argument(
        "--deep", action="store_true", help="also regenerate every feature group from the encoder and compare it"
    )

    agree = add("agree", cmd_agree, "check the scores against linear probing on a labelled data set")
    agree.add_argument(
        "--data", default="digits", help="digits, photos, lfw, a .npz with X and y, or a folder of class folders"
    )
    agree.add_argument("--spec", help="the spec (name or hash prefix) whose board to check")
    agree.add_argument("--models", nargs="+", help="only these models (as shown on the board, or fingerprint prefixes)")
    agree.add_argument("--format", default="table", choices=["table", "json"])
    agree.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    agree.add_argument("--allow-py", action="store_true", help="run py: encoders named on the board")
    agree.add_argument("--rank-by", metavar="KEY", help="the key plotted against real accuracy; " + _RANK_BY_HELP)
    agree.add_argument(
        "--robust",
        action="store_true",
        help="also train eps-robust linear heads (eps 0 and the board's best eps): clean, attacked, corrupted accuracy",
    )
    agree.add_argument(
        "--robust-eps", type=float, help="--robust: train at this eps (default: each model's best eps at the first t)"
    )
    _add_table_options(agree)

    compare = add("compare", cmd_compare, "paired difference of two models' scores, with its 95%% interval")
    compare.add_argument("model_a", help=_MODEL_HELP)
    compare.add_argument("model_b", help="the model to compare it with")
    compare.add_argument("--spec", help="the spec (name or hash prefix); needed when both share several")
    compare.add_argument("--eps", type=_numbers("eps"), help="compare at this eps (default: each model's best eps)")
    compare.add_argument("--threshold", type=_thresholds, help="thresholds, e.g. 0.6,0.75")
    compare.add_argument("--format", default="table", choices=["table", "json"])
    _add_table_options(compare)

    edit = add("board", cmd_board, "remove or rename a model on the board (its old parts move to quarantine/)")
    actions = edit.add_subparsers(dest="board_action", required=True, parser_class=_Parser)
    remove = actions.add_parser("remove", help="take a model off the board", description="take a model off the board")
    remove.add_argument("model", help=_MODEL_HELP)
    remove.add_argument("--spec", help="only on this spec (name or hash prefix)")
    rename = actions.add_parser("rename", help="show a model under another name", description="rename a model")
    rename.add_argument("model", help=_MODEL_HELP)
    rename.add_argument("new_name", help="the name the board shows from now on")
    for sub in (remove, rename):  # also accepted after the action; SUPPRESS keeps a value given before it
        sub.add_argument("--root", default=argparse.SUPPRESS, help="artifact root (default: data)")
        sub.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")

    demo = add("demo", cmd_demo, "offline demo: encoders, leaderboard, plots and an HTML page")
    add_work_options(demo, spec_default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SynBenchError as exc:
        print(f"synbench: error: {exc}", file=sys.stderr)
        return EXIT_USER
    except BrokenPipeError:  # output piped into head and the like
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print("synbench: interrupted; rerun the same command to resume.", file=sys.stderr)
        return 130
    except Exception as exc:
        if getattr(args, "verbose", False):
            raise
        print(
            f"synbench: internal error: {type(exc).__name__}: {exc} (rerun with --verbose for details)", file=sys.stderr
        )
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
