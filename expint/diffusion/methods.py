r"""Sampling methods as plans of fused linear combinations, computed in float64.

A method turns a decreasing time grid into a list of `StepPlan` s.  A step
evaluates the model at one or more *stages*; each stage state is
``x_coef · x_i + Σ c_k P_k`` (``P_k`` earlier predictions, in the method's *target*
space, ε or x0) and the new state is ``out_x · x_i + Σ c_k P_k``.  The sampler packs all
coefficients into one tensor per device/dtype, so a step on the device is a handful of
multiply–adds with no host work.

The exponential-Adams engine (`ExponentialAdams`) covers DDIM, tAB/ρAB/λAB-DEIS
and DPM-Solver++(2M/3M) with exact weights.  Two exact forms of the probability-flow
ODE carry it (``ρ = σ/α``, ``u = α/σ = e^λ``):

* ε target: $d(x/α)/dρ = ε$, so
  $x_{i+1} = \frac{α_{i+1}}{α_i} x_i + α_{i+1}\int_{ρ_i}^{ρ_{i+1}} ε\, dρ$;
* x0 target: $d(x/σ)/du = x_0$, so
  $x_{i+1} = \frac{σ_{i+1}}{σ_i} x_i + σ_{i+1}\int_{u_i}^{u_{i+1}} x_0\, du$.

The prediction is replaced by its Lagrange interpolant through the last ``r + 1``
values in the chosen variable ``s ∈ {t, ρ, λ}``; the weights
$C_{ij} = α_{i+1}\int ℓ_j\,dρ = -α_{i+1}\int_{λ_i}^{λ_{i+1}} e^{-λ} ℓ_j(s(λ))\,dλ$
(resp. $σ_{i+1}\int e^{λ} ℓ_j\, dλ$) are computed by 32-point Gauss–Legendre
quadrature in λ, where the integrands are entire or analytic — exact to rounding, unlike
the reference code's 10,000-point Riemann sum (≈1e-4).  Degree 0 uses the closed forms
$σ_{i+1} − α_{i+1}σ_i/α_i$ (ε) and $α_{i+1} − σ_{i+1}α_i/σ_i$ (x0): DDIM.

A last step that ends at σ = 0 is handled exactly: the ε weights are integrated in ρ
down to 0; the x0 weights tend to $α_{i+1} ℓ_j(s_{i+1})$; interpolation in λ
(unbounded there) drops to degree 0 on that step, as diffusers' ``lower_order_final`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._registry import lookup
from .._schemes._classical import CLASSICAL, ClassicalTableau
from ._adams import (  # the weight functions keep their home here for importers
    NATURAL_VARIABLE,
    AdamsSteps,
    GridValues,
    degree0_weight,
)
from ._adams import adams_weights as adams_weights
from ._adams import noise_gain as noise_gain
from ._adams import unipc_weights as unipc_weights
from ._adams import variable_disagreement as variable_disagreement
from .schedules import Schedule

VARIABLES = ("t", "rho", "lam")
#: ``max_gain="auto"`` per target.
AUTO_MAX_GAIN = {"x0": 1.75, "eps": None}
#: ``max_disagreement="auto"`` per target.
AUTO_MAX_DISAGREEMENT = {"eps": 0.6, "x0": None}
#: ``max_gap_stiffness="auto"`` per target.
AUTO_MAX_GAP_STIFFNESS = {"eps": 10.0, "x0": None}
#: Error gain of Adams–Bashforth weights of degree 0, 1, 2, … on equal steps
#: (sum of the absolute AB coefficients, e.g. (55 + 59 + 37 + 9)/24 = 20/3 for degree 3).
EQUAL_STEP_GAIN = (1.0, 2.0, 11 / 3, 20 / 3, 8816 / 720, 32832 / 1440)


@dataclass
class Stage:
    """One model evaluation, at time ``t`` and state ``x_coef · x_i + Σ c_k P_k``.

    Attributes
    ----------
    t : float
        The model is called at this time.
    x_coef : float
        Weight of the step's start state ``x_i``.
    terms : list of (int, float)
        ``(k, c_k)``: weights of earlier predictions ``P_k`` (of this or earlier steps).
    pred : int
        Index under which this stage's prediction is stored: ``0, 1, 2, …`` in the order
        the stages of the whole plan are evaluated.
    """

    t: float
    x_coef: float
    terms: list[tuple[int, float]]
    pred: int = -1


@dataclass
class StepPlan:
    """Stages of one step and the combination that gives the next state.

    Attributes
    ----------
    stages : list of Stage
        The model calls of the step, in order.
    out_x, out_terms :
        The new state is ``out_x · x_i + Σ c_k P_k`` over ``out_terms = [(k, c_k), …]``.
    degree : int or None
        Interpolation degree of an Adams step (0 for DDIM); ``None`` for a Runge–Kutta
        step (informational: the sampler does not read it).
    corr_x, corr_terms :
        Optional corrector of this step's start state, applied after the stages are
        evaluated: ``x_i ← corr_x · x_{i−1} + Σ c_k P_k`` (``None``: no corrector).
    """

    stages: list[Stage]
    out_x: float
    out_terms: list[tuple[int, float]]
    degree: int | None = 0
    corr_x: float | None = None
    corr_terms: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class Plan:
    """A method's steps for one grid; ``target`` (``"eps"`` or ``"x0"``) is the space the
    predictions ``P_k`` live in (the sampler converts model outputs into it)."""

    steps: list[StepPlan]
    target: str


# ---------------------------------------------------------------------------------------
# helpers


def _check_limit(key: str, value: Any, low: float) -> None:
    """A safeguard threshold: a real number ``≥ low`` (not NaN), or ``None`` for off."""
    real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = value is None or (real and value >= low)
    if not ok:
        raise ValueError(f"{key} must be a number ≥ {low:g} or None, got {value!r}")


def _equal_step_gain(degree: int) -> float:
    return EQUAL_STEP_GAIN[min(degree, len(EQUAL_STEP_GAIN) - 1)]


# ---------------------------------------------------------------------------------------
# one-step Runge–Kutta in the target's natural variable (ρ for ε, u = α/σ for x0)


def _rk_step(grid: GridValues, target: str, i: int, tableau: ClassicalTableau, first_pred: int) -> StepPlan:
    """Step ``i`` of ``grid`` by ``tableau`` in the target's natural variable ``w`` (ρ for
    ε, with state ``x/α``; ``u = e^λ`` for x0, with state ``x/σ``): its interior stage
    times from one vectorised evaluation of the schedule."""
    schedule = grid.schedule
    c, a, b = tableau.c, tableau.a, tableau.b
    t0, t1 = float(grid.t[i]), float(grid.t[i + 1])
    if target == "eps":
        w0, w1 = float(grid.rho[i]), float(grid.rho[i + 1])
        scales = grid.alpha
    else:
        w0, w1 = math.exp(float(grid.lam[i])), math.exp(float(grid.lam[i + 1]))
        scales = grid.sigma
    h = w1 - w0
    sc0, sc1 = float(scales[i]), float(scales[i + 1])
    inner = [k for k, ck in enumerate(c) if ck not in (0, 1)]
    times = {k: t0 if ck == 0 else t1 for k, ck in enumerate(c)}
    sk = {k: sc0 if ck == 0 else sc1 for k, ck in enumerate(c)}
    if inner:
        w = np.array([w0 + c[k] * h for k in inner])
        lw = None if target == "eps" else np.array([math.log(v) for v in w])
        tw = np.asarray(schedule.t_of_rho(w) if lw is None else schedule.t_of_lam(lw), dtype=float)
        sw = np.asarray(schedule.alpha(tw) if target == "eps" else schedule.sigma(tw), dtype=float)
        times.update((k, float(tk)) for k, tk in zip(inner, tw, strict=True))
        sk.update((k, float(s)) for k, s in zip(inner, sw, strict=True))
    stages = []
    for k in range(len(c)):
        terms = [(first_pred + m, sk[k] * h * a[k][m]) for m in range(k) if a[k][m]]
        stages.append(Stage(times[k], sk[k] / sc0, terms, pred=first_pred + k))
    out = [(first_pred + k, sc1 * h * bk) for k, bk in enumerate(b) if bk]
    return StepPlan(stages, sc1 / sc0, out, degree=None)


# ---------------------------------------------------------------------------------------
# methods


class Method:
    """Base class of sampling methods: the extension contract.

    A subclass sets ``name``, ``target`` (``"eps"`` or ``"x0"``) and ``order`` (the
    order of convergence on smooth problems) and implements `plan`.  Everything a method
    does is decided there, on the host, in float64; the sampler only runs the plan.

    `plan` must return a `Plan` whose ``target`` equals ``self.target`` and that has
    exactly ``len(ts) − 1`` steps, step ``i`` going from ``ts[i]`` to ``ts[i + 1]``.
    Stage predictions are numbered ``0, 1, 2, …`` in evaluation order across the whole
    plan (``Stage.pred``); a stage or an update may use only predictions already made
    (in the same step: of earlier stages).  Coefficients must be finite for every grid
    inside the schedule (the sampler refuses non-finite ones with a ``ValueError``).
    For a per-sample grid the method is planned once per row: rows must give the same
    stage counts and use the same predictions, except that Adams history terms and
    correctors may differ (missing terms get weight 0; a corrector on only some rows is
    dropped).
    """

    name = "method"
    target = "eps"
    order = 1

    def plan(self, schedule: Schedule, ts: np.ndarray) -> Plan:  # pragma: no cover - abstract
        """Steps for the grid ``ts`` (any number of steps ≥ 1: a multistep method lowers
        its degree on the first steps, where fewer earlier predictions exist)."""
        raise NotImplementedError


class ExponentialAdams(Method):
    r"""Exponential Adams–Bashforth sampler of polynomial degree ``degree``.

    Parameters
    ----------
    degree : int
        Degree ``r`` of the interpolating polynomial (``r = 0`` is DDIM; the order on
        smooth problems is ``r + 1``).
    variable : {"t", "rho", "lam"}
        The variable the prediction is interpolated in.
    target : {"eps", "x0"}
        Interpolate the noise prediction ε or the data prediction x0.
    startup : {"lower", "rk"}
        ``"lower"``: step ``i`` uses degree ``min(r, i)`` (one model call per step;
        with equal steps this caps the observed order at 2 for ``r ≥ 2``).  ``"rk"``:
        the first ``r`` steps are classical RK4 steps in the target's natural variable
        (4 model calls each), which keeps the order ``r + 1``.
    lower_order_final : bool or "always"
        ``True``: degree 0 on the last step and at most 1 on the one before when the
        grid has fewer than 15 steps (diffusers' DPM-Solver rule).  ``"always"``: on
        every grid, degree at most ``k − 1`` on the ``k``-th step from the end (diffusers'
        UniPC rule).
    weights : {"exact", "unipc"}
        ``"exact"`` (default): the weights of the interpolating polynomial, integrated
        exactly.  ``"unipc"`` (x0 target in λ only): a step whose interpolant has two
        nodes (a degree-1 predictor, or a corrector after a degree-0 step) uses UniPC's
        "bh2" weights (`unipc_weights`); with more nodes they are the exact ones.  With
        ``lower_order_final="always"`` and ``max_gain=None`` this is diffusers'
        ``UniPCMultistepScheduler`` (``solver_order = degree + 1``, ``predict_x0``,
        ``bh2``) to rounding (tests/test_diffusion_diffusers.py).
    corrector : bool
        Exponential Adams–Moulton correction at no extra model call: once the model has
        been evaluated at the predicted ``x_i`` (which the next step needs anyway),
        ``x_i`` is recomputed from ``x_{i−1}`` with the interpolant that also passes
        through that new value (one degree higher).  The evaluation itself is not
        repeated — the next step uses it — the idea of UniPC's corrector (Zhao et al.
        2023) in exponential-Adams form.  No correction after the last step.
    max_gain : float, None or "auto"
        Stability guard: a step's error gain (``noise_gain``: how much its weights
        amplify errors of the predictions, relative to a DDIM step) may be at most
        ``max_gain`` times that of the same degree on equal steps (``EQUAL_STEP_GAIN``:
        1, 2, 3.7, 6.7 for degrees 0–3).  A step that exceeds it drops its oldest nodes
        until it does not (degree 0, DDIM, always passes); a corrector that exceeds it is
        skipped.  As steps shrink the gain tends to the equal-step value, so the guard
        does not lower the order of convergence.  An x0 prediction carries the
        network's ε error times ``σ/α`` (≈ 157 at the start of the DDPM schedule), so an
        x0 interpolant that leans on predictions made at high noise, or extrapolates
        across a long last step, has gains of 14–120 where a healthy step has 1–6.
        ``"auto"`` (default): 1.75 for the x0 target, none for ε.  ``None``: no guard.
    max_disagreement : float, None or "auto"
        Second guard, for interpolation in a variable other than the target's natural
        one (ρ for ε, λ for x0): the weights may differ from those of the same nodes
        interpolated in the natural variable by at most this many DDIM weights, scaled
        by the degree's equal-step gain over that of degree 1 (0.6, 1.1, 2.0 for degrees
        1, 2, 3 at the default; ``variable_disagreement``), otherwise the degree is
        lowered.  Two polynomial
        models of the same predictions that disagree by more than a DDIM step cannot
        both be trusted over that step: DEIS's tAB extrapolates ε linearly in t across
        the last step of a uniform grid, where ε changes fastest.  ``"auto"``
        (default): 0.6 for the ε target, none for x0 (whose gain guard covers it).
    max_gap_stiffness : float, None or "auto"
        Third guard, for the same interpolants: the oldest node is dropped while the gap
        between it and the next node is stiff, ``|ρ_j − ρ_{j+1}| / ρ_{j+1} >
        max_gap_stiffness`` (a stiff gap between newer nodes is left to the other
        guards: at the low-noise end of Karras grids it is a step's own length).  Across
        such a gap — the
        first step of a 3–4-call grid, from ρ ≈ 157 at t = 999 to ρ ≈ 5–15 — ε turns
        from the noise itself into the network's estimate, a change a polynomial in t or
        λ through both ends extrapolates badly (a DDIM step is exact in ρ and does not
        care).  ``"auto"`` (default): 10 for the ε target, none for x0.  On the shipped
        models every threshold from 3 to 10 keeps the t/λ-interpolating ε presets at
        least as accurate as DDIM at 3–10 calls; lower ones drop more nodes and give
        back more of their lead at 5–10 calls, 15 and above leave failures at 3–4
        calls (`benchmarks/gap_stiffness_study.py`).

    Notes
    -----
    The guards were chosen on the shipped learned models (``digits_eps``,
    ``spiral_v``), where without them tab3, lab3, ipndm and the dpmpp* methods are up to
    30× less accurate than DDIM at 3–10 steps; pass ``max_gain=None,
    max_disagreement=None, max_gap_stiffness=None`` for the published methods' exact
    weights on every step.
    """

    def __init__(
        self,
        degree: int,
        variable: str = "t",
        target: str = "eps",
        *,
        startup: str = "lower",
        lower_order_final: bool = False,
        corrector: bool = False,
        max_gain: float | str | None = "auto",
        max_disagreement: float | str | None = "auto",
        max_gap_stiffness: float | str | None = "auto",
        weights: str = "exact",
        name: str | None = None,
    ):
        if max_gain == "auto":
            max_gain = AUTO_MAX_GAIN.get(target) if isinstance(target, str) else None
        if max_disagreement == "auto":
            max_disagreement = AUTO_MAX_DISAGREEMENT.get(target) if isinstance(target, str) else None
        if max_gap_stiffness == "auto":
            max_gap_stiffness = AUTO_MAX_GAP_STIFFNESS.get(target) if isinstance(target, str) else None
        for key, value, low in (
            ("max_gain", max_gain, 1.0),
            ("max_disagreement", max_disagreement, 0.0),
            ("max_gap_stiffness", max_gap_stiffness, 0.0),
        ):
            _check_limit(key, value, low)
        if isinstance(degree, bool) or not isinstance(degree, int) or not 0 <= degree <= 5:
            raise ValueError(f"degree must be an integer in 0..5, got {degree!r}")
        if variable not in VARIABLES:
            raise ValueError(f"variable must be one of {VARIABLES}, got {variable!r}")
        if target not in ("eps", "x0"):
            raise ValueError(f"target must be 'eps' or 'x0', got {target!r}")
        if startup not in ("lower", "rk"):
            raise ValueError(f"startup must be 'lower' or 'rk', got {startup!r}")
        if lower_order_final not in (True, False, "always"):
            raise ValueError(f"lower_order_final must be True, False or 'always', got {lower_order_final!r}")
        if weights not in ("exact", "unipc"):
            raise ValueError(f"weights must be 'exact' or 'unipc', got {weights!r}")
        if weights == "unipc" and (target, variable) != ("x0", "lam"):
            raise ValueError("weights='unipc' is defined for target='x0' interpolated in variable='lam'")
        self.degree, self.variable, self.target = degree, variable, target
        self.order = degree + 1 + (1 if corrector and degree < 5 else 0)
        self.startup, self.lower_order_final, self.corrector = startup, lower_order_final, bool(corrector)
        self.max_gain = None if max_gain is None else float(max_gain)
        self.max_disagreement = None if max_disagreement is None else float(max_disagreement)
        self.max_gap_stiffness = None if max_gap_stiffness is None else float(max_gap_stiffness)
        self.weights = weights
        suffix = ", corrector=True" if corrector else ""
        self.name = name or f"ExponentialAdams({degree}, {variable!r}, {target!r}{suffix})"

    def __repr__(self) -> str:
        return (
            f"ExponentialAdams(degree={self.degree}, variable={self.variable!r}, target={self.target!r}, "
            f"startup={self.startup!r}, corrector={self.corrector}, max_gain={self.max_gain}, "
            f"max_disagreement={self.max_disagreement}, max_gap_stiffness={self.max_gap_stiffness}, "
            f"lower_order_final={self.lower_order_final!r}, "
            f"weights={self.weights!r})"
        )

    def _degree_at(self, i: int, n: int) -> int:
        r = min(self.degree, i)
        if self.lower_order_final == "always":
            return min(r, n - 1 - i)
        if self.lower_order_final and n < 15:
            if i == n - 1:
                r = 0
            elif i == n - 2:
                r = min(r, 1)
        return r

    def plan(self, schedule: Schedule, ts: np.ndarray) -> Plan:
        n = len(ts) - 1
        grid = GridValues(schedule, ts)
        adams = AdamsSteps(grid, self.target)
        var = grid.variable(self.variable)
        stiff_gap = self._stiff_gaps(grid)
        steps: list[StepPlan] = []
        pred_at: list[int] = []  # prediction index at t_i
        count = 0
        for i in range(n):
            if self.startup == "rk" and i < self.degree:
                step = _rk_step(grid, self.target, i, CLASSICAL["rk4"], count)
                pred_at.append(count)
                count += len(step.stages)
                steps.append(step)
                continue
            stage = Stage(float(ts[i]), 1.0, [], pred=count)
            pred_at.append(count)
            count += 1
            r = self._degree_at(i, n)
            (a0, s0), (a1, s1) = grid.ab(i), grid.ab(i + 1)
            if r > 0 and self.variable == "lam" and s1 == 0.0:
                r = 0  # λ is unbounded at σ = 0
            while r > 0 and not np.isfinite(var[i - r]):
                r -= 1  # a node where the variable is infinite (α = 0: λ = −∞, ρ = ∞) cannot be used
            while r > 0 and stiff_gap[i - r]:
                r -= 1  # the oldest node sits across a stiff gap from the rest (max_gap_stiffness)
            out_x, c0 = degree0_weight(self.target, a0, s0, a1, s1)
            weights = np.array([c0])
            while r > 0:
                idx = list(range(i, i - r - 1, -1))
                weights = self._weights(adams, i, idx)
                if self._gain_ok(adams, i, idx, weights):
                    break
                r -= 1
                weights = np.array([c0])
            terms = [(pred_at[i - j], float(w)) for j, w in enumerate(weights)]
            step = StepPlan([stage], out_x, terms, degree=r)
            if self.corrector and i >= 1:
                # the interpolant of the previous step, one degree up (after an RK
                # start-up step: the method's degree)
                prev = steps[-1].degree
                self._add_corrector(step, adams, i, pred_at, self.degree if prev is None else prev)
            steps.append(step)
        return Plan(steps, self.target)

    def _stiff_gaps(self, grid: GridValues) -> np.ndarray:
        """``gap[j]``: whether ``|ρ_j − ρ_{j+1}| / ρ_{j+1}`` exceeds ``max_gap_stiffness``
        (always false without the guard, or for the natural variable)."""
        rho = grid.rho
        gaps = np.zeros(len(rho), dtype=bool)
        if self.max_gap_stiffness is None or self.variable == NATURAL_VARIABLE[self.target]:
            return gaps
        with np.errstate(divide="ignore", invalid="ignore"):  # ρ = ∞ at α = 0, 0 at σ = 0
            ratio = np.abs(rho[:-1] - rho[1:]) / rho[1:]
        gaps[:-1] = ~(ratio <= self.max_gap_stiffness)  # NaN/inf count as stiff
        return gaps

    def _weights(self, adams: AdamsSteps, i: int, idx: list[int]) -> np.ndarray:
        """Weights of step ``i`` on the predictions at grid times ``idx`` (newest first)."""
        if self.weights == "unipc" and len(idx) == 2 and adams.grid.sigma[i + 1] > 0:
            return adams.unipc(i, idx)
        return adams.weights(i, idx, self.variable)

    def _gain_ok(self, adams: AdamsSteps, i: int, idx: list[int], weights: np.ndarray) -> bool:
        """Whether step ``i`` with these nodes and weights passes both stability guards."""
        if self.max_gain is not None:
            limit = self.max_gain * _equal_step_gain(len(idx) - 1)
            if adams.gain(i, idx, weights) > limit:
                return False
        if self.max_disagreement is not None and self.variable != NATURAL_VARIABLE[self.target]:
            d = adams.disagreement(i, idx, weights)
            if d > self.max_disagreement * _equal_step_gain(len(idx) - 1) / 2.0:
                return False
        return True

    def _add_corrector(
        self, step: StepPlan, adams: AdamsSteps, i: int, pred_at: list[int], prev_degree: int
    ) -> None:
        """Correct x_i (computed by step i−1) with the implicit interpolant through
        t_i, t_{i−1}, …, t_{i−1−prev_degree}."""
        idx = [i] + [i - 1 - j for j in range(prev_degree + 1) if i - 1 - j >= 0]
        if not np.all(np.isfinite(adams.grid.variable(self.variable)[idx])):
            return
        corr_x, _ = degree0_weight(self.target, *adams.grid.ab(i - 1), *adams.grid.ab(i))
        weights = self._weights(adams, i - 1, idx)
        if not self._gain_ok(adams, i - 1, idx, weights):
            return
        step.corr_x = corr_x
        step.corr_terms = [(pred_at[i - j], float(w)) for j, w in enumerate(weights)]


class RhoRK(Method):
    """Runge–Kutta in ρ on ``v = x/α`` (``dv/dρ = ε``): Heun, Kutta-3, classical RK4.

    Every step costs ``stages`` model calls, so a grid of ``n`` steps is ``stages × n``
    calls.  Where the tableau cannot be trusted the step spends them on ``stages`` DDIM
    (Euler-in-ρ) sub-steps instead, equally spaced in ``t`` over the step — as one step
    whose tableau is the composition of those Euler steps (`substep_tableau`).  That
    happens

    * on a step that ends at σ = 0: the model is never evaluated at σ = 0, where ε is
      undefined (k-diffusion's Heun sampler takes one Euler step there);
    * on a stiff step.  Near the data ``ε ≈ (x − α x0)/σ``, so ``∂ε/∂v ≈ 1/ρ`` — the
      ODE is stiff in ρ, with stiffness ``1/ρ`` growing as ρ → 0.  A stage evaluated at
      the step's low-noise end sees ``|h|/ρ_{i+1}``; beyond the tableau's real stability
      interval (about 2–2.8) errors are multiplied at every stage (on the shipped
      learned models, 3–10 calls gave errors of 10²–10⁴), and well inside it the stage
      is still far less accurate than DDIM steps, whose evaluations are at the noisier
      end of each sub-step.  A step with ``|ρ_{i+1} − ρ_i| / ρ_{i+1} > max_stiffness``
      (default 1) is therefore taken by sub-steps.  ``None`` keeps the tableau on
      every step except the last one to σ = 0.

    The threshold and the spacing were chosen on the shipped learned models: with
    threshold 1 and sub-steps uniform in ``t`` (on a grid uniform in ``t`` the
    sub-stepped steps are exactly DDIM's steps with ``stages`` times the calls) each
    preset is at most 3% less accurate than DDIM on the same grid kind with the same
    number of calls at 3–10 calls (tests/test_learned_stability.py); threshold 2 keeps
    Heun steps with ``1 < |h|/ρ ≤ 2`` that are worse than DDIM on ``digits_eps``
    (``python benchmarks/learned_vs_ddim.py --methods rhork2 --max-stiffness 2``).
    """

    target = "eps"

    def __init__(self, tableau: str, name: str, max_stiffness: float | None = 1.0):
        if tableau not in CLASSICAL:
            raise ValueError(f"unknown tableau {tableau!r}; valid: {', '.join(CLASSICAL)}")
        _check_limit("max_stiffness", max_stiffness, 0.0)
        self.tableau = CLASSICAL[tableau]
        self.order = self.tableau.order
        self.name = name
        self.stages = self.tableau.stages
        self.max_stiffness = max_stiffness

    def __repr__(self) -> str:
        return f"RhoRK({self.name!r}, stages={self.stages}, max_stiffness={self.max_stiffness})"

    def plan(self, schedule: Schedule, ts: np.ndarray) -> Plan:
        grid = GridValues(schedule, ts)
        rho = grid.rho
        steps, count = [], 0
        for i in range(len(ts) - 1):
            limit = self.max_stiffness
            stiff = limit is not None and abs(rho[i + 1] - rho[i]) > limit * rho[i + 1]
            if grid.sigma[i + 1] == 0.0 or stiff:
                sub = np.linspace(float(ts[i]), float(ts[i + 1]), self.stages + 1)
                step = _rk_step(grid, "eps", i, substep_tableau(schedule, sub), count)
            else:
                step = _rk_step(grid, "eps", i, self.tableau, count)
            count += len(step.stages)
            steps.append(step)
        return Plan(steps, "eps")


def substep_tableau(schedule: Schedule, t_sub: np.ndarray) -> ClassicalTableau:
    r"""The tableau (in ρ) of consecutive DDIM steps through the times ``t_sub``.

    DDIM is the Euler step of ``dv/dρ = ε``, so Euler steps from ``ρ_0`` through
    ``ρ_1, …, ρ_s`` are one explicit Runge–Kutta step of length ``h = ρ_s − ρ_0`` with
    nodes $c_k = (ρ_k − ρ_0)/h$ and $a_{km} = b_m = (ρ_{m+1} − ρ_m)/h$ for $m < k$: every
    stage reuses the earlier slopes with their own sub-step lengths (first order).
    """
    rho = np.asarray(schedule.rho(np.asarray(t_sub, dtype=float)), dtype=float)
    frac = (rho - rho[0]) / (rho[-1] - rho[0])
    widths = tuple(float(w) for w in np.diff(frac))
    s = len(widths)
    return ClassicalTableau(
        name=f"{s} DDIM sub-steps",
        c=tuple(float(c) for c in frac[:-1]),
        a=tuple(widths[:k] for k in range(s)),
        b=widths,
        order=1,
    )


class IPNDM(Method):
    """Improved PNDM (Zhang & Chen 2022): fixed Adams–Bashforth weights on ε in ρ,
    orders 1, 2, 3 on the first steps, then 4.

    The fixed weights assume equal steps in ρ.  With ``max_disagreement`` (default 0.6,
    scaled by degree as for ``ExponentialAdams``) a step whose fixed weights differ
    from the exact variable-step weights of the same nodes by more than that many DDIM
    weights uses a lower order: on a grid uniform in t, ρ-steps shrink by orders of magnitude and
    the fixed weights are not an approximation of anything.  ``None``: the published
    method on every step.
    """

    target = "eps"
    name = "ipndm"
    order = 4
    WEIGHTS = ((1.0,), (1.5, -0.5), (23 / 12, -16 / 12, 5 / 12), (55 / 24, -59 / 24, 37 / 24, -9 / 24))

    def __init__(self, max_disagreement: float | None = 0.6):
        _check_limit("max_disagreement", max_disagreement, 0.0)
        self.max_disagreement = max_disagreement

    def __repr__(self) -> str:
        return f"IPNDM(max_disagreement={self.max_disagreement})"

    def plan(self, schedule: Schedule, ts: np.ndarray) -> Plan:
        grid = GridValues(schedule, ts)
        exact = AdamsSteps(grid, "eps")
        steps = []
        for i in range(len(ts) - 1):
            a0, a1 = float(grid.alpha[i]), float(grid.alpha[i + 1])
            r0, r1 = float(grid.rho[i]), float(grid.rho[i + 1])
            k = min(i, 3)
            while True:
                w = a1 * (r1 - r0) * np.array(self.WEIGHTS[k])
                if k == 0 or self.max_disagreement is None:
                    break
                idx = list(range(i, i - k - 1, -1))
                limit = self.max_disagreement * _equal_step_gain(k) / 2.0
                if exact.gain(i, idx, w - exact.weights(i, idx, "rho")) <= limit:
                    break
                k -= 1
            terms = [(i - j, float(wj)) for j, wj in enumerate(w)]
            steps.append(StepPlan([Stage(float(ts[i]), 1.0, [], pred=i)], a1 / a0, terms, degree=k))
        return Plan(steps, "eps")


def _presets() -> dict[str, Method]:
    out: dict[str, Method] = {"ddim": ExponentialAdams(0, "t", "eps", name="ddim")}
    for r in (1, 2, 3):
        out[f"tab{r}"] = ExponentialAdams(r, "t", "eps", name=f"tab{r}")
        out[f"rhoab{r}"] = ExponentialAdams(r, "rho", "eps", name=f"rhoab{r}")
        out[f"lab{r}"] = ExponentialAdams(r, "lam", "eps", name=f"lab{r}")
    out["rhork2"] = RhoRK("heun", "rhork2")
    out["rhork3"] = RhoRK("kutta3", "rhork3")
    out["rhork4"] = RhoRK("rk4", "rhork4")
    out["ipndm"] = IPNDM()
    for r in (1, 2):  # the data prediction interpolated in ρ: suits flow-matching grids
        out[f"rhoab{r}_x0"] = ExponentialAdams(r, "rho", "x0", name=f"rhoab{r}_x0")
    out["dpmpp2m"] = ExponentialAdams(1, "lam", "x0", name="dpmpp2m")
    out["dpmpp3m"] = ExponentialAdams(2, "lam", "x0", name="dpmpp3m")
    # with the zero-cost exponential Adams–Moulton corrector: one order higher, same NFE
    out["dpmpp2m_pc"] = ExponentialAdams(1, "lam", "x0", corrector=True, name="dpmpp2m_pc")
    out["dpmpp3m_pc"] = ExponentialAdams(2, "lam", "x0", corrector=True, name="dpmpp3m_pc")
    # the same with UniPC's "bh2" weights on two-node steps (diffusers' UniPC-2/-3 with
    # expint's guards; diffusers' own: max_gain=None, lower_order_final="always")
    for r in (1, 2):
        out[f"unipc{r + 1}"] = ExponentialAdams(
            r, "lam", "x0", corrector=True, weights="unipc", name=f"unipc{r + 1}"
        )
    return out


METHODS = _presets()

#: The method ``sample``, ``Sampler``, ``ExpintScheduler`` and ``sample_expint`` use
#: when none is named.
DEFAULT_METHOD = "unipc2"
#: ``ExpintScheduler``'s default for flow-matching configs, whose grids are uniform in
#: σ = t (before the shift): interpolating x0 in λ there (dpmpp*) loses to Euler, in ρ
#: it beats Euler on every grid tried (tests/test_diffusers_scheduler.py).
DEFAULT_FLOW_METHOD = "rhoab1_x0"


def get_method(method: Any) -> Method:
    """A method instance from a name or an instance."""
    return lookup(method, METHODS, Method, "method", DEFAULT_METHOD)
