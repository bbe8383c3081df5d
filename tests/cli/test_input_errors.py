"""Item 6 of issue 32: each odd request is one line, exit 2, before anything is written (no root made)."""

from __future__ import annotations

import pickle

import pytest

from synbench.cli.main import main
from synbench.models.encoders import resolve_encoder


class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["identity:1x8x8", "--spec", "demo", "--std", "0.5"], "is a control fed raw inputs and takes no mean/std"),
        (["py:synbench.demo:digits_cnn", "--spec", "demo", "--mean", "0", "--std", "0"], "std above 0"),
        (["py:../../etc/passwd:build", "--spec", "demo"], "write py:MODULE:CALLABLE with a dotted module name"),
        (["py:encoders_for_tests:zero_width", "--spec", "demo"], "returns 0 features per sample"),
        (["timm:test_vit@{evil}", "--spec", "demo"], "needs to unpickle code, which SynBench never runs"),
    ],
)
def test_each_odd_request_is_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    marker = tmp_path / "code-ran"
    for protocol in (2, 4):  # two ways torch's safe unpickler refuses a payload: a global, an opcode
        evil = tmp_path / f"evil{protocol}.pt"
        evil.write_bytes(pickle.dumps(_RunsCode(str(marker)), protocol=protocol))
        root = tmp_path / f"root{protocol}"
        args = [arg.format(evil=evil) for arg in argv]
        assert main(["run", *args, "--root", str(root)]) == 2
        error = capsys.readouterr().err.strip()
        assert message in error and len(error.splitlines()) == 1 and "internal error" not in error
        assert not root.exists() and not marker.exists()


def test_mean_or_std_alone_keeps_the_models_other_value():
    from synbench_flows.benchmark import _overrides

    assert _overrides(None, [0.5], None) == {"input_shape": None, "mean": None, "std": (0.5,)}
    encoder = resolve_encoder("py:synbench.demo:digits_cnn", **_overrides([0.25], None, None))
    assert encoder.preprocess.mean == (0.25,) and encoder.preprocess.std == (
        resolve_encoder("py:synbench.demo:digits_cnn").preprocess.std
    )
