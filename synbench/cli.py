"""``synbench`` command line: run, batch, leaderboard, audit, demo.

Exit codes: 0 success, 1 internal error or failed audit, 2 user error (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import __version__
from .errors import SynBenchError

EXIT_OK, EXIT_FAILED, EXIT_USER = 0, 1, 2


def _floats(text: str) -> tuple[float, ...]:
    from .spec import parse_eps

    return parse_eps(text)


def _prepare(args: argparse.Namespace, refs: list[str], models_file: str | None = None, resolve: bool = False):
    """Validate the input before any file is written, then point Prefect at the root.

    ``resolve`` loads every model now (``run``: fail before work starts); a batch only parses
    its references so that one bad model is reported without stopping the others.
    Returns the spec, the root and the model references (command line first, then the file's).
    """
    from .encoders import parse_reference, read_model_list, resolve_encoder
    from .extract import resolve_device
    from .spec import load_spec
    from .store import open_root

    spec = load_spec(args.spec, eps=args.eps)
    resolve_device(args.device)
    from_file = read_model_list(Path(models_file)) if models_file else []
    for ref in refs + from_file:
        parse_reference(ref)
        if ref.startswith("py:") and ref not in refs and not getattr(args, "allow_py", False):
            raise SynBenchError(f"{models_file!r} names {ref!r}, which runs user code; pass --allow-py to allow it.")
        if resolve:
            resolve_encoder(ref, spec.input_shape, allow_py=True)
    root = open_root(args.root)
    from flows.settings import configure_prefect

    configure_prefect(root, verbose=args.verbose)
    return spec, root, refs + from_file


def _progress():
    """A rich progress bar fed by extraction (none when stderr is not a terminal)."""
    from contextlib import nullcontext

    from . import extract

    if not sys.stderr.isatty():
        return nullcontext()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    )
    state: dict = {}

    def hook(model: str, done: int, total: int) -> None:
        if state.get("model") != model:
            state["model"], state["task"] = model, bar.add_task(f"extract {model}", total=total)
        bar.update(state["task"], completed=done)

    extract.PROGRESS_HOOK = hook
    return bar


def _print_board(root: Path, spec_hash: str, fmt: str = "table") -> None:
    from .leaderboard import format_board, read_board

    print(format_board(read_board(root, spec=spec_hash), fmt))


def cmd_run(args: argparse.Namespace) -> int:
    spec, root, _ = _prepare(args, [args.model_ref], resolve=True)
    from flows.benchmark import benchmark

    start = time.monotonic()
    with _progress():
        outcome = benchmark(
            args.model_ref, spec=args.spec, eps=list(spec.eps), root=str(root), device=args.device, dtype=args.dtype
        )
    print(
        f"{args.model_ref}: fingerprint {outcome['fingerprint']}, {outcome['written_chunks']} chunks written, "
        f"{outcome['skipped_chunks']} reused, {time.monotonic() - start:.1f} s"
    )
    _print_board(root, spec.spec_hash)
    return EXIT_OK


def _batch(args: argparse.Namespace, refs: list[str], models_file: str | None) -> tuple[list[dict], object, Path]:
    spec, root, listed = _prepare(args, refs, models_file)
    from flows.benchmark import benchmark_batch

    with _progress():
        outcomes = benchmark_batch.with_options(task_runner=_task_runner(args))(
            model_refs=listed,
            spec=args.spec,
            eps=list(spec.eps),
            root=str(root),
            device=args.device,
            dtype=args.dtype,
            allow_py=True,
        )
    return outcomes, spec, root


def _task_runner(args: argparse.Namespace):
    """Threads by default; prefect-dask's local cluster with --dask."""
    workers = max(1, getattr(args, "workers", 1))
    if getattr(args, "dask", False):
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError:
            raise SynBenchError("--dask needs prefect-dask; install it with pip install 'synbench[dask]'.") from None
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "processes": False})
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=workers)


def _print_outcomes(outcomes: list[dict]) -> None:
    from tabulate import tabulate

    table = [
        [o["model"], o["status"], o.get("written_chunks", ""), o.get("skipped_chunks", ""), o.get("error", "")]
        for o in outcomes
    ]
    print(
        tabulate(
            table, headers=["model", "status", "chunks written", "chunks reused", "error"], tablefmt="simple_outline"
        )
    )


def _report_batch(outcomes: list[dict], root: Path, spec_hash: str) -> int:
    """Per-model outcome table, then the board; exit 1 when any model failed."""
    _print_outcomes(outcomes)
    _print_board(root, spec_hash)
    return EXIT_OK if all(o["status"] == "ok" for o in outcomes) else EXIT_FAILED


def cmd_batch(args: argparse.Namespace) -> int:
    files = [r for r in args.models if Path(r).is_file() and ":" not in r]
    refs = [r for r in args.models if r not in files]
    if len(files) > 1:
        raise SynBenchError("pass at most one models file; list the other references directly.")
    outcomes, spec, root = _batch(args, refs, files[0] if files else None)
    return _report_batch(outcomes, root, spec.spec_hash)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from .leaderboard import format_board, read_board
    from .store import open_root

    root = open_root(args.root, create=False)
    if args.history:
        from .leaderboard import format_history

        print(format_history(root, args.format, args.eps))
        return EXIT_OK
    board = read_board(root, spec=args.spec, eps=args.eps, threshold=args.threshold)
    if args.format == "html":
        from .report import write_reports

        _, page = write_reports(root, board)
        print(page)
    else:
        print(format_board(board, args.format))
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from .audit import audit_root
    from .store import open_root

    report = audit_root(open_root(args.root, create=False), repair=args.repair, allow_py=args.allow_py)
    for line in report.repaired:
        print(f"repaired: {line}")
    for line in report.problems:
        print(f"PROBLEM: {line}")
    print(
        f"audit: {report.groups} feature groups, {report.chunks} chunks, {report.parquet_files} Parquet files, "
        f"{report.scores_checked} scores recomputed; {len(report.problems)} problem(s)"
    )
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo_models, train_digits_cnn
    from .leaderboard import read_board
    from .report import write_reports
    from .store import open_root

    start = time.monotonic()
    root = open_root(args.root)
    checkpoint = root / "checkpoints" / "digits_cnn.safetensors"
    if not checkpoint.is_file():
        accuracy = train_digits_cnn(checkpoint)
        print(
            f"trained the digits CNN in {time.monotonic() - start:.1f} s "
            f"(held-out accuracy {accuracy:.3f}): {checkpoint}"
        )
    args.spec, args.allow_py = args.spec or "demo", True
    outcomes, spec, root = _batch(args, demo_models(checkpoint), None)
    status = _report_batch(outcomes, root, spec.spec_hash)
    images, page = write_reports(root, read_board(root, spec=spec.spec_hash))
    print(f"plots: {len(images)} PNG files in {page.parent}\nleaderboard page: {page}")
    print(f"demo finished in {time.monotonic() - start:.1f} s")
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synbench", description="Score pretrained encoders on synthetic Gaussian tasks, without real data."
    )
    parser.add_argument("--version", action="version", version=f"synbench {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(func=func)
        sub.add_argument("--root", default="data", help="artifact root (default: data)")
        sub.add_argument("--verbose", action="store_true", help="show Prefect's logs")
        return sub

    def add_work_options(sub: argparse.ArgumentParser, spec_default: str | None = "quick") -> None:
        sub.add_argument("--spec", default=spec_default, help="preset (quick, paper, demo) or a .toml/.yaml spec file")
        sub.add_argument("--eps", type=_floats, help="comma-separated eps list, e.g. 0,0.2 (overrides the spec)")
        sub.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
        sub.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"], help="forward precision (bf16 autocast)")

    run = add("run", cmd_run, "benchmark one model: generate, extract, probe, curves, publish")
    run.add_argument(
        "model_ref", help="e.g. identity:3x4x4, random:test_convnext, timm:resnet18@w.safetensors, py:mod:fn"
    )
    add_work_options(run)

    batch = add("batch", cmd_batch, "benchmark many models; one failure does not stop the rest")
    batch.add_argument("models", nargs="+", help="model references and/or one file with a reference per line")
    batch.add_argument("--allow-py", action="store_true", help="run py: encoders listed in the models file")
    batch.add_argument("--workers", type=int, default=1, help="models benchmarked at once (default 1)")
    batch.add_argument("--dask", action="store_true", help="run the models on a local prefect-dask cluster")
    add_work_options(batch)

    board = add("leaderboard", cmd_leaderboard, "show the published leaderboard")
    board.add_argument("--spec", help="only this spec (name or hash)")
    board.add_argument("--eps", type=_floats, help="only these eps, e.g. 0,0.2")
    board.add_argument("--threshold", type=_floats, help="only these thresholds, e.g. 0.6")
    board.add_argument("--format", default="table", choices=["table", "json", "csv", "html"])
    board.add_argument("--history", action="store_true", help="list the rank snapshots and the latest rank changes")

    audit = add("audit", cmd_audit, "verify checksums, completeness, Parquet files and recompute scores")
    audit.add_argument(
        "--repair", action="store_true", help="regenerate damaged chunks (damaged files are kept in quarantine/)"
    )
    audit.add_argument("--allow-py", action="store_true", help="allow repair to run stored py: encoders")

    demo = add("demo", cmd_demo, "offline demo: 6 encoders, leaderboard, plots and an HTML page")
    add_work_options(demo, spec_default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
