r"""A k-diffusion-style sampler function.

k-diffusion's convention: ``x = x0 + σ ε`` (α = 1, σ = k-diffusion's sigma, which is
expint's ρ for any VP model), ``x`` starts as ``noise · sigmas[0]``, ``sigmas``
decreases (usually to 0), and the denoiser ``model(x, sigma · s_in, **extra_args)``
returns x0.  In expint terms that is the `EDM` schedule (time = σ) with an
``x0`` prediction, so every expint method can be used as a k-diffusion sampler::

    from expint.diffusion.integrations import sample_expint
    x = sample_expint(denoiser, noise * sigmas[0], sigmas, method="dpmpp3m_pc")
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from ..grids import check_grid
from ..methods import DEFAULT_METHOD
from ..sampler import Sampler, check_start
from ..schedules import EDM


def sample_expint(
    model: Callable[..., Any],
    x: Any,
    sigmas: Any,
    extra_args: dict | None = None,
    callback: Callable[[dict], None] | None = None,
    disable: bool | None = None,
    method: Any = DEFAULT_METHOD,
) -> Any:
    """Sample with an expint method under k-diffusion's sampler signature.

    Parameters
    ----------
    model : callable
        k-diffusion denoiser, ``model(x, sigma, **extra_args) -> x0``; ``sigma`` has
        shape ``(batch,)``.
    x : torch.Tensor
        Initial state, ``noise * sigmas[0]``.
    sigmas : array or torch.Tensor
        Decreasing noise levels (a final 0 is allowed).
    extra_args : dict, optional
        Passed to the model.
    callback : callable, optional
        Called with ``{"x", "i", "sigma", "sigma_hat", "denoised"}`` after each step.
    disable : bool, optional
        Disable the progress bar.  As in k-diffusion (tqdm's meaning), ``None`` shows
        it only where standard error is a terminal.
    method : str or Method
        Any expint method (default ``expint.diffusion.DEFAULT_METHOD``).
    """
    # the sampler's own checks would name its argument, x_T; a user of this function
    # passed x
    check_start(x, "x")
    import torch

    if not bool(torch.isfinite(x).all()):
        raise ValueError("x contains NaN or inf; start from finite noise times sigmas[0]")
    extra = extra_args or {}
    sig = np.asarray(sigmas.detach().cpu().numpy() if hasattr(sigmas, "detach") else sigmas, dtype=np.float64)
    if sig.ndim != 1 or sig.size < 2:
        raise ValueError("sigmas must be a 1-D sequence of at least two noise levels")
    if not np.all(np.isfinite(sig)) or np.any(sig < 0):
        raise ValueError(f"sigmas must be finite and non-negative, got {sig.tolist()}")
    if np.any(np.diff(sig) >= 0):
        raise ValueError("sigmas must be strictly decreasing (from noise to data)")
    positive = sig[sig > 0]
    if positive.size == 0:
        raise ValueError("sigmas must contain a positive noise level")
    schedule = EDM(
        sigma_min=float(positive.min()) if positive.min() < sig[0] else sig[0] / 2, sigma_max=float(sig[0])
    )
    check_grid(schedule, sig, "sigmas")  # (the sampler's own check would name its ts)
    sampler = Sampler(schedule, sig, method=method, prediction="x0")

    def denoiser(xs: Any, t: Any) -> Any:
        return model(xs, t, **extra)

    cb = None
    if callback is not None:
        target = sampler.target

        def cb(d: dict) -> None:
            # α = 1 here: x0 = x − σ ε for ε-target methods
            denoised = d["pred"] if target == "x0" else d["x_in"] - d["t_in"] * d["pred"]
            i = d["i"]
            callback(
                {
                    "x": d["x"],
                    "i": i,
                    "sigma": float(sig[i]),
                    "sigma_hat": float(sig[i]),
                    "denoised": denoised,
                }
            )

    progress = sys.stderr.isatty() if disable is None else not disable
    return sampler(denoiser, x, progress=progress, callback=cb)
