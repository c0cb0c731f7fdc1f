"""Dense output: the continuous extension of each step, for fixed and adaptive runs."""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest
from _optional import needs_torch, torch
from hypothesis import given, settings
from hypothesis import strategies as st

import expint
from expint import problems

DENSE = [s for s in expint.schemes.catalog() if s.dense_order > 0]


def _reference(bp, times, t_end):
    """A fine fixed-step hochost4 run (2000 steps, error ~1e-13 here) with ``times``
    inserted into its grid: step points, no interpolation."""
    sol = expint.solve(bp.problem, bp.y0, (0.0, t_end), scheme="hochost4", n_steps=2000, t_eval=times)
    return sol.y


def test_dense_orders_of_the_catalogue():
    orders = {s.name: s.dense_order for s in expint.schemes.catalog()}
    assert orders["krogstad"] == orders["etdrk4"] == orders["hochost4"] == orders["krogstad43"] == 3
    assert orders["etd2rk"] == orders["etd3rk"] == 2 and orders["etd1"] == 1
    assert orders["lawson_rk4"] == orders["lawson_euler"] == 0
    assert orders["exprb32"] == 3 and orders["exprb43"] == 4  # local errors: tests/test_rosenbrock.py
    # the Adams interpolant integrated over part of the step: the scheme's own order
    assert [orders[f"etdab{q}"] for q in range(2, 6)] == [2, 3, 4, 5]
    assert orders["etdab43"] == 4 and orders["etdab54"] == 5


# three schemes in the fast set (one per dense order above 1, and an Adams scheme), the
# rest with the slow sweeps
FAST = {"etd2rk", "krogstad", "etdab5"}


@pytest.mark.parametrize(
    "scheme",
    [pytest.param(s, marks=() if s.name in FAST else pytest.mark.slow) for s in DENSE],
    ids=lambda s: s.name,
)
def test_off_grid_error_converges_at_the_stated_order(scheme):
    """Global error at points between steps: min(p, q + 1) for order p, dense order q.
    (The Adams schemes reach their asymptotic range on this problem from about 32 steps:
    their grid values themselves converge at order 2.6 from 16 to 64 steps.)"""
    bp = problems.nonstiff()
    probe = np.linspace(0.0371, 1.99, 23)  # never on a grid of 2/n
    ref = _reference(bp, probe, 2.0)
    errs, ns = [], (32, 64, 128, 256) if scheme.family == "etdab" else (8, 16, 32, 64)
    for n in ns:
        sol = expint.solve(
            bp.problem, bp.y0, (0.0, 2.0), scheme=scheme, n_steps=n, dense_output=True, t_eval=probe
        )
        assert sol.stats["steps"] == n  # t_eval did not touch the grid
        errs.append(np.max(np.abs(sol.y - ref)))
    want = min(scheme.order, scheme.dense_order + 1)
    observed = -np.polyfit(np.log(ns), np.log(errs), 1)[0]
    assert abs(observed - want) < 0.35, (want, observed, errs)


@pytest.mark.parametrize("name", ["etdab4", "etdab5"])
def test_adams_start_up_steps_interpolate_at_full_order(name):
    """Points inside the start-up steps (taken by a fourth-order Runge–Kutta starter whose
    own extension has local order 4) are interpolated through the first q values of N,
    so they converge at the Adams order too."""
    bp = problems.nonstiff()
    probe = np.array([0.011, 0.023, 0.037, 0.052])  # inside the first 4 steps for n ≤ 128
    ref = expint.solve(bp.problem, bp.y0, (0.0, 2.0), scheme="hochost4", n_steps=8000, t_eval=probe).y
    errs, ns = [], (32, 64, 128)
    for n in ns:
        sol = expint.solve(
            bp.problem, bp.y0, (0.0, 2.0), scheme=name, n_steps=n, dense_output=True, t_eval=probe
        )
        errs.append(np.max(np.abs(sol.y - ref)))
    observed = -np.polyfit(np.log(ns), np.log(errs), 1)[0]
    assert observed > expint.schemes.get(name).order - 0.3, (observed, errs)


def test_adams_run_shorter_than_its_start_up_uses_the_starters_extension():
    bp = problems.nonstiff()
    sol = expint.solve(bp.problem, bp.y0, (0.0, 0.3), scheme="etdab5", n_steps=3, dense_output=True)
    grid = expint.solve(bp.problem, bp.y0, (0.0, 0.3), scheme="etdab5", n_steps=3, t_eval=[0.1, 0.2, 0.3])
    np.testing.assert_allclose(sol.sol(grid.t), grid.y, rtol=1e-13, atol=1e-14)
    # its steps are the starter's (hochost4) steps, so are the values between them
    starter = expint.solve(bp.problem, bp.y0, (0.0, 0.3), scheme="hochost4", n_steps=3, dense_output=True)
    np.testing.assert_allclose(sol.sol([0.05, 0.15, 0.27]), starter.sol([0.05, 0.15, 0.27]), rtol=1e-14)


def test_a_long_first_step_keeps_the_starters_extension():
    """Start-up steps of very different lengths (0.8, then 0.04s) would put every node of
    the interpolant at the far end of the first step; its values there come from the
    starter's extension instead (2.7× closer to the solution at t = 0.4 here)."""
    bp = problems.nonstiff()
    ts = np.array([0.0, 0.8, 0.84, 0.88, 0.92, 1.0])
    sol = expint.solve(bp.problem, bp.y0, (0.0, 1.0), scheme="etdab4", ts=ts, dense_output=True)
    starter = expint.solve(bp.problem, bp.y0, (0.0, 1.0), scheme="hochost4", ts=ts, dense_output=True)
    np.testing.assert_allclose(sol.sol(0.4), starter.sol(0.4), rtol=1e-14)


def test_a_near_duplicate_time_is_refused_for_multistep_schemes():
    bp = problems.nonstiff()
    ts = [0.0, 0.25, 0.25 + 1e-17 * 4, 0.5, 0.75, 1.0]
    with pytest.raises(ValueError, match=r"ts has a step of .* multistep scheme 'etdab3'.*krogstad"):
        expint.solve(bp.problem, bp.y0, (0.0, 1.0), scheme="etdab3", ts=ts)
    assert expint.solve(bp.problem, bp.y0, (0.0, 1.0), scheme="krogstad", ts=ts).success


def test_theta_one_reproduces_the_step_and_sol_is_callable_on_arrays():
    bp = problems.nonstiff()
    sol = expint.solve(bp.problem, bp.y0, (0.0, 2.0), scheme="krogstad", n_steps=8, dense_output=True)
    grid = expint.solve(
        bp.problem, bp.y0, (0.0, 2.0), scheme="krogstad", n_steps=8, t_eval=np.linspace(0, 2, 9)
    )
    np.testing.assert_allclose(sol.sol(grid.t), grid.y, rtol=1e-13, atol=1e-14)
    assert sol.sol(0.5).shape == bp.y0.shape and sol.sol(np.array([0.1, 0.2])).shape == (2, *bp.y0.shape)
    with pytest.raises(ValueError, match="outside the integrated span"):
        sol.sol(2.5)
    # NaN was called "outside the integrated span", as if it were a time
    with pytest.raises(ValueError, match="t must be finite, got nan"):
        sol.sol(float("nan"))
    with pytest.raises(ValueError, match="t must be finite"):
        sol.sol(np.array([0.5, np.inf]))
    assert expint.solve(bp.problem, bp.y0, (0.0, 2.0), scheme="krogstad", n_steps=8).sol is None


@pytest.mark.parametrize(("name", "orders"), [("krogstad43", (3.0, 4.8)), ("etdab54", (3.8, 6.0))])
def test_adaptive_dense_output_follows_the_tolerance(name, orders):
    nls = problems.nls()
    probe = np.linspace(0.05, 3.0, 7)
    exact = np.stack([nls.exact(t) for t in probe])
    scale = np.max(np.abs(exact))
    errs, steps = [], []
    for rtol in (1e-4, 1e-6, 1e-8):
        sol = expint.solve(
            nls.problem,
            nls.y0,
            (0.0, 3.0),
            scheme=name,
            rtol=rtol,
            atol=rtol * 60,
            t_eval=probe,
            dense_output=True,
        )
        plain = expint.solve(nls.problem, nls.y0, (0.0, 3.0), scheme=name, rtol=rtol, atol=rtol * 60)
        assert sol.stats["steps"] == plain.stats["steps"]  # interpolated, not landed on
        err = np.max(np.abs(sol.y - exact)) / scale
        assert err < 10 * rtol, (rtol, err)
        errs.append(err)
        steps.append(sol.stats["steps"])
    order = -np.polyfit(np.log(steps), np.log(errs), 1)[0]
    assert orders[0] < order < orders[1], order


@pytest.mark.parametrize(("scheme", "steps"), [("krogstad", 40), ("etdab4", 80)])
def test_backwards_dense_output(scheme, steps):
    prob = expint.SemilinearProblem(expint.Diagonal([-1.0, -3.0]), lambda t, y: np.sin(y))
    fwd = expint.solve(prob, np.ones(2), (0.0, 1.0), scheme="hochost4", n_steps=400)
    back = expint.solve(
        prob, fwd.y[-1], (1.0, 0.0), scheme=scheme, n_steps=steps, dense_output=True, t_eval=[0.6, 0.0]
    )
    mid = expint.solve(prob, np.ones(2), (0.0, 0.6), scheme="hochost4", n_steps=400).y[-1]
    np.testing.assert_allclose(back.y[0], mid, atol=1e-6)
    np.testing.assert_allclose(back.y[-1], np.ones(2), atol=1e-6)


def test_a_failed_run_interpolates_only_up_to_where_it_stopped():
    prob = expint.SemilinearProblem(expint.Diagonal([0.0]), lambda t, y: y * y)  # blows up at t = 1
    with pytest.warns(RuntimeWarning):
        sol = expint.solve(
            prob,
            np.ones(1),
            (0.0, 2.0),
            scheme="krogstad43",
            rtol=1e-6,
            atol=1e-6,
            t_eval=[0.5, 1.5],
            dense_output=True,
        )
    assert not sol.success and sol.t[0] == 0.5 and abs(sol.y[0, 0] - 2.0) < 1e-4
    assert len(sol.t) == 2 and abs(sol.t[-1] - 1.0) < 1e-5


@pytest.mark.parametrize("batch_steps", ["shared", "independent"])
def test_a_run_that_stops_before_its_first_step_keeps_its_start(batch_steps):
    """``max_step`` below the step-size floor: the run stops at ``t0`` with nothing
    accepted; the result is the start alone, as without dense output, and ``sol(t0)``
    is ``y0`` (the fuzz test once found an error raised inside `solve` here)."""
    prob = expint.SemilinearProblem(expint.Diagonal([-1.0, -20.0]), lambda t, y: np.sin(y))
    y0 = np.array([[1.0, -0.5], [0.3, 0.2]])
    kwargs = {
        "scheme": "krogstad43",
        "rtol": 1e-6,
        "atol": 1e-6,
        "max_step": 1e-300,
        "batch_steps": batch_steps,
    }
    with pytest.warns(RuntimeWarning, match="step size fell"):
        plain = expint.solve(prob, y0, (0.0, 2.0), **kwargs)
    with pytest.warns(RuntimeWarning, match="step size fell"):
        sol = expint.solve(prob, y0, (0.0, 2.0), dense_output=True, **kwargs)
    assert not sol.success and list(sol.t) == list(plain.t) == [0.0]
    np.testing.assert_array_equal(sol.y, plain.y)
    np.testing.assert_array_equal(sol.sol(0.0), y0)
    with pytest.raises(ValueError, match="outside the integrated span"):
        sol.sol(0.5)


def test_schemes_without_a_continuous_extension_are_refused():
    bp = problems.nonstiff()
    for name in ("lawson_rk4", "lawson_euler"):
        with pytest.raises(ValueError, match=r"no continuous extension.*krogstad.*etdab5"):
            expint.solve(bp.problem, bp.y0, (0.0, 1.0), scheme=name, n_steps=4, dense_output=True)


@needs_torch
@pytest.mark.parametrize("scheme", ["krogstad", "etdab4"])
def test_dense_output_on_torch_and_matrix_free(scheme):
    bp = problems.nonstiff()
    ref = expint.solve(bp.problem, bp.y0, (0.0, 1.0), scheme=scheme, n_steps=10, dense_output=True)
    a = torch.from_numpy(bp.problem.linear.a)
    free = expint.SemilinearProblem(
        expint.MatrixFree(lambda v: v @ a.T, n=a.shape[0], tol=1e-13), bp.problem.nonlinear
    )
    sol = expint.solve(
        free, torch.from_numpy(bp.y0), (0.0, 1.0), scheme=scheme, n_steps=10, dense_output=True
    )
    assert isinstance(sol.sol(0.33), torch.Tensor)
    np.testing.assert_allclose(sol.sol(0.33).numpy(), ref.sol(0.33), rtol=1e-9, atol=1e-11)


@functools.cache
def _nonstiff_flow():
    """The non-stiff problem's solution on [0, 1], by scipy's DOP853 at rtol 1e-13 with
    its dense output (within 1e-12 of a 3200-step hochost4 run): independent of expint,
    and one solve for every example below instead of two 1600-step runs each."""
    from scipy.integrate import solve_ivp

    bp = problems.nonstiff()
    a, nonlinear = bp.problem.linear.a, bp.problem.nonlinear
    out = solve_ivp(
        lambda t, y: a @ y + nonlinear(t, y), (0.0, 1.0), bp.y0, method="DOP853", rtol=1e-13, atol=1e-15,
        dense_output=True,
    )  # fmt: skip
    return out.sol


@settings(max_examples=int(os.environ.get("EXPINT_FUZZ_EXAMPLES", "40")), deadline=None)
@given(
    scheme=st.sampled_from([s.name for s in DENSE]),
    n=st.integers(4, 16),
    jitter=st.lists(st.floats(-0.3, 0.3), min_size=15, max_size=15),
    probes=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6, unique=True),
    backwards=st.booleans(),
)
def test_dense_output_on_random_grids(scheme, n, jitter, probes, backwards):
    """Any scheme with an extension, unequal steps (a uniform grid with each inner point
    moved by up to 30% of a step), either direction: the interpolant reproduces the grid
    values at the grid's times, and between them stays within a few times the grid's own
    error (a mix-up of records, nodes or θ would not)."""
    bp = problems.nonstiff()
    flow = _nonstiff_flow()
    ts = np.linspace(0.0, 1.0, n + 1)
    ts[1:-1] += np.array(jitter[: n - 1]) / n
    span = (0.0, 1.0)
    y0 = bp.y0
    if backwards:
        y0 = flow(1.0)
        ts, span = ts[::-1].copy(), (1.0, 0.0)
    sol = expint.solve(bp.problem, y0, span, scheme=scheme, ts=ts, dense_output=True)
    grid = expint.solve(bp.problem, y0, span, scheme=scheme, ts=ts, t_eval=ts)
    np.testing.assert_allclose(sol.sol(ts), grid.y, rtol=1e-12, atol=1e-13)
    times = np.sort(np.array(probes))[:: -1 if backwards else 1]
    grid_error = np.max(np.abs(grid.y - flow(ts).T))
    err = np.max(np.abs(sol.sol(times) - flow(times).T))
    # the extension's own local error is O(h^{q+1}) for dense order q, below the grid's
    # error only where q ≥ p (Adams, Rosenbrock); its constant here is below 0.01
    h_max = float(np.max(np.abs(np.diff(ts))))
    assert err <= 5 * grid_error + h_max ** (expint.schemes.get(scheme).dense_order + 1), (err, grid_error)


@needs_torch
def test_dense_output_on_torch_cpu_matches_numpy():
    """The body `tests/test_gpu.py` runs on CUDA."""
    from _device_checks import dense_output_matches_numpy

    dense_output_matches_numpy(torch, "cpu")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scheme": "krogstad", "n_steps": 4},
        {"scheme": "etdab4", "n_steps": 8},
        {"scheme": "krogstad43", "rtol": 1e-6, "atol": 1e-8},
        {"scheme": "krogstad43", "rtol": 1e-6, "atol": 1e-8, "batch_steps": "independent"},
    ],
    ids=lambda k: "-".join(str(v) for v in k.values()),
)
def test_sol_is_not_changed_by_changing_y0_or_a_returned_state(kwargs):
    """The interpolant owns its states: a fixed-step run kept the caller's ``y0`` as its
    first step's start (changing ``y0`` in place afterwards moved ``sol(t)`` on that
    step), and ``sol(t)`` at a step's start returned the stored state itself."""
    prob = expint.SemilinearProblem(expint.Diagonal([-1.0, -2.0]), lambda t, y: np.sin(y))
    y0 = np.array([[1.0, 0.5], [0.2, -0.3]])
    sol = expint.solve(prob, y0, (0.0, 1.0), dense_output=True, **kwargs)
    probes = np.array([0.0, 0.1, 1.0])
    before = sol.sol(probes)
    y0 += 100.0
    for t in probes:
        sol.sol(t)[...] = -7.0
    np.testing.assert_array_equal(sol.sol(probes), before)


def test_sol_queries_are_checked():
    prob = expint.SemilinearProblem(expint.Diagonal([-1.0, -2.0]), lambda t, y: np.sin(y))
    sol = expint.solve(
        prob, np.array([1.0, 0.5]), (0.0, 1.0), scheme="krogstad", n_steps=4, dense_output=True
    )
    # an empty query gives no states (it raised IndexError)
    assert sol.sol(np.array([])).shape == (0, 2)
    for bad in (None, "0.5", [True], 0.5 + 0j):  # NaN or a silent cast before
        with pytest.raises(TypeError, match="t must be a real number"):
            sol.sol(bad)
    with pytest.raises(ValueError, match="t must be a float or a 1-D array"):
        sol.sol(np.zeros((1, 1)))
