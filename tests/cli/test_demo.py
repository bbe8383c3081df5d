from synbench.demo import demo_models, train_digits_cnn
from synbench.models.encoders import resolve_encoder
from synbench.models.references import parse_reference


def test_digits_cnn_trains_and_loads_as_a_py_encoder(tmp_path):
    checkpoint = tmp_path / "digits.safetensors"
    accuracy = train_digits_cnn(checkpoint, epochs=10)
    assert accuracy > 0.9 and checkpoint.stat().st_size > 10_000
    trained = resolve_encoder(f"py:synbench.demo:digits_cnn@{checkpoint}")
    untrained = resolve_encoder("py:synbench.demo:digits_cnn")
    assert trained.preprocess.input_shape == (1, 8, 8) and trained.feature_dim == 32
    assert trained.weights_digest != untrained.weights_digest


def test_demo_lists_at_least_five_valid_encoders(tmp_path):
    models = demo_models(tmp_path / "digits.safetensors")
    assert len(models) >= 5 and len({parse_reference(m).scheme for m in models}) >= 4
