"""The natural covariance of METHOD.md sections 1, 2 and 7, in its own eigenbasis; pure: arrays in, arrays out.

For an image ``C x H x W`` the noise covariance is ``Sigma = K (x) S``: ``K`` the channel correlation of
photographs (3 x 3; 1 x 1 for grey), ``S`` the stationary spatial covariance on the ``H x W`` torus whose
power at frequency ``f`` (cycles per pixel) is ``P(f) ~ max(f, f_min)^-alpha``, ``f_min = 1 / max(H, W)``,
scaled so that every pixel has variance 1. ``S`` is circulant, so the 2-D Fourier basis diagonalises it, and
``K``'s eigenvectors finish the job: in the (channel eigenvector) x (frequency) basis ``Sigma`` is diagonal
with eigenvalues ``lam_c P(k)``. Everything here (sampling filter, Mahalanobis lengths, the robust reference,
the oracle's geometry) is computed in that basis, in O(d log d), without a d x d matrix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..core.covariance import check_covariance_shape
from .probe import robust_direction
from .score import reference_curve

__all__ = ["CHANNEL_CORRELATION", "NaturalCovariance", "robust_separation", "natural_reference"]

# Correlation of R, G and B about each photo's channel means, averaged over scikit-image's bundled colour
# photographs astronaut, chelsea, coffee, rocket and motorcycle (left); benchmarks/natural_statistics.py
# measures it (R-G 0.876, R-B 0.696, G-B 0.916; the photos range 0.82-0.94, 0.50-0.79, 0.76-0.98).
CHANNEL_CORRELATION = np.array([[1.0, 0.876, 0.696], [0.876, 1.0, 0.916], [0.696, 0.916, 1.0]])


def _channel_correlation(channels: int) -> np.ndarray:
    return CHANNEL_CORRELATION if channels == 3 else np.eye(channels)


@dataclass(frozen=True)
class NaturalCovariance:
    """``Sigma = K (x) S`` for one image shape and spectrum exponent ``alpha``."""

    shape: tuple[int, int, int]  # (C, H, W), C in {1, 3}
    exponent: float = 2.0  # alpha: spatial power ~ 1/f^alpha

    def __post_init__(self) -> None:
        check_covariance_shape("natural", tuple(self.shape))

    @cached_property
    def spatial_power(self) -> np.ndarray:
        """``P(k)`` on the FFT grid, ndarray of shape (H, W), mean 1 (so each pixel has variance 1)."""
        _, height, width = self.shape
        frequency = np.hypot(*np.meshgrid(np.fft.fftfreq(height), np.fft.fftfreq(width), indexing="ij"))
        power = np.maximum(frequency, 1 / max(height, width)) ** -self.exponent
        return power / power.mean()

    @cached_property
    def channel_basis(self) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues (C,) and eigenvectors (C, C; columns) of the channel correlation ``K``."""
        return np.linalg.eigh(_channel_correlation(self.shape[0]))

    @cached_property
    def eigenvalues(self) -> np.ndarray:
        """``lam_c P(k)``: ndarray of shape (C, H, W), channel eigenvector c (ascending) by frequency k."""
        return self.channel_basis[0][:, None, None] * self.spatial_power[None]

    def coordinates(self, image: np.ndarray) -> np.ndarray:
        """Magnitudes of an image's coordinates in an orthonormal eigenbasis of ``Sigma``: shape (C, H, W).

        The unitary 2-D DFT of each channel, then ``K``'s eigenvectors across channels. A real image has
        ``X(-k) = conj X(k)``; the real cosine/sine pair of frequencies ``+-k`` (one eigenvalue) holds
        ``|X(k)|^2 + |X(-k)|^2``, so giving each of the two ``|X(k)|`` is a rotation within that eigenspace.
        """
        spectrum = np.fft.fft2(np.asarray(image, dtype=np.float64), norm="ortho")
        return np.abs(np.einsum("cj,chw->jhw", self.channel_basis[1], spectrum))

    @cached_property
    def unit_shift(self) -> float:
        """The value ``c`` whose constant image ``c 1_d`` has Mahalanobis length 1: ``mu_s = s c 1_d``."""
        ones = self.coordinates(np.ones(self.shape))
        return 1 / math.sqrt(float((ones**2 / self.eigenvalues).sum()))

    @cached_property
    def mean_coordinates(self) -> np.ndarray:
        """Coordinates of the unit mean ``c 1_d``: nonzero at frequency 0 only, one per channel eigenvector."""
        return self.coordinates(np.full(self.shape, self.unit_shift))

    def amplitude(self) -> np.ndarray:
        """``sqrt(P)`` on the ``rfft2`` grid, float32 ndarray of shape (H, W // 2 + 1): the sampling filter."""
        return np.sqrt(self.spatial_power[:, : self.shape[2] // 2 + 1]).astype(np.float32)

    def channel_root(self) -> np.ndarray:
        """``K^(1/2)`` (symmetric), float32 ndarray of shape (C, C): mixes the filtered channels."""
        values, vectors = self.channel_basis
        return ((vectors * np.sqrt(values)) @ vectors.T).astype(np.float32)

    def sketch(self, rank: int) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues and mean coordinates, each of shape (rank,), of the lossless rank-r representation in
        the inputs' geometry (METHOD.md 7): the components that carry the mean, then ``rank - k`` eigenvalues
        of the others taken evenly in rank order (all of them, once each, at ``rank = d``)."""
        eigenvalues, mean = self.eigenvalues.ravel(), self.mean_coordinates.ravel()
        signal = np.abs(mean) > 1e-12 * np.abs(mean).max()
        kept, kept_mean = eigenvalues[signal], mean[signal]
        if rank < len(kept):  # keep the most separating components, their mean rescaled to length 1
            top = np.argsort(kept_mean**2 / kept)[::-1][:rank]
            kept, kept_mean = kept[top], kept_mean[top] / math.sqrt(float((kept_mean[top] ** 2 / kept[top]).sum()))
        others = np.sort(eigenvalues[~signal] if (~signal).any() else eigenvalues)
        extra = rank - len(kept)
        picks = ((np.arange(extra) + 0.5) * len(others) / max(extra, 1)).astype(int)
        return np.concatenate([kept, others[picks]]), np.concatenate([kept_mean, np.zeros(extra)])


def robust_separation(eigenvalues: np.ndarray, mean: np.ndarray, eps: float) -> float:
    """``q = w^T mu / sqrt(w^T Sigma w)`` of the eps-robust Bayes classifier with the true parameters (METHOD.md 2).

    ``eigenvalues`` and ``mean`` are ``Sigma``'s spectrum and ``mu``'s coordinates in its eigenbasis (any shape);
    ``w = Sigma^-1 (mu - z*)`` with ``z*`` of METHOD.md 3.4, the ``nu`` root over these components. Its accuracy
    is ``Phi(q)``; ``q`` is the Mahalanobis length of ``mu`` at eps = 0 and falls with eps unless ``mu`` lies in
    one eigenspace.
    """
    carried = mean.ravel() != 0  # a component without mean takes no part in z*, w^T mu or w^T Sigma w
    values, mu = eigenvalues.ravel()[carried], mean.ravel()[carried]
    z, _ = robust_direction(mu, values, float(eps))
    weights = (mu - z) / values
    return float(weights @ mu / math.sqrt(float(weights**2 @ values)))


def natural_reference(
    scales: Sequence[float], eps_values: Sequence[float], covariance: NaturalCovariance
) -> dict[float, np.ndarray]:
    """``E_ref(a; eps)`` per eps (METHOD.md 2): the task at scale ``s`` has accuracy ``Phi(q)`` and bound
    ``E_ref(Phi(q))`` with ``q = s rho(eps)``, ``rho`` the ``robust_separation`` of the unit mean (q scales with s)."""
    eigenvalues, mean = covariance.eigenvalues, covariance.mean_coordinates
    scale = np.asarray(scales, dtype=np.float64)
    # at eps = 0, q = s exactly: the unit mean has Mahalanobis length 1 by construction
    ratios = {float(eps): robust_separation(eigenvalues, mean, eps) if eps > 0 else 1.0 for eps in eps_values}
    return {eps: reference_curve(scale * ratio) for eps, ratio in ratios.items()}
