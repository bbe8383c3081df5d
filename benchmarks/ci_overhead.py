"""Wall time of `synbench run` with its default intervals against the same run with `--ci none` (issue 21).

A py: encoder maps 3x24x24 inputs linearly to 1280 features; the spec has 8 scales and n = 2048 + 2048.
Each run starts in a fresh root, so both extract, probe and publish; the ratio is the intervals' share of a
model's cost on this machine (target <= 1.5x). Runs alternate, and the ratio of the medians is printed: on a
shared machine the wall time of the same run varies by 20%.

    python benchmarks/ci_overhead.py [--pairs 2]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

SPEC = """base = "quick"
name = "ci-overhead"
scales = [0.6, 1.2, 1.8, 2.4, 3.0, 3.6, 4.2, 4.8]
n_train = 2048
n_test = 2048
"""


class LinearEncoder(torch.nn.Module):
    pretrained_cfg = {"input_size": (3, 24, 24), "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3 * 24 * 24, 1280, bias=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.linear(images.flatten(1))


def linear_encoder() -> torch.nn.Module:
    torch.manual_seed(0)
    return LinearEncoder()


def timed_run(work: Path, *options: str) -> tuple[float, float]:
    """Wall seconds of one `synbench run` in a fresh root, and of its intervals stage (0 without)."""
    root = work / f"root{len(list(work.iterdir()))}"
    command = [str(Path(sys.executable).parent / "synbench"), "run", "py:ci_overhead:linear_encoder"]
    command += ["--spec", str(work / "spec.toml"), "--root", str(root), "--device", "cpu", *options]
    start = time.perf_counter()
    done = subprocess.run(
        command, check=True, cwd=Path(__file__).parent, env=os.environ, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    stage = re.search(r"intervals done in ([0-9.]+) s", done.stderr)
    return wall, float(stage.group(1)) if stage else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2, help="alternating (--ci none, default) pairs")
    args = parser.parse_args()
    walls: dict[str, list[float]] = {"none": [], "default": []}
    with tempfile.TemporaryDirectory(prefix="synbench-ci-overhead-") as scratch:
        work = Path(scratch)
        (work / "spec.toml").write_text(SPEC)
        for _ in range(args.pairs):
            without, _ = timed_run(work, "--ci", "none")
            with_intervals, stage = timed_run(work)
            walls["none"].append(without)
            walls["default"].append(with_intervals)
            print(
                f"--ci none {without:.1f} s, default intervals {with_intervals:.1f} s: {with_intervals / without:.2f}x "
                f"(the intervals stage {stage:.1f} s)"
            )
    ratio = statistics.median(walls["default"]) / statistics.median(walls["none"])
    print(f"ratio of the medians: {ratio:.2f}x (target <= 1.5x: {'ok' if ratio <= 1.5 else 'MISSED'})")


if __name__ == "__main__":
    main()
