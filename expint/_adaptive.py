r"""Error-controlled time stepping for the embedded pairs.

A step of an embedded pair returns $u_{n+1}$ and an estimate $\hat e$ of the local
error of its lower-order (order $q$) companion.  The step is accepted when

$$
\|\hat e\| = \Big(\frac{1}{n}\sum_i \Big(\frac{|\hat e_i|}
{\mathrm{atol}_i + \mathrm{rtol}\,\max(|u_{n,i}|, |u_{n+1,i}|)}\Big)^2\Big)^{1/2} \le 1
$$

(the mean runs over every entry, batch included: one step size serves the batch), and
the next step size is chosen by a PI controller (Gustafsson; Hairer & Wanner, *Solving
ODEs II*, §IV.2) with $k = q + 1$:

$$
h_{\text{new}} = h \cdot \min\Big(f_{\max}, \max\big(f_{\min},\;
0.9\, \|\hat e_n\|^{-0.7/k}\, \|\hat e_{n-1}\|^{0.4/k}\big)\Big),
$$

with $f_{\max} = 5$ ($1$ right after a rejection) and $f_{\min} = 0.2$.  A step whose
estimate or new state is not finite is rejected with $f_{\min}$.

**Tolerance proportionality.**  A pair advances with its order-$p$ solution while the
estimate is $O(h^{q+1})$.  Holding the estimate to $\tau$ gives $h \propto \tau^{1/(q+1)}$
and a global error $\propto \tau^{p/(q+1)}$; for the 4(3) pairs that is $\tau$, but for a
5(3) pair the achieved error would fall from rtol/35 at rtol = 1e-3 to rtol/1500 at
1e-10 (measured on Kuramoto–Sivashinsky), wasting steps at tight tolerances.  The
estimate is therefore held to tolerances scaled by $\mathrm{rtol}^{(q+1)/p-1}$
(`Tolerances.for_pair`), which makes the global error proportional to rtol again; the
factor is 1 when $q + 1 \ge p$.

**φ-coefficient policy.**  Coefficients depend on $h$; recomputing them every step
would cost more than the step on ``Dense`` operators (an ``expm``) and a visible share
on ``Diagonal`` ones.  Step sizes are therefore rounded *down* to the ladder
$2^{j/4}$ (at most 16% shorter than the controller asked for), so a run revisits a few
step sizes and the stepper's LRU cache serves them; only steps shortened to land on a
save point or ``t_end`` use an off-ladder size.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import array_namespace, finfo_of, is_array, is_torch_array, to_like, to_numpy
from ._events import terminal_message

_SAFETY = 0.9
_FAC_MAX = 5.0
_FAC_MIN = 0.2
# ladder points per octave of step size: 4 rather than 8 halves the φ evaluations at the
# price of somewhat shorter steps, a net gain on the benchmark problems from a cold cache
_LADDER = 4
_EPS = np.finfo(float).eps
# the first-step heuristic's guess is kept above this fraction of the span: it measures
# N against atol + rtol|y0|, which for atol = 0 at a zero of y0 is no scale at all (the
# controller shrinks a first step that is too long by rejecting it)
_MIN_FIRST = 1e-6


@dataclass(frozen=True)
class Tolerances:
    """Validated ``rtol`` and ``atol`` (a scalar or an array over the state's last axis)."""

    rtol: float
    atol: Any
    norm: str = "rms"

    @staticmethod
    def check(rtol: Any, atol: Any, n: int, norm: Any = "rms", state: Any = None) -> Tolerances:
        """Raise a ``TypeError``/``ValueError`` naming the argument for bad tolerances
        (``norm``: ``"rms"`` or ``"max"``, how the scaled error is reduced).  ``rtol``
        must be at least 100 ε of double precision and at least the unit roundoff of the
        ``state``'s precision: below it no step of a float32 state can meet the
        tolerance (Kuramoto–Sivashinsky in complex64, krogstad43, error/rtol: 0.15 at
        rtol 1e-6, 1.9 at 3e-7, 9.5 at 1.2e-7, ``benchmarks/single_precision_tolerance.py``;
        at 1e-10, 1e5 steps without reaching t_end)."""
        if norm not in ("rms", "max"):
            raise ValueError(f"error_norm must be 'rms' or 'max', got {norm!r}")
        if isinstance(rtol, bool) or not isinstance(rtol, (numbers.Real, np.floating)):
            raise TypeError(f"rtol must be a real number, got {type(rtol).__name__}")
        rtol = float(rtol)
        if not math.isfinite(rtol) or rtol <= 0:
            raise ValueError(f"rtol must be positive and finite, got {rtol}")
        if rtol < 100 * _EPS:
            raise ValueError(
                f"rtol = {rtol:g} is below what double precision can deliver (100 eps = {100 * _EPS:.1e})"
            )
        roundoff = float(finfo_of(state).eps) if state is not None else _EPS
        if rtol < roundoff:
            raise ValueError(
                f"rtol = {rtol:g} is below the unit roundoff of the state's precision ({roundoff:.1e}, "
                f"{getattr(state, 'dtype', '')}): pass a float64 state or rtol >= {roundoff:.1e}"
            )
        # a list or tuple of numbers is taken as scipy's solve_ivp takes it, per component
        sequence = isinstance(atol, (list, tuple)) and all(
            isinstance(x, (numbers.Real, np.floating)) and not isinstance(x, bool) for x in atol
        )
        if isinstance(atol, bool) or not (
            isinstance(atol, (numbers.Real, np.floating)) or is_array(atol) or sequence
        ):
            raise TypeError(
                f"atol must be a real number or an array of shape ({n},), got {type(atol).__name__}"
            )
        a = np.asarray(atol if sequence else to_numpy(atol), dtype=float)
        if a.ndim > 1 or (a.ndim == 1 and a.shape[0] != n):
            raise ValueError(f"atol must be a scalar or have shape ({n},), got shape {a.shape}")
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise ValueError("atol must be finite and non-negative")
        if state is not None and math.prod(state.shape) > 0:
            _warn_atol_below_rounding(a, state, roundoff)
        return Tolerances(rtol, float(a) if a.ndim == 0 else a, norm)

    def for_pair(self, order: int, embedded_order: int) -> Tolerances:
        """The tolerances the estimate is held to (module docstring, *tolerance
        proportionality*): both scaled by ``rtol^{(q+1)/p − 1}`` when the estimate's
        order ``q + 1`` is below the order ``p`` of the solution the pair advances with."""
        alpha = (embedded_order + 1) / order
        if alpha >= 1:
            return self
        f = self.rtol ** (alpha - 1.0)
        return Tolerances(self.rtol * f, self.atol * f, self.norm)


def _warn_atol_below_rounding(atol: np.ndarray, state: Any, roundoff: float) -> None:
    """Warn when a positive ``atol`` lies below the rounding level ``ε·max|y0|`` of the
    state's precision.  Any step that mixes components (an FFT, a dense ``L``, a
    nonlinearity in spectral space) leaves errors of about that size in every entry, so
    in an entry near zero the scaled error ``err/atol`` cannot fall below 1 and the
    controller shrinks the step to no effect (KS in complex64 at rtol 1e-6: 84 846
    steps to 1200·rtol with ``atol = 1e-10``, 24 steps to 0.15·rtol with
    ``atol = rtol·max|y0|``; ``benchmarks/single_precision_tolerance.py``).  A zero
    ``atol`` is the caller's explicit choice of a purely relative tolerance and is left
    alone."""
    values = state.detach() if is_torch_array(state) else state  # a y0 that requires grad
    xp = array_namespace(values)
    level = roundoff * float(xp.max(xp.abs(values)))
    small = (atol > 0) & (atol < level)
    if np.any(small):
        worst = float(np.min(atol[small])) if atol.ndim else float(atol)
        warnings.warn(
            f"atol = {worst:.3g} is below the rounding level of the {getattr(state, 'dtype', '')} state "
            f"(unit roundoff {roundoff:.1e} × max|y0| = {level:.3g}): near-zero entries will carry "
            "rounding errors larger than atol and the step size may collapse; use atol ≥ "
            f"{level:.2g} (e.g. rtol·max|y0|) or a float64 state",
            RuntimeWarning,
            stacklevel=4,
        )


class PIController:
    """Step-size proposals from successive error norms (see module docstring)."""

    def __init__(self, embedded_order: int, max_growth: float = _FAC_MAX):
        k = embedded_order + 1
        self.alpha, self.beta = 0.7 / k, 0.4 / k
        self.max_growth = max_growth
        self.prev = 1.0
        self.rejected_last = False

    def accept(self, err: float) -> float:
        """Factor for the next step after an accepted step with error norm ``err``."""
        err = max(err, 1e-10)
        fac = _SAFETY * err**-self.alpha * self.prev**self.beta
        fac = min(1.0 if self.rejected_last else self.max_growth, max(_FAC_MIN, fac))
        self.prev, self.rejected_last = err, False
        return fac

    def reject(self, err: float) -> float:
        """Factor for the retry after a rejected step (``err`` may be NaN or inf)."""
        self.rejected_last = True
        if not math.isfinite(err):
            return _FAC_MIN
        return min(1.0, max(_FAC_MIN, _SAFETY * err**-self.alpha))


def on_ladder(h: float) -> float:
    """The largest ``2^{j/4}`` not above ``h`` (the cached step sizes)."""
    j = math.floor(math.log2(h) * _LADDER + 1e-9)
    return 2.0 ** (j / _LADDER)


def atol_like(tol: Tolerances, like: Any) -> Any:
    """``atol`` for states like ``like`` (a float, or an array in their library, device
    and real precision), a zero entry raised to ``√tiny`` of that precision (1.5e-154
    in double, 1.1e-19 in single): where ``u`` vanishes with ``atol = 0`` the scale
    ``atol + rtol|u|`` would be 0 and the scaled error 0/0.  With it an error there is
    huge (the step is rejected; where a purely relative tolerance cannot be met at a
    zero, the step-size floor ends the run) and no error is 0, and an error up to 1
    still squares without overflow in the RMS norm."""
    floor = math.sqrt(float(finfo_of(like).tiny))
    if isinstance(tol.atol, float):
        return tol.atol if tol.atol > 0 else floor
    atol = tol.atol if np.all(tol.atol > 0) else np.where(tol.atol > 0, tol.atol, floor)
    return to_like(atol, like).real


class ErrorNorm:
    """``‖ê‖`` of the module docstring, NaN when ``u_{n+1}`` is not finite; one host
    synchronisation per call."""

    def __init__(self, tol: Tolerances, like: Any):
        self.rtol = tol.rtol
        self.atol = atol_like(tol, like)
        self.kind = tol.norm

    def __call__(self, err: Any, y: Any, y_new: Any) -> float:
        value = scaled_error(err, y, y_new, self.rtol, self.atol, self.kind)
        # the step size is not differentiated through: read the norm without autograd
        return float(value.detach() if is_torch_array(value) else value)


def scaled_error(
    err: Any, y: Any, y_new: Any, rtol: float, atol: Any, kind: str, axis: int | None = None
) -> Any:
    """``err / (atol + rtol·max(|y|, |y_new|))`` reduced by its RMS (``kind="rms"``) or
    its largest entry (``"max"``) over all entries or along ``axis``; NaN where
    ``y_new`` is not finite (one reduction, so one host synchronisation)."""
    if isinstance(y_new, np.ndarray) and isinstance(err, np.ndarray):
        return _scaled_error_numpy(err, y, y_new, rtol, atol, kind, axis)
    xp = array_namespace(y)
    an = xp.abs(y_new)
    r = xp.abs(err) / (atol + rtol * xp.maximum(xp.abs(y), an))
    reduced = xp.sqrt(xp.mean(r * r, axis=axis)) if kind == "rms" else xp.max(r, axis=axis)
    # 0·Σ|u_{n+1}| is NaN exactly when u_{n+1} has NaN or inf: the finiteness test
    # rides on the same reduction
    return reduced + 0.0 * xp.sum(an, axis=axis)


def _scaled_error_numpy(
    err: np.ndarray, y: Any, y_new: np.ndarray, rtol: float, atol: Any, kind: str, axis: int | None
) -> Any:
    """`scaled_error` on numpy arrays in place on its own temporaries: on the small
    states of the benchmark problems the array-API wrappers cost 2.5× the arithmetic."""
    an = np.abs(y_new)
    scale = np.maximum(np.abs(y), an)
    scale *= rtol
    scale += atol
    r = np.abs(err)
    r /= scale
    if kind != "rms":
        reduced = np.max(r, axis=axis)
    elif axis is None:
        flat = r.ravel()
        reduced = np.sqrt(np.dot(flat, flat) / flat.size)
    else:
        reduced = np.sqrt(np.mean(r * r, axis=axis))
    return reduced + 0.0 * an.sum(axis=axis)


def initial_step(
    n0: Any, y0: Any, nonlinear: Any, t0: float, direction: float, norm: ErrorNorm, k: int
) -> float:
    """A first step size (Hairer, Nørsett & Wanner, *Solving ODEs I*, §II.4) from the
    nonlinear part alone (the linear part is integrated exactly): ``h0 = 0.01‖y0‖/‖N0‖``,
    then ``h1 = (0.01 / max(‖N0‖, ‖N'‖ h0))^{1/k}`` from one explicit Euler probe;
    the smaller of ``100 h0`` and ``h1``."""
    with np.errstate(over="ignore"):  # an infinite norm is handled below (atol = 0 at a zero of y0)
        d0, d1 = norm(y0, y0 * 0, y0), norm(n0, y0 * 0, y0)
    # an infinite ‖N0‖ (a single-precision norm of N/atol where atol is zero) would
    # give h0 = 0: fall back to HNW's small start as for a tiny norm
    h0 = 0.01 * d0 / d1 if d0 >= 1e-5 and d1 >= 1e-5 and math.isfinite(d0) and math.isfinite(d1) else 1e-6
    n1 = nonlinear(t0 + direction * h0, y0 + (direction * h0) * n0)
    with np.errstate(over="ignore"):
        d2 = norm(n1 - n0, y0 * 0, y0) / h0
    big = max(d1, d2)
    # an infinite norm: N is nonzero where y0 is 0 and atol is 0 (no scale there to
    # measure it by); start small and let the controller grow the step
    h1 = max(1e-6, h0 * 1e-3) if big <= 1e-15 or not math.isfinite(big) else (0.01 / big) ** (1.0 / k)
    return min(100 * h0, h1)


@dataclass
class AdaptiveRun:
    """What `run_adaptive` returns: saved states (``None`` where not reached), the time
    and state reached, counts, and how it ended."""

    saved: list[Any]
    t_reached: float
    y_reached: Any
    steps: int
    rejected: int
    success: bool
    message: str


def run_adaptive(
    stepper: Any,
    y0: Any,
    t0: float,
    targets: list[float],
    tol: Tolerances,
    embedded_order: int,
    *,
    first_step: float | None,
    max_step: float,
    max_steps: int,
    bar: Any = None,
    dense: Any = None,
    events: Any = None,
) -> AdaptiveRun:
    """Integrate from ``t0`` through the save times ``targets`` (monotone, the last is
    ``t_end``), landing on each exactly; ``saved[i]`` is the state at ``targets[i]``.
    A `DenseOutput` passed as ``dense`` records every accepted step; an `EventWatch`
    passed as ``events`` sees each, and a terminal event ends the run there (success,
    ``t_reached`` the event's time)."""
    tf = targets[-1]
    direction = math.copysign(1.0, tf - t0)
    norm = ErrorNorm(tol, y0)
    ctrl = PIController(embedded_order, getattr(stepper, "max_growth", _FAC_MAX))
    n0 = stepper.nonlinear(t0, y0)
    stepper.nfev += 1
    h = (
        first_step
        if first_step is not None
        else initial_step(n0, y0, stepper.nonlinear, t0, direction, norm, embedded_order + 1)
    )
    if first_step is None:
        stepper.nfev += 1
        h = max(h, _MIN_FIRST * abs(tf - t0))
    saved: list[Any] = [None] * len(targets)
    t, y, k = t0, y0, 0
    steps = rejected = 0
    while True:
        h = min(h, max_step)
        floor = 16 * _EPS * max(abs(t), abs(tf - t0))
        why = None
        if h < floor:
            why = (
                f"the step size fell to {h:.3g} (below the floor {floor:.1e}) at t = {t:.10g}: the "
                "solution may blow up or be non-smooth there, or rtol/atol are too tight for the "
                "state's precision"
            )
        elif steps + rejected >= max_steps:
            why = (
                f"max_steps = {max_steps} (accepted and rejected) reached at t = {t:.10g} before "
                f"t_end = {tf:g}; raise max_steps or loosen rtol/atol"
            )
        if why is not None:
            return AdaptiveRun(saved, t, y, steps, rejected, False, why)
        remaining = abs(targets[k] - t)
        hit = h >= remaining * (1 - 1e-12)
        h_step = remaining if hit else on_ladder(h)
        stages: list | None = [] if dense is not None or events is not None else None
        y_new, err, n_next = stepper.step_with_error(t, direction * h_step, y, n0, stages)
        e = norm(err, y, y_new)
        if not e <= 1.0:  # also NaN
            rejected += 1
            h = h_step * ctrl.reject(e)
            continue
        steps += 1
        t_new = targets[k] if hit else t + direction * h_step
        if bar is not None:
            bar.update(abs(t_new - t))
        if dense is not None:
            dense.add(t, direction * h_step, y, stages, t_new)
        if events is not None:
            stop = events.after_step(stepper, t, direction * h_step, y, stages, t_new, y_new)
            if stop is not None:
                return AdaptiveRun(saved, stop[0], stop[1], steps, rejected, True, terminal_message(stop[0]))
        t, y = t_new, y_new
        n0 = n_next if n_next is not None else stepper.nonlinear(t, y)
        if n_next is None:
            stepper.nfev += 1
        # a step shortened to land on a save point does not shorten the next one
        h = (h if hit else h_step) * ctrl.accept(e)
        if hit:
            saved[k] = y
            k += 1
        if k == len(targets):
            return AdaptiveRun(saved, t, y, steps, rejected, True, "reached t_end")
