"""Wall time of `synbench run` with its default intervals against the same run with `--ci none` (issue 21).

A py: encoder maps 3x24x24 inputs linearly to 1280 features; the spec has 8 scales and n = 2048 + 2048.
Each run starts in a fresh root, so both extract, probe and publish; the ratio is the intervals' share of a
model's cost on this machine (target <= 1.5x).

    python benchmarks/ci_overhead.py
"""

from __future__ import annotations

import os
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


def timed_run(work: Path, *options: str) -> float:
    root = work / f"root{len(list(work.iterdir()))}"
    command = [str(Path(sys.executable).parent / "synbench"), "run", "py:ci_overhead:linear_encoder"]
    command += ["--spec", str(work / "spec.toml"), "--root", str(root), "--device", "cpu", *options]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=Path(__file__).parent, env=os.environ, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="synbench-ci-overhead-") as scratch:
        work = Path(scratch)
        (work / "spec.toml").write_text(SPEC)
        without = timed_run(work, "--ci", "none")
        with_intervals = timed_run(work)
    print(f"--ci none {without:.1f} s, default intervals {with_intervals:.1f} s: {with_intervals / without:.2f}x")


if __name__ == "__main__":
    main()
