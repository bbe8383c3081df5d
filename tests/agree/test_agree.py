"""synbench agree: real data readers, each model's preprocessing, the probe, the statistics, end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr

from synbench.agree.agreement import agree
from synbench.agree.probing import probe_accuracy
from synbench.agree.realdata import load_images, prepare
from synbench.agree.statistics import rank_agreement
from synbench.core.errors import DataError
from synbench.core.inputs import Preprocess


def test_digits_are_read_offline_as_grey_images_in_unit_range():
    data = load_images("digits")
    assert data.images.shape == (1797, 1, 8, 8) and data.images.dtype == np.float32
    assert 0 <= data.images.min() and data.images.max() <= 1 and set(np.unique(data.labels)) == set(range(10))
    assert data.digest == load_images("digits").digest


def test_npz_and_image_folders(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, size=(20, 6, 6), dtype=np.uint8)
    np.savez(tmp_path / "grey.npz", X=grey, y=np.repeat(["cat", "dog"], 10))
    data = load_images(str(tmp_path / "grey.npz"))
    assert data.images.shape == (20, 6, 6) and np.allclose(data.images[0], grey[0] / 255)
    assert list(data.labels[:2]) == [0, 0] and data.labels[-1] == 1
    np.savez(tmp_path / "rgb.npz", X=rng.random((8, 3, 5, 5)).astype(np.float32), y=[0, 1] * 4)
    assert load_images(str(tmp_path / "rgb.npz")).images.shape == (8, 3, 5, 5)
    for label in ("a", "b"):
        (tmp_path / "folder" / label).mkdir(parents=True)
        for index in range(3):
            pixels = rng.integers(0, 256, size=(7, 9, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "folder" / label / f"{index}.png")
    folder = load_images(str(tmp_path / "folder"))
    assert folder.images.shape == (6, 3, 7, 9) and list(folder.labels) == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: np.savez(p / "d.npz", X=np.zeros((4, 3, 3)), y=[1, 1, 1, 1]), "have one class"),
        (lambda p: np.savez(p / "d.npz", X=np.zeros((4, 3, 3)), y=[0, 1, 0]), "4 samples but 3 labels"),
        (lambda p: np.savez(p / "d.npz", X=np.zeros(4), y=[0, 1, 0, 1]), r"N samples of any shape .* got shape \(4,\)"),
        (lambda p: np.savez(p / "d.npz", X=np.full((4, 3, 3), np.nan), y=[0, 1, 0, 1]), "NaN or Inf"),
        (lambda p: np.savez(p / "d.npz", images=np.zeros((4, 3, 3))), "needs arrays 'X'"),
        (
            lambda p: (p / "d" / "a").mkdir(parents=True) or (p / "d" / "a" / "x.png").write_bytes(b"no"),
            "cannot read image",
        ),
        (lambda p: None, "is not 'digits', 'photos', 'lfw', an existing .npz"),
    ],
)
def test_bad_data_is_one_line(tmp_path, make, message):
    make(tmp_path)
    source = tmp_path / ("d" if (tmp_path / "d").is_dir() else "d.npz")
    with pytest.raises(DataError, match=message) as caught:
        load_images(str(source))
    assert "\n" not in str(caught.value)


def test_prepare_follows_the_models_channels_size_interpolation_and_normalisation():
    images = np.random.default_rng(1).random((2, 1, 8, 8)).astype(np.float32)
    rgb = Preprocess((3, 16, 16), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), "nearest")
    out = prepare(images, rgb)
    assert out.shape == (2, 3, 16, 16) and torch.equal(out[:, 0], out[:, 2])
    assert torch.allclose(out[0, 0, :2, :2], torch.tensor((images[0, 0, 0, 0] - 0.5) / 0.25))  # nearest: 2x2 blocks
    bicubic = prepare(images, Preprocess((3, 16, 16), (0.5,) * 3, (0.25,) * 3, "bicubic"))
    assert not torch.allclose(out, bicubic)
    grey = prepare(
        np.ones((1, 3, 4, 4), np.float32) * np.array([1.0, 0, 0], np.float32).reshape(1, 3, 1, 1),
        Preprocess((1, 4, 4), (0.0,), (1.0,)),
    )
    assert grey.shape == (1, 1, 4, 4) and torch.allclose(grey, torch.full_like(grey, 0.299))
    flat_grey = prepare(images[:, 0], Preprocess((1, 4, 4), (0.0,), (1.0,), "area"))  # an npz of N x H x W
    assert flat_grey.shape == (2, 1, 4, 4)
    assert torch.allclose(flat_grey[0, 0, 0, 0], torch.tensor(images[0, 0, :2, :2].mean()))


def test_samples_of_the_models_shape_are_used_as_they_are_and_others_are_refused():
    signals = np.random.default_rng(2).random((3, 2, 128)).astype(np.float32)
    out = prepare(signals, Preprocess((2, 128), (0.5, 0.25), (1.0, 2.0), "none"))
    assert torch.equal(out[:, 1], (torch.from_numpy(signals[:, 1]) - 0.25) / 2)
    rows = prepare(signals[:, 0, :32], Preprocess((32,), (0.5,), (1.0,), "none"))
    assert torch.equal(rows, torch.from_numpy(signals[:, 0, :32]) - 0.5)
    assert prepare(signals, Preprocess((3, 16, 16), (0.0,), (1.0,))).shape == (3, 3, 16, 16)  # N x H x W: grey images
    for samples, model_shape in [(signals, (2, 64)), (signals, (256,)), (signals[:, 0], (3, 16, 16))]:
        with pytest.raises(
            DataError, match=r"samples of shape \S+ do not fit the model's input shape \S+; give"
        ) as caught:
            prepare(samples, Preprocess(model_shape, (0.0,), (1.0,)))
        assert "\n" not in str(caught.value)


def test_probe_accuracy_and_its_interval():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(4), 100)
    separable = rng.normal(size=(400, 5)) + 6 * np.eye(5)[labels]
    good = probe_accuracy(separable, labels)
    assert good["accuracy"] > 0.97 and good["accuracy_low"] <= good["accuracy"] <= good["accuracy_high"]
    assert good["n_test"] == 120
    noise = probe_accuracy(rng.normal(size=(400, 5)), labels)
    assert 0.1 < noise["accuracy"] < 0.45 and noise["accuracy_high"] - noise["accuracy_low"] > 0.1


def test_rank_agreement_statistics():
    up = rank_agreement(np.array([0.1, 0.5, 0.7, 0.9]), np.array([0.2, 0.3, 0.8, 0.95]))
    assert up["kendall_tau"] == pytest.approx(1) and up["spearman_rho"] == pytest.approx(1)
    assert 0 < up["kendall_p"] <= 0.1 and 0 < up["spearman_p"] <= 0.1
    down = rank_agreement(np.array([0.1, 0.5, 0.7, 0.9]), np.array([0.9, 0.8, 0.3, 0.1]))
    assert down["kendall_tau"] == pytest.approx(-1)
    assert np.isnan(rank_agreement(np.array([0.1, 0.2]), np.array([0.3, 0.4]))["kendall_tau"])


@pytest.mark.slow
def test_agree_end_to_end_stores_reuses_and_is_audited(tmp_path):
    from synbench.api import evaluate
    from synbench.audit.root import audit_root

    root = tmp_path / "root"
    spec = "demo"
    for ref in ("identity:1x8x8", "noise:1x8x8", "random:test_convnext"):
        evaluate(ref, spec=spec, eps=(0.0,), root=root, device="cpu", ci_replicates=0)
    per_model, stats = agree(root, "digits", device="cpu")
    at = per_model[per_model["threshold"] == 0.6].set_index("model")
    assert 0.90 <= at.loc["identity:1x8x8", "accuracy"] <= 1.0
    assert 0.03 <= at.loc["noise:1x8x8", "accuracy"] <= 0.25
    # every rank key: both scores at each threshold and their mean; underpowered models are left out
    assert len(stats) == 10 and {"score@0.6", "score_dm@mean"} <= set(stats["rank_key"])
    assert stats["kendall_tau"].between(-1, 1).all()
    assert (stats["n_models"] + stats["n_underpowered_left_out"] == 3).all()
    stored = sorted((root / "real.zarr").glob("*/*/zarr.json"))
    assert len(stored) == 3 and len(list((root / "agreement").glob("*.parquet"))) == 2
    mtimes = [p.stat().st_mtime_ns for p in stored]
    again, _ = agree(root, "digits", device="cpu")
    assert [p.stat().st_mtime_ns for p in stored] == mtimes  # features reused
    assert np.allclose(again["accuracy"], per_model["accuracy"])
    report = audit_root(root)
    assert report.ok and report.groups == 6
    chunk = next((root / "real.zarr").glob("*/*/features/c/0/0"))
    chunk.write_bytes(chunk.read_bytes()[:-1] + bytes([chunk.read_bytes()[-1] ^ 1]))
    assert any("corrupt chunk" in p for p in audit_root(root).problems)


def test_agree_resolves_models_with_the_input_shape_and_normalisation_they_were_run_with(tmp_path):
    from synbench.api import evaluate
    from synbench.store.features import real_group_path

    root = tmp_path / "root"
    shape = (3, 16, 16)
    # the identity ceiling at the board's input shape: the spec's shape equals its own, so it is no override
    evaluate("identity:3x16x16", spec="demo", input_shape=shape, eps=(0.0,), root=root, device="cpu", ci_replicates=0)
    evaluate(
        "random:test_efficientnet",
        spec="demo",
        input_shape=shape,
        mean=(0.5,),
        std=(0.25,),
        eps=(0.0,),
        root=root,
        device="cpu",
        ci_replicates=0,
    )
    per_model, _ = agree(root, "lfw", device="cpu")
    assert set(per_model["model"]) == {"identity:3x16x16", "random:test_efficientnet"}
    assert per_model["accuracy"].between(0.5, 1.0).all() and (per_model["n_test"] == 200).all()  # every sample tested
    model = per_model[per_model["model"] == "random:test_efficientnet"].iloc[0]
    path = real_group_path(root, model["model_fingerprint"], model["data_digest"])
    group = zarr.open_group(str(path), mode="r")
    assert group.attrs["preprocess"]["input_shape"] == list(shape) and group.attrs["preprocess"]["mean"] == [0.5] * 3


def test_wilson_interval_holds_its_proportion_at_the_ends():
    from synbench.agree.probing import wilson

    for successes, n in ((60, 60), (0, 60), (59, 60)):
        low, high = wilson(successes, n)
        assert 0 <= low <= successes / n <= high <= 1
    # scipy's binomtest(...).proportion_ci(method="wilson"), not a hand-written copy (issue 31)
    assert wilson(7, 10) == pytest.approx((0.39677814746114526, 0.892208732593699), abs=1e-12)
