"""Extraction overhead: full stage 2 (generate + encode + write Zarr) vs the pure forward.

Both measured in this run on the same blocks. Prints wall times, their ratio (target <= 1.2x)
and peak resident memory, which is bounded by the block size, not by the protocol size.

    python benchmarks/bench_extract.py [--model random:resnet18] [--scales 3] [--device auto] [--dtype fp32]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import torch

from synbench.core.spec import SPLITS, load_spec
from synbench.method.generate import block_inputs, counter_normals
from synbench.models.encoders import resolve_encoder
from synbench.stages.extract import extract_features, resolve_device
from synbench.store.roots import open_root


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pure_forward_seconds(encoder, spec, device: torch.device, dtype: str) -> float:
    """Encode pre-generated blocks only: the floor that extraction is measured against."""
    blocks = [
        block_inputs(spec, encoder.preprocess, s, split, b, device)[1]
        for s in range(len(spec.scales))
        for split in SPLITS
        for b in range(spec.n_blocks(split))
    ]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")
    encoder.module.to(device)
    with autocast:
        encoder.represent(blocks[0][:2])
    _sync(device)
    start = time.perf_counter()
    with autocast:
        for block in blocks:
            encoder.represent(block).float().cpu()
    _sync(device)
    encoder.module.to("cpu")
    return time.perf_counter() - start


def generator_seconds(spec, encoder, device: torch.device, repeats: int = 3) -> tuple[float, float]:
    """One block's noise: our counter-based draws vs torch.randn on the same device (best of ``repeats``)."""
    count = spec.block_size * encoder.preprocess.dim
    timings = []
    for draw in (
        lambda: counter_normals(12345, count, device),
        lambda: torch.randn(count, generator=torch.Generator(device).manual_seed(1), device=device),
    ):
        best = float("inf")
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            draw()
            _sync(device)
            best = min(best, time.perf_counter() - start)
        timings.append(best)
    return timings[0], timings[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="random:resnet18")
    parser.add_argument("--spec", default="quick")
    parser.add_argument("--scales", type=int, default=2, help="how many of the spec's scales to run")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    args = parser.parse_args()
    device = resolve_device(args.device)
    full = load_spec(args.spec)
    spec = load_spec(args.spec, scales=full.scales[-args.scales :])  # the largest: every threshold is reachable
    encoder = resolve_encoder(args.model)
    images = len(spec.scales) * (spec.n_train + spec.n_test)
    with tempfile.TemporaryDirectory() as folder:
        root = open_root(Path(folder) / "root")
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        result = extract_features(encoder, spec, root, device=str(device), dtype=args.dtype)
        _sync(device)
        extraction = time.perf_counter() - start
    # peak memory of the extraction alone; the pure forward below holds all blocks at once
    extraction_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    forward = pure_forward_seconds(encoder, spec, device, args.dtype)
    print(
        f"model {args.model} on {device} ({args.dtype}), input {encoder.preprocess.input_shape}, "
        f"{len(spec.scales)} scales x {spec.n_train}+{spec.n_test} = {images} images, block {spec.block_size}"
    )
    print(f"pure forward:   {forward:7.2f} s  ({images / forward:7.1f} img/s)")
    rate = images / extraction
    print(f"extraction:     {extraction:7.2f} s  ({rate:7.1f} img/s), {result.written_chunks} chunks written")
    ratio = extraction / forward
    print(f"ratio: {ratio:.3f}x  (target <= 1.2x: {'ok' if ratio <= 1.2 else 'MISSED'})")
    block_mib = spec.block_size * encoder.preprocess.dim * 4 / 2**20
    print(f"peak RSS during extraction: {extraction_rss:.0f} MiB (one input block = {block_mib:.0f} MiB)")
    if device.type == "cuda":
        print(f"peak CUDA memory: {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB")
    ours, randn = generator_seconds(spec, encoder, device)
    print(
        f"noise of one block: counter hash {ours * 1e3:.0f} ms vs torch.randn {randn * 1e3:.0f} ms "
        f"({ours / randn:.1f}x)"
    )


if __name__ == "__main__":
    main()
