"""solve(): exactness, backends, batching, operator kinds, saving and input errors."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import polyforcing
import pytest
import scipy.sparse as sp
from _optional import needs_torch, torch

import expint
from expint import problems

# every scheme but the exponential Rosenbrock pairs (Krylov on L + J, one state at a time:
# tests/test_rosenbrock.py)
SCHEMES = [s.name for s in expint.schemes.catalog() if s.family != "exprb"]
_CONSTANTS_RNG = np.random.default_rng(11)
D = -np.logspace(-1, 3, 12)  # stiff diagonal
Q, _ = np.linalg.qr(_CONSTANTS_RNG.standard_normal((12, 12)))
A = Q @ np.diag(D) @ Q.T  # same spectrum, dense and non-diagonal
Y0 = _CONSTANTS_RNG.standard_normal(12)


def _zero(t, y):
    return y * 0


@pytest.mark.parametrize("scheme", SCHEMES)
def test_zero_nonlinearity_reproduces_the_exponential(scheme):
    prob = expint.SemilinearProblem(expint.Dense(A), _zero)
    sol = expint.solve(prob, Y0, (0.0, 0.7), scheme=scheme, n_steps=7)
    exact = expint.phi_matrix(0, 0.7 * A) @ Y0
    assert np.linalg.norm(sol.y[-1] - exact) <= 1e-13 * np.linalg.norm(exact) + 1e-15 * np.linalg.norm(Y0)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_constant_nonlinearity(scheme, rng):
    """ETD schemes are exact for constant N; Lawson schemes are not."""
    g = rng.standard_normal(12)
    prob = expint.SemilinearProblem(expint.Diagonal(D), lambda t, y: y * 0 + g)
    sol = expint.solve(prob, Y0, (0.0, 1.0), scheme=scheme, n_steps=5)
    exact = expint.phi(0, D) * Y0 + expint.phi(1, D) * g  # e^{L} y0 + φ_1(L) g
    err = np.linalg.norm(sol.y[-1] - exact) / np.linalg.norm(exact)
    if scheme.startswith("lawson"):
        assert err > 1e-3
    else:
        assert err <= 1e-13


@pytest.mark.parametrize("scheme", SCHEMES)
def test_operator_kinds_agree(scheme):
    """Diagonal, Dense (rotated), MatrixFree (Krylov) and a constant ScalarTime give the
    same solution of the same problem."""

    def nonlinear(t, y):
        return np.cos(y) * 0.3 + math.sin(t) * 0.1

    sols = {}
    prob_d = expint.SemilinearProblem(expint.Diagonal(D), nonlinear)
    sols["diag"] = expint.solve(prob_d, Y0, (0, 0.5), scheme=scheme, n_steps=8).y[-1]

    def rot_nl(t, y):
        return nonlinear(t, y @ Q) @ Q.T  # the same problem in rotated coordinates

    prob_dense = expint.SemilinearProblem(expint.Dense(A), rot_nl)
    sols["dense"] = expint.solve(prob_dense, Q @ Y0, (0, 0.5), scheme=scheme, n_steps=8).y[-1] @ Q
    prob_mf = expint.SemilinearProblem(expint.MatrixFree(lambda v: A @ v, 12, tol=1e-12), rot_nl)
    sols["matrixfree"] = expint.solve(prob_mf, Q @ Y0, (0, 0.5), scheme=scheme, n_steps=8).y[-1] @ Q
    np.testing.assert_allclose(sols["dense"], sols["diag"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sols["matrixfree"], sols["diag"], rtol=1e-8, atol=1e-10)
    rate = -2.5
    st = expint.ScalarTime(lambda t: rate, lambda s, t: rate * (t - np.asarray(s)), n=12)
    sd = expint.Diagonal(np.full(12, rate))
    y_st = expint.solve(expint.SemilinearProblem(st, nonlinear), Y0, (0, 0.5), scheme=scheme, n_steps=8).y[-1]
    y_sd = expint.solve(expint.SemilinearProblem(sd, nonlinear), Y0, (0, 0.5), scheme=scheme, n_steps=8).y[-1]
    np.testing.assert_allclose(y_st, y_sd, rtol=1e-13, atol=1e-14)


@needs_torch
@pytest.mark.parametrize("scheme", ["etdrk4", "hochost4", "etdab3", "lawson_rk4"])
def test_numpy_and_torch_agree_and_batch_equals_separate(scheme):
    bp = problems.kuramoto_sivashinsky(64)
    base = np.fft.ifft(bp.y0).real
    batch = np.stack([np.fft.fft(base * (1 + 0.01 * i)) for i in range(64)])
    sol_np = expint.solve(bp.problem, batch, (0, 2.0), scheme=scheme, dt=0.25)
    sol_t = expint.solve(bp.problem, torch.from_numpy(batch), (0, 2.0), scheme=scheme, dt=0.25)
    assert isinstance(sol_t.y, torch.Tensor) and sol_t.y.dtype == torch.complex128
    assert sol_np.y.shape == (2, 64, 64)
    np.testing.assert_allclose(sol_t.y.numpy(), sol_np.y, rtol=1e-12, atol=1e-12 * np.abs(sol_np.y).max())
    for i in (0, 17, 63):
        single = expint.solve(bp.problem, batch[i], (0, 2.0), scheme=scheme, dt=0.25).y[-1]
        np.testing.assert_allclose(sol_np.y[-1, i], single, rtol=1e-13, atol=1e-13 * np.abs(single).max())


@pytest.mark.parametrize("scheme", ["krogstad", "lawson_rk4", "etd1", "etdab4", "whalen53"])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_fused_dense_stages_equal_term_by_term(scheme, backend, monkeypatch):
    """Small `Dense` operators combine a stage's terms in one product (`Dense.fuse`);
    the result is the term-by-term sum's, batched and complex states included."""
    if backend == "torch":
        pytest.importorskip("torch")
    a = (A + 0.3 * np.triu(np.ones((12, 12)), 1)) * 0.5  # non-normal: the "eig" φ path
    base = Y0 * 0.5 + 0.2j * np.roll(Y0, 3)
    y0 = np.stack([base, 0.5 * base, base[::-1]])

    def nonlinear(t, y):
        return 1j * y * (y * y.conj()) + 0.1 * math.cos(t)

    def run():
        x0 = torch.from_numpy(y0) if backend == "torch" else y0
        prob = expint.SemilinearProblem(expint.Dense(a), nonlinear)
        kw = {"rtol": 1e-6, "atol": 1e-9} if scheme == "whalen53" else {"n_steps": 12}
        out = expint.solve(prob, x0, (0.0, 0.6), scheme=scheme, **kw).y[-1]
        return out.numpy() if backend == "torch" else out

    assert expint.Dense(a).fusable and expint.Dense(a).phi_method == "eig"
    fused = run()
    monkeypatch.setattr("expint._operators.FUSE_MAX_N", 0)
    assert not expint.Dense(a).fusable
    np.testing.assert_allclose(fused, run(), rtol=1e-13, atol=1e-14)


@needs_torch
def test_float32_state_stays_float32():
    bp = problems.kuramoto_sivashinsky(64)
    y32 = torch.from_numpy(bp.y0).to(torch.complex64)
    sol = expint.solve(bp.problem, y32, (0, 1.0), scheme="etdrk4", dt=0.25)
    assert sol.y.dtype == torch.complex64
    ref = expint.solve(bp.problem, bp.y0, (0, 1.0), scheme="etdrk4", dt=0.25).y[-1]
    assert np.abs(sol.y[-1].numpy() - ref).max() <= 1e-5 * np.abs(ref).max()


def test_t_eval_saves_and_inserts_points():
    prob = expint.SemilinearProblem(expint.Diagonal(D), lambda t, y: np.sin(y))
    sol = expint.solve(prob, Y0, (0, 1), scheme="etdrk4", n_steps=10, t_eval=[0.0, 0.25, 0.5, 1.0])
    np.testing.assert_allclose(sol.t, [0.0, 0.25, 0.5, 1.0])
    assert sol.y.shape == (4, 12)
    np.testing.assert_array_equal(sol.y[0], Y0)
    assert sol.stats["steps"] == 11  # 0.25 is not on the 0.1 grid: one step was inserted
    np.testing.assert_allclose(
        sol.y[2], expint.solve(prob, Y0, (0, 0.5), scheme="etdrk4", n_steps=5).y[-1], rtol=1e-5, atol=1e-6
    )  # different grids up to 0.5: equal to the discretisation error


def test_backwards_in_time_inverts_forwards():
    prob = expint.SemilinearProblem(expint.Diagonal(np.array([-1.0, -0.5])), lambda t, y: 0.1 * np.sin(y))
    y0 = np.array([1.0, 2.0])
    fwd = expint.solve(prob, y0, (0, 1), scheme="hochost4", n_steps=40).y[-1]
    back = expint.solve(prob, fwd, (1, 0), scheme="hochost4", n_steps=40).y[-1]
    np.testing.assert_allclose(back, y0, rtol=1e-8)


def test_stats_count_work():
    prob = expint.SemilinearProblem(expint.Diagonal(D), lambda t, y: np.sin(y))
    sol = expint.solve(prob, Y0, (0, 1), scheme="hochost4", n_steps=10)
    assert sol.stats["steps"] == 10 and sol.stats["nfev"] == 50
    assert sol.stats["phi_evaluations"] <= 2  # one set per (h, c): c = 1 and c = 1/2
    sol = expint.solve(prob, Y0, (0, 1), scheme="etdab3", n_steps=10)
    assert sol.stats["nfev"] == 10 + 2 * 4  # one per step + the start-up's extra stages


def test_nonfinite_state_stops_with_message():
    prob = expint.SemilinearProblem(expint.Diagonal(np.array([1.0])), lambda t, y: y**3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = expint.solve(prob, np.array([5.0]), (0, 10), scheme="etd1", n_steps=50)
    assert not sol.success and "non-finite" in sol.message


@pytest.mark.parametrize(
    "kw", [{"scheme": "etdrk4", "n_steps": 20}, {"scheme": "krogstad43", "rtol": 1e-6, "atol": 1e-9}]
)
def test_a_matrix_free_run_past_the_range_stops_like_a_dense_one(kw):
    """e^{hL} past the floating-point range: `Dense` gives inf and the run stops at
    that step; on a Krylov operator `phiv` raised its ValueError out of `solve` (or one
    about a non-finite stage vector) instead."""
    a = np.diag([-1e6, 1e3])
    runs = {}
    for op in (expint.Dense(a), expint.MatrixFree(lambda v: v @ a.T, 2), expint.Sparse(sp.csr_array(a))):
        prob = expint.SemilinearProblem(op, lambda t, y: 0.5 * np.sin(y))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sol = expint.solve(prob, np.array([0.1, 1.0]), (0.0, 10.0), **kw)
        assert not sol.success
        runs[type(op).__name__] = re.sub(r"\d[\d.e+-]*", "#", sol.message)  # the same end, up to rounding
    assert runs["MatrixFree"] == runs["Sparse"] == runs["Dense"]


def test_progress_bar(capsys):
    prob = expint.SemilinearProblem(expint.Diagonal(D), lambda t, y: np.sin(y))
    expint.solve(prob, Y0, (0, 1), scheme="etd1", n_steps=5, progress=True)
    assert "expint etd1" in capsys.readouterr().err


def _prob():
    return expint.SemilinearProblem(expint.Diagonal(D), lambda t, y: np.sin(y))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"scheme": "rk45"}, ValueError, "unknown scheme 'rk45'; valid schemes: lawson_euler"),
        ({"scheme": expint.schemes.Scheme}, TypeError, "not a class"),
        ({"y0": np.full(12, np.nan)}, ValueError, "y0 must be finite"),
        ({"y0": np.ones(13)}, ValueError, "trailing axis must have length 12"),
        ({"y0": np.ones(12, dtype=int)}, TypeError, "floating-point"),
        ({"dt": 0.3}, ValueError, "does not divide"),
        ({"dt": -0.1}, ValueError, "dt must be positive"),
        ({"n_steps": 0}, ValueError, "at least 1"),
        ({"n_steps": 2.5}, TypeError, "integer"),
        ({"dt": 0.1, "n_steps": 10}, ValueError, "exactly one of"),
        ({"ts": [0.0, 0.5, 0.5, 1.0]}, ValueError, "a zero step at index 1"),
        ({"ts": [0.0, 0.6, 0.4, 1.0]}, ValueError, "against the direction"),
        ({"ts": [0.0, 0.5, 0.9]}, ValueError, "end at t_span"),
        ({"t_span": (1.0, 1.0)}, ValueError, "t0 != t_end"),
        ({"t_span": (0.0, math.inf)}, ValueError, "finite"),
        ({"t_span": (0.0, np.array([1.0 + 1j]))}, TypeError, r"t_span\[1\] must be a real number"),
        ({"t_span": (0.0, np.ones(2))}, TypeError, r"t_span\[1\] must be a real number"),
        ({"t_eval": [0.5, 2.0]}, ValueError, "inside t_span"),
        ({"t_eval": [0.5, 0.2]}, ValueError, "monotone"),
    ],
)
def test_bad_input(kwargs, exc, match):
    args = {"y0": Y0, "t_span": (0.0, 1.0), "scheme": "etdrk4"}
    if not {"dt", "n_steps", "ts"} & set(kwargs):
        args["n_steps"] = 10
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        expint.solve(_prob(), args.pop("y0"), args.pop("t_span"), **args)


def test_one_element_arrays_are_accepted_as_times():
    plain = expint.solve(_prob(), Y0, (0.0, 1.0), scheme="etdrk4", n_steps=10)
    arrays = expint.solve(_prob(), Y0, (np.array(0.0), np.array([1.0])), scheme="etdrk4", n_steps=10)
    np.testing.assert_array_equal(arrays.y, plain.y)


def test_bad_problem_and_nonlinear_results():
    with pytest.raises(TypeError, match="not a class"):
        expint.solve(expint.SemilinearProblem, Y0, (0, 1), scheme="etd1", n_steps=1)
    with pytest.raises(TypeError, match="construct it first"):
        expint.SemilinearProblem(expint.Diagonal, np.sin)
    with pytest.raises(TypeError, match=r"wrap an array: Diagonal\(d\)"):
        expint.SemilinearProblem(D, np.sin)
    with pytest.raises(TypeError, match="nonlinear must be a callable"):
        expint.SemilinearProblem(expint.Diagonal(D), 3.0)
    wrong_shape = expint.SemilinearProblem(expint.Diagonal(D), lambda t, y: y[..., :3])
    with pytest.raises(ValueError, match=r"returned shape \(3,\) for a state of shape \(12,\)"):
        expint.solve(wrong_shape, Y0, (0, 1), scheme="etdrk4", n_steps=2)
    wrong_dtype = expint.SemilinearProblem(expint.Diagonal(D), lambda t, y: np.sin(y).astype(np.float32))
    with pytest.raises(TypeError, match="returned dtype float32 for a state of dtype float64"):
        expint.solve(wrong_dtype, Y0, (0, 1), scheme="etdrk4", n_steps=2)
    wrong_type = expint.SemilinearProblem(expint.Diagonal(D), lambda t, y: list(y))
    with pytest.raises(TypeError, match="returned list"):
        expint.solve(wrong_type, Y0, (0, 1), scheme="etdrk4", n_steps=2)


def test_catalog_records():
    recs = {s.name: s for s in expint.schemes.catalog()}
    assert recs["etdrk4"].order == 4 and recs["etdrk4"].stiff_order == 2
    assert recs["hochost4"].stages == 5 and recs["hochost4"].stiff_order == 4
    assert {f"etdab{q}" for q in range(2, 6)} <= set(recs)


def test_broken_tableau_is_rejected():
    from expint._schemes._phiexpr import P
    from expint.schemes import ExpRKTableau

    with pytest.raises(ValueError, match="does not sum"):
        ExpRKTableau("bad", "etdrk", (0.0, 0.5), {(1, 0): P(1, 0.5)}, (P(1) - P(2), P(2)), 2, 2)
    with pytest.raises(ValueError, match="!= φ_3"):  # claims order 3 with order-2 weights
        ExpRKTableau("bad2", "etdrk", (0.0, 1.0), {(1, 0): P(1)}, (P(1) - P(2), P(2)), 3, 2)
    with pytest.raises(ValueError, match="classical order"):  # Lawson: only classical checks
        expint.schemes.ExpRKTableau(
            "bad3", "lawson", (0.0, 1.0), {(1, 0): P(0, 1.0)}, (P(0), P(0) * 0.0), 2, 1
        )


@pytest.mark.parametrize(("scheme", "order"), [("lawson_rk4", 4), ("lawson_rk2", 2), ("etdrk4", 4)])
def test_time_dependent_scalar_rate_keeps_the_classical_order(scheme, order):
    """y' = (−2 − sin 3t) y + sin y + cos t (the docs' example): Lawson stages must use the
    propagator from their own start time; with it dropped lawson_rk4 falls to order ≈ 3."""
    from scipy.integrate import solve_ivp

    def rate(t):
        return -2.0 - np.sin(3.0 * np.asarray(t))

    def integral(s, t):
        s = np.asarray(s)
        return -2.0 * (t - s) + (np.cos(3.0 * t) - np.cos(3.0 * s)) / 3.0

    prob = expint.SemilinearProblem(expint.ScalarTime(rate, integral), lambda t, y: np.sin(y) + np.cos(t))
    exact = solve_ivp(
        lambda t, y: rate(t) * y + np.sin(y) + np.cos(t), (0.0, 2.0), [1.0], rtol=1e-13, atol=1e-14
    ).y[:, -1]
    dts = [0.1, 0.05, 0.025]
    errs = [
        abs(expint.solve(prob, np.array([1.0]), (0.0, 2.0), scheme=scheme, dt=dt).y[-1][0] - exact[0])
        for dt in dts
    ]
    observed = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert observed > order - 0.3, (scheme, errs, observed)


@pytest.mark.parametrize("q", [3, 4, 5])
def test_variable_step_adams_is_exact_for_polynomial_forcing(q):
    """ETD-AB of order q interpolates N at the actual past nodes, so on any grid it
    integrates y' = λy + p(t) exactly for deg p < q.  p is quadratic: the start-up,
    hochost4, is exact up to degree 2 (not 3: Σ b_i c_i³ ≠ 6φ_4).  The grid repeats
    and changes its step pattern, so a step that reused the coefficients of another
    node pattern would not be exact.  Exact solution:
    ∫_0^T e^{λ(T−s)} s^m ds = m! T^{m+1} φ_{m+1}(λT)."""
    steps = [0.1, 0.2] * 4 + [0.15] * 5 + [0.05, 0.3, 0.05, 0.3] + [0.1] * 3
    ts = np.concatenate([[0.0], np.cumsum(steps)])
    sol = expint.solve(polyforcing.problem(), polyforcing.Y0, (0.0, ts[-1]), scheme=f"etdab{q}", ts=ts)
    exact = polyforcing.exact(ts[-1])
    np.testing.assert_allclose(sol.y[-1], exact, rtol=1e-12, atol=1e-12)
