"""expint's samplers against diffusers' schedulers on the same 1000-step DDPM schedule."""

from __future__ import annotations

import diffusers  # installed by `make test` (extra "diffusion"); a missing install must fail
import numpy as np
import pytest
import torch

from expint.diffusion import DiscreteVP, ExponentialAdams, Sampler, grid, toy

pytestmark = pytest.mark.slow  # `make test-fast` skips this module; `make test` runs it


def _toy_model(schedule):
    mix = toy.GaussianMixture([[1.0, 0.5, -0.5, 0.2], [-1.0, -0.3, 0.4, 0.0]], [0.3, 0.5], schedule)
    return mix


def _run_diffusers(scheduler, model, x):
    for t in scheduler.timesteps:
        eps = model(x, torch.full((x.shape[0],), float(t), dtype=x.dtype))
        x = scheduler.step(eps, t, x).prev_sample
    return x


@pytest.fixture
def setup():
    sch = DiscreteVP.from_betas("linear", 1e-4, 0.02, 1000)
    model = _toy_model(sch)
    x = torch.randn(32, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    return sch, model, x


@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize("n_steps", [10, 20])
def test_lab_matches_diffusers_deis(setup, order, n_steps):
    """Same schedule, timesteps, start-up and lower-order final steps.  Stock diffusers
    keeps its sigmas in float32, so it agrees to ~3e-5 relative; with its sigmas replaced
    by float64 values of the same schedule the two agree to rounding."""
    sch, model, x = setup
    ref_sched = diffusers.DEISMultistepScheduler(
        num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear", solver_order=order
    )
    ref_sched.set_timesteps(n_steps)
    ts = np.concatenate([ref_sched.timesteps.numpy().astype(float), [0.0]])
    # diffusers' weights on every step: expint's stability guards off
    method = ExponentialAdams(
        order - 1, "lam", "eps", lower_order_final=True, max_disagreement=None, max_gap_stiffness=None
    )
    out = Sampler(sch, ts, method=method)(model, x.clone())
    stock = _run_diffusers(ref_sched, model, x.clone())
    assert float((out - stock).abs().max()) <= 1e-4 * float(stock.abs().max())
    ref_sched.set_timesteps(n_steps)
    sig = np.sqrt((1 - sch.alphas_cumprod) / sch.alphas_cumprod)
    ref_sched.sigmas = torch.from_numpy(np.concatenate([sig[ref_sched.timesteps.numpy()], sig[:1]]))
    exact = _run_diffusers(ref_sched, model, x.clone())
    assert float((out - exact).abs().max()) <= 1e-12 * float(exact.abs().max())


@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize("n_steps", [6, 20])
def test_unipc_weights_match_diffusers_unipc(setup, order, n_steps):
    """``weights="unipc"`` with UniPC's order taper and no guard is diffusers' UniPC
    (bh2, data prediction, corrector on every step but the last): to float32 rounding
    of its sigmas, and to 1e-12 with float64 sigmas.  The exact weights differ from it
    by far more than that (else this test could not tell them apart)."""
    sch, model, x = setup
    ref_sched = diffusers.UniPCMultistepScheduler(
        num_train_timesteps=1000,
        beta_start=1e-4,
        beta_end=0.02,
        beta_schedule="linear",
        solver_order=order,
        timestep_spacing="trailing",
        final_sigmas_type="sigma_min",
    )
    ref_sched.set_timesteps(n_steps)
    ts = np.concatenate([ref_sched.timesteps.numpy().astype(float), [0.0]])
    kw = dict(corrector=True, lower_order_final="always", max_gain=None)
    unipc = Sampler(sch, ts, method=ExponentialAdams(order - 1, "lam", "x0", weights="unipc", **kw))(
        model, x.clone()
    )
    exact = Sampler(sch, ts, method=ExponentialAdams(order - 1, "lam", "x0", **kw))(model, x.clone())
    stock = _run_diffusers(ref_sched, model, x.clone())
    scale = float(stock.abs().max())
    assert float((unipc - stock).abs().max()) <= 1e-4 * scale
    ref_sched.set_timesteps(n_steps)
    sig = np.sqrt((1 - sch.alphas_cumprod) / sch.alphas_cumprod)
    ref_sched.sigmas = torch.from_numpy(np.concatenate([sig[ref_sched.timesteps.numpy()], sig[:1]]))
    f64 = _run_diffusers(ref_sched, model, x.clone())
    assert float((unipc - f64).abs().max()) <= 1e-12 * scale
    assert float((exact - f64).abs().max()) >= 1e-6 * scale


def test_ddim_matches_diffusers_ddim(setup):
    sch, model, x = setup
    ref_sched = diffusers.DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=1e-4,
        beta_end=0.02,
        beta_schedule="linear",
        set_alpha_to_one=True,
        clip_sample=False,
    )
    ref_sched.set_timesteps(10)
    ref = _run_diffusers(ref_sched, model, x.clone())
    ts = grid(sch, 10, rounding="leading", final_zero=True)
    np.testing.assert_array_equal(ts[:-1], ref_sched.timesteps.numpy())
    out = Sampler(sch, ts, method="ddim")(model, x.clone())
    assert float((out - ref).abs().max()) <= 1e-5 * float(ref.abs().max())


def test_deis_quadratic_grid_reproduces_reference_timesteps():
    sch = DiscreteVP.from_betas("linear", 1e-4, 0.02, 1000)
    ts = grid(sch, 10, "quadratic", t_start=999, t_end=0, rounding="floor")
    np.testing.assert_array_equal(ts, [998, 809, 639, 489, 359, 249, 159, 89, 39, 9, 0])


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_spacings_match_diffusers(spacing):
    sch = DiscreteVP.from_betas("linear", 1e-4, 0.02, 1000)
    ref = diffusers.DDIMScheduler(num_train_timesteps=1000, timestep_spacing=spacing)
    ref.set_timesteps(12)
    ts = grid(sch, 12, rounding=spacing, final_zero=True)  # 12 model calls, as in diffusers
    np.testing.assert_array_equal(ts[:-1], ref.timesteps.numpy())
    assert ts[-1] == sch.t_data and np.all(np.diff(ts) < 0)
    if ref.timesteps[-1] == 0:  # no room for a 12th step that ends at a training timestep
        with pytest.raises(ValueError, match="pass final_zero=True"):
            grid(sch, 12, rounding=spacing)
    else:
        np.testing.assert_array_equal(grid(sch, 12, rounding=spacing), [*ref.timesteps.tolist(), 0.0])


@pytest.mark.parametrize("kind", ["linear", "scaled_linear", "squaredcos_cap_v2"])
def test_beta_schedules_match_diffusers(kind):
    ref = diffusers.DDPMScheduler(
        num_train_timesteps=1000, beta_schedule=kind, beta_start=1e-4, beta_end=0.02
    )
    ours = DiscreteVP.from_betas(kind, 1e-4, 0.02, 1000)
    # diffusers accumulates the product in float32: ~1e-5 relative at the noisy end
    np.testing.assert_allclose(ours.alphas_cumprod, ref.alphas_cumprod.double().numpy(), rtol=5e-5)
