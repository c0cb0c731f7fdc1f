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
one exact step.  The small exponentials are computed in numpy (`_expm_small`).

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

``python benchmarks/krylov_phiv.py`` compares the cost with SciPy's ``expm_multiply``
and ``funm_multiply_krylov``; ``python benchmarks/chebyshev_phiv.py`` compares the
Chebyshev and Lanczos paths.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import numpy as np

from ._backend import (
    Array,
    all_finite,
    array_namespace,
    as_like,
    cast,
    concat,
    device,
    finfo_of,
    is_array,
    is_complex,
    is_inexact,
    is_torch_array,
    promote_types,
    promoted_product,
    records_gradients,
    same_array_type,
    sparse_is_hermitian,
    sparse_kind,
    stack,
    to_like,
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
from ._phi import phi_all
from ._validation import check_krylov_options

__all__ = ["KrylovInfo", "PhivResult", "phiv"]


@dataclass
class KrylovInfo:
    """Work and accuracy report of one `phiv` call.

    Attributes
    ----------
    error_estimate : float
        Sum of the accepted local error estimates of the final attempt (absolute,
        2-norm), an estimate of ``‖w - w_exact‖``: the truncation of the Krylov
        expansion, plus the cancellation of the single-vector form; not the rounding
        of the final combination, which in float32 is ~10–20 units of roundoff of
        ``‖w‖`` on stiff φ-combinations (tests/test_phiv.py: errors 2.3e-6 and
        2.6e-6 at ``tol = 1e-5``).
    matvecs : int
        Products with ``A``.
    substeps : int
        Accepted sub-steps.
    rejected : int
        Rejected sub-steps.
    happy_breakdowns : int
        Arnoldi breakdowns (invariant Krylov space found), counted per right-hand side
        and sub-step.
    basis_sizes : list[int]
        Krylov basis size of every accepted sub-step (Chebyshev: the number of
        products in the expansion).
    lanczos : bool
        Whether the result comes from the Lanczos three-term recurrence on ``A``
        (Hermitian or skew-Hermitian ``A``; for ``p > 0`` through the single-vector
        form) rather than from Arnoldi (on the augmented operator for ``p > 0``).
    chebyshev : bool
        Whether it comes from the Chebyshev expansion (``method="chebyshev"``, or
        ``"auto"`` on a rough vector); then ``error_estimate`` is the a-priori
        bound (truncation plus rounding; absolute, 2-norm) and ``substeps`` is 1.
    """

    error_estimate: float = 0.0
    matvecs: int = 0
    substeps: int = 0
    rejected: int = 0
    happy_breakdowns: int = 0
    basis_sizes: list[int] = field(default_factory=list)
    lanczos: bool = False
    chebyshev: bool = False

    def merge(self, other: KrylovInfo) -> None:
        """Accumulate another call's work into this record."""
        self.error_estimate += other.error_estimate  # caller may overwrite (retries)
        self.matvecs += other.matvecs
        self.substeps += other.substeps
        self.rejected += other.rejected
        self.happy_breakdowns += other.happy_breakdowns
        self.basis_sizes.extend(other.basis_sizes)
        self.lanczos = self.lanczos or other.lanczos
        self.chebyshev = self.chebyshev or other.chebyshev


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


def _row_norms(x: Any) -> np.ndarray:
    """2-norms of the rows of ``x`` on the host (one transfer)."""
    if isinstance(x, np.ndarray):
        # the hot path: one BLAS dot per row (np.linalg.norm along an axis squares into
        # a temporary first, several times slower on long vectors, real or complex)
        flat = x.reshape(-1, x.shape[-1])
        with np.errstate(over="ignore"):
            squares = np.array([np.vdot(row, row).real for row in flat])
        norms = np.sqrt(squares)
        for i in np.flatnonzero(~np.isfinite(norms)):  # the squares overflowed: scale first
            top = np.max(np.abs(flat[i]))
            if np.isfinite(top):
                norms[i] = top * math.sqrt(np.vdot(flat[i] / top, flat[i] / top).real)
        return norms.reshape(x.shape[:-1])
    xp = array_namespace(x)
    if is_torch_array(x):  # one kernel instead of four (launches count on a GPU)
        import torch

        norms = np.asarray(to_numpy(torch.linalg.vector_norm(x, dim=-1)), dtype=float)
    else:
        norms = np.asarray(to_numpy(xp.sqrt(xp.sum(xp.abs(x) ** 2, axis=-1))), dtype=float)
    if not np.all(np.isfinite(norms)):  # squares past the range (rare: a second pass)
        top = xp.max(xp.abs(x), axis=-1, keepdims=True)
        safe = xp.where(top > 0, top, xp.ones_like(top))
        scaled = xp.sqrt(xp.sum(xp.abs(x / safe) ** 2, axis=-1)) * safe[..., 0]
        norms = np.asarray(to_numpy(scaled), dtype=float)
    return norms


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


def _combine(basis: Any, coeffs: np.ndarray, like: Any) -> Any:
    """Row ``b`` of the result is ``Σ_i coeffs[b, i] basis[b, i]``, in the dtype of
    ``like`` (``basis``: ``(B, K, N)``, ``coeffs``: ``(B, K)``)."""
    c = coeffs if is_complex(like) else np.real(coeffs)
    return (as_like(c[:, None, :], like) @ basis)[:, 0]


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
        device; ``v_0`` may be zero), or each of shape ``(B, n)`` for ``B`` right-hand
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


class NonFinite(ValueError):
    """`phiv` met a non-finite vector or would return a non-finite result.  A
    ``ValueError`` to callers; a solver's operator turns it into a non-finite stage,
    which stops the run at that step (as the same overflow does on `Dense`)."""


def _overflow() -> ValueError:
    return NonFinite(
        "phiv: the result is not finite: e^{tA} grows past the floating-point range (t times "
        "the largest real part of A's eigenvalues beyond ~700); shorten t or rescale the problem"
    )


# e^{τH} overflows once τ times H's largest eigenvalue passes ~709; a tenth of such a
# τ is below 71, where the estimate is finite again and the usual rule takes over
_OVERFLOW_SHRINK = 0.1


def _round2(x: float) -> float:
    """Round to two significant digits (keeps step sizes from drifting by ulps)."""
    if x <= 0 or not math.isfinite(x):
        return x
    s = 10.0 ** (math.floor(math.log10(x)) - 1)
    return math.ceil(x / s) * s


# The Krylov process checks whether a smaller basis already meets the tolerance at these
# sizes.  Each check costs a small ``expm``: Arnoldi checks only on long vectors, where it
# can save orthogonalising against tens of vectors of length n; Lanczos always, as its
# basis limit (60 or more) is far larger than an easy sub-step needs and the final
# ``expm`` of a 62 × 62 matrix alone outweighs a few checks (`python benchmarks/krylov_phiv.py --sizes
# 16,32`: below n = 2000 every call used to build all 60 vectors)
_CHECKPOINTS = (6, 10, 14, 19, 24, 30, 38, 48, 60, 75, 85, 95, 107, 120)
_CHECK_MIN_N = 2000
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
# above this basis size a Lanczos sub-step takes its small φ-evaluations from the
# eigendecomposition of its tridiagonal matrix (`_small_phi_tridiagonal`) instead of a
# Padé exponential of the augmented matrix: the exponential's cost grows faster with
# the size (squarings of a full matrix), and every rejected or stretched τ on the same
# basis would pay it again, where the decomposition is reused
_EIGEN_MIN = 60


def _lanczos_limit(entries: int, itemsize: int) -> int:
    """Lanczos basis limit for a block of ``entries`` numbers (rows × n) of
    ``itemsize`` bytes each."""
    if entries < _CHECK_MIN_N:
        return _DEFAULT_M_LANCZOS
    # m + 1 vectors, strictly below the budget (an array of exactly 32 MiB, with
    # numpy's header, is already past glibc's threshold)
    fits = _LANCZOS_BASIS_BYTES // (entries * itemsize) - 2
    return max(_DEFAULT_M_LANCZOS, min(_LANCZOS_M_LONG, fits))


# Padé(13) numerator coefficients (Higham 2005, Table 2.3 / eq. 2.1) and its bound θ_13
_PADE13 = (
    64764752532480000.0,
    32382376266240000.0,
    7771770303897600.0,
    1187353796428800.0,
    129060195264000.0,
    10559470521600.0,
    670442572800.0,
    33522128640.0,
    1323241920.0,
    40840800.0,
    960960.0,
    16380.0,
    182.0,
    1.0,
)
_THETA13 = 5.371920351148152


def _expm_small(a: np.ndarray) -> np.ndarray:
    """``e^a`` of small matrices (a stack ``(..., k, k)``) by Padé(13) scaling and
    squaring (Higham 2005) in numpy, one scaling for the whole stack.

    Written here rather than calling ``scipy.linalg.expm`` because numpy and scipy each
    ship an OpenBLAS with its own thread pool: alternating between them inside the
    Arnoldi loop left one pool's spinning threads competing with the other's on every
    call (measured: `phiv` on the 128² Laplacian 3.3× slower than with either pool
    limited to one thread; ``python benchmarks/krylov_phiv.py``)."""
    norm = float(np.abs(a).sum(axis=-2).max()) if a.size else 0.0
    s = max(0, math.ceil(math.log2(norm / _THETA13))) if norm > _THETA13 else 0
    x = a / 2.0**s
    ident = np.eye(a.shape[-1], dtype=a.dtype)
    x2 = x @ x
    x4 = x2 @ x2
    x6 = x4 @ x2
    b = _PADE13
    u = x @ (x6 @ (b[13] * x6 + b[11] * x4 + b[9] * x2) + b[7] * x6 + b[5] * x4 + b[3] * x2 + b[1] * ident)
    v = x6 @ (b[12] * x6 + b[10] * x4 + b[8] * x2) + b[6] * x6 + b[4] * x4 + b[2] * x2 + b[0] * ident
    r = np.linalg.solve(v - u, v + u)
    for _ in range(s):
        r = r @ r
    return r


def _small_phi(h: np.ndarray, mj: int, tau: float, p: int) -> np.ndarray:
    """``τ^p φ_p(τ Ĥ) e_1`` for each row, ``Ĥ`` its ``(mj + 1) × mj`` Hessenberg block
    augmented by a unit entry at ``(mj + 1, mj)`` (shape ``(rows, mj + 2)``).

    Entries ``0 … mj − 1`` are the coefficients of the basis vectors; entries ``mj``
    and ``mj + 1`` are ``τ^{p+1} h_{mj+1,mj} [φ_{p+1}(τH)e_1]_{mj}`` and the same with
    ``φ_{p+2}`` and one more ``τ``: the two terms of Saad's error estimate (Sidje 1998
    for ``p = 0``; the same expansion for ``φ_p``, Niesen & Wright 2012).  ``p > 0``
    appends a chain of ``p`` nilpotent states to the small matrix, so that one
    exponential gives ``φ_p`` (Al-Mohy & Higham 2011, Thm 2.1, in miniature)."""
    size = mj + 2 + p
    small = np.zeros((h.shape[0], size, size), dtype=h.dtype)
    small[:, : mj + 1, :mj] = h[:, : mj + 1, :mj]
    small[:, mj + 1, mj] = 1.0
    if p:
        small[:, 0, mj + 2] = 1.0
        for i in range(p - 1):
            small[:, mj + 2 + i, mj + 3 + i] = 1.0
    f = _expm_small(tau * small)
    col = 0 if p == 0 else mj + 1 + p
    return f[:, : mj + 2, col]


def _small_phi_tridiagonal(
    lam: np.ndarray, q: np.ndarray, h_next: np.ndarray, tau: float, p: int
) -> np.ndarray | None:
    """`_small_phi` for Lanczos, from ``T = Q diag(λ) Q^H`` of each row's tridiagonal
    block (``lam``: ``(rows, k)``, real for a Hermitian ``T``, imaginary for a
    skew-Hermitian one; ``q``: ``(rows, k, k)``, unitary) and its ``h_{k+1,k}``
    (``h_next``): entries ``0 … k − 1`` are ``τ^p Q φ_p(τλ) Q^H e_1``,
    entries ``k`` and ``k + 1`` are ``τ^{p+j} h_{k+1,k} e_k^T Q φ_{p+j}(τλ) Q^H e_1``
    for ``j = 1, 2`` — what the exponential of the augmented matrix gives (its
    lower-left blocks are ``τ h e_k^T φ_{p+1}(τT)`` and the next term).

    One decomposition serves every ``τ`` tried on a basis (a rejected or stretched
    sub-step then costs ``O(k²)`` instead of an ``O(k³)`` exponential), and it is
    backward stable: ``Q`` is unitary.  The two error entries, though, are sums of
    ``k`` terms that cancel down to far below their size once the basis has converged
    (the Padé exponential resolves them: below 1e-30 in ``tests/test_phiv.py``); the sum
    then carries rounding of ``k·eps·Σ|terms|``.  None where an error entry is within 100×
    of that floor: the caller takes the exponential instead, so a tight ``tol`` is never
    compared with rounding noise."""
    phis = phi_all(p + 2, tau * lam)  # (p + 3, rows, k)
    head = q[:, 0, :].conj()  # Q^H e_1, row by row
    last = q[:, -1, :]  # e_k^T Q
    k = lam.shape[1]
    out = np.empty((lam.shape[0], k + 2), dtype=np.result_type(phis, q))
    out[:, :k] = tau**p * (q @ (phis[p] * head)[:, :, None])[:, :, 0]
    for j in (1, 2):
        terms = last * phis[p + j] * head
        entry, floor = terms.sum(axis=1), k * np.finfo(float).eps * np.abs(terms).sum(axis=1)
        if np.any(np.abs(entry) <= 100.0 * floor):
            return None
        out[:, k + j - 1] = tau ** (p + j) * h_next * entry
    return out


#: Spare blocks of memory for the Krylov basis of `_expv`, one per kind of host array
#: (``"numpy"``, ``"torch"`` on the CPU).  A basis of long vectors takes up to 32 MiB
#: (`_lanczos_limit`), which the C library maps afresh for every call and whose pages
#: then fault in again at every φ-product; torch's CPU allocator keeps no cache either
#: (on a GPU torch's caching allocator already reuses memory, so device tensors are
#: left to it).  With the reused first product: 1.1–1.5× on finite-difference
#: Gray–Scott 256² solves (`benchmarks/krylov_solve_overhead.py`).  A call takes its
#: kind's block and puts it back when done; a concurrent or re-entrant call (a matvec
#: that itself calls `phiv`) finds none and allocates its own.  `free_spare_basis` (and
#: `MatrixFree.clear_cache`) frees them.
_SPARE_BASIS: dict[str, list[Any]] = {"numpy": [], "torch": []}


def free_spare_basis() -> None:
    """Free the spare blocks `phiv` keeps for its Krylov basis (`_SPARE_BASIS`)."""
    for blocks in _SPARE_BASIS.values():
        blocks.clear()


class _BasisMemory:
    """Where one `_expv` call keeps its basis: for numpy arrays and CPU tensors in its
    kind's spare block (taken on first use, returned by `release`), for tensors on
    another device a fresh one."""

    def __init__(self) -> None:
        self._block: Any = None
        self._kind = ""

    def basis(self, shape: tuple[int, ...], like: Any) -> Any:
        if isinstance(like, np.ndarray):
            kind, nbytes = "numpy", math.prod(shape) * like.dtype.itemsize
        elif is_torch_array(like) and like.device.type == "cpu":
            kind, nbytes = "torch", math.prod(shape) * like.element_size()
        else:
            return array_namespace(like).empty(shape, dtype=like.dtype, device=device(like))
        try:
            block = _SPARE_BASIS[kind].pop()  # atomic: two threads never get the same block
        except IndexError:
            block = None
        if block is None or block.shape[0] < nbytes:
            if kind == "numpy":
                block = np.empty(nbytes, dtype=np.uint8)
            else:
                import torch

                block = torch.empty(nbytes, dtype=torch.uint8)
        self._block, self._kind = block, kind
        return block[:nbytes].view(like.dtype).reshape(shape)

    def release(self) -> None:
        if self._block is not None and not _SPARE_BASIS[self._kind]:
            _SPARE_BASIS[self._kind].append(self._block)
        self._block = None


_R = TypeVar("_R")


def _keeping_basis_memory(run: Callable[..., _R]) -> Callable[..., _R]:
    """``run`` (which takes a ``memory`` keyword) with a `_BasisMemory` of its own,
    released however the call ends."""

    @functools.wraps(run)
    def wrapped(*args: Any, **kwargs: Any) -> _R:
        memory = _BasisMemory()
        try:
            return run(*args, memory=memory, **kwargs)
        finally:
            memory.release()

    return wrapped


@_keeping_basis_memory
def _expv(
    matvec: Callable[[Any], Any],
    v: Any,
    t: float,
    *,
    tol: float,
    m_max: int,
    max_substeps: int,
    lanczos: bool = False,
    skew: bool = False,
    forcing: Sequence[Any] = (),
    first_product: Any = None,
    memory: _BasisMemory,
) -> tuple[Any, np.ndarray, KrylovInfo]:
    """``u(t)`` for ``u' = A u + Σ_{k=1}^{p} s^{k−1}/(k−1)! f_k``, ``u(0) = v``, for each
    row of ``v`` (shape ``(B, N)``), ``t > 0``, with sub-stepping and a-posteriori error
    control; also each row's accumulated error estimate.  With no ``forcing`` this is
    ``exp(tA) v``; with ``forcing = [f_1, …, f_p]`` it is ``Σ_k t^k φ_k(tA) v_k``.

    Each sub-step ``τ`` from ``s`` (state ``u``, forcing Taylor-shifted to ``z_k``)
    uses the single-vector form of *phipm* (Niesen & Wright 2012): with ``w_0 = u`` and
    ``w_j = A w_{j−1} + z_j``,

    ``u(s + τ) = Σ_{j<p} τ^j/j! w_j + τ^p φ_p(τA) w_p``,

    so one Krylov basis, of ``w_p``, serves all ``p + 1`` terms (``p`` extra products per
    sub-step).  The rows advance in lock step — one block product with ``A`` and one
    batched orthogonalisation per iteration, each row with its own Hessenberg matrix —
    and a sub-step is accepted when every row meets the tolerance.  The first sub-step
    tries the whole interval; after a rejection ``τ`` shrinks on the same basis, and
    an accepted ``τ`` is stretched on it while the estimate allows (only small
    exponentials are recomputed).  For long vectors the basis stops at a checkpoint
    as soon as the smaller basis meets the tolerance for the current ``τ``, so easy
    sub-steps do not pay for a full basis.  A row whose Krylov space becomes invariant
    (breakdown) gets zero basis vectors from there on, which keeps its small
    exponential exact.  With ``lanczos`` (Hermitian ``A``, or skew-Hermitian with
    ``skew``) each new vector is orthogonalised against the previous two only (the
    three-term recurrence).
    ``first_product``: ``matvec(v)`` where the caller already has it (`phiv`'s probe),
    used in place of the first sub-step's first product; ``memory``: where the basis
    lives (supplied by `_keeping_basis_memory`)."""
    info = KrylovInfo(lanczos=lanczos)
    # the vectors' unit roundoff (float32's is 5e8 × float64's): the rounding of the
    # single-vector form and the breakdown test are in the working precision
    eps = _unit_roundoff(v)
    rows, size = v.shape
    p = len(forcing)
    zs = list(forcing)
    estimates = np.zeros(rows)
    w = v
    t_now = 0.0
    tau = t
    gamma, delta = 0.9, 1.2
    checks = set(_CHECKPOINTS) if size >= _CHECK_MIN_N or lanczos else set()
    xp = array_namespace(v)
    # torch keeps each iteration's scalars on the device and reads them back in one
    # transfer (Lanczos: α and ‖u‖; Arnoldi: the column of h and ‖u‖) instead of 3–4
    on_device = is_torch_array(v)
    beta_here: Any = None
    conj = xp.conj if is_complex(v) else (lambda x: x)
    basis = None
    # Half the shortest trial τ whose estimate overflowed (a growing exponential).  The
    # state only grows, so such a τ would overflow again later; without the cap the
    # usual rule, after an accepted short step, grows τ straight back into overflow,
    # and every sub-step costs a rejection or two.
    ceiling = math.inf
    while t_now < t:
        if info.substeps + info.rejected >= max_substeps:
            raise RuntimeError(
                f"phiv: no convergence after {max_substeps} sub-steps at t = {t_now:.3e} of "
                f"{t:.3e} with a basis of at most m = {m_max}; raise m, loosen tol or raise max_substeps"
            )
        tau = min(tau, t - t_now, ceiling)
        ws = [w]
        # A w of the first sub-step (w = v) where known: w_1 = A w + z_1, or, with no
        # forcing, A times the first basis vector w / β
        known, first_product = first_product, None
        for z in zs:
            if known is None:
                ws.append(matvec(ws[-1]) + z)
                info.matvecs += 1
            else:
                ws.append(known + z)
                known = None
        wnorms = [_row_norms(x) for x in ws[1:]]
        beta = wnorms[-1] if p else _row_norms(w)
        # (norms are ≥ 0: their sum is finite exactly when each is)
        if not math.isfinite(float(beta.sum()) + sum(float(x.sum()) for x in wnorms)):
            # The state itself past the range (p = 0) is the result's overflow; with
            # p > 0 it may be only w_j = A w_{j−1} + z_j, which grow like ‖A‖^j ‖w‖,
            # so the caller's augmented Arnoldi (no such products) takes over.  Left
            # alone, a NaN β would read as β = 0 below and return a wrong, finite w.
            if p:
                raise _RoundingFloor
            raise _overflow()
        # the tolerance is relative to the size of the solution over what is left of the
        # interval (for p = 0 the norm of the propagated vector)
        scale = (
            beta
            if p == 0
            else _row_norms(w)
            + sum((t - t_now) ** k / math.factorial(k) * _row_norms(z) for k, z in enumerate(zs, 1))
        )
        if p:
            tau = _cap_for_rounding(wnorms, tau, tol * scale / t, eps)
        if not np.any(beta > 0):
            if p:  # A w_{p−1} + z_p = 0: the solution is the polynomial part, exactly
                w = _taylor(ws[:-1], t - t_now)
            break
        m = m_max
        if basis is None:
            # one allocation for all sub-steps (a fresh one costs page faults on every
            # sub-step; `_BasisMemory` keeps it across calls); every slot is written
            # before it is read
            basis = memory.basis((rows, m + 1, size), w)
        basis[:, 0] = ws[-1] * _column(1.0 / np.where(beta > 0, beta, 1.0), w)
        h = np.zeros((rows, m + 2, m + 2), dtype=complex if is_complex(w) else float)
        broken = beta == 0
        any_broken = bool(broken.any())
        anorm = np.zeros(rows)
        mj, early = m, None

        proj = _Projection(h, beta, wnorms, m, p, lanczos=lanczos, skew=skew, eps=eps)

        for j in range(m):
            if known is None:
                u = matvec(basis[:, j])
                info.matvecs += 1
            else:  # j = 0, p = 0: basis[:, 0] = w / β
                u = known * _column(1.0 / beta, known)
                known = None
            norm_here = None  # ‖u‖ per row on u's device (torch)
            if on_device and lanczos:
                u, hnext, norm_here = _lanczos_on_device(u, basis, h, j, beta_here, skew)
            elif on_device:
                u, coeffs = _cgs2(u, basis, j, conj)
                hnext, norm_here = _column_and_norm_to_host(u, coeffs, h, j)
            elif lanczos:
                u = _lanczos_orthogonalise(u, basis, h, j, conj, skew)
                hnext = _row_norms(u)
            else:
                u, coeffs = _cgs2(u, basis, j, conj)
                h[:, : j + 1, j] += to_numpy(coeffs)
                hnext = _row_norms(u)
            # ‖H‖_1 so far, kept as a running maximum of column sums
            anorm = np.maximum(anorm, np.abs(h[:, : j + 1, j]).sum(axis=1) + hnext)
            going = hnext > 64 * eps * anorm  # False for a breakdown, and for NaN
            if going.all() and not any_broken:  # the usual case, in few small-array operations
                h[:, j + 1, j] = hnext
                if norm_here is not None:  # the device's own norm: no transfer back
                    scale_u, beta_here = 1.0 / norm_here[:, None], norm_here
                else:
                    scale_u = _column(1.0 / hnext, u)
                    if on_device:
                        beta_here = _column(hnext, u)[:, 0]
            else:
                if not np.all(np.isfinite(hnext)):
                    raise ValueError(
                        "phiv: the operator returned non-finite values (A or matvec gives NaN or inf); "
                        "check A for NaN/inf entries"
                    )
                info.happy_breakdowns += int((~going & ~broken).sum())
                broken |= ~going
                any_broken = True
                hval = np.where(broken, 0.0, hnext)
                h[:, j + 1, j] = hval
                scale_u = _column(np.where(broken, 0.0, 1.0 / np.where(hval > 0, hval, 1.0)), u)
                if on_device:
                    beta_here = _column(hval, u)[:, 0]
            if lanczos:  # u is already the slot
                u *= scale_u
            else:
                basis[:, j + 1] = u * scale_u
            if any_broken and broken.all():
                mj = j + 1
                break
            if j + 1 in checks and j + 1 < m:
                f, err, _ = proj.local_error(tau, j + 1)
                if np.all(err <= 0.5 * tol * (tau / t) * scale):
                    early = (j + 1, err, f)
                    break
        if broken.all():
            # every Krylov space is invariant: the small exponential is exact (its error
            # terms vanish with h_{mj+1,mj} = 0), for the whole remaining interval at
            # p = 0; with p > 0 the rounding cap on τ still holds
            if p == 0:
                tau = t - t_now
            err_loc = _rounding(wnorms, tau, eps) if p else np.zeros(rows)
            f, xm = proj.small_phi(tau, mj), 1.0 / mj
        else:
            if early is not None:
                mj, err_loc, f = early
                xm = 1.0 / mj
            else:
                proj.avnorm = _row_norms(matvec(basis[:, m]))
                info.matvecs += 1
                while True:
                    f, err_loc, xm = proj.local_error(tau, m)
                    if np.all(err_loc <= delta * tol * (tau / t) * scale):
                        break
                    info.rejected += 1
                    if not np.all(np.isfinite(err_loc)):
                        ceiling = min(ceiling, 0.5 * tau)
                    tau = _round2(gamma * tau * _shrink(err_loc, tol * (tau / t) * scale, xm))
                    if info.rejected > max_substeps:
                        raise RuntimeError("phiv: step size collapsed; the operator norm may be infinite")
            # the basis may support a longer sub-step than predicted from the last one:
            # stretch τ on it while the estimate allows (small exponentials only)
            margin = 1.0 if mj == m else 0.5  # a checkpoint's one-term estimate, as above
            for _ in range(4):
                if tau >= t - t_now:
                    break
                proposal = _round2(gamma * tau * _shrink(err_loc, tol * (tau / t) * scale, xm))
                trial = min(t - t_now, proposal, ceiling)
                if trial <= 1.1 * tau:
                    break
                f_try, err_try, xm_try = proj.local_error(trial, mj)
                if not np.all(err_try <= margin * tol * (trial / t) * scale):
                    break
                tau, f, err_loc, xm = trial, f_try, err_try, xm_try
        # m + 1 vectors: the corrected approximation of Expokit's expv (the last term is
        # the first of the error expansion; zero after a breakdown).  Where this
        # overflows, the result is past the range, and that check raises (no warning).
        with np.errstate(over="ignore", invalid="ignore"):
            coeffs = beta[:, None] * f[:, : mj + 1]
            w = _combine(basis[:, : mj + 1], coeffs, w)
        if p:
            w = w + _taylor(ws[:-1], tau)
            if t_now + tau < t:  # another sub-step follows (the test the loop makes)
                # the forcing seen from the new time: z_k ← Σ_{j≥k} τ^{j−k}/(j−k)! z_j
                zs = [_taylor(zs[k:], tau) for k in range(p)]
        t_now += tau
        info.substeps += 1
        estimates += err_loc
        info.basis_sizes.append(mj)
        if broken.all() and t_now >= t:
            break
        if np.any(err_loc > 0):
            tau = _round2(gamma * tau * _shrink(err_loc, tol * (tau / t) * scale, xm))
        else:
            tau = t - t_now
    info.error_estimate = float(estimates.max())
    return w, estimates, info


@dataclass
class _Projection:
    """One sub-step's projected problem: the Hessenberg matrix ``h`` of the basis of
    ``w_p`` (norms ``beta``, basis limit ``m``; ``wnorms`` = ``‖w_1‖ … ‖w_p‖`` for the
    rounding term), and ``‖A v_{m+1}‖`` once the full basis is built (``avnorm``,
    Saad's second term)."""

    h: np.ndarray
    beta: np.ndarray
    wnorms: list[np.ndarray]
    m: int
    p: int
    avnorm: np.ndarray | None = None
    lanczos: bool = False
    skew: bool = False
    eps: float = float(np.finfo(float).eps)
    _eigen: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def small_phi(self, tau: float, size: int) -> np.ndarray:
        """`_small_phi` on the first ``size`` vectors; for a Lanczos basis of more than
        `_EIGEN_MIN` vectors from the (cached) eigendecomposition of its tridiagonal
        matrix.  A trial ``τ`` too long for a growing exponential overflows here; the
        step control rejects it (no warning: nothing is wrong with the call)."""
        with np.errstate(over="ignore", invalid="ignore"):
            return self._evaluate(tau, size)

    def _evaluate(self, tau: float, size: int) -> np.ndarray:
        if not self.lanczos or size <= _EIGEN_MIN:
            return _small_phi(self.h, size, tau, self.p)
        if size not in self._eigen:
            block = self.h[:, :size, :size]
            # T = Q diag(λ) Q^H, or for a skew-Hermitian A, T = i (−iT) = Q diag(iλ) Q^H
            self._eigen[size] = np.linalg.eigh(-1j * block if self.skew else block.real)
        lam, q = self._eigen[size]
        lam = lam * 1j if self.skew else lam
        f = _small_phi_tridiagonal(lam, q, self.h[:, size, size - 1].real, tau, self.p)
        if f is None:
            return _small_phi(self.h, size, tau, self.p)
        return f if np.iscomplexobj(self.h) else f.real  # a real T has a real exponential

    def local_error(self, tau: float, size: int) -> tuple[np.ndarray, np.ndarray, float]:
        """``(f, err, xm)``: `small_phi` on the first ``size`` vectors, the local error
        estimate (a checkpoint, ``size < m``, uses the first term of Saad's expansion,
        the full basis both; plus the rounding of the single-vector form) and the
        exponent of the step-size update.  A trial ``τ`` too long for a growing
        exponential gives an infinite estimate (no warning), which `_shrink` rejects."""
        with np.errstate(over="ignore", invalid="ignore"):  # one context: it costs µs
            f = self._evaluate(tau, size)
            if size < self.m:
                err, xm = np.abs(f[:, size]) * self.beta, 1.0 / size
            else:
                p1 = np.abs(f[:, self.m]) * self.beta
                p2 = np.abs(f[:, self.m + 1]) * self.beta * (0.0 if self.avnorm is None else self.avnorm)
                err, xm = _saad_estimate(p1, p2, self.m)
            return f, (err + _rounding(self.wnorms, tau, self.eps)) if self.p else err, xm


_TOL_FLOOR_ULPS = 10  # phiv's tolerance floor, in units of the vectors' roundoff


def _unit_roundoff(x: Any) -> float:
    """Machine epsilon of ``x``'s (real) precision, numpy array or torch tensor."""
    return float(finfo_of(x).eps)


class _RoundingFloor(Exception):
    """The single-vector form cannot reach the tolerance in floating point."""


def _rounding(wnorms: Sequence[np.ndarray], tau: float, eps: float) -> np.ndarray:
    """Rounding error of ``Σ_{j<p} τ^j/j! w_j + τ^p φ_p(τA) w_p`` per row, from the norms
    ``‖w_1‖, …, ‖w_p‖``: the terms grow like ``‖τA‖^j`` and cancel when ``A`` is stiff,
    so a few ulps (``eps``: the vectors' unit roundoff) of the largest is lost (zero for
    ``p = 0``, a single term)."""
    out = np.zeros_like(wnorms[0])
    for j, norm in enumerate(wnorms, 1):
        out = out + 8 * eps * tau**j / math.factorial(j) * norm
    return out


def _cap_for_rounding(wnorms: Sequence[np.ndarray], tau: float, rate: np.ndarray, eps: float) -> float:
    """The largest ``τ`` (halving from the given one) whose rounding error stays below
    half of ``rate · τ``, the error allowed for the sub-step; `_RoundingFloor` when even
    ``τ → 0`` cannot (``8ε‖w_1‖`` above half of ``rate``)."""
    if np.any(8 * eps * wnorms[0] > 0.5 * rate):
        raise _RoundingFloor
    for _ in range(60):
        if np.all(_rounding(wnorms, tau, eps) <= 0.5 * rate * tau):
            break
        tau *= 0.5
    return tau


def _taylor(terms: Sequence[Any], tau: float) -> Any:
    """``Σ_j τ^j/j! terms[j]`` (a new array where there are two terms or more)."""
    if len(terms) == 1:
        return terms[0]
    out = terms[0] + terms[1] * tau
    for j, x in enumerate(terms[2:], 2):
        out += x * (tau**j / math.factorial(j))  # in place: a fresh array, and long vectors are memory-bound
    return out


def _lanczos_orthogonalise(
    u: Any, basis: Any, h: np.ndarray, j: int, conj: Callable[[Any], Any], skew: bool = False
) -> Any:
    """``u = A v_j`` minus its components along ``v_j`` and ``v_{j−1}``, written into
    the basis slot ``j + 1`` (returned, a view) and filling column ``j`` of the
    (tridiagonal) ``h``; numpy rows (torch: `_lanczos_on_device`).  For Hermitian
    ``A``, ``h[j−1, j] = h[j, j−1]`` is known from the previous step (skew-Hermitian:
    ``−h[j, j−1]``), and ``α_j = v_j^H u`` is computed after that subtraction (the
    modified form, as in Paige's analysis).  In place in the slot: on long vectors the
    recurrence is memory-bound, and every temporary is another pass."""
    out = basis[:, j + 1]
    if j > 0:
        h[:, j - 1, j] = -h[:, j, j - 1] if skew else h[:, j, j - 1]
        out[...] = basis[:, j - 1]
        out *= _column(-h[:, j - 1, j].real, u)
        out += u
    else:
        out[...] = u
    if u.shape[0] == 1:
        alpha = (conj(basis[0, j]) @ out[0])[None]
    else:
        alpha = (conj(basis[:, j])[:, None, :] @ out[:, :, None])[:, 0, 0]
    out -= basis[:, j] * alpha[:, None]
    _store_diagonal(h, j, to_numpy(alpha), skew)
    return out


def _store_diagonal(h: np.ndarray, j: int, alpha: np.ndarray, skew: bool) -> None:
    """``h[j, j] = α_j`` as the structure has it: real for a Hermitian ``A``, imaginary
    for a skew-Hermitian one (zero for a real one), up to the rounding dropped here."""
    if not skew:
        h[:, j, j] = alpha.real
    elif np.iscomplexobj(h):
        h[:, j, j] = 1j * alpha.imag
    else:
        h[:, j, j] = 0.0


def _cgs2(u: Any, basis: Any, j: int, conj: Callable[[Any], Any]) -> tuple[Any, Any]:
    """``u`` orthogonalised against basis vectors ``0 … j`` by classical Gram–Schmidt in
    blocks, twice ("CGS2"): as orthogonal as modified Gram–Schmidt repeated (the error
    estimate needs orthogonality to rounding level), with all ``j + 1`` inner products
    of every row as one batched product instead of ``j + 1`` dot products.  Returns
    ``(u, c)``, ``c`` the ``(B, j + 1)`` coefficients of both passes summed (column
    ``j`` of the Hessenberg matrix), in ``u``'s library."""
    total = None
    for _ in range(2):
        # V^H u as conj(V^T conj(u)): conjugating the basis itself would copy all j + 1
        # long vectors on every pass (numpy has no conjugating matrix product)
        if u.shape[0] == 1:  # plain matrix–vector products: a third faster than batched
            c = conj(basis[0, : j + 1] @ conj(u[0]))[None]
            u = u - (c[0] @ basis[0, : j + 1])[None]
        else:
            c = conj(basis[:, : j + 1] @ conj(u)[:, :, None])[:, :, 0]
            u = u - (c[:, None, :] @ basis[:, : j + 1])[:, 0]
        total = c if total is None else total + c
    return u, total


def _column_and_norm_to_host(u: Any, coeffs: Any, h: np.ndarray, j: int) -> tuple[np.ndarray, Any]:
    """Torch Arnoldi: add the Gram–Schmidt coefficients to column ``j`` of ``h`` and
    return ``‖u‖`` on the host and on the device, both read back in one transfer (see
    `_lanczos_on_device`); the device norm is None where the host must rescale."""
    import torch

    norm = torch.linalg.vector_norm(u, dim=-1)
    host = to_numpy(torch.cat([coeffs, norm[:, None].to(coeffs.dtype)], dim=1))
    h[:, : j + 1, j] += host[:, : j + 1]
    hnext = np.asarray(host[:, j + 1].real, dtype=float)
    if not math.isfinite(float(hnext.sum())):
        return _row_norms(u), None
    return hnext, norm


def _lanczos_on_device(
    u: Any, basis: Any, h: np.ndarray, j: int, beta: Any, skew: bool = False
) -> tuple[Any, np.ndarray, Any]:
    """`_lanczos_orthogonalise` and the norm of the result for torch rows, with the
    recurrence's scalars kept on the tensors' device: ``beta`` is the previous
    ``h[j, j−1]`` there, and ``α_j`` and ``‖u‖`` come back to the host together, the
    iteration's one synchronising transfer (each host scalar sent to a GPU, or read
    from it, waits for the queued kernels).  Returns ``(slot, ‖u‖ on the host, ‖u‖ on
    the device)``; the last is None where the norm needs the host's rescaling (its
    squares overflowed) or is not finite."""
    import torch

    out = basis[:, j + 1]
    out.copy_(u)
    if j > 0:
        h[:, j - 1, j] = -h[:, j, j - 1] if skew else h[:, j, j - 1]
        # fused, no temporary row: out −= h[j−1, j] v_{j−1}
        out.addcmul_(basis[:, j - 1], beta[:, None], value=1 if skew else -1)
    # as matrix products (BLAS dot); torch.linalg.vecdot was 10× slower on CPU rows
    if out.shape[0] == 1:
        alpha = (basis[0, j].conj() @ out[0])[None]
    else:
        alpha = (basis[:, j].conj()[:, None, :] @ out[:, :, None])[:, 0, 0]
    out.addcmul_(basis[:, j], alpha[:, None], value=-1)
    norm = torch.linalg.vector_norm(out, dim=-1)
    both = to_numpy(torch.stack([alpha, norm.to(alpha.dtype)]))
    _store_diagonal(h, j, both[0], skew)
    hnext = np.asarray(both[1].real, dtype=float)
    if not math.isfinite(float(hnext.sum())):
        return out, _row_norms(out), None
    return out, hnext, norm


def _column(values: np.ndarray, like: Any) -> Any:
    """Host scale factors as a ``(B, 1)`` column in ``like``'s real precision."""
    if isinstance(like, np.ndarray):  # the hot path: no conversion needed
        return values[:, None]
    return to_like(values[:, None], like)


def _saad_estimate(p1: np.ndarray, p2: np.ndarray, m: int) -> tuple[np.ndarray, float]:
    """The local error estimate of Sidje's *expv* from the two terms of Saad's
    expansion, and the exponent of the step-size update (``1/(m−1)`` when the first
    term dominates for some row, else ``1/m``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(p1 > 10.0 * p2, p2, np.where(p1 > p2, p1 * p2 / (p1 - p2), p1))
    xm = 1.0 / m if np.all(p1 > p2) else 1.0 / max(m - 1, 1)
    return err, xm


def _shrink(err: np.ndarray, allowed: np.ndarray, xm: float) -> float:
    """Step-size factor of the row that needs the smallest step.

    An estimate that is not finite comes from a trial ``τ`` whose small exponential
    overflowed (a growing ``e^{τA}``); it says nothing about the right step, and the
    formula would give a factor of 0 (a sub-step of length zero, repeated forever), so
    such a trial shrinks by the fixed `_OVERFLOW_SHRINK` instead."""
    if not math.isfinite(float(err.sum())):  # estimates are ≥ 0
        return _OVERFLOW_SHRINK
    mask = err > 0
    if not np.any(mask):
        return 1.0
    return float(np.min((allowed[mask] / err[mask]) ** xm))
