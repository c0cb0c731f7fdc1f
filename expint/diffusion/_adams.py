r"""The weights of exponential-Adams steps, for one step or for a whole grid at once.

`adams_weights` gives the exact weights of one step (the formulas are in
`expint.diffusion.methods`); `noise_gain` and `variable_disagreement` measure them for
the stability guards; `unipc_weights` is UniPC's two-node variant.

Planning a grid asks for α, σ, λ and ρ at the grid's times, and for each step's
Gauss–Legendre rule in λ, many times per step (every degree the guards try, the
natural-variable weights they compare with, the corrector).  As scalar calls each is a
dozen array operations, and a 50-step plan spent tens of milliseconds there.
`GridValues` evaluates the schedule once on the whole grid and `AdamsSteps` every
step's rule and its nodes in each variable (one ``t_of_lam`` call for all steps), so
that a step's weights are one small Lagrange basis and a dot product — with the same
arithmetic as `adams_weights`, which the irregular steps (one ending at σ = 0, one
starting at α = 0) still go through.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._interp import gauss_legendre, gauss_legendre_rows, lagrange_basis
from .schedules import Schedule

__all__ = [
    "AdamsSteps",
    "GridValues",
    "adams_weights",
    "degree0_weight",
    "noise_gain",
    "unipc_weights",
    "variable_disagreement",
]

#: The variable each target is integrated against exactly (ε: dρ; x0: du = d e^λ).
NATURAL_VARIABLE = {"eps": "rho", "x0": "lam"}


def _variable(schedule: Schedule, variable: str, t: Any) -> Any:
    if variable == "t":
        return np.asarray(t, dtype=float)
    if variable == "rho":
        return np.asarray(schedule.rho(np.asarray(t, dtype=float)), dtype=float)
    return np.asarray(schedule.lam(np.asarray(t, dtype=float)), dtype=float)


def _ab(schedule: Schedule, t: float) -> tuple[float, float]:
    a = float(schedule.alpha(np.array([t]))[0])
    s = float(schedule.sigma(np.array([t]))[0])
    return a, s


def degree0_weight(target: str, a0: float, s0: float, a1: float, s1: float) -> tuple[float, float]:
    """``(out_x, C_0)`` of one DDIM step from (α0, σ0) to (α1, σ1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a0, s0 = np.float64(a0), np.float64(s0)  # division by a vanishing α/σ gives inf, not an exception
        if target == "eps":
            return float(a1 / a0), float(s1 - a1 * s0 / a0)
        return float(s1 / s0), float(a1 - s1 * a0 / s0)


def _gain(weights: np.ndarray, g: np.ndarray, a0: float, s0: float, a1: float, s1: float) -> float:
    """``Σ_j |C_j| g_j`` over the DDIM weight of the step (`noise_gain`); inf if undefined."""
    ddim = abs(degree0_weight("eps", a0, s0, a1, s1)[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        gain = float(np.sum(np.abs(weights) * g)) / ddim
    return gain if math.isfinite(gain) else math.inf


def noise_gain(
    schedule: Schedule, target: str, t_nodes: np.ndarray, weights: np.ndarray, t0: float, t1: float
) -> float:
    r"""How much a step's weights amplify errors of the ε values at ``t_nodes``,
    relative to a DDIM step over the same interval.

    An error $δε_j$ in the prediction at $t_j$ is an error
    $δx_{0,j} = -ρ_j δε_j$ in the data prediction, so the step moves the state by
    $\sum_j |C_j| g_j$ per unit ε error, with $g_j = 1$ (ε target) or
    $ρ_j = σ_j/α_j$ (x0 target); DDIM moves it by
    $|σ_{i+1} − α_{i+1}σ_i/α_i| = α_{i+1}|ρ_{i+1} − ρ_i|$.  The ratio is 1 for
    degree 0, 2 / 3.7 / 6.7 for degrees 1 / 2 / 3 on equal steps in ρ with an ε target,
    and it explodes when a high-degree interpolant extrapolates across a long step or
    leans on an x0 prediction made at high noise (where ``ρ_j`` is large).
    """
    g = (
        np.ones(len(t_nodes))
        if target == "eps"
        else np.asarray(schedule.rho(np.asarray(t_nodes, float)), float)
    )
    return _gain(weights, g, *_ab(schedule, t0), *_ab(schedule, t1))


def variable_disagreement(
    schedule: Schedule,
    target: str,
    variable: str,
    t_nodes: np.ndarray,
    weights: np.ndarray,
    t0: float,
    t1: float,
) -> float:
    r"""Distance between a step's weights and those of the same nodes interpolated in
    the target's natural variable (ρ for ε, λ for x0), in DDIM weights:
    $\sum_j |C_j − C_j^{nat}|\,g_j / |C^{DDIM}|$ with ``g`` as in ``noise_gain``."""
    with np.errstate(all="ignore"):  # a node at α = 0 has no natural-variable value: no agreement
        natural = adams_weights(schedule, target, NATURAL_VARIABLE[target], t_nodes, t0, t1)
        return noise_gain(schedule, target, t_nodes, np.abs(np.asarray(weights) - natural), t0, t1)


def _quadrature_kernel(
    target: str, a1: Any, s1: Any, lq: np.ndarray, wq: np.ndarray
) -> tuple[Any, np.ndarray]:
    """``(scale, kernel)`` with the weights ``scale · (basis @ kernel)``: the Gauss–Legendre
    weights in λ times ``e^{∓λ}``, scaled by ``−α_{i+1}`` (ε) or ``σ_{i+1}`` (x0)."""
    if target == "eps":
        return -a1, wq * np.exp(-lq)
    return s1, wq * np.exp(lq)


def _nodes_in(schedule: Schedule, variable: str, lq: np.ndarray) -> np.ndarray:
    """Quadrature nodes ``lq`` (in λ, any shape) in the interpolation variable."""
    if variable == "lam":
        return lq
    if variable == "rho":
        return np.exp(-lq)
    return np.asarray(schedule.t_of_lam(lq.ravel()), dtype=float).reshape(lq.shape)


def adams_weights(
    schedule: Schedule, target: str, variable: str, t_nodes: np.ndarray, t0: float, t1: float
) -> np.ndarray:
    """Weights ``C_j`` on the predictions at ``t_nodes`` (newest first) for the step
    ``t0 → t1`` (see `expint.diffusion.methods`)."""
    a1, s1 = _ab(schedule, t1)
    nodes = _variable(schedule, variable, t_nodes)
    if s1 == 0.0:
        if target == "x0":
            return a1 * lagrange_basis(nodes, _variable(schedule, variable, np.array([t1])))[:, 0]
        rho0 = float(schedule.rho(np.array([t0]))[0])
        rq, wq = gauss_legendre(rho0, 0.0)
        tq = np.asarray(schedule.t_of_rho(rq), dtype=float)
        return a1 * (lagrange_basis(nodes, _variable(schedule, variable, tq)) @ wq)
    lam0 = float(schedule.lam(np.array([t0]))[0])
    lam1 = float(schedule.lam(np.array([t1]))[0])
    if target == "x0" and lam0 == -math.inf:
        # a step from α = 0 (flow matching's t = 1): integrate in u = α/σ over [0, u1]
        uq, wq = gauss_legendre(0.0, math.exp(lam1))
        with np.errstate(divide="ignore"):
            tq = np.asarray(schedule.t_of_lam(np.log(uq)), dtype=float)
        return s1 * (lagrange_basis(nodes, _variable(schedule, variable, tq)) @ wq)
    lq, wq = gauss_legendre_rows(np.array([lam0]), np.array([lam1]))
    scale, kernel = _quadrature_kernel(target, a1, s1, lq, wq)
    return scale * (lagrange_basis(nodes, _nodes_in(schedule, variable, lq)[0]) @ kernel[0])


def _unipc(a1: float, la: float, lb: float, l0: float, l1: float, newest_starts: bool) -> np.ndarray:
    h = l1 - l0
    base = a1 * -math.expm1(-h)
    slope = 0.5 * base * h / (la - lb)
    w = np.array([slope, -slope])
    w[0 if newest_starts else 1] += base
    return w


def unipc_weights(schedule: Schedule, t_nodes: np.ndarray, t0: float, t1: float) -> np.ndarray:
    r"""UniPC's ("bh2") weights for a two-node x0 step in λ (Zhao et al. 2023), on the
    predictions at ``t_nodes = (a, b)`` (newest first; ``t0`` is one of them).

    With $h = λ_{i+1} − λ_i$ and $B = α_{i+1}(1 − e^{−h})$ (the DDIM weight), the step is
    $\frac{σ_{i+1}}{σ_i} x_i + B\,P_{t_0} + \tfrac12 B\, h\, \frac{P_a − P_b}{λ_a − λ_b}$:
    the slope of the interpolant enters with $\tfrac12 B ≈ \tfrac12 α_{i+1} h$ instead of
    the exact $α_{i+1}(h − 1 + e^{−h})/h$ — equal to second order in ``h``, smaller on
    long steps (at ``h = 3``: 0.48 against 0.68).  diffusers' UniPC uses this form
    whenever its predictor or corrector has one difference; with two or more, its linear
    system gives the exact weights (`adams_weights`)."""
    a1, _ = _ab(schedule, t1)
    la, lb, l0, l1 = (float(x) for x in schedule.lam(np.array([t_nodes[0], t_nodes[1], t0, t1], float)))
    return _unipc(a1, la, lb, l0, l1, t_nodes[0] == t0)


class GridValues:
    """α, σ, λ and ρ of a schedule at the times ``t`` of one grid, each from one
    vectorised call of the schedule (the same functions, hence the same values, as
    calls at single times)."""

    def __init__(self, schedule: Schedule, ts: Any):
        self.schedule = schedule
        self.t = np.asarray(ts, dtype=float)
        # every quantity at every time, some of them where a step never asks (λ at α = 0)
        with np.errstate(all="ignore"):
            self.alpha = np.asarray(schedule.alpha(self.t), dtype=float)
            self.sigma = np.asarray(schedule.sigma(self.t), dtype=float)
            self.lam = np.asarray(schedule.lam(self.t), dtype=float)
            self.rho = np.asarray(schedule.rho(self.t), dtype=float)

    def variable(self, name: str) -> np.ndarray:
        """The interpolation variable ``"t"``, ``"rho"`` or ``"lam"`` at the grid times."""
        return {"t": self.t, "rho": self.rho, "lam": self.lam}[name]

    def ab(self, i: int) -> tuple[float, float]:
        """``(α, σ)`` at grid time ``i``."""
        return float(self.alpha[i]), float(self.sigma[i])


class AdamsSteps:
    """The exact weights (`adams_weights`) and guard measures (`noise_gain`,
    `variable_disagreement`) of the steps ``t[i] → t[i + 1]`` of one grid, with nodes
    given as indices into the grid (newest first).

    Each regular step's 32-point rule in λ, its kernel ``e^{∓λ}`` and its nodes in
    each interpolation variable are computed for all steps at once; a step ending at
    σ = 0 or starting at α = 0 goes through `adams_weights` itself.
    """

    def __init__(self, grid: GridValues, target: str):
        self.grid, self.target = grid, target
        lam0, lam1 = grid.lam[:-1], grid.lam[1:]
        self.regular = (grid.sigma[1:] > 0) & np.isfinite(lam0) & np.isfinite(lam1)
        # placeholders on the irregular steps keep their rows finite (never read)
        lq, wq = gauss_legendre_rows(np.where(self.regular, lam0, 0.0), np.where(self.regular, lam1, 1.0))
        self._lq = lq
        self._scale, self._kernel = _quadrature_kernel(target, grid.alpha[1:], grid.sigma[1:], lq, wq)
        self._nodes: dict[str, np.ndarray] = {}

    def _quadrature_nodes(self, variable: str) -> np.ndarray:
        hit = self._nodes.get(variable)
        if hit is None:
            hit = self._nodes[variable] = _nodes_in(self.grid.schedule, variable, self._lq)
        return hit

    def weights(self, i: int, idx: list[int], variable: str) -> np.ndarray:
        """`adams_weights` of step ``i`` on the predictions at grid times ``idx``."""
        g = self.grid
        if not self.regular[i]:
            t0, t1 = float(g.t[i]), float(g.t[i + 1])
            return adams_weights(g.schedule, self.target, variable, g.t[idx], t0, t1)
        basis = lagrange_basis(g.variable(variable)[idx], self._quadrature_nodes(variable)[i])
        return self._scale[i] * (basis @ self._kernel[i])

    def unipc(self, i: int, idx: list[int]) -> np.ndarray:
        """`unipc_weights` of step ``i`` on the two predictions at grid times ``idx``."""
        lam, a1 = self.grid.lam, float(self.grid.alpha[i + 1])
        return _unipc(a1, lam[idx[0]], lam[idx[1]], lam[i], lam[i + 1], idx[0] == i)

    def gain(self, i: int, idx: list[int], weights: np.ndarray) -> float:
        """`noise_gain` of ``weights`` on step ``i``."""
        g = self.grid
        scale = np.ones(len(idx)) if self.target == "eps" else g.rho[idx]
        return _gain(weights, scale, *g.ab(i), *g.ab(i + 1))

    def disagreement(self, i: int, idx: list[int], weights: np.ndarray) -> float:
        """`variable_disagreement` of ``weights`` on step ``i``."""
        with np.errstate(all="ignore"):  # a node at α = 0 has no natural-variable value: no agreement
            natural = self.weights(i, idx, NATURAL_VARIABLE[self.target])
            return self.gain(i, idx, np.abs(np.asarray(weights) - natural))
