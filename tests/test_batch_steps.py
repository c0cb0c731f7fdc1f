"""Per-sample step sizes: ``solve(..., batch_steps="independent")``.

Each member of the batch must follow exactly the steps it would take alone (same
controller, same coefficients), while the batch shares the nonlinear evaluations.
"""

from __future__ import annotations

import numpy as np
import pytest
from _optional import needs_torch, torch

import expint
from expint import problems

KW = {"scheme": "krogstad43", "rtol": 1e-6, "atol": 1e-8}


def _ks_batch(n: int = 32):
    ks = problems.kuramoto_sivashinsky(n)
    amp = np.array([0.2, 1.0, 2.0])  # at N = 32 a larger amplitude is under-resolved and blows up
    return ks, amp[:, None] * ks.y0[None, :]


@pytest.mark.parametrize("norm", ["rms", "max"])
def test_each_member_takes_the_steps_it_would_take_alone(norm):
    ks, y0 = _ks_batch()
    t_eval = [0.0, 2.5, 5.0]
    kw = {**KW, "error_norm": norm}
    batch = expint.solve(ks.problem, y0, (0.0, 5.0), t_eval=t_eval, batch_steps="independent", **kw)
    assert batch.success and batch.y.shape == (3, *y0.shape)
    np.testing.assert_array_equal(batch.t, t_eval)
    alone = [expint.solve(ks.problem, y, (0.0, 5.0), t_eval=t_eval, **kw) for y in y0]
    assert batch.stats["steps_per_sample"] == [a.stats["steps"] for a in alone]
    assert batch.stats["rejected_per_sample"] == [a.stats["rejected_steps"] for a in alone]
    assert batch.stats["steps"] == max(a.stats["steps"] for a in alone)
    for k, a in enumerate(alone):
        np.testing.assert_allclose(batch.y[:, k], a.y, rtol=1e-13, atol=1e-13 * np.abs(a.y).max())
    # the members really differ: the large-amplitude one needs several times the steps
    steps = batch.stats["steps_per_sample"]
    assert steps[2] > 3 * steps[0]
    # the shared controller averages the error over the batch: its run differs
    shared = expint.solve(ks.problem, y0, (0.0, 5.0), **kw)
    assert shared.stats["steps"] not in steps


def test_leading_axes_are_flattened_and_restored():
    ks, y0 = _ks_batch()
    y4 = np.stack([y0, 0.5 * y0])  # shape (2, 3, n)
    sol = expint.solve(ks.problem, y4, (0.0, 1.0), batch_steps="independent", **KW)
    assert sol.y.shape == (2, 2, 3, y0.shape[-1])
    assert np.array(sol.stats["steps_per_sample"]).shape == (2, 3)
    alone = expint.solve(ks.problem, y4[1, 2], (0.0, 1.0), **KW)
    np.testing.assert_allclose(sol.y[-1, 1, 2], alone.y[-1], rtol=1e-13, atol=1e-13)


def _scalar_time_problem():
    """``y' = −(1 + t) y + cos(t) sin(y)``: ``t`` arrives as a ``(B, 1)`` array here."""
    lin = expint.ScalarTime(lambda t: -(1.0 + t), lambda s, t: -((t - s) + (t * t - s * s) / 2))
    return expint.SemilinearProblem(lin, lambda t, y: np.cos(t) * np.sin(y))


def test_time_dependent_scalar_linear_part_and_nonlinearity():
    prob = _scalar_time_problem()
    y0 = np.array([[0.1, -0.2], [2.0, 3.0], [-1.0, 0.5]])
    batch = expint.solve(prob, y0, (0.0, 2.0), batch_steps="independent", **KW)
    for k in range(3):
        alone = expint.solve(prob, y0[k], (0.0, 2.0), **KW)
        np.testing.assert_allclose(batch.y[-1, k], alone.y[-1], rtol=1e-12, atol=1e-14)
        assert batch.stats["steps_per_sample"][k] == alone.stats["steps"]


def test_backwards_in_time():
    ks, y0 = _ks_batch()
    fwd = expint.solve(
        ks.problem, y0, (0.0, 0.5), batch_steps="independent", scheme="hochost43", rtol=1e-9, atol=1e-11
    )
    back = expint.solve(
        ks.problem,
        fwd.y[-1],
        (0.5, 0.0),
        batch_steps="independent",
        scheme="hochost43",
        rtol=1e-9,
        atol=1e-11,
    )
    alone = expint.solve(ks.problem, fwd.y[-1][1], (0.5, 0.0), scheme="hochost43", rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(back.y[-1][1], alone.y[-1], rtol=1e-12, atol=1e-12)


@needs_torch
def test_torch_tensors_match_numpy():
    ks, y0 = _ks_batch()
    a = expint.solve(ks.problem, y0, (0.0, 2.0), batch_steps="independent", **KW)
    b = expint.solve(ks.problem, torch.from_numpy(y0), (0.0, 2.0), batch_steps="independent", **KW)
    assert isinstance(b.y, torch.Tensor)
    np.testing.assert_allclose(b.y.numpy(), a.y, rtol=1e-12, atol=1e-12)
    assert b.stats["steps_per_sample"] == a.stats["steps_per_sample"]


_BLOWUP_Y0 = np.array([[0.5], [2.0]])  # for y' = y², y = y0/(1 − y0 t): the second member blows up at t = 0.5


KW_BLOWUP = {"scheme": "krogstad43", "rtol": 1e-6, "atol": 1e-6}


def _blowup_run(t_eval, **extra):
    prob = expint.SemilinearProblem(expint.Diagonal([0.0]), lambda t, y: y * y)
    with pytest.warns(RuntimeWarning, match="sample 1"):
        return expint.solve(
            prob, _BLOWUP_Y0, (0.0, 1.0), t_eval=t_eval, batch_steps="independent", **KW_BLOWUP, **extra
        )


def test_a_member_that_blows_up_ends_the_run_with_everything_kept():
    y0 = _BLOWUP_Y0
    sol = _blowup_run([0.25, 1.0])
    assert not sol.success and "sample 1" in sol.message
    t_reached = sol.stats["t_reached"]
    # the numerical solution blows up where its local error lets it (here 1.6e-8 late)
    assert 0.49 < t_reached[1] < 0.5 + 1e-6 and t_reached[0] == pytest.approx(1.0)
    assert sol.y.shape[0] == 2 and sol.t[0] == 0.25  # the save point every member reached, then
    np.testing.assert_allclose(sol.y[0, :, 0], 1 / (1 / y0[:, 0] - 0.25), rtol=1e-5)  # where each stopped
    np.testing.assert_allclose(sol.y[-1, 0, 0], 1 / (1 / 0.5 - 1.0), rtol=1e-5)  # member 0 finished


def test_dense_output_of_each_member_is_its_own_runs():
    """With per-sample steps each member's interpolant is built on its own steps: it
    equals the dense output of that member's run alone, at any time, for the batch's
    shape (leading axes kept)."""
    ks, y0 = _ks_batch()
    y4 = np.stack([y0, 0.5 * y0])  # (2, 3, n)
    t_eval = np.linspace(0.0, 3.0, 7)
    batch = expint.solve(
        ks.problem, y4, (0.0, 3.0), t_eval=t_eval, batch_steps="independent", dense_output=True, **KW
    )
    assert batch.y.shape == (7, 2, 3, y0.shape[-1]) and batch.sol(1.234).shape == y4.shape
    probes = np.array([0.1, 1.234, 2.9])
    assert batch.sol(probes).shape == (3, *y4.shape)
    for i, j in ((0, 0), (1, 2)):
        alone = expint.solve(ks.problem, y4[i, j], (0.0, 3.0), dense_output=True, **KW)
        scale = np.abs(alone.y).max()
        np.testing.assert_allclose(
            batch.sol(probes)[:, i, j], alone.sol(probes), rtol=1e-12, atol=1e-13 * scale
        )
        np.testing.assert_allclose(batch.y[:, i, j], alone.sol(t_eval), rtol=1e-12, atol=1e-13 * scale)
    # the interpolant did not change the steps
    plain = expint.solve(ks.problem, y4, (0.0, 3.0), batch_steps="independent", **KW)
    assert batch.stats["steps_per_sample"] == plain.stats["steps_per_sample"]
    with pytest.raises(ValueError, match="outside the integrated span"):
        batch.sol(3.5)


@needs_torch
def test_dense_output_of_a_torch_batch_matches_numpy():
    ks, y0 = _ks_batch()
    kw = {**KW, "batch_steps": "independent", "dense_output": True}
    a = expint.solve(ks.problem, y0, (0.0, 2.0), **kw)
    b = expint.solve(ks.problem, torch.from_numpy(y0), (0.0, 2.0), **kw)
    got = b.sol(torch.tensor([0.3, 1.7], dtype=torch.float64))
    assert isinstance(got, torch.Tensor) and got.shape == (2, *y0.shape)
    np.testing.assert_allclose(got.numpy(), a.sol(np.array([0.3, 1.7])), rtol=1e-12, atol=1e-12)


def test_dense_output_of_a_failed_batch_ends_where_every_member_got():
    y0 = _BLOWUP_Y0
    sol = _blowup_run([0.25, 0.75], dense_output=True)
    assert not sol.success and sol.t[0] == 0.25 and len(sol.t) == 2 and 0.49 < sol.t[-1] < 0.5 + 1e-6
    np.testing.assert_allclose(sol.y[0, :, 0], 1 / (1 / y0[:, 0] - 0.25), rtol=1e-5)
    np.testing.assert_allclose(sol.sol(0.4)[:, 0], 1 / (1 / y0[:, 0] - 0.4), rtol=1e-4)
    with pytest.raises(ValueError, match="outside the integrated span"):
        sol.sol(0.75)  # member 0 got there, member 1 did not


def test_nonlinearity_must_act_row_by_row():
    weights = np.array([[1.0], [30.0], [2.0]])
    prob = expint.SemilinearProblem(expint.Diagonal(-np.linspace(1, 20, 4)), lambda t, y: weights * np.sin(y))
    with pytest.raises(ValueError, match="row by row"):
        expint.solve(prob, np.ones((3, 4)), (0.0, 3.0), batch_steps="independent", **KW)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"batch_steps": "per-sample"}, ValueError, "batch_steps must be"),
        (
            {"batch_steps": "independent", "scheme": "krogstad", "n_steps": 4, "rtol": None, "atol": None},
            ValueError,
            "adaptive run",
        ),
    ],
)
def test_bad_batch_steps_input(kwargs, exc, match):
    ks, y0 = _ks_batch()
    args = {**KW, **kwargs}
    args = {k: v for k, v in args.items() if v is not None}
    with pytest.raises(exc, match=match):
        expint.solve(ks.problem, y0, (0.0, 1.0), **args)


def _allen_cahn_batch():
    ac = problems.allen_cahn()
    return ac, np.stack([ac.y0, 0.5 * ac.y0, -0.8 * ac.y0])


@pytest.mark.parametrize(
    ("make", "scheme"),
    [
        (_allen_cahn_batch, "krogstad43"),  # a Dense (Chebyshev) linear part
        (_allen_cahn_batch, "whalen53"),
        (_ks_batch, "etdab43"),  # an Adams pair: one history per member
        (_ks_batch, "etdab54"),
    ],
)
@pytest.mark.parametrize("dense_output", [False, True])
def test_other_linear_parts_and_the_adams_pairs_run_member_by_member(make, scheme, dense_output):
    """Where the batch cannot advance in one step (matrix coefficients, a history per
    member), per-sample steps run the members one after another: each member's result
    is its run alone, with the per-sample stats.  (To rounding, not bit for bit:
    coefficients cached by an earlier run — the first member's — can differ in the last
    bit from the same coefficients computed afresh, e.g. a φ_k evaluated together with
    higher orders; measured differences are ~1e-16 relative.)"""
    bp, y0 = make()
    opts = {"scheme": scheme, "rtol": 1e-6, "atol": 1e-8, "t_eval": [0.5, 1.5], "dense_output": dense_output}
    sol = expint.solve(bp.problem, y0, (0.0, 1.5), batch_steps="independent", **opts)
    assert sol.success and sol.y.shape == (2, *y0.shape)
    steps = []
    for b in range(len(y0)):
        alone = expint.solve(bp.problem, y0[b], (0.0, 1.5), **opts)
        scale = np.abs(alone.y).max()
        np.testing.assert_allclose(sol.y[:, b], alone.y, rtol=1e-12, atol=1e-14 * scale)
        steps.append(alone.stats["steps"])
    assert sol.stats["steps_per_sample"] == steps and len(set(steps)) > 1


def test_independent_steps_need_a_batch():
    ks, y0 = _ks_batch()
    with pytest.raises(ValueError, match=r"y0 of shape \(B, n\)"):
        expint.solve(ks.problem, y0[0], (0.0, 1.0), batch_steps="independent", **KW)
