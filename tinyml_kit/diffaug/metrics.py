"""FID and KID from feature vectors (pure NumPy).

* FID (Heusel et al. 2017): ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})`` of Gaussians fitted
  to the two feature sets. ``Tr((S_a S_b)^{1/2})`` is computed as ``sum(sqrt(eig(S_a^{1/2} S_b S_a^{1/2})))``
  with symmetric eigen-decompositions: that matrix is similar to ``S_a S_b``, symmetric positive
  semi-definite, so its eigenvalues are real and tiny negative round-off values are clipped to 0 - no
  complex parts to discard, unlike ``scipy.linalg.sqrtm(S_a @ S_b)``.
* KID (Binkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets (mean and standard deviation reported).
"""

from __future__ import annotations

import numpy as np


def _as_features(features: np.ndarray, name: str) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"Expected `{name}` of shape (N >= 2, D). Received shape {features.shape}")
    return features


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)`` of ``(N, D)`` features, in float64."""
    features = _as_features(features, "features")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (negative round-off eigenvalues clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray) -> float:
    """Frechet (2-Wasserstein) distance between ``N(mu_a, sigma_a)`` and ``N(mu_b, sigma_b)``."""
    mu_a, mu_b = np.atleast_1d(mu_a).astype(np.float64), np.atleast_1d(mu_b).astype(np.float64)
    sigma_a, sigma_b = np.atleast_2d(sigma_a).astype(np.float64), np.atleast_2d(sigma_b).astype(np.float64)
    if mu_a.shape != mu_b.shape or sigma_a.shape != sigma_b.shape or sigma_a.shape != (mu_a.size, mu_a.size):
        raise ValueError(
            f"Mismatched statistics: mu {mu_a.shape} vs {mu_b.shape}, "
            f"sigma {sigma_a.shape} vs {sigma_b.shape}"
        )
    root_a = _psd_sqrt(sigma_a)
    middle = root_a @ sigma_b @ root_a
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2.0)
    trace_sqrt = float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())
    diff = mu_a - mu_b
    value = float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * trace_sqrt)
    return max(value, 0.0)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between two ``(N, D)`` feature sets."""
    return frechet_distance(*gaussian_statistics(features_a), *gaussian_statistics(features_b))


def polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray, degree: int = 3) -> float:
    """Unbiased MMD^2 between equal-size samples with ``k(a, b) = (a.b / d + 1)^degree``."""
    m, dim = x.shape
    k_xx = (x @ x.T / dim + 1.0) ** degree
    k_yy = (y @ y.T / dim + 1.0) ** degree
    k_xy = (x @ y.T / dim + 1.0) ** degree
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kid(
    features_a: np.ndarray,
    features_b: np.ndarray,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: mean and standard deviation of the unbiased MMD^2 over ``num_subsets`` random subsets.

    Each subset draws ``min(subset_size, N_a, N_b)`` vectors without replacement from each set.
    """
    features_a, features_b = _as_features(features_a, "features_a"), _as_features(features_b, "features_b")
    if features_a.shape[1] != features_b.shape[1]:
        raise ValueError(f"Feature sizes differ: {features_a.shape[1]} vs {features_b.shape[1]}")
    m = min(subset_size, len(features_a), len(features_b))
    rng = np.random.default_rng(seed)
    values = [
        polynomial_mmd2_unbiased(
            features_a[rng.choice(len(features_a), m, replace=False)],
            features_b[rng.choice(len(features_b), m, replace=False)],
        )
        for _ in range(num_subsets)
    ]
    return float(np.mean(values)), float(np.std(values))
