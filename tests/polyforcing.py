"""y' = λy + p(t) with a quadratic p and its exact solution, for exactness tests of
multistep schemes (a method exact for polynomials of degree 2 reproduces it to rounding).

∫_0^T e^{λ(T−s)} s^m ds = m! T^{m+1} φ_{m+1}(λT), with φ from expint (checked against
mpmath in tests/test_phi_scalar.py).
"""

from __future__ import annotations

import math

import numpy as np

import expint

LAM = np.array([-3.0, -0.5 + 2.0j, 0.7])
COEF = [0.3, -1.2, 0.8]
Y0 = np.array([1.0, 0.5 - 0.2j, -0.3], dtype=complex)


def problem() -> expint.SemilinearProblem:
    return expint.SemilinearProblem(
        expint.Diagonal(LAM), lambda t, y: np.full_like(y, sum(a * t**m for m, a in enumerate(COEF)))
    )


def exact(t_end: float) -> np.ndarray:
    return np.exp(LAM * t_end) * Y0 + sum(
        a * math.factorial(m) * t_end ** (m + 1) * expint.phi(m + 1, LAM * t_end) for m, a in enumerate(COEF)
    )
