"""The prior flow: crossing the first, high-noise interval without model calls
(`prior_flow`, ``Sampler(prior_from=...)``, ``optimize_grid(skip=...)``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from expint.diffusion import (
    VE,
    FlowMatching,
    Sampler,
    VPLinear,
    grid,
    metrics,
    optimize_grid,
    pretrained,
    prior_flow,
)
from expint.diffusion.reference import pf_ode_reference

X_T = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
MU = torch.tensor([0.7, -0.2, 1.5], dtype=torch.float64)


def _point_mass(schedule):
    """The exact ε-prediction of data concentrated at MU: ε = (x − α μ)/σ."""

    def model(x, t):
        ts = t.detach().cpu().numpy().astype(np.float64)
        a = torch.as_tensor(schedule.alpha(ts), dtype=x.dtype)[:, None]
        s = torch.as_tensor(schedule.sigma(ts), dtype=x.dtype)[:, None]
        return (x - a * MU) / s

    return model


@pytest.mark.parametrize(
    ("schedule", "t0", "t_mid", "t1"),
    [(VPLinear(), 1.0, 0.6, 1e-3), (VE(), 1.0, 0.5, 1e-3), (FlowMatching(), 0.99, 0.7, 1e-3)],
)
@pytest.mark.parametrize("method", ["ddim", "dpmpp2m_pc", "tab3"])
def test_the_prior_flow_is_the_exact_flow_of_a_point_mass(schedule, t0, t_mid, t1, method):
    """For data concentrated at μ every sampler is exact, so sampling from t0 equals the
    prior flow to t_mid followed by sampling from there, and equals the closed form."""
    model = _point_mass(schedule)
    prediction = "eps"
    full = Sampler(schedule, grid(schedule, 6, t_start=t0, t_end=t1), method, prediction)(model, X_T)
    closed = prior_flow(schedule, X_T, t0, t1, MU)
    assert torch.allclose(full, closed, rtol=1e-10, atol=1e-10)
    late = grid(schedule, 4, t_start=t_mid, t_end=t1)
    skipped = Sampler(schedule, late, method, prediction, prior_from=t0, prior_mean=MU)(model, X_T)
    assert torch.allclose(skipped, closed, rtol=1e-10, atol=1e-10)
    # with the wrong mean the skipped part is off by exactly (α(t_mid) − σ-ratio·α(t0))·μ, carried on
    wrong = Sampler(schedule, late, method, prediction, prior_from=t0)(model, X_T)
    assert not torch.allclose(wrong, closed, rtol=1e-6, atol=1e-6)


def test_per_sample_grids_start_where_each_row_starts():
    sch = VPLinear()
    model = _point_mass(sch)
    rows = np.stack([grid(sch, 5, t_start=t, t_end=1e-3) for t in np.linspace(0.4, 0.9, 8)])
    out = Sampler(sch, rows, "dpmpp2m_pc", prior_from=1.0, prior_mean=MU)(model, X_T)
    assert torch.allclose(out, prior_flow(sch, X_T, 1.0, 1e-3, MU), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("prior_from", "exc", "match"),
    [
        (0.5, ValueError, "prior_from = 0.5 must be later in sampling than the first grid time"),
        (0.8, ValueError, "must be later in sampling"),
        (1.5, ValueError, "outside the domain"),
        ("1.0", TypeError, "prior_from must be a time"),
        (True, TypeError, "prior_from must be a time"),
    ],
)
def test_bad_prior_from(prior_from, exc, match):
    sch = VPLinear()
    with pytest.raises(exc, match=match):
        Sampler(sch, grid(sch, 4, t_start=0.8, t_end=1e-3), "ddim", prior_from=prior_from)


@pytest.fixture(scope="module")
def digits():
    net = pretrained.load("digits_eps")
    x_T = torch.randn(64, *net.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    ref = pf_ode_reference(net.model, net.schedule, net.prediction, x_T, 999.0, 0.0, 1e-6)
    return net, x_T, ref


def test_skipping_the_first_interval_wins_at_four_calls_on_the_digits_model(digits):
    """At t = 999 of the linear DDPM schedule σ/α ≈ 157 amplifies the network's ε error
    into its data estimate; with four calls, starting the model at t = 750 (the prior
    flow before) is far more accurate than spending a call at 999 — on the same spacing
    rule and on grids optimised for each start."""
    net, x_T, ref = digits

    def err(ts, **kw):
        return metrics.rmse(Sampler(net.schedule, ts, "dpmpp2m_pc", "eps", **kw)(net.model, x_T), ref)

    plain = err(grid(net.schedule, 4, "tempered", t_start=999.0, t_end=0.0))
    skipped = err(grid(net.schedule, 4, "tempered", t_start=750.0, t_end=0.0), prior_from=999.0)
    assert skipped < 0.8 * plain, (plain, skipped)
    ts, info = optimize_grid(
        net.model, net.schedule, 4, "dpmpp2m_pc", x_T=x_T, reference=ref, start="tempered",
        t_start=999.0, t_end=0.0, max_evals=30, skip=(750.0,), full_output=True,
    )  # fmt: skip
    assert info["prior_from"] == 999.0 and ts[0] == 750.0 and ts[-1] == 0.0
    assert info["loss"] == pytest.approx(err(ts, prior_from=999.0), rel=1e-12)
    assert info["loss"] <= skipped and info["loss"] < info["loss_start"]
    assert info["sampler_runs"] <= 60


def test_a_skip_that_does_not_help_is_not_taken(digits):
    """At 20 calls the prior flow's bias (α at the first call times the data's spread)
    outweighs what it saves: the plain grid wins and ``prior_from`` is None."""
    net, x_T, ref = digits
    ts, info = optimize_grid(
        net.model, net.schedule, 20, "dpmpp2m_pc", x_T=x_T, reference=ref, start="tempered",
        t_start=999.0, t_end=0.0, max_evals=1, skip=(500.0,), full_output=True,
    )  # fmt: skip
    assert info["prior_from"] is None and ts[0] == 999.0


@pytest.mark.parametrize("skip", [(999.0,), (0.0,), (1200.0,)])
def test_skip_times_must_lie_inside_the_grid(digits, skip):
    net, x_T, ref = digits
    with pytest.raises(ValueError, match="skip times must lie strictly between"):
        optimize_grid(
            net.model, net.schedule, 4, "ddim", x_T=x_T, reference=ref, t_start=999.0, t_end=0.0, skip=skip
        )


def test_an_explicit_start_grid_is_moved_to_each_skip_candidate(digits):
    """With an explicit start grid (no spacing rule to rebuild) a candidate's grid is the
    start mapped onto [candidate, end], keeping its shape."""
    net, x_T, ref = digits
    start = np.array([999.0, 600.0, 300.0, 100.0, 0.0])
    ts, info = optimize_grid(
        net.model, net.schedule, 4, "dpmpp2m_pc", x_T=x_T, reference=ref, start=start,
        max_evals=1, skip=(700.0,), full_output=True,
    )  # fmt: skip
    # one run per candidate, no search: the better of the two starts comes back
    assert info["sampler_runs"] == 2 and info["start"] == "explicit"
    if info["prior_from"] is None:
        np.testing.assert_array_equal(ts, start)
    else:
        np.testing.assert_allclose(ts, start * (700.0 / 999.0), rtol=1e-12)
    moved = Sampler(net.schedule, start * (700.0 / 999.0), "dpmpp2m_pc", prior_from=999.0)
    plain = Sampler(net.schedule, start, "dpmpp2m_pc")
    losses = [metrics.rmse(s(net.model, x_T), ref) for s in (plain, moved)]
    assert info["loss"] == pytest.approx(min(losses), rel=1e-12)
    assert info["prior_from"] == (999.0 if losses[1] < losses[0] else None)
