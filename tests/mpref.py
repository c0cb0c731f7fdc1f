"""High-precision (mpmath) references for the φ-function tests.

These never call expint: element-wise values come from the confluent hypergeometric
function, φ_k(z) = 1F1(1; k+1; z)/k!, which mpmath evaluates to the working precision
with its own cancellation control; matrix values from a Taylor series at A/2^s followed
by the doubling formula
φ_k(2X) = 2^{-k} [φ_0(X) φ_k(X) + Σ_{j=1}^{k} φ_j(X)/(k-j)!], all in mpmath arithmetic.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np

DPS = 50


def phi_scalar(k: int, z) -> complex | float:
    """φ_k(z) to 50 digits, as mpf/mpc."""
    with mp.workdps(DPS):
        return mp.hyp1f1(1, k + 1, mp.mpmathify(z)) / mp.factorial(k)


def phi_scalar_array(k: int, z: np.ndarray):
    """Reference values for an array, as an object array of mpmath numbers."""
    flat = np.asarray(z).ravel()
    conv = complex if np.iscomplexobj(flat) else float
    return np.array([phi_scalar(k, conv(v)) for v in flat], dtype=object).reshape(np.shape(z))


def relative_error(approx: np.ndarray, ref: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """|approx - ref| / max(|ref|, floor) element-wise, evaluated in mpmath."""
    flat_a = np.asarray(approx).ravel()
    conv = complex if np.iscomplexobj(flat_a) else float
    out = []
    with mp.workdps(DPS):
        for a, r in zip(flat_a, np.asarray(ref, dtype=object).ravel(), strict=True):
            denom = max(abs(r), mp.mpf(floor))
            out.append(float(abs(mp.mpmathify(conv(a)) - r) / denom) if denom else float(abs(conv(a))))
    return np.array(out).reshape(np.shape(approx))


def _to_mp(a: np.ndarray) -> np.ndarray:
    conv = complex if np.iscomplexobj(a) else float
    return np.vectorize(lambda v: mp.mpmathify(conv(v)), otypes=[object])(a)


def phi_matrix_ref(kmax: int, a: np.ndarray) -> list[np.ndarray]:
    """[φ_0(A), …, φ_kmax(A)] of one float matrix as object arrays of mpmath numbers."""
    n = a.shape[0]
    with mp.workdps(DPS):
        am = _to_mp(a)
        norm = max(float(np.max(np.sum(np.abs(a), axis=1))), 1e-300)
        s = max(0, math.ceil(math.log2(norm)))
        x = am / mp.mpf(2) ** s
        eye = np.array([[mp.mpf(int(i == j)) for j in range(n)] for i in range(n)], dtype=object)
        # ‖x‖_∞ ≤ 1: the tail after 45 terms is below 2/45! ≈ 2e-56, under 50 digits
        nterms = 45
        powers = [eye]
        for _ in range(nterms - 1):
            powers.append(powers[-1].dot(x))
        phis = []
        for k in range(kmax + 1):
            acc = np.zeros((n, n), dtype=object) + mp.mpf(0)
            for i in range(nterms):
                acc = acc + powers[i] / mp.factorial(i + k)
            phis.append(acc)
        for _ in range(s):
            new = []
            for k in range(kmax + 1):
                acc = phis[0].dot(phis[k])
                for j in range(1, k + 1):
                    acc = acc + phis[j] / mp.factorial(k - j)
                new.append(acc / mp.mpf(2) ** k)
            phis = new
        return phis


def frobenius_relative(approx: np.ndarray, ref: np.ndarray) -> float:
    """‖approx − ref‖_F / ‖ref‖_F evaluated in mpmath."""
    with mp.workdps(DPS):
        diff = _to_mp(np.asarray(approx)) - ref
        num = mp.sqrt(mp.fsum(abs(v) ** 2 for v in diff.ravel()))
        den = mp.sqrt(mp.fsum(abs(v) ** 2 for v in ref.ravel()))
        return float(num / den)
