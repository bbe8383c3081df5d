"""The natural covariance (METHOD.md sections 1, 2 and 7): the generator, the reference and the oracle's geometry,
each checked against a dense d x d computation or a Monte Carlo of what it claims."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from synbench.core.errors import SpecError
from synbench.core.inputs import Preprocess
from synbench.core.spec import BenchmarkSpec
from synbench.method.generate import block_inputs, counter_normals, natural_noise
from synbench.method.natural import CHANNEL_CORRELATION, NaturalCovariance, natural_reference, robust_separation
from synbench.method.oracle import simulate_oracle
from synbench.method.probe import robust_direction
from synbench.method.probe_solve import probe_tasks
from synbench.method.score import THRESHOLD_GRID, area, empirical_curves, reference_bound, reference_curve

SHAPE = (3, 4, 4)
RAW = Preprocess(SHAPE, (0.0,), (1.0,))
EPS = (0.0, 0.1, 0.3, 0.5)


def _dense_covariance(shape: tuple[int, int, int], exponent: float = 2.0) -> np.ndarray:
    """``K (x) S`` entry by entry from the stated power law: ``S[i, j] = mean_k P(k) cos(2 pi k . (x_i - x_j))``."""
    channels, height, width = shape
    fy, fx = np.meshgrid(np.fft.fftfreq(height), np.fft.fftfreq(width), indexing="ij")
    power = np.maximum(np.hypot(fy, fx), 1 / max(height, width)) ** -exponent
    power /= power.mean()
    y, x = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    dy, dx = y.ravel()[:, None] - y.ravel()[None], x.ravel()[:, None] - x.ravel()[None]
    phase = 2 * np.pi * (dy[..., None, None] * fy + dx[..., None, None] * fx)
    spatial = (power * np.cos(phase)).mean(axis=(-2, -1))
    correlation = CHANNEL_CORRELATION if channels == 3 else np.eye(channels)
    return np.kron(correlation, spatial)


def _natural_spec(**changes) -> BenchmarkSpec:
    fields = {"scales": (1.5, 2.5), "n_train": 65536, "n_test": 8, "block_size": 65536, "covariance": "natural"}
    return BenchmarkSpec(**{**fields, **changes})


def test_generated_noise_has_the_stated_covariance_and_mean():
    spec = _natural_spec()
    labels, inputs = block_inputs(spec, RAW, 0, "train", 0)
    x = inputs.double().numpy().reshape(len(labels), -1) - 0.5
    signs = (labels * 2.0 - 1)[:, None]
    covariance = NaturalCovariance(SHAPE)
    np.testing.assert_allclose((x * signs).mean(axis=0), 1.5 * covariance.unit_shift, atol=0.025)
    dense = _dense_covariance(SHAPE)
    empirical = np.cov((x - signs * 1.5 * covariance.unit_shift).T)
    spread = np.sqrt((dense**2 + np.outer(np.diag(dense), np.diag(dense))) / len(x))  # sd of each estimate
    assert np.abs(empirical - dense).max() < 5 * spread.max() and np.allclose(np.diag(dense), 1.0)


def test_eigenbasis_lengths_match_the_dense_covariance(rng):
    dense = _dense_covariance(SHAPE)
    covariance = NaturalCovariance(SHAPE)
    assert np.allclose(np.sort(covariance.eigenvalues.ravel()), np.linalg.eigvalsh(dense), rtol=1e-10)
    for image in (rng.normal(size=SHAPE), np.ones(SHAPE) * covariance.unit_shift):
        coordinates = covariance.coordinates(image)
        flat = image.ravel()
        assert (coordinates**2).sum() == pytest.approx(flat @ flat, rel=1e-12)  # the basis is orthonormal
        mahalanobis = (coordinates**2 / covariance.eigenvalues).sum()
        assert mahalanobis == pytest.approx(flat @ np.linalg.solve(dense, flat), rel=1e-10)
    assert mahalanobis == pytest.approx(1.0, rel=1e-12)  # the unit shift has Mahalanobis length 1


@pytest.mark.parametrize("eps", [0.1, 0.3, 0.5, 0.9])
def test_robust_separation_matches_the_dense_constrained_problem(eps):
    dense = _dense_covariance(SHAPE)
    covariance = NaturalCovariance(SHAPE)
    mean = np.full(dense.shape[0], covariance.unit_shift)
    values, vectors = np.linalg.eigh(dense)
    z, _ = robust_direction(vectors.T @ mean, values, eps)  # METHOD.md 3.4 with the true Sigma and mu
    weights = np.linalg.solve(dense, mean - vectors @ z)
    dense_q = weights @ mean / math.sqrt(weights @ dense @ weights)
    assert robust_separation(covariance.eigenvalues, covariance.mean_coordinates, eps) == pytest.approx(dense_q)
    assert dense_q < 0.97  # the chroma component: the reference really depends on eps


def test_reference_depends_on_eps_for_colour_only():
    scales = (0.5, 1.5, 2.5, 3.5)
    grey = natural_reference(scales, EPS, NaturalCovariance((1, 8, 8)))
    colour = natural_reference(scales, EPS, NaturalCovariance((3, 8, 8)))
    assert all(np.array_equal(curve, reference_curve(scales)) for curve in grey.values())  # one eigenspace: rho = 1
    assert np.array_equal(colour[0.0], reference_curve(scales))
    assert area(colour[0.5], 0.6) < area(colour[0.1], 0.6) < area(colour[0.0], 0.6)
    # rho depends on the channel correlation only: not on H, W or alpha
    other = natural_reference(scales, EPS, NaturalCovariance((3, 16, 5), 1.0))
    assert all(np.allclose(other[eps], colour[eps], rtol=1e-12) for eps in EPS)


@pytest.mark.slow
def test_reference_matches_a_monte_carlo_of_the_robust_bayes_classifier():
    """METHOD.md 2: the eps-robust Bayes classifier with the true parameters on generated inputs reaches accuracy
    Phi(q) and mean scaled bound E_ref(Phi(q)), to 1e-3 at n = 2^22 per task."""
    specs = [_natural_spec(n_train=2**19, seed=seed) for seed in range(8)]  # 2^22 samples per task in all
    dense, covariance = _dense_covariance(SHAPE), NaturalCovariance(SHAPE)
    values, vectors = np.linalg.eigh(dense)
    unit = np.full(dense.shape[0], covariance.unit_shift)
    for scale_index, scale in enumerate(specs[0].scales):
        mean = scale * unit
        weights = np.stack(
            [np.linalg.solve(dense, mean - vectors @ robust_direction(vectors.T @ mean, values, e)[0]) for e in EPS], 1
        )
        margins, positive = [], []
        for spec in specs:
            for block in range(spec.n_blocks("train")):
                labels, inputs = block_inputs(spec, RAW, scale_index, "train", block)
                margins.append((inputs.double().numpy().reshape(len(labels), -1) - 0.5) @ weights)
                positive.append(labels == 1)
        margins, positive = np.concatenate(margins), np.concatenate(positive)
        correct = (margins > 0) == positive[:, None]
        bound = (np.abs(margins) * correct).sum(axis=0) / correct.sum(axis=0) / (mean @ weights)
        q = np.array([scale * robust_separation(covariance.eigenvalues, covariance.mean_coordinates, e) for e in EPS])
        np.testing.assert_allclose(correct.mean(axis=0), norm.cdf(q), atol=1e-3)
        np.testing.assert_allclose(bound, reference_bound(norm.cdf(q)), atol=1e-3)


def test_blocks_regenerate_bit_for_bit_and_filter_the_isotropic_draws(tiny_spec):
    spec = BenchmarkSpec.from_dict({**tiny_spec.to_dict(), "covariance": "natural"})
    keys = [(s, split, b) for s in range(4) for split in ("train", "test") for b in range(2)]
    in_order = [block_inputs(spec, RAW, *key) for key in keys]
    for index in reversed(range(len(keys))):
        labels, inputs = block_inputs(spec, RAW, *keys[index])
        assert np.array_equal(labels, in_order[index][0]) and torch.equal(inputs, in_order[index][1])
    isotropic_labels, isotropic = block_inputs(tiny_spec, RAW, 2, "test", 1)
    labels, inputs = in_order[keys.index((2, "test", 1))]
    shift = tiny_spec.scales[2] * NaturalCovariance(SHAPE).unit_shift * (labels * 2.0 - 1)
    white = (
        isotropic - 0.5 - torch.from_numpy(tiny_spec.scales[2] / math.sqrt(48) * (labels * 2.0 - 1)).view(-1, 1, 1, 1)
    )
    expected = natural_noise(white.float(), NaturalCovariance(SHAPE)) + 0.5 + torch.tensor(shift).view(-1, 1, 1, 1)
    assert np.array_equal(labels, isotropic_labels)
    torch.testing.assert_close(inputs, expected.float(), atol=1e-5, rtol=1e-5)


def test_natural_needs_an_image_shape(tiny_spec):
    spec = BenchmarkSpec.from_dict({**tiny_spec.to_dict(), "covariance": "natural"})
    with pytest.raises(SpecError, match=r"covariance = 'natural' needs an image input C x H x W with 1 or 3 channels"):
        block_inputs(spec, Preprocess((2, 128), (0.0,), (1.0,)), 0, "train", 0)
    with pytest.raises(SpecError, match=r"takes 4x8x8\. Use covariance = 'isotropic'"):
        NaturalCovariance((4, 8, 8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_natural_blocks_match_the_cpu_to_float_rounding(tiny_spec):
    spec = BenchmarkSpec.from_dict({**tiny_spec.to_dict(), "covariance": "natural"})
    shape = Preprocess((3, 32, 32), (0.0,), (1.0,))
    cpu_labels, cpu = block_inputs(spec, shape, 1, "train", 0)
    labels, cuda = block_inputs(spec, shape, 1, "train", 0, device="cuda")
    assert cuda.is_cuda and np.array_equal(labels, cpu_labels)
    torch.testing.assert_close(cuda.cpu(), cpu, atol=1e-5, rtol=1e-5)
    assert torch.equal(cuda, block_inputs(spec, shape, 1, "train", 0, device="cuda")[1])


def test_white_noise_filtered_in_fourier_space_is_o_d_log_d_at_224():
    """A 3 x 224 x 224 block never builds a d x d matrix: the filter, the lengths and the reference run in the
    eigenbasis (d = 150,528; a dense Sigma would be 181 GB)."""
    covariance = NaturalCovariance((3, 224, 224))
    noise = natural_noise(counter_normals(5, 2 * 150528).view(2, 3, 224, 224), covariance)
    assert noise.shape == (2, 3, 224, 224) and 0.9 < float(noise.var()) < 1.1
    small = NaturalCovariance(SHAPE)
    q = robust_separation(covariance.eigenvalues, covariance.mean_coordinates, 0.2)
    assert q == pytest.approx(robust_separation(small.eigenvalues, small.mean_coordinates, 0.2))


def test_sketch_is_the_inputs_spectrum_at_full_rank():
    covariance = NaturalCovariance(SHAPE)
    eigenvalues, mean = covariance.sketch(48)
    assert np.allclose(np.sort(eigenvalues), np.sort(covariance.eigenvalues.ravel()), rtol=1e-14)
    assert (mean**2 / eigenvalues).sum() == pytest.approx(1.0) and np.count_nonzero(mean) == 3
    small, small_mean = covariance.sketch(2)  # fewer components than carry the mean: the two most separating
    assert len(small) == 2 and (small_mean**2 / small).sum() == pytest.approx(1.0)
    wide, wide_mean = covariance.sketch(100)  # wider than the input: the spectrum's shape, repeated
    assert len(wide) == 100 and set(np.round(wide, 12)) <= set(np.round(covariance.eigenvalues.ravel(), 12))


def _drawn_areas(rng, geometry, n, runs, scales=(0.5, 1.5, 2.5, 3.5), eps=(0.0, 0.3)):
    """Areas above t = 0.6 and 0.8 of the real probe on features N(sgn(y) s m, diag(lam)): (runs, eps, 2)."""
    variances, unit_mean = geometry
    out = []
    for _ in range(runs):

        def split(scale):
            labels = (rng.random(n) < 0.5).astype(np.uint8)
            signs = np.where(labels[:, None] == 1, 1.0, -1.0)
            return signs * scale * unit_mean + rng.normal(size=(n, len(variances))) * np.sqrt(variances), labels

        curves = empirical_curves(probe_tasks([(s, split(s), split(s)) for s in scales], eps))
        out.append([[area(curves[e], t) for t in (0.6, 0.8)] for e in eps])
    return np.array(out)


def _oracle_areas(oracle) -> np.ndarray:
    curve = oracle.contribution.mean(axis=0)
    return np.array([[area(curve[i], t) for t in (0.6, 0.8)] for i in range(len(oracle.eps))])


@pytest.mark.parametrize(("rank", "n"), [(48, 128), (12, 64)])  # the full input spectrum, and a sketch of it
def test_natural_oracle_matches_the_probe_on_drawn_features(rng, rank, n):
    geometry = NaturalCovariance(SHAPE).sketch(rank)
    brute = _drawn_areas(rng, geometry, n, runs=120)
    expected = _oracle_areas(
        simulate_oracle((0.5, 1.5, 2.5, 3.5), n, n, (0.0, 0.3), rank, draws=240, geometry=geometry)
    )
    spread = brute.std(axis=0) / np.sqrt(len(brute))
    assert np.all(np.abs(brute.mean(axis=0) - expected) < 4.5 * spread * np.sqrt(1.5))


def test_natural_oracle_at_eps_zero_is_the_isotropic_one_in_distribution():
    """Affine equivariance (METHOD.md 7): at eps = 0 only the rank and the Mahalanobis length matter."""
    geometry = NaturalCovariance(SHAPE).sketch(24)
    scales, draws = (0.5, 1.5, 2.5), 400
    natural = simulate_oracle(scales, 96, 96, (0.0,), 24, draws=draws, geometry=geometry)
    isotropic = simulate_oracle(scales, 96, 96, (0.0,), 24, seed=1, draws=draws)
    for t in (0.6, 0.8):
        a = np.array([area(c[0], t) for c in natural.draw_curves])
        b = np.array([area(c[0], t) for c in isotropic.draw_curves])
        assert abs(a.mean() - b.mean()) < 4 * np.sqrt((a.var() + b.var()) / draws)
    assert natural.contribution.shape == (3, 1, len(THRESHOLD_GRID))
