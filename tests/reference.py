"""Reference solutions from torchdiffeq (independent of expint's schemes)."""

from __future__ import annotations

import numpy as np
import torch
import torchdiffeq


def torchdiffeq_reference(problem, y0: np.ndarray, t_span, rtol: float = 1e-13) -> np.ndarray:
    """Final state of ``y' = L y + N(t, y)`` by dopri5 at rtol 1e-13 in float64.

    torchdiffeq's dopri8 is *less* accurate here: on problems.nonstiff() it misses a
    scipy DOP853 (rtol 2.2e-14) solution by 7e-11 at rtol 1e-13 and 3e-10 at 1e-14, while
    dopri5 at rtol 1e-13 agrees to 6e-14.
    """
    y = torch.as_tensor(y0)
    if not (y.is_complex() or y.dtype == torch.float64):
        y = y.double()

    def rhs(t, state):
        return problem.rhs(float(t), state)

    ts = torch.tensor([float(t_span[0]), float(t_span[1])], dtype=torch.float64)
    out = torchdiffeq.odeint(rhs, y, ts, method="dopri5", rtol=rtol, atol=rtol * 1e-2)
    return out[-1].numpy()
