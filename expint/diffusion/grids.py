r"""Time-step grids for sampling (decreasing times, ``n_steps + 1`` points, float64).

Kinds (``grid(schedule, n_steps, kind, t_start=None, t_end=None, **kw)``):

* ``"auto"`` (default) — the schedule's ``default_grid``: tempered for VP schedules,
  Karras for VE/EDM, uniform for flow matching;
* ``"uniform"`` — uniform in ``t``;
* ``"quadratic"`` / ``"power"`` — $t_i = \big(t_s^{1/κ}(1 - i/n) + t_e^{1/κ} i/n\big)^κ$,
  ``κ = 2`` is DEIS's quadratic grid (``kappa=`` sets κ);
* ``"tempered"`` — the power grid with κ growing with the number of steps,
  ``κ(n) = min(1.75, 1.1 + n/20)``: close to uniform in ``t`` for a few steps (where the
  quadratic grid's long first steps cost most), close to quadratic for many
  (``benchmarks/default_grid_study.py``, the default method on the shipped models:
  κ = 1–1.25 wins at 3–5 calls, 1.5–1.75 at 8–10 and 1.5–2.5 from 15);
* ``"logsnr"`` — uniform in ``λ = log(α/σ)``;
* ``"karras"`` — Karras et al.'s power-ρ spacing in σ = ρ(t):
  $ρ_i = (ρ_s^{1/p} + \tfrac{i}{n}(ρ_e^{1/p} - ρ_s^{1/p}))^p$, ``p = 7``
  (``power=``);
* an explicit array of times.

For a `DiscreteVP` schedule ``rounding`` turns times into training timesteps:
``"floor"`` (the DEIS reference code: floor, then drop duplicates), ``"round"``, or
diffusers' ``DDIMScheduler`` spacings ``"leading"``, ``"trailing"``, ``"linspace"``
(which ignore ``kind``; the grid then ends at timestep 0, or at σ = 0 with
``final_zero``).  ``final_zero=True`` appends the clean-data time (σ = 0) where the schedule
has one (``t = −1`` for DiscreteVP, DDIM's ``set_alpha_to_one``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_count, check_integer
from .schedules import DiscreteVP, Schedule

KINDS = ("auto", "uniform", "quadratic", "power", "tempered", "logsnr", "karras")
SPACINGS = ("leading", "trailing", "linspace")


def diffusers_timesteps(n_train: int, n_steps: int, spacing: str, steps_offset: int = 0) -> np.ndarray:
    """Integer timesteps as diffusers' ``DDIMScheduler`` spaces them (decreasing,
    length ``n_steps``).  (The multistep schedulers use other conventions for
    "linspace" and "leading"; take their ``timesteps`` directly to compare with them.)
    ``steps_offset`` shifts the "leading" timesteps only, as in diffusers."""
    n_train = check_count(n_train, name="n_train")
    n_steps = check_count(n_steps, name="n_steps")
    steps_offset = check_integer(steps_offset, name="steps_offset")
    if n_steps > n_train:
        raise ValueError(
            f"n_steps = {n_steps} is more than the model's {n_train} training timesteps "
            "(some timesteps would repeat); use at most n_train steps"
        )
    if spacing == "linspace":
        out = np.linspace(0, n_train - 1, n_steps).round()[::-1].astype(np.int64)
    elif spacing == "leading":
        ratio = n_train // n_steps
        out = (np.arange(0, n_steps) * ratio).round()[::-1].astype(np.int64) + steps_offset
    elif spacing == "trailing":
        stride = n_train / n_steps
        out = np.arange(n_train, 0, -stride).round().astype(np.int64) - 1
    else:
        raise ValueError(f"unknown spacing {spacing!r}; valid: {', '.join(SPACINGS)}")
    if out.min() < 0 or out.max() > n_train - 1:
        raise ValueError(
            f"steps_offset = {steps_offset} moves the {spacing!r} timesteps to [{out.min()}, {out.max()}], "
            f"outside the training range [0, {n_train - 1}]"
        )
    return out


def grid(
    schedule: Schedule,
    n_steps: int,
    kind: Any = "auto",
    t_start: float | None = None,
    t_end: float | None = None,
    *,
    kappa: float = 2.0,
    power: float = 7.0,
    rounding: str | None = None,
    final_zero: bool = False,
) -> np.ndarray:
    """Decreasing float64 times for ``n_steps`` sampling steps.

    Parameters
    ----------
    schedule : Schedule
        The noise schedule (gives the default ends and the maps λ(t), ρ(t)).
    n_steps : int
        Number of steps, ≥ 1; the grid has ``n_steps + 1`` points.  A multistep method
        makes one model call per step, so this is the number of network evaluations
        (NFE), as ``num_inference_steps`` is in diffusers.
    kind : str or array
        ``"auto"`` (default: the schedule's ``default_grid`` — ``"tempered"`` for VP
        schedules, ``"karras"`` for VE/EDM, ``"uniform"`` for flow matching),
        ``"uniform"``, ``"quadratic"``, ``"power"``, ``"tempered"``, ``"logsnr"``,
        ``"karras"``, or an
        explicit array of ``n_steps + 1`` decreasing times.
    t_start, t_end : float, optional
        First and last time of the spaced part (defaults: the schedule's noisy end, and
        its usual sampling end).
    kappa : float
        Exponent κ > 0 of the ``"power"`` kind.
    power : float
        Exponent p > 0 of the ``"karras"`` kind.
    rounding : {None, "floor", "round", "leading", "trailing", "linspace"}
        DiscreteVP only: map times to integer training timesteps.  ``"floor"`` /
        ``"round"`` keep ``n_steps`` distinct timesteps (a value that would repeat its
        neighbour moves one timestep down); ``n_steps`` larger than the number of
        training timesteps is an error.  The diffusers spacings ignore ``kind``.
    final_zero : bool
        End the last step at clean data (σ = 0, ``schedule.t_data``); the spaced part
        then has ``n_steps − 1`` steps from ``t_start`` to ``t_end``, so the grid still
        costs ``n_steps`` model calls.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_steps + 1,)``, strictly decreasing, float64.

    Raises
    ------
    TypeError, ValueError
        For a schedule that is not an instance, ``n_steps < 1``, an explicit array whose
        length is not ``n_steps + 1``, an unknown kind or rounding, ``kappa``/``power``
        not positive and finite, times outside the schedule, or a grid that cannot have
        ``n_steps`` distinct points.

    Examples
    --------
    >>> from expint.diffusion import DiscreteVP, grid
    >>> sched = DiscreteVP.from_betas("linear", 1e-4, 0.02, 1000)
    >>> grid(sched, 4, "quadratic", rounding="floor", final_zero=True)
    array([998., 443., 110.,   0.,  -1.])
    """
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a Schedule instance, got {type(schedule).__name__}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    n_steps = int(n_steps)
    if isinstance(kind, str) and kind == "auto":
        kind = schedule.default_grid
    if not isinstance(kind, str):
        ts = check_grid(schedule, np.asarray(kind, dtype=np.float64), name="kind")
        if ts.shape[-1] != n_steps + 1:
            raise ValueError(
                f"the explicit grid has {ts.shape[-1] - 1} steps but n_steps = {n_steps}; pass "
                f"n_steps={ts.shape[-1] - 1} or a grid of n_steps + 1 times"
            )
        return ts
    for name, value in (("kappa", kappa), ("power", power)):
        if not (isinstance(value, (int, float, np.floating, np.integer)) and 0 < value < np.inf):
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if rounding is not None and not isinstance(schedule, DiscreteVP):
        raise ValueError(f"rounding={rounding!r} needs a DiscreteVP schedule")
    n_train = schedule.n if isinstance(schedule, DiscreteVP) else 0
    if final_zero and schedule.t_data is None:
        raise ValueError(
            f"{schedule!r} has no clean-data time (σ > 0 everywhere); final_zero=True is impossible"
        )
    d_start, d_end = schedule.default_span()
    t_start = d_start if t_start is None else float(t_start)
    t_end = d_end if t_end is None else float(t_end)
    # with final_zero the last of the n_steps steps goes to σ = 0
    n_spaced = n_steps - 1 if final_zero else n_steps
    tail = [schedule.t_data] if final_zero else []
    if rounding in SPACINGS:
        if n_steps > n_train:
            raise ValueError(f"n_steps = {n_steps} is more than the {n_train} training timesteps")
        ts = diffusers_timesteps(n_train, n_steps, rounding).astype(np.float64)
        if not final_zero:
            if ts[-1] == 0:
                raise ValueError(
                    f"rounding={rounding!r} puts the last of {n_steps} model calls at timestep 0, "
                    "leaving no step after it; pass final_zero=True (diffusers' set_alpha_to_one) "
                    "or use rounding='trailing'"
                )
            tail = [0.0]
        return check_grid(schedule, np.concatenate([ts, tail]))
    if n_spaced == 0:
        return check_grid(schedule, np.array([t_start, *tail]))
    ts = _spaced(schedule, n_spaced, kind, t_start, t_end, kappa, power, exact_ends=rounding is None)
    if rounding is not None:
        ts = _distinct_timesteps(ts, rounding, n_train)
    if final_zero and ts[-1] == schedule.t_data:
        raise ValueError("t_end is the clean-data time already; pass final_zero=False")
    return check_grid(schedule, np.concatenate([ts, tail]))


def _spaced(
    schedule: Schedule,
    n: int,
    kind: str,
    t_start: float,
    t_end: float,
    kappa: float,
    power: float,
    exact_ends: bool,
) -> np.ndarray:
    """``n + 1`` times from ``t_start`` to ``t_end`` spaced by ``kind``."""
    if kind == "uniform":
        return np.linspace(t_start, t_end, n + 1)
    if kind in ("quadratic", "power", "tempered"):
        if min(t_start, t_end) < 0:  # t^{1/κ} of a negative time is complex
            raise ValueError(
                f"a {kind!r} grid is a power law in t and needs t ≥ 0 at both ends, got "
                f"t_start={t_start:g}, t_end={t_end:g}; to end at clean data (σ = 0) use final_zero=True"
            )
        k = {"power": kappa, "quadratic": 2.0}.get(kind, tempered_kappa(n))
        try:
            # unscaled, as the DEIS reference code computes it: its floored timesteps
            # depend on the last bits (floor(sqrt(999)**2) = 998)
            ts = np.linspace(t_start ** (1 / k), t_end ** (1 / k), n + 1) ** k
        except OverflowError:  # t^{1/κ} of t = 999 overflows for κ < 0.01: work on [0, 1]
            top = max(t_start, t_end)
            ts = top * np.linspace((t_start / top) ** (1 / k), (t_end / top) ** (1 / k), n + 1) ** k
        if exact_ends:
            # with rounding the raw values are floored as the DEIS reference code does
            # (its first timestep is floor(sqrt(999)**2) = 998)
            ts[0], ts[-1] = t_start, t_end
        return ts
    if kind not in ("logsnr", "karras"):
        raise ValueError(f"unknown grid kind {kind!r}; valid: {', '.join(KINDS)} or an array of times")
    if not (np.isfinite(float(schedule.lam(t_start))) and np.isfinite(float(schedule.lam(t_end)))):
        raise ValueError(
            f"a {kind!r} grid needs finite λ at both ends, but λ is infinite at t_start={t_start:g} or "
            f"t_end={t_end:g} for {schedule!r} (α or σ vanishes there); pass t_start/t_end inside, e.g. "
            "t_start=0.999 for FlowMatching, or final_zero=True to end at σ = 0"
        )
    if kind == "logsnr":
        lam = np.linspace(float(schedule.lam(t_start)), float(schedule.lam(t_end)), n + 1)
        ts = np.asarray(schedule.t_of_lam(lam), dtype=np.float64)
    else:
        r0, r1 = float(schedule.rho(t_start)), float(schedule.rho(t_end))
        root = r0 ** (1 / power) + np.linspace(0, 1, n + 1) * (r1 ** (1 / power) - r0 ** (1 / power))
        ts = np.asarray(schedule.t_of_rho(root**power), dtype=np.float64)
    ts[0], ts[-1] = t_start, t_end
    return ts


def tempered_kappa(n_steps: int) -> float:
    """Exponent of the ``"tempered"`` grid for ``n_steps`` steps: ``min(1.75, 1.1 + n/20)``."""
    return min(1.75, 1.1 + n_steps / 20.0)


def _distinct_timesteps(ts: np.ndarray, rounding: str, n_train: int) -> np.ndarray:
    """Round decreasing times to ``len(ts)`` distinct integer timesteps in
    ``[0, n_train − 1]``: ``k_i = min(round(t_i), k_{i−1} − 1)``, bounded below by the
    number of points still to place, so none is dropped."""
    if rounding not in ("floor", "round"):
        raise ValueError(f"unknown rounding {rounding!r}; valid: 'floor', 'round', {', '.join(SPACINGS)}")
    if len(ts) > n_train:
        raise ValueError(
            f"{len(ts) - 1} steps need {len(ts)} distinct timesteps but the schedule has {n_train}; "
            "use fewer steps"
        )
    raw = np.floor(ts) if rounding == "floor" else np.round(ts)
    out = np.empty_like(raw)
    upper = float(n_train - 1)
    for i, v in enumerate(raw):
        out[i] = max(min(v, upper), float(len(raw) - 1 - i))
        upper = out[i] - 1
    return out


def check_grid(schedule: Schedule, ts: Any, name: str = "ts") -> np.ndarray:
    """Validate a grid (1-D or per-sample 2-D): finite, in the domain, strictly
    decreasing, at least one step."""
    try:
        ts = np.asarray(ts.detach().cpu().numpy() if hasattr(ts, "detach") else ts, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of times (real numbers), got {type(ts).__name__}") from None
    if ts.ndim not in (1, 2) or ts.shape[-1] < 2:
        raise ValueError(f"{name} must have shape (n_steps + 1,) or (batch, n_steps + 1) with n_steps >= 1")
    schedule.check_times(ts, name)
    steps = np.diff(ts, axis=-1)
    if np.any(steps >= 0):
        i = int(np.argwhere(steps >= 0)[0][-1])
        raise ValueError(
            f"{name} must be strictly decreasing (sampling runs from noise to data); step {i} goes "
            f"from {np.take(ts, i, axis=-1)} to {np.take(ts, i + 1, axis=-1)}"
        )
    # the samplers' weights divide by the step in log-SNR: times too close for the
    # schedule to tell apart in double precision give a step of zero there
    with np.errstate(invalid="ignore"):
        inside = np.clip(ts, ts.min(), schedule.t_max)  # check_times allows t_max + rounding
        flat = np.diff(np.asarray(schedule.lam(inside), dtype=np.float64), axis=-1)
    if not np.all(flat > 0):
        i = int(np.argwhere(~(flat > 0))[0][-1])
        raise ValueError(
            f"{name}: step {i} from {np.take(ts, i, axis=-1)} to {np.take(ts, i + 1, axis=-1)} does not "
            "change the log-SNR λ in double precision; the times are too close together"
        )
    return ts
