"""The k-diffusion-style sampler function."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from expint.diffusion import EDM, Sampler, grid, toy
from expint.diffusion.integrations import sample_expint


@pytest.mark.parametrize("method", ["dpmpp3m_pc", "tab2", "rhork2"])
def test_sample_expint_equals_the_edm_sampler(method):
    sch = EDM(0.002, 80.0)
    mix = toy.GaussianMixture([[1.0, 0.5, 0.0], [-1.0, -0.3, 0.5]], [0.3, 0.5], sch)

    def denoiser(x, sigma, scale=1.0):
        return scale * mix.x0(x, sigma)  # k-diffusion denoisers return x0

    sigmas = torch.as_tensor(np.concatenate([grid(sch, 12, "karras"), [0.0]]))
    x = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * sigmas[0]
    seen = []
    out = sample_expint(
        denoiser, x, sigmas, extra_args={"scale": 1.0}, callback=seen.append, disable=True, method=method
    )
    ref = Sampler(sch, sigmas.numpy(), method, prediction="x0")(lambda xs, t: mix.x0(xs, t), x)
    assert torch.allclose(out, ref, rtol=1e-13, atol=1e-13)
    assert len(seen) == 13 and set(seen[0]) == {"x", "i", "sigma", "sigma_hat", "denoised"}
    # "denoised" is an x0 estimate whatever the method's target: close to the data at the end
    assert seen[-1]["denoised"].shape == x.shape and float(seen[-1]["denoised"].abs().max()) < 10


def test_bad_sigmas():
    with pytest.raises(ValueError, match="at least two"):
        sample_expint(lambda x, s: x, torch.zeros(1, 2), [1.0])
    with pytest.raises(ValueError, match="strictly decreasing"):
        sample_expint(lambda x, s: x, torch.zeros(1, 2), [1.0, 2.0, 0.0])
    # named as sigmas (they were reported as the sampler's ts)
    with pytest.raises(ValueError, match="sigmas must be finite and non-negative"):
        sample_expint(lambda x, s: x, torch.zeros(1, 2), [80.0, float("nan"), 0.0])
    with pytest.raises(ValueError, match="sigmas must be finite and non-negative"):
        sample_expint(lambda x, s: x, torch.zeros(1, 2), [80.0, 1.0, -1.0])


def test_sigmas_too_close_for_the_schedule_are_named_sigmas():
    """Found by the k-diffusion fuzz test in CI: two noise levels one ulp apart gave the
    sampler's error naming its own argument, ts."""
    with pytest.raises(ValueError, match=r"^sigmas: step 0 .* does not change the log-SNR"):
        sample_expint(lambda x, s: x, torch.zeros(2, 2), [1.0000000000000002e-4, 1e-4])


def test_bad_x_is_named_x():
    """Errors about the start state name this function's argument, ``x`` (they named the
    sampler's ``x_T``, which a k-diffusion user never passed)."""
    sigmas = [10.0, 1.0, 0.0]
    with pytest.raises(TypeError, match=r"^x must be a torch tensor"):
        sample_expint(lambda x, s: x, np.zeros((1, 2)), sigmas)
    with pytest.raises(TypeError, match=r"^x has dtype torch.int64"):
        sample_expint(lambda x, s: x, torch.zeros(1, 2, dtype=torch.int64), sigmas)
    with pytest.raises(ValueError, match=r"^x must have a leading batch axis"):
        sample_expint(lambda x, s: x, torch.tensor(1.0), sigmas)
    with pytest.raises(ValueError, match=r"^x contains NaN or inf"):
        sample_expint(lambda x, s: x, torch.tensor([[1.0, float("inf")]]), sigmas)


def test_diffusers_scheduler_matches_the_sampler_and_swaps_in():
    import diffusers

    from expint.diffusion import DiscreteVP
    from expint.diffusion.integrations.diffusers import ExpintScheduler

    ddim = diffusers.DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
    )
    sched = ExpintScheduler.from_config(ddim.config, method="tab3")
    assert sched.config.beta_schedule == "scaled_linear" and sched.config.method == "tab3"
    sched.set_timesteps(12)
    assert sched.timesteps.dtype == torch.int64 and len(sched.timesteps) == sched._sampler.nfe
    mix = toy.GaussianMixture(
        [[1.0, 0.5, 0.0], [-1.0, -0.3, 0.5]],
        [0.3, 0.5],
        DiscreteVP.from_betas("scaled_linear", 0.00085, 0.012, 1000),
    )
    x = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    latents = x * sched.init_noise_sigma
    for t in sched.timesteps:  # the loop every diffusers pipeline runs
        inp = sched.scale_model_input(latents, t)
        out = mix(inp, torch.full((8,), float(t), dtype=torch.float64))
        latents = sched.step(out, t, latents).prev_sample
    direct = sched._sampler(mix, x)
    assert torch.allclose(latents, direct, rtol=1e-13, atol=1e-13)
    noisy = sched.add_noise(x, torch.zeros_like(x), torch.tensor([0, 999]).repeat(4))
    assert noisy.shape == x.shape
    sched.set_timesteps(5)
    with pytest.raises(ValueError, match=r"not in scheduler\.timesteps"):
        sched.step(torch.zeros_like(x), 3, x)
    sched.step(torch.zeros_like(x), sched.timesteps[0], x)
    with pytest.raises(ValueError, match="next model call"):
        sched.step(torch.zeros_like(x), sched.timesteps[2], x)


@pytest.mark.parametrize("pipeline", ["DDPMPipeline"])  # DDIMPipeline converts any scheduler to DDIM
def test_expint_scheduler_drops_into_a_diffusers_pipeline(pipeline):
    """A real (tiny, randomly initialised) UNet in diffusers' own pipeline."""
    import diffusers

    from expint.diffusion.integrations.diffusers import ExpintScheduler

    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(
        sample_size=8,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    )
    sched = ExpintScheduler(method="dpmpp3m_pc")
    pipe = getattr(diffusers, pipeline)(unet=unet, scheduler=sched)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(
        batch_size=2, num_inference_steps=6, output_type="np", generator=torch.Generator().manual_seed(0)
    )
    images = out.images
    assert images.shape == (2, 8, 8, 3) and np.all(np.isfinite(images))
    assert sched._call == len(sched.timesteps) == 6  # every model call went through step()
    with pytest.raises(ValueError, match="eta = 0"):
        sched.set_timesteps(4)
        sched.step(torch.zeros(1, 3, 8, 8), sched.timesteps[0], torch.zeros(1, 3, 8, 8), eta=0.5)


@pytest.mark.parametrize("method", ["tab3", "dpmpp2m", "ddim"])
def test_callback_denoised_is_the_x0_estimate_at_the_step_start(method):
    """k-diffusion callbacks report ``denoised`` = the model's x0 at the point the step
    started from, whatever the method integrates internally (ε for tab3, x0 for dpmpp2m)."""
    sch = EDM(0.002, 80.0)
    mix = toy.GaussianMixture([[1.0, 0.5, 0.0], [-1.0, -0.3, 0.5]], [0.3, 0.5], sch)
    sigmas = torch.as_tensor(np.concatenate([grid(sch, 8, "karras"), [0.0]]))
    x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * sigmas[0]
    seen = []
    sample_expint(lambda xs, s: mix.x0(xs, s), x, sigmas, callback=seen.append, disable=True, method=method)
    start = x
    for i, info in enumerate(seen):
        expected = mix.x0(start, sigmas[i].expand(start.shape[0]))
        torch.testing.assert_close(info["denoised"], expected, rtol=1e-10, atol=1e-10)
        start = info["x"]


def test_gradients_flow_through_the_integrations():
    """``sample_expint`` and the diffusers scheduler are differentiable in the start
    noise (gradcheck against finite differences); both failed on a state requiring grad
    while the sampler's finite-state probe wrote with ``out=``."""
    sigmas = torch.tensor([10.0, 5.0, 2.0, 1.0, 0.5, 0.0], dtype=torch.float64)

    def denoiser(x, sigma):  # data N(0, 1): D(x, σ) = x / (1 + σ²)
        return x / (1 + sigma.reshape(-1, 1) ** 2)

    x = (
        10 * torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: sample_expint(denoiser, x, sigmas, disable=True), (x,))

    from expint.diffusion import DiscreteVP
    from expint.diffusion.integrations.diffusers import ExpintScheduler

    sched = ExpintScheduler(method="tab2")
    mix = toy.GaussianMixture([[1.0, 0.0], [-1.0, 0.5]], [0.3, 0.2], DiscreteVP.from_betas())

    def run(latents):  # gradcheck calls it several times: a fresh set of timesteps each
        sched.set_timesteps(5)
        for t in sched.timesteps:
            out = mix(latents, torch.full((latents.shape[0],), float(t), dtype=torch.float64))
            latents = sched.step(out, t, latents).prev_sample
        return latents

    noise = torch.randn(
        3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3)
    ).requires_grad_()
    assert torch.autograd.gradcheck(run, (noise,), eps=1e-6, atol=1e-5, rtol=1e-4)
