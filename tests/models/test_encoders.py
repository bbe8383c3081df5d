import pytest
import torch
from safetensors.torch import save_file

from synbench.core.errors import DataError, EncoderError
from synbench.models.encoders import resolve_encoder
from synbench.models.references import parse_reference, read_model_list


def test_identity_and_noise_controls():
    identity = resolve_encoder("identity:3x4x4")
    assert identity.feature_dim == 48 and identity.preprocess.mean == (0.0,) * 3
    noise = resolve_encoder("noise:3x4x4@7")
    assert noise.feature_dim == 64 and noise.fingerprint != resolve_encoder("noise:3x4x4").fingerprint


def test_controls_take_any_rank_and_join_a_spec_of_their_own_shape():
    flat, signal = resolve_encoder("identity:256"), resolve_encoder("noise:2x128@3")
    assert flat.feature_dim == 256 and flat.preprocess.mean == (0.0,) and flat.preprocess.interpolation == "none"
    assert signal.feature_dim == 64 and signal.preprocess.input_shape == (2, 128)
    image = resolve_encoder("identity:3x16x16")
    assert resolve_encoder("identity:3x16x16", input_shape=(3, 16, 16)).fingerprint == image.fingerprint
    assert resolve_encoder("identity:256", input_shape=[256]).fingerprint == flat.fingerprint
    with pytest.raises(EncoderError, match=r"takes 3x16x16 inputs but .* is 3x8x8; name identity:3x8x8, or drop"):
        resolve_encoder("identity:3x16x16", input_shape=(3, 8, 8))
    for overrides in ({"mean": (0.5,)}, {"std": (0.5,)}, {"mean": (0.5,), "input_shape": (256,)}):
        with pytest.raises(EncoderError, match=r"'noise:256' is a control .* takes no mean/std; drop --mean/--std"):
            resolve_encoder("noise:256", **overrides)


def test_a_model_of_any_rank_takes_its_own_or_the_given_normalisation():
    from torch import nn

    from synbench.models.encoders import encoder_from_module
    from synbench.models.references import EncoderRef

    ref = EncoderRef("module:flatten", "module", "flatten")
    rows = encoder_from_module(nn.Flatten(), ref, "flatten", {}, (32,))
    assert rows.preprocess.describe() == "input 32, mean (0), std (1) [override]" and rows.feature_dim == 32
    scaled = encoder_from_module(nn.Flatten(), ref, "flatten", {}, (2, 16), mean=(0.5, 0.1), std=(2.0,))
    assert scaled.preprocess.mean == (0.5, 0.1) and scaled.preprocess.std == (2.0, 2.0)
    declared = encoder_from_module(nn.Flatten(), ref, "flatten", {"input_size": (4, 8), "mean": (0.2,) * 4})
    assert declared.preprocess.mean == (0.2,) * 4 and declared.preprocess.source == "model"
    with pytest.raises(
        EncoderError, match=r"bad preprocessing .* input shape 32 need 1 value; got 3 mean and 1 std values"
    ):
        encoder_from_module(nn.Flatten(), ref, "flatten", {}, (32,), mean=(0.1, 0.2, 0.3))


def test_random_timm_is_seeded_and_uses_the_model_config():
    first, second = resolve_encoder("random:test_vit"), resolve_encoder("random:test_vit@0")
    assert first.fingerprint == second.fingerprint
    assert first.fingerprint != resolve_encoder("random:test_vit@1").fingerprint
    assert first.preprocess.input_shape == (3, 160, 160) and first.preprocess.mean == (0.5, 0.5, 0.5)
    assert first.feature_dim == 64


def test_layer_changes_the_fingerprint():
    pre_logits = resolve_encoder("random:test_vit")
    features = resolve_encoder("random:test_vit#features")
    assert pre_logits.weights_digest == features.weights_digest and pre_logits.fingerprint != features.fingerprint


def test_timm_weights_from_safetensors_and_state_dict_files(tmp_path):
    reference = resolve_encoder("random:test_vit@3")
    state = {k: v.contiguous() for k, v in reference.module.state_dict().items()}
    save_file(state, str(tmp_path / "w.safetensors"))
    torch.save(state, tmp_path / "w.pth")
    from_safetensors = resolve_encoder(f"timm:test_vit@{tmp_path / 'w.safetensors'}")
    from_state_dict = resolve_encoder(f"timm:test_vit@{tmp_path / 'w.pth'}")
    assert from_safetensors.weights_digest == from_state_dict.weights_digest == reference.weights_digest
    assert from_safetensors.fingerprint == reference.fingerprint


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: torch.save({"w": Evil()}, p), r"needs to unpickle code, which SynBench never runs"),
        (lambda p: torch.save([1, 2], p), r"holds no state dict of tensors"),
        (lambda p: p.write_bytes(b"not a checkpoint"), r"cannot read checkpoint"),
        (lambda p: torch.save({"blocks.0.bogus": torch.zeros(1)}, p), r"has no tensor named .* of .test_vit."),
        (lambda p: None, r"does not exist; check the path after '@'"),
    ],
)
def test_bad_checkpoints_are_refused(tmp_path, make, message):
    path = tmp_path / "model.pth"
    make(path)
    with pytest.raises(EncoderError, match=message):
        resolve_encoder(f"timm:test_vit@{path}")


def test_a_checkpoint_with_a_missing_tensor_names_its_file_and_does_not_suggest_order(tmp_path):
    # issue 31: one tensor absent from a checkpoint of the model's own names is not a naming convention
    state = {k: v.contiguous() for k, v in resolve_encoder("random:test_vit@1").module.state_dict().items()}
    dropped = sorted(state)[-1]
    save_file({k: v for k, v in state.items() if k != dropped}, str(tmp_path / "ckpt-7.safetensors"))
    with pytest.raises(EncoderError) as caught:
        resolve_encoder(f"timm:test_vit@{tmp_path}/ckpt-7.safetensors")
    message = str(caught.value)
    assert f"checkpoint '{tmp_path}/ckpt-7.safetensors' lacks '{dropped}' of 'test_vit'" in message
    assert "@order" not in message and "another variant" in message


def test_py_encoder_uses_its_declared_config_and_weights(tmp_path):
    encoder = resolve_encoder("py:encoders_for_tests:small_linear")
    assert encoder.preprocess.input_shape == (1, 4, 4) and encoder.preprocess.mean == (0.5,)
    state = {k: torch.ones_like(v) for k, v in encoder.module.state_dict().items()}
    save_file(state, str(tmp_path / "ones.safetensors"))
    loaded = resolve_encoder(f"py:encoders_for_tests:small_linear@{tmp_path / 'ones.safetensors'}")
    assert torch.equal(loaded.module.linear.weight, torch.ones(6, 16))
    assert loaded.fingerprint != encoder.fingerprint


@pytest.mark.parametrize(
    "ref, message",
    [
        ("tim:resnet18", r"unknown encoder scheme 'tim'.*use one of: identity:, noise:, timm:, random:, py:"),
        ("resnet18", r"unknown encoder scheme 'resnet18'"),
        ("random:resnet_18", r"unknown timm architecture 'resnet_18'.*Did you mean"),
        ("identity:3x0", r"bad input shape '3x0'.*e.g. identity:256, identity:2x128 or identity:3x4x4"),
        ("noise:3x", r"bad input shape '3x'"),
        ("identity:1x1x1x1x1x1x1x1x1", r"write 1 to 8 positive sizes"),
        ("random:test_vit@x", r"bad seed 'x'"),
        ("random:test_vit#logits", r"unknown layer 'logits'"),
        (
            "timm:test_vit",
            r"weights for 'test_vit' are not in the local Hugging Face cache.*HF_HUB_OFFLINE=0.*timm:test_vit@",
        ),
        ("py:encoders_for_tests", r"write py:MODULE:CALLABLE"),
        ("py:no_such_module:f", r"cannot import 'no_such_module:f'"),
        ("py:encoders_for_tests:not_a_module", r"returned str, not a torch.nn.Module"),
        ("py:encoders_for_tests:wrong_rank", r"returned shape \(2, 3, 224, 224\).*must return \(batch, features\)"),
        ("py:encoders_for_tests:returns_tuple", r"must return a \(batch, features\) tensor; got tuple"),
        ("py:encoders_for_tests:raises", r"py:encoders_for_tests:raises raised ValueError: weights folder not"),
    ],
)
def test_bad_references_give_one_line_with_the_fix(ref, message):
    with pytest.raises((EncoderError, DataError), match=message) as info:
        resolve_encoder(ref)
    assert "\n" not in str(info.value)


def test_input_shape_mismatch_is_reported():
    with pytest.raises(EncoderError, match=r"fails on input shape 1x160x160: .*native input shape"):
        resolve_encoder("random:test_vit", input_shape=(1, 160, 160))


def test_py_references_need_permission(monkeypatch):
    with pytest.raises(EncoderError, match="--allow-py"):
        resolve_encoder("py:encoders_for_tests:constant", allow_py=False)
    monkeypatch.delenv("SYNBENCH_ALLOW_PY")
    with pytest.raises(EncoderError, match="set SYNBENCH_ALLOW_PY=1 in this worker's own environment"):
        resolve_encoder("py:encoders_for_tests:constant")
    monkeypatch.setenv("SYNBENCH_ALLOW_PY", "1")
    assert resolve_encoder("py:encoders_for_tests:constant").feature_dim == 8


def test_features_layer_pools_in_the_models_own_layout():
    """test_mambaout is channels-last (output_fmt NHWC): pooling must average H and W, not W and C."""
    encoder = resolve_encoder("random:test_mambaout#features")
    inputs = torch.randn(2, 3, 160, 160, generator=torch.Generator().manual_seed(0))
    feature_map = encoder.module.forward_features(inputs)
    assert feature_map.shape == (2, 5, 5, 64)
    out = encoder.represent(inputs)
    assert encoder.feature_dim == 64 and out.shape == (2, 64)
    assert torch.allclose(out, feature_map.mean(dim=(1, 2)), atol=1e-6)
    convnext = resolve_encoder("random:test_convnext#features")  # NCHW
    feats = convnext.module.forward_features(inputs)
    assert torch.allclose(convnext.represent(inputs), feats.mean(dim=(2, 3)), atol=1e-6)


def test_random_init_gives_the_same_weights_when_workers_build_models_at_once():
    """--workers N builds random: models in threads; each must get the weights it gets alone."""
    from concurrent.futures import ThreadPoolExecutor

    from synbench.models.checkpoints import weights_digest
    from synbench.models.encoders import _resolve_random

    refs = [parse_reference(f"random:test_convnext@{seed}") for seed in (4, 5)]
    alone = {ref.weights: weights_digest(_resolve_random(ref)[0]) for ref in refs}
    with ThreadPoolExecutor(6) as pool:
        built = list(pool.map(lambda ref: (ref.weights, weights_digest(_resolve_random(ref)[0])), refs * 6))
    assert all(digest == alone[seed] for seed, digest in built)


def test_py_module_is_found_in_the_working_folder(tmp_path, monkeypatch):
    (tmp_path / "mymodel_cwd.py").write_text(
        "import torch\n"
        "class M(torch.nn.Module):\n"
        "    pretrained_cfg = {'input_size': (1, 4, 4), 'mean': (0.5,), 'std': (0.5,)}\n"
        "    def forward(self, x):\n"
        "        return x.flatten(1)\n"
        "def build():\n"
        "    return M()\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", str(tmp_path))])
    assert resolve_encoder("py:mymodel_cwd:build").feature_dim == 16


def test_a_user_modules_source_is_in_its_fingerprint_and_synbench_own_code_keeps_its_own(tmp_path, monkeypatch):
    """Issue 32, item 7: a changed forward with the same weights is a new model (pyfactory.py)."""
    import sys

    from synbench.models.encoders import _resolve_cached

    source = tmp_path / "mymodel_source.py"
    body = (
        "import torch\nclass M(torch.nn.Module):\n    def forward(self, x):\n        return x.flatten(1){}\n"
        "def build():\n    return M()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    fingerprints = []
    for change in ("", " * 2"):
        source.write_text(body.format(change))
        sys.modules.pop("mymodel_source", None)
        _resolve_cached.cache_clear()
        encoder = resolve_encoder("py:mymodel_source:build", input_shape=(1, 4, 4))
        fingerprints.append((encoder.fingerprint, encoder.weights_digest))
    assert fingerprints[0][1] == fingerprints[1][1] and fingerprints[0][0] != fingerprints[1][0]
    own = resolve_encoder("py:synbench.demo:digits_cnn")
    assert own.source_digest == "" and own.fingerprint == "d28be2d591f4e3f2"  # as tests/data/root-before-layout


def test_preprocessing_overrides_and_the_default_fallback_are_visible():
    fallback = resolve_encoder("py:encoders_for_tests:undeclared")
    assert fallback.preprocess.source == "default" and fallback.preprocess.input_shape == (3, 224, 224)
    chosen = resolve_encoder("py:encoders_for_tests:undeclared", input_shape=(1, 8, 8), mean=(0.0,), std=(1.0,))
    assert chosen.preprocess.input_shape == (1, 8, 8) and chosen.preprocess.mean == (0.0,)
    assert chosen.preprocess.source == "override" and chosen.fingerprint != fallback.fingerprint
    assert "input 1x8x8, mean (0), std (1) [override]" == chosen.preprocess.describe()
    with pytest.raises(EncoderError, match="need 1 value or 3 .*give one mean/std value, or one per channel"):
        resolve_encoder("py:encoders_for_tests:undeclared", input_shape=(3, 8, 8), mean=(0.1, 0.2))


def test_model_list_file(tmp_path):
    path = tmp_path / "models.txt"
    path.write_text("# my models\nidentity:3x4x4\n\nrandom:test_vit@2  # seeded\n")
    assert read_model_list(path) == ["identity:3x4x4", "random:test_vit@2"]
    path.write_text("identity:3x4x4\nbogus\n")
    with pytest.raises(EncoderError, match=r"^line 2 of model list '.*models.txt': unknown encoder scheme 'bogus'"):
        read_model_list(path)  # issue 31: the file and the line are named


def test_parse_reference_parts():
    ref = parse_reference("timm:vit_base_patch16_224@/x/w.safetensors#features")
    assert (ref.scheme, ref.target, ref.weights, ref.layer) == (
        "timm",
        "vit_base_patch16_224",
        "/x/w.safetensors",
        "features",
    )


def test_timm_pretrained_weights_load_from_the_local_hub_cache(tmp_path):
    """timm:ARCH reads the Hugging Face cache offline; the test lays the cache out itself."""
    import subprocess
    import sys

    revision = "0" * 40
    repo = tmp_path / "models--timm--test_vit.r160_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    (repo / "snapshots" / revision).mkdir(parents=True)
    reference = resolve_encoder("random:test_vit@5")
    state = {k: v.contiguous() for k, v in reference.module.state_dict().items()}
    save_file(state, str(repo / "snapshots" / revision / "model.safetensors"))
    code = (
        "from synbench.models.encoders import resolve_encoder\nprint(resolve_encoder('timm:test_vit').weights_digest)"
    )
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == reference.weights_digest
