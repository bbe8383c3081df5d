"""SynBench: score pretrained encoders on synthetic Gaussian tasks, without real data."""

import importlib

__version__ = "0.1.0"

# Public names, imported on first use so that `synbench --help` does not load torch.
_EXPORTS = {
    "evaluate": "api",
    "BenchmarkSpec": "core.spec",
    "load_spec": "core.spec",
    "Preprocess": "core.inputs",
    "block_inputs": "method.generate",
    "write_recipe": "stages.probes",
    "Encoder": "models.encoders",
    "resolve_encoder": "models.encoders",
    "extract_features": "stages.extract",
    "fit_probe": "method.probe",
    "evaluate_probe": "method.probe",
    "ProbeResult": "method.probe",
    "probe_stored": "stages.probes",
    "curves_stored": "stages.curves",
    "publish_scores": "stages.curves",
    "score_table": "method.score",
    "read_board": "board.read",
    "write_snapshot": "board.read",
    "summary_records": "board.tables",
    "audit_root": "audit.root",
    "open_root": "store.roots",
    "SynBenchError": "core.errors",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'synbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
