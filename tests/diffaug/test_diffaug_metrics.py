"""FID and KID maths on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from tinyml_kit.diffaug.metrics import (
    fid,
    frechet_distance,
    gaussian_statistics,
    kid,
    polynomial_mmd2_unbiased,
)


def random_spd(dim: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(dim, dim))
    return a @ a.T / dim + 0.1 * np.eye(dim)


def test_identical_sets_have_zero_fid():
    features = np.random.default_rng(0).normal(size=(500, 16))
    assert fid(features, features) == pytest.approx(0.0, abs=1e-8)


def test_diagonal_gaussians_match_closed_form():
    mu_a, mu_b = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum(var_a + var_b - 2 * np.sqrt(var_a * var_b))
    assert frechet_distance(mu_a, np.diag(var_a), mu_b, np.diag(var_b)) == pytest.approx(expected, rel=1e-12)


def test_full_covariances_agree_with_scipy_sqrtm():
    s_a, s_b = random_spd(12, 1), random_spd(12, 2)
    mu_a, mu_b = np.zeros(12), np.full(12, 0.3)
    covmean = scipy.linalg.sqrtm(s_a @ s_b).real
    expected = 12 * 0.09 + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(covmean)
    assert frechet_distance(mu_a, s_a, mu_b, s_b) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu_b, s_b, mu_a, s_a) == pytest.approx(expected, rel=1e-8)  # symmetric


def test_singular_covariance_gives_real_finite_value():
    s_a = np.diag([1.0, 0.0, 0.0])  # rank 1: sqrtm(s_a @ s_b) would have a zero/complex part
    s_b = np.diag([4.0, 1.0, 0.0])
    assert frechet_distance(np.zeros(3), s_a, np.zeros(3), s_b) == pytest.approx(1 + 5 - 2 * 2.0)


def test_sampled_shifted_gaussians_approach_the_closed_form():
    rng = np.random.default_rng(0)
    dim, n = 6, 100_000
    shift, scale = 0.5, 2.0
    a = rng.normal(size=(n, dim))
    b = shift + scale * rng.normal(size=(n, dim))
    closed_form = dim * shift**2 + dim * (1 + scale**2 - 2 * scale)
    assert fid(a, b) == pytest.approx(closed_form, rel=0.02)
    mu, sigma = gaussian_statistics(b)
    np.testing.assert_allclose(mu, shift, atol=0.03)
    np.testing.assert_allclose(np.diag(sigma), scale**2, rtol=0.03)


def test_mmd_matches_the_unbiased_definition():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(1.0, 1.0, size=(7, 3))

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert polynomial_mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)


def test_kid_is_unbiased_near_zero_for_one_distribution_and_grows_with_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2000, 16)), rng.normal(size=(2000, 16))
    same, same_std = kid(a, b, num_subsets=50, subset_size=500)
    assert abs(same) < 3 * same_std / np.sqrt(50) + 1e-4
    small, _ = kid(a, b + 0.2, num_subsets=20, subset_size=500)
    large, _ = kid(a, b + 0.6, num_subsets=20, subset_size=500)
    assert 0 < small < large


def test_kid_subset_size_is_capped_and_shapes_are_checked():
    rng = np.random.default_rng(0)
    value, std = kid(rng.normal(size=(50, 4)), rng.normal(size=(30, 4)), num_subsets=3, subset_size=1000)
    assert np.isfinite(value) and np.isfinite(std)
    with pytest.raises(ValueError, match="Feature sizes differ"):
        kid(rng.normal(size=(10, 4)), rng.normal(size=(10, 5)))
    with pytest.raises(ValueError, match="Mismatched statistics"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
