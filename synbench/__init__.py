"""SynBench: score pretrained encoders on synthetic Gaussian tasks, without real data."""

import importlib
import os

# Never reach the network for weights; a user may opt in with HF_HUB_OFFLINE=0.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

__version__ = "0.1.0"

# Public names, imported on first use so that `synbench --help` does not load torch.
_EXPORTS = {
    "evaluate": "api",
    "BenchmarkSpec": "spec",
    "load_spec": "spec",
    "Preprocess": "preprocess",
    "block_inputs": "generate",
    "write_recipe": "stages",
    "Encoder": "encoders",
    "resolve_encoder": "encoders",
    "extract_features": "extract",
    "fit_probe": "probe",
    "evaluate_probe": "probe",
    "ProbeResult": "probe",
    "probe_stored": "stages",
    "curves_stored": "stages",
    "publish_scores": "stages",
    "score_table": "score",
    "read_board": "leaderboard",
    "write_snapshot": "leaderboard",
    "summary_records": "tables",
    "audit_root": "audit",
    "open_root": "store",
    "SynBenchError": "errors",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'synbench' has no attribute {name!r}")
