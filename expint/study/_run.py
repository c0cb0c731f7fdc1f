"""`convergence` and `work_precision`: run schemes over a refinement against a reference."""

from __future__ import annotations

import math
import numbers
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

from .._backend import finfo_of, to_numpy
from .._problem import SemilinearProblem
from .._schemes._catalog import Scheme, get
from .._solve import solve
from ._reference import make_reference, relative_error
from ._results import ConvergenceResult, WorkPrecisionResult


def _unpack(problem: Any, y0: Any, t_span: Any) -> tuple[SemilinearProblem, Any, tuple[float, float], str]:
    """Accept a `SemilinearProblem` or a built-in problem (``expint.problems``), whose
    ``y0`` and ``t_span`` are used where those are None."""
    inner = getattr(problem, "problem", None)
    if isinstance(inner, SemilinearProblem):
        name = problem.name
        y0 = problem.y0 if y0 is None else y0
        t_span = problem.t_span if t_span is None else t_span
        problem = inner
    elif isinstance(problem, SemilinearProblem):
        name = problem.name or "problem"
    else:
        raise TypeError(
            f"problem must be a SemilinearProblem or a built-in problem, got {type(problem).__name__}"
        )
    if y0 is None:
        raise ValueError("y0 is required for a SemilinearProblem")
    if t_span is None:
        raise ValueError("t_span is required for a SemilinearProblem")
    if (
        not isinstance(t_span, (Sequence, np.ndarray))
        or len(t_span) != 2
        or not all(_is_real(t) for t in t_span)
    ):
        raise ValueError(f"t_span must be a pair of real numbers (t0, t_end), got {t_span!r}")
    return problem, y0, (float(t_span[0]), float(t_span[1])), name


def _is_real(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (numbers.Real, np.floating, np.integer))


def _sequence(values: Any, name: str, what: str) -> list:
    """``values`` as a list, or a ``TypeError`` naming ``name`` (a sequence of ``what``)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray, range)):
        raise TypeError(f"{name} must be a sequence of {what}, got {type(values).__name__}")
    return list(values)


def _counts(values: Any, name: str) -> list[int]:
    vals = _sequence(values, name, "positive integers (numbers of steps)")
    if not vals or any(
        isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)) or v < 1 for v in vals
    ):
        raise ValueError(f"{name} must be a non-empty sequence of positive integers (numbers of steps)")
    out = sorted(int(v) for v in vals)
    if len(set(out)) != len(out):
        # a repeated count would enter the order fit twice, weighting that point double
        raise ValueError(f"{name} must not repeat a number of steps, got {list(vals)}")
    return out


def _schemes(schemes: Any) -> list[Scheme]:
    if isinstance(schemes, (str, Scheme)):
        schemes = [schemes]
    out = [get(s) for s in _sequence(schemes, "schemes", "scheme names or Schemes")]
    if not out:
        raise ValueError("schemes must name at least one scheme")
    return out


def _bar(show: bool, total: int, desc: str) -> Any:
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="run")


def _quiet_solve(*args: Any, **kwargs: Any) -> Any:
    """`solve` with a failure reported as ``success=False`` only (studies push schemes
    past their stability limits on purpose)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return solve(*args, **kwargs)


def best_time(fn: Callable[[], Any], repeat: int = 3, budget: float = 2.0) -> tuple[float, Any]:
    """``(best wall time, last result)`` of up to ``repeat`` calls of ``fn``, stopping
    early once the calls so far plus one more would exceed ``budget`` seconds (machines
    are noisy: the minimum is the least disturbed run)."""
    best, spent, out = math.inf, 0.0, None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
        if spent + dt > budget:
            break
    return best, out


def _rtols(rtols: Any) -> list[float]:
    """``rtols`` sorted from loose to tight, each in (0, 1), none repeated."""
    if rtols is None:
        return []
    vals = _sequence(rtols, "rtols", "relative tolerances in (0, 1)")
    if not all(_is_real(r) and 0 < r < 1 for r in vals):
        raise ValueError(f"rtols must lie in (0, 1), as real numbers; got {vals}")
    out = sorted((float(r) for r in vals), reverse=True)
    if len(set(out)) != len(out):
        raise ValueError(f"rtols must not repeat a tolerance, got {vals}")
    return out


def _check_timing(repeat: Any, budget: Any, max_seconds: Any) -> None:
    if isinstance(repeat, bool) or not isinstance(repeat, (numbers.Integral, np.integer)) or repeat < 1:
        raise ValueError(f"repeat must be a positive integer (timed calls per setting), got {repeat!r}")
    for label, value in (("budget", budget), ("max_seconds", max_seconds)):
        if not _is_real(value) or not value > 0:
            raise ValueError(f"{label} must be a positive number of seconds, got {value!r}")


def _peers(peers: Any) -> dict[str, Callable[[float], Any]]:
    if peers is None:
        return {}
    if not isinstance(peers, Mapping):
        raise TypeError(f"peers must be a dict mapping a label to run(rtol), got {type(peers).__name__}")
    for label, run in peers.items():
        if not isinstance(label, str) or not callable(run):
            raise TypeError(f"peers must map a label (str) to a callable run(rtol); got {label!r}: {run!r}")
    return dict(peers)


def _peer_error(label: str, out: Any, ref: np.ndarray) -> tuple[float, int, int]:
    """``(error, nfev, steps)`` of a peer's result: its final state, or a ``(state,
    nfev, steps)`` tuple; a non-finite state, a bare NaN or ``None`` is a failed run
    (error ``inf``: the way a wrapper that catches a peer's failure or timeout says so)."""
    state, nfev, nsteps = out if isinstance(out, tuple) else (out, -1, -1)
    if state is None:
        return math.inf, int(nfev), int(nsteps)
    got = np.asarray(to_numpy(state))
    if got.ndim == 0 and got.dtype.kind in "fc" and not np.isfinite(got):
        return math.inf, int(nfev), int(nsteps)
    if got.shape != ref.shape:
        raise ValueError(
            f"peers[{label!r}] returned shape {got.shape}; it must return the final state, shaped like "
            f"the reference {ref.shape}"
        )
    return (relative_error(got, ref) if np.all(np.isfinite(got)) else math.inf), int(nfev), int(nsteps)


def convergence(
    problem: Any,
    y0: Any,
    t_span: Sequence[float] | None,
    schemes: Any,
    steps: Sequence[int],
    reference: Any = None,
    *,
    progress: bool = False,
) -> ConvergenceResult:
    r"""Errors of fixed-step runs of ``schemes`` with each number of ``steps``.

    Parameters
    ----------
    problem : SemilinearProblem or built-in problem
        A built-in problem (``expint.problems.…()``) supplies ``y0`` and ``t_span``
        where they are None.
    y0 : array or None
    t_span : (float, float) or None
    schemes : str, Scheme or sequence of them
    steps : sequence of int
        Numbers of uniform steps (``h = |t_span| / n``).
    reference : None, "fine", "torchdiffeq", "scipy" or array
        See `expint.study.make_reference`; the default is ``hochost4`` with 16× the
        finest step count, its accuracy the distance to ``krogstad``.
    progress : bool
        A tqdm progress bar over the runs.

    Returns
    -------
    ConvergenceResult
        ``errors`` (relative max error $\max|y - y_\text{ref}| / \max|y_\text{ref}|$ of
        the final state; ``inf`` for a failed run), ``orders`` (least-squares slope on
        the asymptotic range, `fit_order`), ``table()``, ``to_json()``, ``plot()``.

    Examples
    --------
    >>> import expint
    >>> from expint import problems
    >>> res = expint.study.convergence(problems.nonstiff(), None, (0.0, 2.0), ["etd2rk"], [10, 20, 40])
    >>> round(res.orders["etd2rk"])
    2
    """
    prob, y0, span, name = _unpack(problem, y0, t_span)
    counts = _counts(steps, "steps")
    schs = _schemes(schemes)
    ref = make_reference(prob, y0, span, reference, counts[-1])
    length = abs(span[1] - span[0])
    res = ConvergenceResult(name, span, counts, [length / n for n in counts])
    res.reference_accuracy, res.reference = ref.accuracy, ref.description
    res.unit_roundoff = float(finfo_of(y0).eps)
    bar = _bar(progress, len(schs) * len(counts), f"convergence {name}")
    for sch in schs:
        errs, nfev, secs = [], [], []
        for n in counts:
            t0 = time.perf_counter()
            sol = _quiet_solve(prob, y0, span, scheme=sch, n_steps=n)
            secs.append(time.perf_counter() - t0)
            errs.append(relative_error(sol.y[-1], ref.y) if sol.success else math.inf)
            nfev.append(int(sol.stats["nfev"]))
            if bar is not None:
                bar.update()
        res.errors[sch.name], res.nfev[sch.name], res.seconds[sch.name] = errs, nfev, secs
    if bar is not None:
        bar.close()
    return res


def work_precision(
    problem: Any,
    y0: Any,
    t_span: Sequence[float] | None,
    schemes: Any,
    *,
    steps: Sequence[int] | None = None,
    rtols: Sequence[float] | None = None,
    reference: Any = None,
    peers: dict[str, Callable[[float], Any]] | None = None,
    repeat: int = 3,
    budget: float = 2.0,
    max_seconds: float = math.inf,
    progress: bool = False,
    error_norm: str = "rms",
) -> WorkPrecisionResult:
    """Error against wall time: adaptive schemes over ``rtols`` (``atol = rtol·max|y0|``),
    fixed-step schemes over ``steps``, and any ``peers``.  A built-in problem supplies
    ``y0`` and ``t_span`` where they are None, as in `convergence`.

    ``error_norm`` is the adaptive runs' step-size control norm (`expint.solve`'s:
    ``"rms"`` or ``"max"``; the error reported is always the largest entry's, relative
    to the reference's largest, so ``"max"`` holds the reported error closer to rtol
    where a few entries of the state carry it).

    ``peers`` maps a label to ``run(rtol) -> final state`` (e.g. a scipy or rkstiff
    solve of the same problem; a non-finite state, a bare NaN or ``None`` marks a failed
    run, error ``inf``), swept over ``rtols``: peers are timed in the same process
    and against the same reference.  Times are the best of ``repeat`` calls (fewer once
    a configuration has used ``budget`` seconds); expint's runs start without cached
    φ-coefficients.  Once one run of a configuration takes
    longer than ``max_seconds``, its tighter settings are skipped (recorded with NaN
    error and time, setting marked "skipped").  See `convergence` for ``reference``.
    """
    if error_norm not in ("rms", "max"):
        raise ValueError(f"error_norm must be 'rms' or 'max', got {error_norm!r}")
    prob, y0, span, name = _unpack(problem, y0, t_span)
    schs = _schemes(schemes)
    tol_list = _rtols(rtols)
    _check_timing(repeat, budget, max_seconds)
    peers = _peers(peers)
    counts = _counts(steps, "steps") if steps is not None else []
    missing = [s.name for s in schs if (s.adaptive and not tol_list) or (not s.adaptive and not counts)]
    if missing:
        raise ValueError(
            f"pass rtols for adaptive schemes and steps for fixed-step ones (nothing to run for {missing})"
        )
    finest = max(counts, default=0) or 1000
    ref = make_reference(prob, y0, span, reference, finest)
    res = WorkPrecisionResult(name, [], ref.accuracy, ref.description)
    scale = float(np.max(np.abs(np.asarray(ref.y))))

    def cold(**kwargs: Any) -> Any:
        # every timed run starts without cached φ-coefficients, as a solve of a new
        # problem would (peers such as rkstiff recompute theirs on every run too)
        prob.linear.clear_cache()
        return _quiet_solve(prob, y0, span, **kwargs)

    run = cold
    jobs: list[tuple[str, str, Callable[[], Any]]] = []
    for sch in schs:
        if sch.adaptive:
            jobs += [
                (
                    sch.name,
                    f"rtol={r:.0e}",
                    partial(run, scheme=sch, rtol=r, atol=r * scale, error_norm=error_norm),
                )
                for r in tol_list
            ]
        else:
            jobs += [(sch.name, f"n_steps={n}", partial(run, scheme=sch, n_steps=n)) for n in counts]
    for label, peer in peers.items():
        jobs += [(label, f"rtol={r:.0e}", partial(peer, r)) for r in tol_list]
    bar = _bar(progress, len(jobs), f"work–precision {name}")
    too_slow: set[str] = set()
    for label, setting, fn in jobs:
        if label in too_slow:
            res.runs.append(
                {
                    "label": label,
                    "setting": f"{setting} skipped",
                    "error": math.nan,
                    "seconds": math.nan,
                    "nfev": -1,
                    "steps": -1,
                }
            )
            if bar is not None:
                bar.update()
            continue
        secs, out = best_time(fn, repeat, budget)
        if secs > max_seconds:
            too_slow.add(label)
        if hasattr(out, "stats"):
            ok = out.success
            err = relative_error(out.y[-1], ref.y) if ok else math.inf
            nfev, nsteps = int(out.stats["nfev"]), int(out.stats["steps"])
        else:
            err, nfev, nsteps = _peer_error(label, out, ref.y)
        res.runs.append(
            {"label": label, "setting": setting, "error": err, "seconds": secs, "nfev": nfev, "steps": nsteps}
        )
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return res
