r"""Tight reference solutions of the probability-flow ODE of any model (torchdiffeq).

In ``v = x/α`` against ``ρ = σ/α`` the PF-ODE is $dv/dρ = ε(αv, t(ρ))$ for every
VP-type schedule, so one adaptive dopri5 integration of the model's ε (converted from
whatever it predicts) gives the solution every sampler approximates from the same
noise.  Used by the learned-model benchmarks and tests; needs ``torchdiffeq``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .models import check_prediction, conversion
from .schedules import Schedule

__all__ = ["pf_ode_reference"]


def _scalar(fn: Callable[[Any], Any], t: float) -> float:
    return float(fn(np.array([t]))[0])


def pf_ode_reference(
    model: Callable[[Any, Any], Any],
    schedule: Schedule,
    prediction: str,
    x_T: Any,
    t_start: float,
    t_end: float,
    rtol: float = 1e-8,
) -> Any:
    """The PF-ODE solution at ``t_end`` from ``x_T`` at ``t_start`` (σ > 0 at both
    ends), by dopri5 in ρ with ``atol = rtol/100``; ``x_T`` float64 recommended."""
    import torch
    import torchdiffeq

    prediction = check_prediction(prediction)
    r0, r1 = _scalar(schedule.rho, t_start), _scalar(schedule.rho, t_end)
    a0, a1 = _scalar(schedule.alpha, t_start), _scalar(schedule.alpha, t_end)
    if not (np.isfinite(r0) and r1 > 0):
        raise ValueError("pf_ode_reference needs 0 < σ/α at both ends (finite at t_start, positive at t_end)")

    def f(rho: Any, v: Any) -> Any:
        r = min(max(float(rho), r1), r0)
        t = _scalar(schedule.t_of_rho, r)
        a, s = _scalar(schedule.alpha, t), _scalar(schedule.sigma, t)
        x = a * v
        out = model(x, torch.full((v.shape[0],), t, dtype=v.dtype, device=v.device))
        if prediction == "eps":
            return out
        da, ds = (
            (float(d[0]) for d in schedule.derivatives(np.array([t]))) if prediction == "flow" else (0, 0)
        )
        A, B = conversion(prediction, "eps", a, s, da, ds)
        return A * x + B * out

    span = torch.tensor([r0, r1], dtype=torch.float64)
    return a1 * torchdiffeq.odeint(f, x_T / a0, span, method="dopri5", rtol=rtol, atol=rtol * 1e-2)[-1]
