"""The small projected problem of one Krylov sub-step of `expint.phiv`.

A sub-step on a basis of ``m`` vectors needs ``τ^p φ_p(τH) e_1`` for the ``m × m``
Hessenberg (Arnoldi) or tridiagonal (Lanczos) matrix ``H``, and the two terms of Saad's
a-posteriori error estimate beside it.  They come from one exponential of ``H``
augmented by a unit entry and a nilpotent chain (Padé(13) scaling and squaring in numpy,
`_expm_small`), or for a long Lanczos basis from the eigendecomposition of its
tridiagonal matrix, reused for every ``τ`` tried on the basis (`_Projection`).  Also the
rounding error of phipm's single-vector form, which the error estimate includes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ._phi import phi_all

# above this basis size a Lanczos sub-step takes its small φ-evaluations from the
# eigendecomposition of its tridiagonal matrix (`_small_phi_tridiagonal`) instead of a
# Padé exponential of the augmented matrix: the exponential's cost grows faster with
# the size (squarings of a full matrix), and every rejected or stretched τ on the same
# basis would pay it again, where the decomposition is reused
_EIGEN_MIN = 60


# Padé(13) numerator coefficients (Higham 2005, Table 2.3 / eq. 2.1) and its bound θ_13
_PADE13 = (
    64764752532480000.0,
    32382376266240000.0,
    7771770303897600.0,
    1187353796428800.0,
    129060195264000.0,
    10559470521600.0,
    670442572800.0,
    33522128640.0,
    1323241920.0,
    40840800.0,
    960960.0,
    16380.0,
    182.0,
    1.0,
)


_THETA13 = 5.371920351148152


def _expm_small(a: np.ndarray) -> np.ndarray:
    """``e^a`` of small matrices (a stack ``(..., k, k)``) by Padé(13) scaling and
    squaring (Higham 2005) in numpy, one scaling for the whole stack.

    Written here rather than calling ``scipy.linalg.expm`` because numpy and scipy each
    ship an OpenBLAS with its own thread pool: alternating between them inside the
    Arnoldi loop left one pool's spinning threads competing with the other's on every
    call (measured: `phiv` on the 128² Laplacian 3.3× slower than with either pool
    limited to one thread; ``python benchmarks/krylov_phiv.py``)."""
    norm = float(np.abs(a).sum(axis=-2).max()) if a.size else 0.0
    s = max(0, math.ceil(math.log2(norm / _THETA13))) if norm > _THETA13 else 0
    x = a / 2.0**s
    ident = np.eye(a.shape[-1], dtype=a.dtype)
    x2 = x @ x
    x4 = x2 @ x2
    x6 = x4 @ x2
    b = _PADE13
    u = x @ (x6 @ (b[13] * x6 + b[11] * x4 + b[9] * x2) + b[7] * x6 + b[5] * x4 + b[3] * x2 + b[1] * ident)
    v = x6 @ (b[12] * x6 + b[10] * x4 + b[8] * x2) + b[6] * x6 + b[4] * x4 + b[2] * x2 + b[0] * ident
    r = np.linalg.solve(v - u, v + u)
    for _ in range(s):
        r = r @ r
    return r


def _small_phi(h: np.ndarray, mj: int, tau: float, p: int) -> np.ndarray:
    """``τ^p φ_p(τ Ĥ) e_1`` for each row, ``Ĥ`` its ``(mj + 1) × mj`` Hessenberg block
    augmented by a unit entry at ``(mj + 1, mj)`` (shape ``(rows, mj + 2)``).

    Entries ``0 … mj − 1`` are the coefficients of the basis vectors; entries ``mj``
    and ``mj + 1`` are ``τ^{p+1} h_{mj+1,mj} [φ_{p+1}(τH)e_1]_{mj}`` and the same with
    ``φ_{p+2}`` and one more ``τ``: the two terms of Saad's error estimate (Sidje 1998
    for ``p = 0``; the same expansion for ``φ_p``, Niesen & Wright 2012).  ``p > 0``
    appends a chain of ``p`` nilpotent states to the small matrix, so that one
    exponential gives ``φ_p`` (Al-Mohy & Higham 2011, Thm 2.1, in miniature)."""
    size = mj + 2 + p
    small = np.zeros((h.shape[0], size, size), dtype=h.dtype)
    small[:, : mj + 1, :mj] = h[:, : mj + 1, :mj]
    small[:, mj + 1, mj] = 1.0
    if p:
        small[:, 0, mj + 2] = 1.0
        for i in range(p - 1):
            small[:, mj + 2 + i, mj + 3 + i] = 1.0
    f = _expm_small(tau * small)
    col = 0 if p == 0 else mj + 1 + p
    return f[:, : mj + 2, col]


def _small_phi_tridiagonal(
    lam: np.ndarray, q: np.ndarray, h_next: np.ndarray, tau: float, p: int
) -> np.ndarray | None:
    """`_small_phi` for Lanczos, from ``T = Q diag(λ) Q^H`` of each row's tridiagonal
    block (``lam``: ``(rows, k)``, real for a Hermitian ``T``, imaginary for a
    skew-Hermitian one; ``q``: ``(rows, k, k)``, unitary) and its ``h_{k+1,k}``
    (``h_next``): entries ``0 … k − 1`` are ``τ^p Q φ_p(τλ) Q^H e_1``,
    entries ``k`` and ``k + 1`` are ``τ^{p+j} h_{k+1,k} e_k^T Q φ_{p+j}(τλ) Q^H e_1``
    for ``j = 1, 2`` — what the exponential of the augmented matrix gives (its
    lower-left blocks are ``τ h e_k^T φ_{p+1}(τT)`` and the next term).

    One decomposition serves every ``τ`` tried on a basis (a rejected or stretched
    sub-step then costs ``O(k²)`` instead of an ``O(k³)`` exponential), and it is
    backward stable: ``Q`` is unitary.  The two error entries, though, are sums of
    ``k`` terms that cancel down to far below their size once the basis has converged
    (the Padé exponential resolves them: below 1e-30 in ``tests/test_phiv.py``); the sum
    then carries rounding of ``k·eps·Σ|terms|``.  None where an error entry is within 100×
    of that floor: the caller takes the exponential instead, so a tight ``tol`` is never
    compared with rounding noise."""
    phis = phi_all(p + 2, tau * lam)  # (p + 3, rows, k)
    head = q[:, 0, :].conj()  # Q^H e_1, row by row
    last = q[:, -1, :]  # e_k^T Q
    k = lam.shape[1]
    out = np.empty((lam.shape[0], k + 2), dtype=np.result_type(phis, q))
    out[:, :k] = tau**p * (q @ (phis[p] * head)[:, :, None])[:, :, 0]
    for j in (1, 2):
        terms = last * phis[p + j] * head
        entry, floor = terms.sum(axis=1), k * np.finfo(float).eps * np.abs(terms).sum(axis=1)
        if np.any(np.abs(entry) <= 100.0 * floor):
            return None
        out[:, k + j - 1] = tau ** (p + j) * h_next * entry
    return out


@dataclass
class _Projection:
    """One sub-step's projected problem: the Hessenberg matrix ``h`` of the basis of
    ``w_p`` (norms ``beta``, basis limit ``m``; ``wnorms`` = ``‖w_1‖ … ‖w_p‖`` for the
    rounding term), and ``‖A v_{m+1}‖`` once the full basis is built (``avnorm``,
    Saad's second term)."""

    h: np.ndarray
    beta: np.ndarray
    wnorms: list[np.ndarray]
    m: int
    p: int
    avnorm: np.ndarray | None = None
    lanczos: bool = False
    skew: bool = False
    eps: float = float(np.finfo(float).eps)
    _eigen: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def small_phi(self, tau: float, size: int) -> np.ndarray:
        """`_small_phi` on the first ``size`` vectors; for a Lanczos basis of more than
        `_EIGEN_MIN` vectors from the (cached) eigendecomposition of its tridiagonal
        matrix.  A trial ``τ`` too long for a growing exponential overflows here; the
        step control rejects it (no warning: nothing is wrong with the call)."""
        with np.errstate(over="ignore", invalid="ignore"):
            return self._evaluate(tau, size)

    def _evaluate(self, tau: float, size: int) -> np.ndarray:
        if not self.lanczos or size <= _EIGEN_MIN:
            return _small_phi(self.h, size, tau, self.p)
        if size not in self._eigen:
            block = self.h[:, :size, :size]
            # T = Q diag(λ) Q^H, or for a skew-Hermitian A, T = i (−iT) = Q diag(iλ) Q^H
            self._eigen[size] = np.linalg.eigh(-1j * block if self.skew else block.real)
        lam, q = self._eigen[size]
        lam = lam * 1j if self.skew else lam
        f = _small_phi_tridiagonal(lam, q, self.h[:, size, size - 1].real, tau, self.p)
        if f is None:
            return _small_phi(self.h, size, tau, self.p)
        return f if np.iscomplexobj(self.h) else f.real  # a real T has a real exponential

    def local_error(self, tau: float, size: int) -> tuple[np.ndarray, np.ndarray, float]:
        """``(f, err, xm)``: `small_phi` on the first ``size`` vectors, the local error
        estimate (a checkpoint, ``size < m``, uses the first term of Saad's expansion,
        the full basis both; plus the rounding of the single-vector form) and the
        exponent of the step-size update.  A trial ``τ`` too long for a growing
        exponential gives an infinite estimate (no warning), which `_shrink` rejects."""
        with np.errstate(over="ignore", invalid="ignore"):  # one context: it costs µs
            f = self._evaluate(tau, size)
            if size < self.m:
                err, xm = np.abs(f[:, size]) * self.beta, 1.0 / size
            else:
                p1 = np.abs(f[:, self.m]) * self.beta
                p2 = np.abs(f[:, self.m + 1]) * self.beta * (0.0 if self.avnorm is None else self.avnorm)
                err, xm = _saad_estimate(p1, p2, self.m)
            return f, (err + _rounding(self.wnorms, tau, self.eps)) if self.p else err, xm


def _rounding(wnorms: Sequence[np.ndarray], tau: float, eps: float) -> np.ndarray:
    """Rounding error of ``Σ_{j<p} τ^j/j! w_j + τ^p φ_p(τA) w_p`` per row, from the norms
    ``‖w_1‖, …, ‖w_p‖``: the terms grow like ``‖τA‖^j`` and cancel when ``A`` is stiff,
    so a few ulps (``eps``: the vectors' unit roundoff) of the largest is lost (zero for
    ``p = 0``, a single term)."""
    out = np.zeros_like(wnorms[0])
    for j, norm in enumerate(wnorms, 1):
        out = out + 8 * eps * tau**j / math.factorial(j) * norm
    return out


def _saad_estimate(p1: np.ndarray, p2: np.ndarray, m: int) -> tuple[np.ndarray, float]:
    """The local error estimate of Sidje's *expv* from the two terms of Saad's
    expansion, and the exponent of the step-size update (``1/(m−1)`` when the first
    term dominates for some row, else ``1/m``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(p1 > 10.0 * p2, p2, np.where(p1 > p2, p1 * p2 / (p1 - p2), p1))
    xm = 1.0 / m if np.all(p1 > p2) else 1.0 / max(m - 1, 1)
    return err, xm
