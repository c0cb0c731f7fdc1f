r"""Krylov evaluation of linear combinations of φ-function–vector products.

`phiv` computes

$$
w = \sum_{k=0}^{p} t^k \varphi_k(tA)\, v_k
$$

for a dense, scipy-sparse or matrix-free ``A`` with only products ``A x``.

Method.  The sum is the first block of ``exp(t Ã) ṽ`` for the augmented operator
(Al-Mohy & Higham 2011, Thm 2.1)

$$
\tilde A = \begin{pmatrix} A & \eta B \\ 0 & J \end{pmatrix},\quad
B = [v_p, \dots, v_1],\quad
\tilde v = \begin{pmatrix} v_0 \\ e_p/\eta \end{pmatrix},
$$

with ``J`` the ``p × p`` upper shift matrix and ``η`` a power of two that balances
``‖ηB‖`` against ``‖A‖``.  ``exp(tÃ)ṽ`` is advanced in sub-steps ``τ`` (as Niesen &
Wright's *phipm* and Sidje's *expv* do): each sub-step builds an Arnoldi basis from
the current vector (classical Gram–Schmidt in blocks, twice), evaluates the small
exponential of the Hessenberg matrix augmented to read off the a-posteriori error
estimate of Saad (1992), accepts the step if the local error is below
``tol · τ/t · ‖w‖`` and otherwise shrinks ``τ`` on the same basis.  The first sub-step
tries the whole interval.  Basis size and sub-step adapt together: on long vectors
(``n ≥ 2000``) the Arnoldi process stops at a checkpoint (6, 10, 14, 19, 24 vectors)
once the smaller basis meets the tolerance for the current ``τ``, and the next ``τ``
grows from the estimate at the size used, so easy sub-steps do not pay for a full
basis of ``m``.  A breakdown of Arnoldi (``h_{j+1,j}`` at rounding level, the Krylov
space is invariant) ends the basis early and finishes the whole remaining interval in
one exact step.  The small exponentials are computed in numpy
(`expint._krylov_projection`).

Hermitian ``A``.  The augmented operator is not Hermitian, so for a Hermitian ``A`` the
sum is instead advanced in the single-vector form of *phipm* (Niesen & Wright 2012):
over a sub-step ``τ`` from state ``u`` with the forcing Taylor-shifted to ``z_k``,

$$
u(s+τ) = \sum_{j<p} \frac{τ^j}{j!} w_j + τ^p \varphi_p(τA)\, w_p,\qquad
w_0 = u,\ w_j = A w_{j-1} + z_j,
$$

so that one Krylov basis, of ``w_p`` and with ``A`` itself, serves every term, and it
is built by the Lanczos three-term recurrence (``O(n)`` per vector instead of
Arnoldi's ``O(jn)``).  The terms of that sum grow like ``‖τA‖^j`` and cancel when
``A`` is stiff: their rounding error (``8ε Σ_j τ^j/j! ‖w_j‖``) is added to the error
estimate and caps ``τ``, and where it would keep the result from ``tol`` altogether,
Arnoldi on the augmented operator (no cancellation) takes over.  A skew-Hermitian ``A``
(``A^H = −A``) takes the same path: its projection is tridiagonal too, with
``h_{j−1,j} = −h_{j,j−1}`` and an imaginary diagonal.

Hermitian ``A`` with a known spectral interval (Gershgorin's for an explicit matrix, or
given): ``method="chebyshev"`` expands every term in Chebyshev polynomials on that
interval instead (`expint._chebyshev`), with an a-priori error bound and no inner
products (for ``p > 0`` on ``w_p`` of the single-vector form); ``method="auto"`` takes
it for vectors ``v_0`` that are not smooth.

Layout: this module is the entry point (argument checks, the choice of path, retries,
the BLAS thread window); `expint._krylov_expv` is the sub-stepping integrator and its
`KrylovInfo`, `expint._krylov_basis` builds, combines and stores the basis, and
`expint._krylov_projection` evaluates each sub-step's small projected problem and its
error estimate.

``python benchmarks/krylov_phiv.py`` compares the cost with SciPy's ``expm_multiply``
and ``funm_multiply_krylov``; ``python benchmarks/chebyshev_phiv.py`` compares the
Chebyshev and Lanczos paths.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np

from ._backend import (
    Array,
    all_finite,
    array_namespace,
    as_like,
    cast,
    concat,
    is_array,
    is_inexact,
    is_torch_array,
    promote_types,
    promoted_product,
    records_gradients,
    same_array_type,
    sparse_is_hermitian,
    sparse_kind,
    stack,
    to_numpy,
)
from ._blas import one_blas_thread
from ._chebyshev import (
    ChebyshevUnfit,
    ShiftedFactory,
    chebyshev_phiv,
    check_spectrum,
    prefer_chebyshev,
    shifted_product,
    spectral_interval,
)
from ._krylov_basis import _row_norms
from ._krylov_expv import (
    _CHECK_MIN_N,
    KrylovInfo,
    NonFinite,
    _expv,
    _overflow,
    _RoundingFloor,
    _taylor,
    _unit_roundoff,
)
from ._krylov_projection import _rounding
from ._validation import check_krylov_options

__all__ = ["KrylovInfo", "PhivResult", "phiv"]


class PhivResult(NamedTuple):
    """``(w, info)``: the vector ``Σ t^k φ_k(tA) v_k`` and a `KrylovInfo`."""

    w: Any
    info: KrylovInfo


def _as_matvec(a: Any) -> tuple[Callable[[Any], Any], int]:
    """Turn a dense array, sparse matrix, LinearOperator, expint operator or callable
    into ``(matvec, n)``."""
    if isinstance(a, type):
        raise TypeError(f"A must be a matrix or operator instance, got the class {a.__name__}")
    if is_array(a) or sparse_kind(a) == "torch":
        if len(a.shape) != 2 or a.shape[0] != a.shape[1]:
            raise ValueError(f"A must be a square matrix of shape (n, n), got {tuple(a.shape)}")
        if is_torch_array(a):  # torch multiplies no complex matrix by a real vector (numpy does)
            return (lambda x: promoted_product(a, x[:, None])[:, 0]), int(a.shape[0])
        return (lambda x: a @ x), int(a.shape[0])
    if hasattr(a, "shape") and hasattr(a, "dot"):  # scipy.sparse matrix / array
        if len(a.shape) != 2 or a.shape[0] != a.shape[1]:
            raise ValueError(f"A must be square, got shape {a.shape}")
        return (lambda x: a @ x), int(a.shape[0])
    if callable(getattr(a, "matvec", None)) and hasattr(a, "shape"):
        # an expint operator (the KrylovProducts protocol) or a scipy LinearOperator
        return a.matvec, int(a.shape[0])
    raise TypeError(
        "A must be a square array, a scipy sparse matrix, a scipy LinearOperator or an "
        f"expint operator (Dense, Diagonal, MatrixFree); got {type(a).__name__}"
    )


def _as_block_matvec(a: Any, matvec: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``X ↦ (A X^T)^T`` for a block ``X`` of shape ``(B, n)``: one matrix–matrix
    product where ``A`` offers one (arrays, sparse matrices, expint operators, scipy
    LinearOperators), else one product per row."""
    if is_torch_array(a):  # (A Xᵀ)ᵀ: compressed sparse layouts have no dense @ sparse
        return lambda x: promoted_product(a, x.T).T
    if is_array(a):
        return lambda x: x @ a.T
    if hasattr(a, "shape") and hasattr(a, "dot"):
        return lambda x: (a @ x.T).T
    if callable(getattr(a, "apply", None)):  # expint operators act on (..., n) batches
        return lambda x: a.apply(x)
    if callable(getattr(a, "matmat", None)):
        return lambda x: a.matmat(x.T).T
    return lambda x: stack([matvec(row) for row in x])


def _hermitian(a: Any, *, skew: bool = False) -> bool | None:
    """Whether ``A = A^H`` (with ``skew``: ``A = −A^H``) exactly, for an explicit matrix
    (a dense array, a scipy or torch sparse matrix); an operator's own ``hermitian``
    (``skew_hermitian``) attribute; None when ``A`` is known only by its products.
    O(entries): negligible next to a Krylov basis of products."""
    if sparse_kind(a) is not None:
        return sparse_is_hermitian(a, skew=skew)
    if is_array(a):
        if is_torch_array(a):
            import torch

            return bool(torch.equal(a, -a.mH if skew else a.mH))
        if skew:  # most matrices fail on the diagonal (a skew one's is imaginary): O(n)
            return bool(not np.diagonal(a).real.any() and np.array_equal(a, -a.conj().T))
        return bool(np.array_equal(a, a.conj().T))
    flag = getattr(a, "skew_hermitian" if skew else "hermitian", None)
    return flag if isinstance(flag, bool) else None


def _check_product(out: Any, v: Any, n: int) -> Any:
    """The first product ``A v``: same array type as ``v``, shape ``(n,)``, finite."""
    if not same_array_type(out, v):
        raise TypeError(
            f"A (matvec) returned {type(out).__name__} for a {type(v).__name__} vector; "
            "return the same array type as its input"
        )
    if tuple(out.shape) != (n,):
        raise ValueError(
            f"A (matvec) returned shape {tuple(out.shape)} for a vector of shape ({n},); "
            "it must return a vector of the same shape"
        )
    if not all_finite(out):
        raise ValueError(
            "A (matvec) returned NaN or inf for a finite vector; check A (or the matvec) for NaN/inf entries"
        )
    return out


#: Magnitudes of the vectors that `phiv` takes as they are: their squares stay normal.
_SAFE_MAGNITUDE = (2.0**-300, 2.0**300)


def _magnitude(v: Any) -> float:
    """``max |v_ij|`` on the host (0 for an empty vector; NaN or inf where ``v`` is not
    finite): one reduction, one transfer for a tensor."""
    if math.prod(v.shape) == 0:
        return 0.0
    return float(v.abs().max()) if is_torch_array(v) else float(np.max(np.abs(v)))


def _times_power_of_two(x: Any, e: int) -> Any:
    """``x · 2^e``, exact, in factors that stay inside the range (``2^±1074`` is not)."""
    while e:
        step = max(-1000, min(1000, e))
        x = x * 2.0**step
        e -= step
    return x


def _check_vectors(vs: Any, n: int) -> tuple[list[Any], float]:
    """The vectors, checked, and the largest ``|entry|`` among them."""
    if is_array(vs):  # one array: its rows (or slices) are v_0, …, v_p
        vs = [vs] if vs.ndim == 1 else list(vs)
    if not isinstance(vs, (list, tuple)) or len(vs) == 0:
        raise TypeError("vs must be a non-empty sequence of vectors [v_0, v_1, …, v_p]")
    if any(v is None for v in vs):  # None stands for a zero vector (e.g. [None, v]: φ_1 only)
        like = next((v for v in vs if v is not None), None)
        if like is None:
            raise TypeError("vs holds only None; pass at least one vector (None stands for a zero vector)")
        like = like if is_array(like) else np.asarray(like)
        vs = [array_namespace(like).zeros_like(like) if v is None else v for v in vs]
    out: list[Any] = []
    largest = 0.0
    for i, v in enumerate(vs):
        if not is_array(v):
            v = np.asarray(v)
        if v.ndim not in (1, 2) or v.shape[-1] != n:
            raise ValueError(f"vs[{i}] must have shape ({n},) or (B, {n}) to match A, got {tuple(v.shape)}")
        if out and tuple(v.shape) != tuple(out[0].shape):
            raise ValueError(
                f"vs[{i}] has shape {tuple(v.shape)}, vs[0] {tuple(out[0].shape)}: use one shape"
            )
        if not is_inexact(v):
            raise TypeError(f"vs[{i}] has an integer or boolean dtype; pass floating-point vectors")
        if records_gradients(v):
            # the iterations update tensors in place and steer by host scalars: torch would
            # fail later, in backward or deep in the loop, with a message about neither
            raise ValueError(
                f"vs[{i}] requires grad, and phiv (the φ-products of MatrixFree and Sparse linear "
                "parts) does not carry gradients; pass detached tensors or call it under "
                "torch.no_grad()"
            )
        top = _magnitude(v)  # finite exactly when v is: one pass for both questions
        if not math.isfinite(top):
            raise NonFinite(f"vs[{i}] must be finite (it contains NaN or inf)")
        largest = max(largest, top)
        out.append(v)
    if not all(same_array_type(v, out[0]) for v in out[1:]):
        raise TypeError("vs mixes numpy arrays and torch tensors; use one array type")
    return out, largest


def phiv(
    A: Any,
    vs: Sequence[Array] | Array,
    t: float = 1.0,
    *,
    tol: float = 1e-10,
    m: int | None = None,
    max_substeps: int = 100_000,
    hermitian: bool | None = None,
    method: str = "auto",
    spectrum: tuple[float, float] | None = None,
    skew_hermitian: bool | None = None,
) -> PhivResult:
    r"""Compute $w = \sum_{k=0}^{p} t^k \varphi_k(tA) v_k$ by adaptive Krylov, or for a
    Hermitian ``A`` with a known spectral interval by a Chebyshev expansion.

    Parameters
    ----------
    A : array, scipy sparse matrix, LinearOperator or expint operator
        The ``n × n`` linear operator; only products ``A @ x`` are used.
    vs : sequence of arrays
        ``[v_0, …, v_p]``, each of shape ``(n,)`` (numpy arrays or torch tensors on one
        device; ``v_0`` may be zero, and ``None`` stands for a zero vector: ``[None, v]``
        gives ``t φ_1(tA) v``), or each of shape ``(B, n)`` for ``B`` right-hand
        sides at once: their Krylov processes run in lock step, sharing every product
        with ``A`` (one matrix–matrix product where ``A`` offers one) and every
        sub-step, which is accepted when each row meets ``tol``.
    t : float
        Time; negative values are allowed.
    tol : float
        Relative tolerance on the result: the accumulated a-posteriori error estimate
        is brought below ``tol · ‖w‖`` (each sub-step keeps its local estimate below
        ``tol' · (τ/|t|) · β``, ``β`` the norm of the propagated vector; if the sum
        misses ``tol · ‖w‖``, the call is repeated with ``tol'`` reduced, at most twice).
        At least 10 units of the vectors' roundoff: float32 vectors are computed to
        ``max(tol, 1.2e-6)``, float64 to ``max(tol, 2.2e-15)``.
    m : int or None
        Maximum Krylov basis size per sub-step.  None (default): 30 for Arnoldi, whose
        work per vector grows with the basis; for Lanczos, whose does not, 60, and on
        blocks of at least 2000 entries as many as fit in 32 MiB (``B · n · (m + 1)``
        entries), up to 120.  Long vectors stop earlier, at a checkpoint, once a
        smaller basis meets ``tol``.
    max_substeps : int
        Safety limit on sub-steps.
    hermitian : bool or None
        Whether ``A = A^H``.  Then the basis is built by the Lanczos three-term
        recurrence: each new vector is orthogonalised against the previous two only,
        ``O(n)`` work per product instead of Arnoldi's ``O(jn)`` (Expokit's symmetric
        ``expv`` does the same; the Hessenberg matrix is tridiagonal and the error
        estimate is unchanged).  For ``p > 0`` the sum is then advanced in phipm's
        single-vector form on ``A`` itself (module docstring); where its cancellation
        would keep it from ``tol`` (a stiff ``A``, rough vectors, tight ``tol``) Arnoldi on
        the augmented operator runs instead and ``info.lanczos`` is False.  None
        (default): detected exactly for explicit matrices (dense arrays, scipy sparse
        matrices) and read from an expint operator's ``hermitian`` attribute; an
        operator known only by its products is treated as non-Hermitian.  ``True`` for
        an explicit matrix that is not Hermitian is an error; for a matrix-free ``A``
        it is the caller's promise.  ``False`` rules the Hermitian recurrence out
        (with ``skew_hermitian=False`` as well: Arnoldi).
    method : {"auto", "krylov", "chebyshev"}
        ``"krylov"``: Lanczos or Arnoldi as above.  ``"chebyshev"``: for a Hermitian
        ``A`` with a known spectral interval, the Chebyshev expansion of every term
        on that interval (`expint._chebyshev`): one product and four in-place vector
        updates per term, no inner products, no host synchronisation until the end,
        and an a-priori error bound; it does not adapt to the vector, so it needs
        more products than Lanczos where the vector has little weight at the stiff
        end of the spectrum.  For ``p > 0`` it expands ``t^p φ_p(tA) w_p`` of
        phipm's single-vector form (one vector; where that form's cancellation rules
        out ``tol``, every term on its own vector).  ``"auto"`` (default): Chebyshev
        for a Hermitian ``A`` of more unknowns than the Lanczos basis limit (on smaller
        ones a Lanczos sub-step costs at most about ``n`` products) with a known interval when
        ``‖A v_0‖ ≥ 0.01 · r ‖v_0‖`` (``r`` the interval's half-width: a vector that is
        not smooth) and, for
        ``p > 0``, the single-vector form's rounding stays below a tenth of what
        ``tol`` allows; otherwise, and where the expansion cannot meet ``tol`` (a
        result far smaller than the vectors, an interval reaching far into growth),
        Krylov.
    spectrum : (float, float) or None
        An interval ``[a, b]`` containing every eigenvalue of a Hermitian ``A``, for
        the Chebyshev method.  None (default): Gershgorin's interval for an explicit
        matrix, an operator's ``spectrum`` attribute (`expint.Sparse` computes it,
        `expint.MatrixFree` takes it), or none.  Not checked: an interval that
        misses eigenvalues gives wrong results.
    skew_hermitian : bool or None
        Whether ``A^H = −A`` (``A = iH`` with ``H`` Hermitian: a Schrödinger operator
        ``i Δ_h``, central differences of a first derivative, a wave equation written
        in energy-conserving form).  Then the basis is built by the same three-term
        recurrence, with ``h_{j−1,j} = −h_{j,j−1}`` and imaginary diagonal entries (for
        a real ``A`` none: real arithmetic throughout), and every φ-combination as for
        a Hermitian ``A``, but never by the Chebyshev expansion.  None (default):
        detected exactly, as ``hermitian`` is, where ``A`` is not Hermitian.  ``True``
        for an explicit matrix that is not skew-Hermitian is an error; ``False`` rules
        it out.

    Returns
    -------
    PhivResult
        ``(w, info)`` with ``w`` of the vectors' array type, device and (promoted)
        dtype, and a `KrylovInfo` work report.

    Raises
    ------
    TypeError, ValueError
        For a non-square ``A``, vectors of the wrong length, integer dtypes,
        non-finite input, a non-positive ``tol``, ``m`` or ``max_substeps``, ``hermitian=True`` for an
        explicit matrix that is not Hermitian, an unknown ``method``, a malformed
        ``spectrum``, ``method="chebyshev"`` without a Hermitian ``A`` and an interval
        or where the expansion cannot meet ``tol``, and a result past the
        floating-point range (``t`` times the largest real part of an eigenvalue
        beyond ~700).
    RuntimeError
        Where ``max_substeps`` sub-steps do not reach ``t``: a basis cap ``m`` far too
        small for ``‖tA‖`` at this ``tol`` (the message says where it stopped).

    Notes
    -----
    Vectors whose largest entry lies outside ``[2**-300, 2**300]`` are scaled by a
    power of two (exactly) before the Krylov recurrence and the result scaled back:
    the squares behind its norms would otherwise under- or overflow.

    For numpy vectors of ``2**13`` to ``2**17`` entries (per block) the Krylov loop runs
    with the BLAS thread pools limited to one thread — process-wide, as BLAS has no
    per-thread setting — and restores them on return: its dot products and short
    matrix–vector products on long vectors lose more to waking threads than they gain.
    """
    matvec, n = _as_matvec(A)
    vs, top = _check_vectors(vs, n)
    real = (int, float, np.floating, np.integer)
    if isinstance(t, bool) or not (isinstance(t, real) and math.isfinite(float(t))):
        raise ValueError(f"t must be a finite real number, got {t!r}")
    check_krylov_options(tol, m)
    for flag, name in ((hermitian, "hermitian"), (skew_hermitian, "skew_hermitian")):
        if flag is not None and not isinstance(flag, bool):
            raise TypeError(f"{name} must be True, False or None, got {flag!r}")
    if hermitian and skew_hermitian:
        raise ValueError("A cannot be both Hermitian and skew-Hermitian (unless A = 0); pass one of them")
    if isinstance(max_substeps, bool) or not (
        isinstance(max_substeps, (int, np.integer)) and max_substeps >= 1
    ):
        raise ValueError(f"max_substeps must be a positive integer, got {max_substeps!r}")
    if method not in PHIV_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, PHIV_METHODS))}, got {method!r}")
    if spectrum is not None:
        spectrum = check_spectrum(spectrum)
    t, tol = float(t), float(tol)
    info = KrylovInfo()
    if t == 0.0 or n == 0:  # φ_0(0) = 1 and t^k = 0 for k > 0; or nothing to compute
        return PhivResult(vs[0] + 0 * vs[0], info)
    # vectors near either end of the floating-point range: the squares behind the norms
    # and error estimates under- or overflow (entries of 1e-162 took 1e5 rejected
    # sub-steps).  w is linear in the vectors: work on them scaled by a power of two
    # (exact) and scale the result back.
    if top > 0 and not _SAFE_MAGNITUDE[0] <= top <= _SAFE_MAGNITUDE[1]:
        e = math.frexp(top)[1]
        scaled = phiv(
            A,
            [_times_power_of_two(v, -e) for v in vs],
            t,
            tol=tol,
            m=m,
            max_substeps=max_substeps,
            hermitian=hermitian,
            method=method,
            spectrum=spectrum,
            skew_hermitian=skew_hermitian,
        )
        return PhivResult(_times_power_of_two(scaled.w, e), scaled.info)

    sign = 1.0 if t > 0 else -1.0
    single = vs[0].ndim == 1
    probe = _check_product(matvec(vs[0] if single else vs[0][0]), vs[0] if single else vs[0][0], n)
    info.matvecs += 1
    dtype = promote_types([*vs, probe])
    # one block of right-hand sides, shape (B, n)
    vs = [cast(v[None] if single else v, dtype) for v in vs]
    # a tolerance the working precision cannot meet (float32 vectors under the operators'
    # default 1e-10) would only buy retries, rejected sub-steps and the Arnoldi fallback
    tol = max(tol, _TOL_FLOOR_ULPS * _unit_roundoff(vs[0]))
    # zero trailing vectors (a pure exponential written as [v, 0, 0]) add nothing but
    # make the augmented operator larger and non-Hermitian
    norms = [float(_row_norms(v).max()) for v in vs[1:]]
    while norms and norms[-1] == 0.0:
        norms.pop()
        vs.pop()
    p = len(vs) - 1
    exact = _hermitian(A) if hermitian is not False else None
    if hermitian and exact is False:
        raise ValueError("hermitian=True but A is not Hermitian (A != A^H); pass hermitian=None or False")
    is_hermitian = bool(hermitian or exact)
    skew = False
    if skew_hermitian or (skew_hermitian is None and not is_hermitian):
        exact = _hermitian(A, skew=True)
        if skew_hermitian and exact is False:
            raise ValueError(
                "skew_hermitian=True but A is not skew-Hermitian (A^H != -A); "
                "pass skew_hermitian=None or False"
            )
        skew = bool(skew_hermitian or exact)
        is_hermitian = is_hermitian and not skew  # (a promise for a matrix-free A)
    lanczos = is_hermitian or skew
    if m is not None:
        limit = int(m)
    else:
        limit = _lanczos_limit(math.prod(vs[0].shape), vs[0].itemsize) if lanczos else _DEFAULT_M
    # t < 0: t^k φ_k(tA) v_k = |t|^k φ_k(|t|(-A)) (-1)^k v_k
    if sign < 0:
        vs = [v * (-1.0) ** k for k, v in enumerate(vs)]
    block = _as_block_matvec(A, matvec)

    def amul(x: Any) -> Any:
        y = matvec(x[0])[None] if x.shape[0] == 1 else block(x)
        return -y if sign < 0 else y

    if spectrum is not None and not is_hermitian:
        raise ValueError(
            "spectrum is for a Hermitian A, and this A is not (or hermitian=False was passed); drop spectrum"
        )
    first = cast(probe if sign > 0 else -probe, dtype)[None]  # A v_0 (row 0) for the sign-adjusted A
    # an A of at most `limit` unknowns: a Lanczos sub-step costs at most about n
    # products (its basis cannot outgrow the space), where a Chebyshev expansion's degree
    # grows like sqrt(|t|·(b − a)) without bound (a 2 × 2 operator with eigenvalues −1e6
    # and 1e3 took ~500 products a call, tests/test_solve.py)
    if method == "chebyshev" or (method == "auto" and is_hermitian and n > limit):
        interval = (lambda: spectrum) if spectrum is not None else (lambda: spectral_interval(A))

        def shifted(a: float, b: float) -> Callable[[Any], Any] | None:
            return shifted_product(A, sign * a, b, vs[0])  # a·(sign·A) + b·I

        done = _chebyshev(amul, vs, t, tol, method, is_hermitian, interval, first, single, info, shifted)
        if done is not None:
            return done
    if lanczos:
        # A Hermitian or skew-Hermitian: Krylov on A itself, the φ-terms (p > 0) through
        # phipm's single-vector form (the augmented operator below is not Hermitian).  Those
        # terms cancel when A is stiff; where rounding would keep them from tol, Arnoldi
        # on the augmented operator, which has no such cancellation, takes over.
        try:
            with _one_blas_thread(vs[0]):
                return _retry(
                    lambda step_tol: _expv(
                        amul,
                        vs[0],
                        abs(t),
                        tol=step_tol,
                        m_max=min(limit, n),
                        max_substeps=max_substeps,
                        lanczos=True,
                        skew=skew,
                        forcing=vs[1:],
                        first_product=first if single else None,
                    ),
                    tol,
                    n,
                    single,
                    info,
                    strict=p > 0,
                )
        except _RoundingFloor:
            info.lanczos = False
            limit = _DEFAULT_M if m is None else int(m)
    # η balances the columns of B against A (Al-Mohy & Higham): a power of two so the
    # scaling is exact.
    bnorm = max(norms, default=0.0)
    eta = 2.0 ** (-round(math.log2(bnorm))) if bnorm > 0 else 1.0
    bcols = [v * eta for v in reversed(vs[1:])]  # B = [v_p, …, v_1]

    def aug_matvec(z: Any, top: Any = None) -> Any:
        """``Ã z``; ``top``: ``A x`` where already known."""
        x, y = z[:, :n], z[:, n:]
        top = amul(x) if top is None else top
        for i in range(p):
            top = top + bcols[i] * y[:, i : i + 1]
        if p == 0:
            return top
        shifted = concat([y[:, 1:], y[:, :1] * 0], -1)
        return concat([top, shifted], -1)

    rows = vs[0].shape[0]
    tail = np.zeros((rows, p), dtype=np.result_type(float, to_numpy(vs[0][:1, :1])))
    if p:
        tail[:, -1] = 1.0 / eta
    w = concat([vs[0], as_like(tail, vs[0])], -1) if p else vs[0]
    aug_first = aug_matvec(w, top=first) if single else None  # Ã w from the probe: one product saved
    with _one_blas_thread(vs[0]):
        return _retry(
            lambda step_tol: _expv(
                aug_matvec,
                w,
                abs(t),
                tol=step_tol,
                m_max=min(limit, n + p),
                max_substeps=max_substeps,
                first_product=aug_first,
            ),
            tol,
            n,
            single,
            info,
        )


PHIV_METHODS = ("auto", "krylov", "chebyshev")


_AUTO_ROUNDING_MARGIN = 10.0


def _chebyshev(
    amul: Callable[[Any], Any],
    vs: list[Any],
    t: float,
    tol: float,
    method: str,
    hermitian: bool,
    find_interval: Callable[[], tuple[float, float] | None],
    first: Any,
    single: bool,
    info: KrylovInfo,
    shifted: ShiftedFactory | None = None,
) -> PhivResult | None:
    """The Chebyshev path of `phiv` (``vs`` sign-adjusted for ``t < 0`` like ``amul``;
    ``first`` = ``amul(v_0[0])``): its result, or None where ``method="auto"`` leaves
    the call to Krylov (no interval, a smooth ``v_0``, or an expansion that cannot meet
    ``tol``).  ``method="chebyshev"`` raises instead.  The interval is
    looked up only when needed: Gershgorin's costs a pass over the matrix's entries."""
    forced = method == "chebyshev"
    if not hermitian:
        raise ValueError("method='chebyshev' needs a Hermitian A (pass hermitian=True for a matrix-free one)")
    interval = find_interval()
    if interval is None:
        if forced:
            raise ValueError(
                "method='chebyshev' needs an interval containing A's eigenvalues: pass spectrum=(a, b)"
            )
        return None
    lo, hi = interval if t > 0 else (-interval[1], -interval[0])
    if not forced and not prefer_chebyshev(_row_norms(first)[0], _row_norms(vs[0][:1])[0], lo, hi):
        return None
    try:
        with _one_blas_thread(vs[0]):
            w, products, bound = _chebyshev_expand(
                amul, vs, abs(t), lo, hi, tol, forced, first if single else None, shifted
            )
    except ChebyshevUnfit as exc:
        if forced:
            raise ValueError(f"method='chebyshev' cannot meet tol here: {exc}; use method='krylov'") from None
        return None
    info.matvecs += products
    info.substeps += 1
    info.basis_sizes.append(products)
    info.error_estimate = bound
    info.chebyshev = True
    return PhivResult(w[0] if single else w, info)


def _chebyshev_expand(
    amul: Callable[[Any], Any],
    vs: list[Any],
    t: float,
    lo: float,
    hi: float,
    tol: float,
    forced: bool,
    first: Any,
    shifted: ShiftedFactory | None = None,
) -> tuple[Any, int, float]:
    """The expansion itself (``t > 0``): a pure exponential directly; a φ-combination
    through the single-vector form, and where forced and that form's cancellation rules
    out ``tol``, every term on its own vector (a block, which has none).  ``first``:
    ``A v_0`` for a single row, else None.  Raises `ChebyshevUnfit`."""
    eps = _unit_roundoff(vs[0])
    if len(vs) == 1:
        return chebyshev_phiv(amul, vs, t, lo, hi, tol, eps, _row_norms, first_product=first, shifted=shifted)
    # `auto` declines where rounding comes within 10× of what tol allows
    # (benchmarks/chebyshev_phiv.py, σ = 1: the expansion ran and missed)
    margin = 1.0 if forced else _AUTO_ROUNDING_MARGIN
    try:
        return _chebyshev_single_vector(amul, vs, t, lo, hi, tol, eps, margin, first, shifted)
    except ChebyshevUnfit:
        if not forced:
            raise
    return chebyshev_phiv(amul, vs, t, lo, hi, tol, eps, _row_norms, shifted=shifted)


def _chebyshev_single_vector(
    amul: Callable[[Any], Any],
    vs: list[Any],
    t: float,
    lo: float,
    hi: float,
    tol: float,
    eps: float,
    margin: float,
    first_product: Any = None,
    shifted: ShiftedFactory | None = None,
) -> tuple[Any, int, float]:
    """``Σ_k t^k φ_k(tA) v_k`` in phipm's single-vector form (module docstring) over the
    whole of ``t``: the polynomial part ``Σ_{j<p} t^j/j! w_j`` plus the Chebyshev
    expansion of ``t^p φ_p(tA) w_p`` — one vector in the recurrence instead of ``p + 1``.
    Its terms cancel on a stiff ``A``; their rounding (as for Lanczos) is part of the
    expansion's acceptance test, which raises `ChebyshevUnfit` where it rules out
    ``tol``.  ``first_product``: ``A v_0`` where already known (saves a product)."""
    ws = [vs[0]]
    for z in vs[1:]:
        product = first_product if len(ws) == 1 and first_product is not None else amul(ws[-1])
        ws.append(product + z)
    wnorms = [_row_norms(x) for x in ws[1:]]
    if not all(np.all(np.isfinite(x)) for x in wnorms):
        raise ChebyshevUnfit("the single-vector form's terms A w_{j-1} + v_j overflow")
    p = len(vs) - 1
    rounding = _rounding(wnorms, t, eps)
    if hi <= 0:
        # A ≤ 0 gives |φ_k(tλ)| ≤ 1/k!, so ‖w‖ ≤ Σ_k t^k/k! ‖v_k‖: where the
        # cancellation's rounding exceeds tol times even that (with `margin` > 1, comes
        # near it: a result that decays below that bound would then miss tol, found
        # only after the whole expansion), decline before expanding
        most = sum(t**k / math.factorial(k) * _row_norms(v) for k, v in enumerate(vs))
        if np.any(2 * margin * rounding > tol * most):
            raise ChebyshevUnfit("the single-vector form's cancellation leaves too little of tol")
    w, products, bound = chebyshev_phiv(
        amul,
        [ws[-1]],
        t,
        lo,
        hi,
        tol,
        eps,
        _row_norms,
        orders=[p],
        base=_taylor(ws[:-1], t),
        base_rounding=rounding,
        shifted=shifted,
    )
    return w, products + p - int(first_product is not None), bound


# numpy arrays whose size lies in this window run phiv with BLAS on one thread: the Krylov
# loop is a chain of level-1/-2 operations (dot products, scaled additions, short matrix–
# vector products) on long vectors, and waking OpenBLAS's threads for each costs more than
# it saves — on this project's 2-core machine an exponential-RK stage on the 128² and
# 256² Laplacians ran 1.3–1.5× faster on one thread (`python benchmarks/krylov_phiv.py`,
# rows "BLAS threads untouched").  Below the window OpenBLAS keeps such operations on one
# thread anyway (and switching costs ~20 µs).  The upper end is kept low (2 · 256²):
# on larger blocks one operation outweighs the wake-up, and on a machine with many cores
# (not measured here) several threads can draw more memory bandwidth than one.
_ONE_THREAD_SIZES = (2**13, 2**17)


@contextmanager
def _one_blas_thread(like: Any) -> Iterator[None]:
    """BLAS on one thread (`expint._blas.one_blas_thread`) while ``phiv`` runs on
    ``like``, a numpy block in `_ONE_THREAD_SIZES`; otherwise nothing changes."""
    low, high = _ONE_THREAD_SIZES
    if not (isinstance(like, np.ndarray) and low <= like.size <= high):
        yield
        return
    with one_blas_thread():
        yield


def _retry(
    run: Callable[[float], tuple[Any, np.ndarray, KrylovInfo]],
    tol: float,
    n: int,
    single: bool,
    info: KrylovInfo,
    *,
    strict: bool = False,
) -> PhivResult:
    """Run `_expv` until its accumulated estimate meets ``tol · ‖result‖``.

    The step control is relative to the size of what is propagated, which can be far
    larger than the result (decaying modes; the augmentation tail).  If the accumulated
    estimate misses ``tol·‖result‖``, redo with a tolerance scaled by the miss (at most
    twice); ``strict``: raise `_RoundingFloor` if the last try still misses."""
    step_tol = tol
    for _attempt in range(3):
        w, estimates, sub_info = run(step_tol)
        info.merge(sub_info)
        info.error_estimate = float(estimates.max())
        target = tol * _row_norms(w[:, :n])
        if not np.all(np.isfinite(target)):
            raise _overflow()
        if np.all(estimates <= target) or step_tol < 1e-15:
            break
        over = estimates > target  # (a zero row has target 0 and estimate 0)
        miss = float(np.min(target[over] / estimates[over]))
        step_tol = max(step_tol * 0.5 * miss, 1e-16)
    else:
        if strict:
            raise _RoundingFloor
    out = w[:, :n]
    return PhivResult(out[0] if single else out, info)


# default basis limits: Arnoldi's orthogonalisation costs O(j n) for the j-th vector,
# Lanczos's O(n), so Lanczos affords a larger basis and fewer, longer sub-steps
# (`python benchmarks/krylov_phiv.py`: 128²/256² Laplacians 1.2–1.6× faster than with 30).
# Lanczos keeps its whole basis for the final combination, so on long vectors, where a
# product costs more than the small matrix work, its limit grows with what memory allows:
# a sub-step that needs 95 vectors then runs as one, not as several with rejections.
# The basis stays below 32 MiB: glibc serves larger blocks by a fresh mmap on every
# call, whose page faults cost more than the products saved on easy calls.  `python
# benchmarks/lanczos_basis_limit.py` (fastest of 18 interleaved calls): 1-D Laplacian,
# n = 3000, ‖tA‖₁ = 360 (120 vectors in 32 MiB) 2.3–2.5× faster than with 60 for "exp"
# (185 → 76 products at tol 1e-6, 267 → 96 at 1e-10); 256² Laplacian (62 vectors in
# 32 MiB) no slower, while 64 MiB (120 vectors) was 8–24% slower at tol 1e-6 and
# 7–23% faster at 1e-10.  Short vectors keep 60: there the small matrices dominate and
# a larger basis only makes them larger.
_DEFAULT_M = 30


_DEFAULT_M_LANCZOS = 60


_LANCZOS_M_LONG = 120


_LANCZOS_BASIS_BYTES = 32 * 2**20


def _lanczos_limit(entries: int, itemsize: int) -> int:
    """Lanczos basis limit for a block of ``entries`` numbers (rows × n) of
    ``itemsize`` bytes each."""
    if entries < _CHECK_MIN_N:
        return _DEFAULT_M_LANCZOS
    # m + 1 vectors, strictly below the budget (an array of exactly 32 MiB, with
    # numpy's header, is already past glibc's threshold)
    fits = _LANCZOS_BASIS_BYTES // (entries * itemsize) - 2
    return max(_DEFAULT_M_LANCZOS, min(_LANCZOS_M_LONG, fits))


_TOL_FLOOR_ULPS = 10  # phiv's tolerance floor, in units of the vectors' roundoff
