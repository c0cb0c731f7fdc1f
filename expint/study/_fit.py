"""Observed order of convergence: a least-squares slope on the asymptotic range."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_SLOPE_SPREAD = 0.5  # how far a coarse local slope may stray before it is pre-asymptotic


@dataclass(frozen=True)
class OrderFit:
    """A fitted order and the points it used.

    Attributes
    ----------
    order : float
        Slope of ``log(error)`` against ``log(h)`` (NaN if fewer than two usable points).
    used : tuple of int
        Indices of the points in the fit (the asymptotic range).
    """

    order: float
    used: tuple[int, ...]


def fit_order(h: Sequence[float], errors: Sequence[float], floor: float | Sequence[float] = 0.0) -> OrderFit:
    r"""Order $p$ in ``error ≈ C h^p`` from the asymptotic range of a refinement.

    Points that are not finite or not above ``floor`` (a number, or one per point: e.g.
    ten times the reference's accuracy, below which errors measure the reference, or the
    rounding that ``n`` steps accumulate) are dropped.  The asymptotic
    range is then the longest run of consecutive step sizes whose local slopes
    ``Δ log(error) / Δ log(h)`` all lie within 0.5 of their median — which leaves out
    pre-asymptotic coarse steps (instability, no convergence yet) and fine steps where
    rounding error stagnates the error; among runs of equal length the finer one wins.
    The order is the least-squares slope over that run (over all usable points if no
    run of three exists).
    """
    try:
        hh, ee = np.asarray(h, dtype=float), np.asarray(errors, dtype=float)
    except (TypeError, ValueError):
        raise TypeError("h and errors must be sequences of real numbers") from None
    if hh.shape != ee.shape or hh.ndim != 1:
        raise ValueError("h and errors must be 1-D sequences of the same length")
    if not np.all(np.isfinite(hh) & (hh > 0)):
        # (an error may be inf or NaN: a failed run, dropped below; a step size may not)
        raise ValueError(f"h must hold positive finite step sizes, got {hh.tolist()}")
    ff = np.asarray(floor, dtype=float)
    if ff.ndim and ff.shape != hh.shape:
        raise ValueError(
            f"floor must be a number or one value per point of h ({hh.size}), got shape {ff.shape}"
        )
    ff = np.broadcast_to(ff, hh.shape)
    idx = [int(i) for i in np.argsort(-hh) if np.isfinite(ee[i]) and ee[i] > ff[i] and hh[i] > 0]
    if len(idx) < 2:
        return OrderFit(math.nan, tuple(sorted(idx)))
    slopes = [float(np.log(ee[a] / ee[b]) / np.log(hh[a] / hh[b])) for a, b in itertools.pairwise(idx)]
    best = idx
    for size in range(len(idx), 2, -1):  # window sizes in points, longest first
        runs = [
            idx[lo : lo + size]
            for lo in range(len(idx) - size, -1, -1)  # finer windows first
            if _consistent(slopes[lo : lo + size - 1])
        ]
        if runs:
            best = runs[0]
            break
    slope = np.polyfit(np.log(hh[best]), np.log(ee[best]), 1)[0]
    return OrderFit(float(slope), tuple(sorted(best)))


def _consistent(slopes: list[float]) -> bool:
    mid = float(np.median(slopes))
    return all(abs(s - mid) <= _SLOPE_SPREAD for s in slopes)
