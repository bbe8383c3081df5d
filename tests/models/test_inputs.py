"""Odd inputs: checkpoint file names and globs, image folders and .npz data sets (issue 22, item 10)."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from encoders_for_tests import small_linear
from safetensors.torch import save_file

from synbench.agree.realdata import load_images, prepare
from synbench.core.errors import DataError, EncoderError
from synbench.core.inputs import Preprocess
from synbench.models.encoders import resolve_encoder
from synbench.models.references import parse_reference
from synbench.models.weights_paths import MAX_SERIES_FILES, absolute_reference, expand_series, series_step

SMALL = "py:encoders_for_tests:small_linear"


def _checkpoint(path, shift: float = 0.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v + shift for k, v in small_linear().state_dict().items()}, str(path))


def test_a_hash_or_a_space_in_a_file_name_is_part_of_the_path_not_a_layer(tmp_path):
    runs = tmp_path / "runs"
    for step in (1, 2):
        _checkpoint(runs / f"ckpt-{step}.safetensors", 0.01 * step)
    _checkpoint(runs / "ckpt-3 #copy.safetensors", 0.03)
    odd = f"{SMALL}@{runs}/ckpt-3 #copy.safetensors"
    assert parse_reference(odd).weights == f"{runs}/ckpt-3 #copy.safetensors"
    assert parse_reference(odd).layer == "pre_logits"
    with_layer = parse_reference(odd + "#features")
    assert (with_layer.weights, with_layer.layer) == (f"{runs}/ckpt-3 #copy.safetensors", "features")
    for typo in ("random:resnet18#featurs", "random:resnet18@3#featurs", "identity:3x4x4#x"):
        with pytest.raises(EncoderError, match="unknown layer '(featurs|x)'"):
            parse_reference(typo)
    refs = expand_series(f"{SMALL}@{runs}/ckpt-*.safetensors")
    assert len(refs) == 3 and odd in refs  # the odd file neither breaks nor joins the series
    assert series_step(odd) == (f"{SMALL}@{runs}/ckpt-* #copy.safetensors", 3)
    assert series_step(refs[0]) == (f"{SMALL}@{runs}/ckpt-*.safetensors", 1)
    assert resolve_encoder(odd).feature_dim == 6


def test_two_files_of_one_step_in_a_series_are_one_error_naming_both(tmp_path):
    for name in ("ckpt-01.safetensors", "ckpt-1.safetensors", "ckpt-2.safetensors"):
        _checkpoint(tmp_path / name)
    with pytest.raises(EncoderError, match=r"ckpt-01\.safetensors.*ckpt-1\.safetensors.*step 1") as caught:
        expand_series(f"{SMALL}@{tmp_path}/ckpt-*.safetensors")
    assert "\n" not in str(caught.value)


def test_a_glob_of_too_many_files_is_refused_in_one_line(tmp_path):
    for index in range(MAX_SERIES_FILES + 1):
        (tmp_path / f"ckpt-{index}.safetensors").touch()
    with pytest.raises(EncoderError, match=f"more than {MAX_SERIES_FILES} files") as caught:
        expand_series(f"{SMALL}@{tmp_path}/ckpt-*.safetensors")
    assert "\n" not in str(caught.value)


def test_a_path_that_exists_literally_is_not_a_glob(tmp_path):
    literal = tmp_path / "ckpt[1].safetensors"
    _checkpoint(literal)
    _checkpoint(tmp_path / "ckpt1.safetensors", 0.5)  # what the pattern [1] would match
    assert expand_series(f"{SMALL}@{literal}") == [f"{SMALL}@{literal}"]
    assert expand_series(f"{SMALL}@order:{literal}#features") == [f"{SMALL}@order:{literal}#features"]


def test_stored_references_carry_absolute_weights_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for step in (1, 2):
        _checkpoint(tmp_path / "runs" / f"ckpt-{step}.safetensors")
    assert absolute_reference("timm:resnet18@runs/w.safetensors#features") == (
        f"timm:resnet18@{tmp_path}/runs/w.safetensors#features"
    )
    assert absolute_reference("timm:resnet18@order:./runs/../w.pt") == f"timm:resnet18@order:{tmp_path}/w.pt"
    home = os.path.expanduser("~")
    assert absolute_reference("timm:resnet18@~/w.pt") == f"timm:resnet18@{home}/w.pt"
    for unchanged in ("timm:resnet18@pkg:efficientnet-lite0", "random:resnet18@3", "identity:3x4x4", "timm:resnet18"):
        assert absolute_reference(unchanged) == unchanged
    assert expand_series(f"{SMALL}@runs/ckpt-*.safetensors") == [
        f"{SMALL}@{tmp_path}/runs/ckpt-{step}.safetensors" for step in (1, 2)
    ]


def _image(path, size, value: int = 128) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, dtype=np.uint8)).save(path)


def test_an_image_folder_is_resized_to_a_bounded_common_size(tmp_path):
    _image(tmp_path / "a" / "0.png", (1200, 800))
    _image(tmp_path / "a" / "1.png", (30, 50), 10)
    _image(tmp_path / "b" / "0.png", (64, 64), 250)
    _image(tmp_path / "b" / "1.png", (300, 300), 200)
    data = load_images(str(tmp_path))
    assert data.images.shape == (4, 3, 171, 256)  # the first image's aspect, its long side cut to 256 px
    assert np.allclose(data.images[1], 10 / 255, atol=1e-6) and list(data.labels) == [0, 0, 1, 1]
    for label, size in (("a", (7, 9)), ("a", (9, 9)), ("b", (20, 20)), ("b", (3, 3))):
        _image(tmp_path / "small" / label / f"{size[0]}.png", size)
    assert load_images(str(tmp_path / "small")).images.shape[2:] == (9, 7)  # never enlarged


def test_hidden_entries_and_files_that_are_not_regular_are_skipped(tmp_path):
    for label in ("a", "b"):
        for index in range(2):
            _image(tmp_path / label / f"{index}.png", (8, 8), 60 * index)
    _image(tmp_path / ".ipynb_checkpoints" / "0-checkpoint.png", (8, 8))
    _image(tmp_path / "a" / ".0-copy.png", (8, 8))
    fifo = tmp_path / "b" / "x.png"
    os.mkfifo(fifo)
    found: list = []
    reader = threading.Thread(target=lambda: found.append(load_images(str(tmp_path))), daemon=True)
    reader.start()
    reader.join(timeout=20)
    if reader.is_alive():  # unblock the reader stuck on the FIFO before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("reading the folder hung on a FIFO named x.png")
    assert found[0].images.shape[0] == 4 and list(found[0].labels) == [0, 0, 1, 1]


def test_a_decompression_bomb_is_one_line(tmp_path, monkeypatch):
    from PIL import Image

    _image(tmp_path / "a" / "0.png", (8, 8))
    _image(tmp_path / "b" / "bomb.png", (60, 60))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DataError, match="bomb.png.*pixels") as caught:
        load_images(str(tmp_path))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "labels, message",
    [
        ([0.0, 1.0, np.nan, 1.0], "finite integers or strings"),
        ([0.0, 1.5, 0.0, 1.5], "finite integers or strings"),
        (np.array([1 + 1j, 2, 1 + 1j, 2]), "finite integers or strings"),
    ],
)
def test_npz_labels_must_be_finite_integers_or_strings(tmp_path, labels, message):
    np.savez(tmp_path / "d.npz", X=np.zeros((4, 3, 3), np.float32), y=labels)
    with pytest.raises(DataError, match=message) as caught:
        load_images(str(tmp_path / "d.npz"))
    assert "\n" not in str(caught.value)


def test_float_npz_labels_of_whole_numbers_are_fine(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.zeros((4, 3, 3), np.float32), y=[0.0, 1.0, 0.0, 1.0])
    assert list(load_images(str(tmp_path / "d.npz")).labels) == [0, 1, 0, 1]


def test_float_images_must_lie_in_the_unit_range_for_an_image_model(tmp_path):
    pixels = np.random.default_rng(0).uniform(0, 255, size=(4, 3, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "d.npz", X=pixels, y=[0, 1, 0, 1])
    data = load_images(str(tmp_path / "d.npz"))
    for shape in ((3, 8, 8), (3, 16, 16), (1, 8, 8)):
        with pytest.raises(DataError, match=r"must lie in \[0, 1\].*255") as caught:
            prepare(data.images, Preprocess(shape, (0.5,), (0.5,)))
        assert "\n" not in str(caught.value)
    signals = np.random.default_rng(1).normal(0, 100, size=(4, 2, 16)).astype(np.float32)
    assert prepare(signals, Preprocess((2, 16), (0.0,), (1.0,), "none")).abs().max() > 1  # any range


def test_a_truncated_or_empty_npz_is_one_line(tmp_path):
    np.savez(tmp_path / "good.npz", X=np.zeros((4, 3, 3), np.float32), y=[0, 1, 0, 1])
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    np.savez(tmp_path / "empty.npz", X=np.zeros((4, 1, 0, 0), np.float32), y=[0, 1, 0, 1])
    for name, message in (("cut.npz", "cannot read"), ("empty.npz", "got shape")):
        with pytest.raises(DataError, match=message) as caught:
            load_images(str(tmp_path / name))
        assert "\n" not in str(caught.value)


def test_a_models_file_keeps_a_hash_inside_a_file_name_and_drops_comments(tmp_path):
    from synbench.models.references import read_model_list

    models = tmp_path / "models.txt"
    models.write_text(
        "# checkpoints\n"
        f"{SMALL}@{tmp_path}/ckpt-3 #copy.safetensors\n"
        "identity:3x4x4  # the ceiling\n"
        "noise:3x4x4 #\n"
        f"{SMALL}@{tmp_path}/w.safetensors#features # a layer, then a comment\n"
    )
    assert read_model_list(models) == [
        f"{SMALL}@{tmp_path}/ckpt-3 #copy.safetensors",
        "identity:3x4x4",
        "noise:3x4x4",
        f"{SMALL}@{tmp_path}/w.safetensors#features",
    ]
