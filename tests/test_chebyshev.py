"""The Chebyshev path of `expint.phiv` (Hermitian operators with a spectral interval):
accuracy against exact solutions, its a-priori bound, when ``method="auto"`` takes it,
the interval it reads, and the errors it raises."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import scipy.sparse as sp
from _optional import needs_torch, torch
from _transfers import KRYLOV_MODULES, count_transfers
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ive

import expint
from expint._chebyshev import chebyshev_coefficients, spectral_interval
from laplacian import exact_phiv, sparse_1d


def _rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


def _dense_reference(a, vs, t):
    """Σ t^k φ_k(tA) v_k through the eigendecomposition of the Hermitian ``a``."""
    from expint._phi import phi_all

    lam, q = np.linalg.eigh(a)
    out = 0
    values = np.asarray(phi_all(len(vs) - 1, t * lam))
    for k, v in enumerate(vs):
        out = out + q @ ((t**k * values[k]) * (q.conj().T @ v))
    return out


def _laplacian_2d(n):
    lap = sparse_1d(n)
    return (sp.kron(lap, sp.eye(n)) + sp.kron(sp.eye(n), lap)).tocsr()


# ---------------------------------------------------------------------------------------
# accuracy


@pytest.mark.parametrize("tol", [1e-6, 1e-10, 1e-13])
@pytest.mark.parametrize(("dim", "n", "t"), [(1, 3000, 1e-5), (2, 70, 2e-3), (1, 400, 1e-4), (2, 30, 2e-3)])
def test_exponentials_meet_tolerance_and_the_bound_holds(dim, n, t, tol, rng):
    """``e^{tA} v`` on 1-D and 2-D Laplacians (‖tA‖ from 2 to 360) to ``tol`` against
    the sine-transform solution; the reported a-priori bound is at least the actual
    error (it is a bound, not an estimate)."""
    a = sparse_1d(n) if dim == 1 else _laplacian_2d(n)
    v = rng.standard_normal(a.shape[0])
    w, info = expint.phiv(a, [v], t, tol=tol, method="chebyshev")
    ref = exact_phiv(dim, n, [v], t)
    assert info.chebyshev and not info.lanczos and info.substeps == 1
    assert info.basis_sizes == [info.matvecs - 1]  # the probe A v_0 is reused as T_1
    assert _rel(w, ref) <= tol
    actual = float(np.linalg.norm(w - ref))
    assert info.error_estimate >= actual and info.error_estimate <= tol * np.linalg.norm(w)


@pytest.mark.parametrize("tol", [1e-6, 1e-10])
@pytest.mark.parametrize("p", [1, 3])
@pytest.mark.parametrize(("dim", "n", "t"), [(1, 3000, 1e-5), (2, 30, 2e-3)])
def test_phi_combinations_meet_tolerance(dim, n, t, p, tol, rng):
    """Σ t^k φ_k(tA) v_k: phipm's single-vector form with ``t^p φ_p(tA) w_p`` expanded,
    or, where its cancellation rules ``tol`` out, one block recurrence over the vectors
    with their own coefficients; a zero ``v_0`` works either way."""
    a = sparse_1d(n) if dim == 1 else _laplacian_2d(n)
    vs = list(rng.standard_normal((p + 1, a.shape[0])))
    w, info = expint.phiv(a, vs, t, tol=tol, method="chebyshev")
    assert info.chebyshev and _rel(w, exact_phiv(dim, n, vs, t)) <= tol
    vs[0] = np.zeros(a.shape[0])
    w, info = expint.phiv(a, vs, t, tol=tol, method="chebyshev")
    assert info.chebyshev and _rel(w, exact_phiv(dim, n, vs, t)) <= tol


@pytest.mark.parametrize(("dim", "n", "t"), [(1, 3000, 1e-5), (1, 400, 1e-4), (2, 70, 2e-3), (1, 3000, 1e-3)])
def test_rounding_estimate_covers_the_attainable_accuracy(dim, n, t, monkeypatch, rng):
    """Run every coefficient (no rounding allowance, the tightest tolerance): the
    error left is the recurrence's rounding, and it stays within the 2ρ that the
    acceptance test allows (ρ = ε Σ_j (j+1)|c_j| ‖v‖; 50 to 1000 terms here)."""
    import expint._chebyshev as cheb

    monkeypatch.setattr(cheb, "_FLOOR_SAFETY", 0.0)
    a = sparse_1d(n) if dim == 1 else _laplacian_2d(n)
    v = rng.standard_normal(a.shape[0])
    w, info = expint.phiv(a, [v], t, tol=1e-15, method="chebyshev")
    lo, hi = spectral_interval(a)
    coeffs = chebyshev_coefficients(0, t, lo, hi)[:, 0]
    assert info.matvecs >= len(coeffs) - 2  # ran (nearly) to the end of the series
    rho = np.finfo(float).eps * np.sum(np.arange(1, len(coeffs) + 1) * np.abs(coeffs)) * np.linalg.norm(v)
    actual = np.linalg.norm(w - exact_phiv(dim, n, [v], t))
    assert actual <= 2 * rho, (actual / rho, len(coeffs))


def test_complex_hermitian_matrix_negative_time_and_growth(rng):
    """A complex Hermitian matrix with eigenvalues of both signs (the exponential grows),
    ``t`` of both signs, one vector and a φ-combination, on the tight interval."""
    b = rng.standard_normal((80, 80)) + 1j * rng.standard_normal((80, 80))
    a = -(b @ b.conj().T) / 40 + (b + b.conj().T) / 10
    a = (a + a.conj().T) / 2
    v = rng.standard_normal(80) + 1j * rng.standard_normal(80)
    v1 = rng.standard_normal(80) + 1j * rng.standard_normal(80)
    lam = np.linalg.eigvalsh(a)
    tight = (lam.min() - 1e-9, lam.max() + 1e-9)
    for t in (0.5, -0.05):
        for vs in ([v], [v, v1, v]):
            w, info = expint.phiv(a, vs, t, tol=1e-12, method="chebyshev", spectrum=tight)
            assert info.chebyshev and _rel(w, _dense_reference(a, vs, t)) < 1e-11
    # Gershgorin's interval of this dense matrix reaches far past the spectrum, where
    # e^{tλ} is e^{14} times larger than at the top eigenvalue: rounding at that scale
    # rules out 1e-12, and "auto" leaves the call to Lanczos
    gershgorin = spectral_interval(a)
    assert 0.5 * (gershgorin[1] - lam.max()) > 14
    with pytest.raises(ValueError, match="cannot meet tol"):
        expint.phiv(a, [v], 0.5, tol=1e-12, method="chebyshev")
    w, info = expint.phiv(a, [v], 0.5, tol=1e-12, method="auto")
    assert info.lanczos and _rel(w, _dense_reference(a, [v], 0.5)) < 1e-11


def test_a_result_far_below_the_vector_falls_back_or_raises():
    """``v`` lies in the eigenspace of −300 while the interval reaches 0: the result is
    ``e^{−300} v``, far below what the expansion (an absolute bound of ``ε‖v‖``) can
    resolve.  ``method="auto"`` hands the call to Krylov, which gets it to ``tol``;
    ``method="chebyshev"`` says why it cannot."""
    a = np.diag(np.concatenate([np.full(10, -300.0), [0.0]]))
    v = np.concatenate([np.ones(10), [0.0]])
    with pytest.raises(ValueError, match=r"cannot meet tol.*method='krylov'"):
        expint.phiv(a, [v], 1.0, tol=1e-8, method="chebyshev")
    w, info = expint.phiv(a, [v], 1.0, tol=1e-8, spectrum=(-300.0, 0.0))
    assert not info.chebyshev and _rel(w, np.exp(-300.0) * v) <= 1e-8


def test_an_overflowing_interval_hands_over_to_krylov():
    """``t·b`` past the range: the expansion's values overflow, Krylov (which works on
    the vector's own spectrum) gets the finite result."""
    a = np.diag([-1.0, -2.0, 800.0])
    v = np.array([1.0, 1.0, 0.0])
    w, info = expint.phiv(a, [v], 1.0, tol=1e-10, spectrum=(-2.0, 800.0), method="auto")
    assert not info.chebyshev and _rel(w, np.exp([-1.0, -2.0, 0.0]) * v) < 1e-10


def test_an_interval_too_wide_for_a_polynomial(rng):
    """``t·r = 2e7`` would need ~4e4 terms, past the coefficient grid's limit: the
    expansion declines before sampling (``auto`` runs Krylov, which meets an invariant
    subspace of the two eigenvalues; at this stiffness ratio, 4e7, its orthogonalisation
    loses ~1e-8 of the small component, hence the looser tolerance)."""
    a = np.diag(np.concatenate([np.full(5, -4e7), np.full(5, -1.0)]))
    v = rng.standard_normal(10)
    with pytest.raises(ValueError, match="too wide"):
        expint.phiv(a, [v], 1.0, method="chebyshev")
    w, info = expint.phiv(a, [v], 1.0, tol=1e-6)
    assert not info.chebyshev and _rel(w, _dense_reference(a, [v], 1.0)) <= 1e-6


def test_steady_state_and_tiny_operators(rng):
    """A steady state (``A v_0 + v_1 = 0``: ``w_1 = 0`` and the result is ``v_0``, with
    nothing to expand, and the one product `phiv` makes anyway gives `w_1`) and a 1 × 1
    operator (a zero-width interval)."""
    a = sparse_1d(300)
    v0 = rng.standard_normal(300)
    w, info = expint.phiv(a, [v0, -(a @ v0)], 1e-3, tol=1e-10, method="chebyshev")
    assert info.chebyshev and info.matvecs == 1 and _rel(w, v0) < 1e-13  # the probe A v_0 alone
    for vs in ([np.array([2.0])], [np.array([2.0]), np.array([1.0])]):
        w, info = expint.phiv(np.array([[-3.0]]), vs, 0.5, tol=1e-12, method="chebyshev")
        assert info.chebyshev and _rel(w, _dense_reference(np.array([[-3.0]]), vs, 0.5)) < 1e-12


def test_a_multiple_of_the_identity(rng):
    """A zero-width interval (``A = cI``) is widened a little rather than divided by."""
    a = sp.identity(50, format="csr") * -3.0
    vs = list(rng.standard_normal((2, 50)))
    w, info = expint.phiv(a, vs, 0.5, tol=1e-12, method="chebyshev")
    assert info.chebyshev and _rel(w, _dense_reference(a.toarray(), vs, 0.5)) < 1e-12


# ---------------------------------------------------------------------------------------
# coefficients and interval


@pytest.mark.parametrize(("t", "lo", "hi"), [(0.05, -5284.0, 0.0), (1.0, -3.0, 2.0), (2.0, -0.1, 0.1)])
def test_exponential_coefficients_are_scaled_bessel_values(t, lo, hi):
    """``e^{t(c + r x)} = e^{tc} (I_0(tr) + 2 Σ_j I_j(tr) T_j(x))``: the DCT of sampled
    values gives the same numbers (to rounding of the largest value)."""
    c, r = 0.5 * (lo + hi), 0.5 * (hi - lo)
    coeffs = chebyshev_coefficients(0, t, lo, hi)[:, 0]
    j = np.arange(len(coeffs))
    exact = np.exp(t * c + t * r) * ive(j, t * r) * np.where(j == 0, 1.0, 2.0)
    assert np.max(np.abs(coeffs - exact)) <= 32 * np.finfo(float).eps * np.exp(t * hi)


@settings(max_examples=25, deadline=None)
@given(p=st.integers(1, 4), t=st.floats(0.01, 10.0), lo=st.floats(-50.0, 0.0), width=st.floats(0.0, 60.0))
def test_phi_series_reproduce_the_functions(p, t, lo, width):
    """Summing the series at random points gives ``t^k φ_k(t λ)`` for every ``k``
    (``t λ`` up to 600, short of overflow)."""
    from expint._phi import phi_all

    hi = lo + width
    coeffs = chebyshev_coefficients(p, t, lo, hi)
    x = np.linspace(-1, 1, 37)
    lam = 0.5 * (lo + hi) + 0.5 * (hi - lo) * x
    series = np.polynomial.chebyshev.chebval(x, coeffs)  # (p+1, 37)
    exact = np.asarray(phi_all(p, t * lam)) * (t ** np.arange(p + 1))[:, None]
    scale = np.max(np.abs(exact), axis=1, keepdims=True)
    assert np.all(np.abs(series - exact) <= 1e-13 * scale)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 30), density=st.floats(0.05, 0.6), seed=st.integers(0, 2**31), cplx=st.booleans())
def test_gershgorin_interval_contains_the_spectrum(n, density, seed, cplx):
    """For random sparse Hermitian matrices the interval contains every eigenvalue,
    and dense and sparse forms of one matrix give the same interval."""
    rng = np.random.default_rng(seed)
    m = sp.random(n, n, density=density, random_state=rng, format="csr")
    if cplx:
        m = m + 1j * sp.random(n, n, density=density, random_state=rng, format="csr")
    h = (m + m.conj().T).tocsr()
    lo, hi = spectral_interval(h)
    lam = np.linalg.eigvalsh(h.toarray())
    tiny = 1e-12 * max(1.0, float(np.max(np.abs(lam))))
    assert lo - tiny <= lam.min() and lam.max() <= hi + tiny
    assert np.allclose(spectral_interval(h.toarray()), (lo, hi), rtol=1e-12, atol=1e-12)
    assert np.allclose(spectral_interval(h.tocoo()), (lo, hi), rtol=1e-12, atol=1e-12)


def _awkward_sparse(n, density, seed, cplx, hermitian, layout):
    """A random sparse ``n × n`` matrix, Hermitian (``hermitian`` True), skew-Hermitian
    (``"skew"``) or neither, in one of the forms the CSR
    helpers must not be fooled by: canonical, with rows missing their diagonal entry,
    with explicitly stored zeros, with duplicate entries (summed), unsorted indices."""
    rng = np.random.default_rng(seed)
    m = sp.random(n, n, density=density, random_state=rng, format="csr")
    if cplx:
        m = m + 1j * sp.random(n, n, density=density, random_state=rng, format="csr")
    if hermitian == "skew":
        m = m - m.conj().T
    elif hermitian:
        m = m + m.conj().T
    m = sp.csr_matrix(m)
    if layout == "full diagonal":
        m = sp.csr_matrix(m + sp.diags(rng.standard_normal(n) + 3.0))
    elif layout == "explicit zeros":
        coo = m.tocoo()
        extra = rng.integers(0, n, size=(2, n))
        rows, cols = np.concatenate([coo.row, extra[0]]), np.concatenate([coo.col, extra[1]])
        data = np.concatenate([coo.data, np.zeros(n, dtype=coo.data.dtype)])
        m = sp.csr_matrix((data, (rows, cols)), shape=(n, n))  # summed: zeros stay stored
    elif layout == "duplicates":
        coo = m.tocoo()
        m = sp.csr_matrix(
            (np.concatenate([coo.data / 2, coo.data / 2]), (np.tile(coo.row, 2), np.tile(coo.col, 2))),
            shape=(n, n),
        )
        m.has_canonical_format = False  # keep the duplicates as stored
    elif layout == "unsorted":
        order = np.arange(m.nnz)
        for i in range(n):  # reverse the entries inside every row
            order[m.indptr[i] : m.indptr[i + 1]] = order[m.indptr[i] : m.indptr[i + 1]][::-1]
        m = sp.csr_matrix((m.data[order], m.indices[order], m.indptr), shape=(n, n))
        m.has_sorted_indices = False
    return m


_LAYOUTS = ["canonical", "full diagonal", "explicit zeros", "duplicates", "unsorted"]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 25),
    density=st.floats(0.0, 0.6),
    seed=st.integers(0, 2**31),
    cplx=st.booleans(),
    hermitian=st.sampled_from([False, True, "skew"]),
    layout=st.sampled_from(_LAYOUTS),
)
def test_csr_helpers_agree_with_dense_matrices(n, density, seed, cplx, hermitian, layout):
    """The O(nonzeros) shortcuts on a scipy CSR matrix (the symmetry tests, ``A = A^H``
    and ``A^H = −A``, on its CSC arrays, the stored diagonal's positions, the shifted
    matrix sharing the index arrays, Gershgorin's interval) give what the dense matrix
    gives, in every storage form."""
    from expint._backend import csr_diagonal_positions, sparse_is_hermitian
    from expint._chebyshev import shifted_csr

    m = _awkward_sparse(n, density, seed, cplx, hermitian, layout)
    dense = m.toarray()
    assert sparse_is_hermitian(m) == bool(np.array_equal(dense, dense.conj().T))
    assert sparse_is_hermitian(m, skew=True) == bool(np.array_equal(dense, -dense.conj().T))
    if hermitian == "skew" and layout != "full diagonal":
        assert sparse_is_hermitian(m, skew=True)  # the test can fail
    positions = csr_diagonal_positions(m)
    if positions is not None:
        assert m.has_canonical_format and np.array_equal(m.data[positions], np.diagonal(dense))
    elif m.has_canonical_format:
        assert np.count_nonzero(np.asarray(m.tocoo().row == m.tocoo().col)) < n  # a diagonal entry is missing
    shifted = shifted_csr(m, -0.75, 2.5)
    np.testing.assert_allclose(shifted.toarray(), -0.75 * dense + 2.5 * np.eye(n), rtol=1e-15, atol=1e-15)
    assert np.array_equal(m.toarray(), dense)  # A itself is left alone
    if hermitian is True:
        lo, hi = spectral_interval(m)
        assert np.allclose((lo, hi), spectral_interval(dense), rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 25),
    density=st.floats(0.05, 0.6),
    seed=st.integers(0, 2**31),
    cplx=st.booleans(),
    layout=st.sampled_from(_LAYOUTS),
    p=st.integers(0, 2),
    method=st.sampled_from(["auto", "chebyshev", "krylov"]),
)
def test_phiv_on_every_storage_form_of_a_hermitian_matrix(n, density, seed, cplx, layout, p, method):
    """End to end: `phiv` on a raw scipy matrix in any storage form (the shortcuts
    above, or the general paths they fall back to) gives the eigendecomposition's
    φ-combination."""
    m = _awkward_sparse(n, density, seed, cplx, True, layout)
    dense = m.toarray()
    norm = max(1.0, float(np.max(np.abs(np.linalg.eigvalsh(dense)))))
    t = 2.0 / norm
    rng = np.random.default_rng(seed)
    vs = [rng.standard_normal(n) + (1j * rng.standard_normal(n) if cplx else 0) for _ in range(p + 1)]
    try:
        w, _ = expint.phiv(m, vs, t, tol=1e-10, method=method)
    except ValueError as exc:  # forced Chebyshev where the result is far below the vectors
        assert method == "chebyshev" and "cannot meet tol" in str(exc), exc
        return
    assert _rel(w, _dense_reference(dense, vs, t)) <= 1e-8


def test_every_row_storing_its_diagonal_takes_the_shortcut():
    """The Laplacian stores every diagonal entry: the shifted matrix keeps its
    sparsity pattern (no sparse sum), and a row without one falls back to the sum."""
    from expint._backend import csr_diagonal_positions
    from expint._chebyshev import shifted_csr

    a = _laplacian_2d(12)
    positions = csr_diagonal_positions(a)
    assert positions is not None and np.array_equal(a.indices[positions], np.arange(144))
    shifted = shifted_csr(a, 0.5, -1.0)
    assert np.shares_memory(shifted.indices, a.indices) and shifted.nnz == a.nnz
    hole = a.tolil()
    hole[3, 3] = 0.0
    hole = hole.tocsr()
    hole.eliminate_zeros()
    assert csr_diagonal_positions(hole) is None
    # as many diagonal matches as rows, but row 0 stores its diagonal twice and row 1 none
    twice = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([0, 0, 0]), np.array([0, 2, 3])), shape=(2, 2))
    assert not twice.has_canonical_format and csr_diagonal_positions(twice) is None
    np.testing.assert_array_equal(shifted_csr(twice, 1.0, 1.0).toarray(), [[4.0, 0.0], [3.0, 1.0]])
    np.testing.assert_array_equal(shifted_csr(hole, 0.5, -1.0).toarray(), 0.5 * hole.toarray() - np.eye(144))


def test_coefficients_are_kept_read_only_for_repeated_calls(rng):
    """A solver's steps of one size ask for the same coefficients again: the second call
    returns the kept array, which no caller can change, and results do not move."""
    chebyshev_coefficients.cache_clear()
    first = chebyshev_coefficients(2, 1e-3, -8000.0, 0.0)
    assert chebyshev_coefficients(2, 1e-3, -8000.0, 0.0) is first and not first.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        first[0, 0] = 1.0
    a = _laplacian_2d(20)
    vs = [rng.standard_normal(400), rng.standard_normal(400)]
    w1, _ = expint.phiv(a, vs, 1e-3, tol=1e-11, method="chebyshev")
    w2, _ = expint.phiv(a, vs, 1e-3, tol=1e-11, method="chebyshev")
    assert np.array_equal(w1, w2) and _rel(w1, exact_phiv(2, 20, vs, 1e-3)) <= 1e-11
    # an operator's clear_cache (what expint.study calls before each timed run) drops them
    assert chebyshev_coefficients.cache_info().currsize > 0
    expint.Sparse(a).clear_cache()
    assert chebyshev_coefficients.cache_info().currsize == 0


def test_interval_of_the_laplacian_is_tight():
    """The 5-point Laplacian's Gershgorin interval is ``[−8/h², 0]``-like: within a few
    percent of its true extreme eigenvalues (what makes the expansion competitive)."""
    a = _laplacian_2d(40)
    lo, hi = spectral_interval(a)
    lam = np.linalg.eigvalsh(a.toarray())
    assert hi >= lam.max() and hi - lam.max() <= 0.01 * abs(lo)
    assert lo <= lam.min() <= 0.99 * lo


# ---------------------------------------------------------------------------------------
# which method runs


def test_auto_takes_chebyshev_for_rough_vectors_only(rng):
    """``method="auto"`` on a Hermitian matrix: Chebyshev for ``e^{tA} v`` and for a
    φ-combination whose ``v_0`` is rough; Lanczos for a smooth ``v_0`` (which Lanczos
    resolves in a few products) and for a zero one (no roughness to read); Arnoldi where
    ``A`` is not Hermitian; Lanczos for a matrix-free operator without an interval,
    Chebyshev once it has one."""
    n = 60
    a = _laplacian_2d(n)
    x = np.linspace(0, 1, n + 2)[1:-1]
    smooth = np.outer(np.sin(np.pi * x), np.sin(np.pi * x)).ravel()
    rough = smooth + 0.1 * rng.standard_normal(n * n)
    t = 1e-3
    assert expint.phiv(a, [rough], t).info.chebyshev
    assert expint.phiv(a, [rough], -t).info.chebyshev
    smooth_info = expint.phiv(a, [smooth], t).info
    assert smooth_info.lanczos and not smooth_info.chebyshev
    w, info = expint.phiv(a, [rough, rough, smooth], t, tol=1e-10)
    assert info.chebyshev and _rel(w, exact_phiv(2, n, [rough, rough, smooth], t)) <= 1e-10
    assert expint.phiv(a, [smooth, rough], t).info.lanczos
    assert expint.phiv(a, [0 * rough, rough], t).info.lanczos
    assert not expint.phiv(a, [rough], t, hermitian=False).info.chebyshev
    free = expint.MatrixFree(lambda v: a @ v, n * n, hermitian=True)
    assert expint.phiv(free, [rough], t).info.lanczos
    bounded = expint.MatrixFree(lambda v: a @ v, n * n, hermitian=True, spectrum=spectral_interval(a))
    w, info = expint.phiv(bounded, [rough], t, tol=1e-10)
    assert info.chebyshev and _rel(w, exact_phiv(2, n, [rough], t)) <= 1e-10
    assert expint.phiv(a, [rough], t, spectrum=(-8e4, 0.0)).info.chebyshev


def test_a_cancelling_single_vector_form_gives_way(rng):
    """‖tA‖ = 3600 and rough vectors: the single-vector form's terms reach ~10⁷ times
    the result, whose rounding rules out ``tol = 1e-10``.  It declines before expanding;
    ``method="chebyshev"`` then expands each term on its own vector, and ``"auto"``
    runs Krylov — both to ``tol``."""
    from expint._chebyshev import ChebyshevUnfit
    from expint._krylov import _chebyshev_single_vector

    a = sparse_1d(3000)
    vs = list(rng.standard_normal((3, 3000)))
    lo, hi = spectral_interval(a)

    def amul(x):
        return (a @ x.T).T

    with pytest.raises(ChebyshevUnfit, match="cancellation"):
        _chebyshev_single_vector(amul, [v[None] for v in vs], 1e-4, lo, hi, 1e-10, 2.2e-16, 1.0)
    ref = exact_phiv(1, 3000, vs, 1e-4)
    w, info = expint.phiv(a, vs, 1e-4, tol=1e-10, method="chebyshev")
    assert info.chebyshev and _rel(w, ref) <= 1e-10
    w, info = expint.phiv(a, vs, 1e-4, tol=1e-10)
    assert not info.chebyshev and _rel(w, ref) <= 1e-10


def test_operators_pass_their_method_on(rng):
    """`Sparse` and `MatrixFree` take ``method`` for every φ-combination they compute
    (a solver's stages); a wrong one is refused at construction."""
    a = _laplacian_2d(20)
    v = rng.standard_normal(400)
    for method, chebyshev in (("auto", True), ("krylov", False)):
        op = expint.Sparse(a, method=method)
        op.phi_combination(1e-3, 1.0, [v])
        assert op.krylov_info.chebyshev is chebyshev and op.krylov_info.lanczos is not chebyshev
    for make in (
        lambda m: expint.Sparse(a, method=m),
        lambda m: expint.MatrixFree(lambda x: a @ x, 400, method=m),
    ):
        with pytest.raises(ValueError, match="method must be one of"):
            make("lanczos")


def test_sparse_operator_carries_its_interval(rng):
    """`expint.Sparse` computes the Gershgorin interval of a Hermitian matrix once; a
    solver's φ-products then use it without recomputing."""
    a = _laplacian_2d(20)
    op = expint.Sparse(a)
    assert op.spectrum == spectral_interval(a)
    assert expint.Sparse(a + sp.diags([np.ones(399)], [1])).spectrum is None
    v = rng.standard_normal(400)
    w, info = expint.phiv(op, [v], 1e-3, tol=1e-11)
    assert info.chebyshev and _rel(w, exact_phiv(2, 20, [v], 1e-3)) <= 1e-11


@pytest.mark.parametrize("kind", ["scipy", "dense"])
def test_the_recurrence_runs_on_the_shifted_matrix(kind, monkeypatch, rng):
    """For an explicit matrix the recurrence multiplies by ``2Â = (2/r)(A − cI)``,
    formed once per call (one product and two passes per term instead of one product
    and four): the result equals the recurrence that scales and shifts each product."""
    from expint import _krylov

    a = _laplacian_2d(30)
    a = a if kind == "scipy" else a.toarray()
    vs = [rng.standard_normal(900), rng.standard_normal(900)]
    built = []

    def counting(*args):
        built.append(args[1:3])
        return real(*args)

    real = _krylov.shifted_product
    monkeypatch.setattr(_krylov, "shifted_product", counting)
    for k in (1, 2):
        for t in (2e-3, -2e-3):
            w, info = expint.phiv(a, vs[:k], t, tol=1e-11, method="chebyshev")
            assert info.chebyshev and len(built) == 1
            monkeypatch.setattr(_krylov, "shifted_product", lambda *args: None)
            plain, _ = expint.phiv(a, vs[:k], t, tol=1e-11, method="chebyshev")
            monkeypatch.setattr(_krylov, "shifted_product", counting)
            assert _rel(w, plain) <= 1e-13
            built.clear()
    assert _rel(expint.phiv(a, vs[:1], 2e-3, tol=1e-11)[0], exact_phiv(2, 30, vs[:1], 2e-3)) <= 1e-11


def test_sparse_keeps_its_shifted_matrix(monkeypatch, rng):
    """`expint.Sparse` forms ``scale·A + shift·I`` once per sign of the step (the
    interval is the operator's, fixed): steps of every length reuse it."""
    from expint import _operators

    calls = []
    real = _operators.shifted_csr
    monkeypatch.setattr(_operators, "shifted_csr", lambda *args: calls.append(args[1:]) or real(*args))
    op = expint.Sparse(_laplacian_2d(20))
    v = rng.standard_normal(400)
    for t in (1e-3, 2e-3, 5e-4, -1e-3, -3e-3):
        w, info = expint.phiv(op, [v], t, tol=1e-11, method="chebyshev")
        assert info.chebyshev and _rel(w, exact_phiv(2, 20, [v], t)) <= 1e-11
    assert len(calls) == 2


@needs_torch
@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_sparse_shifted_matrix_on_torch_states(rng):
    """A `Sparse` scipy matrix acting on torch states (and a torch one on numpy states)
    gets its shifted matrix in the states' library and precision."""
    a = _laplacian_2d(20)
    v = rng.standard_normal(400)
    ref = exact_phiv(2, 20, [v], 1e-3)
    for op in (expint.Sparse(a), expint.Sparse(torch.from_numpy(a.toarray()).to_sparse_csr())):
        w, info = expint.phiv(op, [torch.from_numpy(v)], 1e-3, tol=1e-11, method="chebyshev")
        assert info.chebyshev and w.dtype == torch.float64 and _rel(w.numpy(), ref) <= 1e-11
        w32, info = expint.phiv(op, [torch.from_numpy(v).float()], 1e-3, tol=1e-5, method="chebyshev")
        assert info.chebyshev and w32.dtype == torch.float32 and _rel(w32.numpy(), ref) <= 1e-5
        w, _ = expint.phiv(op, [v], 1e-3, tol=1e-11, method="chebyshev")
        assert _rel(w, ref) <= 1e-11


# ---------------------------------------------------------------------------------------
# errors


def test_bad_method_and_spectrum_arguments(rng):
    a = sparse_1d(30)
    v = rng.standard_normal(30)
    with pytest.raises(ValueError, match="method must be one of"):
        expint.phiv(a, [v], 0.1, method="lanczos")
    with pytest.raises(ValueError, match="needs a Hermitian A"):
        expint.phiv(a + sp.diags([np.ones(29)], [1]), [v], 0.1, method="chebyshev")
    with pytest.raises(ValueError, match="needs a Hermitian A"):
        expint.phiv(a, [v], 0.1, method="chebyshev", hermitian=False)
    free = expint.MatrixFree(lambda x: a @ x, 30, hermitian=True)
    with pytest.raises(ValueError, match="pass spectrum"):
        expint.phiv(free, [v], 0.1, method="chebyshev")
    for bad in ((1.0, -1.0), (0.0, np.inf), (np.nan, 0.0)):
        with pytest.raises(ValueError, match="spectrum must be a finite interval"):
            expint.phiv(a, [v], 0.1, spectrum=bad)
    for bad in (3.0, (1.0,), ("a", "b")):
        with pytest.raises(TypeError, match="spectrum must be a pair"):
            expint.phiv(a, [v], 0.1, spectrum=bad)
    with pytest.raises(ValueError, match="pass hermitian=True"):
        expint.MatrixFree(lambda x: a @ x, 30, spectrum=(-4e3, 0.0))
    for kwargs in ({"hermitian": False}, {}):
        target = a if kwargs else a + sp.diags([np.ones(29)], [1])
        with pytest.raises(ValueError, match="spectrum is for a Hermitian A"):
            expint.phiv(target, [v], 0.1, spectrum=(-4e3, 0.0), **kwargs)


# ---------------------------------------------------------------------------------------
# torch


@needs_torch
@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("layout", ["dense", "coo", "csr"])
def test_torch_matrices_and_vectors(layout, rng):
    """Torch dense and sparse matrices: the same interval as scipy's, the result of the
    numpy path, in the vectors' dtype."""
    a = _laplacian_2d(25)
    dense = torch.from_numpy(a.toarray())
    mat = {"dense": dense, "coo": dense.to_sparse_coo(), "csr": dense.to_sparse_csr()}[layout]
    assert np.allclose(spectral_interval(mat), spectral_interval(a), rtol=1e-14)
    v = rng.standard_normal(625)
    ref = exact_phiv(2, 25, [v], 2e-3)
    w, info = expint.phiv(mat, [torch.from_numpy(v)], 2e-3, tol=1e-11, method="chebyshev")
    assert info.chebyshev and w.dtype == torch.float64 and _rel(w.numpy(), ref) <= 1e-11
    # float32: the rounding estimate (float32's ε times the weighted coefficient sum)
    # allows 1e-5 here, not the floored 1.2e-6, where "auto" hands over to Lanczos
    v32, mat32 = torch.from_numpy(v).float(), mat.to(torch.float32)
    w32, info = expint.phiv(mat32, [v32], 2e-3, tol=1e-5, method="chebyshev")
    assert info.chebyshev and w32.dtype == torch.float32 and _rel(w32.numpy(), ref) <= 1e-5
    w32, info = expint.phiv(mat32, [v32], 2e-3, tol=1e-10)
    assert info.lanczos and _rel(w32.numpy(), ref) <= 1.2e-6


@needs_torch
def test_torch_path_reads_back_a_fixed_number_of_values(monkeypatch, rng):
    """On a GPU every value read back waits for the queued kernels.  The Chebyshev loop
    reads nothing back (its coefficients are host numbers passed as kernel arguments):
    the count of host transfers does not grow with the terms (19 and 55 here; one more
    read where the result's norm asks for a second pass), and is small.  Counted
    on the CPU through the backend's conversion functions, as for the Krylov loop in
    tests/test_phiv.py."""
    import expint._chebyshev as cheb

    counts = count_transfers(monkeypatch, *KRYLOV_MODULES, cheb)
    a = torch.from_numpy(sparse_1d(400).toarray())
    v = torch.from_numpy(rng.standard_normal(400))
    seen = []
    for t in (2e-5, 2e-4):
        counts["transfers"] = 0
        w, info = expint.phiv(a, [v], t, tol=1e-10)
        assert info.chebyshev
        seen.append((info.matvecs, counts["transfers"]))
        assert _rel(w.numpy(), exact_phiv(1, 400, [v.numpy()], t)) <= 1e-10
    (few, first), (many, second) = seen
    assert many >= 2.5 * few and max(first, second) <= 8, seen


# ---------------------------------------------------------------------------------------
# end to end on random Hermitian matrices


@settings(max_examples=int(os.environ.get("EXPINT_FUZZ_EXAMPLES", "40")), deadline=None)
@given(
    n=st.integers(1, 40),
    seed=st.integers(0, 2**31),
    decades=st.integers(-2, 3),
    lift=st.floats(-1.0, 0.3),
    p=st.integers(0, 3),
    t=st.sampled_from([-2.0, -0.01, 1e-3, 0.1, 1.0, 4.0]),
    tol=st.sampled_from([1e-4, 1e-8, 1e-11]),
    method=st.sampled_from(["auto", "chebyshev", "krylov"]),
    layout=st.sampled_from(["dense", "csr", "complex"]),
    rough=st.booleans(),
)
def test_phiv_meets_tol_on_random_hermitian_matrices(
    n, seed, decades, lift, p, t, tol, method, layout, rough
):
    """Any Hermitian ``A`` (``tA``'s spectrum of width up to 1e3, up to 300 of it
    positive), any vectors, ``t`` of either sign, every method: the result is within ``tol`` of the
    eigendecomposition's, up to the rounding of the intermediate quantities
    (``ε‖tA‖`` times their size, docs/operators.md, *Accuracy limit*), or a forced
    Chebyshev expansion declines with a ValueError that says why."""
    rng = np.random.default_rng(seed)
    stiffness = 10.0**decades  # the width of tA's spectrum, [(lift − 1)·S, lift·S]
    lam = (rng.uniform(-stiffness, 0.0, n) + lift * stiffness) / t
    g = rng.standard_normal((n, n))
    q, _ = np.linalg.qr(g + 1j * rng.standard_normal((n, n)) if layout == "complex" else g)
    a = (q * lam) @ q.conj().T
    a = 0.5 * (a + a.conj().T)  # exactly Hermitian, as the detection requires
    x = np.linspace(0.0, 1.0, n)
    vs = [
        np.sin(np.pi * (k + 1) * x) + (rng.standard_normal(n) if rough else 0.0) + 0j * (layout == "complex")
        for k in range(p + 1)
    ]
    if layout != "complex":
        vs = [v.real for v in vs]
    op = sp.csr_matrix(a) if layout == "csr" else a
    ref = _dense_reference(a, vs, t)
    try:
        w = expint.phiv(op, vs, t, tol=tol, method=method).w
    except ValueError as exc:
        assert method == "chebyshev" and "cannot meet tol" in str(exc), exc
        return
    lam_true = np.linalg.eigvalsh(a)
    size = sum(abs(t) ** k / math.factorial(k) * np.linalg.norm(v) for k, v in enumerate(vs))
    growth = max(1.0, float(np.exp(np.max(t * lam_true))))
    floor = 100 * np.finfo(float).eps * (1.0 + abs(t) * np.max(np.abs(lam_true))) * size * growth
    err = float(np.linalg.norm(w - ref))
    assert err <= 10 * tol * np.linalg.norm(ref) + floor, (err, np.linalg.norm(ref), floor)
