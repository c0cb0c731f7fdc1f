"""The tolerance-proportionality sweep shared by the adaptive pairs' tests."""

from __future__ import annotations

import numpy as np

import expint

RTOLS = np.logspace(-3, -10, 8)


def sweep(
    bp, t_end: float, scheme, ref: np.ndarray, rtols: np.ndarray = RTOLS
) -> tuple[np.ndarray, list[int]]:
    """``(achieved error / rtol, accepted steps)`` for each rtol, ``atol = rtol·max|y0|``;
    the error is the max-norm distance to ``ref`` relative to ``max|ref|``."""
    scale = np.max(np.abs(ref))
    errs, steps = [], []
    for rtol in rtols:
        sol = expint.solve(
            bp.problem, bp.y0, (0.0, t_end), scheme=scheme, rtol=rtol, atol=rtol * np.max(np.abs(bp.y0))
        )
        assert sol.success, sol.message
        errs.append(np.max(np.abs(sol.y[-1] - ref)) / scale)
        steps.append(sol.stats["steps"])
    return np.array(errs) / rtols, steps


def order_from_steps(rtols: np.ndarray, steps: list[int]) -> float:
    """``p`` in ``steps ∝ rtol^{-1/p}`` (least squares in log–log)."""
    return -1.0 / np.polyfit(np.log(rtols), np.log(steps), 1)[0]
