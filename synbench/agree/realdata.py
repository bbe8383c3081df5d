"""Labelled real data for checking the score against linear probing: readers and each model's preprocessing.

Images (digits, image folders, an .npz of N x H x W or N x C x H x W) are resized to an image model's
input; samples that already have a model's input shape (an .npz of signals, sequences or table rows)
are used as they are. An image folder's images are first brought to one common size: the first
image's, scaled down (aspect kept) so that its long side is at most ``FOLDER_MAX_SIDE`` pixels.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import DataError
from ..core.inputs import Preprocess
from ..core.spec import shape_text
from .datasets import NAMED_SETS

__all__ = ["LabelledImages", "load_images", "prepare", "FOLDER_MAX_SIDE"]

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
FOLDER_MAX_SIDE = 256  # pixels on the long side of an image folder's common size
_RESIZE_MODES = {"nearest": "nearest", "bilinear": "bilinear", "bicubic": "bicubic", "area": "area"}


@dataclass(frozen=True)
class LabelledImages:
    """Samples as float32 of shape (n, *sample shape) and integer class labels of shape (n,).

    Images are in [0, 1] of shape (n, C, H, W) or (n, H, W); uint8 arrays are read as 0-255 pixels.
    ``groups`` (n,) puts dependent samples (tiles of one photo region) in one group, which the probe's
    folds keep whole (None: every sample is its own).
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    groups: np.ndarray | None = None

    @property
    def digest(self) -> str:
        """Content digest: the key of the stored features of this data set."""
        digest = hashlib.sha256(f"{self.images.shape}".encode())
        digest.update(np.ascontiguousarray(self.images).tobytes())
        digest.update(np.ascontiguousarray(self.labels).astype(np.int64).tobytes())
        if self.groups is not None:
            digest.update(b"groups" + np.ascontiguousarray(self.groups).astype(np.int64).tobytes())
        return digest.hexdigest()[:16]


def _checked(name: str, images: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None) -> LabelledImages:
    if images.ndim < 2 or 0 in images.shape:
        raise DataError(f"{name}: X must hold N samples of any shape (N x ...); got shape {images.shape}.")
    if len(images) != len(labels):
        raise DataError(f"{name}: {len(images)} samples but {len(labels)} labels; give one label per sample.")
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255
    images = images.astype(np.float32)
    if not np.isfinite(images).all():
        raise DataError(f"{name}: the samples hold NaN or Inf values; clean the data set.")
    labels = np.asarray(labels)
    if not _valid_labels(labels):
        raise DataError(
            f"{name}: labels must be finite integers or strings, one per sample; got {labels.dtype} of shape "
            f"{labels.shape}. Give y as class numbers or names."
        )
    if np.unique(labels).size < 2:
        raise DataError(f"{name}: all {len(labels)} samples have one class; a linear probe needs two or more.")
    if np.bincount(np.unique(labels, return_inverse=True)[1]).min() < 2:
        raise DataError(f"{name}: a class has a single sample; give each class at least two.")
    groups = None if groups is None else np.asarray(groups, dtype=np.int64)
    if groups is not None and groups.shape != labels.shape:
        raise DataError(f"{name}: {len(groups)} sample groups for {len(labels)} samples; give one group per sample.")
    return LabelledImages(name, images, np.unique(labels, return_inverse=True)[1].astype(np.int64), groups)


def _valid_labels(labels: np.ndarray) -> bool:
    if labels.ndim != 1:
        return False
    if labels.dtype.kind == "f":  # class numbers saved as floats: whole and finite
        return bool(np.isfinite(labels).all() and (labels == np.round(labels)).all())
    return labels.dtype.kind in "biuUS"


def _digits() -> LabelledImages:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return _checked("digits", digits.images[:, None].astype(np.float32) / 16.0, digits.target)


def _npz(path: Path) -> LabelledImages:
    try:
        with np.load(path, allow_pickle=False) as data:
            images, labels = data["X"], data["y"]
    except KeyError:
        raise DataError(f"{path.name}: an .npz data set needs arrays 'X' (samples) and 'y' (labels).") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DataError(f"cannot read {str(path)!r}: {reason}; save it with numpy.savez.") from None
    return _checked(path.name, images, labels)


def _visible_entries(folder: Path) -> list[Path]:
    """A folder's entries in name order, hidden ones (``.ipynb_checkpoints``, ``.DS_Store``) left out."""
    return sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))


def _common_size(size: tuple[int, int]) -> tuple[int, int]:
    scale = min(1.0, FOLDER_MAX_SIDE / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _image_folder(path: Path) -> LabelledImages:
    """FOLDER/<class>/<image>: regular image files only (not a FIFO named x.png), each at the common size."""
    from PIL import Image, UnidentifiedImageError

    classes = [entry for entry in _visible_entries(path) if entry.is_dir()]
    files = [
        (file, folder.name)
        for folder in classes
        for file in _visible_entries(folder)
        if file.suffix.lower() in _IMAGE_SUFFIXES and file.is_file()
    ]
    if not files:
        raise DataError(f"{str(path)!r} holds no class sub-folders of images; use FOLDER/<class>/<image>.png.")
    images, size = [], None
    for file, _ in files:
        try:
            with Image.open(file) as image:
                size = size or _common_size(image.size)
                image.draft("RGB", size)  # a large JPEG is decoded at a reduced scale
                rgb = image.convert("RGB").resize(size, Image.BILINEAR)
                images.append(np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1))
        except Image.DecompressionBombError:
            raise DataError(
                f"image {str(file)!r} has more pixels than the {2 * Image.MAX_IMAGE_PIXELS} PIL reads safely; "
                "shrink or remove it."
            ) from None
        except (UnidentifiedImageError, OSError):
            raise DataError(f"cannot read image {str(file)!r}; remove it or convert it to PNG.") from None
    return _checked(path.name, np.stack(images), np.array([label for _, label in files]))


def load_images(source: str) -> LabelledImages:
    """``digits`` (scikit-learn's 8x8 digits), a named set of ``datasets`` (``photos``, ``lfw``), an ``.npz``
    with ``X`` and ``y``, or a folder of class folders."""
    if source == "digits":
        return _digits()
    if source in NAMED_SETS:
        return _checked(source, *NAMED_SETS[source]())
    path = Path(source).expanduser()
    if path.suffix == ".npz" and path.is_file():
        return _npz(path)
    if path.is_dir():
        return _image_folder(path)
    named = ", ".join(repr(name) for name in ("digits", *NAMED_SETS))
    raise DataError(f"data {source!r} is not {named}, an existing .npz file or a folder of class folders.")


def prepare(images: np.ndarray, preprocess: Preprocess) -> torch.Tensor:
    """Samples as the model expects them, then its mean/std per channel (the first axis).

    Samples of the model's input shape are used as they are; images (H x W, or C x H x W with C = 1
    or 3) for an image model take its channels, size and interpolation. Raises DataError otherwise, and
    for an image model (C x H x W, C = 1 or 3) whose samples leave [0, 1] (0-255 floats).
    """
    if _is_image_shape(preprocess.input_shape) and images.size and (images.min() < 0 or images.max() > 1):
        raise DataError(
            f"float images must lie in [0, 1] for an image model; got values in [{images.min():g}, "
            f"{images.max():g}]: divide 0-255 pixels by 255 (or save them as uint8)."
        )
    batch = torch.from_numpy(images)
    if tuple(batch.shape[1:]) != preprocess.input_shape:
        batch = _resized_images(batch, preprocess)
    per_channel = (1, -1, *[1] * (batch.ndim - 2))
    mean = torch.tensor(preprocess.mean).view(per_channel)
    std = torch.tensor(preprocess.std).view(per_channel)
    return ((batch - mean) / std).float().contiguous()


def _is_image_shape(shape: tuple[int, ...]) -> bool:
    """(C, H, W) with one or three channels: a model whose samples are images in [0, 1]."""
    return len(shape) == 3 and shape[0] in (1, 3)


def _resized_images(batch: torch.Tensor, preprocess: Preprocess) -> torch.Tensor:
    shape, sample = preprocess.input_shape, tuple(batch.shape[1:])
    if batch.ndim == 3:  # grey N x H x W
        batch = batch[:, None]
    if len(shape) != 3 or batch.ndim != 4 or batch.shape[1] not in (1, 3) or shape[0] not in (1, 3):
        raise DataError(
            f"samples of shape {shape_text(sample)} do not fit the model's input shape {shape_text(shape)}; "
            f"give samples of exactly that shape (N x {' x '.join(map(str, shape))}): only images are resized."
        )
    channels, height, width = shape
    if batch.shape[1] == 1 and channels == 3:
        batch = batch.expand(-1, 3, -1, -1)
    elif batch.shape[1] == 3 and channels == 1:  # ITU-R BT.601 luma
        batch = (batch * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    if batch.shape[2:] != (height, width):
        mode = _RESIZE_MODES.get(preprocess.interpolation, "bicubic")
        options = {} if mode in ("nearest", "area") else {"align_corners": False, "antialias": True}
        batch = F.interpolate(batch, size=(height, width), mode=mode, **options)
    return batch
