"""The operator interface: φ-combinations agree across Diagonal, Dense, MatrixFree and
ScalarTime on the same linear part; caching; input errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from _optional import needs_torch, torch

import expint

_CONSTANTS_RNG = np.random.default_rng(3)
D = -np.logspace(-2, 3, 40)  # stiff diagonal spectrum
Q, _ = np.linalg.qr(_CONSTANTS_RNG.standard_normal((40, 40)))


def _ws(rng, batch=()):
    return [rng.standard_normal((*batch, 40)) for _ in range(4)]


@pytest.mark.parametrize("c", [0.5, 1.0])
def test_diagonal_dense_matrixfree_agree(c, rng):
    h = 0.01
    ws = _ws(rng, (3,))
    diag = expint.Diagonal(D).phi_combination(h, c, ws)
    dense = expint.Dense(np.diag(D)).phi_combination(h, c, ws)
    mfree = expint.MatrixFree(lambda v: D * v, 40, tol=1e-13).phi_combination(h, c, ws)
    np.testing.assert_allclose(dense, diag, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(mfree, diag, rtol=1e-10, atol=1e-11)


def test_dense_nondiagonal_matches_krylov(rng):
    a = Q @ np.diag(D) @ Q.T
    ws = _ws(rng)
    dense = expint.Dense(a).phi_combination(0.02, 1.0, ws)
    mfree = expint.MatrixFree(lambda v: a @ v, 40, tol=1e-12).phi_combination(0.02, 1.0, ws)
    np.testing.assert_allclose(mfree, dense, rtol=1e-9, atol=1e-10)


def test_scalar_time_constant_rate_equals_diagonal(rng):
    rate = -3.7
    op = expint.ScalarTime(lambda t: rate, lambda s, t: rate * (t - s))
    ws = [rng.standard_normal(5) for _ in range(5)]
    ref = expint.Diagonal(np.full(5, rate)).phi_combination(0.3, 0.5, ws)
    np.testing.assert_allclose(op.phi_combination(0.3, 0.5, ws, t=1.0), ref, rtol=1e-14)


def test_scalar_time_variable_rate_quadrature():
    # a(t) = -t: I(s, t) = (s² - t²)/2; φ_1 from t0=0, h=2 is ∫_0^1 exp(2(θ² - 1)) dθ
    op = expint.ScalarTime(lambda t: -t, lambda s, t: 0.5 * (np.asarray(s) ** 2 - t**2))
    coeffs = op.coefficients(2.0, 1.0, 1, t=0.0)
    # ∫_0^1 e^{2θ²} dθ = sqrt(π/8) erfi(√2)
    import mpmath as mp

    exact = float(mp.e**-2 * mp.sqrt(mp.pi / 8) * mp.erfi(mp.sqrt(2)))
    assert coeffs[0] == pytest.approx(math.exp(-2), rel=1e-15)
    assert coeffs[1] == pytest.approx(exact, rel=1e-14)


def test_stiff_scalar_time_uses_enough_panels():
    rate = -1e4
    op = expint.ScalarTime(lambda t: rate, lambda s, t: rate * (t - np.asarray(s)))
    got = op.coefficients(0.1, 1.0, 3, t=0.0)
    np.testing.assert_allclose(got, expint.phi_all(3, np.array(rate * 0.1)), rtol=1e-13)


def test_coefficients_cached_per_step_size(rng):
    op = expint.Diagonal(D)
    ws = _ws(rng)
    for _ in range(5):
        op.phi_combination(0.1, 1.0, ws)
    op.phi_combination(0.1, 0.5, ws)
    op.phi_combination(0.2, 1.0, ws)
    assert op.phi_evaluations == 3


@needs_torch
def test_torch_state_with_numpy_operator():
    op = expint.Diagonal(D)
    y = torch.randn(2, 40, dtype=torch.float32)
    out = op.phi_combination(0.1, 1.0, [y, y])
    assert out.dtype == torch.float32 and isinstance(out, torch.Tensor)
    ref = op.phi_combination(0.1, 1.0, [y.double().numpy()] * 2)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6)
    np.testing.assert_allclose(op.apply(y).numpy(), D * y.numpy(), rtol=1e-6)


def test_complex_diagonal_dispersive(rng):
    k = np.fft.fftfreq(32, 1 / 32)
    op = expint.Diagonal(1j * k**3)
    y = rng.standard_normal(32) + 0j
    out = op.expmv(0.01, y)
    np.testing.assert_allclose(out, np.exp(0.01j * k**3) * y, rtol=1e-14)


def test_state_size_check():
    with pytest.raises(ValueError, match="trailing axis must have length 40"):
        expint.Diagonal(D).check_state(np.ones((2, 41)))


@pytest.mark.parametrize(
    ("factory", "exc", "match"),
    [
        (lambda: expint.Diagonal(np.ones((2, 2))), ValueError, "1-D"),
        (lambda: expint.Diagonal([1.0, np.inf]), ValueError, "finite"),
        (lambda: expint.Diagonal(np.ndarray), TypeError, "not a class"),
        (lambda: expint.Dense(np.ones((2, 3))), ValueError, "square"),
        (lambda: expint.Dense(np.ones((2, 2, 2))), ValueError, "single"),
        (lambda: expint.MatrixFree(3, 4), TypeError, "callable"),
        (lambda: expint.MatrixFree(lambda v: v, 0), ValueError, "positive integer"),
        (lambda: expint.ScalarTime(1.0, lambda s, t: 0), TypeError, "rate must be a callable"),
        # the next four were accepted at construction (MatrixFree: refused only by phiv, mid-solve)
        (lambda: expint.MatrixFree(lambda v: v, 3, tol=0.0), ValueError, "tol must be a number in"),
        (lambda: expint.MatrixFree(lambda v: v, 3, tol=float("nan")), ValueError, "tol must be"),
        (lambda: expint.MatrixFree(lambda v: v, 3, m=0), ValueError, "m must be a positive integer"),
        (lambda: expint.ScalarTime(lambda t: 1.0, lambda s, t: t - s, n=0), ValueError, "n must be"),
    ],
)
def test_bad_construction(factory, exc, match):
    with pytest.raises(exc, match=match):
        factory()


def _scalar_time_solve(rate, integral):
    prob = expint.SemilinearProblem(expint.ScalarTime(rate, integral), lambda t, y: -(y**3))
    return expint.solve(prob, np.ones(3), (0.0, 1.0), scheme="etdrk4", n_steps=4)


@pytest.mark.parametrize(
    ("integral", "exc", "match"),
    [
        # a sign error gave a silently wrong solution for the schemes that use only the
        # integral (the Rosenbrock pairs, which use the rate, got another one)
        (lambda s, t: t - s, ValueError, "not the integral of rate"),
        (lambda s, t: s - t + 0 * s, None, None),  # the right one, as a check of the check
        # a NaN gave "cannot convert float NaN to integer"
        (lambda s, t: float("nan"), ValueError, "integral.*not finite"),
        # a complex value lost its imaginary part with only a numpy warning
        (lambda s, t: (1j - 1) * (t - s), TypeError, "complex value"),
        (lambda s, t: "x", TypeError, "integral.*must return a real number"),
    ],
)
def test_scalar_time_integral_is_checked_on_the_first_step(integral, exc, match):
    if exc is None:
        np.testing.assert_allclose(
            _scalar_time_solve(lambda t: -1.0, integral).y[-1],
            expint.solve(
                expint.SemilinearProblem(expint.Diagonal(-np.ones(3)), lambda t, y: -(y**3)),
                np.ones(3), (0.0, 1.0), scheme="etdrk4", n_steps=4,
            ).y[-1],
            rtol=1e-12,
        )  # fmt: skip
        return
    with pytest.raises(exc, match=match):
        _scalar_time_solve(lambda t: -1.0, integral)


def _laplacian_1d(n):
    import scipy.sparse as sp

    h = 1.0 / (n + 1)
    return sp.diags([np.ones(n - 1), -2 * np.ones(n), np.ones(n - 1)], [-1, 0, 1]) / h**2


def test_sparse_matrices_are_a_linear_part_directly():
    a = _laplacian_1d(40)
    y0 = np.sin(np.pi * np.linspace(0, 1, 42)[1:-1])
    direct = expint.SemilinearProblem(a, lambda t, y: np.sin(y))
    assert isinstance(direct.linear, expint.Sparse)
    dense = expint.SemilinearProblem(expint.Dense(a.toarray()), lambda t, y: np.sin(y))
    kw = {"scheme": "krogstad", "n_steps": 10}
    want = expint.solve(dense, np.stack([y0, 2 * y0]), (0.0, 0.05), **kw).y[-1]
    got = expint.solve(direct, np.stack([y0, 2 * y0]), (0.0, 0.05), **kw)
    np.testing.assert_allclose(got.y[-1], want, atol=1e-11)
    assert got.stats["krylov_matvecs"] > 0
    with pytest.raises(TypeError, match=r"scipy\.sparse matrix or a torch sparse tensor"):
        expint.Sparse(a.toarray())
    with pytest.raises(ValueError, match="must be square"):
        expint.Sparse(a.tocsr()[:, :-1])
    bad = a.tocsr().copy()
    bad.data[0] = np.inf  # (was a message about a `spectrum` nobody passed)
    with pytest.raises(ValueError, match="A must be finite"):
        expint.Sparse(bad)


def test_a_scipy_linear_operator_is_a_linear_part_directly():
    """`phiv` took a ``LinearOperator`` but ``SemilinearProblem`` refused it, and
    ``Sparse(op)`` said to use ``Dense``; it becomes `MatrixFree` on its ``matvec``."""
    from scipy.sparse.linalg import aslinearoperator

    a = _laplacian_1d(40)
    y0 = np.sin(np.pi * np.linspace(0, 1, 42)[1:-1])
    op = expint.SemilinearProblem(aslinearoperator(a.tocsr()), lambda t, y: np.sin(y))
    assert isinstance(op.linear, expint.MatrixFree)
    dense = expint.SemilinearProblem(expint.Dense(a.toarray()), lambda t, y: np.sin(y))
    kw = {"scheme": "krogstad", "n_steps": 10}
    want = expint.solve(dense, np.stack([y0, 2 * y0]), (0.0, 0.05), **kw).y[-1]
    np.testing.assert_allclose(
        expint.solve(op, np.stack([y0, 2 * y0]), (0.0, 0.05), **kw).y[-1], want, atol=1e-11
    )
    with pytest.raises(ValueError, match=r"linear must be square, got a LinearOperator of shape \(3, 4\)"):
        expint.SemilinearProblem(aslinearoperator(np.ones((3, 4))), lambda t, y: y)
    with pytest.raises(TypeError, match=r"MatrixFree\(op\.matvec, n\) for a LinearOperator"):
        expint.Sparse(aslinearoperator(a.tocsr()))


def test_lawson_on_a_symmetric_sparse_matrix_uses_lanczos():
    """A Lawson scheme needs only e^{chL}v: on a symmetric sparse L these go through
    the Lanczos path, and agree with Arnoldi (hermitian=False) and the dense operator."""
    a = _laplacian_1d(60)
    y0 = np.sin(np.pi * np.linspace(0, 1, 62)[1:-1])
    kw = {"scheme": "lawson_rk4", "n_steps": 10}
    runs = {}
    for herm in (None, False):
        op = expint.Sparse(a, tol=1e-12, hermitian=herm)
        runs[herm] = expint.solve(expint.SemilinearProblem(op, lambda t, y: np.sin(y)), y0, (0.0, 0.05), **kw)
        assert op.krylov_info.lanczos is (herm is None)
    dense = expint.solve(
        expint.SemilinearProblem(expint.Dense(a.toarray()), lambda t, y: np.sin(y)), y0, (0.0, 0.05), **kw
    )
    np.testing.assert_allclose(runs[None].y[-1], dense.y[-1], atol=1e-10)
    np.testing.assert_allclose(runs[False].y[-1], dense.y[-1], atol=1e-10)


def test_nls_on_a_skew_hermitian_sparse_matrix_uses_lanczos():
    """Cubic NLS ``u_t = (i/2) u_xx + i|u|²u`` with a finite-difference Laplacian:
    ``Sparse((i/2)Δ_h)`` is found skew-Hermitian, every φ-product of an ETD scheme goes
    through the three-term recurrence, and the run agrees with Arnoldi and with the
    dense operator."""
    n = 80
    x = np.linspace(-8, 8, n + 2)[1:-1]
    a = (0.5j * _laplacian_1d(n) * (1.0 / (n + 1) / (x[1] - x[0])) ** 2).tocsr()  # on [-8, 8]
    y0 = (1.0 / np.cosh(x)).astype(complex)

    def nonlinear(t, u):
        return 1j * np.abs(u) ** 2 * u

    kw = {"scheme": "krogstad", "n_steps": 20}
    runs = {}
    for skew in (None, False):
        op = expint.Sparse(a, tol=1e-12, skew_hermitian=skew)
        assert op.skew_hermitian is (skew is None) and not op.hermitian
        runs[skew] = expint.solve(expint.SemilinearProblem(op, nonlinear), y0, (0.0, 0.5), **kw)
        assert op.krylov_info.lanczos is (skew is None)
    dense = expint.solve(expint.SemilinearProblem(expint.Dense(a.toarray()), nonlinear), y0, (0.0, 0.5), **kw)
    np.testing.assert_allclose(runs[None].y[-1], dense.y[-1], atol=1e-9)
    np.testing.assert_allclose(runs[False].y[-1], dense.y[-1], atol=1e-9)


@pytest.mark.slow  # `make test` runs it; keeps `make test-fast` under a minute
@needs_torch
@pytest.mark.parametrize("layout", ["coo", "csr", "csc"])
def test_torch_sparse_tensors_act_on_torch_states(layout):
    """Every torch sparse layout (CSR and CSC used to be taken for dense tensors, and
    failed in the symmetry check); `Sparse` keeps them as CSR."""
    a = _laplacian_1d(30).tocoo()
    at = torch.sparse_coo_tensor(np.vstack([a.row, a.col]), a.data, size=a.shape, check_invariants=True)
    if layout != "coo":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch: "CSR support is in beta"
            at = at.to_sparse_csr() if layout == "csr" else at.to_sparse_csc()
    op = expint.Sparse(at)
    assert op.a.layout == torch.sparse_csr and op.hermitian
    # and on numpy states, through a scipy copy
    states = np.stack([np.sin(np.arange(30.0)), np.cos(np.arange(30.0))])
    np.testing.assert_allclose(op.apply(states), states @ a.toarray().T, rtol=1e-13, atol=1e-9)
    y0 = np.sin(np.pi * np.linspace(0, 1, 32)[1:-1]) + 0j
    want = expint.solve(
        expint.SemilinearProblem(a, lambda t, y: np.sin(y)), y0, (0.0, 0.05), scheme="etdrk4", n_steps=8
    )
    got = expint.solve(
        expint.SemilinearProblem(at, lambda t, y: torch.sin(y)),
        torch.from_numpy(y0),
        (0.0, 0.05),
        scheme="etdrk4",
        n_steps=8,
    )
    np.testing.assert_allclose(got.y[-1].numpy(), want.y[-1], atol=1e-11)


def _phi_rows_cases():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 4)) - 3 * np.eye(4)
    return {
        "diagonal": (expint.Diagonal(np.array([-2.0, -0.5 + 1j, 0.3])), np.array([1.0, 2.0 - 1j, -0.5])),
        "dense": (expint.Dense(a), rng.standard_normal(4)),
        "scalar_time": (
            # a(t) = −1 − ½ sin t, ∫_s^t a = −(t − s) + ½(cos t − cos s)
            expint.ScalarTime(
                lambda t: -1.0 - 0.5 * np.sin(t), lambda s, t: -(t - s) + 0.5 * (np.cos(t) - np.cos(s))
            ),
            np.array([0.7, -1.2]),
        ),
    }


@pytest.mark.parametrize("kind", ["diagonal", "dense", "scalar_time"])
def test_phi_rows_equal_the_term_by_term_coefficients(kind):
    """`phi_rows` (one contraction of the cached φ stack, used by the Adams steppers)
    gives what `phi_expr` builds term by term, also when the cache already holds a
    longer stack (a φ_7 request before a φ_3 one)."""
    op, w = _phi_rows_cases()[kind]
    mat = np.array([[1.0, -2.0, 0.5], [0.25, 0.0, 3.0]])
    h, t = 0.3, 0.2
    op.coefficients(h, 1.0, 7, t)
    rows = op.phi_rows(h, mat, t, w)
    for row, coef in zip(mat, rows, strict=True):
        terms = {(m + 1, 1.0, 0.0): a for m, a in enumerate(row) if a}
        want = op.apply_coefficient(op.phi_expr(h, terms, t, w), w)
        np.testing.assert_allclose(op.apply_coefficient(coef, w), want, rtol=1e-13, atol=1e-15)


@needs_torch
def test_phi_rows_on_torch():
    op = expint.Diagonal(torch.tensor([-2.0, -0.5, 0.3], dtype=torch.float64))
    w = torch.tensor([1.0 + 1j, 2.0, -0.5], dtype=torch.complex128)
    mat = np.array([[1.0, -2.0], [0.25, 3.0]])
    rows = op.phi_rows(0.3, mat, None, w)
    assert all(isinstance(r, torch.Tensor) and r.dtype == torch.complex128 for r in rows)
    ref = expint.Diagonal(np.array([-2.0, -0.5, 0.3])).phi_rows(0.3, mat, None, w.numpy())
    for a, b in zip(rows, ref, strict=True):
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-14)


def _expression_cases(rng):
    """Operators on the spectral path (a diagonal; `Dense` by ``eigh``, by ``eig`` on a
    real matrix with complex eigenpairs, on a complex matrix) and the dense matrix each
    stands for."""
    sym = Q[:6, :6] @ np.diag(D[::7]) @ Q[:6, :6].T
    sym = (sym + sym.T) / 2  # exactly symmetric: `Dense` takes eigh only then
    rot = np.array([[-1.0, 3.0, 0.0], [-3.0, -1.0, 0.5], [0.0, 0.2, -4.0]])  # eigenvalues -1 ± 3i, …
    cplx = rng.standard_normal((4, 4)) + 1j * rng.standard_normal((4, 4)) - 3.0 * np.eye(4)
    out = {"diagonal": (expint.Diagonal(D[::7]), np.diag(D[::7]))}
    for name, a in (("eigh", sym), ("eig-real", rot), ("eig-complex", cplx)):
        op = expint.Dense(a)
        assert op.phi_method == name.split("-")[0]
        out[name] = (op, a)
    return out


_EXPRESSIONS = [
    {(1, 1.0, 0.0): 0.5, (2, 0.5, 0.0): -1.0, (0, 0.0, 0.0): 1.0},  # mixed nodes and the identity
    {(0, 0.0, 0.0): 2.0, (1, 0.0, 0.0): -1.0},  # the identity alone
    {(3, 1.0, 0.0): 1.0},
    {(0, 0.25, 0.0): 1.0, (2, 0.25, 0.0): 4.0, (3, 0.75, 0.0): -2.0},
]


@pytest.mark.parametrize("kind", ["diagonal", "eigh", "eig-real", "eig-complex"])
def test_tableau_coefficients_equal_sums_of_augmented_exponentials(kind, rng):
    """Coefficients summed on the spectrum (`phi_expr`) and a whole tableau at once
    (`phi_batch`: one product of weights and φ-values, one conversion for all) equal
    Σ α φ_k(c h A) with each φ_k from an augmented-matrix exponential, identity parts
    and per-row factors included."""
    from expint._schemes._phiexpr import ExprBatch, PhiExpr

    op, a = _expression_cases(rng)[kind]
    h = 0.3
    scale = np.array([1.0, 0.5, h, -2.0])
    w = rng.standard_normal(a.shape[0]) + (1j * rng.standard_normal(a.shape[0]) if np.iscomplexobj(a) else 0)
    single = [
        op.phi_expr(h, {key: f * v for key, v in t.items()}, None, w)
        for t, f in zip(_EXPRESSIONS, scale, strict=True)
    ]
    batch = ExprBatch(map(PhiExpr, _EXPRESSIONS))
    batched = op.phi_batch(h, batch, scale, w)
    for terms, f, one, many in zip(_EXPRESSIONS, scale, single, batched, strict=True):
        want = f * sum(
            alpha * (np.eye(len(a)) / math.factorial(k) if c == 0.0 else expint.phi_matrix(k, c * h * a))
            for (k, c, _), alpha in terms.items()
        )
        np.testing.assert_allclose(op.apply_coefficient(one, w), want @ w, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(op.apply_coefficient(many, w), want @ w, rtol=1e-13, atol=1e-14)


def test_a_new_step_size_evaluates_every_node_in_one_call(monkeypatch):
    """On the spectral path a Runge–Kutta step size costs one `phi_all` call for all of
    the tableau's nodes (on small operators the cost of φ is its number of array
    operations); the evaluation count still says one per node."""
    from expint import _operators

    calls = []

    def counting(k, z):
        calls.append(z.shape)
        return expint.phi_all(k, z)

    monkeypatch.setattr(_operators, "phi_all_unchecked", counting)
    from expint import problems

    bp = problems.allen_cahn()
    sol = expint.solve(bp.problem, bp.y0, (0.0, 0.5), scheme="hochost4", n_steps=5)
    nodes = {c for c in expint.schemes.get("hochost4").tableau.c if c}
    assert calls == [(len(nodes), bp.problem.linear.n)]
    assert sol.stats["phi_evaluations"] == len(nodes)


def test_diagonal_batches_short_spectra_only(monkeypatch, rng):
    """`Diagonal` forms a tableau with `phi_batch` up to `BATCH_MAX_N` entries and term
    by term above; both give the same coefficients, so the same solution."""
    from expint import _operators

    d = -np.logspace(-2, 3, _operators.BATCH_MAX_N + 1)
    prob = expint.SemilinearProblem(expint.Diagonal(d), lambda t, y: np.sin(y))
    y0 = rng.standard_normal(d.size)
    assert not prob.linear.batches
    term_by_term = expint.solve(prob, y0, (0.0, 1.0), scheme="whalen53", rtol=1e-6, atol=1e-8)
    monkeypatch.setattr(_operators, "BATCH_MAX_N", d.size)
    prob = expint.SemilinearProblem(expint.Diagonal(d), lambda t, y: np.sin(y))
    assert prob.linear.batches
    batched = expint.solve(prob, y0, (0.0, 1.0), scheme="whalen53", rtol=1e-6, atol=1e-8)
    assert batched.stats["steps"] == term_by_term.stats["steps"]
    np.testing.assert_allclose(batched.y[-1], term_by_term.y[-1], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "complex64"])
@pytest.mark.parametrize(
    ("linear", "scheme"),
    [(op, s) for op in ("sparse", "matrix-free") for s in ("etdrk4", "krogstad43", "exprb32")]
    + [("diagonal", "exprb32")],
)
def test_a_single_precision_numpy_state_keeps_its_dtype(dtype, linear, scheme):
    """docs/solver.md: the state keeps its dtype.  A float32/complex64 numpy state came
    back in double precision from a float64 scipy matrix (`Sparse`), from a matvec that
    promotes (`MatrixFree`), and from `exprb32` on any linear part (its φ-functions of
    ``J_n`` are float64 on the host); torch states kept theirs.  Now every path
    returns the state's precision, within single-precision accuracy of the float64 run."""
    import scipy.sparse as sp

    n = 12
    a = np.diag(-np.linspace(1.0, 30.0, n)) + 0.1 * np.eye(n, k=1)
    if linear == "sparse":
        op = expint.Sparse(sp.csr_matrix(a))
    elif linear == "matrix-free":
        op = expint.MatrixFree(lambda v: a @ v, n)  # float64 @ float32 is float64 in numpy
    else:
        op = expint.Diagonal(np.diag(a).copy())
    prob = expint.SemilinearProblem(op, lambda t, y: -0.5 * y * (y * y.conj()).real)
    y0 = (np.linspace(0.1, 1.0, n) * (1 + 0.5j if dtype == "complex64" else 1)).astype(dtype)
    kw = {"n_steps": 20} if scheme == "etdrk4" else {"rtol": 1e-4, "atol": 1e-4}
    sol = expint.solve(prob, y0, (0.0, 0.5), scheme=scheme, dense_output=True, **kw)
    assert sol.y.dtype == np.dtype(dtype) and sol.sol(0.3).dtype == np.dtype(dtype)
    wide = expint.solve(prob, y0.astype(np.complex128 if dtype == "complex64" else np.float64), (0.0, 0.5),
                        scheme=scheme, **kw)  # fmt: skip
    assert np.max(np.abs(sol.y[-1] - wide.y[-1])) < 1e-4 * np.max(np.abs(wide.y[-1]))
