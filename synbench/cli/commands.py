"""What each ``synbench`` command does; ``main.py`` parses the arguments and maps errors to exit codes."""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

from ..core.errors import EXIT_OK, SynBenchError
from .output import print_board, report_batch, screen_width
from .signals import stop_on_sigterm


def _preprocess_overrides(args: argparse.Namespace) -> dict:
    return {"mean": getattr(args, "mean", None), "std": getattr(args, "std", None)}


def _input_shape(args: argparse.Namespace, spec) -> tuple[int, ...] | None:
    """The shape each model is fed: ``--input-shape`` (the model's own override, not the spec's), else the spec's."""
    return getattr(args, "input_shape", None) or spec.input_shape


def _flow_parameters(args: argparse.Namespace, spec, root: Path) -> dict:
    """The command line as the flows' plain parameters (what a deployment run would pass)."""
    return {
        "spec": args.spec,
        "eps": list(spec.eps),
        "root": str(root),
        "device": args.device,
        "dtype": args.dtype,
        "input_shape": list(args.input_shape) if getattr(args, "input_shape", None) else None,
        "mean": list(args.mean) if getattr(args, "mean", None) else None,
        "std": list(args.std) if getattr(args, "std", None) else None,
        "ci_replicates": _ci_replicates(args),
    }


def _ci_replicates(args: argparse.Namespace) -> int:
    from ..method.intervals import check_replicates

    return 0 if args.ci == "none" else check_replicates(args.ci_replicates)


def _describe(encoder) -> None:
    """Say what the model will see; a fallback to timm's defaults is a warning the user can act on."""
    print(f"{encoder.ref.text}: {encoder.preprocess.describe()}, {encoder.feature_dim} features")
    if encoder.info.get("weights_rule"):
        dropped = encoder.info["weights_dropped"]
        left_out = f"; left out {len(dropped)} checkpoint tensors ({', '.join(dropped[:4])})" if dropped else ""
        rule = encoder.info["weights_rule"]
        print(f"{encoder.ref.text}: weights loaded {rule if rule == 'as saved' else 'by rule ' + rule}{left_out}")
    if encoder.preprocess.source == "default":
        print(
            f"warning: {encoder.ref.text} declares no preprocessing (pretrained_cfg); using timm's defaults above. "
            "Set them with --input-shape, --mean and --std.",
            file=sys.stderr,
        )


def _prepare(args: argparse.Namespace, refs: list[str], models_file: str | None = None, resolve: bool = False):
    """Validate the input before any file is written and open the root (``_start_prefect`` then points Prefect at it).

    ``resolve`` loads every model now (``run``: fail before work starts); a batch only parses
    its references so that one bad model is reported without stopping the others.
    Returns the spec, the root, the model references (command line first, then the file's), the models loaded.
    """
    from ..core.spec import load_spec
    from ..models.encoders import ALLOW_PY_ENV, resolve_encoder
    from ..models.layers import expand_layers
    from ..models.references import is_own_code, parse_reference, read_model_list
    from ..models.weights_paths import expand_series
    from ..stages.extract import resolve_device
    from ..store.resources import check_resources
    from ..store.roots import open_root

    spec = load_spec(args.spec, eps=args.eps)  # --input-shape is the models' override: the spec's board stays one
    resolve_device(args.device)
    _ci_replicates(args)
    from_file = read_model_list(Path(models_file)) if models_file else []
    for ref in refs + from_file:
        user_code = parse_reference(ref).scheme == "py" and not is_own_code(parse_reference(ref))
        if user_code and ref not in refs and not getattr(args, "allow_py", False):
            raise SynBenchError(f"{models_file!r} names {ref!r}, which runs user code; pass --allow-py to allow it.")
    # weights paths made absolute, checkpoint globs and layer series expanded: bad ones fail before any work
    every = getattr(args, "layers", None) == "all"  # --layers all: each model's stages, then its head
    expanded = [layer for ref in refs + from_file for one in expand_series(ref) for layer in expand_layers(one, every)]
    listed = list(dict.fromkeys(expanded))
    if resolve and len(listed) > 1:
        raise SynBenchError(f"{refs[0]!r} names {len(listed)} models; benchmark a series with synbench batch.")
    if any(ref.startswith("py:") for ref in refs + from_file):
        os.environ[ALLOW_PY_ENV] = "1"  # the user named or allowed them on this command line
    allow_command_line_root(args.root)
    encoders = {}  # the models loaded here, so that _already_published and run need not load them again
    for ref in listed if resolve else []:
        encoder = resolve_encoder(ref, _input_shape(args, spec), **_preprocess_overrides(args))
        _describe(encoder)
        check_resources(spec, encoder.preprocess.input_shape, encoder.feature_dim, args.root, ref)
        encoders[ref] = encoder
    return spec, open_root(args.root), listed, encoders


def _start_prefect(args: argparse.Namespace, root: Path) -> None:
    from synbench_flows.settings import configure_prefect, stop_server_with_this_process

    configure_prefect(root, verbose=args.verbose)
    stop_server_with_this_process()
    if not args.verbose:
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # dask's INFO lines, read at its import


def _already_published(args: argparse.Namespace, spec, root: Path, refs: list[str], encoders: dict) -> list | None:
    """The outcomes of a run or batch whose every model has its part for this spec, code version and interval
    count, found without Prefect (whose start is most of a no-op rerun); None once a model has work left or fails."""
    from ..models.encoders import resolve_encoder
    from ..models.weights_paths import absolute_reference
    from ..stages.curves import part_path
    from ..stages.probes import replicates_path

    replicates, overrides, outcomes = _ci_replicates(args), _preprocess_overrides(args), []
    for ref in map(absolute_reference, refs):  # as the flows store them (listed references already are)
        try:
            fingerprint = (encoders.get(ref) or resolve_encoder(ref, _input_shape(args, spec), **overrides)).fingerprint
        except Exception:
            return None
        intervals = replicates_path(root, fingerprint, spec, replicates) if replicates else None
        part = part_path(root, fingerprint, spec, ref, intervals)
        if (intervals is not None and not intervals.is_file()) or not part.is_file():
            return None
        found = {"fingerprint": fingerprint, "part": str(part), "written_chunks": 0, "skipped_chunks": "all"}
        outcomes.append({"model": ref, "status": "ok", **found})
    return outcomes


def allow_command_line_root(root: str) -> None:
    """The flows accept paths only inside folders the process allows: here, the root on this command line
    (a local folder, ``file://`` URLs included, by its absolute path; an object-store root by its URL)."""
    from ..store.roots import is_remote, location

    where = location(root)
    os.environ["SYNBENCH_ALLOWED_PATHS"] = root if is_remote(where) else str(where.expanduser().absolute())


def _progress():
    """A rich progress bar naming each model's stage (``BarProgress``); plain lines (``PlainProgress``) when stderr
    is not a terminal (a log file, a pipe). Returns the context to show it in and the reporter."""
    from ..stages.progress import BarProgress, PlainProgress

    if not sys.stderr.isatty():
        return nullcontext(), PlainProgress()
    reporter = BarProgress()
    return reporter.bar, reporter


def cmd_run(args: argparse.Namespace) -> int:
    """One model's five stages in this process (``stages.pipeline``, what ``synbench.evaluate`` runs): no Prefect
    server to start for one model; ``batch`` keeps the flows (retries across models, task runners, Dask)."""
    from ..stages.pipeline import run_stages

    stop_on_sigterm()
    spec, root, (model_ref,), encoders = _prepare(args, [args.model_ref], resolve=True)
    start = time.monotonic()
    finished = _already_published(args, spec, root, [model_ref], encoders)
    if finished:
        (outcome,) = finished
    else:
        bar, progress = _progress()
        with bar:
            run = run_stages(
                encoders[model_ref], spec, root, model_ref, args.device, args.dtype, _ci_replicates(args), progress
            )
        outcome = {"fingerprint": run.fingerprint, "written_chunks": run.written_chunks}
        outcome["skipped_chunks"] = run.skipped_chunks
    print(
        f"{model_ref}: fingerprint {outcome['fingerprint']}, {outcome['written_chunks']} chunks written, "
        f"{outcome['skipped_chunks']} reused, {time.monotonic() - start:.1f} s"
    )
    print_board(root, spec.spec_hash)
    return EXIT_OK


def _batch(args: argparse.Namespace, refs: list[str], models_file: str | None) -> tuple[list[dict], object, Path]:
    spec, root, listed, encoders = _prepare(args, refs, models_file)
    finished = _already_published(args, spec, root, listed, encoders)
    if finished is not None:
        print(f"all {len(finished)} models are already published for this spec and code version: nothing to run")
        return finished, spec, root
    _start_prefect(args, root)
    from synbench_flows.benchmark import benchmark_batch, make_task_runner

    runner = make_task_runner(args.workers, dask=args.dask, verbose=args.verbose)
    bar, progress = _progress()
    with bar:
        outcomes = benchmark_batch.with_options(task_runner=runner)(
            model_refs=listed, **_flow_parameters(args, spec, root), progress=progress
        )
    return outcomes, spec, root


def cmd_batch(args: argparse.Namespace) -> int:
    stop_on_sigterm()
    files = [r for r in args.models if ":" not in r]
    for name in files:
        if not Path(name).is_file():
            raise SynBenchError(
                f"model list {name!r} does not exist; check the path (model references look like random:resnet18)."
            )
    if len(files) > 1:
        raise SynBenchError("pass at most one models file; list the other references directly.")
    refs = [r for r in args.models if r not in files]
    outcomes, spec, root = _batch(args, refs, files[0] if files else None)
    return report_batch(outcomes, root, spec.spec_hash)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..board.fit import wrap_lines
    from ..board.page import write_reports
    from ..board.read import read_board
    from ..demo import demo_checkpoints, demo_models, train_demo_checkpoints
    from ..store.roots import is_remote, open_root
    from .board_commands import agreement_section

    stop_on_sigterm()
    start = time.monotonic()
    root = open_root(args.root)
    if is_remote(root):
        raise SynBenchError("the demo trains its checkpoints on local disk; pass a local folder with --root.")
    folder = root / "checkpoints"
    if not all(path.is_file() for path in demo_checkpoints(folder)):
        accuracy = train_demo_checkpoints(folder)
        trained = (
            f"trained the digits CNNs in {time.monotonic() - start:.1f} s (held-out accuracy "
            f"{accuracy['digits_cnn']:.3f}, narrow {accuracy['digits_cnn_narrow']:.3f}): {folder}"
        )
        print(wrap_lines(trained, screen_width()))
    args.spec, args.allow_py, args.workers, args.dask = args.spec or "demo", True, 1, None
    outcomes, spec, root = _batch(args, demo_models(folder), None)
    status = report_batch(outcomes, root, spec.spec_hash)
    args.data = "digits"
    table, _, section = agreement_section(args, root, spec.spec_hash)
    print(f"Agreement with a linear probe on scikit-learn's digits:\n{table}")
    images, page = write_reports(root, read_board(root, spec=spec.spec_hash), section)
    print(f"plots: {len(images)} PNG files in {page.parent}\nleaderboard page: {page}")
    print(f"demo finished in {time.monotonic() - start:.1f} s")
    return status
