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

The first ``q - 1`` steps use a one-step scheme whose local error is ``O(h^q)`` or
better (``etd2rk`` for ``q = 2``, ``hochost4`` — stiff order 4 — for ``q ≥ 3``): a
fixed number of such steps leaves the global order ``q``.

**Adaptive pairs** (``etdab43``, ``etdab54``).  The same history also gives the
order-``(q-1)`` prediction from the ``q - 1`` newest values; their difference

$$
\mathrm{err} = \sum_j \bigl(w_j^{(q)} - w_j^{(q-1)}\bigr)(hL)\, N_{n-j}
$$

estimates the local error of the order-``(q-1)`` method, at the cost of ``q``
multiply–adds and no evaluation of ``N``: a ``q(q-1)`` pair with one evaluation of
``N`` per step.  A rejected step is retried from the same history; an accepted one
adds ``N(t_{n+1}, u_{n+1})`` to it.  The start-up steps are taken by the 4(3) pair
``krogstad43`` under the same error control, and a step may grow by at most a factor
2 (variable-step Adams methods lose stability under large step ratios).

**Continuous extension** (dense output).  The same interpolant integrated over
``[t_n, t_n + θh]`` instead of the whole step,

$$
u(t_n + θh) ≈ e^{θhL} u_n + h \sum_j \sum_m A_{jm}\, θ^{m+1} φ_{m+1}(θhL)\, N_{n-j},
\qquad A_{jm} = m!\,(V^{-1})_{mj},
$$

is exact for ``N`` a polynomial of degree ``< q`` in ``t``, as the step is: its error
is ``O(h^{q+1})`` per step, so off-grid values converge at the scheme's order ``q``.
For a start-up step the interpolant runs through the first ``q`` values of ``N`` (the
step's own start and the ones after it, interpolation instead of extrapolation), once
they are known and where the start-up steps differ by at most 2×; otherwise (a run
shorter than the start-up, a long first step followed by short ones) the starter's own
extension serves.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._cache import LRUCache
from .._interp import lagrange_monomials
from .._operators import EvaluatedCoefficients
from ._phiexpr import E, P, PhiExpr
from ._rk import RKStepper, _combine_grouped, combine_once

_CACHE = 8
_MAX_STARTUP_RATIO = 2.0


@functools.lru_cache(maxsize=256)
def adams_weight_matrix(thetas: tuple[float, ...]) -> np.ndarray:
    """``A[j, m]``: the weight ``w_j / h`` is ``Σ_m A[j, m] φ_{m+1}`` for nodes ``thetas``
    (``A[j, m] = m! (V^{-1})_{mj}``).  Cached (read-only): an adaptive run's step sizes lie
    on a ladder, so the same node patterns recur at every change of step size."""
    q = len(thetas)
    fact = np.array([math.factorial(m) for m in range(q)], dtype=float)
    out = (lagrange_monomials(thetas) * fact[:, None]).T
    out.setflags(write=False)
    return out


def _as_exprs(mat: np.ndarray) -> list[PhiExpr]:
    return [PhiExpr({(m + 1, 1.0, 0.0): float(a) for m, a in enumerate(row)}) for row in mat]


def _error_matrix(thetas: tuple[float, ...]) -> np.ndarray:
    """Weights (as in `adams_weight_matrix`) of ``w^{(q)}_j − w^{(q-1)}_j``: the order-``q``
    prediction minus the one from the ``q − 1`` newest values (none on the oldest)."""
    full = adams_weight_matrix(thetas)
    lower = np.zeros_like(full)
    lower[:-1, :-1] = adams_weight_matrix(thetas[:-1])
    return full - lower


@dataclass
class _DenseRecord:
    """What `AdamsStepper.dense` needs of one step: the ``(t_j, N_j)`` its continuous
    extension interpolates (for a start-up step the stepper's list of the first ``q``,
    complete once the history is) and, for a start-up step, the starter's stage values
    (used while that list is incomplete)."""

    points: list
    starter_stages: list | None = None


class AdamsStepper:
    """Variable-step exponential Adams–Bashforth stepper with one-step start-up;
    `step_with_error` adds the estimate of the ``q(q-1)`` pair (module docstring)."""

    # largest step growth the adaptive controller may propose (see module docstring)
    max_growth = 2.0

    def __init__(self, order: int, linear: Any, nonlinear: Any, starter: RKStepper):
        self.q = order
        self.linear = linear
        self.nonlinear = nonlinear
        self.starter = starter
        self._evaluated_coefficients = isinstance(linear, EvaluatedCoefficients)
        self.history: deque = deque(maxlen=order)  # (t, N) newest first
        # the sizes of the accepted steps between the history's times, newest first:
        # with the current step they fix the interpolation nodes, so on a uniform grid
        # every step reuses the last step's coefficients without hashing a cache key
        self._gaps: deque = deque(maxlen=order - 1)
        self._last_h: float | None = None
        self._own_nfev = 0
        self._coeffs = LRUCache(_CACHE)
        self._last: tuple[Any, Any] = (None, None)
        # small Dense operators: the last coefficient set stacked for one product
        self._fusing = self._evaluated_coefficients and getattr(linear, "fusable", False)
        self._last_fused: tuple[Any, Any, Any] = (None, None, None)  # (coefficients, main, error)
        self._first: list = []  # the first q (t, N): the start-up steps' dense output

    @property
    def nfev(self) -> int:
        return self._own_nfev + self.starter.nfev

    @nfev.setter
    def nfev(self, value: int) -> None:  # the adaptive driver counts the N it evaluates
        self._own_nfev = value - self.starter.nfev

    def _record(self, t: float, n_now: Any) -> None:
        """Add ``N(t, u(t))`` to the history unless ``t`` is already its newest time
        (a retry after a rejected step)."""
        if self.history and self.history[0][0] == t:
            return
        if self.history:
            self._gaps.appendleft(self._last_h)
        self.history.appendleft((t, n_now))
        if len(self._first) < self.q:
            self._first.append((t, n_now))

    def step(self, t: float, h: float, u: Any, stages: list | None = None) -> Any:
        """``u(t + h)``; a list passed as ``stages`` receives what `dense` needs."""
        n_now = self.nonlinear(t, u)
        self._own_nfev += 1
        self._record(t, n_now)
        self._last_h = h
        if len(self.history) < self.q:
            inner: list | None = None if stages is None else []
            out = self.starter.step(t, h, u, n0=n_now, stages=inner)
            self._note_dense(stages, inner)
            return out
        self._note_dense(stages)
        return self._combine(t, h, u, error=False)[0]

    def _note_dense(self, stages: list | None, starter_stages: list | None = None) -> None:
        if stages is None:
            return
        if starter_stages is not None:  # a start-up step
            stages.append(_DenseRecord(self._first, starter_stages))
        else:
            stages.append(_DenseRecord(list(self.history)))

    def dense(self, t: float, h: float, u: Any, stages: list, theta: float) -> Any:
        """``u(t + θh)`` from a step's start ``u`` and its record in ``stages`` (module
        docstring, *continuous extension*)."""
        rec = stages[0]
        if rec.starter_stages is not None and not self._startup_interpolates(rec.points):
            return self.starter.dense(t, h, u, rec.starter_stages, theta)
        a = adams_weight_matrix(tuple(round((tj - t) / h, 12) for tj, _ in rec.points))
        parts = [
            (nj, PhiExpr({(m + 1, theta, 0.0): h * float(a[j, m]) * theta ** (m + 1) for m in range(self.q)}))
            for j, (_, nj) in enumerate(rec.points)
        ]
        return combine_once(self.linear, self._evaluated_coefficients, h, t, u, E(theta), parts)

    def step_with_error(
        self, t: float, h: float, u: Any, n0: Any = None, stages: list | None = None, coeffs: Any = None
    ) -> tuple[Any, Any, Any]:
        """``(u_{n+1}, err, n_next)`` as for an embedded Runge–Kutta pair; ``n0`` is
        ``N(t, u)`` (evaluated here if not given); ``n_next`` is ``None`` except during
        the start-up (whose pair is FSAL)."""
        if coeffs is not None:
            raise TypeError("per-sample step sizes take exponential Runge–Kutta pairs, not Adams schemes")
        if n0 is None:
            n0 = self.nonlinear(t, u)
            self._own_nfev += 1
        self._record(t, n0)
        self._last_h = h
        if len(self.history) < self.q:
            inner: list | None = None if stages is None else []
            out = self.starter.step_with_error(t, h, u, n0, inner)
            self._note_dense(stages, inner)
            return out
        self._note_dense(stages)
        u_new, err = self._combine(t, h, u, error=True)
        return u_new, err, None

    def _startup_interpolates(self, points: list) -> bool:
        """Whether the start-up steps' values between steps come from the interpolant
        through the first ``q`` values of ``N``: once they are known, and where the steps
        between them differ by at most 2× (what the adaptive pairs allow): a long first
        step followed by short ones would put every node at its far end, and the
        polynomial through them would extrapolate across the step."""
        if len(points) < self.q:
            return False
        gaps = [abs(b[0] - a[0]) for a, b in itertools.pairwise(points)]
        return max(gaps) <= _MAX_STARTUP_RATIO * min(gaps)

    def _combine(self, t: float, h: float, u: Any, error: bool) -> tuple[Any, Any]:
        """``e^{hL}u + Σ_j w_j N_{n-j}`` and, with ``error``, ``Σ_j e_j N_{n-j}``."""
        values = [nj for _, nj in self.history]
        if not self._evaluated_coefficients:
            thetas = self._thetas(t, h)
            full = adams_weight_matrix(thetas)
            weights = _as_exprs(h * full)
            new = _combine_grouped(self.linear, h, t, u, P(0), list(zip(values, weights, strict=True)))
            if not error:
                return new, None
            diffs = list(zip(values, _as_exprs(h * _error_matrix(thetas)), strict=True))
            return new, _combine_grouped(self.linear, h, t, u, PhiExpr(), diffs)
        coeffs = self._step_coefficients(t, h, u, error)
        if self._fusing:
            key, fused, fused_error = self._last_fused
            if key is not coeffs:
                fused = self.linear.fuse(coeffs[: self.q + 1])
                fused_error = self.linear.fuse(coeffs[self.q + 1 :]) if error else None
                self._last_fused = (coeffs, fused, fused_error)
            new = self.linear.apply_fused(fused, [u, *values])
            return new, (self.linear.apply_fused(fused_error, values) if error else None)
        apply = self.linear.apply_coefficient
        acc = apply(coeffs[0], u)
        for w, nj in zip(coeffs[1 : self.q + 1], values, strict=True):
            acc = acc + apply(w, nj)
        if not error:
            return acc, None
        err = None
        for e, nj in zip(coeffs[self.q + 1 :], values, strict=True):
            term = apply(e, nj)
            err = term if err is None else err + term
        return acc, err

    def _thetas(self, t: float, h: float) -> tuple[float, ...]:
        return tuple(round((tj - t) / h, 12) for tj, _ in self.history)

    def _step_coefficients(self, t: float, h: float, like: Any, error: bool) -> list:
        shape = (h, error, *self._gaps)
        key, coeffs = self._last
        if key == shape and not self.linear.time_dependent:
            return coeffs
        coeffs = self._evaluated(h, t, self._thetas(t, h), like, error)
        self._last = (shape, coeffs)
        return coeffs

    def _evaluated(self, h: float, t: float, thetas: tuple[float, ...], like: Any, error: bool) -> list:
        key = (h, thetas, error, t if self.linear.time_dependent else None)
        hit = self._coeffs.get(key)
        if hit is not None:
            return hit
        lin = self.linear
        full = adams_weight_matrix(thetas)
        mat = h * (np.concatenate([full, _error_matrix(thetas)]) if error else full)
        lin.prefetch(h, [P(self.q)], t)
        if hasattr(lin, "phi_rows"):  # one contraction (EvaluatedOperator)
            rows = lin.phi_rows(h, mat, t, like)
        else:  # any other EvaluatedCoefficients: term by term
            terms = [{(m + 1, 1.0, 0.0): float(a) for m, a in enumerate(r)} for r in mat]
            rows = [lin.phi_expr(h, tm, t, like) for tm in terms]
        return self._coeffs.put(key, [lin.phi_expr(h, E(1.0).terms, t, like), *rows])
