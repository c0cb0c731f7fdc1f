r"""Dense output: the solution between steps from each step's continuous extension.

For an exponential Runge–Kutta step from ``t_n`` with size ``h`` and stage values
``N_i``,

$$
u(t_n + θh) ≈ e^{θhL} u_n + h \sum_i b_i(θ hL)\, N_i,\qquad
b_i(θ z) = b_i \text{ with every } φ_k(z) \text{ replaced by } θ^k φ_k(θ z),
$$

of order `ExpRKTableau.dense_order` (3 for the fourth-order schemes) uniformly in
``θ ∈ [0, 1]``: no point is added to the step sequence, and ``θ = 1`` reproduces the
step.  The exponential Adams schemes integrate their interpolant of ``N`` over the
part of the step instead (order ``q``; `expint._schemes._multistep`).  The object keeps
every step's start state and what the stepper's ``dense`` needs of it (stage values,
or references to the values of ``N`` an Adams step interpolates), so memory grows with
the number of steps.
"""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np

from ._backend import copy_array, is_torch_array, stack, to_numpy


def query_times(t: Any) -> np.ndarray:
    """``t`` as a float64 array of at most one axis; a ``TypeError``/``ValueError``
    naming ``t`` for anything else (complex, boolean or non-numeric times, more axes)."""
    if isinstance(t, (str, bytes)) or t is None:
        raise TypeError(f"t must be a real number or a 1-D array of them, got {type(t).__name__}")
    ts = np.asarray(to_numpy(t))
    if ts.dtype.kind not in "iuf":
        raise TypeError(f"t must be a real number or a 1-D array of them, got dtype {ts.dtype}")
    if ts.ndim > 1:
        raise ValueError(f"t must be a float or a 1-D array, got shape {ts.shape}")
    if not np.all(np.isfinite(ts)):  # (NaN was reported as "outside the integrated span")
        raise ValueError(f"t must be finite, got {t!r}")
    return ts.astype(float)


def _empty_like(y: Any) -> Any:
    """No states: shape ``(0, *y.shape)`` (what a query with an empty array returns)."""
    if is_torch_array(y):
        return y.new_empty((0, *y.shape))
    return np.empty((0, *np.shape(y)), dtype=np.asarray(y).dtype)


class DenseOutput:
    """``sol(t)``: the state at any ``t`` in the integrated span (see module docstring).

    Call with a float (returns one state) or a 1-D array of times (returns the states
    stacked on a new leading axis).  Times outside the span raise ``ValueError``.
    """

    def __init__(self, stepper: Any, t0: float, y0: Any):
        self._stepper = stepper
        self._y0 = y0  # sol(t0) of a run that stopped before its first step
        self._keys: list[float] = []  # |start - t0| of each step, increasing
        self._steps: list[tuple[float, float, Any, list]] = []
        self._t0 = t0
        self._end = t0

    def add(self, t: float, h: float, u: Any, stages: list, t_next: float) -> None:
        """Record a step from ``t`` to ``t_next = t + h`` (signed ``h``)."""
        self._keys.append(abs(t - self._t0))
        self._steps.append((t, h, u, list(stages)))
        self._end = t_next

    def truncate(self, n_steps: int) -> None:
        """Keep the first ``n_steps`` steps (a run that failed after them)."""
        if n_steps < len(self._steps):
            self._end = self._steps[n_steps][0]
            del self._steps[n_steps:], self._keys[n_steps:]

    def end_at(self, t: float) -> None:
        """End the span at ``t`` inside the last step (a run stopped by a terminal
        event there)."""
        self._end = t

    @property
    def t_span(self) -> tuple[float, float]:
        """``(t0, t_reached)``: where the interpolant is defined."""
        return self._t0, self._end

    def __call__(self, t: Any) -> Any:
        ts = query_times(t)
        if ts.size == 0:
            return _empty_like(self._y0)
        values = [self._at(float(tt)) for tt in np.atleast_1d(ts)]
        return values[0] if ts.ndim == 0 else stack(values)

    def _at(self, t: float) -> Any:
        lo, hi = sorted((self._t0, self._end))
        tol = 1e-12 * max(1.0, hi - lo)
        if not (lo - tol <= t <= hi + tol):
            raise ValueError(f"t = {t} is outside the integrated span [{lo}, {hi}]")
        if not self._steps:
            return copy_array(self._y0)
        i = max(0, bisect.bisect_right(self._keys, abs(t - self._t0)) - 1)
        ts, h, u, stages = self._steps[i]
        theta = min(1.0, max(0.0, (t - ts) / h))
        if theta == 0.0:
            # a copy: the caller may change what it gets in place, and the stored state
            # (the caller's own y0 on the first step) must not change with it
            return copy_array(u)
        return self._stepper.dense(ts, h, u, stages, theta)


class BatchDenseOutput:
    """``sol(t)`` for a batch run with per-sample steps (``batch_steps="independent"``):
    one `DenseOutput` per member, each over the steps that member took; the states come
    back with the batch's shape (``(*batch, n)`` for a float ``t``, ``(len(t), *batch,
    n)`` for an array).  Times outside the span every member reached raise
    ``ValueError``."""

    def __init__(self, members: list[DenseOutput], shape: tuple[int, ...]):
        self._members = members
        self._shape = shape

    @property
    def t_span(self) -> tuple[float, float]:
        """``(t0, t)`` with ``t`` the time every member reached."""
        t0 = self._members[0].t_span[0]
        ends = [m.t_span[1] for m in self._members]
        return t0, (min(ends) if max(ends) >= t0 else max(ends))

    def __call__(self, t: Any) -> Any:
        ts = query_times(t)
        per_member = stack([m(ts) for m in self._members])  # (B, n) or (B, T, n)
        if ts.ndim == 0:
            return per_member.reshape(self._shape)
        moved = per_member.transpose(0, 1) if is_torch_array(per_member) else per_member.swapaxes(0, 1)
        return moved.reshape((ts.size, *self._shape))
