"""Krylov φ-vector products on finite-difference Laplacians and against dense φ."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse.linalg as spla
from _optional import BACKENDS, needs_torch, torch
from _threads import blas_threads
from _transfers import KRYLOV_MODULES, count_transfers

import expint
from laplacian import eigenvalues_1d, exact_phiv, matvec_2d, sparse_1d


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def _dense_reference(a: np.ndarray, vs, t):
    phis = expint.phi_matrix_all(len(vs) - 1, t * a)
    return sum(t**k * phis[k] @ v for k, v in enumerate(vs))


@pytest.mark.parametrize("tol", [1e-6, 1e-10])
@pytest.mark.parametrize(("n", "t", "p"), [(100, 1e-3, 3), (200, 1e-2, 0), (150, 1e-2, 4), (50, 1.0, 2)])
def test_1d_laplacian_meets_tolerance_against_dense(n, t, p, tol, rng):
    a = sparse_1d(n)
    vs = [rng.standard_normal(n) for _ in range(p + 1)]
    w, info = expint.phiv(a, vs, t, tol=tol)
    ref = _dense_reference(a.toarray(), vs, t)
    assert _rel(w, ref) <= tol
    # the estimate is an honest (not wildly pessimistic) error bound here
    assert info.error_estimate <= tol * np.linalg.norm(w)
    assert info.matvecs > 0 and info.substeps >= 1 and len(info.basis_sizes) == info.substeps


@pytest.mark.parametrize("scale", [1e-162, 1e-250, 1e200, 1e300])
@pytest.mark.parametrize("hermitian", [None, False])
def test_vectors_near_the_ends_of_the_range_are_scaled(scale, hermitian, rng):
    """Entries of 1e-162 (a solve whose state had decayed there) made the squares
    behind the norms subnormal: 1e5 rejected sub-steps and a RuntimeError, after 20 s.
    The result is linear in the vectors, so it must be ``scale`` times the unscaled one."""
    n = 40
    a = sparse_1d(n)
    vs = [rng.standard_normal(n) for _ in range(3)]
    want = expint.phiv(a, vs, 0.05, hermitian=hermitian)
    got = expint.phiv(a, [v * scale for v in vs], 0.05, hermitian=hermitian)
    assert _rel(got.w / scale, want.w) <= 1e-9
    assert got.info.substeps <= 2 * want.info.substeps  # (the vectors it works on are within 2× of these)


def test_dense_sparse_linear_operator_and_matrixfree_agree(rng):
    n = 80
    a = sparse_1d(n)
    vs = [rng.standard_normal(n) for _ in range(3)]
    results = [
        expint.phiv(a, vs, 2e-3, tol=1e-12).w,
        expint.phiv(a.toarray(), vs, 2e-3, tol=1e-12).w,
        expint.phiv(spla.aslinearoperator(a), vs, 2e-3, tol=1e-12).w,
        expint.phiv(expint.MatrixFree(lambda v: a @ v, n), vs, 2e-3, tol=1e-12).w,
    ]
    for r in results[1:]:
        np.testing.assert_allclose(r, results[0], rtol=1e-10, atol=1e-12 * np.abs(results[0]).max())


@pytest.mark.parametrize(("dim", "n", "t"), [(1, 2000, 1e-5), (2, 60, 1e-3), (2, 500, 2e-5)])
def test_matrix_free_laplacian_against_sine_transform(dim, n, t, rng):
    """Up to n = 250,000 unknowns (2-D, 500 x 500), matrix-free."""
    size = n**dim
    lap = sparse_1d(n) if dim == 1 else None
    matvec = matvec_2d(n) if dim == 2 else (lambda v: lap @ v)
    op = expint.MatrixFree(matvec, size)
    x = np.linspace(0, 1, n + 2)[1:-1]
    smooth = np.sin(np.pi * x) * (1 + x)
    v0 = np.outer(smooth, smooth).ravel() if dim == 2 else smooth
    vs = [v0, rng.standard_normal(size), np.ones(size)]
    w, info = expint.phiv(op, vs, t, tol=1e-8)
    ref = exact_phiv(dim, n, vs, t)
    assert _rel(w, ref) <= 1e-8
    assert info.matvecs >= 10


def test_happy_breakdown_is_exact(rng):
    d = np.repeat([-1.0, -5.0, -20.0], 30)
    v = rng.standard_normal(90)
    # p = 1: the augmented Krylov space is invariant after three vectors, and the
    # breakdown is at rounding level (with p = 2 the residual stalls near 1e-13·‖A‖,
    # above the test, and the run ends through the ordinary error control instead)
    w, info = expint.phiv(np.diag(d), [v, v], 0.7, method="krylov")
    ref = _dense_reference(np.diag(d), [v, v], 0.7)
    assert info.happy_breakdowns == 1
    assert _rel(w, ref) < 1e-13


def test_complex_operator_and_negative_time(rng):
    a = 1j * sparse_1d(60).toarray()  # Schrödinger-type, imaginary spectrum
    v = rng.standard_normal(60) + 0j
    w, _ = expint.phiv(a, [v, v], -1e-3, tol=1e-12)
    assert _rel(w, _dense_reference(a, [v, v], -1e-3)) < 1e-11


@needs_torch
def test_torch_vectors_keep_type_and_match_numpy():
    a = sparse_1d(100)
    at = torch.from_numpy(a.toarray())
    v = torch.randn(100, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    w, _ = expint.phiv(expint.MatrixFree(lambda x: at @ x, 100), [v, 2 * v], 1e-3, tol=1e-12)
    assert isinstance(w, torch.Tensor) and w.dtype == torch.float64
    ref = _dense_reference(a.toarray(), [v.numpy(), 2 * v.numpy()], 1e-3)
    assert _rel(w.numpy(), ref) < 1e-11


def test_zero_time_returns_v0(rng):
    v = rng.standard_normal(5)
    w, info = expint.phiv(np.eye(5), [v, v], 0.0)
    np.testing.assert_array_equal(w, v)
    assert info.matvecs == 0


@pytest.mark.parametrize(("matrix_free", "hermitian"), [(False, False), (True, None), (False, None)])
def test_several_right_hand_sides_at_once(matrix_free, hermitian, rng):
    """A block ``(B, n)`` of right-hand sides gives each row's own result (to the
    tolerance), including a zero row and a row whose Krylov space is invariant; on
    Arnoldi (the augmented operator) and on Lanczos (the symmetric explicit matrix)."""
    import scipy.sparse as sp

    # a diffusion block (‖tA‖ ≈ 50) and a diagonal block with three eigenvalues; n is
    # long enough for the Arnoldi checkpoints
    op = sp.block_diag([1e-4 * sparse_1d(2500), sp.diags(np.repeat([-1.0, -5.0, -20.0], 167))], format="csr")
    n, t = op.shape[0], 0.02
    a = expint.MatrixFree(lambda v: op @ v, n) if matrix_free else op
    v0, v1 = rng.standard_normal((4, n)), rng.standard_normal((4, n))
    v0[2] = v1[2] = 0.0  # w = φ_1(tA)·0: zero (its augmented vector breaks down at once)
    # only the eigenvalues −1 and −5 of the diagonal block: invariant after two vectors.
    # (All three eigenvalues made the row's third residual ~5e-13 = 100·eps·‖H‖, at the
    # breakdown threshold 64·eps·‖H‖₁: on Lanczos the count then hung on the BLAS build's
    # rounding — found as a failure after a fresh install.  Two leave it at ~4e-15.)
    v0[3, :2500] = v1[3] = 0.0
    v0[3, 2500 + 2 * 167 :] = 0.0
    w, info = expint.phiv(a, [v0, v1], t, tol=1e-8, hermitian=hermitian, method="krylov")
    assert info.lanczos == (hermitian is None and not matrix_free)
    # rows 2 and 3 on the augmented operator; on Lanczos row 2 (w_1 = 0) never starts
    assert w.shape == (4, n) and info.happy_breakdowns >= (1 if info.lanczos else 2)
    for b in range(4):
        alone, _ = expint.phiv(op, [v0[b], v1[b]], t, tol=1e-12, method="krylov")
        assert np.linalg.norm(w[b] - alone) <= 1e-7 * np.linalg.norm(alone) or b == 2, b
    assert not np.any(w[2])


@needs_torch
def test_several_right_hand_sides_on_torch_sparse(rng):
    n = 400
    lap = sparse_1d(n).tocoo()
    at = torch.sparse_coo_tensor(
        np.vstack([lap.row, lap.col]), lap.data, size=lap.shape, check_invariants=True
    ).coalesce()
    vs = [torch.from_numpy(rng.standard_normal((3, n))) for _ in range(2)]
    w, _ = expint.phiv(expint.Sparse(at), vs, 0.01, tol=1e-10)
    ref = expint.phiv(lap.tocsr(), [v.numpy() for v in vs], 0.01, tol=1e-10).w
    assert isinstance(w, torch.Tensor)
    np.testing.assert_allclose(w.numpy(), ref, rtol=1e-8, atol=1e-8 * np.abs(ref).max())


@needs_torch
@pytest.mark.parametrize("hermitian", [None, False])
@pytest.mark.parametrize("p", [0, 2])
def test_torch_krylov_moves_one_set_of_scalars_per_iteration(p, hermitian, monkeypatch, rng):
    """On a GPU every host scalar sent to the device, or read from it, waits for the
    queued kernels.  The torch Krylov loop keeps its scalars on the device and reads an
    iteration's back together (Lanczos: ``α_j`` and ``‖u‖``; Arnoldi: the column of
    ``H`` and ``‖u‖``): one transfer per iteration plus a few per sub-step (Lanczos
    made four per iteration: 244 for 60, as this test counted them on that code).
    Counted on the CPU through the backend's conversion functions; the result
    matches numpy's."""
    counts = count_transfers(monkeypatch, *KRYLOV_MODULES)
    n = 400
    a = sparse_1d(n).toarray()
    vs = [rng.standard_normal(n) for _ in range(p + 1)]
    tvs = [torch.from_numpy(v) for v in vs]
    method = "krylov"  # the Chebyshev path reads nothing back until the end
    w, info = expint.phiv(torch.from_numpy(a), tvs, 2e-4, tol=1e-10, hermitian=hermitian, method=method)
    iterations = sum(info.basis_sizes)
    assert info.lanczos is (hermitian is None) and iterations >= 30
    assert counts["transfers"] <= iterations + 16 * info.substeps, (counts, iterations, info.substeps)
    assert _rel(w.numpy(), expint.phiv(a, vs, 2e-4, tol=1e-10).w) < 1e-9


@needs_torch
@pytest.mark.parametrize("layout", ["csr", "csc"])
def test_compressed_torch_sparse_matrices(layout, rng):
    """Raw CSR and CSC tensors as ``A`` (they used to fail in the symmetry check, which
    took them for dense tensors): one vector and a block, real and complex, against
    the scipy matrix; a Hermitian path (Lanczos or Chebyshev) where the matrix is
    symmetric."""
    n = 60
    lap = sparse_1d(n).tocoo()
    coo = torch.sparse_coo_tensor(
        np.vstack([lap.row, lap.col]), lap.data, size=lap.shape, check_invariants=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: "CSR support is in beta"
        at = coo.to_sparse_csr() if layout == "csr" else coo.to_sparse_csc()
    vs = [rng.standard_normal((2, n)) for _ in range(2)]
    ref = expint.phiv(lap.tocsr(), vs, 1e-3, tol=1e-12).w
    w, info = expint.phiv(at, [torch.from_numpy(v) for v in vs], 1e-3, tol=1e-12)
    assert (info.lanczos or info.chebyshev) and _rel(w.numpy(), ref) < 1e-11  # symmetric: either
    w1 = expint.phiv(at, [torch.from_numpy(vs[0][0]) * (1 + 2j)], 1e-3, tol=1e-12).w
    ref1 = expint.phiv(lap.tocsr(), [vs[0][0] * (1 + 2j)], 1e-3, tol=1e-12).w
    assert w1.dtype == torch.complex128 and _rel(w1.numpy(), ref1) < 1e-11


@pytest.mark.parametrize("t", [1e-3, 1e-2])
def test_single_precision_phi_terms_meet_the_tolerance(t, rng):
    """float32 vectors on a stiff symmetric ``A`` (‖tA‖ ≈ 160 and 1600), p = 2: the
    single-vector form's rounding is estimated with float32's unit roundoff, so where
    it would keep the sum from ``tol`` the augmented Arnoldi process takes over.  With
    float64's in that estimate these calls returned 48× and 96× ``tol`` (now 2.6e-6
    and 2.3e-6)."""
    n = 200
    a = sparse_1d(n).toarray()
    vs = [rng.standard_normal((2, n)) for _ in range(3)]
    ref = expint.phiv(a, vs, t, tol=1e-12).w
    w = expint.phiv(a.astype(np.float32), [v.astype(np.float32) for v in vs], t, tol=1e-5).w
    assert w.dtype == np.float32
    assert _rel(w.astype(float), ref) < 1e-5


def test_a_tolerance_below_single_precision_is_raised_to_its_floor(rng):
    """float32 vectors cannot meet ``tol = 1e-10`` (the operators' default): it is
    raised to 10 units of float32's roundoff, so the call does the work of
    ``tol = 1.2e-6`` instead of chasing rounding noise (here 20 products, 25 without
    the floor; on larger steps the chase ended in retries and the Arnoldi fallback)."""
    n = 48
    lap = sparse_1d(n) * 0.01
    import scipy.sparse as sp

    a = (sp.kron(lap, sp.eye(n)) + sp.kron(sp.eye(n), lap)).tocsr()
    v = rng.standard_normal(n * n)
    ref = expint.phiv(a, [v], 0.1, tol=1e-13).w
    floor = 10 * float(np.finfo(np.float32).eps)
    w, info = expint.phiv(a.astype(np.float32), [v.astype(np.float32)], 0.1, tol=1e-10)
    _, at_floor = expint.phiv(a.astype(np.float32), [v.astype(np.float32)], 0.1, tol=floor)
    assert info.matvecs == at_floor.matvecs and info.lanczos
    assert _rel(w.astype(float), ref) < 1e-5


_SKEW3 = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 2.0], [0.0, -2.0, 0.0]])


@pytest.mark.parametrize(
    ("a", "vs", "kw", "exc", "match"),
    [
        (np.ones((3, 4)), [np.ones(3)], {}, ValueError, "square"),
        (np.eye(3), [np.ones(4)], {}, ValueError, r"vs\[0\] must have shape \(3,\)"),
        (np.eye(3), [np.ones(3), np.ones(2)], {}, ValueError, r"vs\[1\]"),
        (np.eye(3), [np.ones((2, 3)), np.ones(3)], {}, ValueError, "use one shape"),
        (np.eye(3), [np.arange(3)], {}, TypeError, "integer"),
        (np.eye(3), [np.array([1.0, np.nan, 0])], {}, ValueError, "finite"),
        (np.eye(3), [], {}, TypeError, "non-empty"),
        (np.eye(3), [None, None], {}, TypeError, "only None"),
        (np.eye(3), [np.ones(3)], {"tol": 0.0}, ValueError, "tol"),
        (np.eye(3), [np.ones(3)], {"t": float("inf")}, ValueError, "finite real"),
        (expint.MatrixFree, [np.ones(3)], {}, TypeError, "class"),
        ("matrix", [np.ones(3)], {}, TypeError, "A must be"),
        (np.triu(np.ones((3, 3))), [np.ones(3)], {"hermitian": True}, ValueError, "not Hermitian"),
        (np.eye(3), [np.ones(3)], {"hermitian": "yes"}, TypeError, "hermitian"),
        (np.eye(3), [np.ones(3)], {"skew_hermitian": True}, ValueError, "not skew-Hermitian"),
        (np.triu(np.ones((3, 3))), [np.ones(3)], {"skew_hermitian": True}, ValueError, "not skew-Hermitian"),
        (np.eye(3), [np.ones(3)], {"skew_hermitian": 1}, TypeError, "skew_hermitian must"),
        (np.eye(3), [np.ones(3)], {"hermitian": True, "skew_hermitian": True}, ValueError, "both"),
        (_SKEW3, [np.ones(3)], {"spectrum": (-1.0, 1.0)}, ValueError, "spectrum is for a Hermitian"),
        (_SKEW3, [np.ones(3)], {"method": "chebyshev"}, ValueError, "chebyshev"),
        (np.eye(3), [np.ones(3)], {"m": 0}, ValueError, "m must"),
        (np.eye(3), [np.ones(3)], {"max_substeps": 0}, ValueError, "max_substeps must"),
        (np.eye(3), [np.ones(3)], {"max_substeps": 2.5}, ValueError, "max_substeps must"),
    ],
)
def test_bad_input(a, vs, kw, exc, match):
    with pytest.raises(exc, match=match):
        expint.phiv(a, vs, **kw)


@pytest.mark.parametrize("backend", BACKENDS)
def test_none_stands_for_a_zero_vector(backend):
    """``phiv(A, [None, v])`` (φ_1 only) was refused with "vs[0] must have shape (n,),
    got ()"; ``None`` is the zero vector, as in the operators' φ-combinations."""
    a = -np.diag(np.arange(1.0, 6.0)) + 0.3 * np.eye(5, k=1)
    v = np.linspace(1.0, 2.0, 5)
    ref = 0.5 * expint.phi_matrix(1, 0.5 * a) @ v + 0.25 * expint.phi_matrix(2, 0.5 * a) @ v
    if backend == "torch":
        a, v = torch.from_numpy(a), torch.from_numpy(v)
    w, _ = expint.phiv(a, [None, v, v], t=0.5)
    assert type(w) is type(v) and w.dtype == v.dtype
    np.testing.assert_allclose(np.asarray(w), ref, rtol=1e-12)


@pytest.mark.parametrize("shape", [(0,), (3, 0)])
def test_an_empty_system_gives_an_empty_result(shape):
    """``n = 0`` (a 0 × 0 operator) is a valid, if trivial, input: an empty result of
    the vectors' shape, not a reshape error from deep inside."""
    w, info = expint.phiv(np.zeros((0, 0)), [np.ones(shape)] * 2, 0.5)
    assert w.shape == shape and info.matvecs == 0


@pytest.mark.parametrize(
    ("n", "t", "p", "tol"), [(100, 1e-3, 3, 1e-4), (200, 1e-2, 0, 1e-6), (50, 1.0, 2, 1e-5)]
)
def test_the_error_estimate_is_not_an_underestimate(n, t, p, tol):
    """The a-posteriori estimate must bound the true error from above (within 2×), so an
    estimate stuck at zero, or one that ignores the discarded Krylov residual, fails."""
    a = sparse_1d(n)
    rng = np.random.default_rng(11)
    vs = [rng.standard_normal(n) for _ in range(p + 1)]
    w, info = expint.phiv(a, vs, t, tol=tol)
    actual = np.linalg.norm(w - _dense_reference(a.toarray(), vs, t))
    assert actual > 0 and info.error_estimate >= 0.5 * actual, (actual, info.error_estimate)


# ---------------------------------------------------------------------------------------
# the Lanczos path (Hermitian A)


@pytest.mark.parametrize("tol", [1e-6, 1e-10, 1e-13])
@pytest.mark.parametrize(("dim", "n", "t"), [(1, 3000, 1e-5), (2, 70, 2e-3), (1, 400, 1e-4), (2, 30, 2e-3)])
def test_lanczos_meets_tolerance_on_laplacians(dim, n, t, tol, rng):
    """A symmetric sparse matrix is detected and its exponential built by Lanczos, to
    the tolerance against the sine-transform solution (the checkpoints and sub-steps both
    run, on long and on short vectors); Arnoldi on the same input agrees."""
    import scipy.sparse as sp

    lap = sparse_1d(n)
    a = lap if dim == 1 else (sp.kron(lap, sp.eye(n)) + sp.kron(sp.eye(n), lap)).tocsr()
    v = rng.standard_normal(a.shape[0])
    w, info = expint.phiv(a, [v], t, tol=tol, method="krylov")
    assert info.lanczos and info.substeps >= 1
    ref = exact_phiv(dim, n, [v], t)
    assert _rel(w, ref) <= tol
    w_arnoldi, info_arnoldi = expint.phiv(a, [v], t, tol=tol, hermitian=False)
    assert not info_arnoldi.lanczos and _rel(w_arnoldi, ref) <= tol


@pytest.mark.parametrize("tol", [1e-6, 1e-10, 1e-13])
@pytest.mark.parametrize("p", [1, 3])
@pytest.mark.parametrize(("dim", "n", "t"), [(1, 3000, 1e-5), (2, 70, 2e-3), (2, 30, 2e-3)])
def test_lanczos_phi_combinations_meet_tolerance(dim, n, t, p, tol, rng):
    """Σ t^k φ_k(tA) v_k of a symmetric matrix by Lanczos on A (the single-vector form):
    to the tolerance against the sine-transform solution, and Arnoldi on the augmented
    operator agrees.  At 1e-13 on the rough vectors used here the single-vector form's
    cancellation may not reach the tolerance, and then Arnoldi must take over."""
    import scipy.sparse as sp

    lap = sparse_1d(n)
    a = lap if dim == 1 else (sp.kron(lap, sp.eye(n)) + sp.kron(sp.eye(n), lap)).tocsr()
    vs = list(rng.standard_normal((p + 1, a.shape[0])))
    w, info = expint.phiv(a, vs, t, tol=tol, method="krylov")
    assert info.lanczos or tol < 1e-12
    ref = exact_phiv(dim, n, vs, t)
    assert _rel(w, ref) <= tol
    w_arnoldi, info_arnoldi = expint.phiv(a, vs, t, tol=tol, hermitian=False, method="krylov")
    assert not info_arnoldi.lanczos and _rel(w_arnoldi, ref) <= tol


def test_a_stiff_phi_combination_falls_back_to_arnoldi(rng):
    """‖tA‖ ≈ 1.6e5 and rough vectors: the terms of the single-vector form are ~1e5
    times the result, so at tol 1e-10 rounding rules it out and the augmented Arnoldi
    process runs instead; at 1e-6 Lanczos is fine."""
    a = sparse_1d(200)
    vs = list(rng.standard_normal((3, 200)))
    ref = _dense_reference(a.toarray(), vs, 1.0)
    for tol, lanczos in ((1e-6, True), (1e-10, False)):
        w, info = expint.phiv(a, vs, 1.0, tol=tol, method="krylov")
        assert info.lanczos == lanczos and _rel(w, ref) <= tol, (tol, _rel(w, ref))


@pytest.mark.parametrize("tol", [1e-6, 1e-9, 1e-12])
def test_a_stiff_invariant_subspace_keeps_the_rounding_cap(tol, rng):
    """Three eigenvalues (−1e4, −3, −0.5): the Krylov space is invariant after three
    vectors, so the small exponential is exact — but with p > 0 the single-vector form's
    terms still cancel, so the sub-step stays capped (or Arnoldi takes over) and the
    result meets tol."""
    a = np.diag(np.repeat([-1e4, -3.0, -0.5], 40))
    vs = list(rng.standard_normal((3, 120)))
    w, info = expint.phiv(a, vs, 1.0, tol=tol, method="krylov")
    # (at 1e-6 Lanczos, without reorthogonalisation, runs past the invariance unnoticed;
    # at 1e-12 rounding hands the call to Arnoldi)
    assert info.happy_breakdowns >= 1 or tol == 1e-6
    assert info.lanczos == (tol > 1e-10)
    assert _rel(w, _dense_reference(a, vs, 1.0)) <= tol


def test_lanczos_phi_combination_special_vectors(rng):
    """A steady state (A v_0 + v_1 = 0, so u(t) = v_0 for all t: w_1 = 0 and no basis is
    built) and a zero v_0 (pure φ-terms)."""
    a = sparse_1d(300)
    v0 = rng.standard_normal(300)
    w, info = expint.phiv(a, [v0, -(a @ v0)], 1e-3, tol=1e-10, method="krylov")
    assert info.lanczos and info.substeps == 0
    assert _rel(w, v0) < 1e-13
    vs = [np.zeros(300), rng.standard_normal(300), rng.standard_normal(300)]
    w, info = expint.phiv(a, vs, 1e-3, tol=1e-10, method="krylov")
    assert info.lanczos and _rel(w, _dense_reference(a.toarray(), vs, 1e-3)) <= 1e-10


def test_lanczos_on_a_complex_hermitian_matrix_and_negative_time(rng):
    b = rng.standard_normal((80, 80)) + 1j * rng.standard_normal((80, 80))
    a = -(b @ b.conj().T) / 40 + (b + b.conj().T) / 10
    a = (a + a.conj().T) / 2  # Hermitian to the last bit (rounding may break it above)
    v = rng.standard_normal(80) + 1j * rng.standard_normal(80)
    v1 = rng.standard_normal(80) + 1j * rng.standard_normal(80)
    for t in (0.5, -0.05):
        for vs in ([v], [v, v1, v]):
            w, info = expint.phiv(a, vs, t, tol=1e-12, method="krylov")
            assert info.lanczos
            assert _rel(w, _dense_reference(a, vs, t)) < 1e-11


@pytest.mark.parametrize("method", ["krylov", "chebyshev"])
def test_a_block_of_right_hand_sides_matches_one_at_a_time(method, rng):
    """Rows of a block share the products (Lanczos, or the Chebyshev expansion); each
    row meets ``tol`` on its own, and a zero row stays zero."""
    a = 1e-4 * sparse_1d(2500)
    vs = rng.standard_normal((3, 2500))
    vs[1] = 0.0
    w, info = expint.phiv(a, [vs], 0.05, tol=1e-9, method=method)
    assert info.lanczos if method == "krylov" else info.chebyshev
    for b in (0, 2):
        alone = expint.phiv(a, [vs[b]], 0.05, tol=1e-12, method="krylov").w
        assert _rel(w[b], alone) <= 1e-8
    assert not np.any(w[1])


def test_long_vectors_take_one_lanczos_sub_step_beyond_60_vectors(rng):
    """On a long vector the Lanczos basis may grow past 60 (up to 120, within 32 MiB):
    ‖tA‖₁ = 360 at tol 1e-10 is one sub-step instead of several with rejections, and
    meets the tolerance against the sine-transform solution.  Short vectors keep 60;
    very long blocks fall back to 60 as memory allows."""
    from expint._krylov import _lanczos_limit

    a = sparse_1d(3000)
    v = rng.standard_normal(3000)
    w, info = expint.phiv(a, [v], 1e-5, tol=1e-10, method="krylov")
    assert info.lanczos and info.substeps == 1 and info.rejected == 0, info
    assert 60 < max(info.basis_sizes) <= 120
    assert _rel(w, exact_phiv(1, 3000, [v], 1e-5)) <= 1e-10
    assert _lanczos_limit(1999, 8) == 60 and _lanczos_limit(3000, 8) == 120
    assert _lanczos_limit(65536, 8) == 62 and _lanczos_limit(65536, 16) == 60
    assert _lanczos_limit(2**20, 8) == 60


def _tridiagonal_stack(k: int, rng) -> np.ndarray:
    """Two ``(k + 2)²`` Hessenberg arrays holding a symmetric tridiagonal ``T`` like a
    Lanczos basis of a 1-D Laplacian builds (spectrum in ``[−4000, 0)``) and
    ``h_{k+1,k}``."""
    h = np.zeros((2, k + 2, k + 2))
    for r in range(2):
        off = 1000.0 * (1 - 1e-3 * rng.random(k))
        h[r, range(k), range(k)] = -1000.0 * (2 + 1e-3 * rng.random(k))
        h[r, range(1, k + 1), range(k)] = off  # includes h_{k+1,k}
        h[r, range(k - 1), range(1, k)] = off[: k - 1]
    return h


@pytest.mark.parametrize("tau", [0.3, 3.0])
@pytest.mark.parametrize("p", [0, 1, 2])
def test_small_phi_from_the_tridiagonal_eigendecomposition_matches_pade(p, tau, rng):
    """Large Lanczos bases take their small φ-evaluations from ``T = QΛQ^T``: the same
    coefficients and error terms as the exponential of the augmented matrix, on a basis
    that has not converged (error terms 1e-8 … 1e-2)."""
    from expint._krylov_projection import _small_phi, _small_phi_tridiagonal

    k = 70
    h = _tridiagonal_stack(k, rng)
    want = _small_phi(h, k, tau, p)
    lam, q = np.linalg.eigh(h[:, :k, :k])
    got = _small_phi_tridiagonal(lam, q, h[:, k, k - 1], tau, p)
    assert got is not None
    np.testing.assert_allclose(got[:, k:], want[:, k:], rtol=1e-10)
    scale = np.abs(want[:, :k]).max()
    np.testing.assert_allclose(got[:, :k] / scale, want[:, :k] / scale, rtol=0, atol=1e-11)


def test_small_phi_error_terms_below_the_decompositions_rounding_are_left_to_pade(rng):
    """On a converged basis the error terms cancel to ~1e-38, far below the rounding of
    the eigenvector sum: `_small_phi_tridiagonal` declines (None), so a tight ``tol``
    is never compared with that rounding; the caller's result is the exponential's."""
    from expint._krylov_projection import _Projection, _small_phi, _small_phi_tridiagonal

    k = 70
    h = _tridiagonal_stack(k, rng)
    lam, q = np.linalg.eigh(h[:, :k, :k])
    assert _small_phi_tridiagonal(lam, q, h[:, k, k - 1], 0.01, 0) is None
    proj = _Projection(h, np.ones(2), [], k + 1, 0, lanczos=True)
    np.testing.assert_array_equal(proj.small_phi(0.01, k), _small_phi(h, k, 0.01, 0))
    assert abs(proj.small_phi(0.01, k)[:, k]).max() < 1e-30


@pytest.mark.parametrize("p", [0, 1])
def test_a_growing_exponential_near_the_overflow_threshold(p, rng):
    """``e^{tA}`` with ``t·λ`` up to 360 (results near 1e156, whose squared norms
    overflow): computed to tolerance against the sine-transform solution, where the
    row norms used to give inf or NaN (and the step control with them)."""
    n = 800
    a = sparse_1d(n)
    t = -360.0 / np.abs(eigenvalues_1d(n)).max()
    vs = [rng.standard_normal(n) for _ in range(p + 1)]
    w = expint.phiv(a, vs, t, tol=1e-10).w
    ref = exact_phiv(1, n, vs, t)
    assert np.abs(ref).max() > 1e150 and np.isfinite(w).all()
    scale = np.abs(ref).max()
    assert np.linalg.norm((w - ref) / scale) <= 1e-9 * np.linalg.norm(ref / scale)


@pytest.mark.parametrize("hermitian", [None, False])
@pytest.mark.parametrize("p", [0, 1, 2])
def test_a_growing_exponential_whose_trial_sub_step_overflows(p, hermitian, rng):
    """``e^{A}`` with eigenvalues up to 690 (results near 1e299, representable): the
    first trial sub-step, the whole interval, overflows the small exponential.  Its
    non-finite error estimate used to give a step factor of 0, and ``phiv`` repeated
    sub-steps of length zero until ``max_substeps``; now it shrinks and goes on.
    Exact reference: A is diagonal.  Both processes (Lanczos, and Arnoldi on the
    augmented operator)."""
    n = 120
    d = np.linspace(-690.0, 690.0, n)
    vs = [rng.standard_normal(n) for _ in range(p + 1)]
    ref = sum(expint.phi(k, d) * v for k, v in enumerate(vs))
    w, info = expint.phiv(np.diag(d), vs, 1.0, tol=1e-8, max_substeps=2000, hermitian=hermitian)
    assert np.abs(ref).max() > 1e290
    # once a trial has overflowed, τ stays below it (Arnoldi: 70–80 sub-steps and 7
    # rejections; without that cap ~200 sub-steps and ~400 rejections)
    assert info.rejected < 20
    assert np.linalg.norm((w - ref) / 1e290) <= 1e-7 * np.linalg.norm(ref / 1e290)


@needs_torch
@pytest.mark.parametrize("hermitian", [None, False])
@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_a_growing_exponential_on_torch_tensors(dtype, hermitian, rng):
    """The same on torch tensors, real and complex: their row norms used to square past
    the range from results near 1e154 on, and every such call ended in the range
    error although the result (near 1e299 here) is representable."""
    n = 120
    d = np.linspace(-690.0, 690.0, n)
    vs = [rng.standard_normal(n) for _ in range(2)]
    ref = expint.phi(0, d) * vs[0] + expint.phi(1, d) * vs[1]
    tdtype = getattr(torch, dtype)
    a = torch.from_numpy(np.diag(d)).to(tdtype)
    w = expint.phiv(a, [torch.from_numpy(v).to(tdtype) for v in vs], 1.0, tol=1e-8, hermitian=hermitian).w
    assert isinstance(w, torch.Tensor) and w.dtype == tdtype
    err = w.numpy() - ref
    assert np.linalg.norm(err / 1e290) <= 1e-7 * np.linalg.norm(ref / 1e290)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_phi_terms_whose_single_vector_form_overflows(seed):
    """``t φ_1(tA) v_1`` growing like ``e^{705}`` on the 1-D Laplacian: the result
    (~3e305) is representable, but the single-vector form's ``w_1 = A w_0 + v_1``
    (``‖A‖ ≈ 6e5`` times a state near 1e301) is not.  Its NaN norm, read as a zero
    vector, gives a finite, wrong result for seeds 0 and 2 (hidden until the overflow
    spin was fixed); the augmented Arnoldi process, which forms no such products,
    takes over instead."""
    n = 400
    rng = np.random.default_rng(seed)
    vs = [rng.standard_normal(n) for _ in range(2)]
    t = -705.0 / np.abs(eigenvalues_1d(n)).max()
    ref = exact_phiv(1, n, vs, t)
    w = expint.phiv(sparse_1d(n), vs, t, tol=1e-8, max_substeps=2000).w
    assert np.abs(ref).max() > 1e305
    assert np.linalg.norm((w - ref) / 1e305) <= 1e-7 * np.linalg.norm(ref / 1e305)


@pytest.mark.parametrize("hermitian", [None, False])
@pytest.mark.parametrize("p", [0, 1])
def test_a_result_past_the_range_is_a_clear_error_on_every_process(p, hermitian):
    """Eigenvalues up to 800 on a diagonal of 120: the result overflows.  Each
    process ends in the range error within a few sub-steps (the Arnoldi process
    used to run to ``max_substeps``, or blame the operator for non-finite values)."""
    d = np.linspace(-800.0, 800.0, 120)
    vs = [np.cos(np.arange(120.0) + k) for k in range(p + 1)]
    with pytest.raises(ValueError, match="floating-point range"):
        expint.phiv(np.diag(d), vs, 1.0, tol=1e-8, max_substeps=2000, hermitian=hermitian)


@pytest.mark.parametrize("p", [0, 1])
def test_an_exponential_past_the_floating_point_range_is_a_clear_error(p):
    """``e^{720}`` is not representable: a ValueError that says so (it used to be an
    empty ``min()`` deep in the tolerance check)."""
    a = np.diag([720.0, -1.0, 3.0])
    with pytest.raises(ValueError, match="floating-point range"):
        expint.phiv(a, [np.ones(3)] * (p + 1), 1.0, tol=1e-8)


def test_which_process_runs():
    """Lanczos for a Hermitian A, pure exponential or φ-combination (trailing zero
    vectors are dropped), Arnoldi when told ``hermitian=False`` or A is not Hermitian,
    and a matrix-free operator is Hermitian only when it says so."""
    a = sparse_1d(50)
    v = np.linspace(0, 1, 50)
    zero = np.zeros(50)
    assert expint.phiv(a, [v, zero, zero], 1e-3, method="krylov").info.lanczos
    assert expint.phiv(a, [v, v], 1e-3, method="krylov").info.lanczos
    assert not expint.phiv(a, [v, v], 1e-3, hermitian=False, method="krylov").info.lanczos
    assert not expint.phiv(a + sparse_1d(50).T * 0 + _upper(50), [v], 1e-3, method="krylov").info.lanczos
    assert not expint.phiv(expint.MatrixFree(lambda x: a @ x, 50), [v], 1e-3, method="krylov").info.lanczos
    free = expint.MatrixFree(lambda x: a @ x, 50, hermitian=True)
    w, info = expint.phiv(free, [v], 1e-3, tol=1e-12, method="krylov")
    assert (
        info.lanczos
        and _rel(w, expint.phiv(a, [v], 1e-3, tol=1e-12, hermitian=False, method="krylov").w) < 1e-11
    )
    assert expint.Sparse(a).hermitian and not expint.Sparse(a + _upper(50)).hermitian
    with pytest.raises(ValueError, match="not Hermitian"):
        expint.Sparse(a + _upper(50), hermitian=True)


def _upper(n):
    import scipy.sparse as sp

    return sp.diags([np.ones(n - 1)], [1], format="csr")


@needs_torch
def test_lanczos_with_torch_dense_and_sparse_matrices(rng):
    n = 300
    lap = sparse_1d(n)
    coo = lap.tocoo()
    sparse_t = torch.sparse_coo_tensor(
        np.vstack([coo.row, coo.col]), coo.data, size=coo.shape, check_invariants=True
    ).coalesce()
    v = rng.standard_normal(n)
    ref = exact_phiv(1, n, [v], 1e-3)
    for a in (torch.from_numpy(lap.toarray()), expint.Sparse(sparse_t)):
        w, info = expint.phiv(a, [torch.from_numpy(v)], 1e-3, tol=1e-11, method="krylov")
        assert info.lanczos and isinstance(w, torch.Tensor)
        assert _rel(w.numpy(), ref) <= 1e-10


@pytest.mark.parametrize("hermitian", [None, False])
def test_long_numpy_vectors_run_on_one_blas_thread_and_restore_it(hermitian):
    """Inside the Krylov loop on a long numpy vector BLAS runs on one thread (seen from the
    matvec); afterwards every pool is back to what it was — also when the matvec raises,
    and when calls overlap from two Python threads.  Short vectors leave BLAS alone."""
    from threadpoolctl import threadpool_limits

    n = 128
    apply = matvec_2d(n)
    with threadpool_limits(limits=2, user_api="blas"):  # a known starting point on any machine
        before = blas_threads()
        seen: list[list[int]] = []

        def recording(x):
            seen.append(blas_threads())
            return apply(x)

        free = expint.MatrixFree(recording, n * n, hermitian=bool(hermitian is None))
        v = np.sin(np.linspace(0, 3, n * n))
        w = expint.phiv(free, [v], 1e-4, tol=1e-8, hermitian=hermitian).w
        assert _rel(w, exact_phiv(2, n, [v], 1e-4)) < 1e-7
        assert seen and all(threads == [1] * len(before) for threads in seen[1:])
        assert blas_threads() == before

        calls = []

        def failing(x):  # fails inside the Krylov loop (the first product is a probe)
            calls.append(1)
            if len(calls) > 3:
                raise RuntimeError("matvec failed")
            return apply(x)

        with pytest.raises(RuntimeError, match="matvec failed"):
            expint.phiv(expint.MatrixFree(failing, n * n), [v], 1e-4)
        assert blas_threads() == before

        import threading

        errors: list[BaseException] = []

        def worker():
            try:
                for _ in range(5):
                    expint.phiv(expint.MatrixFree(apply, n * n, hermitian=True), [v], 1e-4, tol=1e-8)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors and blas_threads() == before

        seen.clear()
        short = expint.MatrixFree(lambda x: (seen.append(blas_threads()), -x)[1], 50)
        expint.phiv(short, [np.ones(50)], 1e-3)
        assert seen and all(threads == before for threads in seen)


@pytest.mark.parametrize("hermitian", [None, False])
@pytest.mark.parametrize("ratio", [1e4, 1e6, 1e8, 1e10])
def test_rounding_floor_is_epsilon_times_the_stiffness(ratio, hermitian, rng):
    """The limit of any Krylov product in floating point, documented in
    docs/operators.md: with eigenvalues −ratio and −1 the result lives in the mild
    eigenspace, but orthogonalising ``A v`` (of size ``ratio``) leaves an error of
    about ``ε · ratio`` in it.  The happy breakdown reports an estimate of 0; the
    actual relative error stays below ``2 ε ‖tA‖``, which is above ``tol = 1e-10``
    from a ratio of 1e6 on."""
    a = np.diag(np.concatenate([np.full(5, -ratio), np.full(5, -1.0)]))
    v = rng.standard_normal(10)
    w, info = expint.phiv(a, [v], 1.0, tol=1e-10, hermitian=hermitian, method="krylov")
    assert info.happy_breakdowns >= 1 and info.error_estimate == 0.0
    assert _rel(w, np.exp(np.diag(a)) * v) <= 2 * np.finfo(float).eps * ratio


@pytest.mark.parametrize("hermitian", [True, False])
@pytest.mark.parametrize("p", [0, 2])
def test_the_probe_product_starts_the_krylov_process(p, hermitian, rng):
    """`phiv` checks the operator on ``A v_0`` first; that product is also the first one
    of the Krylov process (Lanczos on ``A``, or Arnoldi on the augmented operator), so a
    single vector costs one product fewer than the same vector as a block of one row.
    ``info.matvecs`` counts the products made, and both give the same result."""
    n = 400
    a = sparse_1d(n)
    vs = [rng.standard_normal(n) for _ in range(p + 1)]
    results = {}
    for shape in ("single", "block"):
        calls: list[int] = []
        op = expint.MatrixFree(lambda x, calls=calls: (calls.append(1), a @ x)[1], n, hermitian=hermitian)
        given = vs if shape == "single" else [v[None] for v in vs]
        w, info = expint.phiv(op, given, 2e-3, tol=1e-10, method="krylov")
        assert info.matvecs == len(calls)
        assert info.lanczos == hermitian
        results[shape] = (np.reshape(w, n), len(calls))
    assert results["single"][1] == results["block"][1] - 1
    assert _rel(results["single"][0], results["block"][0]) < 1e-13
    assert _rel(results["single"][0], _dense_reference(a.toarray(), vs, 2e-3)) < 1e-9


def test_the_basis_memory_is_not_shared_by_a_nested_or_concurrent_call(rng):
    """`phiv` keeps the memory of its Krylov basis for the next call on numpy vectors
    (expint._krylov_basis._BasisMemory).  A call made while another runs — from inside the
    other's matvec, or from another thread — must get memory of its own: the results
    equal those of the same calls made one after another.  `Sparse.clear_cache` frees
    the kept memory."""
    import threading

    from expint import _krylov_basis

    n = 64
    apply = matvec_2d(n)
    vs = [np.sin(np.linspace(0, 3 + k, n * n)) for k in range(3)]
    alone = [expint.phiv(expint.MatrixFree(apply, n * n, hermitian=True), [v], 1e-3, tol=1e-10).w for v in vs]

    def nesting(x):
        # a full Krylov process on another vector, of the same size, inside each product
        expint.phiv(expint.MatrixFree(apply, n * n, hermitian=True), [vs[1]], 1e-3, tol=1e-10)
        return apply(x)

    nested = expint.phiv(expint.MatrixFree(nesting, n * n, hermitian=True), [vs[0]], 1e-3, tol=1e-10).w
    assert np.array_equal(nested, alone[0])

    got: dict[int, list[np.ndarray]] = {}

    def worker(k):
        op = expint.MatrixFree(apply, n * n, hermitian=True)
        got[k] = [expint.phiv(op, [vs[k]], 1e-3, tol=1e-10).w for _ in range(4)]

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for k in range(3):
        assert all(np.array_equal(w, alone[k]) for w in got[k])

    assert _krylov_basis._SPARE_BASIS["numpy"]  # kept after the calls
    expint.Sparse(sparse_1d(10)).clear_cache()
    assert not any(_krylov_basis._SPARE_BASIS.values())


@needs_torch
@pytest.mark.parametrize("hermitian", [None, False])
def test_a_torch_matrix_of_another_dtype_than_the_vectors(hermitian, rng):
    """torch multiplies no complex matrix by a real vector, nor float32 by float64; `phiv`
    promotes them as numpy does (found by `test_phiv_agrees_with_dense_phi_fuzz`: a
    complex tensor `A` with real vectors raised torch's ``addmv`` RuntimeError)."""
    n = 30
    g = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    for a in ((g + g.conj().T) / 2 - 8 * np.eye(n), -np.eye(n) + 0.1 * rng.standard_normal((n, n))):
        a = a.astype(np.complex128) if np.iscomplexobj(a) else a.astype(np.float32)
        for shape in ((n,), (2, n)):
            vs = [rng.standard_normal(shape) for _ in range(2)]
            w, _ = expint.phiv(
                torch.from_numpy(a), [torch.from_numpy(v) for v in vs], 0.3, hermitian=hermitian
            )
            expected = expint.phiv(a.astype(np.result_type(a, np.float64)), vs, 0.3, hermitian=hermitian).w
            assert w.dtype == torch.from_numpy(expected).dtype
            np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6 if a.dtype == np.float32 else 1e-12)


def _skew_matrix(kind: str, n: int, rng) -> np.ndarray:
    """A skew-Hermitian ``A^H = −A`` of norm ~100: real skew-symmetric (periodic central
    differences of d/dx plus a random skew part), or ``i`` times a real symmetric
    matrix (a Schrödinger operator ``i Δ_h``), or a general complex one."""
    if kind == "real":
        d = np.roll(np.eye(n), 1, axis=1) - np.roll(np.eye(n), -1, axis=1)
        g = rng.standard_normal((n, n))
        return 50.0 * d + (g - g.T)
    if kind == "schrodinger":
        lap = np.diag(-2.0 * np.ones(n)) + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1)
        return 25j * lap
    g = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    return 5.0 * (g - g.conj().T)


@pytest.mark.parametrize("kind", ["real", "schrodinger", "complex"])
@pytest.mark.parametrize("p", [0, 1, 3])
@pytest.mark.parametrize("t", [0.4, -0.25])
def test_a_skew_hermitian_matrix_runs_the_three_term_recurrence(kind, p, t, rng):
    """``A^H = −A`` is detected and gets the Lanczos recurrence (``h_{j−1,j} =
    −h_{j,j−1}``), for φ-combinations too, with real arithmetic for a real ``A``: the
    result matches φ of the dense matrix and Arnoldi, with fewer products than
    Arnoldi's augmented operator needs."""
    n = 60
    a = _skew_matrix(kind, n, rng)
    assert np.array_equal(a, -a.conj().T)
    vs = [rng.standard_normal(n) for _ in range(p + 1)]
    ref = _dense_reference(a, vs, t)
    w, info = expint.phiv(a, vs, t, tol=1e-11)
    assert info.lanczos and not info.chebyshev
    assert w.dtype == (np.float64 if kind == "real" else np.complex128)
    assert _rel(w, ref) <= 1e-9
    w_arnoldi, info_arnoldi = expint.phiv(a, vs, t, tol=1e-11, skew_hermitian=False)
    assert not info_arnoldi.lanczos and _rel(w_arnoldi, ref) <= 1e-9
    # told, on a matrix-free operator (products only): the same process and result
    free = expint.MatrixFree(lambda x: a @ x, n, skew_hermitian=True)
    w_free, info_free = expint.phiv(free, vs, t, tol=1e-11)
    assert info_free.lanczos and _rel(w_free, w) <= 1e-12


def test_a_skew_hermitian_block_and_torch_tensors(rng):
    """Blocks of right-hand sides and torch tensors (dense and sparse ``A``, the
    device-side recurrence with its one transfer per iteration) on a complex
    skew-Hermitian ``A``, and a real skew-symmetric one kept real on torch."""
    import scipy.sparse as sp

    n = 50
    for kind in ("schrodinger", "real"):
        a = _skew_matrix(kind, n, rng)
        vs = [rng.standard_normal((3, n)) for _ in range(3)]
        ref = np.stack([_dense_reference(a, [v[r] for v in vs], 0.3) for r in range(3)])
        w, info = expint.phiv(a, vs, 0.3, tol=1e-11)
        assert info.lanczos and _rel(w, ref) <= 1e-9
        if torch is None:
            continue
        for matrix in (torch.from_numpy(a), torch.from_numpy(a).to_sparse_csr()):
            wt, info_t = expint.phiv(matrix, [torch.from_numpy(v) for v in vs], 0.3, tol=1e-11)
            assert info_t.lanczos and wt.dtype == matrix.dtype
            assert _rel(wt.numpy(), ref) <= 1e-9
        op = expint.Sparse(sp.csr_matrix(a))
        assert op.skew_hermitian and not op.hermitian and op.spectrum is None


def test_a_long_skew_symmetric_vector_uses_the_eigendecomposition_path(rng):
    """On a long real vector the basis grows past 60 (`_EIGEN_MIN`): the small
    φ-evaluations then come from ``T = Q diag(iλ) Q^H`` (``λ`` from the Hermitian
    ``−iT``), taken back to real numbers for a real ``T``; the result stays real and
    matches Arnoldi on the same matrix."""
    import scipy.sparse as sp

    n = 3000
    e = np.ones(n)
    d = sp.diags([-e[:-1], e[:-1]], [-1, 1], format="lil")
    d[0, n - 1], d[n - 1, 0] = -1.0, 1.0  # periodic central differences: skew-symmetric
    a = d.tocsr() * (n / 2.0)
    x = np.arange(n) - n / 2
    v = np.exp(-((x / 50.0) ** 2)) + 1e-3 * rng.standard_normal(n)
    w, info = expint.phiv(a, [v, v], 0.1, tol=1e-10)
    assert info.lanczos and w.dtype == np.float64 and max(info.basis_sizes) > 60
    ref = expint.phiv(a, [v, v], 0.1, tol=1e-12, skew_hermitian=False).w
    assert _rel(w, ref) <= 1e-9


@pytest.mark.parametrize("tau", [0.3, 3.0])
@pytest.mark.parametrize("p", [0, 2])
def test_small_phi_of_a_skew_tridiagonal_matrix_matches_pade(p, tau, rng):
    """A skew-symmetric tridiagonal ``T`` larger than `_EIGEN_MIN` on a basis that has
    not converged: the eigendecomposition of ``−iT`` gives the Padé exponential's
    coefficients and error terms, and `_Projection` takes them (real, for a real
    ``T``)."""
    from expint._krylov_projection import _Projection, _small_phi, _small_phi_tridiagonal

    k = 70
    h = np.zeros((2, k + 2, k + 2))
    for r in range(2):
        off = 100.0 * (1 + 0.1 * rng.random(k))
        h[r, range(1, k + 1), range(k)] = off  # includes h_{k+1,k}
        h[r, range(k - 1), range(1, k)] = -off[: k - 1]
    want = _small_phi(h, k, tau, p)
    scale = np.abs(want).max()
    lam, q = np.linalg.eigh(-1j * h[:, :k, :k])
    got = _small_phi_tridiagonal(1j * lam, q, h[:, k, k - 1], tau, p)
    assert got is not None  # (not left to Padé: the error terms are large)
    # the error terms are sums of k terms that cancel: 3e-10 relative here (p = 2, as
    # ``φ_3``, ``φ_4`` of imaginary arguments are small), where the symmetric case's are 1e-10
    np.testing.assert_allclose(got[:, k:], want[:, k:], rtol=1e-8)
    np.testing.assert_allclose(got / scale, want / scale, rtol=0, atol=1e-11)
    proj = _Projection(h, np.ones(2), [], k + 1, p, lanczos=True, skew=True)
    taken = proj.small_phi(tau, k)
    assert k in proj._eigen and taken.dtype == np.float64
    np.testing.assert_array_equal(taken, got.real)


def test_auto_leaves_an_operator_within_one_lanczos_basis_to_lanczos(rng):
    """A Hermitian `A` with a known interval and a rough vector: on 40 unknowns (within
    the 60-vector Lanczos basis) `auto` runs Lanczos, whose sub-step cannot outgrow the
    space, where the forced Chebyshev expansion needs a degree ~ sqrt(t·(b − a)); on 400
    unknowns `auto` still takes Chebyshev.  Both meet tol."""
    for n, chebyshev in ((40, False), (400, True)):
        a = sparse_1d(n)
        t = 0.05 if n == 40 else 1e-4
        vs = [rng.standard_normal(n)]
        res = expint.phiv(a, vs, t, tol=1e-10)
        assert res.info.chebyshev == chebyshev, n
        assert _rel(res.w, _dense_reference(a.toarray(), vs, t)) <= 1e-9
        if not chebyshev:
            forced = expint.phiv(a, vs, t, tol=1e-10, method="chebyshev")
            assert res.info.matvecs <= n + 1 < forced.info.matvecs, (res.info.matvecs, forced.info.matvecs)
