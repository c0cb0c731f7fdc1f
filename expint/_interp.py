r"""Polynomial interpolation and Gauss–Legendre quadrature: the maths that the solver's
exponential Adams schemes and the diffusion sampler's Adams weights share.

Both engines replace a function known at nodes $s_0, …, s_q$ by its interpolant
$p(s) = \sum_j f_j\,\ell_j(s)$, $\ell_j(s) = \prod_{m \ne j} (s - s_m)/(s_j - s_m)$,
and integrate it against a weight over one step.  The solver needs the interpolant in
monomial form (its integrals against $θ^m$ are φ-functions, exactly); the sampler
integrates $\ell_j$ numerically against $e^{\mp λ}$, where the integrands are analytic,
so a Gauss–Legendre rule is exact to rounding.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["gauss_legendre", "gauss_legendre_rows", "lagrange_basis", "lagrange_monomials"]


def lagrange_basis(nodes: np.ndarray, x: np.ndarray) -> np.ndarray:
    r"""Values $\ell_j(x_k)$ of the Lagrange basis of ``nodes``, shape ``(len(nodes), len(x))``."""
    nodes = np.asarray(nodes, dtype=float)
    x = np.asarray(x, dtype=float)
    q = len(nodes)
    # factor [j, m, k] = (x_k − s_m)/(s_j − s_m), and 1 where m = j: one product over m
    # (in the order m = 0, 1, …, as a loop over the factors takes it) instead of q²
    # vector operations
    diagonal = np.arange(q)
    denominators = nodes[:, None] - nodes[None, :]
    denominators[diagonal, diagonal] = 1.0
    factors = (x[None, None, :] - nodes[None, :, None]) / denominators[:, :, None]
    factors[diagonal, diagonal] = 1.0
    return factors.prod(axis=1)


def lagrange_monomials(nodes: tuple[float, ...] | np.ndarray) -> np.ndarray:
    r"""Monomial coefficients of the Lagrange basis: entry ``[m, j]`` is the coefficient of
    $s^m$ in $\ell_j(s)$ (the inverse of the Vandermonde matrix $V_{jm} = s_j^m$)."""
    nodes = np.asarray(nodes, dtype=float)
    q = len(nodes)
    return np.linalg.inv(nodes[:, None] ** np.arange(q)[None, :])


@lru_cache(maxsize=8)
def _reference_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)
    x.setflags(write=False)
    w.setflags(write=False)
    return x, w


def gauss_legendre_rows(a: np.ndarray, b: np.ndarray, n: int = 32) -> tuple[np.ndarray, np.ndarray]:
    r"""The ``n``-point Gauss–Legendre rule on each interval $[a_i, b_i]$: nodes and
    weights of shape ``(len(a), n)``, row ``i`` integrating over $[a_i, b_i]$ (negative
    weights where $b_i < a_i$).  One vectorised evaluation for many intervals — the
    steps of a sampler's grid."""
    x, w = _reference_rule(n)
    a = np.asarray(a, dtype=float)
    half = 0.5 * (np.asarray(b, dtype=float) - a)
    return a[:, None] + half[:, None] * (x[None, :] + 1.0), half[:, None] * w[None, :]


def gauss_legendre(a: float, b: float, n: int = 32, panels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    r"""Nodes and weights of the composite ``n``-point Gauss–Legendre rule on ``panels``
    equal panels of $[a, b]$ (either orientation: for $b < a$ the weights are negative,
    so $\sum_k w_k f(x_k) ≈ \int_a^b f$).  Exact for polynomials of degree ``2n − 1``."""
    edges = np.linspace(a, b, panels + 1)
    nodes, weights = gauss_legendre_rows(edges[:-1], edges[1:], n)
    return nodes.ravel(), weights.ravel()
