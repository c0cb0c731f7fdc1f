"""Reference solutions for studies, each with an estimate of its own accuracy."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import is_array, to_numpy
from .._problem import SemilinearProblem
from .._solve import solve


@dataclass(frozen=True)
class Reference:
    """A final state to measure errors against.

    Attributes
    ----------
    y : numpy.ndarray
        The reference final state.
    accuracy : float
        Estimated relative max error of ``y`` (NaN for a reference given by the user):
        the distance between two independent computations (see `make_reference`).
    description : str
        How it was computed.
    """

    y: np.ndarray
    accuracy: float
    description: str


def relative_error(y: Any, ref: np.ndarray) -> float:
    """``max|y − ref| / max|ref|`` (the error measure of the studies); the absolute
    error ``max|y − ref|`` where the reference is zero (no scale to be relative to)."""
    diff = float(np.max(np.abs(to_numpy(y) - ref)))
    scale = float(np.max(np.abs(ref)))
    return diff / scale if scale > 0 else diff


def make_reference(
    problem: SemilinearProblem, y0: Any, t_span: tuple[float, float], reference: Any, finest_steps: int
) -> Reference:
    """The reference of a study.

    ``reference`` is one of

    * ``None`` or ``"fine"``: ``hochost4`` with ``16 × finest_steps`` steps; accuracy =
      its distance to ``krogstad`` with the same steps (two different fourth-order
      schemes agree to about the error of the worse one);
    * ``"torchdiffeq"``: dopri5 at ``rtol = 1e-13``; accuracy = its distance to a run at
      ``rtol = 1e-11``;
    * ``"scipy"``: ``solve_ivp`` with DOP853 at ``rtol = 1e-13`` (explicit: meant for
      mildly stiff problems); accuracy as for torchdiffeq;
    * an array: the final state, used as given (accuracy NaN).
    """
    if is_array(reference) or isinstance(reference, (list, tuple)):
        given = np.asarray(to_numpy(reference))
        shape = tuple(np.shape(to_numpy(y0)))
        if given.shape != shape:
            raise ValueError(
                f"reference must be the final state, shaped like y0 {shape}; got shape {given.shape}"
            )
        if given.dtype.kind not in "fc" or not np.all(np.isfinite(given)):
            raise ValueError("reference must be a finite floating-point (or complex) final state")
        return Reference(given, math.nan, "given by the caller")
    if reference is None or reference == "fine":
        n = 16 * finest_steps
        how = f"hochost4 with {n} steps"
        a, b = (_fine(problem, y0, t_span, s, n) for s in ("hochost4", "krogstad"))
        return Reference(a, relative_error(b, a), f"{how} (distance to krogstad: accuracy)")
    if reference in ("torchdiffeq", "scipy"):
        run, how = (
            (_torchdiffeq, "torchdiffeq dopri5, rtol 1e-13")
            if reference == "torchdiffeq"
            else (_scipy, "scipy solve_ivp DOP853, rtol 1e-13")
        )
        try:
            tight, loose = (_finite(run(problem, y0, t_span, rtol), how) for rtol in (1e-13, 1e-11))
        except (AssertionError, RuntimeError) as exc:  # torchdiffeq: "underflow in dt"
            raise ValueError(
                f"reference: the {how} run failed ({exc}); pass the reference as an array"
            ) from exc
        return Reference(tight, relative_error(loose, tight), how)
    raise ValueError(f"reference must be None, 'fine', 'torchdiffeq', 'scipy' or an array, got {reference!r}")


def _fine(
    problem: SemilinearProblem, y0: Any, t_span: tuple[float, float], scheme: str, n: int
) -> np.ndarray:
    sol = solve(problem, y0, t_span, scheme=scheme, n_steps=n)
    if not sol.success:  # its last saved state is an earlier one
        raise ValueError(
            f"reference: the {scheme} run with {n} steps stopped ({sol.message}; does the problem blow "
            "up on t_span?); pass the reference as an array"
        )
    return _finite(sol.y[-1], f"{scheme} with {n} steps")


def _finite(y: Any, how: str) -> np.ndarray:
    """``y`` on the host, or a ``ValueError`` naming ``reference`` if it is not finite."""
    out = np.asarray(to_numpy(y))
    if not np.all(np.isfinite(out)):
        raise ValueError(
            f"reference: the {how} run ended in a non-finite state (does the problem blow up on "
            "t_span?); pass the reference as an array"
        )
    return out


def _torchdiffeq(problem: SemilinearProblem, y0: Any, t_span: tuple[float, float], rtol: float) -> np.ndarray:
    import torch
    import torchdiffeq

    y = torch.as_tensor(to_numpy(y0))
    if not (y.is_complex() or y.dtype == torch.float64):
        y = y.double()
    ts = torch.tensor([float(t_span[0]), float(t_span[1])], dtype=torch.float64)
    out = torchdiffeq.odeint(lambda t, s: problem.rhs(float(t), s), y, ts, rtol=rtol, atol=rtol * 1e-2)
    return out[-1].numpy()


def _scipy(problem: SemilinearProblem, y0: Any, t_span: tuple[float, float], rtol: float) -> np.ndarray:
    from scipy.integrate import solve_ivp

    y = np.asarray(to_numpy(y0))
    shape = y.shape

    def rhs(t: float, flat: np.ndarray) -> np.ndarray:
        return np.asarray(problem.rhs(t, flat.reshape(shape))).ravel()

    out = solve_ivp(rhs, t_span, y.ravel(), method="DOP853", rtol=rtol, atol=rtol * 1e-2 * np.max(np.abs(y)))
    if not out.success:
        raise RuntimeError(f"the scipy reference failed: {out.message}")
    return out.y[:, -1].reshape(shape)
