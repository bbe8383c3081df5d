"""The checks that need a GPU, in one run: start it where the `device` tool lends one (issue 21).

1. CPU vs CUDA generator draws: one block of inputs made on both devices (largest difference).
2. The probe and its 40 half-sample refits in torch on the device against the CPU path, p = 768,
   n = 2048 + 2048, 6 eps: same accuracies and ranks, and each one's time per task.
3. A model (default ViT-B/16, random init: weights do not change the time) on a spec (default the
   paper's) end to end with synbench.evaluate (no Prefect: stages in this process), in bf16 then in
   fp32: wall time of each (target <= 30 s in bf16) and the largest difference of their scores
   (target <= 0.01).

    python benchmarks/gpu_checks.py [--model random:vit_base_patch16_224] [--spec paper] [--device cuda]

On a CPU (``--device cpu --spec demo --model random:test_vit``) it runs the same code, for a trial.
The device machine (Python 3.12, no network) holds torch, timm, numpy, scipy, pandas and pyarrow
but not zarr: fetch its wheels into an ignored folder here, carry it, and install them there first:

    pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl zarr numcodecs donfig google-crc32c typing-extensions
    # there: python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
    #        PYTHONPATH=/tmp/site:. python3 benchmarks/gpu_checks.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial

import numpy as np
import torch

from synbench.api import evaluate
from synbench.core.spec import load_spec
from synbench.method.generate import block_inputs
from synbench.method.intervals import DEFAULT_REPLICATES, half_sample
from synbench.method.linalg import device_probe_tasks, device_replicates
from synbench.method.probe_solve import probe_tasks
from synbench.method.refits import cpu_replicates
from synbench.models.encoders import resolve_encoder

EPS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def _seconds(function, *args, device: str = "cpu"):
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = function(*args)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def check_draws(model: str, spec_name: str, device: str) -> None:
    spec = load_spec(spec_name)
    encoder = resolve_encoder(model, spec.input_shape)
    on_cpu = block_inputs(spec, encoder.preprocess, 3, "test", 0, device="cpu")[1]
    on_device = block_inputs(spec, encoder.preprocess, 3, "test", 0, device=device)[1].cpu()
    print(
        f"1. draws: one block {tuple(on_cpu.shape)}, CPU vs {device}: largest difference "
        f"{float((on_cpu - on_device).abs().max()):.2e} (the integer hash is exact; log/cos/sin may round)"
    )


def check_probe_and_refits(device: str, p: int = 768, n: int = 2048) -> None:
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(p, p)) / np.sqrt(p)

    def split():
        labels = (rng.random(n) < 0.5).astype(np.uint8)
        features = rng.normal(size=(n, p)) @ mixing + np.where(labels[:, None] == 1, 0.05, -0.05)
        return features.astype(np.float32), labels

    train, test = split(), split()
    tasks = [(1.0, train, test)]
    halves = [(half_sample(0, 0, 0, r, n), half_sample(0, 0, 1, r, n)) for r in range(DEFAULT_REPLICATES)]
    device_probe_tasks(tasks, EPS, "relative", device)  # warm-up: kernels, cuSOLVER handles
    on_device, probe_device_s = _seconds(device_probe_tasks, tasks, EPS, "relative", device, device=device)
    on_cpu, probe_cpu_s = _seconds(probe_tasks, tasks, EPS)
    refits_device, refits_device_s = _seconds(
        device_replicates, train, test, halves, 1.0, EPS, "relative", device, device=device
    )
    refits_cpu, refits_cpu_s = _seconds(cpu_replicates, train, test, halves, 1.0, EPS, "relative")
    same = [(r.accuracy, r.rank) for r in on_device] == [(r.accuracy, r.rank) for r in on_cpu]
    mismatches = sum(
        (a.accuracy, a.rank) != (b.accuracy, b.rank)
        for one, other in zip(refits_device, refits_cpu, strict=True)
        for a, b in zip(one, other, strict=True)
    )
    print(
        f"2. p = {p}, n = {n} + {n}: probe {probe_device_s:.3f} s on {device} vs {probe_cpu_s:.3f} s on CPU "
        f"(accuracies and ranks {'equal' if same else 'DIFFER'}); {DEFAULT_REPLICATES} refits "
        f"{refits_device_s:.3f} s vs {refits_cpu_s:.3f} s ({refits_device_s / probe_device_s:.1f}x the device probe; "
        f"{mismatches} of {len(halves) * len(EPS)} replicate results differ in accuracy or rank)"
    )


def check_end_to_end(model: str, spec_name: str, device: str) -> None:
    scores = {}
    for dtype in ("bf16", "fp32"):
        with tempfile.TemporaryDirectory(prefix="synbench-gpu-") as root:
            run = partial(evaluate, model, spec=spec_name, device=device, dtype=dtype, root=root)
            board, seconds = _seconds(run, device=device)
        scores[dtype] = board.set_index(["eps", "threshold"])["score"].sort_index()
        print(f"3. {model} on the {spec_name} spec, {dtype} on {device}: {seconds:.1f} s end to end")
    difference = float((scores["bf16"] - scores["fp32"]).abs().max())
    print(f"   bf16 vs fp32: largest score difference {difference:.4f} (target <= 0.01)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="random:vit_base_patch16_224")
    parser.add_argument("--spec", default="paper")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run on a machine with a GPU, or pass --device cpu for a trial")
    check_draws(args.model, args.spec, args.device)
    check_probe_and_refits(args.device)
    check_end_to_end(args.model, args.spec, args.device)


if __name__ == "__main__":
    main()
