r"""Sampling grids chosen for one model: ``optimize_grid``.

A fixed spacing rule (uniform, quadratic, log-SNR, Karras) is a guess about where a
network's error and the ODE's curvature sit.  ``optimize_grid`` measures instead: on a
small calibration batch of noise it integrates the probability-flow ODE tightly once
(the reference), then moves the interior time points to minimise the sampler's error
against that reference, in the spirit of "Align Your Steps" (Sabour et al. 2024) and
GITS (Chen et al. 2024), for any expint method and any model.

Parametrisation.  With the ends $t_0 > t_n$ fixed, the interior points are

$$
t_i = t_0 + (t_n - t_0)\,\frac{\sum_{j<i} e^{z_j}}{\sum_{j<n} e^{z_j}},
\qquad z_0 = 0,
$$

so every $z \in \mathbb{R}^{n-1}$ gives a strictly decreasing grid inside the
schedule (points that coincide in floating point are scored as infinitely bad), and
the search (Nelder–Mead, deterministic) needs no constraints.  The loss
is the per-sample RMSE $\sqrt{\tfrac1B \sum_b \lVert x_b - x_b^{ref}\rVert^2}$.

Cost in model calls: the reference (adaptive dopri5, reported in ``info``) plus
``max_evals`` sampler runs of ``nfe`` calls each, all on ``batch`` samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._backend import all_finite
from .._validation import check_count, check_integer, check_real
from .grids import grid as make_grid
from .methods import DEFAULT_METHOD, RhoRK, get_method
from .metrics import rmse
from .models import check_prediction
from .sampler import Sampler, check_prior_mean, check_start
from .schedules import Schedule

__all__ = ["grid_from_logits", "logits_from_grid", "optimize_grid"]


def grid_from_logits(z: np.ndarray, t_start: float, t_end: float) -> np.ndarray:
    """The grid $t_0 = t_{start} > t_1 > … > t_n = t_{end}$ of the logits ``z``
    (length ``n − 1``; the first increment's logit is fixed at 0)."""
    w = np.exp(np.concatenate([[0.0], np.asarray(z, dtype=np.float64)]))
    frac = np.concatenate([[0.0], np.cumsum(w) / w.sum()])
    ts = t_start + (t_end - t_start) * frac
    ts[-1] = t_end  # exact, whatever the rounding of the cumulative sum
    return ts


def logits_from_grid(ts: np.ndarray) -> np.ndarray:
    """Inverse of `grid_from_logits` for a strictly decreasing grid."""
    inc = -np.diff(np.asarray(ts, dtype=np.float64))
    return np.log(inc[1:] / inc[0])


def _steps(method: Any, nfe: int) -> int:
    m = get_method(method)
    stages = m.stages if isinstance(m, RhoRK) else 1
    if nfe % stages:
        raise ValueError(
            f"{m.name} makes {stages} model calls per step; nfe must be a multiple of {stages}, got {nfe}"
        )
    return nfe // stages


def optimize_grid(
    model: Callable[[Any, Any], Any],
    schedule: Schedule,
    nfe: int,
    method: Any = None,
    *,
    prediction: str = "eps",
    x_T: Any = None,
    shape: tuple[int, ...] | None = None,
    batch: int = 64,
    seed: int = 0,
    start: Any = "auto",
    t_start: float | None = None,
    t_end: float | None = None,
    reference: Any = None,
    reference_rtol: float = 1e-7,
    max_evals: int = 200,
    skip: Sequence[float] = (),
    prior_mean: Any = 0.0,
    full_output: bool = False,
    progress: bool = False,
) -> np.ndarray | tuple[np.ndarray, dict[str, Any]]:
    """Choose the time points of an ``nfe``-call grid for ``model`` and ``method``.

    Parameters
    ----------
    model : callable
        ``model(x, t)`` in the sampler's convention (``t`` of shape ``(batch,)``).
    schedule : Schedule
        The model's noise schedule.
    nfe : int
        Model calls of the sampler the grid is for (steps × stages for Runge–Kutta).
    method : str or Method, optional
        The sampling method (default ``DEFAULT_METHOD``); a grid is tuned to one method.
    prediction : str
        What the model predicts (``"eps"``, ``"x0"``, ``"v"``, ...).
    x_T : torch.Tensor, optional
        The calibration noise, ``(B, *shape)`` float64 recommended; default: ``batch``
        standard normal samples of ``shape`` from ``seed`` (scaled by σ/α at ``t_start``
        for a variance-exploding schedule's noise level).
    shape : tuple of int, optional
        Sample shape, needed when ``x_T`` is not given.
    batch, seed : int
        Size and seed of the default calibration batch.
    start : str, sequence of str, or array
        The initial grid: a grid kind (default: the schedule's own), several kinds (the
        best of them on the calibration batch is the start; one sampler run each), or
        ``nfe/stages + 1`` times; its ends are kept.
    t_start, t_end : float, optional
        Ends of the grid when ``start`` is a kind (``grids.grid``'s defaults otherwise);
        σ must be positive at ``t_end`` for the built-in reference.
    reference : torch.Tensor, optional
        The exact PF-ODE solution from ``x_T`` at ``t_end``; default: dopri5 at
        ``reference_rtol`` (``expint.diffusion.reference.pf_ode_reference``).
    reference_rtol : float
        Tolerance of the default reference.
    max_evals : int
        Sampler runs the search may spend (each costs ``nfe`` model calls on the batch),
        per entry of ``skip`` plus one.
    skip : sequence of float
        Candidate times for the first model call below the start (``x_T`` stays at the
        start time): the interval between is crossed without model calls by the prior
        flow (`expint.diffusion.prior_flow`; see ``Sampler``'s ``prior_from``).  Each
        candidate's grid is searched as the plain one is, and the best on the
        calibration batch wins; with ``full_output`` its ``info["prior_from"]`` is the
        time of ``x_T`` to pass as ``Sampler(..., prior_from=...)`` (None when the plain
        grid won).  Empty (default): the grid starts at the start time.
    prior_mean : float or tensor
        The data mean the prior flow assumes (``Sampler``'s ``prior_mean``).
    full_output : bool
        Also return a dict with the loss before and after, the calls spent and the
        reference's own calls.
    progress : bool
        Show a progress bar over the sampler runs (needs tqdm).

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, dict)
        The grid, strictly decreasing, float64, with the ends of ``start`` (its first
        time is a ``skip`` candidate when one wins); never worse on the calibration
        batch than ``start`` (the best point seen is returned).  Save it with
        ``numpy.save`` and pass it to ``Sampler``/``sample`` as ``ts``.

    Raises
    ------
    TypeError, ValueError
        For a model that is not callable, an ``nfe`` that is not a positive integer (or
        not a multiple of a Runge–Kutta method's stages), neither ``x_T`` nor ``shape``,
        a reference of another shape, ``max_evals < 1``, σ = 0 at ``t_end`` without a
        ``reference``, or a ``skip`` time that is not strictly between the grid's ends.

    Notes
    -----
    The grid is fitted to the calibration batch; judge it on other noise (the
    benchmark ``benchmarks/diffusion_learned.py`` reports it on a disjoint batch).  The
    result is deterministic for a fixed ``x_T`` (or ``seed``) and model.

    Examples
    --------
    >>> import torch
    >>> from expint.diffusion import Sampler, optimize_grid, pretrained
    >>> net = pretrained.load("spiral_v")
    >>> ts = optimize_grid(net.model, net.schedule, 5, "dpmpp2m", prediction="v",
    ...                    shape=net.shape, batch=32, t_start=900.0, max_evals=20)
    >>> ts.shape
    (6,)
    """
    import torch

    if not callable(model):
        raise TypeError(f"model must be callable as model(x, t), got {type(model).__name__}")
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be an expint.diffusion schedule, got {type(schedule).__name__}")
    if isinstance(nfe, bool) or not isinstance(nfe, (int, np.integer)) or nfe < 1:
        raise ValueError(f"nfe must be a positive integer, got {nfe!r}")
    if isinstance(max_evals, bool) or not isinstance(max_evals, (int, np.integer)) or max_evals < 1:
        raise ValueError(f"max_evals must be a positive integer, got {max_evals!r}")
    batch = check_count(batch, name="batch")
    seed = check_integer(seed, name="seed")
    reference_rtol = check_real(reference_rtol, name="reference_rtol")
    if not 0 < reference_rtol < 1:
        raise ValueError(f"reference_rtol must be a tolerance in (0, 1), got {reference_rtol!r}")
    check_prior_mean(prior_mean)
    for value, name in ((x_T, "x_T"), (reference, "reference")):
        if value is not None:
            check_start(value, name)
            if not all_finite(value):
                raise ValueError(f"{name} must be finite (it contains NaN or inf)")
    method = get_method(DEFAULT_METHOD if method is None else method)
    prediction = check_prediction(prediction)
    n = _steps(method, int(nfe))
    several = isinstance(start, (list, tuple)) and all(isinstance(k, str) for k in start) and start
    starts = [make_grid(schedule, n, k, t_start, t_end) for k in (start if several else [start])]
    kinds = list(start) if several else ([start] if isinstance(start, str) else [])
    ts0 = starts[0]
    if x_T is None:
        if shape is None:
            raise ValueError("pass x_T (the calibration noise) or shape (to draw it from seed)")
        g = torch.Generator().manual_seed(seed)
        x_T = torch.randn(batch, *shape, generator=g, dtype=torch.float64)
        x_T = x_T * float(schedule.sigma(np.array([ts0[0]]))[0])
    if reference is None:
        if not float(schedule.sigma(np.array([ts0[-1]]))[0]) > 0:
            raise ValueError("σ = 0 at the grid's end: pass reference= (the PF-ODE solution there)")
        from .reference import pf_ode_reference

        calls = [0]

        def counted(x: Any, t: Any) -> Any:
            calls[0] += 1
            return model(x, t)

        reference = pf_ode_reference(counted, schedule, prediction, x_T, ts0[0], ts0[-1], reference_rtol)
        ref_calls = calls[0]
    else:
        ref_calls = 0
        if tuple(reference.shape) != tuple(x_T.shape):
            raise ValueError(f"reference has shape {tuple(reference.shape)}, x_T {tuple(x_T.shape)}")

    skips = [float(c) for c in skip]
    for c in skips:
        if not ts0[-1] < c < ts0[0]:
            raise ValueError(
                f"skip times must lie strictly between the grid's ends {ts0[-1]} and {ts0[0]}, got {c}"
            )
    bar = None
    if progress and n >= 2 and max_evals > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_evals * (len(skips) + 1), desc=f"optimize_grid nfe {nfe}", unit="run")
    evals = [0]
    results = []
    for first in [None, *skips]:
        if first is None:
            cand = starts
        elif kinds:  # the spacing rules again, from the candidate on
            cand = [make_grid(schedule, n, k, first, float(ts0[-1])) for k in kinds]
        else:
            cand = [_moved(ts, first) for ts in starts]
        prior_from = None if first is None else float(ts0[0])
        results.append(
            (*_search(method, schedule, prediction, model, x_T, reference, cand, max_evals, evals, bar,
                      prior_from, prior_mean), prior_from)
        )  # fmt: skip
    if bar is not None:
        bar.close()
    initial = results[0][3]
    best_ts, best_loss, start_index, _, prior_from = min(results, key=lambda r: r[1])
    if not full_output:
        return best_ts
    info = {
        "loss_start": initial,
        "loss": best_loss,
        "sampler_runs": evals[0],
        "model_calls": evals[0] * nfe,
        "reference_calls": ref_calls,
        "batch": int(x_T.shape[0]),
        "start": start[start_index] if several else (start if isinstance(start, str) else "explicit"),
        "prior_from": prior_from,
    }
    return best_ts, info


def _moved(ts: np.ndarray, first: float) -> np.ndarray:
    """``ts`` with its first time moved to ``first``, the others mapped affinely so the
    spacing keeps its shape (the last time is kept)."""
    out = ts[-1] + (ts - ts[-1]) * (first - ts[-1]) / (ts[0] - ts[-1])
    out[0], out[-1] = first, ts[-1]
    return out


def _search(
    method: Any,
    schedule: Schedule,
    prediction: str,
    model: Callable[[Any, Any], Any],
    x_T: Any,
    reference: Any,
    starts: list[np.ndarray],
    max_evals: int,
    evals: list[int],
    bar: Any,
    prior_from: float | None,
    prior_mean: Any,
) -> tuple[np.ndarray, float, int, float]:
    """Nelder–Mead over the logits of the best of ``starts`` (ends kept): the best
    grid seen, its loss, the index of the start it came from and that start's loss."""
    import torch

    def loss_of(ts: np.ndarray) -> float:
        sampler = Sampler(schedule, ts, method, prediction, prior_from=prior_from, prior_mean=prior_mean)
        out = sampler(model, x_T, check_finite=False)
        return rmse(out, reference) if bool(torch.isfinite(out).all()) else np.inf

    tried = [(loss_of(ts), i) for i, ts in enumerate(starts)]
    evals[0] += len(starts)
    if bar is not None:
        bar.update(len(starts))
    initial, first = min(tried)
    ts0 = starts[first]
    best: dict[str, Any] = {"loss": initial, "ts": ts0}
    runs = [len(starts)]
    if len(ts0) >= 3 and max_evals > 1:
        from scipy.optimize import minimize

        def objective(z: np.ndarray) -> float:
            ts = grid_from_logits(z, ts0[0], ts0[-1])
            if np.any(np.diff(ts) >= 0):
                return np.inf  # increments below float resolution
            value = loss_of(ts)
            evals[0] += 1
            runs[0] += 1
            if bar is not None:
                bar.update()
            if value < best["loss"]:
                best.update(loss=value, ts=ts)
            return value

        minimize(
            objective,
            logits_from_grid(ts0),
            method="Nelder-Mead",
            options={
                "maxfev": max(1, max_evals - runs[0]),
                "xatol": 1e-4,
                "fatol": 1e-7,
                "adaptive": len(ts0) > 5,
            },
        )
    return best["ts"], best["loss"], first, initial
