"""Crash-safe resume: SIGKILL extraction at random points, rerun, compare with a clean run.

Runs one uninterrupted extraction, then kills a second one at random moments (>= 20 times by
default), lets it finish, and reports how many chunk files and score rows differ.

    python benchmarks/kill9_resume.py [--kills 20] [--model random:test_vit]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN = """
import sys
from synbench.encoders import resolve_encoder
from synbench.extract import extract_features
from synbench.stages import curves_stored, probe_stored, publish_scores
from synbench.spec import BenchmarkSpec
from synbench.store import open_root
root = open_root(sys.argv[1])
scales = (0.3, 0.7, 1.0, 1.5, 2.0, 3.0)
spec = BenchmarkSpec(name="kill9", scales=scales, n_train=512, n_test=512, block_size=32, eps=(0.0, 0.2))
encoder = resolve_encoder(sys.argv[2])
extract_features(encoder, spec, root, device="cpu")
curves = curves_stored(root, probe_stored(root, encoder.fingerprint, spec), spec)
publish_scores(root, encoder.fingerprint, spec, curves, encoder.ref.text)
"""


def digests(root: Path) -> dict[str, str]:
    """Chunk files and probe/curve tables; zarr.json holds timestamps and is left out."""
    files = [p for p in root.rglob("*") if p.is_file() and ("/c/" in str(p) or p.parent.name in ("probes", "curves"))]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(files)}


def chunk_count(root: Path) -> int:
    return sum(1 for p in root.rglob("features/*/c/*/0") if p.is_file())


def scores(root: Path) -> list[tuple]:
    import pandas as pd

    parts = list((root / "leaderboard" / "parts").glob("*.parquet"))
    frame = pd.concat(pd.read_parquet(p) for p in parts)
    return sorted(zip(frame["eps"], frame["threshold"], frame["score"], strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--model", default="random:test_vit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        clean, killed = Path(folder) / "clean", Path(folder) / "killed"
        start = time.monotonic()
        subprocess.run([sys.executable, "-c", RUN, str(clean), args.model], check=True)
        full_run = time.monotonic() - start
        landed = 0
        for _ in range(args.kills):
            # kill once a few more chunks have landed, at a random moment inside a block's write
            target = chunk_count(killed) + rng.randint(1, 6)
            process = subprocess.Popen([sys.executable, "-c", RUN, str(killed), args.model])
            while chunk_count(killed) < target and process.poll() is None:
                time.sleep(rng.uniform(0.001, 0.02))
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                landed += 1
            process.wait()
        subprocess.run([sys.executable, "-c", RUN, str(killed), args.model], check=True)
        reference, resumed = digests(clean), digests(killed)
        differing = sorted(k for k in reference.keys() | resumed.keys() if reference.get(k) != resumed.get(k))
        leftovers = [p for p in killed.rglob("*") if p.name.endswith((".partial", ".tmp", ".lock"))]
        print(f"clean run {full_run:.1f} s; {landed} SIGKILLs landed mid-extraction out of {args.kills} tries")
        print(f"files compared: {len(reference)}; differing: {len(differing)}; temp/lock files left: {len(leftovers)}")
        print(f"score rows identical: {scores(clean) == scores(killed)}")
        for name in differing[:10]:
            print("  differs:", name)
        sys.exit(1 if differing or leftovers or scores(clean) != scores(killed) else 0)


if __name__ == "__main__":
    main()
