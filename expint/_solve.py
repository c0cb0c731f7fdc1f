"""``solve``: validation, time grid, the step loop, saving and statistics."""

from __future__ import annotations

import cmath
import functools
import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._adaptive import Tolerances, run_adaptive
from ._backend import (
    Array,
    all_finite,
    array_namespace,
    as_array,
    copy_array,
    device,
    is_array,
    is_inexact,
    is_on_accelerator,
    is_torch_array,
    same_array_type,
    stack,
    to_numpy,
)
from ._batch_steps import RowwiseNonlinear, run_independent
from ._dense import BatchDenseOutput, DenseOutput
from ._eigenbasis import EigenbasisStepper, eigenbasis_for
from ._events import EventWatch, terminal_message
from ._members import solve_members
from ._operators import Dense, Diagonal, ScalarTime
from ._problem import SemilinearProblem
from ._schemes._catalog import Scheme, catalog, get
from ._solution import Solution

_GRID_RTOL = 1e-9
# a grid beyond this many steps (0.8 GB of times) is a mistake in dt or t_span, not a run
_MAX_STEPS = 10**8


def _check_count(n: float, what: str) -> None:
    if n > _MAX_STEPS:
        raise ValueError(
            f"{what} asks for {n:.3g} steps (more than {_MAX_STEPS:.0e}); check t_span and the step, "
            "or split the integration into several solve calls"
        )


def _check_y0(y0: Any, problem: SemilinearProblem) -> Any:
    if isinstance(y0, type):
        raise TypeError("y0 must be an array, not a class")
    y0 = as_array(y0, name="y0")
    if not is_inexact(y0):
        raise TypeError(
            f"y0 has dtype {y0.dtype}; pass a floating-point or complex array (e.g. y0.astype(float))"
        )
    problem.linear.check_state(y0, name="y0")
    if not all_finite(y0):
        raise ValueError("y0 must be finite (it contains NaN or inf)")
    return y0


def _check_time(x: Any, name: str) -> float:
    if is_array(x) and math.prod(x.shape) == 1:  # a one-element array or tensor
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}")
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x}")
    return x


def _check_span(t_span: Any) -> tuple[float, float]:
    if t_span is None or isinstance(t_span, (str, bytes)) or len(t_span) != 2:
        raise ValueError("t_span must be a pair (t0, t_end)")
    t0, tf = (_check_time(v, f"t_span[{i}]") for i, v in enumerate(t_span))
    if t0 == tf:
        raise ValueError(f"t_span must have t0 != t_end, got ({t0}, {tf})")
    return t0, tf


def time_grid(
    t0: float, tf: float, dt: float | None = None, n_steps: int | None = None, ts: Any = None
) -> np.ndarray:
    """The step grid from exactly one of ``dt``, ``n_steps`` or ``ts``.

    ``dt`` must divide ``|t_end - t0|`` into a whole number of steps (to a relative
    1e-9); otherwise a ``ValueError`` proposes ``n_steps`` or an explicit ``ts`` with a
    shorter last step.  Uniform grids are built as ``t0 + (t_end - t0) i / n`` so they do
    not accumulate rounding.
    """
    t0, tf = _check_span((t0, tf))
    given = [name for name, v in (("dt", dt), ("n_steps", n_steps), ("ts", ts)) if v is not None]
    if len(given) != 1:
        raise ValueError(f"pass exactly one of dt, n_steps or ts (got {', '.join(given) or 'none'})")
    length = tf - t0
    if dt is not None:
        dt = _check_time(dt, "dt")
        if dt <= 0:
            raise ValueError(f"dt must be positive (the direction comes from t_span), got {dt}")
        n_float = abs(length) / dt
        _check_count(n_float, f"dt = {dt:g} over t_span of length {abs(length):g}")
        n = round(n_float)
        if n < 1 or abs(n_float - n) > _GRID_RTOL * max(1.0, n_float):
            lo = max(1, math.floor(n_float))
            raise ValueError(
                f"dt = {dt:g} does not divide the interval of length {abs(length):g} "
                f"({n_float:.6g} steps); pass n_steps={lo + 1} (dt = {abs(length) / (lo + 1):g}) "
                f"or n_steps={lo} (dt = {abs(length) / lo:g}), or an explicit grid ts=... "
                "if you want a shorter last step"
            )
        return t0 + length * np.arange(n + 1) / n
    if n_steps is not None:
        if isinstance(n_steps, bool) or not isinstance(n_steps, (numbers.Integral, np.integer)):
            raise TypeError(f"n_steps must be an integer, got {type(n_steps).__name__}")
        if n_steps < 1:
            raise ValueError(f"n_steps must be at least 1, got {n_steps}")
        _check_count(n_steps, "n_steps")
        return t0 + length * np.arange(n_steps + 1) / n_steps
    grid = np.asarray(to_numpy(ts), dtype=float)
    if grid.ndim != 1 or grid.size < 2:
        raise ValueError("ts must be a 1-D array of at least two times")
    if not np.all(np.isfinite(grid)):
        raise ValueError("ts must be finite")
    steps = np.diff(grid) * math.copysign(1.0, length)
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0))
        kind = "a zero step" if steps[i] == 0 else "a step against the direction of t_span"
        raise ValueError(f"ts must be strictly monotone in the direction of t_span; {kind} at index {i}")
    if grid[0] != t0 or grid[-1] != tf:
        raise ValueError(f"ts must start at t_span[0] = {t0} and end at t_span[1] = {tf}")
    return grid


def _check_t_eval(t_eval: Any, t0: float, tf: float) -> np.ndarray:
    """``t_eval`` as a float array, checked: 1-D, finite, strictly monotone in the
    direction of integration, inside ``t_span``."""
    te = np.atleast_1d(np.asarray(to_numpy(t_eval), dtype=float))
    if te.ndim != 1 or te.size == 0 or not np.all(np.isfinite(te)):
        raise ValueError("t_eval must be a non-empty 1-D array of finite times")
    sign = math.copysign(1.0, tf - t0)
    if np.any(np.diff(te) * sign <= 0):
        raise ValueError("t_eval must be strictly monotone in the direction of t_span")
    lo, hi = min(t0, tf), max(t0, tf)
    tol = 1e-12 * (hi - lo)
    if te.min() < lo - tol or te.max() > hi + tol:
        raise ValueError(f"t_eval must lie inside t_span [{lo}, {hi}]")
    return np.clip(te, lo, hi)


def _merge_t_eval(grid: np.ndarray, t_eval: Any) -> tuple[np.ndarray, list[int]]:
    t0, tf = grid[0], grid[-1]
    if t_eval is None:
        return grid, [0, len(grid) - 1]
    te = _check_t_eval(t_eval, t0, tf)
    sign = math.copysign(1.0, tf - t0)
    lo, hi = min(t0, tf), max(t0, tf)
    tol = 1e-12 * (hi - lo)
    # snap t_eval points within tol of a grid point onto it, insert the others
    order = np.argsort(grid)
    sorted_grid = grid[order]
    pos = np.clip(np.searchsorted(sorted_grid, te), 1, len(grid) - 1)
    nearest = np.where(np.abs(sorted_grid[pos - 1] - te) <= np.abs(sorted_grid[pos] - te), pos - 1, pos)
    on_grid = np.abs(sorted_grid[nearest] - te) <= tol
    merged = np.unique(np.concatenate([grid, te[~on_grid]]))
    if sign < 0:
        merged = merged[::-1]
    te_snapped = np.where(on_grid, sorted_grid[nearest], te)
    key = merged if sign > 0 else merged[::-1]
    idx_sorted = np.searchsorted(key, te_snapped)
    idx = [int(i) if sign > 0 else len(merged) - 1 - int(i) for i in idx_sorted]
    return merged, idx


class _CheckedNonlinear:
    """Calls ``N(t, y)``; checks type, shape and dtype of what comes back on the first
    call (later calls see states of the same type, shape and dtype, and the check would
    cost a measurable share of a cheap step)."""

    def __init__(self, fn: Any):
        self.fn = fn
        self.checked = False

    def __call__(self, t: float, y: Any) -> Any:
        out = self.fn(t, y)
        if self.checked:
            return out
        if not same_array_type(out, y):
            raise TypeError(
                f"nonlinear(t, y) returned {type(out).__name__} for a {type(y).__name__} state; "
                "return the same array type as y"
            )
        if tuple(out.shape) != tuple(y.shape):
            raise ValueError(
                f"nonlinear(t, y) returned shape {tuple(out.shape)} for a state of shape "
                f"{tuple(y.shape)}; it must return an array shaped like y"
            )
        if out.dtype != y.dtype:
            raise TypeError(
                f"nonlinear(t, y) returned dtype {out.dtype} for a state of dtype {y.dtype}; "
                "return the state's dtype (e.g. cast the result, or start from y0 of that dtype)"
            )
        self.checked = True
        return out


def _canonical_steps(hs: np.ndarray) -> list[float]:
    """Step sizes with values that agree to 1e-12 (relative) made identical.

    ``t0 + L i/n`` differs from step to step by an ulp or two; φ-coefficients are
    cached per step size, so without this a uniform grid would recompute them.
    """
    first: dict[str, float] = {}
    return [first.setdefault(f"{h:.11e}", h) for h in hs.tolist()]


class _FiniteWatch:
    """Finds the first step whose state is not finite.

    On the host every step is tested: a numpy state of up to `_SMALL` entries
    element-wise (``isfinite(y).all()``: on a few dozen entries cheaper than entering
    ``np.errstate`` for the sum, which matters where a whole step costs ~10 µs), a
    larger one on its sum (NaN and ±inf propagate into it: one reduction, against two
    passes for the element-wise test), confirmed element-wise before it counts (a
    finite state whose sum overflows is no error).  On
    an accelerator a test read on the host is a synchronisation, so each step records a
    device-side flag (``~isfinite(y).all()``) and the flags are read every ``_EVERY``
    steps and at save points: the run stops at most that many steps late, and the
    message still names the step where the state became non-finite.
    """

    _EVERY = 32
    _SMALL = 4096

    def __init__(self, y0: Any, n: int):
        self.on_device = is_on_accelerator(y0)
        self.small = type(y0) is np.ndarray and y0.size <= self._SMALL
        self.verified = True
        if self.on_device:
            xp = array_namespace(y0)
            self.flags = xp.zeros(n, dtype=xp.bool, device=device(y0))

    def first_bad(self, i: int, y: Any, force: bool) -> int | None:
        """Index of the first non-finite step up to step ``i``, or None; ``verified``
        then says whether step ``i``'s state is known to be finite (a device run knows
        only where it reads its flags)."""
        self.verified = True
        if self.on_device:
            self.flags[i] = ~y.isfinite().all()
            if not (force or (i + 1) % self._EVERY == 0):
                self.verified = False
                return None
            if not bool(self.flags.any()):
                return None
            return int(self.flags.nonzero()[0, 0])
        if self.small:
            return None if np.isfinite(y).all() else i
        # one reduction: a sum is finite only if every entry is (a finite sum that
        # overflows is caught by the full check)
        with np.errstate(over="ignore", invalid="ignore"):
            total = y.sum()
            if is_torch_array(total):
                total = total.detach()  # a state differentiated through (Diagonal): no warning
            finite = cmath.isfinite(complex(total)) or all_finite(y)
        return None if finite else i


def solve(
    problem: SemilinearProblem,
    y0: Array,
    t_span: Sequence[float],
    *,
    scheme: str | Scheme,
    dt: float | None = None,
    n_steps: int | None = None,
    ts: Any = None,
    t_eval: Any = None,
    rtol: float | None = None,
    atol: Any = None,
    first_step: float | None = None,
    max_step: float | None = None,
    max_steps: int = 100_000,
    dense_output: bool = False,
    progress: bool = False,
    batch_steps: str = "shared",
    error_norm: str = "rms",
    events: Any = None,
) -> Solution:
    r"""Integrate $y' = L(t) y + N(t, y)$ with an exponential scheme.

    Parameters
    ----------
    problem : SemilinearProblem
        The ODE.
    y0 : array or torch.Tensor
        Initial state, shape ``(..., n)``: leading axes are a batch of independent
        initial conditions integrated together.  Real or complex, float32 or float64;
        the state keeps this dtype and device, coefficients are computed in float64
        and cast once.
    t_span : (float, float)
        ``(t0, t_end)``; ``t_end < t0`` integrates backwards.
    scheme : str or Scheme
        A name from `expint.schemes.catalog` (e.g. ``"etdrk4"``).
    dt, n_steps, ts
        Exactly one: a step size that divides the interval, a number of uniform steps,
        or an explicit monotone grid from ``t0`` to ``t_end`` (any step sizes).
    t_eval : array, optional
        Times at which to save the state.  Without ``dense_output`` they become step
        points (inserted into a fixed grid, which shortens the neighbouring steps;
        landed on by adaptive runs); with it they are interpolated and the steps are
        left alone.  Default: the two ends.
    rtol, atol : float; float or array of shape ``(n,)``
        Tolerances of an adaptive run (an embedded pair such as ``"krogstad43"``, in
        place of ``dt``/``n_steps``/``ts``): a step is accepted when the RMS over all
        entries of ``err / (atol + rtol·max(|y_n|, |y_{n+1}|))`` is at most 1.  Both
        are required; see the guide's "Adaptive steps" for the controller.
    first_step, max_step : float, optional
        Adaptive runs: the first step size (default: estimated from ``N(t0, y0)``) and
        an upper bound on every step (default: no bound).
    max_steps : int
        Adaptive runs: the most steps (accepted and rejected) before giving up with
        ``success=False``; the states reached are returned.
    dense_output : bool
        Keep each step's stage values and return ``Solution.sol``, a callable giving
        the state anywhere in ``t_span`` from the continuous extension of the scheme
        (`Scheme.dense_order`: 3 for the fourth-order ETD schemes, 2 for
        ``etd2rk``/``etd3rk``, ``q`` for the Adams schemes ``etdab{q}``, 3 and 4 for
        ``exprb32``/``exprb43``; Lawson schemes have none).  Memory: ``stages + 1``
        states per step (Runge–Kutta, Rosenbrock), references to the ``q`` interpolated
        values of ``N`` (Adams).
    progress : bool
        Show a tqdm progress bar.
    batch_steps : {"shared", "independent"}
        Adaptive runs on a batch ``y0`` of shape ``(..., n)``: ``"shared"`` (default)
        takes one step sequence for the whole batch (the error norm runs over every
        entry); ``"independent"`` gives each member its own steps, error norm and
        controller.  With an ETD Runge–Kutta pair on a `Diagonal` or `ScalarTime`
        linear part, or a `Dense` one stepped in its eigenbasis (Notes), the batch
        advances together: ``N`` is called on the members still
        running, the state flattened to ``(B', n)`` and ``t`` an array of shape
        ``(B', 1)`` (one time per member), so it must act row by row.  Otherwise (a
        matrix or matrix-free linear part, the Adams pairs) the members run one after
        another, and ``N`` sees one member's state of shape ``(n,)`` and a float
        ``t``.  ``stats`` then holds ``steps_per_sample`` and ``rejected_per_sample``;
        ``steps`` is their maximum and ``rejected_steps`` their sum.  The exponential
        Rosenbrock pairs (one Jacobian per member) always run a batch member by
        member: on a fixed grid, or adaptively with ``"independent"`` only
        (`expint._members`).

    error_norm : {"rms", "max"}
        Adaptive runs: how the scaled error ``err / (atol + rtol·max(|y_n|, |y_{n+1}|))``
        is reduced — its root mean square over the entries (default, as scipy) or its
        largest entry, which holds every entry to the tolerance (use it when the error
        sits in a few of many entries, e.g. the active Fourier modes of a spectral
        state).
    events : callable or list of callables, optional
        Functions ``g(t, y) -> float`` whose zeros along the solution are located, as
        scipy's ``solve_ivp`` does: after each step, on the step's continuous extension
        (Brent's method; schemes with ``dense_order`` ≥ 1).  Optional attributes
        ``g.terminal`` (``True`` or a count ``n``: stop at the ``n``-th zero) and
        ``g.direction`` (> 0: only zeros where ``g`` increases, < 0: decreasing).  The
        results are ``Solution.t_events`` and ``Solution.y_events``.  A terminal event
        ends the run with ``success=True``; its state is the last one saved.

    Returns
    -------
    Solution
        ``t``, ``y`` (saved states stacked on a new leading axis), ``stats``,
        ``success``, ``message``.  A run that stops early (non-finite state, step-size
        floor, ``max_steps``) has ``success=False``, a message naming where it stopped,
        and the states saved until then; an adaptive run also appends the state at the
        time it reached.  With ``events``, also ``t_events`` and ``y_events``.

    Raises
    ------
    TypeError, ValueError
        For an unknown scheme (the message lists the valid ones), a class where an
        instance is expected, non-finite or integer ``y0``, a state whose trailing
        axis does not match the operator, a grid that is not monotone or has zero steps,
        a ``dt`` that does not divide the interval, or a nonlinear function returning
        the wrong type, shape or dtype.

    Notes
    -----
    On a `Dense` linear part $A = VΛV^{-1}$ with at least 36 unknowns and a
    well-conditioned eigendecomposition, runs whose step size changes often (adaptive
    runs, fixed grids of more than 4 step sizes counting the ``t_eval`` splits, dense
    output, events) take their steps in the eigenbasis, $z' = Λz + V^{-1}N(t, Vz)$:
    the same steps and results to rounding, with φ evaluated on the eigenvalues instead
    of as $n × n$ matrices for every new step size (`expint._eigenbasis`).  Norms,
    saved states, dense output and events are in the original coordinates.

    Examples
    --------
    >>> import numpy as np, expint
    >>> prob = expint.SemilinearProblem(expint.Diagonal([-1.0, -100.0]), lambda t, y: np.sin(y))
    >>> sol = expint.solve(prob, np.array([1.0, 1.0]), (0.0, 1.0), scheme="etdrk4", n_steps=10)
    >>> sol.y.shape
    (2, 2)
    """
    if isinstance(problem, type):
        raise TypeError("problem must be a SemilinearProblem instance, not a class")
    if not isinstance(problem, SemilinearProblem):
        raise TypeError(
            f"problem must be a SemilinearProblem(linear, nonlinear), got {type(problem).__name__}"
        )
    sch = get(scheme)
    y0 = _check_y0(y0, problem)
    if ts is not None and t_span is None:
        g = np.asarray(to_numpy(ts), dtype=float)
        if g.ndim != 1 or g.size < 2:
            raise ValueError("ts must be a 1-D array of at least two times")
        t_span = (g[0], g[-1])
    t0, tf = _check_span(t_span)
    grid_given = [k for k, v in (("dt", dt), ("n_steps", n_steps), ("ts", ts)) if v is not None]
    adaptive = _check_mode(sch, rtol, atol, grid_given, first_step, max_step, max_steps)
    for wanted, what in ((dense_output, "dense_output"), (events is not None, "events")):
        if wanted and sch.dense_order == 0:
            with_dense = ", ".join(s.name for s in catalog() if s.dense_order)
            raise ValueError(
                f"scheme {sch.name!r} has no continuous extension for {what}; use one of {with_dense}"
            )
    if events is not None and batch_steps == "independent":
        raise ValueError("events need one time for the whole state: use batch_steps='shared' with events")
    watch = EventWatch(events, t0, y0) if events is not None else None
    if error_norm not in ("rms", "max"):
        raise ValueError(f"error_norm must be 'rms' or 'max', got {error_norm!r}")
    if error_norm != "rms" and not adaptive:
        raise ValueError("error_norm applies to adaptive runs (an embedded pair with rtol/atol)")
    independent = _check_batch_steps(batch_steps, adaptive, y0)
    tolerances = Tolerances.check(rtol, atol, y0.shape[-1], error_norm, state=y0) if adaptive else None
    by_member = sch.rosenbrock is not None or (independent and not _advances_together(sch, problem, y0))
    if y0.ndim > 1 and by_member:
        _check_member_batch(sch, adaptive, independent, events)
        member = functools.partial(
            solve, problem, t_span=(t0, tf), scheme=sch, dt=dt, n_steps=n_steps, ts=ts, rtol=rtol, atol=atol,
            first_step=first_step, max_step=max_step, max_steps=max_steps, dense_output=dense_output,
            error_norm=error_norm,
        )  # fmt: skip
        grid = None if adaptive else time_grid(t0, tf, dt=dt, n_steps=n_steps, ts=ts)
        return _solve_by_member(member, y0, t0, tf, grid, t_eval, dense_output, progress, sch.name)
    # numpy's overflow/invalid warnings are silenced inside the step loop: a blow-up is
    # detected and reported by the run itself (the step that went non-finite, or the
    # step-size floor), whereas each rejected retry of an adaptive run would add a
    # handful of warnings pointing into expint's arithmetic (or N's) and saying less
    if tolerances is not None:
        bounds = (_step_bound(first_step, "first_step", tf - t0), _step_bound(max_step, "max_step", tf - t0))
        with np.errstate(over="ignore", invalid="ignore"):
            return _solve_adaptive(
                problem, sch, y0, t0, tf, t_eval, tolerances, *bounds, max_steps, dense_output, progress,
                independent, watch,
            )  # fmt: skip
    grid = time_grid(t0, tf, dt=dt, n_steps=n_steps, ts=ts)
    if sch.adams_order is not None:
        _check_multistep_grid(grid, sch.name)
    with np.errstate(over="ignore", invalid="ignore"):
        return _solve_fixed(problem, sch, y0, grid, t_eval, dense_output, progress, watch)


def _stepper_for(
    problem: SemilinearProblem, sch: Scheme, nonlinear: Any, y0: Any, eigen: bool, **kw: Any
) -> tuple[Any, Any]:
    """The scheme's stepper and the operator whose φ-work ``stats`` counts: in the
    eigenbasis of a large `Dense` linear part where ``eigen`` asks for it and one
    applies (`expint._eigenbasis`), else on the problem's own linear part."""

    def make(linear: Any, fn: Any) -> Any:
        return sch.make_stepper(linear, fn, jvp=problem.jvp, jac=problem.jac, **kw)

    basis = eigenbasis_for(problem.linear, y0) if eigen and sch.rosenbrock is None else None
    if basis is None:
        return make(problem.linear, nonlinear), problem.linear
    return EigenbasisStepper(make, basis, nonlinear), basis.diagonal


#: Fixed-step runs step in the eigenbasis of a large `Dense` part when their grid (with
#: the ``t_eval`` times it stops at) has more distinct step sizes than this (each would
#: form the tableau's matrices), or when they keep a dense output or locate events
#: (each fraction θ of a step they evaluate would form a set).
FIXED_EIGENBASIS_STEP_SIZES = 4


def _fixed_in_eigenbasis(grid: np.ndarray, continuous: bool) -> bool:
    if continuous:
        return True
    hs = np.diff(grid)
    return np.unique(np.round(hs / np.max(np.abs(hs)), 12)).size > FIXED_EIGENBASIS_STEP_SIZES


def _check_multistep_grid(grid: np.ndarray, name: str) -> None:
    """A multistep scheme interpolates ``N`` through earlier times in units of the
    current step: a step below 1e-10 of the longest makes two of those times coincide to
    the precision the weights are computed with."""
    hs = np.abs(np.diff(grid))
    if hs.size > 1 and hs.min() <= 1e-10 * hs.max():
        i = int(np.argmin(hs))
        raise ValueError(
            f"ts has a step of {hs[i]:.3g} (t = {grid[i]:.17g} to {grid[i + 1]:.17g}) next to steps of up "
            f"to {hs.max():.3g}: the multistep scheme {name!r} interpolates N through earlier times, which "
            "cannot be told apart at that ratio; merge the near-duplicate times or use a one-step scheme "
            "(e.g. 'krogstad')"
        )


class _Work:
    """Counts of φ evaluations and Krylov products over one run."""

    def __init__(self, linear: Any):
        self.linear = linear
        self.phi_before = linear.phi_evaluations
        self.kry = getattr(linear, "krylov_info", None)
        self.mv_before = self.kry.matvecs if self.kry is not None else 0

    def stats(self, steps: int, stepper: Any, rejected: int) -> dict:
        out = {
            "steps": steps,
            "nfev": stepper.nfev,
            "rejected_steps": rejected,
            "phi_evaluations": self.linear.phi_evaluations - self.phi_before,
        }
        own = getattr(stepper, "krylov_matvecs", None)  # Rosenbrock: Krylov on L + J
        if self.kry is not None or own is not None:
            out["krylov_matvecs"] = (self.kry.matvecs - self.mv_before if self.kry is not None else 0) + (
                own or 0
            )
        return out


def _solve_fixed(
    problem: SemilinearProblem,
    sch: Scheme,
    y0: Any,
    grid: np.ndarray,
    t_eval: Any,
    dense_output: bool,
    progress: bool,
    watch: EventWatch | None = None,
) -> Solution:
    te = _check_t_eval(t_eval, grid[0], grid[-1]) if dense_output and t_eval is not None else None
    grid, save_idx = _merge_t_eval(grid, None if dense_output else t_eval)
    nonlinear = _CheckedNonlinear(problem.nonlinear)
    # (the grid's step sizes are counted only where the eigenbasis could apply)
    continuous = dense_output or watch is not None
    eigen = isinstance(problem.linear, Dense) and _fixed_in_eigenbasis(grid, continuous)
    stepper, counted = _stepper_for(problem, sch, nonlinear, y0, eigen)
    work = _Work(counted)
    if dense_output:
        y0 = copy_array(y0)  # not the caller's y0, as in `_solve_adaptive`
    dense = DenseOutput(stepper, float(grid[0]), y0) if dense_output else None
    save_at: dict[int, list[int]] = {}
    for k, i in enumerate(save_idx):
        save_at.setdefault(i, []).append(k)
    saved: list[Any] = [None] * len(save_idx)
    for k in save_at.get(0, []):
        saved[k] = y0
    n = len(grid) - 1
    bar = _progress(progress, n, sch.name, "step")
    y = y0
    steps = _canonical_steps(np.diff(grid))
    success, message, done = True, "reached t_end", n
    finite = _FiniteWatch(y0, n)
    stop: tuple[float, Any] | None = None
    last_finite = (0, y0)  # grid index and state: where a failed run stopped
    for i in range(n):
        if dense is not None or watch is not None:
            stages: list[Any] = []
            y_new = stepper.step(float(grid[i]), steps[i], y, stages=stages)
            if dense is not None:
                dense.add(float(grid[i]), steps[i], y, stages, float(grid[i + 1]))
            if watch is not None:
                t_i, t_next = float(grid[i]), float(grid[i + 1])
                stop = watch.after_step(stepper, t_i, steps[i], y, stages, t_next, y_new)
            y = y_new
        else:
            y = stepper.step(float(grid[i]), steps[i], y)
        if bar is not None:
            bar.update()
        if stop is not None:
            done, message = i + 1, terminal_message(stop[0])
            break
        bad = finite.first_bad(i, y, force=(i + 1) in save_at or i + 1 == n)
        if bad is not None:
            success, done = False, bad + 1
            message = f"the state became non-finite in step {bad} (t = {grid[bad]:g} to {grid[bad + 1]:g})"
            warnings.warn(f"expint.solve: {message}; stopping", RuntimeWarning, stacklevel=3)
            break
        for k in save_at.get(i + 1, []):
            saved[k] = y
        if finite.verified:
            last_finite = (i + 1, y)
    if bar is not None:
        bar.close()
    stats = work.stats(done, stepper, 0)
    # a failed run ends at its last state known to be finite (on the host: the start of
    # the step that went non-finite), as an adaptive run ends at its last accepted step
    kept_steps = done if success else last_finite[0]
    t_reached = float(grid[kept_steps]) if stop is None else stop[0]
    if dense is not None:
        dense.truncate(kept_steps)
        dense.end_at(t_reached)
        ts_out, ys = _from_dense(dense, te, float(grid[0]), t_reached, success and stop is None)
        return _with_events(Solution(ts_out, ys, stats, success, message, sch.name, dense), watch)
    keep = [k for k in range(len(saved)) if saved[k] is not None]
    t_list = [float(grid[save_idx[k]]) for k in keep]
    y_list = [saved[k] for k in keep]
    if not success and (not t_list or t_list[-1] != t_reached):
        t_list.append(t_reached)
        y_list.append(last_finite[1])
    if stop is not None:  # drop the save points of the last step past the event, end at it
        sign = math.copysign(1.0, float(grid[-1] - grid[0]))
        kept = [j for j, tt in enumerate(t_list) if (tt - stop[0]) * sign < 0]
        t_list = [t_list[j] for j in kept] + [stop[0]]
        y_list = [y_list[j] for j in kept] + [stop[1]]
    return _with_events(Solution(np.array(t_list), stack(y_list), stats, success, message, sch.name), watch)


def _with_events(sol: Solution, watch: EventWatch | None) -> Solution:
    if watch is not None:
        sol.t_events, sol.y_events = watch.results()
    return sol


def _from_dense(
    dense: DenseOutput | BatchDenseOutput, te: np.ndarray | None, t0: float, t_reached: float, success: bool
) -> tuple[np.ndarray, Any]:
    """Saved times and states of a dense run: ``t_eval`` (those reached) from the
    interpolant, or the two ends; after a run that ended early (``success`` False: a
    failure or a terminal event) also the state at the time reached."""
    if te is None:  # (one time where the run stopped before its first step)
        times = np.array([t0, t_reached] if t_reached != t0 else [t0])
    else:
        times = te
    if not success and te is not None:
        sign = math.copysign(1.0, t_reached - t0) if t_reached != t0 else 1.0
        times = te[(te - t_reached) * sign <= 0]
        if times.size == 0 or times[-1] != t_reached:
            times = np.append(times, t_reached)
    return times, dense(times)


def _advances_together(sch: Scheme, problem: SemilinearProblem, y0: Any) -> bool:
    """Whether per-sample steps can advance the whole batch in one step (`run_independent`):
    a Runge–Kutta pair with element-wise coefficients (`Diagonal`, `ScalarTime`, or a
    large `Dense` part in its eigenbasis, `expint._eigenbasis`), gathered per member.
    Other linear parts (matrices, Krylov products) and the Adams and Rosenbrock pairs (a
    history, or a Jacobian, per member) run member by member."""
    if sch.tableau is None:
        return False
    elementwise = isinstance(problem.linear, (Diagonal, ScalarTime))
    return elementwise or eigenbasis_for(problem.linear, y0) is not None


def _check_member_batch(sch: Scheme, adaptive: bool, independent: bool, events: Any) -> None:
    """A batch run member by member (`expint._members`): per-sample steps
    (`_advances_together` false), or an exponential Rosenbrock scheme on a fixed grid."""
    if adaptive and not independent:
        raise ValueError(
            f"scheme {sch.name!r} linearises N around each state, so every member of a batch has its own "
            "Jacobian and its own adaptive steps: pass batch_steps='independent', or use an exponential "
            "Runge–Kutta pair (krogstad43, hochost43, whalen53) for one step sequence shared by the batch"
        )
    if events is not None:
        raise ValueError(
            f"events need one step sequence for the whole state, but scheme {sch.name!r} runs a batch member "
            "by member; pass one state of shape (n,), or use an exponential Runge–Kutta scheme"
        )


def _solve_by_member(
    member: Any,
    y0: Any,
    t0: float,
    tf: float,
    grid: Any,
    t_eval: Any,
    dense_output: bool,
    progress: bool,
    name: str,
) -> Solution:
    """A batch run member by member: ``member(state, t_eval=…)`` (a `solve` of one
    state) for each member, assembled by `expint._members.solve_members`.
    ``grid`` is the fixed grid, or ``None`` for an adaptive run."""
    bar = _progress(progress, int(np.prod(y0.shape[:-1])), name, "member")
    ends = np.array([t0, tf]) if grid is None else grid
    points, save_idx = _merge_t_eval(ends, None if dense_output else t_eval)
    saved = points[save_idx]
    try:
        if dense_output:  # the members save their ends; t_eval is served by the batch's interpolant
            te = _check_t_eval(t_eval, t0, tf) if t_eval is not None else None

            def from_dense(batch_dense: BatchDenseOutput, success: bool) -> tuple[np.ndarray, Any]:
                return _from_dense(batch_dense, te, t0, batch_dense.t_span[1], success)

            return solve_members(member, y0, saved, tf >= t0, bar, from_dense, grid is None)
        # every member also saves t_end: a failed batch reports each finished member's final state
        member_t_eval = None if t_eval is None else (saved if saved[-1] == tf else np.append(saved, tf))
        return solve_members(
            lambda y: member(y, t_eval=member_t_eval), y0, saved, tf >= t0, bar, None, grid is None
        )
    finally:
        if bar is not None:
            bar.close()


def _check_batch_steps(batch_steps: Any, adaptive: bool, y0: Any) -> bool:
    """True for per-sample step sizes; a ``ValueError`` where they cannot apply."""
    if batch_steps not in ("shared", "independent"):
        raise ValueError(f"batch_steps must be 'shared' or 'independent', got {batch_steps!r}")
    if batch_steps == "shared":
        return False
    if not adaptive:
        raise ValueError("batch_steps='independent' needs an adaptive run (an embedded pair with rtol/atol)")
    if y0.ndim < 2:
        raise ValueError(
            f"batch_steps='independent' needs a batch: y0 of shape (B, n), got shape {tuple(y0.shape)}"
        )
    return True


def _independent_solution(
    run: Any,
    y_start: Any,
    work: _Work,
    stepper: Any,
    shape: tuple,
    points: np.ndarray,
    save_idx: list[int],
    sch: Scheme,
) -> Solution:
    """The `Solution` of a per-sample run (`expint._batch_steps.run_independent`)."""
    stats = _independent_stats(run, work, stepper, shape)
    at_point = [None, *run.saved]
    keep = [k for k in range(len(save_idx)) if save_idx[k] == 0 or at_point[save_idx[k]] is not None]
    t_out = [float(points[save_idx[k]]) for k in keep]
    y_out = [y_start if save_idx[k] == 0 else at_point[save_idx[k]] for k in keep]
    y_out = [y.reshape(shape) for y in y_out]
    # after a failure, each member's state where it stopped, unless every member stopped
    # at the last saved time (e.g. before its first step), whose states are already there
    if not run.success and not (t_out and np.all(run.t_reached == t_out[-1])):
        t_out.append(float(run.t_reached.min() if points[-1] > points[0] else run.t_reached.max()))
        y_out.append(run.y_reached.reshape(shape))
    return Solution(np.array(t_out), stack(y_out), stats, run.success, run.message, sch.name)


def _independent_stats(run: Any, work: _Work, stepper: Any, shape: tuple) -> dict:
    """Stats of a per-sample run: the longest member's steps, every rejection, and per
    member its steps, rejections and (after a failure) the time it reached."""
    stats = work.stats(int(run.steps.max()), stepper, int(run.rejected.sum()))
    stats["steps_per_sample"] = run.steps.reshape(shape[:-1]).tolist()
    stats["rejected_per_sample"] = run.rejected.reshape(shape[:-1]).tolist()
    if not run.success:
        stats["t_reached"] = run.t_reached.reshape(shape[:-1]).tolist()
    return stats


def _progress(show: bool, total: float, name: str, unit: str) -> Any:
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"expint {name}", unit=unit)


def _check_mode(
    sch: Scheme, rtol: Any, atol: Any, grid_given: list[str], first_step: Any, max_step: Any, max_steps: Any
) -> bool:
    """True for an error-controlled run; a ``ValueError`` for inconsistent arguments."""
    tolerances = rtol is not None or atol is not None
    pairs = ", ".join(s.name for s in catalog() if s.adaptive)
    if tolerances and not sch.adaptive:
        raise ValueError(
            f"scheme {sch.name!r} has no error estimate, so rtol/atol cannot control it; use an "
            f"embedded pair ({pairs}) or pass dt, n_steps or ts"
        )
    if tolerances and grid_given:
        raise ValueError(
            f"pass either rtol/atol (adaptive steps) or {' / '.join(grid_given)} (a fixed grid), not both"
        )
    if tolerances and (rtol is None or atol is None):
        raise ValueError(f"pass both rtol and atol (got only {'rtol' if atol is None else 'atol'})")
    if sch.adaptive and not tolerances and not grid_given:
        raise ValueError(
            f"scheme {sch.name!r} is adaptive: pass rtol and atol (or dt, n_steps or ts to run its "
            "higher-order method on a fixed grid)"
        )
    if not tolerances:
        extra = [k for k, v in (("first_step", first_step), ("max_step", max_step)) if v is not None]
        if extra:
            raise ValueError(f"{', '.join(extra)} only apply to adaptive runs (with rtol and atol)")
    if isinstance(max_steps, bool) or not isinstance(max_steps, (numbers.Integral, np.integer)):
        raise TypeError(f"max_steps must be an integer, got {type(max_steps).__name__}")
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    return tolerances


def _step_bound(value: Any, name: str, length: float) -> float | None:
    if value is None:
        return None
    h = _check_time(value, name)
    if h <= 0:
        raise ValueError(f"{name} must be positive (the direction comes from t_span), got {h}")
    return min(h, abs(length))


def _solve_adaptive(
    problem: SemilinearProblem,
    sch: Scheme,
    y0: Any,
    t0: float,
    tf: float,
    t_eval: Any,
    tol: Tolerances,
    first_step: float | None,
    max_step: float | None,
    max_steps: int,
    dense_output: bool,
    progress: bool,
    independent: bool = False,
    watch: EventWatch | None = None,
) -> Solution:
    te = _check_t_eval(t_eval, t0, tf) if dense_output and t_eval is not None else None
    points, save_idx = _merge_t_eval(np.array([t0, tf]), None if dense_output else t_eval)
    shape = tuple(y0.shape)
    if dense_output:
        # the dense output keeps every step's start state, the first step's too: it must
        # not be the caller's y0 (or a view of it), which may change in place after the run
        y0 = copy_array(y0)
    nonlinear: Any = _CheckedNonlinear(problem.nonlinear)
    if independent:  # per-sample steps on a (B, n) view of the batch
        nonlinear, y0 = RowwiseNonlinear(nonlinear), y0.reshape(-1, shape[-1])
    # a new step size every few steps: on a large Dense part, steps in its eigenbasis
    cache = 64 if independent else 32
    stepper, counted = _stepper_for(problem, sch, nonlinear, y0, True, cache=cache)
    work = _Work(counted)
    dense = DenseOutput(stepper, t0, y0) if dense_output and not independent else None
    members = (
        [DenseOutput(stepper, t0, y0[i]) for i in range(y0.shape[0])]
        if dense_output and independent
        else None
    )
    bar = _progress(progress, abs(tf - t0), sch.name, "t")
    runner = (
        functools.partial(run_independent, dense=members)
        if independent
        else functools.partial(run_adaptive, dense=dense, events=watch)
    )
    run: Any  # an AdaptiveRun, or a BatchRun for per-sample steps
    try:
        run = runner(
            stepper,
            y0,
            t0,
            [float(p) for p in points[1:]],
            tol.for_pair(sch.order, sch.embedded_order or 1),
            sch.embedded_order or 1,
            first_step=first_step,
            max_step=max_step if max_step is not None else math.inf,
            max_steps=max_steps,
            bar=bar,
        )
    finally:
        if bar is not None:
            bar.close()
    if not run.success:
        warnings.warn(f"expint.solve: {run.message}; stopping", RuntimeWarning, stacklevel=3)
    if independent:
        if members is not None:
            batch_dense = BatchDenseOutput(members, shape)
            stats = _independent_stats(run, work, stepper, shape)
            ts_out, ys = _from_dense(batch_dense, te, t0, batch_dense.t_span[1], run.success)
            return Solution(ts_out, ys, stats, run.success, run.message, sch.name, batch_dense)
        return _independent_solution(run, y0, work, stepper, shape, points, save_idx, sch)
    stats = work.stats(run.steps, stepper, run.rejected)
    complete = run.success and run.t_reached == tf  # not ended by a terminal event
    if dense is not None:
        dense.end_at(run.t_reached)
        ts_out, ys = _from_dense(dense, te, t0, run.t_reached, complete)
        return _with_events(Solution(ts_out, ys, stats, run.success, run.message, sch.name, dense), watch)
    at_point = [y0, *run.saved]
    keep = [k for k in range(len(save_idx)) if at_point[save_idx[k]] is not None]
    t_out = [float(points[save_idx[k]]) for k in keep]
    y_out = [at_point[save_idx[k]] for k in keep]
    if not complete and (not t_out or t_out[-1] != run.t_reached):
        t_out.append(run.t_reached)
        y_out.append(run.y_reached)
    return _with_events(
        Solution(np.array(t_out), stack(y_out), stats, run.success, run.message, sch.name), watch
    )
