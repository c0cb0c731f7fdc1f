"""``ExpintScheduler`` behaves like a diffusers scheduler: step counts, config keys,
flow matching, img2img starts, custom timesteps/sigmas, half-precision outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from expint.diffusion import DiscreteVP, FlowMatching, Sampler, toy  # noqa: E402
from expint.diffusion.integrations.diffusers import ExpintScheduler  # noqa: E402

pytestmark = pytest.mark.slow  # `make test-fast` skips this module; `make test` runs it

X = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))


def _vp_toy(sched: ExpintScheduler, spread: float = 1.0, shape=None):
    means = [[spread, 0.5, 0.0], [-spread, -0.3, 0.5]]
    return toy.GaussianMixture(means, [0.3, 0.5], sched.schedule, shape=shape)


def _run(sched: ExpintScheduler, model, x, timesteps=None):
    """The loop of a diffusers pipeline."""
    latents = x
    for t in sched.timesteps if timesteps is None else timesteps:
        inp = sched.scale_model_input(latents, t)
        out = model(inp, torch.full((x.shape[0],), float(t), dtype=torch.float64))
        latents = sched.step(out, t, latents).prev_sample
    return latents


@pytest.mark.parametrize("n", [1, 2, 10, 50, 999, 1000])
def test_n_inference_steps_is_n_model_calls(n):
    sched = ExpintScheduler()
    sched.set_timesteps(n)
    assert len(sched.timesteps) == n == sched.num_inference_steps
    assert len(set(sched.timesteps.tolist())) == n
    mix = _vp_toy(sched)
    if n <= 50:
        out = _run(sched, mix, X)
        assert mix.calls == n and torch.isfinite(out).all()


@pytest.mark.parametrize("n", [1001, 5000, 0])
def test_too_many_or_no_steps_are_refused(n):
    with pytest.raises(ValueError, match="num_inference_steps"):
        ExpintScheduler().set_timesteps(n)


def test_num_train_timesteps_must_be_an_integer():
    with pytest.raises(TypeError, match="num_train_timesteps must be an integer"):
        ExpintScheduler(num_train_timesteps=2.5)


def test_rescale_betas_zero_snr_on_a_schedule_that_ends_low_keeps_alpha_decreasing():
    """DDPM's linear β: ᾱ before the last timestep is already below 2⁻²⁴ after the
    rescale, so diffusers' fixed 2⁻²⁴ there would make ᾱ rise (refused, before the fix,
    as a schedule that is not decreasing)."""
    sched = ExpintScheduler(rescale_betas_zero_snr=True)  # beta_schedule="linear", 1e-4 … 0.02
    ac = sched.schedule.alphas_cumprod
    assert ac[-2] < 2.0**-24 and 0 < ac[-1] < ac[-2]
    assert np.all(np.diff(ac) < 0)
    sched.set_timesteps(10)
    assert torch.isfinite(_run(sched, _vp_toy(sched), X)).all()


def test_rescale_betas_zero_snr_is_honoured():
    kw = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, rescale_betas_zero_snr=True)
    ref = diffusers.DPMSolverMultistepScheduler(**kw)
    ours = ExpintScheduler.from_config(diffusers.DDPMScheduler(**kw, clip_sample=False).config)
    # diffusers accumulates in float32
    np.testing.assert_allclose(ours.schedule.alphas_cumprod, ref.alphas_cumprod.double().numpy(), rtol=2e-4)
    plain = ExpintScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    assert ours.schedule.alphas_cumprod[-1] < 1e-7 < plain.schedule.alphas_cumprod[-1]


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"my_custom_key": 1}, "my_custom_key"),
        ({"use_beta_sigmas": True}, "use_beta_sigmas"),
        ({"stochastic_sampling": True}, "stochastic_sampling"),
        ({"shift_terminal": 0.1}, "shift_terminal"),
        ({"prediction_type": "noise"}, "prediction_type"),
        ({"method": "tab9"}, "unknown method 'tab9'"),
        # found by tests/test_fuzz.py: each was a bare numpy error or a NaN sample
        ({"num_train_timesteps": 0}, "num_train_timesteps"),
        ({"beta_end": 0.0}, "beta_start, beta_end"),
        ({"beta_start": float("nan")}, "beta_start, beta_end"),
        ({"beta_schedule": "cosine"}, "beta_schedule"),
    ],
)
def test_configs_it_cannot_honour_are_refused_naming_the_key(overrides, match):
    # as a pipeline's scheduler_config.json gives it: explicit keys
    config = {"_class_name": "DDPMScheduler", "num_train_timesteps": 1000, "beta_schedule": "linear"}
    with pytest.raises(ValueError, match=match):
        ExpintScheduler.from_config({**config, **overrides})
    with pytest.raises(ValueError, match=match):
        ExpintScheduler.from_config(config, **overrides)


@pytest.mark.parametrize(
    "peer",
    ["DDPMScheduler", "DDIMScheduler", "DPMSolverMultistepScheduler", "DEISMultistepScheduler",
     "UniPCMultistepScheduler", "EulerDiscreteScheduler", "PNDMScheduler", "LMSDiscreteScheduler"],
)  # fmt: skip
def test_every_ddpm_family_config_is_accepted(peer):
    sched = ExpintScheduler.from_config(getattr(diffusers, peer)().config)
    sched.set_timesteps(8)
    assert len(sched.timesteps) == 8


@pytest.mark.parametrize(
    ("source", "final"),
    [({"set_alpha_to_one": True}, "zero"), ({"set_alpha_to_one": False}, "sigma_min")],
)
def test_a_saved_config_switches_back_to_diffusers_schedulers(tmp_path, source, final):
    """A pipeline saved with an ``ExpintScheduler`` wrote ``final_sigmas_type: null``
    (expint's "choose for me"); switching the loaded pipeline back to DPM-Solver,
    Euler or UniPC then failed in their ``set_timesteps`` ("must be one of 'zero', or
    'sigma_min', but got None").  The config records the value chosen."""
    sched = ExpintScheduler.from_config(diffusers.DDIMScheduler(**source).config)
    sched.set_timesteps(10)
    sched.save_pretrained(tmp_path)
    loaded = ExpintScheduler.from_pretrained(tmp_path)
    assert loaded.config.final_sigmas_type == final
    loaded.set_timesteps(10)
    assert torch.equal(loaded.timesteps, sched.timesteps)
    for peer in ("DPMSolverMultistepScheduler", "EulerDiscreteScheduler", "UniPCMultistepScheduler"):
        back = getattr(diffusers, peer).from_config(loaded.config)
        back.set_timesteps(10)
        assert back.config.final_sigmas_type == final and len(back.timesteps) == 10


@pytest.mark.parametrize(
    ("peer", "key", "value"),
    [
        ("HeunDiscreteScheduler", "beta_start", 0.00085),  # its default schedule, not ours
        ("KDPM2DiscreteScheduler", "beta_end", 0.012),
        ("DDIMScheduler", "clip_sample", True),
        ("DDPMScheduler", "variance_type", "fixed_small"),
        ("PNDMScheduler", "set_alpha_to_one", False),
    ],
)
def test_a_key_the_source_left_at_its_default_is_honoured(peer, key, value):
    """Only keys a config set explicitly were read: a scheduler built in code,
    ``HeunDiscreteScheduler()``, ran the model on expint's own β 1e-4–0.02 instead of
    Heun's 0.00085–0.012, and ``DDIMScheduler()``'s x0 clipping was dropped."""
    source = getattr(diffusers, peer)()
    assert source.config[key] == value
    sched = ExpintScheduler.from_config(source.config)
    assert sched.config[key] == value
    if key.startswith("beta"):
        ref = DiscreteVP.from_betas("linear", 0.00085, 0.012, 1000)
        np.testing.assert_allclose(sched.schedule.alphas_cumprod, ref.alphas_cumprod, rtol=1e-12)


def test_use_karras_sigmas_picks_the_karras_grid():
    sched = ExpintScheduler.from_config(diffusers.DPMSolverMultistepScheduler(use_karras_sigmas=True).config)
    sched.set_timesteps(10)
    ref = ExpintScheduler(grid_kind="karras")
    ref.set_timesteps(10)
    assert torch.equal(sched.timesteps, ref.timesteps)


@pytest.mark.parametrize("post", [{"clip_sample": True}, {"thresholding": True, "sample_max_value": 1.5}])
def test_x0_clipping_and_thresholding_match_diffusers_ddim(post):
    """Mixture means at ±2.5 make the x0 prediction leave [−1, 1]: the post-processing
    matters, and expint's DDIM must follow diffusers' DDIM with it.  expint keeps the
    (x0, ε) pair consistent (ε recomputed from the processed x0, as diffusers' DEIS and
    DPM-Solver do): DDIM's ``use_clipped_model_output=True``."""
    ref = diffusers.DDIMScheduler(set_alpha_to_one=True, **post)
    ref.set_timesteps(10)
    ours = ExpintScheduler.from_config(ref.config, method="ddim", grid_kind="leading")
    ours.set_timesteps(10)
    assert torch.equal(ours.timesteps, ref.timesteps)
    mix = _vp_toy(ours, spread=2.5, shape=(3, 1, 1))  # diffusers' thresholding needs (B, C, ...)
    x = X.float().reshape(6, 3, 1, 1)
    expected = x.clone()
    for t in ref.timesteps:
        out = mix(expected, torch.full((6,), float(t)))
        expected = ref.step(out, t, expected, use_clipped_model_output=True).prev_sample
    got = _run(ours, mix, x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    unprocessed = ExpintScheduler(method="ddim", grid_kind="leading")
    unprocessed.set_timesteps(10)
    assert (got - _run(unprocessed, mix, x)).abs().max() > 1e-2  # the test can tell


def test_learned_variance_channels_are_dropped():
    sched = ExpintScheduler(variance_type="learned_range")
    sched.set_timesteps(5)
    plain = ExpintScheduler()
    plain.set_timesteps(5)
    mix = _vp_toy(sched)

    def with_variance(x, t):
        return torch.cat([mix(x, t), torch.full_like(x, 7.0)], dim=1)

    x = X.reshape(6, 3, 1, 1)

    def model_4d(x, t):
        return mix(x.reshape(6, 3), t).reshape(6, 3, 1, 1)

    def with_variance_4d(x, t):
        return torch.cat([model_4d(x, t), torch.full_like(x, 7.0)], dim=1)

    torch.testing.assert_close(_run(sched, with_variance_4d, x), _run(plain, model_4d, x))
    del with_variance


# -- img2img, custom timesteps -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["dpmpp3m_pc", "tab2", "ddim"])
@pytest.mark.parametrize("use_begin_index", [True, False])
def test_img2img_start_at_a_later_timestep(method, use_begin_index):
    sched = ExpintScheduler(method=method)
    sched.set_timesteps(12)
    k = 5  # strength 7/12: the pipeline skips the first 5 timesteps
    if use_begin_index:
        sched.set_begin_index(k)
    mix = _vp_toy(sched)
    x0 = mix.sample_data(6, generator=torch.Generator().manual_seed(1))
    start = sched.timesteps[k : k + 1]
    noisy = sched.add_noise(x0, X, start.repeat(6))
    got = _run(sched, mix, noisy, timesteps=sched.timesteps[k:])
    direct = Sampler(sched.schedule, sched._ts[k:], method)(mix, noisy)
    torch.testing.assert_close(got, direct, rtol=1e-12, atol=1e-12)


def test_rk_method_refuses_an_img2img_start_inside_a_step():
    from expint.diffusion import RhoRK

    # the stiffness guard off, so that every step keeps its inner stage
    sched = ExpintScheduler(method=RhoRK("heun", "rhork2", max_stiffness=None))
    sched.set_timesteps(4)
    mix = _vp_toy(sched)
    with pytest.raises(ValueError, match="inner stage"):
        _run(sched, mix, X, timesteps=sched.timesteps[1:])


def test_custom_timesteps_and_sigmas():
    sched = ExpintScheduler(method="dpmpp2m")
    sched.set_timesteps(timesteps=[999, 700, 400, 100, 20])
    assert sched.timesteps.tolist() == [999, 700, 400, 100, 20]
    rho = sched.schedule.rho(np.array([900.0, 500.0, 50.0]))
    sched.set_timesteps(sigmas=rho)
    np.testing.assert_allclose(sched.timesteps.double().numpy(), [900.0, 500.0, 50.0], atol=1e-3)
    with pytest.raises(ValueError, match="not both"):
        sched.set_timesteps(timesteps=[999, 10], sigmas=[10.0, 0.1])
    with pytest.raises(ValueError, match="num_inference_steps=3 but 2"):
        sched.set_timesteps(3, timesteps=[999, 10])


# -- half precision ----------------------------------------------------------------------------


def test_half_precision_outputs_are_accumulated_in_float32():
    """float16 model outputs and latents: the rounding error of the whole run is that of
    diffusers' DPM-Solver++(2M) on the same model (each against its own full-precision
    run), where a sampler whose state is float16 throughout loses more.  On the quadratic
    grid, close to the peer's own spacing: the comparison is of precision handling, and
    final rounding errors of ~1e-3 differ by grid alone."""
    sched = ExpintScheduler(method="dpmpp2m", grid_kind="quadratic")
    sched.set_timesteps(10)
    mix = _vp_toy(sched)

    def half_model(x, t):
        return mix(x.double(), t.double()).half()

    exact = _run(sched, mix, X)
    sched.set_timesteps(10)
    got = _run(sched, half_model, X.half())
    assert got.dtype == torch.float16
    ours_err = float((got.double() - exact).abs().max())

    def peer(dtype, model):
        ref = diffusers.DPMSolverMultistepScheduler(solver_order=2)
        ref.set_timesteps(10)
        x = X.to(dtype)
        for t in ref.timesteps:
            x = ref.step(model(x, torch.full((6,), float(t))), t, x).prev_sample
        return x.double()

    peer_err = float(
        (peer(torch.float16, half_model) - peer(torch.float32, lambda x, t: mix(x, t))).abs().max()
    )
    naive = Sampler(sched.schedule, sched._ts, "dpmpp2m")(half_model, X.half(), check_finite=False)
    naive_err = float((naive.double() - exact).abs().max())
    assert ours_err <= 1.5 * peer_err, (ours_err, peer_err)
    assert ours_err < naive_err


def test_latents_changed_by_the_pipeline_between_steps_are_used():
    """Inpainting pipelines blend known pixels into the latents between steps."""
    sched = ExpintScheduler(method="ddim")
    sched.set_timesteps(6)
    mix = _vp_toy(sched)
    latents = X.clone()
    for i, t in enumerate(sched.timesteps):
        latents = sched.step(
            mix(latents, torch.full((6,), float(t), dtype=torch.float64)), t, latents
        ).prev_sample
        if i == 2:
            latents = latents.clone()
            latents[:, 0] = 0.25
    ts = sched._ts
    part = Sampler(sched.schedule, ts[:4], "ddim")(mix, X)
    part[:, 0] = 0.25
    expected = Sampler(sched.schedule, ts[3:], "ddim")(mix, part)
    torch.testing.assert_close(latents, expected, rtol=1e-12, atol=1e-12)


# -- flow matching -----------------------------------------------------------------------------


def _flow_reference(velocity, x):
    """dx/dσ = v(x, 1000σ) from σ = 1 to 0 by dopri5 at rtol 1e-10 (v is smooth on [0, 1])."""
    import torchdiffeq

    def f(sigma, y):  # dopri5's stages may overshoot σ = 0 a little
        s = min(max(float(sigma), 0.0), 1.0)
        return velocity(y, torch.full((y.shape[0],), 1000.0 * s, dtype=torch.float64))

    span = torch.tensor([1.0, 0.0], dtype=torch.float64)
    return torchdiffeq.odeint(f, x, span, method="dopri5", rtol=1e-10, atol=1e-12)[-1]


def _flow_toy():
    mix = toy.GaussianMixture([[1.0, 0.5, 0.0], [-1.0, -0.3, 0.5]], [0.3, 0.5], FlowMatching())

    def velocity(x, t):  # diffusers' flow models see t = σ · 1000 and predict ε − x0
        s = t.double() / 1000.0
        return mix.eps(x, s) - mix.x0(x, s)

    return velocity


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_flow_matching_config_becomes_a_flow_scheduler(shift):
    ref = diffusers.FlowMatchEulerDiscreteScheduler(shift=shift)
    ref.set_timesteps(8)
    sched = ExpintScheduler.from_config(ref.config)
    assert sched.flow and sched.prediction == "flow"
    sched.set_timesteps(8)
    torch.testing.assert_close(sched.timesteps, ref.timesteps, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(sched.sigmas, ref.sigmas, rtol=1e-5, atol=1e-6)
    velocity = _flow_toy()
    x = X.clone()
    got = _run(sched, velocity, x)
    reference = _flow_reference(velocity, x)
    euler = x.clone()
    for t in ref.timesteps:
        euler = ref.step(velocity(euler, torch.full((6,), float(t))), t, euler).prev_sample
    err, euler_err = (float((v - reference).abs().max()) for v in (got, euler))
    assert err < 0.75 * euler_err, (err, euler_err)  # the default beats Euler on Euler's own grid


def test_flow_matching_dynamic_shift_as_pipelines_call_it():
    """SD3/FLUX pipelines check that set_timesteps takes ``sigmas`` and pass ``mu``."""
    import inspect

    cfg = diffusers.FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True).config
    ref = diffusers.FlowMatchEulerDiscreteScheduler.from_config(cfg)
    ours = ExpintScheduler.from_config(cfg)
    params = inspect.signature(ours.set_timesteps).parameters
    assert {"sigmas", "timesteps", "mu", "device"} <= set(params)
    sigmas = np.linspace(1.0, 1 / 6, 6)
    ref.set_timesteps(sigmas=sigmas, device="cpu", mu=0.8)
    ours.set_timesteps(sigmas=sigmas, device="cpu", mu=0.8)
    torch.testing.assert_close(ours.timesteps, ref.timesteps, rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError, match="pass mu"):
        ours.set_timesteps(6)


def test_flow_img2img_uses_scale_noise():
    ref = diffusers.FlowMatchEulerDiscreteScheduler()
    sched = ExpintScheduler.from_config(ref.config)
    sched.set_timesteps(6)
    ref.set_timesteps(6)
    ref.set_begin_index(2)
    x0, noise = X.float(), torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    t = sched.timesteps[2:3]
    torch.testing.assert_close(sched.scale_noise(x0, t, noise), ref.scale_noise(x0, t, noise))


@pytest.mark.parametrize("method", ["tab2", "ipndm", "rhork2"])
def test_eps_method_on_a_flow_grid_from_sigma_one_is_refused(method):
    # ipndm and rhork2 raised ZeroDivisionError / an internal tableau error before
    sched = ExpintScheduler.from_config(diffusers.FlowMatchEulerDiscreteScheduler().config, method=method)
    with pytest.raises(ValueError, match=f"method='{method}'.*propagator is undefined"):
        sched.set_timesteps(6)


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"shift": float("nan")}, "shift must be a positive finite number"),
        ({"shift": 0.0}, "shift must be a positive finite number"),
        ({"grid_kind": "leading"}, "grid_kind='leading' spaces the integer timesteps of a VP schedule"),
    ],
)
def test_bad_flow_configs_are_refused_naming_the_key(overrides, match):
    with pytest.raises(ValueError, match=match):
        ExpintScheduler.from_config(diffusers.FlowMatchEulerDiscreteScheduler().config, **overrides)


def test_dynamic_shift_needs_a_finite_mu():
    sched = ExpintScheduler.from_config(
        diffusers.FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True).config
    )
    with pytest.raises(ValueError, match="mu must be finite"):
        sched.set_timesteps(6, mu=float("nan"))


def test_a_strong_shift_keeps_sigma_at_most_one():
    """``sσ/(1 + (s − 1)σ)`` at σ = 1 rounds to 1 + 2e-16 for s = 0.1; the grid must
    stay inside the schedule (it was refused as outside the domain)."""
    sched = ExpintScheduler.from_config(diffusers.FlowMatchEulerDiscreteScheduler().config, shift=0.1)
    sched.set_timesteps(1)
    assert float(sched.sigmas[0]) <= 1.0
    x = _run(sched, lambda x, t: x - 0.3, X)  # velocity ε − x0 of the data point 0.3
    torch.testing.assert_close(x, torch.full_like(X, 0.3))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"timesteps": [0.0, 0.0]}, "timesteps must be strictly decreasing"),
        ({"timesteps": []}, "timesteps must be a non-empty 1-D sequence"),
        ({"sigmas": [1.0, float("nan")]}, "sigmas must be finite"),
        ({"timesteps": ["a"]}, "timesteps must be a sequence of numbers"),
        # times the schedule cannot tell apart: a zero step in log-SNR (ZeroDivisionError before)
        ({"timesteps": [1.0, 1e-65, 0.0]}, r"timesteps=\[1.0, 1e-65, 0.0\]: .*does not change the log-SNR"),
        ({"sigmas": [0.0]}, r"sigmas=\[0.0\]: .*strictly decreasing"),
    ],
)
def test_bad_custom_grids_are_refused_naming_the_argument(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ExpintScheduler().set_timesteps(**kwargs)


def test_clipping_with_flow_prediction_on_a_vp_schedule():
    """``x0`` from a velocity on a VP schedule needs dα/dt and dσ/dt (it was NaN)."""
    sched = ExpintScheduler(prediction_type="flow_prediction", clip_sample=True)
    sched.set_timesteps(1)  # one step from t = 999 to the data: the result is the clipped x0
    x = _run(sched, lambda x, t: 0.5 * x + 0.1, X)
    # (to rounding: the clipped x0 goes back to a model output and forward again)
    assert torch.isfinite(x).all() and float(x.abs().max()) <= 1.0 + 1e-12
    assert float(x.abs().max()) > 0.99  # the unclipped x0 is far outside [-1, 1] here


def test_schedule_of_flow_scheduler_is_flow_matching():
    sched = ExpintScheduler.from_config(diffusers.FlowMatchEulerDiscreteScheduler().config)
    assert isinstance(sched.schedule, FlowMatching)
    assert isinstance(ExpintScheduler().schedule, DiscreteVP)


def test_inside_a_stable_diffusion_3_pipeline_with_tiny_random_components():
    """diffusers' own SD3 pipeline (flow matching, shift 3) with a tiny random
    transformer and VAE, prompt embeddings given directly: the pipeline's loop with
    ExpintScheduler equals expint's Sampler driven with the same transformer."""
    pytest.importorskip("transformers")  # SD3's module imports it
    from diffusers import AutoencoderKL, SD3Transformer2DModel, StableDiffusion3Pipeline

    torch.manual_seed(0)
    transformer = SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=16, caption_projection_dim=16, pooled_projection_dim=16, out_channels=4,
    )  # fmt: skip
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",), block_out_channels=(8,), latent_channels=4, norm_num_groups=4,
    )  # fmt: skip
    none = dict.fromkeys(
        ["text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "text_encoder_3", "tokenizer_3"]
    )
    pipe = StableDiffusion3Pipeline(
        transformer=transformer,
        vae=vae,
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0),
        **none,
    )
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = ExpintScheduler.from_config(pipe.scheduler.config)
    assert pipe.scheduler.flow and pipe.scheduler.method == "rhoab1_x0"
    embeds, pooled = torch.randn(1, 5, 16), torch.randn(1, 16)
    latents = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    kw = dict(prompt_embeds=embeds, pooled_prompt_embeds=pooled, guidance_scale=1.0, height=16, width=16)
    got = pipe(**kw, num_inference_steps=6, latents=latents.clone(), output_type="latent").images

    def velocity(x, t):
        with torch.no_grad():
            return transformer(
                hidden_states=x, timestep=t * 1000.0, encoder_hidden_states=embeds, pooled_projections=pooled
            ).sample

    direct = Sampler(FlowMatching(), pipe.scheduler._ts, "rhoab1_x0", prediction="flow")(
        velocity, latents.clone()
    )
    torch.testing.assert_close(got, direct, rtol=1e-5, atol=1e-5)


def test_a_bad_device_and_timesteps_past_training_are_named():
    """``set_timesteps(device="blah")`` raised torch's RuntimeError listing every
    backend; ``add_noise`` at timestep 5000 of a 1000-step model extrapolated the
    schedule silently."""
    sched = ExpintScheduler(method="tab2")
    with pytest.raises(ValueError, match="device 'blah' is not a torch device"):
        sched.set_timesteps(5, device="blah")
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"timesteps has times in \[1, 5000\], outside the domain"):
        sched.add_noise(x, x, torch.tensor([5000, 1]))
    assert sched.add_noise(x, torch.ones_like(x), torch.tensor([999, 0])).shape == x.shape
