"""Regression tests for the public helpers of `expint.parallel` and `expint.diffusion`
(seeds, noise, grids, metrics, the prior flow, grid optimisation) and `expint.time_grid`:
inputs that each gave a silent wrong result (a truncated seed, NaN noise, timesteps
outside the training range, an empty draw) or an error from numpy/torch naming no
argument (``OverflowError``, ``ZeroDivisionError``, torchdiffeq's ``AssertionError``).
Each case failed before its fix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import expint
from expint import parallel
from expint.diffusion import (
    IPNDM,
    RhoRK,
    Sampler,
    VPLinear,
    check_grid,
    diffusers_timesteps,
    fd,
    grid,
    metrics,
    optimize_grid,
    prior_flow,
    toy,
)

SCH = VPLinear()
MIX = toy.GaussianMixture(means=[[1.0, 0.0], [-1.0, 0.5]], stds=[0.3, 0.2], schedule=SCH)
SPEC = (MIX, SCH, "eps", (2,))
GAUSS = toy.Gaussian([0.5, -0.5], 0.3, SCH)
X = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
KEYS = parallel.item_seed(0, np.arange(3))


def _optimize(**kw):
    return optimize_grid(MIX, SCH, 4, "tab2", **({"shape": (2,), "batch": 8, "max_evals": 3} | kw))


BAD = {
    # seeds and counters: a float seed was truncated, a negative index overflowed in numpy
    "item_seed float seed": (lambda out: parallel.item_seed(1.5, 0), TypeError, "seed must be an integer"),
    "item_seed negative index": (
        lambda out: parallel.item_seed(0, -1),
        ValueError,
        "index must be non-negative",
    ),
    "item_seed float index": (lambda out: parallel.item_seed(0, 1.5), TypeError, "index must be"),
    "counter_normal negative size": (lambda out: parallel.counter_normal(KEYS, -1), ValueError, "size"),
    "counter_normal float keys": (lambda out: parallel.counter_normal(np.array([0.5]), 2), TypeError, "keys"),
    "steps_for_nfe zero": (lambda out: parallel.steps_for_nfe("ddim", 0), ValueError, "nfe"),
    "steps_for_nfe float": (lambda out: parallel.steps_for_nfe("tab2", 2.5), ValueError, "nfe"),
    # initial noise: NaN time gave NaN noise, a time outside the schedule was accepted
    "initial_noise nan time": (
        lambda out: parallel.initial_noise(SCH, float("nan"), (2,), 0, 0, 3),
        ValueError,
        "t_start",
    ),
    "initial_noise time outside": (
        lambda out: parallel.initial_noise(SCH, 5.0, (2,), 0, 0, 3),
        ValueError,
        "t_start",
    ),
    "initial_noise stop before start": (
        lambda out: parallel.initial_noise(SCH, 1.0, (2,), 0, 5, 3),
        ValueError,
        "stop",
    ),
    "initial_noise negative start": (
        lambda out: parallel.initial_noise(SCH, 1.0, (2,), 0, -1, 3),
        ValueError,
        "start",
    ),
    "initial_noise bad shape": (
        lambda out: parallel.initial_noise(SCH, 1.0, (-2,), 0, 0, 3),
        ValueError,
        "shape",
    ),
    "resolve_model number": (lambda out: parallel.resolve_model(42), TypeError, "model must be"),
    # sharded sampling: a misspelt device or a missing GPU surfaced as torch's
    # RuntimeError/AssertionError, a float seed was truncated, an int dtype blamed x_T
    "sample_sharded float seed": (
        lambda out: parallel.sample_sharded(SPEC, out, n=2, batch_size=2, nfe=3, seed=1.5, progress=False),
        TypeError,
        "seed",
    ),
    "sample_sharded unknown device": (
        lambda out: parallel.sample_sharded(
            SPEC, out, n=2, batch_size=2, nfe=3, device="gpu0", progress=False
        ),
        ValueError,
        "device 'gpu0'",
    ),
    "sample_sharded int dtype": (
        lambda out: parallel.sample_sharded(
            SPEC, out, n=2, batch_size=2, nfe=3, dtype=torch.int32, progress=False
        ),
        TypeError,
        "dtype",
    ),
    "sample_sharded numpy model output": (
        lambda out: parallel.sample_sharded(
            (lambda x, t: x.numpy(), SCH, "eps", (2,)), out, n=2, batch_size=2, nfe=3, progress=False
        ),
        TypeError,
        "torch tensor",
    ),
    "ensemble unknown scheme": (
        lambda out: parallel.ensemble_sharded(
            "allen_cahn", out, n=2, perturb=0.1, scheme="etd9", progress=False
        ),
        ValueError,
        "unknown scheme 'etd9'",
    ),
    "ensemble float seed": (
        lambda out: parallel.ensemble_sharded("allen_cahn", out, n=2, perturb=0.1, seed=0.5, progress=False),
        TypeError,
        "seed",
    ),
    "ensemble unknown device": (
        lambda out: parallel.ensemble_sharded(
            "allen_cahn", out, n=2, perturb=0.1, device="gpu0", progress=False
        ),
        ValueError,
        "device",
    ),
    # grid optimisation: batch 0 and NaN noise ended in torchdiffeq's AssertionError
    "optimize_grid batch 0": (lambda out: _optimize(batch=0), ValueError, "batch"),
    "optimize_grid nan x_T": (
        lambda out: _optimize(x_T=torch.full((3, 2), float("nan"))),
        ValueError,
        "x_T must be finite",
    ),
    "optimize_grid negative rtol": (lambda out: _optimize(reference_rtol=-1.0), ValueError, "reference_rtol"),
    "optimize_grid nan prior_mean": (
        lambda out: _optimize(prior_mean=float("nan")),
        ValueError,
        "prior_mean",
    ),
    "optimize_grid float seed": (lambda out: _optimize(seed=1.5), TypeError, "seed"),
    "optimize_grid numpy reference": (
        lambda out: _optimize(reference=np.zeros((8, 2))),
        TypeError,
        "reference",
    ),
    # the prior flow: times outside the schedule and a NaN mean were used as given
    "prior_flow t_from outside": (lambda out: prior_flow(SCH, X, 3.0, 0.5), ValueError, "t_from"),
    "prior_flow t_to outside": (lambda out: prior_flow(SCH, X, 1.0, 5.0), ValueError, "t_to"),
    "prior_flow t_to per sample": (lambda out: prior_flow(SCH, X, 1.0, [0.5, 0.4]), ValueError, "t_to"),
    "prior_flow nan mean": (lambda out: prior_flow(SCH, X, 1.0, 0.5, mean=float("nan")), ValueError, "mean"),
    "prior_flow mean shape": (
        lambda out: prior_flow(SCH, X, 1.0, 0.5, mean=torch.zeros(5)),
        ValueError,
        "mean",
    ),
    "prior_flow t_from text": (lambda out: prior_flow(SCH, X, "a", 0.5), TypeError, "t_from"),
    "Sampler nan prior_mean": (
        lambda out: Sampler(
            SCH, grid(SCH, 4, "uniform", t_start=0.9), "tab2", prior_from=1.0, prior_mean=float("nan")
        ),
        ValueError,
        "prior_mean",
    ),
    # metrics and grids
    "split_half_frechet 3 samples": (
        lambda out: metrics.split_half_frechet(np.zeros((3, 2))),
        ValueError,
        "at least 4 samples",
    ),
    "split_half_frechet float seed": (
        lambda out: metrics.split_half_frechet(np.zeros((6, 2)), seed=0.5),
        TypeError,
        "seed",
    ),
    # Fréchet distance of (mean, cov) statistics: a NaN mean gave NaN, a covariance with
    # a negative eigenvalue was clipped to a distance of 0, a non-square one was called
    # "different dimensions: (3,) and (3,)"
    "frechet nan mean": (
        lambda out: metrics.frechet_distance((np.full(3, np.nan), np.eye(3)), (np.zeros(3), np.eye(3))),
        ValueError,
        "a: the mean and cov must be finite",
    ),
    "frechet indefinite cov": (
        lambda out: metrics.frechet_distance((np.zeros(3), np.eye(3)), (np.zeros(3), -np.eye(3))),
        ValueError,
        "b: cov must be positive semi-definite",
    ),
    "frechet non-square cov": (
        lambda out: metrics.frechet_distance((np.zeros(3), np.ones((3, 2))), (np.zeros(3), np.eye(3))),
        ValueError,
        r"cov \(d, d\)",
    ),
    "diffusers_timesteps more steps than timesteps": (
        lambda out: diffusers_timesteps(10, 20, "leading"),
        ValueError,
        "n_steps = 20",
    ),
    "diffusers_timesteps zero steps": (
        lambda out: diffusers_timesteps(1000, 0, "leading"),
        ValueError,
        "n_steps",
    ),
    "diffusers_timesteps offset below 0": (
        lambda out: diffusers_timesteps(1000, 10, "leading", -5),
        ValueError,
        "steps_offset",
    ),
    "diffusers_timesteps offset past the end": (
        lambda out: diffusers_timesteps(1000, 10, "leading", 5000),
        ValueError,
        "steps_offset",
    ),
    "check_grid text": (lambda out: check_grid(SCH, "abc"), TypeError, "ts must be an array of times"),
    # method constructors: an unknown tableau was a KeyError, negative or NaN
    # safeguard thresholds were accepted
    "RhoRK unknown tableau": (lambda out: RhoRK("rk5", "mine"), ValueError, "unknown tableau 'rk5'"),
    "RhoRK negative max_stiffness": (
        lambda out: RhoRK("heun", "mine", max_stiffness=-1.0),
        ValueError,
        "max_stiffness",
    ),
    "IPNDM nan max_disagreement": (lambda out: IPNDM(float("nan")), ValueError, "max_disagreement"),
    # a callback that is not callable failed at the end of the first step
    "Sampler callback": (
        lambda out: Sampler(SCH, grid(SCH, 3, "uniform"), "tab2")(MIX, X, callback=3),
        TypeError,
        "callback must be callable",
    ),
    # Fréchet distance: batch_size 0 was range()'s "arg 3 must not be zero"
    "source_stats batch 0": (
        lambda out: fd.source_stats(np.zeros((4, 2)), batch_size=0),
        ValueError,
        "batch_size",
    ),
    "source_stats device": (
        lambda out: fd.source_stats(np.zeros((4, 2)), device="gpu0"),
        ValueError,
        "device 'gpu0'",
    ),
    # the toy models: times outside the schedule and NaN gave NaN or torchdiffeq's
    # AssertionError, a float t an AttributeError, n = 0 torch's multinomial error
    "Gaussian.exact time outside": (lambda out: GAUSS.exact(X, 5.0, 1e-3), ValueError, "outside the domain"),
    "Gaussian.exact nan time": (lambda out: GAUSS.exact(X, float("nan"), 1e-3), ValueError, "must be finite"),
    "Gaussian.exact wrong shape": (
        lambda out: GAUSS.exact(torch.zeros(3, 5), 1.0, 1e-3),
        ValueError,
        "x_T must",
    ),
    "reference time outside": (lambda out: MIX.reference(X, 5.0, 1e-3), ValueError, "outside the domain"),
    "reference negative rtol": (lambda out: MIX.reference(X, 1.0, 1e-3, rtol=-1.0), ValueError, "rtol"),
    "eps t of the wrong length": (
        lambda out: MIX.eps(X, torch.ones(2)),
        ValueError,
        r"t must have shape \(3,\)",
    ),
    "eps t text": (lambda out: MIX.eps(X, "a"), TypeError, "t must be a tensor"),
    "sample_data 0": (lambda out: MIX.sample_data(0), ValueError, "n must be at least 1"),
    "random float seed": (
        lambda out: toy.GaussianMixture.random(SCH, shape=(2,), seed=1.5),
        TypeError,
        "seed",
    ),
    "random no components": (
        lambda out: toy.GaussianMixture.random(SCH, shape=(2,), components=0),
        ValueError,
        "components",
    ),
    "time_grid nan end": (
        lambda out: expint.time_grid(0.0, float("nan"), n_steps=3),
        ValueError,
        r"t_span\[1\]",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_helper_input_gets_an_error_naming_it(case, tmp_path):
    call, exc, match = BAD[case]
    with pytest.raises(exc, match=match):
        call(tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before any shard was written


def test_a_missing_gpu_is_named_before_any_work(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA device"):
        parallel.sample_sharded(SPEC, tmp_path, n=2, batch_size=2, nfe=3, device="cuda", progress=False)


def test_sharded_sampling_takes_a_dtype_by_name(tmp_path):
    by_name = parallel.sample_sharded(
        SPEC, tmp_path / "a", n=2, batch_size=2, nfe=3, dtype="float64", progress=False
    )
    by_dtype = parallel.sample_sharded(
        SPEC, tmp_path / "b", n=2, batch_size=2, nfe=3, dtype=torch.float64, progress=False
    )
    assert by_name.n_items == by_dtype.n_items == 2
    np.testing.assert_array_equal(
        parallel.load_samples(tmp_path / "a"), parallel.load_samples(tmp_path / "b")
    )
    assert parallel.load_samples(tmp_path / "a").dtype == np.float64


def test_one_statistic_by_name_is_not_split_into_letters(tmp_path):
    parallel.ensemble_sharded(
        "allen_cahn", tmp_path, n=2, perturb=0.01, t_end=0.5, statistics="max", progress=False
    )
    with np.load(tmp_path / "stats.npz") as stats:
        assert set(stats.files) == {"x", "max"}
        np.testing.assert_array_equal(stats["max"], parallel.load_arrays(tmp_path)["final"].max(axis=0))


def test_toy_models_take_one_time_for_a_batch_and_equal_times():
    """``eps(x, 0.5)`` raised ``AttributeError`` ('float' has no 'to'); ``reference``
    from a time to itself raised torchdiffeq's ``AssertionError``."""
    x = X.double()
    torch.testing.assert_close(MIX.eps(x, 0.5), MIX.eps(x, torch.full((3,), 0.5, dtype=torch.float64)))
    torch.testing.assert_close(MIX.reference(x, 0.4, 0.4), x)
    torch.testing.assert_close(GAUSS.reference(x, 1.0, 1e-3), GAUSS.exact(x, 1.0, 1e-3), rtol=1e-8, atol=1e-8)


def test_item_seed_keeps_its_values_for_valid_input():
    """The checks must not change any key: runs resumed after the change read shards
    written before it.  Keys for numpy and Python integers, and a negative seed taken
    modulo 2⁶⁴, agree."""
    np.testing.assert_array_equal(
        parallel.item_seed(-1, np.arange(4)), parallel.item_seed(2**64 - 1, [0, 1, 2, 3])
    )
    np.testing.assert_array_equal(parallel.item_seed(np.int64(7), np.uint64(3)), parallel.item_seed(7, 3))
    assert parallel.counter_normal(parallel.item_seed(0, np.arange(0)), 3).shape == (0, 3)
