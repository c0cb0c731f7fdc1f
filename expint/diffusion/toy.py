r"""Analytic diffusion models with exact ε, and reference PF-ODE solutions.

For data $\sum_k w_k N(μ_k, s_k^2 I)$ the marginal at time ``t`` is
$\sum_k w_k N(α μ_k, (α^2 s_k^2 + σ^2) I)$, whose score is exact, so
$ε^*(x, t) = -σ ∇\log p_t(x) = σ \sum_k r_k(x) (x - α μ_k)/(α^2 s_k^2 + σ^2)$
with posterior weights $r_k(x)$.  A sampler's error against the exact ODE
solution is then pure discretisation error.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validation import check_count, check_integer, check_real, check_shape
from .schedules import Schedule


class GaussianMixture:
    """Isotropic Gaussian mixture data distribution with an exact ε-model.

    Parameters
    ----------
    means : array (K, d)
    stds : array (K,)
    weights : array (K,), optional (uniform by default)
    schedule : Schedule
        The forward process; ``model(x, t)`` uses it to get α(t), σ(t).
    shape : tuple of int, optional
        Sample shape, e.g. ``(3, 8, 8)``: ``model(x, t)`` then takes and returns
        ``x`` of shape ``(batch, *shape)``, as an image network does (the product of
        ``shape`` must be ``d``).  Default ``(d,)``.
    """

    def __init__(self, means: Any, stds: Any, schedule: Schedule, weights: Any = None, shape: Any = None):
        import torch

        m = _float_array(means, "means")
        if m.ndim != 2 or 0 in m.shape or not np.all(np.isfinite(m)):
            raise ValueError(f"means must be a finite array of shape (K, d), K, d ≥ 1; got shape {m.shape}")
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be an expint.diffusion schedule, got {type(schedule).__name__}")
        k = m.shape[0]
        sd = _float_array(stds, "stds")
        if sd.ndim > 1 or sd.size not in (1, k) or not np.all(np.isfinite(sd) & (sd >= 0)):
            raise ValueError(f"stds must be one or K = {k} finite non-negative numbers, got {sd.tolist()}")
        self.means = torch.as_tensor(m)
        self.stds = torch.as_tensor(np.broadcast_to(sd, (k,)).copy())
        w = np.full(k, 1.0 / k) if weights is None else _float_array(weights, "weights")
        if w.shape != (k,) or not np.all(np.isfinite(w) & (w > 0)):
            raise ValueError(f"weights must be K = {k} finite positive numbers")
        self.log_w = torch.as_tensor(np.log(w / w.sum()))
        self.schedule = schedule
        self.dim = self.means.shape[1]
        self.shape = (self.dim,) if shape is None else tuple(int(v) for v in shape)
        if math.prod(self.shape) != self.dim:
            raise ValueError(
                f"shape {self.shape} has {math.prod(self.shape)} elements; the means have d = {self.dim}"
            )
        self.calls = 0
        self._on: dict = {}

    @classmethod
    def random(
        cls, schedule: Schedule, shape: Any = (3, 8, 8), components: int = 4, std: float = 0.2, seed: int = 0
    ) -> GaussianMixture:
        """A mixture of ``components`` Gaussians with means drawn uniformly in
        ``[−1, 1]^d`` (fixed ``seed``) and standard deviation ``std``, on samples of
        ``shape``: a stand-in for an image ε-network whose exact ε is known.

        >>> from expint.diffusion import DiscreteVP, toy
        >>> model = toy.GaussianMixture.random(DiscreteVP.from_betas(), shape=(3, 8, 8))
        >>> model.shape, model.dim
        ((3, 8, 8), 192)
        """
        shape = check_shape(shape)
        components = check_count(components, name="components")
        rng = np.random.default_rng(check_integer(seed, name="seed"))
        means = rng.uniform(-1.0, 1.0, size=(components, math.prod(shape)))
        return cls(means, std, schedule, shape=shape)

    def _params(self, like: Any) -> tuple[Any, Any, Any]:
        # cached per device and dtype: a host-to-device copy on every call would
        # synchronise (and a sampler test on a GPU asserts that nothing does)
        key = (like.device, like.dtype)
        hit = self._on.get(key)
        if hit is None:
            hit = self._on[key] = tuple(
                v.to(like.device, like.dtype) for v in (self.means, self.stds, self.log_w)
            )
        return hit

    def _posterior(self, x: Any, t: Any) -> tuple:
        import torch

        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"x must have shape (batch, {self.dim}) (flattened samples), got {tuple(x.shape)}; "
                f"call the model itself for samples of shape (batch, *{self.shape})"
            )
        mu, s, log_w = self._params(x)
        t = _batch_times(t, x)
        a = self.schedule.alpha(t)[:, None, None]
        sg = self.schedule.sigma(t)[:, None, None]
        var = a * a * s[None, :, None] ** 2 + sg * sg  # (B, K, 1)
        diff = x[:, None, :] - a * mu[None]  # (B, K, d)
        logp = log_w[None] - 0.5 * (diff * diff / var).sum(-1) - 0.5 * self.dim * torch.log(var[..., 0])
        r = torch.softmax(logp, dim=1)[..., None]
        return a, sg, s, mu, var, diff, r

    def eps(self, x: Any, t: Any) -> Any:
        """Exact ε*(x, t) for ``x`` of shape ``(B, d)`` and ``t`` of shape ``(B,)``, in
        ``x``'s dtype (computed in float32 at least, `_working`)."""
        _, sg, _, _, var, diff, r = self._posterior(_working(x), t)
        return (sg[:, 0] * (r * diff / var).sum(1)).to(x.dtype)

    def x0(self, x: Any, t: Any) -> Any:
        """Exact posterior mean E[x0 | x_t = x] (finite also where α = 0), in ``x``'s
        dtype."""
        a, _, s, mu, var, diff, r = self._posterior(_working(x), t)
        return (r * (mu[None] + a * s[None, :, None] ** 2 / var * diff)).sum(1).to(x.dtype)

    def __call__(self, x: Any, t: Any) -> Any:
        """``ε*(x, t)`` for ``x`` of shape ``(batch, *shape)``, ``t`` of shape ``(batch,)``."""
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(
                f"x must have shape (batch, *{self.shape}) for this mixture, got {tuple(x.shape)}; "
                "a single sample needs a batch axis (x[None])"
            )
        self.calls += 1
        if self.shape == (self.dim,):
            return self.eps(x, t)
        flat = x.reshape(x.shape[0], self.dim)
        return self.eps(flat, t).reshape(x.shape)

    def _span(self, x_T: Any, t_start: Any, t_end: Any) -> tuple[float, float]:
        """Validated ``(t_start, t_end)`` inside the schedule, and ``x_T`` a float
        tensor of shape ``(batch, *shape)``."""
        from .sampler import check_start

        check_start(x_T, "x_T")
        if tuple(x_T.shape[1:]) != self.shape:
            raise ValueError(f"x_T must have shape (batch, *{self.shape}), got {tuple(x_T.shape)}")
        ends = (check_real(t_start, name="t_start"), check_real(t_end, name="t_end"))
        self.schedule.check_times(np.array(ends), "t_start/t_end")
        return ends

    def sample_data(self, n: int, generator: Any = None) -> Any:
        """``n`` samples of the data distribution, float64, shape ``(n, *shape)``."""
        import torch

        n = check_count(n, name="n")
        k = torch.multinomial(self.log_w.exp(), n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, dtype=torch.float64, generator=generator)
        return (self.means[k] + self.stds[k, None] * z).reshape(n, *self.shape)

    def reference(self, x_T: Any, t_start: float, t_end: float, rtol: float = 1e-10) -> Any:
        """The exact PF-ODE solution from ``x_T`` at ``t_start`` to ``t_end`` by
        torchdiffeq (dopri5) in ``v = x/α`` against ``ρ = σ/α`` (``dv/dρ = ε``),
        float64."""
        import torch
        import torchdiffeq

        t_start, t_end = self._span(x_T, t_start, t_end)
        rtol = check_real(rtol, name="rtol")
        if not 0 < rtol < 1:
            raise ValueError(f"rtol must be a tolerance in (0, 1), got {rtol!r}")
        if t_start == t_end:
            return x_T.clone()
        sch = self.schedule
        x = x_T.double().reshape(x_T.shape[0], self.dim)
        a0 = float(sch.alpha(np.array([t_start]))[0])
        r0, r1 = float(sch.rho(np.array([t_start]))[0]), float(sch.rho(np.array([t_end]))[0])

        def f(rho, v):
            t = float(sch.t_of_rho(np.array([max(float(rho), 0.0)]))[0])
            a = float(sch.alpha(np.array([t]))[0])
            tt = torch.full((v.shape[0],), t, dtype=torch.float64)
            return self.eps(a * v, tt)

        grid = torch.tensor([r0, r1], dtype=torch.float64)
        v = torchdiffeq.odeint(f, x / a0, grid, method="dopri5", rtol=rtol, atol=rtol * 1e-2)[-1]
        a1 = float(sch.alpha(np.array([t_end]))[0])
        return (a1 * v).to(x_T.dtype).reshape(x_T.shape)


class Gaussian(GaussianMixture):
    r"""Gaussian data ``N(μ, s² I)`` with the closed-form PF-ODE solution

    $x_t = α_t μ + \sqrt{\frac{α_t^2 s^2 + σ_t^2}{α_T^2 s^2 + σ_T^2}}\,(x_T - α_T μ)$.
    """

    def __init__(self, mean: Any, std: float, schedule: Schedule):
        mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        super().__init__(mean[None, :], [std], schedule)

    def exact(self, x_T: Any, t_start: float, t_end: float) -> Any:
        """Closed-form PF-ODE solution at ``t_end`` from ``x_T`` at ``t_start``."""
        t_start, t_end = self._span(x_T, t_start, t_end)
        sch = self.schedule
        s = float(self.stds[0])
        mu = self.means[0].to(x_T.device, x_T.dtype)
        aT, sT = (float(v[0]) for v in (sch.alpha(np.array([t_start])), sch.sigma(np.array([t_start]))))
        a1, s1 = (float(v[0]) for v in (sch.alpha(np.array([t_end])), sch.sigma(np.array([t_end]))))
        ratio = math.sqrt((a1 * a1 * s * s + s1 * s1) / (aT * aT * s * s + sT * sT))
        return a1 * mu + ratio * (x_T - aT * mu)


def _working(x: Any) -> Any:
    """``x`` in float32 where it is float16 or bfloat16: the schedule at a time near
    1000 and the posterior's softmax need more than their 11- and 8-bit significands
    (bfloat16 turned the DDPM timestep 999 into 1000, past the schedule's end)."""
    import torch

    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _batch_times(t: Any, x: Any) -> Any:
    """``t`` as a tensor of shape ``(batch,)`` in ``x``'s dtype and device: a tensor of
    that shape, or one time (a number or a 0-d tensor) for the whole batch."""
    import torch

    if isinstance(t, (int, float, np.integer, np.floating)) and not isinstance(t, bool):
        return torch.full((x.shape[0],), float(t), dtype=x.dtype, device=x.device)
    if not torch.is_tensor(t):
        raise TypeError(f"t must be a tensor of shape (batch,) or one number, got {type(t).__name__}")
    if t.ndim == 0:
        t = t.expand(x.shape[0])
    if tuple(t.shape) != (x.shape[0],):
        raise ValueError(f"t must have shape ({x.shape[0]},) (one time per sample), got {tuple(t.shape)}")
    return t.to(x.dtype)


def _float_array(values: Any, name: str) -> np.ndarray:
    """``values`` as a float64 array; a ``TypeError`` naming ``name`` where that fails
    (ragged lists, strings)."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of real numbers ({exc})") from None
