r"""Time-step grids for sampling (decreasing times, ``n_steps + 1`` points, float64).

Kinds (``grid(schedule, n_steps, kind, t_start=None, t_end=None, **kw)``):

* ``"uniform"`` — uniform in ``t``;
* ``"quadratic"`` / ``"power"`` — :math:`t_i = \big(t_s^{1/κ}(1 - i/n) + t_e^{1/κ} i/n\big)^κ`,
  ``κ = 2`` is DEIS's quadratic grid (``kappa=`` sets κ);
* ``"logsnr"`` — uniform in ``λ = log(α/σ)``;
* ``"karras"`` — Karras et al.'s power-ρ spacing in σ = ρ(t):
  :math:`ρ_i = (ρ_s^{1/p} + \tfrac{i}{n}(ρ_e^{1/p} - ρ_s^{1/p}))^p`, ``p = 7``
  (``power=``);
* an explicit array of times.

For a :class:`DiscreteVP` schedule ``rounding`` turns times into training timesteps:
``"floor"`` (the DEIS reference code: floor, then drop duplicates), ``"round"``, or
diffusers' ``DDIMScheduler`` spacings ``"leading"``, ``"trailing"``, ``"linspace"``
(which ignore ``kind``; the grid then ends at timestep 0, or at σ = 0 with
``final_zero``).  ``final_zero=True`` appends the clean-data time (σ = 0) where the schedule
has one (``t = −1`` for DiscreteVP, DDIM's ``set_alpha_to_one``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .schedules import Schedule

KINDS = ("uniform", "quadratic", "power", "logsnr", "karras")
SPACINGS = ("leading", "trailing", "linspace")


def _default_ends(schedule: Schedule) -> tuple[float, float]:
    end = getattr(schedule, "sigma_min", None)
    if schedule.discrete:
        return schedule.t_max, 0.0
    if end is not None and type(schedule).__name__ == "EDM":
        return schedule.t_max, end
    if schedule.t_data is not None:
        return schedule.t_max, 1e-3  # the usual ε of continuous VP / flow samplers
    return schedule.t_max, schedule.t_min


def diffusers_timesteps(n_train: int, n_steps: int, spacing: str, steps_offset: int = 0) -> np.ndarray:
    """Integer timesteps as diffusers' ``DDIMScheduler`` spaces them (decreasing,
    length ``n_steps``).  (The multistep schedulers use other conventions for
    "linspace" and "leading"; take their ``timesteps`` directly to compare with them.)"""
    if spacing == "linspace":
        return np.linspace(0, n_train - 1, n_steps).round()[::-1].astype(np.int64)
    if spacing == "leading":
        ratio = n_train // n_steps
        return (np.arange(0, n_steps) * ratio).round()[::-1].astype(np.int64) + steps_offset
    if spacing == "trailing":
        ratio = n_train / n_steps
        return np.arange(n_train, 0, -ratio).round().astype(np.int64) - 1
    raise ValueError(f"unknown spacing {spacing!r}; valid: {', '.join(SPACINGS)}")


def grid(
    schedule: Schedule,
    n_steps: int,
    kind: Any = "logsnr",
    t_start: float | None = None,
    t_end: float | None = None,
    *,
    kappa: float = 2.0,
    power: float = 7.0,
    rounding: str | None = None,
    final_zero: bool = False,
) -> np.ndarray:
    """Decreasing float64 times for ``n_steps`` sampling steps (see module docstring)."""
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a Schedule instance, got {type(schedule).__name__}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    if not isinstance(kind, str):
        ts = np.asarray(kind, dtype=np.float64)
        return check_grid(schedule, ts)
    d_start, d_end = _default_ends(schedule)
    t_start = d_start if t_start is None else float(t_start)
    t_end = d_end if t_end is None else float(t_end)
    if rounding in SPACINGS:
        if not schedule.discrete:
            raise ValueError(f"rounding={rounding!r} needs a DiscreteVP schedule")
        ts = diffusers_timesteps(schedule.n, n_steps, rounding).astype(np.float64)
        end = [schedule.t_data] if final_zero else ([] if ts[-1] == 0 else [0.0])
        return check_grid(schedule, np.concatenate([ts, end]))
    if kind == "uniform":
        ts = np.linspace(t_start, t_end, n_steps + 1)
    elif kind in ("quadratic", "power"):
        k = kappa if kind == "power" else 2.0
        ts = np.linspace(t_start ** (1 / k), t_end ** (1 / k), n_steps + 1) ** k
        if rounding is None:
            # exact ends; with rounding the raw values are floored as the DEIS reference
            # code does (its first timestep is floor(sqrt(999)**2) = 998)
            ts[0], ts[-1] = t_start, t_end
    elif kind in ("logsnr", "karras") and not (
        np.isfinite(float(schedule.lam(t_start))) and np.isfinite(float(schedule.lam(t_end)))
    ):
        raise ValueError(
            f"a {kind!r} grid needs finite λ at both ends, but λ is infinite at t_start={t_start:g} or "
            f"t_end={t_end:g} for {schedule!r} (α or σ vanishes there); pass t_start/t_end inside, e.g. "
            "t_start=0.999 for FlowMatching"
        )
    elif kind == "logsnr":
        lam = np.linspace(float(schedule.lam(t_start)), float(schedule.lam(t_end)), n_steps + 1)
        ts = np.asarray(schedule.t_of_lam(lam), dtype=np.float64)
        ts[0], ts[-1] = t_start, t_end
    elif kind == "karras":
        r0, r1 = float(schedule.rho(t_start)), float(schedule.rho(t_end))
        rho = (
            r0 ** (1 / power) + np.linspace(0, 1, n_steps + 1) * (r1 ** (1 / power) - r0 ** (1 / power))
        ) ** power
        ts = np.asarray(schedule.t_of_rho(rho), dtype=np.float64)
        ts[0], ts[-1] = t_start, t_end
    else:
        raise ValueError(f"unknown grid kind {kind!r}; valid: {', '.join(KINDS)} or an array of times")
    if rounding is not None:
        if not schedule.discrete:
            raise ValueError(f"rounding={rounding!r} needs a DiscreteVP schedule")
        if rounding == "floor":
            ts = np.floor(ts)
        elif rounding == "round":
            ts = np.round(ts)
        else:
            raise ValueError(f"unknown rounding {rounding!r}; valid: 'floor', 'round', {', '.join(SPACINGS)}")
        ts = np.array(sorted(set(ts.tolist()), reverse=True))
    if final_zero:
        if schedule.t_data is None:
            raise ValueError(f"{schedule!r} has no clean-data time (σ > 0 everywhere)")
        if ts[-1] != schedule.t_data:
            ts = np.concatenate([ts, [schedule.t_data]])
    return check_grid(schedule, ts)


def check_grid(schedule: Schedule, ts: Any, name: str = "ts") -> np.ndarray:
    """Validate a grid (1-D or per-sample 2-D): finite, in the domain, strictly
    decreasing, at least one step."""
    ts = np.asarray(ts.detach().cpu().numpy() if hasattr(ts, "detach") else ts, dtype=np.float64)
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
    return ts
