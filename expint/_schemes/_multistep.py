r"""Exponential Adams–Bashforth (Nørsett) schemes of order ``q``, variable step.

With the last ``q`` values ``N_{n-j} = N(t_{n-j}, u_{n-j})`` interpolated by
$p(\theta) = \sum_m \gamma_m \theta^m$, ``θ = (t - t_n)/h``, at the nodes
``θ_j = (t_{n-j} - t_n)/h`` (actual, possibly unequal, step sizes):

$$
u_{n+1} = e^{hL} u_n + h \sum_{m<q} m!\, \varphi_{m+1}(hL)\, \gamma_m
= e^{hL} u_n + \sum_j w_j(hL) N_{n-j},\qquad
w_j = h \sum_m m!\, (V^{-1})_{mj}\, \varphi_{m+1},
$$

with ``V_{jm} = θ_j^m``.  This is exact for ``N`` a polynomial of degree ``< q`` in
``t``; for a constant step, ``q = 2`` gives the weights ``φ_1 + φ_2`` and ``−φ_2``.

The first ``q - 1`` steps use a one-step scheme whose local error is
``O(h^{q+1})`` or better (``etd2rk`` for ``q = 2``, ``hochost4`` — stiff order 4 —
for ``q ≥ 3``), so the start-up does not reduce the global order ``q``.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from .._cache import LRUCache
from .._interp import lagrange_monomials
from .._operators import EvaluatedCoefficients
from ._phiexpr import P, PhiExpr
from ._rk import RKStepper, _combine_grouped

_CACHE = 8


def phi_adams_weights(thetas: tuple[float, ...]) -> list[PhiExpr]:
    """Weights ``w_j / h`` as φ-expressions for interpolation nodes ``thetas``."""
    q = len(thetas)
    vinv = lagrange_monomials(thetas)
    weights = []
    for j in range(q):
        expr = PhiExpr()
        for m in range(q):
            expr = expr + (math.factorial(m) * vinv[m, j]) * P(m + 1)
        weights.append(expr)
    return weights


class AdamsStepper:
    """Variable-step exponential Adams–Bashforth stepper with one-step start-up."""

    def __init__(self, order: int, linear: Any, nonlinear: Any, starter: RKStepper):
        self.q = order
        self.linear = linear
        self.nonlinear = nonlinear
        self.starter = starter
        self._evaluated_coefficients = isinstance(linear, EvaluatedCoefficients)
        self.history: deque = deque(maxlen=order)  # (t, N) newest first
        self._nfev = 0
        self._coeffs = LRUCache(_CACHE)
        # the sizes of the steps just taken, newest first: with the current step they fix
        # the interpolation nodes, so on a uniform grid every step reuses the last step's
        # coefficients without rebuilding and hashing a cache key
        self._sizes: deque = deque(maxlen=order)
        self._last: tuple[Any, Any] = (None, None)

    @property
    def nfev(self) -> int:
        return self._nfev + self.starter.nfev

    def step(self, t: float, h: float, u: Any) -> Any:
        n_now = self.nonlinear(t, u)
        self._nfev += 1
        self.history.appendleft((t, n_now))
        self._sizes.appendleft(h)
        if len(self.history) < self.q:
            return self.starter.step(t, h, u, n0=n_now)
        if self._evaluated_coefficients:
            coeffs = self._step_coefficients(t, h, u)
            apply = self.linear.apply_coefficient
            acc = apply(coeffs[0], u)
            for w, (_, nj) in zip(coeffs[1:], self.history, strict=True):
                acc = acc + apply(w, nj)
            return acc
        thetas = tuple(round((tj - t) / h, 12) for tj, _ in self.history)
        weights = phi_adams_weights(thetas)
        parts = [(nj, h * w) for w, (_, nj) in zip(weights, self.history, strict=True)]
        return _combine_grouped(self.linear, h, t, u, P(0), parts)

    def _step_coefficients(self, t: float, h: float, like: Any) -> list:
        shape = tuple(self._sizes)
        key, coeffs = self._last
        if key == shape and not self.linear.time_dependent:
            return coeffs
        thetas = tuple(round((tj - t) / h, 12) for tj, _ in self.history)
        coeffs = self._evaluated(h, t, thetas, like)
        self._last = (shape, coeffs)
        return coeffs

    def _evaluated(self, h: float, t: float, thetas: tuple[float, ...], like: Any) -> list:
        key = (h, thetas, t if self.linear.time_dependent else None)
        hit = self._coeffs.get(key)
        if hit is not None:
            return hit
        lin = self.linear
        exprs = [P(0)] + [h * w for w in phi_adams_weights(thetas)]
        lin.prefetch(h, exprs, t)
        return self._coeffs.put(key, [lin.phi_expr(h, e.terms, t, like) for e in exprs])
