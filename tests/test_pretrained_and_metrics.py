"""Shipped models load offline and reproduce their stored checksums; the Fréchet
distance matches its closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from expint.diffusion import grid, metrics, pretrained, sample


@pytest.mark.parametrize("name", pretrained.names())
def test_shipped_model_loads_and_reproduces_its_checksum(name):
    net = pretrained.load(name)
    spec = pretrained.SPECS[name]
    x, t = pretrained.probe_input(spec)
    out = net.model(x, t)
    assert out.shape == x.shape and out.dtype == torch.float32
    # the sum of the outputs on the probe input, recorded when the weights were trained
    assert float(out.double().sum()) == pytest.approx(net.checksum, rel=1e-5, abs=1e-4)
    model, schedule, prediction, shape = net.as_tuple()
    assert schedule.n == 1000 and prediction == spec.prediction and shape == spec.shape and model is net.model
    assert repr(net).startswith(f"PretrainedModel({name!r}")


def test_shipped_model_runs_in_float64_and_samples_digits():
    """A trained model's samples are close to the training digits in Fréchet distance
    (the split-half floor of the data is ≈ 0.26), the noise it starts from is not."""
    pytest.importorskip("sklearn")
    net = pretrained.load("digits_eps")
    x_T = torch.randn(512, *net.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = sample(net.model, x_T, net.schedule, grid(net.schedule, 20, final_zero=True), method="ddim")
    assert x.dtype == torch.float64 and torch.isfinite(x).all()
    data = net.data()
    assert data.shape == (1797, *net.shape)
    fd, fd_noise = metrics.frechet_distance(x, data), metrics.frechet_distance(x_T, data)
    assert fd < 2.0 < 50.0 < fd_noise, (fd, fd_noise)


def test_unknown_model_and_bad_input_are_refused():
    with pytest.raises(ValueError, match="unknown pretrained model 'cifar'; valid: digits_eps"):
        pretrained.load("cifar")
    net = pretrained.load("digits_eps")
    with pytest.raises(ValueError, match="x must have shape"):
        net.model(torch.zeros(2, 64), torch.zeros(2))
    with pytest.raises(TypeError, match="torch tensor"):
        net.model(np.zeros((2, 1, 8, 8)), np.zeros(2))


# -- metrics -------------------------------------------------------------------------------------


def test_frechet_distance_matches_the_closed_form_for_two_gaussians():
    """For N(μ1, C1), N(μ2, C2) with commuting (diagonal) covariances the distance is
    |μ1 − μ2|² + Σ (√c1 − √c2)²; with exact statistics the function must give it to
    rounding, and from samples within sampling error."""
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 0.0])
    c1, c2 = np.diag([1.0, 4.0, 0.25]), np.diag([2.0, 1.0, 0.25])
    exact = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(np.diag(c1)) - np.sqrt(np.diag(c2))) ** 2)
    assert metrics.frechet_distance((mu1, c1), (mu2, c2)) == pytest.approx(exact, rel=1e-12)
    # non-commuting covariances: rotate both by different rotations; d(·,·) = 0 to itself
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    cr = q @ c1 @ q.T
    assert metrics.frechet_distance((mu1, cr), (mu1, cr)) == pytest.approx(0.0, abs=1e-12)
    # from samples
    a = rng.multivariate_normal(mu1, c1, size=200_000)
    b = rng.multivariate_normal(mu2, c2, size=200_000)
    assert metrics.frechet_distance(a, b) == pytest.approx(exact, rel=0.02)


def test_the_distance_of_a_set_to_itself_is_not_negative():
    """Rounding gave −1.1e-14 for 500 samples in 8-D against themselves, and users take
    the square root for the unsquared distance: NaN."""
    x = np.random.default_rng(0).standard_normal((500, 8))
    d = metrics.frechet_distance(x, x)
    assert 0.0 <= d < 1e-12 and math.isfinite(math.sqrt(d))


def test_frechet_orders_halves_below_perturbations():
    rng = np.random.default_rng(1)
    data = rng.normal(size=(4000, 5))
    noise = metrics.split_half_frechet(data)
    shifted = metrics.frechet_distance(data[:2000], data[2000:] + 0.3)
    assert 0 < noise < shifted


def test_rmse_and_bad_metric_input():
    a = np.zeros((4, 2))
    b = np.ones((4, 2))
    assert metrics.rmse(a, b) == pytest.approx(np.sqrt(2.0))
    with pytest.raises(ValueError, match="x contains NaN"):
        metrics.rmse(a * np.nan, b)
    with pytest.raises(ValueError, match="different shapes"):
        metrics.rmse(a, np.ones((4, 3)))


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
def test_pf_ode_reference_matches_the_closed_form_gaussian(prediction):
    """The reference integrator against the exact PF-ODE solution of a Gaussian, with
    the model's output converted from each prediction type."""
    pytest.importorskip("torchdiffeq")
    from expint.diffusion import VPLinear, toy
    from expint.diffusion.models import conversion
    from expint.diffusion.reference import pf_ode_reference

    sch = VPLinear()
    g = toy.Gaussian([0.5, -0.2, 0.1], 0.3, sch)
    x_T = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def model(x, t):  # the exact ε, re-expressed as the requested prediction
        eps = g.eps(x, t)
        a, s = sch.alpha(t[:1].double()).item(), sch.sigma(t[:1].double()).item()
        if prediction == "eps":
            return eps
        # invert target = A x + B out for out, with target = ε
        A, B = conversion(prediction, "eps", a, s)
        return (eps - A * x) / B

    ref = pf_ode_reference(model, sch, prediction, x_T, 1.0, 1e-3, rtol=1e-10)
    exact = g.exact(x_T, 1.0, 1e-3)
    assert float((ref - exact).abs().max()) < 1e-7
