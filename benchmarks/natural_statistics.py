"""Where the natural covariance's numbers come from (METHOD.md section 2): scikit-image's bundled colour photos.

Prints, per photo and averaged, the correlation of R, G and B about the photo's channel means (the 3 x 3
matrix ``synbench.method.natural.CHANNEL_CORRELATION`` holds, rounded to 3 decimals), and the exponent of a
power law fitted to the radially averaged power spectrum of its grey image (Hann window, 4 to N/4 cycles).

    python benchmarks/natural_statistics.py
"""

from __future__ import annotations

import numpy as np
from skimage import data

from synbench.method.natural import CHANNEL_CORRELATION

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle")  # the natural colour photographs bundled


def _photo(name: str) -> np.ndarray:
    image = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    return np.asarray(image, dtype=np.float64)[..., :3] / 255


def channel_correlation(image: np.ndarray) -> np.ndarray:
    """3 x 3 correlation of the channels over all pixels, about the photo's own channel means."""
    return np.corrcoef(image.reshape(-1, 3).T)


def spectrum_exponent(image: np.ndarray) -> float:
    """alpha of power ~ 1/f^alpha on the grey image's largest centred square, Hann-windowed (no edge leakage)."""
    grey = image.mean(axis=2)
    size = min(grey.shape)
    top, left = (grey.shape[0] - size) // 2, (grey.shape[1] - size) // 2
    square = grey[top : top + size, left : left + size]
    window = np.outer(np.hanning(size), np.hanning(size))
    power = np.abs(np.fft.fft2((square - square.mean()) * window)) ** 2
    frequency = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij")) * size
    bins = np.arange(4, size // 4)
    radial = [power[(frequency >= f) & (frequency < f + 1)].mean() for f in bins]
    return float(-np.polyfit(np.log(bins + 0.5), np.log(radial), 1)[0])


def main() -> None:
    correlations = []
    print("photo        R-G    R-B    G-B    spectrum exponent")
    for name in PHOTOS:
        image = _photo(name)
        matrix = channel_correlation(image)
        correlations.append(matrix)
        print(f"{name:12s} {matrix[0, 1]:.3f}  {matrix[0, 2]:.3f}  {matrix[1, 2]:.3f}  {spectrum_exponent(image):.2f}")
    mean = np.mean(correlations, axis=0)
    print(f"{'mean':12s} {mean[0, 1]:.3f}  {mean[0, 2]:.3f}  {mean[1, 2]:.3f}")
    print("eigenvalues of the mean:", np.round(np.linalg.eigvalsh(mean), 4))
    print("matches CHANNEL_CORRELATION to 3 decimals:", bool(np.allclose(mean, CHANNEL_CORRELATION, atol=5e-4)))


if __name__ == "__main__":
    main()
