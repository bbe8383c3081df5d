"""The spec's noise covariance (METHOD.md section 1): its names, its exponent, and which input shapes take it.

``isotropic`` (the paper's, the default): ``N(0, I_d)`` on any shape. ``natural``: Gaussian images whose
spatial power falls as ``1/f^alpha`` and whose colour channels correlate as in photographs; it needs an image
shape ``C x H x W`` with 1 or 3 channels. The math lives in ``synbench.method.natural``.
"""

from __future__ import annotations

import math

from .errors import SpecError

__all__ = ["COVARIANCES", "DEFAULT_SPECTRUM_EXPONENT", "check_covariance", "check_covariance_shape"]

COVARIANCES = ("isotropic", "natural")
DEFAULT_SPECTRUM_EXPONENT = 2.0  # power ~ 1/f^2: Field (1987), van der Schaaf & van Hateren (1996)
_MAX_EXPONENT = 4.0  # beyond, a 224 x 224 image's spectrum spans more than 10^8: float32 noise loses its detail
NATURAL_CHANNELS = (1, 3)  # grey or RGB: the channel correlation is measured for these


def check_covariance(covariance: str, exponent: float | None) -> float | None:
    """Validate the two fields together; returns the exponent to store (None for isotropic, 2 by default)."""
    if covariance not in COVARIANCES:
        raise SpecError(f"covariance must be one of {', '.join(COVARIANCES)}; got {covariance!r}.")
    if covariance == "isotropic":
        if exponent is not None:
            raise SpecError(
                f"spectrum_exponent {exponent!r} applies to covariance = 'natural' only; remove it or set "
                "covariance = 'natural'."
            )
        return None
    if exponent is None:
        return DEFAULT_SPECTRUM_EXPONENT
    if isinstance(exponent, bool) or not isinstance(exponent, (int, float)) or not math.isfinite(exponent):
        raise SpecError(f"spectrum_exponent must be a number; got {exponent!r}. Use e.g. spectrum_exponent = 2.")
    if not 0 <= exponent <= _MAX_EXPONENT:
        raise SpecError(
            f"spectrum_exponent must lie in [0, {_MAX_EXPONENT:g}]; got {exponent:g}. Natural images have about 2."
        )
    return float(exponent)


def check_covariance_shape(covariance: str, shape: tuple[int, ...], model: str = "the model") -> None:
    """A natural covariance needs an image shape ``C x H x W`` with 1 or 3 channels; say so in one line."""
    if covariance == "natural" and (len(shape) != 3 or shape[0] not in NATURAL_CHANNELS):
        text = "x".join(str(v) for v in shape)
        raise SpecError(
            f"covariance = 'natural' needs an image input C x H x W with 1 or 3 channels; {model} takes {text}. "
            "Use covariance = 'isotropic' for it, or --input-shape 3,H,W."
        )
