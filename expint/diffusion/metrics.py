r"""Sample-quality metrics in data space.

Fréchet distance between the Gaussians fitted to two sample sets,

$$
d^2 = \|μ_1 - μ_2\|^2 + \operatorname{tr}\big(C_1 + C_2
      - 2\,(C_1^{1/2} C_2 C_1^{1/2})^{1/2}\big),
$$

with the matrix square roots taken exactly from symmetric eigendecompositions (float64),
so the value is not limited by an iterative ``sqrtm``; and the per-sample RMSE against
a reference solution from the same noise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_integer

__all__ = ["frechet_distance", "gaussian_stats", "rmse", "split_half_frechet"]


def _rows(x: Any, name: str) -> np.ndarray:
    arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    if arr.ndim < 2 or arr.shape[0] < 2:
        raise ValueError(f"{name} must have shape (n, ...) with n >= 2 samples, got {arr.shape}")
    arr = arr.reshape(arr.shape[0], -1).astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def gaussian_stats(x: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased) of samples ``x`` of shape ``(n, ...)``, flattened."""
    arr = _rows(x, "x")
    return arr.mean(axis=0), np.cov(arr, rowvar=False)


def _psd_sqrt(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(0.5 * (c + c.T))
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(a: Any, b: Any) -> float:
    """Fréchet distance (squared, as FID reports it) between sample sets ``a`` and
    ``b`` of shape ``(n, ...)``, or between ``(mean, cov)`` pairs."""
    mu1, c1 = _stats(a, "a")
    mu2, c2 = _stats(b, "b")
    if mu1.shape != mu2.shape or c1.shape != c2.shape:
        raise ValueError(f"the two sets have different dimensions: {mu1.shape} and {mu2.shape}")
    s1 = _psd_sqrt(c1)
    cross = np.linalg.eigvalsh(s1 @ c2 @ s1)
    tr_sqrt = float(np.sqrt(np.clip(cross, 0.0, None)).sum())
    value = float(np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2.0 * tr_sqrt)
    # the distance is ≥ 0; rounding put equal sets at −1e-14, whose square root (the
    # unsquared distance users take) is NaN
    return max(value, 0.0)


def _stats(x: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, cov)`` of samples, or checked statistics given as such a pair: a finite
    mean of length ``d`` and a finite, symmetric, positive semi-definite ``(d, d)``
    covariance (a negative eigenvalue was clipped to zero, and a NaN mean gave NaN)."""
    if not isinstance(x, tuple):
        return gaussian_stats(x)
    if len(x) != 2:
        raise ValueError(f"{name} as statistics must be a (mean, cov) pair, got {len(x)} items")
    mu, cov = (
        np.atleast_1d(np.asarray(x[0], dtype=np.float64)),
        np.atleast_2d(np.asarray(x[1], dtype=np.float64)),
    )
    d = mu.shape[0]
    if mu.ndim != 1 or cov.shape != (d, d):
        raise ValueError(
            f"{name}: the mean must have shape (d,) and cov (d, d), got {mu.shape} and {cov.shape}"
        )
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(cov))):
        raise ValueError(f"{name}: the mean and cov must be finite")
    scale = max(float(np.abs(cov).max()), np.finfo(float).tiny)
    if np.abs(cov - cov.T).max() > 1e-8 * scale:
        raise ValueError(f"{name}: cov must be symmetric")
    if np.linalg.eigvalsh(0.5 * (cov + cov.T)).min() < -1e-8 * scale:
        raise ValueError(f"{name}: cov must be positive semi-definite (it has a negative eigenvalue)")
    return mu, cov


def split_half_frechet(x: Any, seed: int = 0) -> float:
    """Fréchet distance between two random disjoint halves of ``x``: the sampling noise
    floor of the metric at half the sample size."""
    arr = _rows(x, "x")
    if arr.shape[0] < 4:
        raise ValueError(f"x must have at least 4 samples (2 per half), got {arr.shape[0]}")
    perm = np.random.default_rng(check_integer(seed, name="seed")).permutation(arr.shape[0])
    half = arr.shape[0] // 2
    return frechet_distance(arr[perm[:half]], arr[perm[half : 2 * half]])


def rmse(x: Any, reference: Any) -> float:
    """Root mean square over samples of the per-sample Euclidean error, ``sqrt(mean_i
    ‖x_i − ref_i‖²)``."""
    a, b = _rows(x, "x"), _rows(reference, "reference")
    if a.shape != b.shape:
        raise ValueError(f"x and reference have different shapes: {a.shape} and {b.shape}")
    return float(np.sqrt(np.mean(np.sum((a - b) ** 2, axis=1))))
