"""Dense-matrix φ-functions against 50-digit mpmath references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _optional import BACKENDS, needs_torch, torch
from _threads import blas_threads

import expint
from mpref import frobenius_relative, phi_matrix_ref

_RNG = np.random.default_rng(20261126)


def _stiff(n: int, lowest: float = -1e4, nonnormality: float = 1.0) -> np.ndarray:
    """V diag(d) V^{-1}, eigenvalues log-spaced in [lowest, -1], V far from orthogonal."""
    d = -np.logspace(0, math.log10(-lowest), n)
    v = np.eye(n) + nonnormality * np.triu(_RNG.standard_normal((n, n)), 1) / math.sqrt(n)
    return v @ np.diag(d) @ np.linalg.inv(v)


def _jordan(n: int, lam: float, off: float) -> np.ndarray:
    return np.diag(np.full(n, lam)) + np.diag(np.full(n - 1, off), 1)


CASES = {
    "random8": (_RNG.standard_normal((8, 8)), 8),
    "random_complex6": (_RNG.standard_normal((6, 6)) + 1j * _RNG.standard_normal((6, 6)), 6),
    "stiff12": (_stiff(12), 8),
    "jordan_nonnormal": (_jordan(6, -50.0, 30.0), 8),
    "skew_dispersive": ((lambda m: 40.0 * (m - m.T))(_RNG.standard_normal((10, 10))), 4),
    "stiff32": (_stiff(32), 4),
}


@pytest.fixture(scope="module")
def references():
    return {name: phi_matrix_ref(k, a) for name, (a, k) in CASES.items()}


@pytest.mark.slow  # the mpmath references take ~10 s
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CASES))
def test_against_mpmath(references, name, backend):
    a, kmax = CASES[name]
    arg = torch.from_numpy(a) if backend == "torch" else a
    vals = expint.phi_matrix_all(kmax, arg)
    vals = vals.numpy() if backend == "torch" else vals
    for k in range(kmax + 1):
        err = frobenius_relative(vals[k], references[name][k])
        assert err <= 1e-12, (name, k, err)


DENSE_METHOD = {
    "random8": "eig",
    "random_complex6": "eig",
    "stiff12": "eig",
    "jordan_nonnormal": "expm",  # defective: no eigenvector basis
    "skew_dispersive": "eig",  # normal (κ(V) = 1) but not Hermitian
    "stiff32": "eig",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_dense_operator_against_mpmath(references, name):
    """`Dense` picks its φ evaluation by the eigenvector condition number, and every
    path meets the same accuracy as `phi_matrix_all`."""
    a, kmax = CASES[name]
    op = expint.Dense(a)
    assert op.phi_method == DENSE_METHOD[name]
    vals = op.coefficients(1.0, 1.0, kmax)
    assert np.isrealobj(vals) == np.isrealobj(a)
    for k in range(kmax + 1):
        err = frobenius_relative(vals[k], references[name][k])
        assert err <= 1e-12, (name, k, err)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_one_off_combinations_against_mpmath(references, name):
    """`phi_combination_expm` (one augmented exponential per Σ φ_k(A) w_k, what the
    exponential Rosenbrock steps use on a formed non-symmetric J_n): vectors of norms
    1e-6 to 1e6 (the scaling η), missing terms, with and without w_0, against the sums of
    the mpmath matrices; error relative to Σ‖φ_k(A)‖‖w_k‖, the size of the terms."""
    from expint._phi import phi_combination_expm, phi_combinations_expm

    a, kmax = CASES[name]
    rng = np.random.default_rng(3)
    n = a.shape[0]
    refs = [r.astype(complex) for r in references[name]]

    def check(got, ws, label):
        exact = sum(refs[k] @ w for k, w in enumerate(ws) if w is not None)
        terms = [(refs[k], w) for k, w in enumerate(ws) if w is not None]
        size = sum(np.linalg.norm(r, 2) * np.linalg.norm(w) for r, w in terms)
        err = np.linalg.norm(got - exact) / size
        assert err <= 1e-12 * max(1.0, len(ws) - 1), (name, label, err)
        assert np.isrealobj(got) == np.isrealobj(a)

    for p in range(kmax + 1):
        for w0 in (True, False):
            for drop in (None, p // 2):
                ws = [10.0 ** rng.uniform(-6, 6) * rng.standard_normal(n) for _ in range(p + 1)]
                ws = [None if (k == 0 and not w0) or (k == drop and k > 0) else w for k, w in enumerate(ws)]
                # a second combination with the same A, of another length (the update
                # and the error estimate of a Rosenbrock step come out of one exponential)
                other = [None] * (kmax - p) + [10.0 ** rng.uniform(-6, 6) * rng.standard_normal(n)]
                if all(w is None for w in ws):
                    assert phi_combination_expm(a, ws) is None
                    assert phi_combinations_expm(a, [ws, ws])[0] is None
                    continue
                check(phi_combination_expm(a, ws), ws, (p, w0, drop))
                first, second = phi_combinations_expm(a, [ws, other])
                check(first, ws, (p, w0, drop, "first of two"))
                check(second, other, (p, w0, drop, "second of two"))
                assert phi_combinations_expm(a, [[None] * 2, ws])[0] is None


def test_one_off_combinations_leave_the_blas_threads_as_they_were():
    """Sizes in `_ONE_THREAD_EXPM_SIZES` run on one BLAS thread and restore the pools;
    the result is the same either way."""
    from threadpoolctl import threadpool_limits

    import expint._phi as phi_module

    rng = np.random.default_rng(5)
    n = phi_module._ONE_THREAD_EXPM_SIZES[0] + 4
    a = rng.standard_normal((n, n)) / np.sqrt(n)
    ws = [rng.standard_normal(n) for _ in range(3)]
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        one = phi_module.phi_combination_expm(a, ws)
        assert blas_threads() == before
    exact = sum(expint.phi_matrix(k, a) @ w for k, w in enumerate(ws))
    np.testing.assert_allclose(one, exact, rtol=1e-12, atol=1e-12 * np.abs(exact).max())


def test_one_off_combination_overflow_is_left_to_the_caller():
    """An exponential beyond the float64 range gives inf/NaN in the result, without an
    exception or a warning: a Rosenbrock step whose product overflows is then rejected by
    its error estimate or stops the run as non-finite, as with any other path."""
    import warnings

    from expint._phi import phi_combination_expm

    a = np.diag([1000.0, -1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = phi_combination_expm(a, [None, np.ones(2)])
    assert not np.all(np.isfinite(out))


@pytest.mark.parametrize("intervals", [16, 20, 32, 64])
def test_chebyshev_operators_take_the_eigendecomposition(intervals):
    """The Chebyshev second-derivative matrices of `problems.allen_cahn` are non-normal
    but have nearly orthogonal eigenvectors (κ₂(V) < 3): the cheap path, and it agrees
    with the augmented-matrix exponential."""
    from expint import problems

    a = np.asarray(problems.allen_cahn(intervals).problem.linear.a)
    op = expint.Dense(a)
    assert op.phi_method == "eig" and np.linalg.cond(np.linalg.eig(a)[1]) < 3
    got, ref = op.coefficients(0.25, 1.0, 3), expint.phi_matrix_all(3, 0.25 * a)
    for k in range(4):
        assert frobenius_relative(got[k], ref[k]) < 1e-12


def test_dense_hermitian_uses_eigh():
    a = CASES["random8"][0]
    assert expint.Dense(a + a.T).phi_method == "eigh"
    assert expint.Dense(np.triu(np.ones((5, 5)))).phi_method == "expm"  # a Jordan block


def test_batched_equals_unbatched():
    batch = np.stack([CASES["random8"][0], CASES["stiff12"][0][:8, :8], np.eye(8)])
    out = expint.phi_matrix_all(3, batch[None])  # shape (1, 3, 8, 8)
    assert out.shape == (4, 1, 3, 8, 8)
    for b in range(3):
        single = expint.phi_matrix_all(3, batch[b])
        np.testing.assert_allclose(out[:, 0, b], single, rtol=1e-13, atol=1e-300)


def test_phi_matrix_equals_elementwise_on_diagonal():
    d = np.array([-1e4, -3.0, 0.0, 1e-9, 2.5])
    for k in range(6):
        np.testing.assert_allclose(np.diag(expint.phi_matrix(k, np.diag(d))), expint.phi(k, d), rtol=1e-13)


@needs_torch
def test_float32_and_device_kept():
    a = torch.randn(2, 5, 5, dtype=torch.float32)
    out = expint.phi_matrix(2, a)
    assert out.dtype == torch.float32 and out.shape == (2, 5, 5)
    ref = expint.phi_matrix(2, a.double())
    torch.testing.assert_close(out, ref.float(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("k", "a", "exc", "match"),
    [
        (1, np.ones((3, 4)), ValueError, "square"),
        (1, np.ones(3), ValueError, "square"),
        (1, np.ones((3, 3), dtype=int), TypeError, "integer dtype"),
        (1, np.array([[1.0, np.inf], [0, 1]]), ValueError, "finite"),
        (-2, np.eye(2), ValueError, "non-negative"),
        (2.0, np.eye(2), TypeError, "integer"),
    ],
)
def test_bad_input(k, a, exc, match):
    with pytest.raises(exc, match=match):
        expint.phi_matrix(k, a)
