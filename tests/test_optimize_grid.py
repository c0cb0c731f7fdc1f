"""optimize_grid: valid grids, never worse than the start on the calibration batch,
deterministic, call accounting, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from expint.diffusion import Sampler, check_grid, grid, metrics, optimize_grid, pretrained
from expint.diffusion.optimize import grid_from_logits, logits_from_grid
from expint.diffusion.reference import pf_ode_reference

T0 = 900.0


@pytest.fixture(scope="module")
def spiral():
    net = pretrained.load("spiral_v")
    x_T = torch.randn(32, *net.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    # from t = 900, not 999: at α(999) ≈ 5e-5 the cosine schedule's PF-ODE costs dopri5
    # minutes, and the grid search is the same
    ref = pf_ode_reference(net.model, net.schedule, "v", x_T, T0, 0.0, 1e-6)
    return net, x_T, ref


def _loss(net, ts, method, x_T, ref):
    return metrics.rmse(Sampler(net.schedule, ts, method, net.prediction)(net.model, x_T), ref)


def test_logits_round_trip_and_keep_the_ends():
    ts = np.array([999.0, 700.0, 300.0, 120.0, 0.0])
    z = logits_from_grid(ts)
    assert z.shape == (3,)
    np.testing.assert_allclose(grid_from_logits(z, 999.0, 0.0), ts, rtol=0, atol=1e-10)
    out = grid_from_logits(np.array([4.0, -4.0, 3.0]), 999.0, 0.0)
    assert out[0] == 999.0 and out[-1] == 0.0 and np.all(np.diff(out) < 0)


def test_a_poor_start_is_improved_and_never_made_worse(spiral):
    net, x_T, ref = spiral
    start = np.array([T0, 60.0, 40.0, 20.0, 10.0, 0.0])  # a poor grid: all steps but one near data
    ts, info = optimize_grid(
        net.model, net.schedule, 5, "dpmpp2m", prediction="v", x_T=x_T, reference=ref,
        start=start, max_evals=40, full_output=True,
    )  # fmt: skip
    check_grid(net.schedule, ts)
    assert ts.shape == (6,) and ts[0] == T0 and ts[-1] == 0.0 and np.all(np.diff(ts) < 0)
    before, after = _loss(net, start, "dpmpp2m", x_T, ref), _loss(net, ts, "dpmpp2m", x_T, ref)
    assert info["loss_start"] == pytest.approx(before, rel=1e-12)
    assert info["loss"] == pytest.approx(after, rel=1e-12)
    assert after < 0.8 * before, (before, after)
    assert info["sampler_runs"] <= 40 and info["model_calls"] == 5 * info["sampler_runs"]


def test_a_good_start_is_returned_when_nothing_beats_it(spiral):
    """With one evaluation allowed the search cannot move: the start comes back."""
    net, x_T, ref = spiral
    ts = optimize_grid(
        net.model, net.schedule, 4, "ddim", prediction="v", x_T=x_T, reference=ref, max_evals=1
    )
    np.testing.assert_array_equal(ts, grid(net.schedule, 4))


def test_several_start_kinds_begin_from_the_best(spiral):
    net, x_T, ref = spiral
    kinds = ("karras", "uniform")
    _, info = optimize_grid(
        net.model, net.schedule, 4, "dpmpp2m", prediction="v", x_T=x_T, reference=ref, start=kinds,
        t_start=T0, t_end=0.0, max_evals=2, full_output=True,
    )  # fmt: skip
    losses = {
        k: _loss(net, grid(net.schedule, 4, k, t_start=T0, t_end=0.0), "dpmpp2m", x_T, ref) for k in kinds
    }
    assert info["start"] == min(losses, key=losses.get)
    assert info["loss_start"] == pytest.approx(min(losses.values()), rel=1e-12)


def test_deterministic_for_a_seed_and_the_calls_are_counted():
    net = pretrained.load("spiral_v")
    calls = [0]

    def model(x, t):
        calls[0] += 1
        return net.model(x, t)

    kw = dict(prediction="v", shape=net.shape, batch=8, seed=5, max_evals=12, full_output=True, t_start=500.0)
    kw["reference_rtol"] = 1e-5
    a, info = optimize_grid(model, net.schedule, 4, "dpmpp2m", **kw)
    assert calls[0] == info["model_calls"] + info["reference_calls"] and info["reference_calls"] > 0
    b, _ = optimize_grid(net.model, net.schedule, 4, "dpmpp2m", **kw)
    np.testing.assert_array_equal(a, b)
    c, _ = optimize_grid(net.model, net.schedule, 4, "dpmpp2m", **{**kw, "seed": 6})
    assert not np.array_equal(a, c)


def test_runge_kutta_grids_count_stages(spiral):
    net, x_T, ref = spiral
    ts = optimize_grid(
        net.model, net.schedule, 6, "rhork2", prediction="v", x_T=x_T, reference=ref, max_evals=3
    )
    assert ts.shape == (4,)  # 3 steps of 2 calls


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        (dict(nfe=0), ValueError, "nfe must be a positive integer, got 0"),
        (dict(nfe=True), ValueError, "nfe must be a positive integer"),
        (dict(model=3), TypeError, "model must be callable"),
        (dict(schedule="vp"), TypeError, "schedule must be an expint.diffusion schedule"),
        (dict(max_evals=0), ValueError, "max_evals must be a positive integer"),
        (dict(shape=None), ValueError, "pass x_T .* or shape"),
        (dict(method="rhork2", nfe=5), ValueError, "nfe must be a multiple of 2, got 5"),
        (dict(method="nope"), ValueError, "nope"),
        (dict(t_end=-1.0, start="uniform"), ValueError, "σ = 0 at the grid's end: pass reference="),
        (dict(t_end=-1.0), ValueError, "power law in t and needs t ≥ 0"),  # the tempered start grid
        (dict(reference=torch.zeros(3, 2), x_T=torch.zeros(4, 2)), ValueError, "reference has shape"),
    ],
)
def test_bad_input_is_refused(kwargs, err, match):
    net = pretrained.load("spiral_v")
    args = dict(
        model=net.model, schedule=net.schedule, nfe=4, method="ddim", prediction="v", shape=(2,), batch=4
    )
    args.update(kwargs)
    with pytest.raises(err, match=match):
        optimize_grid(args.pop("model"), args.pop("schedule"), args.pop("nfe"), args.pop("method"), **args)
