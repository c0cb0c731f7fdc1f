"""Adaptive runs on a large `Dense` linear part step in its eigenbasis
(`expint._eigenbasis`).  The change of coordinates must change only the cost: every
result is compared with the same run kept in the original coordinates (the threshold
raised out of reach), which takes the same steps and gives the same states to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
from _optional import needs_torch, torch

import expint
import expint._eigenbasis as eigenbasis
from expint import problems

N = 40  # Chebyshev intervals: 39 unknowns, above EIGENBASIS_MIN_N
KW = {"rtol": 1e-6, "atol": 1e-7}


def _both(make_problem, y0, t_span=(0.0, 5.0), **kw):
    """``(run in the eigenbasis, run in the original coordinates, basis used)``; each on
    a fresh problem, so neither run sees the other's cached coefficients."""
    prob = make_problem()
    fast = expint.solve(prob, y0, t_span, **kw)
    used = prob.linear._eigenbasis is not None
    keep = eigenbasis.EIGENBASIS_MIN_N
    eigenbasis.EIGENBASIS_MIN_N = 10**9
    try:
        plain = expint.solve(make_problem(), y0, t_span, **kw)
    finally:
        eigenbasis.EIGENBASIS_MIN_N = keep
    return fast, plain, used


def _allen_cahn():
    return problems.allen_cahn(N).problem


def _assert_same_run(fast, plain, rtol=1e-10):
    assert fast.success == plain.success
    assert fast.stats["steps"] == plain.stats["steps"]
    assert fast.stats["rejected_steps"] == plain.stats["rejected_steps"]
    assert fast.stats["nfev"] == plain.stats["nfev"]
    np.testing.assert_array_equal(fast.t, plain.t)
    scale = float(np.max(np.abs(np.asarray(plain.y))))
    np.testing.assert_allclose(np.asarray(fast.y), np.asarray(plain.y), rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("scheme", ["krogstad43", "hochost43", "whalen53", "etdab43", "etdab54"])
def test_adaptive_pairs_step_in_the_eigenbasis_and_match_the_original_coordinates(scheme):
    y0 = problems.allen_cahn(N).y0
    fast, plain, used = _both(_allen_cahn, y0, t_eval=[0.0, 1.0, 2.5, 5.0], scheme=scheme, **KW)
    assert used
    _assert_same_run(fast, plain)
    assert fast.stats["steps"] > 20  # the controller had work to do


def test_no_matrix_coefficients_are_formed_in_the_eigenbasis():
    """What the change buys: the `Dense` operator evaluates no φ-coefficient matrices;
    the φ-values are taken on its eigenvalues (`stats["phi_evaluations"]` counts those)."""
    prob = _allen_cahn()
    sol = expint.solve(prob, problems.allen_cahn(N).y0, (0.0, 5.0), scheme="whalen53", **KW)
    assert prob.linear.phi_evaluations == 0
    assert sol.stats["phi_evaluations"] > 0


def test_the_error_norm_stays_in_the_original_coordinates():
    """Per-component tolerances mean components of ``y``: a run whose ``atol`` differs
    by component takes the same steps as in the original coordinates (measured in ``z``
    the norm would weigh mixtures of components and choose other steps)."""
    y0 = problems.allen_cahn(N).y0
    atol = np.geomspace(1e-10, 1e-4, y0.shape[0])
    fast, plain, used = _both(_allen_cahn, y0, scheme="krogstad43", rtol=1e-6, atol=atol)
    assert used
    _assert_same_run(fast, plain)
    uniform, _, _ = _both(_allen_cahn, y0, scheme="krogstad43", rtol=1e-6, atol=1e-7)
    assert uniform.stats["steps"] != fast.stats["steps"]  # the tolerance vector mattered


def test_dense_output_and_events_in_the_original_coordinates():
    y0 = problems.allen_cahn(N).y0
    mid = y0.shape[0] // 3
    end = expint.solve(_allen_cahn(), y0, (0.0, 5.0), scheme="krogstad", n_steps=50).y[-1]
    level = 0.5 * (y0[mid] + end[mid])  # crossed on the way (a monotone relaxation there)

    def crossing(t, y):
        return y[mid] - level

    kw = {"scheme": "whalen53", "dense_output": True, "events": crossing, **KW}
    fast, plain, used = _both(_allen_cahn, y0, **kw)
    assert used and fast.t_events[0].size >= 1
    np.testing.assert_allclose(fast.t_events[0], plain.t_events[0], rtol=1e-10)
    np.testing.assert_allclose(fast.y_events[0], plain.y_events[0], rtol=1e-9, atol=1e-10)
    ts = np.linspace(0.0, 5.0, 37)
    np.testing.assert_allclose(fast.sol(ts), plain.sol(ts), rtol=1e-9, atol=1e-10)


def test_a_batch_with_shared_steps():
    y0 = problems.allen_cahn(N).y0
    batch = np.stack([y0, 0.5 * y0, -y0])
    fast, plain, used = _both(_allen_cahn, batch, scheme="krogstad43", **KW)
    assert used and fast.y.shape == (2, 3, y0.shape[0])
    _assert_same_run(fast, plain)


def test_a_complex_operator_and_state():
    """A Schrödinger-type ``A = i·ε D²`` (complex eigenvectors are fine for a complex
    state) with a cubic nonlinearity."""
    a = 1j * problems.allen_cahn(N).problem.linear.a

    def make():
        return expint.SemilinearProblem(expint.Dense(a), lambda t, y: 1j * np.abs(y) ** 2 * y)

    x = np.cos(np.pi * np.arange(1, N) / N)
    y0 = np.exp(-10 * x**2) * (1 + 0.5j)
    fast, plain, used = _both(make, y0, t_span=(0.0, 2.0), scheme="krogstad43", **KW)
    assert used
    _assert_same_run(fast, plain)


@needs_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_states(dtype):
    y0 = problems.allen_cahn(N).y0
    ref = expint.solve(_allen_cahn(), y0, (0.0, 5.0), scheme="krogstad43", **KW)
    tdtype = getattr(torch, dtype)
    kw = {"rtol": 1e-4, "atol": 1e-5} if dtype == "float32" else KW
    prob = _allen_cahn()
    got = expint.solve(prob, torch.as_tensor(y0, dtype=tdtype), (0.0, 5.0), scheme="krogstad43", **kw)
    assert prob.linear._eigenbasis is not None
    assert got.y.dtype == tdtype
    if dtype == "float64":
        np.testing.assert_allclose(got.y.numpy(), ref.y, rtol=1e-10, atol=1e-12)
    else:  # its own tolerance: within 10× of rtol of the float64 run
        err = np.abs(got.y[-1].numpy() - ref.y[-1]).max() / np.abs(ref.y[-1]).max()
        assert err < 1e-3


def test_a_run_that_blows_up_ends_where_it_would_in_the_original_coordinates():
    a = problems.allen_cahn(N).problem.linear.a

    def make():
        return expint.SemilinearProblem(expint.Dense(a), lambda t, y: y * y)

    y0 = 3.0 * np.ones(N - 1)
    t_eval = [0.0, 0.1, 0.2, 2.0]  # blows up near t = 1/3
    with pytest.warns(RuntimeWarning, match="step size"):
        fast, plain, used = _both(make, y0, t_span=(0.0, 2.0), t_eval=t_eval, scheme="krogstad43", **KW)
    assert used and not fast.success
    # before the blow-up the two runs agree to rounding; near it the problem amplifies
    # rounding without bound (the step counts to the floor differ by a few, 810 against
    # 812 here), so of the end only where each stopped is compared
    np.testing.assert_array_equal(fast.t[:3], plain.t[:3])
    assert fast.t[-1] == pytest.approx(plain.t[-1], rel=1e-9) and fast.t[-1] < 0.4
    assert np.all(np.isfinite(fast.y[-1]))
    np.testing.assert_allclose(fast.y[1:3], plain.y[1:3], rtol=1e-9)


def test_where_the_steps_stay_in_the_original_coordinates():
    small = problems.allen_cahn(20)
    expint.solve(small.problem, small.y0, (0.0, 1.0), scheme="krogstad43", **KW)
    assert small.problem.linear._eigenbasis is None  # too small to pay
    fixed = problems.allen_cahn(N)
    expint.solve(fixed.problem, fixed.y0, (0.0, 1.0), scheme="krogstad", n_steps=10, t_eval=[0.0, 0.35, 1.0])
    assert fixed.problem.linear._eigenbasis is None  # three step sizes: the matrices formed once each
    rb = problems.allen_cahn(N)
    expint.solve(rb.problem, rb.y0, (0.0, 1.0), scheme="exprb43", **KW)
    assert rb.problem.linear._eigenbasis is None  # Rosenbrock steps act with L + J
    # a real operator with complex eigenvalues (normal: a damped rotation, κ₂(V) = 1):
    # complex arithmetic would cost what the real matrices save
    rng = np.random.default_rng(3)
    skew = rng.standard_normal((N, N))
    rotation = expint.Dense(skew - skew.T - 2.0 * np.eye(N))
    _solve_briefly(rotation)
    assert rotation.phi_method == "eig" and np.iscomplexobj(rotation._spectral_form()[1])
    assert rotation._eigenbasis is None
    # no well-conditioned decomposition at all (a Jordan-like block): matrices as before
    jordan = expint.Dense(-np.eye(N) + 5.0 * np.eye(N, k=1))
    _solve_briefly(jordan)
    assert jordan.phi_method == "expm" and jordan._eigenbasis is None
    # a complex state on the rotation is fine
    _solve_briefly(rotation, complex_state=True)
    assert rotation._eigenbasis is not None


def _solve_briefly(op, complex_state=False):
    y0 = np.linspace(-1.0, 1.0, op.n) * (1 + 1j if complex_state else 1.0)
    prob = expint.SemilinearProblem(op, lambda t, y: -0.1 * y**3)
    sol = expint.solve(prob, y0, (0.0, 0.2), scheme="krogstad43", **KW)
    assert sol.success


@pytest.mark.parametrize("scheme", ["krogstad", "etdab5"])
def test_fixed_steps_on_an_irregular_grid_or_with_dense_output(scheme):
    """A fixed-step run steps in the eigenbasis where it would form many sets of
    matrices: a grid of many step sizes, or a dense output (each queried θ a set)."""
    y0 = problems.allen_cahn(N).y0
    rng = np.random.default_rng(5)
    ts = np.concatenate([[0.0], np.cumsum(rng.uniform(0.5, 1.5, 80))])
    ts *= 5.0 / ts[-1]
    fast, plain, used = _both(_allen_cahn, y0, scheme=scheme, ts=ts, t_eval=[0.0, 2.0, 5.0])
    assert used
    _assert_same_run(fast, plain)
    # a uniform grid split by many save times off it: as many new step sizes
    t_eval = np.sort(rng.uniform(0.0, 5.0, 30))
    fast, plain, used = _both(_allen_cahn, y0, scheme=scheme, n_steps=60, t_eval=t_eval)
    assert used
    _assert_same_run(fast, plain)
    fast, plain, used = _both(_allen_cahn, y0, scheme=scheme, n_steps=100, dense_output=True)
    assert used
    _assert_same_run(fast, plain)
    times = np.linspace(0.0, 5.0, 23)
    np.testing.assert_allclose(fast.sol(times), plain.sol(times), rtol=1e-10, atol=1e-12)


def test_a_dense_output_query_evaluates_its_node_once():
    """The continuous extension's weights at θ are φ_0…φ_3 of θhL: one evaluation of
    the node per query (asked term by term, each higher index evaluated it again)."""
    ks = problems.kuramoto_sivashinsky(32)
    sol = expint.solve(ks.problem, ks.y0, (0.0, 1.0), scheme="krogstad", n_steps=8, dense_output=True)
    before = ks.problem.linear.phi_evaluations
    times = np.linspace(0.01, 0.99, 10)  # never on a step's end (θ = 1 is the state itself)
    sol.sol(times)
    assert ks.problem.linear.phi_evaluations - before == len(times)


@pytest.mark.parametrize("scheme", ["krogstad43", "whalen53"])
@pytest.mark.parametrize("dense", [False, True])
def test_per_sample_steps_advance_the_batch_together(scheme, dense):
    """With ``batch_steps="independent"`` a batch on a large `Dense` part advances in
    one step per round, in the eigenbasis, as on a `Diagonal` part (before: member by
    member): ``N`` is called on the whole batch, and each member takes the steps it
    takes alone (``krogstad43`` adds its quadrature term from each member's history)."""
    y0 = problems.allen_cahn(N).y0
    batch = np.stack([y0, 0.3 * y0, -1.5 * y0])
    calls = []

    def make():
        base = problems.allen_cahn(N).problem

        def nonlinear(t, y):
            calls.append(y.shape)
            return base.nonlinear(t, y)

        return expint.SemilinearProblem(base.linear, nonlinear)

    kw = {"scheme": scheme, "t_eval": [0.0, 2.0, 5.0], "dense_output": dense, **KW}
    if dense:
        kw.pop("t_eval")
    sol = expint.solve(make(), batch, (0.0, 5.0), batch_steps="independent", **kw)
    assert any(shape[0] == 3 for shape in calls if len(shape) == 2)  # the batch together
    alone = [expint.solve(make(), y, (0.0, 5.0), **kw) for y in batch]
    assert sol.stats["steps_per_sample"] == [a.stats["steps"] for a in alone]
    assert len(set(sol.stats["steps_per_sample"])) > 1  # the members differ
    for b, a in enumerate(alone):
        scale = np.abs(a.y).max()
        if dense:
            times = np.linspace(0.0, 5.0, 13)
            np.testing.assert_allclose(sol.sol(times)[:, b], a.sol(times), rtol=1e-10, atol=1e-12 * scale)
        else:
            np.testing.assert_allclose(sol.y[:, b], a.y, rtol=1e-10, atol=1e-12 * scale)
