"""Noise schedules and grids."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from expint.diffusion import EDM, VE, DiscreteVP, FlowMatching, VPCosine, VPLinear, grid

SCHEDULES = [VPLinear(), VPCosine(), DiscreteVP.from_betas(), VE(), EDM(), FlowMatching()]
IDS = [type(s).__name__ for s in SCHEDULES]


def _interior(s, n=25):
    lo = s.t_min + 1e-3 * (s.t_max - s.t_min)
    return np.linspace(lo, s.t_max * (1 - 1e-3), n)


@pytest.mark.parametrize("s", SCHEDULES, ids=IDS)
def test_lambda_inverse_and_identities(s):
    t = _interior(s)
    np.testing.assert_allclose(s.t_of_lam(s.lam(t)), t, rtol=1e-10, atol=1e-10 * s.t_max)
    np.testing.assert_allclose(s.rho(t), s.sigma(t) / s.alpha(t), rtol=1e-13)
    np.testing.assert_allclose(s.lam(t), np.log(s.alpha(t) / s.sigma(t)), rtol=1e-12, atol=1e-12)
    assert np.all(np.diff(s.lam(t)) < 0)  # λ decreases towards noise


@pytest.mark.parametrize("s", SCHEDULES, ids=IDS)
def test_torch_values_match_numpy(s):
    t = _interior(s)
    for f in (s.alpha, s.sigma, s.lam, s.rho):
        np.testing.assert_allclose(f(torch.from_numpy(t)).numpy(), f(t), rtol=1e-14)


def test_vp_schedules_preserve_variance():
    for s in SCHEDULES[:3]:
        t = _interior(s)
        np.testing.assert_allclose(s.alpha(t) ** 2 + s.sigma(t) ** 2, 1.0, rtol=1e-13)


def test_vp_linear_closed_form_and_reference_values():
    s = VPLinear(0.1, 20.0)
    t = np.array([0.3])
    assert s.alpha(t)[0] == pytest.approx(np.exp(-0.25 * 0.09 * 19.9 - 0.5 * 0.3 * 0.1), rel=1e-15)
    d = DiscreteVP.from_betas("linear", 1e-4, 0.02, 1000)
    assert d.rho(np.array([0.0]))[0] == pytest.approx(0.0100, abs=5e-5)  # REFERENCE.md: 0.0100
    assert d.rho(np.array([999.0]))[0] == pytest.approx(157.41, abs=5e-3)  # REFERENCE.md: 157.41


def test_discrete_clean_data_time():
    d = DiscreteVP.from_betas()
    assert d.sigma(np.array([-1.0]))[0] == 0.0 and d.alpha(np.array([-1.0]))[0] == 1.0
    assert d.t_of_lam(np.array([np.inf]))[0] == -1.0


def test_discrete_log_alpha_is_the_same_interpolation_on_every_path():
    """Float64 numpy times take `np.interp` (one call: samplers evaluate the schedule at
    dozens of scalar times per step while building their weights); it is the general
    path's interpolation bit for bit, at knots, between them and beyond both ends, for
    arrays and scalars, and other precisions keep theirs."""
    torch = pytest.importorskip("torch")
    d = DiscreteVP.from_betas()
    rng = np.random.default_rng(3)
    t = np.concatenate([rng.uniform(-4.0, 1004.0, 5000), np.arange(-3.0, 1003.0, 0.5)])
    fast = d.log_alpha(t)
    general = d.log_alpha(torch.from_numpy(t)).numpy()
    np.testing.assert_array_equal(fast, general)
    assert fast[t <= -1.0].max() == 0.0 and np.all(fast[t >= 999.0] == d.log_alpha(np.array([999.0]))[0])
    for x in (417.3, np.float64(12.0), np.array(-0.5)):
        assert d.log_alpha(x) == d.log_alpha(torch.tensor(float(x), dtype=torch.float64)).item()
    single = d.log_alpha(t.astype(np.float32))
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, general, rtol=1e-5, atol=1e-6)


def test_flow_derivatives_and_finite_differences():
    fm = FlowMatching()
    da, ds = fm.derivatives(np.array([0.4]))
    assert da[0] == -1.0 and ds[0] == 1.0
    da, ds = VPLinear().derivatives(np.array([0.4]))
    h = 1e-7
    assert da[0] == pytest.approx(
        (VPLinear().alpha(np.array([0.4 + h])) - VPLinear().alpha(np.array([0.4 - h])))[0] / (2 * h), rel=1e-6
    )


@pytest.mark.parametrize("kind", ["uniform", "quadratic", "logsnr", "karras"])
@pytest.mark.parametrize("s", SCHEDULES, ids=IDS)
def test_grids_are_decreasing_and_hit_their_ends(kind, s):
    if isinstance(s, FlowMatching) and kind in ("logsnr", "karras"):
        with pytest.raises(ValueError, match="needs finite λ"):  # α(1) = 0: λ = −∞
            grid(s, 12, kind)
        s_start = 0.999
        ts = grid(s, 12, kind, t_start=s_start)
        assert ts[0] == s_start and np.all(np.diff(ts) < 0)
        return
    ts = grid(s, 12, kind)
    assert ts.shape == (13,) and np.all(np.diff(ts) < 0)
    assert ts[0] == s.t_max


@pytest.mark.parametrize("kappa", [0.0078125, 0.004, 1e-3])
def test_a_power_grid_with_a_tiny_exponent_on_discrete_times(kappa):
    """t^{1/κ} of t = 999 overflows for κ < 0.01: the grid is then formed on [0, 1]
    (found by the fuzz test, which saw an OverflowError): t^{1/κ} is still evenly spaced."""
    s = DiscreteVP.from_betas()
    ts = grid(s, 10, "power", kappa=kappa)
    assert ts[0] == 999.0 and ts[-1] == s.default_span()[1] and np.all(np.diff(ts) < 0)
    scaled = (ts / 999.0) ** (1 / kappa)
    np.testing.assert_allclose(np.diff(scaled), np.diff(scaled)[0], rtol=1e-6, atol=1e-300)


def test_logsnr_and_karras_spacing():
    s = VPLinear()
    ts = grid(s, 10, "logsnr", t_start=1.0, t_end=1e-3)
    assert np.allclose(np.diff(s.lam(ts)), np.diff(s.lam(ts))[0], rtol=1e-9)
    ts = grid(EDM(), 10, "karras")
    root = ts ** (1 / 7)
    assert np.allclose(np.diff(root), np.diff(root)[0], rtol=1e-9)


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        ((VPLinear(), 0), {}, ValueError, "positive integer"),
        ((VPLinear(), 5, "cubic"), {}, ValueError, "unknown grid kind 'cubic'"),
        ((VPLinear(), 5), {"t_start": 2.0}, ValueError, "outside the domain"),
        ((VPLinear(), 5), {"rounding": "floor"}, ValueError, "needs a DiscreteVP"),
        ((VE(), 5), {"final_zero": True}, ValueError, "no clean-data time"),
        ((DiscreteVP.from_betas(), 5), {"rounding": "ceil"}, ValueError, "unknown rounding"),
        (("vp", 5), {}, TypeError, "Schedule instance"),
        ((DiscreteVP.from_betas(), 10, [999.0, 500.0, 0.0]), {}, ValueError, "has 2 steps but n_steps = 10"),
        ((VPLinear(), 5, "power"), {"kappa": 0}, ValueError, "kappa must be a positive finite number"),
        ((EDM(), 5, "karras"), {"power": 0.0}, ValueError, "power must be a positive finite number"),
        ((EDM(), 5, "karras"), {"power": float("inf")}, ValueError, "power must be a positive"),
        ((DiscreteVP.from_betas(), 1000), {"rounding": "round"}, ValueError, "has 1000"),
        ((DiscreteVP.from_betas(), 1001), {"rounding": "trailing"}, ValueError, "1000 training timesteps"),
        ((DiscreteVP.from_betas(), 5), {"rounding": "leading"}, ValueError, "pass final_zero=True"),
        # DiscreteVP's clean-data time is t = −1: a power law in t cannot reach it
        ((DiscreteVP.from_betas(), 5, "quadratic"), {"t_end": -1.0}, ValueError, "needs t ≥ 0 at both ends"),
        ((DiscreteVP.from_betas(), 5, "tempered"), {"t_end": -1.0}, ValueError, "use final_zero=True"),
    ],
)
def test_bad_grid_arguments(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        grid(*args, **kwargs)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: VPLinear(20.0, 0.1), "beta_min < beta_max"),
        (lambda: VPCosine(t_max=1.0), "alpha vanishes"),
        (lambda: DiscreteVP([0.5, 0.9]), "strictly decreasing"),
        (lambda: DiscreteVP.from_betas("sigmoid"), "unknown beta_schedule \\(kind\\) 'sigmoid'"),
        (lambda: VE(1.0, 0.5), "sigma_min < sigma_max"),
        (lambda: EDM(0.0, 80.0), "0 < sigma_min < sigma_max"),
        (lambda: EDM(0.002, float("inf")), "sigma_max < inf"),
        # accepted before: a NaN or negative offset gave a NaN or undefined schedule
        (lambda: VPCosine(s=float("nan")), "s \\(the cosine schedule's offset\\)"),
        (lambda: VPCosine(s=-1.0), "s \\(the cosine schedule's offset\\)"),
        # one β is not a schedule (it needs at least two times)
        (lambda: DiscreteVP.from_betas(betas=[0.1]), "the betas must be a 1-D sequence"),
    ],
)
def test_bad_schedules(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


@pytest.mark.parametrize(
    ("factory", "match"),
    [  # each compared a string with a number, or an array with a string, naming nothing
        (lambda: EDM(sigma_max="80"), "sigma_max must be a real number"),
        (lambda: VE(sigma_min=None), "sigma_min must be a real number"),
        (lambda: VPLinear(beta_max="20"), "beta_max must be a real number"),
        (lambda: VPCosine(t_max="0.9"), "t_max must be a real number"),
        (
            lambda: DiscreteVP.from_betas(np.linspace(1e-4, 0.02, 10)),
            "kind \\(the beta_schedule\\) must be a string",
        ),
    ],
)
def test_schedule_arguments_of_the_wrong_type(factory, match):
    with pytest.raises(TypeError, match=match):
        factory()


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [  # NaN weights, negative spreads and NaN means were accepted (NaN ε); a ragged
        # list raised numpy's error
        ({"weights": [float("nan"), 1.0]}, ValueError, "weights must be K = 2 finite positive"),
        ({"stds": [-0.1, 0.2]}, ValueError, "stds must be one or K = 2 finite non-negative"),
        ({"means": [[float("nan"), 0.0], [1.0, 1.0]]}, ValueError, "means must be a finite array"),
        ({"means": [[1.0, 0.0], [1.0]]}, TypeError, "means must be an array of real numbers"),
        ({"means": []}, ValueError, "means must be a finite array of shape \\(K, d\\)"),
        ({"schedule": "edm"}, TypeError, "schedule must be an expint.diffusion schedule"),
    ],
)
def test_bad_gaussian_mixtures(kwargs, exc, match):
    from expint.diffusion import toy

    args = {"means": [[1.0, 0.0], [-1.0, 0.5]], "stds": [0.3, 0.4], "schedule": EDM()}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        toy.GaussianMixture(**args)


@pytest.mark.parametrize("rounding", ["floor", "round"])
@pytest.mark.parametrize("n", [1, 10, 50, 200, 999])
@pytest.mark.parametrize("kind", ["logsnr", "quadratic", "karras", "uniform"])
def test_rounded_grids_keep_every_step(kind, n, rounding):
    """n steps asked, n steps given: rounding never drops a duplicate timestep."""
    sch = DiscreteVP.from_betas()
    ts = grid(sch, n, kind, rounding=rounding)
    assert ts.shape == (n + 1,)
    assert np.all(ts == np.round(ts)) and np.all(np.diff(ts) < 0)
    assert ts[0] <= 999 and ts[-1] >= 0
    with_zero = grid(sch, n, kind, rounding=rounding, final_zero=True)
    assert with_zero.shape == (n + 1,) and with_zero[-1] == sch.t_data


@pytest.mark.parametrize(
    "schedule", [DiscreteVP.from_betas(), VPLinear(), EDM(), FlowMatching()], ids=lambda s: type(s).__name__
)
@pytest.mark.parametrize("n", [1, 2, 10])
def test_final_zero_keeps_n_steps(schedule, n):
    """n steps is n model calls with or without a last step to σ = 0."""
    kw = {"t_start": 0.999} if isinstance(schedule, FlowMatching) else {}
    plain = grid(schedule, n, **kw)
    zero = grid(schedule, n, final_zero=True, **kw)
    assert plain.shape == zero.shape == (n + 1,)
    assert zero[-1] == schedule.t_data and zero[0] == plain[0]


@pytest.mark.parametrize("kind", ["uniform", "quadratic", "logsnr", "karras"])
def test_explicit_ends_are_hit_and_uniform_is_uniform(kind):
    sch = DiscreteVP.from_betas()
    ts = grid(sch, 7, kind, t_start=900.0, t_end=10.0)
    assert ts[0] == 900.0 and ts[-1] == pytest.approx(10.0, abs=1e-9) and np.all(np.diff(ts) < 0)
    if kind == "uniform":
        np.testing.assert_allclose(np.diff(ts), -890.0 / 7, rtol=1e-12)
