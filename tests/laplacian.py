"""Finite-difference Dirichlet Laplacians and exact φ-actions by the sine transform.

The 3-point Laplacian on n interior points of (0, 1) is S Λ S with S the orthonormal
DST-I and λ_j = -(4/h²) sin²(jπ/(2(n+1))), so f(A) v = S f(Λ) S v exactly; the 2-D
5-point Laplacian is the Kronecker sum and is diagonalised by the 2-D DST-I.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import scipy.sparse as sp

import expint


def eigenvalues_1d(n: int) -> np.ndarray:
    h = 1.0 / (n + 1)
    j = np.arange(1, n + 1)
    return -(4.0 / h**2) * np.sin(j * math.pi / (2 * (n + 1))) ** 2


def sparse_1d(n: int) -> sp.csr_matrix:
    h = 1.0 / (n + 1)
    return sp.diags([np.ones(n - 1), -2 * np.ones(n), np.ones(n - 1)], [-1, 0, 1], format="csr") / h**2


def matvec_2d(n: int):
    h2 = (1.0 / (n + 1)) ** 2

    def apply(v):
        u = v.reshape(n, n)
        out = -4.0 * u
        out[1:, :] += u[:-1, :]
        out[:-1, :] += u[1:, :]
        out[:, 1:] += u[:, :-1]
        out[:, :-1] += u[:, 1:]
        return (out / h2).ravel()

    return apply


def exact_phiv(dim: int, n: int, vs: list[np.ndarray], t: float) -> np.ndarray:
    """Σ t^k φ_k(tA) v_k for the dim-D Laplacian, by the sine transform."""
    lam1 = eigenvalues_1d(n)
    lam = lam1 if dim == 1 else (lam1[:, None] + lam1[None, :])
    out = np.zeros(lam.shape)
    for k, v in enumerate(vs):
        vhat = scipy.fft.dstn(v.reshape(lam.shape), type=1, norm="ortho")
        out += t**k * expint.phi(k, t * lam) * vhat
    return scipy.fft.idstn(out, type=1, norm="ortho").ravel()
