"""Crash-safe resume: SIGKILL extraction, publishing and repair at random points; compare with a clean run.

1. Runs one uninterrupted benchmark, then kills a second one mid-extraction at random moments
   (20 times by default) and lets it finish.
2. Deletes the killed root's derived tables and parts and kills the probe/curves/publish steps at
   random moments (``--publish-kills``), then lets ``audit --repair`` put the root right.
3. Flips a byte in a random chunk and kills ``audit --repair`` at random moments
   (``--repair-kills``), then repairs to the end.

Reports how many chunk/table files and score rows differ from the clean run (all should be 0).

    python benchmarks/kill9_resume.py [--kills 20] [--publish-kills 10] [--repair-kills 10]
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
from synbench.models.encoders import resolve_encoder
from synbench.stages.extract import extract_features
from synbench.stages.curves import curves_stored, publish_scores
from synbench.stages.probes import probe_stored
from synbench.core.spec import BenchmarkSpec
from synbench.store.roots import open_root
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
    files = [
        p
        for p in root.rglob("*")
        if p.is_file() and "quarantine" not in p.parts and ("/c/" in str(p) or p.parent.name in ("probes", "curves"))
    ]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(files)}


def chunk_count(root: Path) -> int:
    return sum(1 for p in root.rglob("features/*/c/*/0") if p.is_file())


def scores(root: Path) -> list[tuple]:
    import pandas as pd

    parts = list((root / "leaderboard" / "parts").glob("*.parquet"))
    frame = pd.concat(pd.read_parquet(p) for p in parts)
    return sorted(zip(frame["eps"], frame["threshold"], frame["score"], strict=True))


REPAIR = """
import sys
from synbench.audit.root import audit_root
report = audit_root(sys.argv[1], repair=True)
sys.exit(0 if report.ok else 1)
"""


def _kill_at_random(code: list[str], delay: float, rng: random.Random) -> bool:
    process = subprocess.Popen([sys.executable, "-c", *code])
    time.sleep(rng.uniform(0.5 * delay, 1.5 * delay))
    landed = process.poll() is None
    if landed:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return landed


def _publish_phase(killed: Path, model: str, kills: int, rng: random.Random) -> int:
    """Kill the derived steps (features are reused: the kills land in probe, curves or publish)."""
    landed = 0
    for _ in range(kills):
        for folder in ("probes", "curves", "leaderboard/parts"):
            for file in (killed / folder).glob("*.parquet"):
                file.unlink()
        start = time.monotonic()
        landed += _kill_at_random([RUN, str(killed), model], 3.5, rng)
        time.sleep(max(0.0, 0.1 - (time.monotonic() - start)))
    subprocess.run([sys.executable, "-c", REPAIR, str(killed)], check=True)
    return landed


def _repair_phase(killed: Path, kills: int, rng: random.Random) -> int:
    landed = 0
    chunks = sorted(killed.rglob("features/*/c/*/0"))
    for _ in range(kills):
        chunk = rng.choice(chunks)
        data = bytearray(chunk.read_bytes())
        data[len(data) // 2] ^= 0xFF
        chunk.write_bytes(bytes(data))
        landed += _kill_at_random([REPAIR, str(killed)], 4.0, rng)
    subprocess.run([sys.executable, "-c", REPAIR, str(killed)], check=True)
    return landed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--model", default="random:test_vit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--publish-kills", type=int, default=10)
    parser.add_argument("--repair-kills", type=int, default=10)
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
        published = _publish_phase(killed, args.model, args.publish_kills, rng)
        repaired = _repair_phase(killed, args.repair_kills, rng)
        reference, resumed = digests(clean), digests(killed)
        differing = sorted(k for k in reference.keys() | resumed.keys() if reference.get(k) != resumed.get(k))
        # the OS lock's empty .lock file stays by design; a .holder left behind would be a bug
        leftovers = [p for p in killed.rglob("*") if p.name.endswith((".partial", ".tmp", ".holder"))]
        print(f"clean run {full_run:.1f} s; {landed} SIGKILLs landed mid-extraction out of {args.kills} tries")
        print(
            f"{published} of {args.publish_kills} kills landed in probe/curves/publish; {repaired} of "
            f"{args.repair_kills} in audit --repair; each phase ended with audit --repair"
        )
        print(f"files compared: {len(reference)}; differing: {len(differing)}; temp/lock files left: {len(leftovers)}")
        print(f"score rows identical: {scores(clean) == scores(killed)}")
        for name in differing[:10]:
            print("  differs:", name)
        sys.exit(1 if differing or leftovers or scores(clean) != scores(killed) else 0)


if __name__ == "__main__":
    main()
