"""Wall time of `synbench run` against the same work through `synbench.evaluate` (issue 31; target <= 1.5x).

A tiny model (default `identity:1x8x8` on the demo spec, 40 half-samples per interval) is scored in a fresh
root twice per round: by the CLI, and by a Python process that imports synbench and calls evaluate with the
same arguments. Both are separate processes timed from start to exit, so both pay for importing torch and
the rest; the difference is what the command adds (it used to start Prefect's server). Rounds alternate, and
the ratio of the medians is printed.

    python benchmarks/cli_vs_evaluate.py [--rounds 3] [--model identity:1x8x8] [--spec demo]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=os.environ, capture_output=True, text=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating (run, evaluate) pairs")
    parser.add_argument("--model", default="identity:1x8x8")
    parser.add_argument("--spec", default="demo")
    args = parser.parse_args()
    cli = str(Path(sys.executable).parent / "synbench")
    walls: dict[str, list[float]] = {"run": [], "evaluate": []}
    with tempfile.TemporaryDirectory(prefix="synbench-cli-vs-evaluate-") as scratch:
        for index in range(args.rounds):
            run_root, api_root = Path(scratch, f"run{index}"), Path(scratch, f"evaluate{index}")
            run = timed([cli, "run", args.model, "--spec", args.spec, "--root", str(run_root), "--device", "cpu"])
            code = f"import synbench; synbench.evaluate({args.model!r}, spec={args.spec!r}, root={str(api_root)!r}, "
            evaluated = timed([sys.executable, "-c", code + "device='cpu')"])
            walls["run"].append(run)
            walls["evaluate"].append(evaluated)
            ratio = run / evaluated
            print(f"round {index + 1}: synbench run {run:.1f} s, synbench.evaluate {evaluated:.1f} s: {ratio:.2f}x")
    ratio = statistics.median(walls["run"]) / statistics.median(walls["evaluate"])
    print(
        f"median: synbench run {statistics.median(walls['run']):.1f} s, synbench.evaluate "
        f"{statistics.median(walls['evaluate']):.1f} s: {ratio:.2f}x (target <= 1.5x)"
    )


if __name__ == "__main__":
    main()
