"""Local root vs s3:// root on a loopback S3 server (moto), same run: wall time and requests per model.

Scores each model on the demo spec (all five stages through ``synbench.evaluate``, intervals on)
into a local folder and into ``s3://bench/<model>`` on an in-process moto server, prints the time
ratio (target <= 1.5x), the S3 requests by kind and the average size of a chunk object. Then scores
them again (a rerun, which must reuse everything) and prints that rerun's requests.

    python benchmarks/bench_object_store.py [--models identity:1x8x8,random:test_vit] [--spec demo]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import tempfile
import time
from collections import Counter

from synbench.api import evaluate


class RequestCounter(logging.Handler):
    """Counts the requests moto's werkzeug server logs, by HTTP method and kind (listing or object)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        match = re.search(r'"(GET|PUT|HEAD|POST|DELETE) (\S+)', record.getMessage())
        if match:
            method, target = match.groups()
            kind = "LIST" if method == "GET" and "list-type=" in target else method
            self.counts[kind] += 1


def start_server() -> object:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="identity:1x8x8,random:test_vit")
    parser.add_argument("--spec", default="demo")
    args = parser.parse_args()
    counter = RequestCounter()
    werkzeug = logging.getLogger("werkzeug")  # before the server starts, so that it adds no console handler
    werkzeug.setLevel(logging.INFO)
    werkzeug.addHandler(counter)
    werkzeug.propagate = False
    server = start_server()
    import s3fs

    fs = s3fs.S3FileSystem(use_listings_cache=False)
    fs.mkdir("bench")
    with tempfile.TemporaryDirectory() as local:
        for model in args.models.split(","):
            slug = re.sub(r"[^a-z0-9]+", "-", model.lower())
            start = time.perf_counter()
            evaluate(model, spec=args.spec, root=os.path.join(local, slug), device="cpu")
            local_s = time.perf_counter() - start
            counter.counts.clear()
            start = time.perf_counter()
            evaluate(model, spec=args.spec, root=f"s3://bench/{slug}", device="cpu")
            s3_s = time.perf_counter() - start
            first = dict(counter.counts)
            counter.counts.clear()
            start = time.perf_counter()
            evaluate(model, spec=args.spec, root=f"s3://bench/{slug}", device="cpu")
            rerun_s = time.perf_counter() - start
            chunks = [f for f in fs.find(f"bench/{slug}/features.zarr", detail=True).values() if "/c/" in f["name"]]
            features = [c["size"] for c in chunks if "/features/" in c["name"]]
            print(
                f"{model} on {args.spec}: local {local_s:.1f} s, s3 {s3_s:.1f} s, ratio {s3_s / local_s:.2f}x "
                f"(target <= 1.5x); rerun on s3 {rerun_s:.1f} s\n"
                f"  requests, first run: {sum(first.values())} {first}\n"
                f"  requests, rerun (all reused): {sum(counter.counts.values())} {dict(counter.counts)}\n"
                f"  {len(chunks)} chunk objects ({len(features)} feature chunks, mean "
                f"{sum(features) / max(len(features), 1) / 1024:.1f} KiB compressed)"
            )
    server.stop()


if __name__ == "__main__":
    main()
