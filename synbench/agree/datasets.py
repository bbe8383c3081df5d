"""Real labelled image sets that installed packages ship, and the corruptions applied to held-out images.

``photos``: tiles of scikit-image's bundled sample photos and textures, one class per photo. Each photo
is cut into a grid of regions; tiles of several sizes, overlapping, are taken inside each region and
brought to one size, and every tile carries its region as its group, so that the k-fold probe tests
whole regions it never trained on: no test pixel is seen in training. ``lfw``: scikit-image's
``lfw_subset``, 100 face and 100 non-face patches (a real binary task). Both are pure functions of their
parameters: the same arrays, bit for bit, on every machine with the same scikit-image files.
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


def _tiles(region: np.ndarray, side: int, size: int) -> np.ndarray:
    """Every ``side`` x ``side`` tile of a region (H, W, 3) at stride side / 2, reduced to ``size`` x ``size`` by
    block means (side is a multiple of size: exact, the same on every machine): shape (k, 3, size, size)."""
    stride, factor = side // 2, side // size
    rows, cols = (region.shape[0] - side) // stride + 1, (region.shape[1] - side) // stride + 1
    tiles = [
        region[r * stride : r * stride + side, c * stride : c * stride + side]
        for r in range(max(rows, 0))
        for c in range(max(cols, 0))
    ]
    if not tiles:
        return np.zeros((0, 3, size, size), dtype=np.float32)
    blocks = np.stack(tiles).reshape(len(tiles), size, factor, size, factor, 3).mean(axis=(2, 4), dtype=np.float64)
    return blocks.transpose(0, 3, 1, 2).astype(np.float32)


def photo_tiles(
    size: int = 32,
    sides: tuple[int, ...] = (32, 64, 96),
    grid: tuple[int, int] = (2, 4),
    per_side: int = 4,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overlapping tiles of the 16 photos at several scales: images (n, 3, size, size), labels, region groups.

    Per photo: a ``grid`` of equal regions; in each region, for each tile side in ``sides`` (multiples of
    ``size``), ``per_side`` of its tiles (stride side / 2, wholly inside the region, not flat) drawn by a
    seeded shuffle, or all when it has fewer. A tile's group is its region, numbered across photos.
    """
    rng = np.random.default_rng(seed)
    images, labels, groups = [], [], []
    for label, name in enumerate(PHOTOS):
        photo = _photo(name)
        height, width = photo.shape[0] // grid[0], photo.shape[1] // grid[1]
        for index in range(grid[0] * grid[1]):
            row, col = divmod(index, grid[1])
            region = photo[row * height : (row + 1) * height, col * width : (col + 1) * width]
            for side in sides:
                tiles = _tiles(region, side, size)
                tiles = tiles[tiles.std(axis=(1, 2, 3)) > _FLAT_TILE_STD]
                chosen = tiles[rng.permutation(len(tiles))[:per_side]]
                images.append(chosen)
                labels += [label] * len(chosen)
                groups += [label * grid[0] * grid[1] + index] * len(chosen)
    return np.concatenate(images), np.array(labels), np.array(groups)


def lfw_faces() -> tuple[np.ndarray, np.ndarray, None]:
    """scikit-image's ``lfw_subset``: 200 grey 25 x 25 patches, the first 100 faces (label 1), then non-faces."""
    patches = np.asarray(_skimage_data().lfw_subset(), dtype=np.float32)
    return patches[:, None], np.array([1] * 100 + [0] * 100), None


# name -> images, labels and the group of each sample (None: every sample its own)
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
