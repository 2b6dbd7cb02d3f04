"""Fréchet Inception Distance (Heusel et al. 2017) between two Gaussians fitted to features.

FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)).

The trace of the matrix square root is computed in float64 without ever forming sqrtm(S1 S2)
(which is not symmetric; scipy's sqrtm returns complex round-off and, for the singular
covariances of fewer samples than dimensions, needs an eps ridge). With A = S1^(1/2) S2^(1/2)
(PSD roots from eigh), A A^T = S1^(1/2) S2 S1^(1/2) is similar to S1 S2, so
tr((S1 S2)^(1/2)) = sum of the singular values of A (its nuclear norm). Singular values carry an
absolute error of eps*|A|, while taking square roots of eigenvalues would amplify the round-off
in the null space to sqrt(eps): with 200 samples in 2048 dimensions FID(X, X) is -2e-5 that way
and ~1e-12 this way. On well-conditioned inputs it agrees with scipy.linalg.sqrtm to ~1e-12.
"""

from __future__ import annotations

import numpy as np


def feature_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """features [N, D] -> (mean [D], covariance [D, D]) in float64.

    The covariance is the unbiased one (divided by N - 1), as pytorch-fid and torch-fidelity
    compute it. NVlabs' FeatureStats divides by N, so its covariances are smaller by the factor
    (N - 1)/N (1 - 2e-5 at 50k samples)."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"feature_stats: expected features [N, D] with N >= 2, got shape {x.shape}")
    mu = x.mean(axis=0)
    d = x - mu
    return mu, (d.T @ d) / (x.shape[0] - 1)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(sigma1, sigma2) -> float:
    """tr((S1 S2)^(1/2)) for symmetric PSD S1, S2 (float64; module doc)."""
    a = _psd_sqrt(np.asarray(sigma1, np.float64)) @ _psd_sqrt(np.asarray(sigma2, np.float64))
    return float(np.linalg.svd(a, compute_uv=False).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """FID between N(mu1, sigma1) and N(mu2, sigma2): mu [D], sigma [D, D]."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or mu1.ndim != 1 or sigma1.shape != (mu1.size,) * 2 or sigma2.shape != sigma1.shape:
        raise ValueError(f"frechet_distance: expected mu [D] and sigma [D, D] for both sets, got mu {mu1.shape} "
                         f"/ {mu2.shape}, sigma {sigma1.shape} / {sigma2.shape}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2))


def fid_from_features(features_a, features_b) -> float:
    """FID between two feature sets [Na, D], [Nb, D] (e.g. Inception pool3).

    With fewer samples than dimensions (fid1k..fid2k on Inception's 2048) the covariances have
    rank < D and the computation moves to sample space: with S1 = A^T A and S2 = B^T B (A, B the
    centred features over sqrt(N - 1)), the nonzero eigenvalues of S1 S2 are those of
    (A B^T)(A B^T)^T, so tr((S1 S2)^(1/2)) is the nuclear norm of the [Na, Nb] matrix A B^T: one
    small SVD instead of two eighs and an SVD at 2048 (0.3 s instead of ~5 s at 1k samples)."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"fid_from_features: expected features [Na, D] and [Nb, D] with N >= 2, got shapes "
                         f"{a.shape} and {b.shape}")
    if min(len(a), len(b)) > a.shape[1]:
        return frechet_distance(*feature_stats(a), *feature_stats(b))
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    ca, cb = (a - mu_a) / np.sqrt(len(a) - 1), (b - mu_b) / np.sqrt(len(b) - 1)
    diff = mu_a - mu_b
    nuclear = np.linalg.svd(ca @ cb.T, compute_uv=False).sum()
    return float(diff @ diff + np.sum(ca * ca) + np.sum(cb * cb) - 2.0 * nuclear)
