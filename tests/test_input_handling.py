"""Regression tests for inputs that were silently wrong or unclear (core: φ, phiv,
operators, solve).  Each test failed before its fix."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import torch

import expint

# -- φ at infinity and overflow -------------------------------------------------------------


@pytest.mark.parametrize(
    "z, expected",
    [
        (complex(np.inf, 0.0), complex(np.inf, 0.0)),
        (complex(np.inf, 1.0), complex(np.inf, np.inf)),  # direction e^{i}: both parts +inf
        (complex(np.inf, -2.0), complex(-np.inf, -np.inf)),  # cos 2 < 0, sin(−2) < 0
        (complex(-np.inf, 0.0), 0.0),
    ],
)
@pytest.mark.parametrize("k", [0, 1, 3])
def test_phi_at_complex_infinity_is_the_limit_not_nan(k, z, expected):
    got = complex(expint.phi(k, np.array([z]))[0])
    assert not np.isnan(got.real) and not np.isnan(got.imag)
    assert got == expected
    t = complex(expint.phi(k, torch.tensor([z]))[0])
    assert t == expected


def test_phi_matrix_beyond_exp_overflow_matches_scalar_phi():
    # φ_8(730) ≈ 1.3e294 is finite although e^730 overflows; φ_1(800) is +inf
    got = expint.phi_matrix(8, 730.0 * np.eye(3))
    np.testing.assert_allclose(np.diag(got), expint.phi(8, 730.0), rtol=1e-12)
    assert np.all(got[~np.eye(3, dtype=bool)] == 0)
    big = expint.phi_matrix(1, 800.0 * np.eye(2))
    assert not np.isnan(big).any()
    assert np.all(np.diag(big) == np.inf) and big[0, 1] == 0 and big[1, 0] == 0
    # a non-normal matrix: compare with the Jordan-block closed form φ_1(J) = [[φ1, φ1'], [0, φ1]]
    # φ_k(J) = [[φ_k, φ_k'], [0, φ_k]], φ_k'(z) = (φ_{k−1}(z) − k φ_k(z))/z
    a = np.array([[730.0, 1.0], [0.0, 730.0]])
    j = expint.phi_matrix(8, a)
    f = expint.phi(8, 730.0)
    dphi = (expint.phi(7, 730.0) - 8 * f) / 730.0
    np.testing.assert_allclose(j, [[f, dphi], [0.0, f]], rtol=1e-10)


# -- phiv and matrix-free operators ------------------------------------------------------------


def test_phiv_refuses_nan_matrix_quickly():
    a = -np.eye(20)
    a[3, 4] = np.nan
    start = time.perf_counter()
    with pytest.raises(ValueError, match="NaN or inf"):
        expint.phiv(a, [np.ones(20)], t=1.0)
    assert time.perf_counter() - start < 5  # not minutes of Krylov iterations


@pytest.mark.parametrize(
    "matvec, exc, match",
    [
        (lambda v: v[:-1], ValueError, "returned shape"),
        (lambda v: list(v), TypeError, "returned list"),
        (lambda v: v * np.nan, ValueError, "NaN or inf"),
    ],
)
def test_faulty_matvec_gets_a_clear_error(matvec, exc, match):
    op = expint.MatrixFree(matvec, 8)
    with pytest.raises(exc, match=match):
        expint.phiv(op, [np.ones(8)], t=0.5)
    prob = expint.SemilinearProblem(expint.MatrixFree(matvec, 8), lambda t, y: 0 * y)
    with pytest.raises(exc, match=match):
        expint.solve(prob, np.ones(8), (0.0, 1.0), scheme="etd2rk", n_steps=2)


def test_phiv_accepts_numpy_integer_scalars():
    a = -np.eye(4)
    w1, _ = expint.phiv(a, [np.ones(4)], t=np.int64(1), m=np.int64(4))
    w2, _ = expint.phiv(a, [np.ones(4)], t=1.0, m=4)
    np.testing.assert_allclose(w1, w2)
    np.testing.assert_allclose(w1, np.exp(-1.0) * np.ones(4), rtol=1e-10)


# -- Dense with torch ---------------------------------------------------------------------------


def test_dense_refuses_a_matrix_that_requires_grad():
    a = torch.tensor([[-1.0, 0.5], [0.0, -2.0]], dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match="requires grad"):
        expint.Dense(a)


def test_dense_with_complex_torch_state_matches_numpy():
    a = np.array([[-1.0, 0.5], [0.2, -2.0]])
    y0 = np.array([1.0 + 0.5j, -0.3j])

    def n_np(t, y):
        return 0.1j * y

    sol_np = expint.solve(
        expint.SemilinearProblem(expint.Dense(a), n_np), y0, (0.0, 1.0), scheme="etdrk4", n_steps=4
    )
    sol_t = expint.solve(
        expint.SemilinearProblem(expint.Dense(torch.from_numpy(a)), lambda t, y: 0.1j * y),
        torch.from_numpy(y0),
        (0.0, 1.0),
        scheme="etdrk4",
        n_steps=4,
    )
    np.testing.assert_allclose(sol_t.y[-1].numpy(), sol_np.y[-1], rtol=1e-13)


# -- solve stops where the state blows up ------------------------------------------------------


# small states are tested entry by entry, larger ones by their sum (_FiniteWatch)
STATE_SIZES = [1, 5000]


@pytest.mark.parametrize("size", STATE_SIZES)
def test_blow_up_is_caught_on_the_step_it_happens(size):
    calls = []

    def n(t, y):
        calls.append(t)
        return y**3

    prob = expint.SemilinearProblem(expint.Diagonal(-np.ones(size)), n)
    y0 = np.full(size, 3.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(over="ignore", invalid="ignore"):
            sol = expint.solve(prob, y0, (0.0, 10.0), scheme="etdrk4", dt=0.01)
    assert not sol.success
    # y' ≈ y³ from 3 blows up near t = 1/18 ≈ 0.056: the named step is there, not at t = 10
    assert "(t = 0.07 to 0.08)" in sol.message, sol.message
    assert sol.stats["steps"] == 8
    assert max(calls) < 0.1  # the run stopped; no stepping on NaN up to t = 10
    assert any("non-finite in step 7" in str(w.message) for w in caught)
    # what was saved before the blow-up is kept, then the last finite state, at the start
    # of the step that went non-finite (as an adaptive run ends at its last accepted step)
    np.testing.assert_allclose(sol.t, [0.0, 0.07], rtol=0, atol=1e-15)
    assert np.isfinite(sol.y).all() and np.all(sol.y[-1] > 3.0)
    if size == 1:
        alone = expint.solve(prob, y0, (0.0, 0.07), scheme="etdrk4", n_steps=7)
        np.testing.assert_allclose(sol.y[-1], alone.y[-1], rtol=1e-12)


def test_a_blow_up_before_the_first_time_asked_for_keeps_where_it_stopped():
    """``t_eval`` without ``t0`` and a blow-up before its first time: the last finite
    state, at the start of the step that went non-finite (an ``IndexError`` from an
    empty list of saved states before)."""
    prob = expint.SemilinearProblem(expint.Diagonal(-np.ones(1)), lambda t, y: y**3)
    with pytest.warns(RuntimeWarning, match="non-finite in step 7"):
        sol = expint.solve(prob, np.array([3.0]), (0.0, 10.0), scheme="etdrk4", dt=0.01, t_eval=[5.0, 10.0])
    assert not sol.success and sol.t.tolist() == [pytest.approx(0.07)]
    alone = expint.solve(prob, np.array([3.0]), (0.0, 0.07), scheme="etdrk4", n_steps=7)
    np.testing.assert_allclose(sol.y[-1], alone.y[-1], rtol=1e-12)
    # the same through a batch run member by member (a Rosenbrock scheme on a fixed grid)
    ric = expint.SemilinearProblem(expint.Diagonal(-np.ones(1)), lambda t, y: y * y)
    with pytest.warns(RuntimeWarning, match="member 1: "):
        batch = expint.solve(
            ric, np.array([[0.5], [3.0]]), (0.0, 1.0), scheme="exprb32", n_steps=100, t_eval=[0.5]
        )
    assert not batch.success and len(batch.t) == 1 and 0.35 < batch.t[0] <= 0.42  # blow-up at log(3/2)
    assert batch.stats["t_reached"][0] == 1.0 and np.isfinite(batch.y).all()


@pytest.mark.parametrize("size", STATE_SIZES)
def test_a_finite_state_whose_sum_overflows_is_not_an_error(size):
    prob = expint.SemilinearProblem(expint.Diagonal(np.zeros(size + 1)), lambda t, y: 0 * y)
    y0 = np.full(size + 1, 1e308)
    sol = expint.solve(prob, y0, (0.0, 1.0), scheme="etd1", n_steps=3)
    assert sol.success and np.all(sol.y[-1] == 1e308)


def test_blow_up_on_an_accelerator_is_named_exactly(monkeypatch):
    """The accelerator path (device-side flags, read every 32 steps and at saves) run
    on the CPU: it stops within 32 steps and names the step where it happened."""
    from expint import _solve

    original = _solve._FiniteWatch.__init__

    def as_if_on_device(self, y0, n):
        original(self, y0, n)
        self.on_device = True
        self.flags = torch.zeros(n, dtype=torch.bool)

    monkeypatch.setattr(_solve._FiniteWatch, "__init__", as_if_on_device)
    calls = []

    def n(t, y):
        calls.append(t)
        return y**3

    prob = expint.SemilinearProblem(expint.Diagonal(torch.tensor([-1.0], dtype=torch.float64)), n)
    with pytest.warns(RuntimeWarning, match="non-finite in step 7"):
        sol = expint.solve(
            prob, torch.tensor([3.0], dtype=torch.float64), (0.0, 10.0), scheme="etdrk4", dt=0.01
        )
    assert not sol.success and "(t = 0.07 to 0.08)" in sol.message
    assert sol.stats["steps"] == 8
    assert max(calls) < 0.33  # stopped at the first read of the flags (step 32)


@pytest.mark.parametrize(
    "linear",
    [
        expint.Diagonal(np.array([1e3, 1e3])),
        # a ScalarTime growth past e^709 raised math.exp's OverflowError mid-run
        expint.ScalarTime(lambda t: 1e3, lambda s, t: 1e3 * (t - s), n=2),
    ],
    ids=["diagonal", "scalar-time"],
)
@pytest.mark.parametrize("step", [{"scheme": "etdrk4", "n_steps": 5}, {"scheme": "krogstad43", "rtol": 1e-6,
                                                                       "atol": 1e-6}])  # fmt: skip
def test_a_blow_up_gives_one_warning_and_a_failed_run(linear, step):
    """L = 1000 overflows double precision by t = 0.71.  The run ends with success False
    and one RuntimeWarning of its own; numpy's overflow/invalid warnings from the step
    arithmetic (about 70 lines for an adaptive run, one set per rejected retry) are not
    passed on."""
    prob = expint.SemilinearProblem(linear, lambda t, y: 0 * y + 1.0)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        sol = expint.solve(prob, np.ones(2), (0.0, 10.0), **step)
    assert not sol.success and sol.t[-1] < 0.75
    assert [str(w.message)[:13] for w in seen] == ["expint.solve:"]


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")  # torch's, on to_sparse_csr
@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_phiv_mixes_torch_sparse_precisions(layout):
    """A float32 torch sparse matrix with float64 vectors raised torch's "expected scalar
    type Float but found Double" from the sparse product; they are promoted now."""
    import scipy.sparse as sp

    a = sp.diags([np.ones(9), -2 * np.ones(10), np.ones(9)], [-1, 0, 1]).toarray()
    dense = torch.tensor(a, dtype=torch.float32)
    a32 = dense.to_sparse() if layout == "coo" else dense.to_sparse_csr()
    v = torch.linspace(0.0, 1.0, 10, dtype=torch.float64)
    got = expint.phiv(a32, [v, v])
    assert got.w.dtype == torch.float64
    np.testing.assert_allclose(got.w.numpy(), expint.phiv(a, [v.numpy(), v.numpy()]).w, rtol=1e-12)
