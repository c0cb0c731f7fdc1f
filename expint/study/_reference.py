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
    """``max|y − ref| / max|ref|`` (the error measure of the studies)."""
    return float(np.max(np.abs(to_numpy(y) - ref)) / max(np.max(np.abs(ref)), 1e-300))


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
        a = to_numpy(solve(problem, y0, t_span, scheme="hochost4", n_steps=n).y[-1])
        b = to_numpy(solve(problem, y0, t_span, scheme="krogstad", n_steps=n).y[-1])
        return Reference(a, relative_error(b, a), f"hochost4 with {n} steps (distance to krogstad: accuracy)")
    if reference == "torchdiffeq":
        tight, loose = (_torchdiffeq(problem, y0, t_span, rtol) for rtol in (1e-13, 1e-11))
        return Reference(tight, relative_error(loose, tight), "torchdiffeq dopri5, rtol 1e-13")
    if reference == "scipy":
        tight, loose = (_scipy(problem, y0, t_span, rtol) for rtol in (1e-13, 1e-11))
        return Reference(tight, relative_error(loose, tight), "scipy solve_ivp DOP853, rtol 1e-13")
    raise ValueError(f"reference must be None, 'fine', 'torchdiffeq', 'scipy' or an array, got {reference!r}")


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
