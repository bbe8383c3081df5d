"""Real labelled image sets that installed packages ship, and the corruptions applied to held-out images.

``photos``: tiles of scikit-image's bundled sample photos and textures, one class per photo. Tiles do
not overlap, and each photo's tiles are split into train and held-out test tiles by a seeded shuffle,
so no test pixel is seen in training. ``lfw``: scikit-image's ``lfw_subset``, 100 face and 100
non-face patches (a real binary task). Both are pure functions of their parameters: the same arrays,
bit for bit, on every machine with the same scikit-image files.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..core.errors import DataError

__all__ = ["PHOTOS", "NAMED_SETS", "photo_tiles", "lfw_faces", "corrupt", "CORRUPTIONS"]

# 16 photos of distinct content, each at least 300 x 384 pixels (cat and chelsea are the same photo).
PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "cell",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "motorcycle",
    "retina",
    "rocket",
)
_FLAT_TILE_STD = 0.005  # flatter tiles (the black border of retina) look alike across photos: left out


def _skimage_data():
    try:
        from skimage import data
    except ImportError:
        raise DataError(
            "the photos and lfw data sets need scikit-image; pip install 'synbench[realzoo]' (or scikit-image)."
        ) from None
    return data


def _photo(name: str) -> np.ndarray:
    """A bundled photo as float32 RGB (H, W, 3) in [0, 1]."""
    data = _skimage_data()
    image = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    image = np.asarray(image, dtype=np.float32) / 255.0
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]


def photo_tiles(
    size: int = 64, per_photo: int = 40, test_fraction: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-overlapping ``size`` x ``size`` tiles of the 16 photos: images (n, 3, size, size), labels, test mask.

    Per photo: all tiles of its grid that are not flat, ``per_photo`` of them drawn by a seeded
    shuffle, of which ``round(test_fraction * count)`` are held out for testing.
    """
    rng = np.random.default_rng(seed)
    images, labels, test = [], [], []
    for label, name in enumerate(PHOTOS):
        photo = _photo(name)
        rows, cols = photo.shape[0] // size, photo.shape[1] // size
        grid = photo[: rows * size, : cols * size].reshape(rows, size, cols, size, 3).transpose(0, 2, 4, 1, 3)
        tiles = grid.reshape(rows * cols, 3, size, size)
        tiles = tiles[tiles.std(axis=(1, 2, 3)) > _FLAT_TILE_STD]
        chosen = tiles[rng.permutation(len(tiles))[:per_photo]]
        held_out = int(round(test_fraction * len(chosen)))
        images.append(chosen)
        labels += [label] * len(chosen)
        test += [False] * (len(chosen) - held_out) + [True] * held_out
    return np.concatenate(images), np.array(labels), np.array(test)


def lfw_faces() -> tuple[np.ndarray, np.ndarray, None]:
    """scikit-image's ``lfw_subset``: 200 grey 25 x 25 patches, the first 100 faces (label 1), then non-faces."""
    patches = np.asarray(_skimage_data().lfw_subset(), dtype=np.float32)
    return patches[:, None], np.array([1] * 100 + [0] * 100), None


NAMED_SETS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray | None]]] = {
    "photos": photo_tiles,
    "lfw": lfw_faces,
}


def _gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(images, sigma=(0, 0, sigma, sigma), mode="reflect")


def corrupt(images: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """Images (n, C, H, W) in [0, 1] corrupted at CIFAR-10-C's severity 5 (its strongest), clipped to [0, 1].

    ``noise``: additive Gaussian pixel noise of std 0.10. ``blur``: Gaussian blur of std 1 pixel per
    32 pixels of height (CIFAR-10-C's 1.0 at 32 x 32, scaled to the image's own size).
    """
    if kind == "noise":
        noise = np.random.default_rng(seed).normal(0.0, 0.10, size=images.shape).astype(np.float32)
        out = images + noise
    elif kind == "blur":
        out = _gaussian_blur(images, images.shape[2] / 32)
    else:
        raise DataError(f"unknown corruption {kind!r}; use one of: {', '.join(CORRUPTIONS)}.")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


CORRUPTIONS = ("noise", "blur")
