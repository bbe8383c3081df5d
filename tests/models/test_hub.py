"""timm weights from the Hugging Face cache: offline while SynBench resolves them, and only then (issue 31)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import synbench

_PROBE = """
import os, socket
asked = []
def no_network(host, *args, **kwargs):
    asked.append(host)
    raise OSError("no network in this test")
socket.getaddrinfo = no_network
import huggingface_hub.constants as hub
from synbench.core.errors import EncoderError
from synbench.models.encoders import resolve_encoder
try:
    resolve_encoder("timm:resnet18")
except EncoderError as exc:
    print("HF_HUB_OFFLINE=0" in str(exc), "local Hugging Face cache" in str(exc))
print(asked, hub.HF_HUB_OFFLINE, os.environ.get("HF_HUB_OFFLINE"))
"""


def _run(code: str, tmp_path: Path, **extra: str) -> list[str]:
    paths = [str(Path(synbench.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
    env = {"PATH": "/usr/bin:/bin", "HF_HOME": str(tmp_path), "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**env, **extra})
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.splitlines()


def test_uncached_weights_never_reach_the_network_and_the_switch_is_set_back(tmp_path):
    # no request (no host looked up), one line naming the way out, and huggingface_hub online again afterwards
    assert _run(_PROBE, tmp_path) == ["True True", "[] False None"]


@pytest.mark.slow  # huggingface_hub retries the unreachable hub for about 50 s
def test_a_user_who_sets_hf_hub_offline_decides(tmp_path):
    # HF_HUB_OFFLINE=0: SynBench lets huggingface_hub try the hub (here it cannot: no network)
    first, second = _run(_PROBE, tmp_path, HF_HUB_OFFLINE="0")
    assert first == "False False" and second.startswith("['huggingface.co'") and second.endswith("False 0")


def test_importing_synbench_sets_no_environment_variable(tmp_path):
    code = "import os, synbench; print(os.environ.get('HF_HUB_OFFLINE'))"
    assert _run(code, tmp_path) == ["None"]
