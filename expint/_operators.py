r"""Linear parts ``L`` of a semilinear problem ``y' = L y + N(t, y)``.

Every operator acts on the trailing axis of the state (leading axes are batch axes)
and offers the one service exponential schemes need:

``phi_combination(h, c, ws, t=None)``
    $\sum_{k} \varphi_k(c h L)\, w_k$ for a list of arrays ``ws`` (``None``
    entries are zero), with the φ-coefficients for each ``(h, c, kmax)`` computed once
    and cached.

``Diagonal`` keeps φ_k(chd) as arrays, ``Dense`` as matrices (augmented-matrix
exponential), ``MatrixFree`` evaluates the combination by one `expint.phiv`
call, and ``ScalarTime`` (``L(t) = a(t) I``) uses the exact weighted integrals
$\int_0^1 e^{I(t + \theta c h,\, t + c h)} \theta^{k-1}/(k-1)!\, d\theta$,
which reduce to φ_k(cha) for a constant rate.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ._backend import (
    cast,
    concat,
    device,
    finfo_of,
    from_host,
    is_complex,
    is_inexact,
    is_torch_array,
    promote_working,
    promoted_product,
    records_gradients,
    sparse_is_hermitian,
    sparse_kind,
    sparse_like,
    stack,
    to_float_array,
    to_like,
    to_numpy,
    to_torch_csr,
)
from ._cache import LRUCache
from ._chebyshev import chebyshev_coefficients, check_spectrum, shifted_csr, spectral_interval
from ._interp import gauss_legendre
from ._krylov import PHIV_METHODS, KrylovInfo, _check_product, phiv
from ._krylov_basis import free_spare_basis
from ._krylov_expv import NonFinite
from ._phi import phi_all_unchecked, phi_matrix_all
from ._validation import check_finite, check_krylov_options, check_real, check_square

__all__ = [
    "Dense",
    "Diagonal",
    "EvaluatedCoefficients",
    "EvaluatedOperator",
    "KrylovProducts",
    "LinearOperatorBase",
    "MatrixFree",
    "ScalarTime",
]

_CACHE_SIZE = 16


@runtime_checkable
class EvaluatedCoefficients(Protocol):
    r"""Operators whose φ-functions are concrete objects (`Diagonal`, `Dense`,
    `ScalarTime`): a scheme asks for a coefficient $\sum_m α_m φ_{k_m}(c_m h L)$ once per
    step size and applies it to many vectors."""

    def prefetch(self, h: float, exprs: Sequence[Any], t: float | None = None) -> None: ...

    def phi_expr(
        self, h: float, terms: dict[tuple[int, float, float], float], t: float | None, like: Any
    ) -> Any: ...

    def apply_coefficient(self, coef: Any, w: Any) -> Any: ...


@runtime_checkable
class KrylovProducts(Protocol):
    r"""Operators known through their action (`MatrixFree`, and every operator): a scheme
    asks for the products $\sum_k φ_k(c h L) w_k$ directly (one Krylov
    approximation per call for a matrix-free operator)."""

    n: int

    def matvec(self, v: Any) -> Any: ...

    def phi_combination(
        self, h: float, c: float, ws: Sequence[Any | None], t: float | None = None
    ) -> Any: ...


def _as_float_array(value: Any, name: str) -> Any:
    """An operator's array argument as a torch tensor or numpy array; integers and
    booleans become float64."""
    if isinstance(value, type):
        raise TypeError(f"{name} must be an array, not a class")
    return to_float_array(value)


def _coefficient_like(arr: Any, like: Any) -> Any:
    """``to_like`` for a coefficient (array or matrix) that multiplies ``like``, made
    complex when ``like`` is: torch's matmul does not mix real and complex dtypes, and an
    element-wise real × complex product converts the real operand on every call."""
    out = to_like(arr, like)
    if is_complex(like) and not is_complex(out):
        out = cast(out, like.dtype)
    return out


def _holds_index(k: int) -> Callable[[Any], bool]:
    """Cache test: a stack of φ_0, φ_1, … that reaches φ_k."""
    return lambda entry: len(entry) > k


def _highest_indices(exprs: Sequence[Any]) -> dict[tuple[float, float], int]:
    """``{(c, s): k}``: the highest φ index each node (and start offset) of the
    φ-expressions ``exprs`` uses; the identity node ``c = 0`` needs no evaluation."""
    need: dict[tuple[float, float], int] = {}
    for e in exprs:
        for k, c, s in e.terms:
            if c != 0.0:
                need[(c, s)] = max(need.get((c, s), 0), k)
    return need


class LinearOperatorBase:
    """Common interface of the linear parts (see module docstring)."""

    n: int
    time_dependent = False

    def __init__(self) -> None:
        self._cache = LRUCache(_CACHE_SIZE)
        self.phi_evaluations = 0

    def clear_cache(self) -> None:
        """Forget the cached φ-coefficients (e.g. to time a solve from a cold start)."""
        self._cache.clear()

    # --- to be provided by subclasses -------------------------------------------------
    def apply(self, y: Any, t: float | None = None) -> Any:  # pragma: no cover - abstract
        """``L y`` on the trailing axis of ``y``."""
        raise NotImplementedError

    def _coefficients(self, h: float, c: float, kmax: int, t: float | None) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _combine(self, coeffs: Any, ws: Sequence[Any | None], h: float, c: float) -> Any:  # pragma: no cover
        raise NotImplementedError

    # --- shared -----------------------------------------------------------------------
    def matvec(self, v: Any) -> Any:
        """``L v`` for one vector (what `expint.phiv` and Krylov methods call)."""
        return self.apply(v)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n, n)``."""
        return (self.n, self.n)

    def check_state(self, y: Any, *, name: str = "y0") -> None:
        """Raise ``ValueError`` unless the trailing axis of ``y`` has length ``n``."""
        shape = tuple(y.shape)
        if len(shape) == 0 or shape[-1] != self.n:
            raise ValueError(
                f"{name} has shape {shape}, but the linear operator has size {self.n}; the "
                f"state's trailing axis must have length {self.n}"
            )

    def coefficients(self, h: float, c: float, kmax: int, t: float | None = None) -> Any:
        """φ_0..φ_kmax (at least) of ``c h L``, cached per ``(h, c)`` (and ``t`` when time
        dependent); a request for a higher ``kmax`` recomputes and replaces the entry."""
        key = self._coefficients_key(h, c, t)
        hit = self._cache.get(key, usable=_holds_index(kmax))
        if hit is not None:
            return hit
        return self._cache.put(key, self._coefficients(float(h), float(c), int(kmax), t))

    def _coefficients_key(self, h: float, c: float, t: float | None) -> tuple:
        return (float(h), float(c), float(t) if self.time_dependent and t is not None else None)

    def prefetch(self, h: float, exprs: Sequence[Any], t: float | None = None) -> None:
        """Compute, for each ``(c, s)`` used by the φ-expressions ``exprs``, all the
        φ_k up to the highest ``k`` needed in one go (so later lookups hit the cache)."""
        for (c, s), k in _highest_indices(exprs).items():
            self.coefficients(h, c, k, None if t is None else t + s * h)

    def phi_combination(self, h: float, c: float, ws: Sequence[Any | None], t: float | None = None) -> Any:
        r"""$\sum_k \varphi_k(c h L) w_k$.

        Parameters
        ----------
        h : float
            Step size.
        c : float
            Node: the φ-functions are evaluated at ``c h L``.
        ws : sequence of arrays or None
            ``w_0, w_1, …`` shaped like the state; ``None`` entries count as zero.
        t : float, optional
            Start time (needed by time-dependent operators).

        Returns
        -------
        array or torch.Tensor
            Shaped like the ``w_k``, same array type, dtype and device.
        """
        kmax = len(ws) - 1
        coeffs = self.coefficients(h, c, kmax, t)
        return self._combine(coeffs, ws, h, c)

    def expmv(self, h: float, y: Any, t: float | None = None) -> Any:
        """``exp(h L) y`` (for a time-dependent ``L``: the exact propagator from ``t``)."""
        return self.phi_combination(h, 1.0, [y], t)


class EvaluatedOperator(LinearOperatorBase):
    """Base of operators with *evaluated coefficients* (the `EvaluatedCoefficients`
    protocol): φ_k(c h L) are concrete arrays, matrices or scalars, computed once per
    ``(h, c)`` and cached, and a scheme combines them with `phi_expr` and
    `apply_coefficient`.  Subclasses provide ``_coefficients``, ``_combine`` and
    ``_identity_like``."""

    #: Whether every coefficient is a function of a fixed spectrum ``λ`` (`_spectrum`):
    #: ``Σ α_m φ_{k_m}(c_m h L) = _from_spectrum(Σ α_m φ_{k_m}(c_m h λ))``.  Then the
    #: sums of a scheme's expressions are formed on ``n`` values, each expression costs
    #: one conversion, and `prefetch` evaluates all of a step's nodes in one `phi_all`
    #: call (on small operators the cost of φ is the number of array operations).
    spectral = False

    def _spectrum(self) -> Any:  # pragma: no cover - abstract for spectral operators
        raise NotImplementedError

    def _spectral_key(self, h: float, c: float) -> tuple:
        return ("spectrum", float(h), float(c))

    def _from_spectrum(self, d: Any) -> Any:
        """The coefficient with spectral values ``d`` (a stack of them on leading axes)."""
        return d

    def _evaluate_spectrum(self, kmax: int, h: float, nodes: Sequence[float]) -> Any:
        """φ_0..φ_kmax of ``c h λ`` for each node ``c``, shape ``(kmax + 1, len(nodes), n)``."""
        lam = self._spectrum()
        self.phi_evaluations += len(nodes)
        # the spectrum is finite and in double precision (checked when the operator was made)
        return phi_all_unchecked(kmax, stack([lam * (c * h) for c in nodes], axis=0))

    def _spectral_phis(self, h: float, c: float, kmax: int) -> Any:
        """φ_0..φ_kmax (at least) of ``c h λ``, cached per ``(h, c)``."""
        key = self._spectral_key(h, c)
        hit = self._cache.get(key, usable=_holds_index(kmax))
        if hit is None:
            hit = self._cache.put(key, self._evaluate_spectrum(kmax, h, [c])[:, 0])
        return hit

    def prefetch(self, h: float, exprs: Sequence[Any], t: float | None = None) -> None:
        if not self.spectral:
            return super().prefetch(h, exprs, t)
        nodes: dict[float, int] = {}
        for (c, _), k in _highest_indices(exprs).items():  # no time dependence: s is moot
            nodes[c] = max(nodes.get(c, 0), k)
        self._evaluate_nodes(h, nodes)

    def _evaluate_nodes(self, h: float, nodes: dict[float, int]) -> None:
        """Cache φ_0..φ_k of ``c h λ`` for each ``{c: k}`` not cached yet, in one call."""
        cached = self._cache.get
        missing = {
            c: k for c, k in nodes.items() if cached(self._spectral_key(h, c), usable=_holds_index(k)) is None
        }
        if missing:
            phis = self._evaluate_spectrum(max(missing.values()), h, list(missing))
            for i, c in enumerate(missing):
                self._cache.put(self._spectral_key(h, c), phis[:, i])

    def phi_expr(
        self, h: float, terms: dict[tuple[int, float, float], float], t: float | None, like: Any
    ) -> Any:
        r"""Concrete coefficient $\sum_m \alpha_m \varphi_{k_m}(c_m h L)$ for a
        dict of terms ``{(k, c, s): α}``, converted for states like ``like``.

        ``s`` is the start offset (in units of ``h``) of the propagator, which matters
        only for time-dependent operators.  Apply the result with
        `apply_coefficient`.
        """
        if self.spectral:
            return self._prepare(self._spectral_expr(h, terms), like)
        total = None
        for (k, c, s), coef in terms.items():
            start = None if t is None else t + s * h
            if c == 0.0:
                val = self._identity_like() * (coef / math.factorial(k))
            else:
                val = self.coefficients(h, c, k, start)[k] * coef
            total = val if total is None else total + val
        if total is None:
            total = self._identity_like() * 0.0
        return self._prepare(total, like)

    def _spectral_expr(self, h: float, terms: dict[tuple[int, float, float], float]) -> Any:
        if len(terms) == 1:  # one φ_k(chL): a multistep method may hold the coefficient already
            (((k, c, _), coef),) = terms.items()
            held = self._cache.get(self._coefficients_key(h, c, None), usable=_holds_index(k))
            if held is not None:
                return held[k] * coef
        values, identity = self._spectral_parts(h, terms)
        return self._with_identity(None if values is None else self._from_spectrum(values), identity)

    def _spectral_parts(self, h: float, terms: dict[tuple[int, float, float], float]) -> tuple[Any, float]:
        """``(Σ α_m φ_{k_m}(c_m h λ) over the terms with c ≠ 0, or None; Σ α_m / k_m! over
        those with c = 0)``: the identity part is kept apart so that it stays exact."""
        values, identity = None, 0.0
        for (k, c, _), coef in terms.items():
            if c == 0.0:  # φ_k(0) = 1/k!
                identity += coef / math.factorial(k)
                continue
            val = self._spectral_phis(h, c, k)[k] * coef
            values = val if values is None else values + val
        return values, identity

    def _with_identity(self, coef: Any, identity: float) -> Any:
        """``coef + identity·I`` (``coef`` may be ``None``: zero)."""
        if coef is None:
            return self._identity_like() * identity
        return coef + self._identity_like() * identity if identity else coef

    @property
    def batches(self) -> bool:
        """Whether a stepper should form its tableau's coefficients with `phi_batch`."""
        return False

    def phi_batch(self, h: float, batch: Any, scale: Any, like: Any) -> list:
        r"""The coefficients of every expression of an `ExprBatch` (its row ``e``
        multiplied by ``scale[e]``), converted for states like ``like``: a Runge–Kutta
        tableau at a new step size, on the spectral path.

        The values of all expressions on the spectrum are one product of the batch's
        weights with the stacked $\varphi_{k_p}(c_p h λ)$ (one `phi_all` call for all
        nodes), and `_from_spectrum` converts the stack at once; identity parts are
        added exactly.  On short spectra this replaces a Python loop over every term of
        every expression, which is what a new step size costs there."""
        self._evaluate_nodes(h, batch.nodes)
        phis = stack([self._spectral_phis(h, c, k)[k] for k, c in batch.pairs], axis=0)
        weights = batch.weights * scale[:, None]
        out = self._from_spectrum(cast(from_host(weights, phis), phis.dtype) @ phis)
        self._add_identity(out, batch.identity * scale)
        return self._prepare_rows(out, like)

    def _add_identity(self, stack: Any, identity: Any) -> None:
        """``stack[e] += identity[e]·I`` in place."""
        for e, i in enumerate(identity):
            if i:
                stack[e] = stack[e] + float(i)

    def phi_rows(self, h: float, mat: Any, t: float | None, like: Any) -> list:
        r"""Coefficients $\sum_m A_{jm} \varphi_{m+1}(hL)$, one per row ``j`` of the
        real matrix ``A`` (``mat``), converted for states like ``like``: the weights of a
        multistep method in one contraction of the cached φ stack (building each with
        `phi_expr` costs a Python loop over its terms)."""
        mat = np.asarray(mat, dtype=float)
        kmax = mat.shape[1]
        # the matrices φ_k(hL) themselves, not spectral values: a variable-step multistep
        # method forms several weight sets on one step size (its ratio pattern changes)
        phis = self.coefficients(h, 1.0, kmax, t)[1 : kmax + 1]  # the cache may hold more
        if is_torch_array(phis):
            import torch

            rows = torch.tensordot(cast(to_like(mat, phis), phis.dtype), phis, dims=1)
        else:
            rows = np.tensordot(mat, phis, axes=1)
        return self._prepare_rows(rows, like)

    def _prepare_rows(self, rows: Any, like: Any) -> list:
        """`_prepare` for a stack of coefficients (one conversion for element-wise ones)."""
        return [self._prepare(r, like) for r in rows]

    def _identity_like(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _prepare(self, coef: Any, like: Any) -> Any:
        # a real coefficient that multiplies complex states is stored complex: a mixed
        # real × complex product converts the real operand on every call (~1.7× the time)
        return _coefficient_like(coef, like)

    # ``coef · w`` for a coefficient made by `phi_expr`: element-wise here (a builtin, so
    # the steppers' hot loop makes no Python call per term); Dense overrides it
    apply_coefficient: Callable[[Any, Any], Any] = staticmethod(operator.mul)


class Diagonal(EvaluatedOperator):
    r"""Diagonal linear part ``L = diag(d)`` (e.g. a Fourier-space derivative).

    Parameters
    ----------
    d : array_like or torch.Tensor
        Real or complex diagonal of length ``n`` (finite).
    """

    def __init__(self, d: Any):
        super().__init__()
        d = _as_float_array(d, "d")
        if d.ndim != 1:
            raise ValueError(f"d must be a 1-D array (the diagonal), got shape {tuple(d.shape)}")
        if not is_inexact(d):
            raise TypeError(f"d must have a floating or complex dtype, got {d.dtype}")
        check_finite(d, name="d")
        self.d = d
        self.n = int(d.shape[0])
        self.dtype = d.dtype

    def apply(self, y: Any, t: float | None = None) -> Any:
        return y * to_like(self.d, y)

    spectral = True

    def _spectrum(self) -> Any:
        # in double precision before scaling: a float32 d would round z = d·ch
        # before φ sees it
        return promote_working(self.d, name="d")[0]

    def _spectral_key(self, h: float, c: float) -> tuple:
        return self._coefficients_key(h, c, None)  # the coefficients are the spectral values

    def _coefficients(self, h: float, c: float, kmax: int, t: float | None) -> Any:
        return self._evaluate_spectrum(kmax, h, [c])[:, 0]

    @property
    def batches(self) -> bool:
        """`phi_batch` on short diagonals: the product with the dense weights costs
        ``expressions × pairs × n`` where the terms cost their number × ``n``, so it
        pays only while Python's per-term cost dominates."""
        return self.n <= BATCH_MAX_N

    def _combine(self, coeffs: Any, ws: Sequence[Any | None], h: float, c: float) -> Any:
        out = None
        for k, w in enumerate(ws):
            if w is None:
                continue
            term = w * to_like(coeffs[k], w)
            out = term if out is None else out + term
        return out

    def _identity_like(self) -> Any:
        return np.ones(self.n)

    def to_dense(self) -> Any:
        """The dense matrix ``diag(d)`` (numpy)."""
        return np.diag(to_numpy(self.d))

    def _prepare_rows(self, rows: Any, like: Any) -> list:
        return list(self._prepare(rows, like))


#: Largest `Diagonal` whose steppers form a tableau with `phi_batch` (`Diagonal.batches`).
BATCH_MAX_N = 4096

#: Largest 2-norm condition number of the (unit-column) eigenvector matrix for which
#: `Dense` evaluates φ-functions by eigendecomposition: the result's relative error is
#: about κ₂(V)·u, so 1000 keeps it below 1e-13; beyond it, augmented-matrix exponentials.
MAX_EIGENVECTOR_CONDITION = 1000.0

#: Largest `Dense` size that keeps the ``n`` rank-one matrices ``v_j w_j^T`` of its
#: eigendecomposition (``n³`` numbers, 4 MiB complex at 64): a stack of coefficients from
#: spectral values is then one matrix product.
OUTER_MAX_N = 64

#: Largest `Dense` size whose steppers fuse each stage into one product (`Dense.fusable`).
FUSE_MAX_N = 512


def _spectral_form(a: np.ndarray) -> tuple:
    """``(method, λ, V, V^{-1}, real)`` for `Dense` (see its docstring); λ and V are
    ``None`` for ``"expm"``."""
    a = a.astype(np.result_type(a.dtype, np.float64))
    real = not np.iscomplexobj(a)
    if np.array_equal(a, a.conj().T):
        lam, q = np.linalg.eigh(a)
        return "eigh", lam, q, q.conj().T, real
    lam, v = np.linalg.eig(a)
    if not np.all(np.isfinite(lam)):
        return "expm", None, None, None, real
    try:
        v_inv = np.linalg.inv(v)
    except np.linalg.LinAlgError:  # a defective A
        return "expm", None, None, None, real
    # ‖V‖_F ‖V^{-1}‖_F ≥ κ₂(V) decides most cases without the SVD that κ₂ costs (an
    # exponential Rosenbrock step decomposes its Jacobian every step)
    if np.linalg.norm(v) * np.linalg.norm(v_inv) <= MAX_EIGENVECTOR_CONDITION or (
        np.linalg.cond(v) <= MAX_EIGENVECTOR_CONDITION
    ):
        return "eig", lam, v, v_inv, real
    return "expm", None, None, None, real


class Dense(EvaluatedOperator):
    r"""Dense linear part ``L = A`` (e.g. a Chebyshev differentiation matrix).

    φ_k(chA) are computed once per step size and applied as ``y @ φ_k^T`` to the
    trailing axis.  How (`phi_method`, decided on first use from ``A`` alone):

    * ``"eigh"`` — ``A`` Hermitian: ``A = QΛQ^H`` once, then
      $φ_k(chA) = Q\,φ_k(chΛ)\,Q^H$ (backward stable);
    * ``"eig"`` — ``A`` diagonalisable with a well-conditioned eigenvector matrix,
      $κ_2(V) \le$ `MAX_EIGENVECTOR_CONDITION` (= 1000): $φ_k(chA) = V\,φ_k(chΛ)\,V^{-1}$,
      whose relative error is about $κ_2(V)$ times the rounding unit (Chebyshev
      second-derivative matrices: $κ_2(V) < 3$ up to 64 points);
    * ``"expm"`` — otherwise (highly non-normal or defective ``A``):
      `expint.phi_matrix_all`, one augmented-matrix exponential per step size.

    The decomposition is done once in float64 (complex128 for complex ``A``); after it a
    new step size costs a few ``n × n`` products instead of an exponential of an
    ``n(k+1)``-sized matrix, which is what makes adaptive steps cheap on spectral
    (Chebyshev) operators.

    Parameters
    ----------
    a : array_like or torch.Tensor
        The ``(n, n)`` matrix, finite, real or complex.  Integer input is converted to
        float64.  A torch tensor that requires grad is refused: the φ-functions are
        computed on the host by scipy and cannot be differentiated through (use
        ``Diagonal``, which is differentiable, or ``a.detach()``).

    Returns
    -------
    Dense
        An operator for `expint.SemilinearProblem`; ``apply(y)`` returns
        ``y @ A^T`` for states ``y`` of shape ``(..., n)`` (numpy or torch, real or
        complex).

    Raises
    ------
    TypeError, ValueError
        For a class instead of an array, a non-square or batched matrix, non-finite
        entries, or a tensor that requires grad.
    """

    def __init__(self, a: Any):
        super().__init__()
        a = _as_float_array(a, "A")
        if getattr(a, "requires_grad", False):
            raise ValueError(
                "A requires grad, but Dense computes φ(hA) on the host (scipy's expm) and cannot "
                "differentiate through it; pass A.detach(), or use Diagonal (differentiable) for a "
                "diagonalisable A"
            )
        self.n = check_square(a, name="A")
        if a.ndim != 2:
            raise ValueError(f"A must be a single (n, n) matrix, got shape {tuple(a.shape)}")
        check_finite(a, name="A")
        self.a = a
        self.dtype = a.dtype
        self._spectral: tuple | None = None  # (method, λ, V, V^{-1}, real A) once decided
        self._rank_ones: np.ndarray | None = None  # v_j w_j^T stacked, for n ≤ OUTER_MAX_N
        self._eigenbasis: Any = None  # expint._eigenbasis.Eigenbasis, once a run steps in it

    @property
    def phi_method(self) -> str:
        """How φ_k(chA) are evaluated: ``"eigh"``, ``"eig"`` or ``"expm"`` (see the class
        docstring)."""
        return self._spectral_form()[0]

    def clear_cache(self) -> None:
        super().clear_cache()
        if self._eigenbasis is not None:  # the eigenbasis steps' φ-values (expint._eigenbasis)
            self._eigenbasis.diagonal.clear_cache()

    def _spectral_form(self) -> tuple:
        if self._spectral is None:
            self._spectral = _spectral_form(to_numpy(self.a))
        return self._spectral

    def apply(self, y: Any, t: float | None = None) -> Any:
        return y @ _coefficient_like(self.a, y).T

    @property
    def spectral(self) -> bool:  # type: ignore[override]
        return self._spectral_form()[0] != "expm"

    def _spectrum(self) -> Any:
        return self._spectral_form()[1]

    def _from_spectrum(self, d: Any) -> Any:
        _, _, v, v_inv, real = self._spectral_form()
        n = self.n
        if n <= OUTER_MAX_N:
            # V diag(d) V^{-1} = Σ_j d_j v_j w_j^T (w_j the rows of V^{-1}): one product of
            # the stack with the n rank-one matrices, formed once (n³ numbers)
            if self._rank_ones is None:
                self._rank_ones = np.einsum("ij,jk->jik", v, v_inv).reshape(n, n * n)
            out = (d.reshape(-1, n) @ self._rank_ones).reshape(*d.shape[:-1], n, n)
        else:
            scaled = v * d[..., None, :]
            # one 2-D product for a stack: numpy's batched matmul loops over small matrices
            out = (scaled.reshape(-1, n) @ v_inv).reshape(scaled.shape)
        # a real A has real φ_k(chA); the imaginary parts left by complex eigenpairs are rounding
        return out.real if real else out

    @property
    def batches(self) -> bool:
        """`phi_batch` serves the spectral path (``"eigh"``/``"eig"``): there the cost of a
        new step size is the conversion of every coefficient to a matrix."""
        return self.spectral

    def _add_identity(self, stack: Any, identity: Any) -> None:
        diagonal = np.arange(self.n)
        for e, i in enumerate(identity):
            if i:
                stack[e, diagonal, diagonal] += i

    def _prepare_rows(self, rows: Any, like: Any) -> list:
        # one conversion for the stack, then `_prepare`'s transpose (y @ M^T) per matrix
        return [m.T for m in _coefficient_like(rows, like)]

    def _coefficients(self, h: float, c: float, kmax: int, t: float | None) -> Any:
        if self.spectral:
            return self._from_spectrum(self._spectral_phis(h, c, kmax))
        self.phi_evaluations += 1
        return to_numpy(phi_matrix_all(kmax, self.a * (c * h)))

    def _combine(self, coeffs: Any, ws: Sequence[Any | None], h: float, c: float) -> Any:
        out = None
        for k, w in enumerate(ws):
            if w is None:
                continue
            term = w @ _coefficient_like(coeffs[k], w).T
            out = term if out is None else out + term
        return out

    def phi_combination(self, h: float, c: float, ws: Sequence[Any | None], t: float | None = None) -> Any:
        r"""$\sum_k φ_k(chA) w_k$ (see `LinearOperatorBase.phi_combination`).

        With an eigendecomposition (``"eigh"``/``"eig"``) and numpy vectors this is
        $V \sum_k φ_k(chΛ) V^{-1} w_k$: ``O(n²)`` per vector once the ``n`` scalars
        φ_k(chλ_j) are known, where forming the matrices φ_k(chA) costs ``O(n³)`` each
        (what a one-off product, e.g. an exponential Rosenbrock step, would pay)."""
        method, _, v, v_inv, real = self._spectral_form()
        if method == "expm" or not all(w is None or isinstance(w, np.ndarray) for w in ws):
            return super().phi_combination(h, c, ws, t)
        phis = self._spectral_phis(h, c, len(ws) - 1)
        acc = None
        for k, w in enumerate(ws):
            if w is None:
                continue
            term = (w @ v_inv.T) * phis[k]
            acc = term if acc is None else acc + term
        if acc is None:
            return None
        out = acc @ v.T
        return out.real if real and not any(np.iscomplexobj(w) for w in ws if w is not None) else out

    def _identity_like(self) -> Any:
        return np.eye(self.n)

    def _prepare(self, coef: Any, like: Any) -> Any:
        # stored transposed: the operator acts on the trailing axis, y @ M^T
        return _coefficient_like(coef, like).T

    def apply_coefficient(self, coef: Any, w: Any) -> Any:
        return w @ coef

    @property
    def fusable(self) -> bool:
        """Whether the steppers should combine a stage's terms with `fuse`/`apply_fused`:
        for small ``n`` the cost of a stage is the number of array operations, not the
        flops, and ``k`` products plus ``k − 1`` sums become one concatenation and one
        product; for large ``n`` the stacked matrices would only cost memory."""
        return self.n <= FUSE_MAX_N

    def fuse(self, coefs: Sequence[Any]) -> Any:
        r"""The coefficients of $\sum_j C_j w_j$ (as made by `phi_expr`) stacked into
        one ``(k n, n)`` matrix for `apply_fused`."""
        return concat(list(coefs), axis=0)

    def apply_fused(self, fused: Any, ws: Sequence[Any]) -> Any:
        r"""$\sum_j C_j w_j$ for ``fused = fuse([C_1, …, C_k])`` and ``ws = [w_1, …, w_k]``
        (states on the trailing axis)."""
        if type(fused) is np.ndarray:  # the hot path of small problems: skip the dispatch
            return np.concatenate(ws, axis=-1) @ fused
        return concat(list(ws), axis=-1) @ fused

    def to_dense(self) -> Any:
        return to_numpy(self.a)


class MatrixFree(LinearOperatorBase):
    r"""Linear part known only through products ``matvec(v) = L v``.

    φ-combinations are evaluated by `expint.phiv` (adaptive Krylov) with
    relative tolerance ``tol``; every call's Krylov work accumulates in
    `krylov_info`.

    Parameters
    ----------
    matvec : callable
        ``matvec(v)`` for a 1-D array ``v`` of length ``n``, returning an array of the
        same shape.
    n : int
        Size of the operator.
    tol : float
        Relative tolerance passed to `expint.phiv`.
    m : int or None
        Maximum Krylov basis size (None: `expint.phiv`'s default).
    hermitian : bool
        Whether ``L = L^H`` (e.g. a symmetric diffusion operator).  Then every
        φ-combination is computed with the Lanczos recurrence on ``L``, whose work per
        product does not grow with the basis (`expint.phiv`; combinations with
        ``w_1, w_2, …`` through phipm's single-vector form).  Not checked: a wrong
        ``True`` gives wrong results.
    skew_hermitian : bool
        Whether ``L^H = −L`` (``L = iH``, ``H`` Hermitian: a Schrödinger operator
        ``(i/2)Δ_h``, central differences of a first derivative).  Then the same
        three-term recurrence runs (`expint.phiv`, ``skew_hermitian``); never the
        Chebyshev expansion.  Not checked: a wrong ``True`` gives wrong results.
    spectrum : (float, float) or None
        For a Hermitian ``L``, an interval ``[a, b]`` containing its eigenvalues (for a
        diffusion operator ``D∇²`` on a grid of spacing ``h`` in ``d`` dimensions,
        ``(-4dD/h², 0)``).  It lets `expint.phiv` expand pure exponentials of rough
        vectors in Chebyshev polynomials (``method="auto"``), which needs fewer
        operations per product than Lanczos.  Not checked: an interval that misses
        eigenvalues gives wrong results.
    method : {"auto", "krylov", "chebyshev"}
        Passed to every `expint.phiv` call (``"krylov"`` rules the Chebyshev path out,
        ``"chebyshev"`` forces it).
    """

    def __init__(
        self,
        matvec: Callable[[Any], Any],
        n: int,
        *,
        tol: float = 1e-10,
        m: int | None = None,
        hermitian: bool = False,
        spectrum: tuple[float, float] | None = None,
        method: str = "auto",
        skew_hermitian: bool = False,
    ):
        super().__init__()
        if isinstance(matvec, type) or not callable(matvec):
            raise TypeError("matvec must be a callable v -> L v (an instance, not a class)")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        self._user_matvec = matvec
        self._checked = False
        self.n = int(n)
        for flag, name in ((hermitian, "hermitian"), (skew_hermitian, "skew_hermitian")):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        if hermitian and skew_hermitian:
            raise ValueError("L cannot be both Hermitian and skew-Hermitian (unless L = 0); pass one of them")
        check_krylov_options(tol, m)
        self.tol = tol
        self.m = m
        self.hermitian = hermitian
        self.skew_hermitian = skew_hermitian
        if spectrum is not None and not hermitian:
            raise ValueError("spectrum is for a Hermitian operator: pass hermitian=True with it")
        self.spectrum = None if spectrum is None else check_spectrum(spectrum)
        if method not in PHIV_METHODS:
            raise ValueError(f"method must be one of {', '.join(map(repr, PHIV_METHODS))}, got {method!r}")
        self.method = method
        self.krylov_info = KrylovInfo()

    def check_state(self, y: Any, *, name: str = "y0") -> None:
        """As for every operator, plus: a tensor that requires grad is refused here, at
        the start of a solve (`expint.phiv` would refuse it at the first step)."""
        super().check_state(y, name=name)
        if records_gradients(y):
            raise ValueError(
                f"{name} requires grad, but the φ-products of a {type(self).__name__} linear part "
                f"(Krylov, expint.phiv) do not carry gradients; pass {name}.detach() or solve "
                "under torch.no_grad()"
            )

    def matvec(self, v: Any) -> Any:
        """``L v`` for one vector; the first product is checked (array type, shape
        ``(n,)``, finite) so a faulty matvec fails here, not deep in a Krylov loop."""
        out = self._user_matvec(v)
        if not self._checked:
            _check_product(out, v, self.n)
            self._checked = True
        return out

    def apply(self, y: Any, t: float | None = None) -> Any:
        if y.ndim == 1:
            return self.matvec(y)
        flat = y.reshape(-1, self.n)
        rows = [self.matvec(flat[i]) for i in range(flat.shape[0])]
        return stack(rows).reshape(y.shape)

    def coefficients(self, h: float, c: float, kmax: int, t: float | None = None) -> Any:
        return None  # nothing to precompute: the Krylov space depends on the vectors

    def clear_cache(self) -> None:
        """Forget the cached φ-coefficients, including the Chebyshev coefficients that
        `expint.phiv` keeps for repeated ``(p, t, interval)`` and the memory it keeps for
        its Krylov basis (both shared by every operator, so this drops other operators'
        too: they are recomputed, or allocated, on their next call)."""
        super().clear_cache()
        chebyshev_coefficients.cache_clear()
        free_spare_basis()

    def _combine(self, coeffs: Any, ws: Sequence[Any | None], h: float, c: float) -> Any:
        tau = c * h
        ref = next(w for w in ws if w is not None)
        batch_shape = tuple(ref.shape[:-1])
        zeros = ref * 0
        # Σ φ_k(τL) w_k = Σ τ^k φ_k(τL) (w_k / τ^k)
        scaled = [(zeros if w is None else w) / tau**k for k, w in enumerate(ws)]
        if batch_shape:
            # the whole batch as one block of right-hand sides: the rows share every
            # product with L (one sparse matrix–matrix product for `Sparse`)
            scaled = [s.reshape(-1, self.n) for s in scaled]
        try:
            res, info = phiv(self, scaled, tau, tol=self.tol, m=self.m, method=self.method)
        except NonFinite:
            # a stage that overflowed, or a result past the range: what the same
            # arithmetic gives on `Dense`, so the solver stops the run at this step
            return zeros + math.nan
        self.krylov_info.merge(info)
        # in the state's precision: phiv promotes to the operator's (a float64 scipy
        # matrix, or a matvec that returns float64, would turn a float32 state into float64)
        return to_like(res.reshape(ref.shape), ref)


class Sparse(MatrixFree):
    r"""A sparse matrix as the linear part: a ``scipy.sparse`` matrix or array, or a
    torch sparse tensor.  It acts on numpy and torch states alike: for states of the
    other library (or another device or precision) a copy is made once and kept.

    Products are the sparse matrix–vector product (a batch of states is one sparse
    matrix–matrix product); φ-combinations go through `expint.phiv` like `MatrixFree`.

    Parameters
    ----------
    a : scipy.sparse matrix or array, or torch sparse tensor
        Square, real or complex.  Stored in CSR form (scipy's ``tocsr()``; torch COO
        and CSC tensors by ``to_sparse_csr()``), whose products are the fastest.
    tol, m, method
        As for `MatrixFree`.
    hermitian, skew_hermitian : bool or None
        As for `MatrixFree`; None (default) checks ``A = A^H`` (and where that fails,
        ``A^H = −A``) exactly, once.

    Attributes
    ----------
    spectrum : (float, float) or None
        For a Hermitian ``A``, its Gershgorin interval (computed once), which
        `expint.phiv` uses for its Chebyshev method; None otherwise.
    """

    def __init__(
        self,
        a: Any,
        *,
        tol: float = 1e-10,
        m: int | None = None,
        hermitian: bool | None = None,
        method: str = "auto",
        skew_hermitian: bool | None = None,
    ):
        kind = sparse_kind(a)
        if kind == "scipy":
            a = a.tocsr()
        elif kind == "torch":
            # a phiv call with torch's COO product took 7× the CSR one on a CPU
            # (benchmarks/torch_sparse_layouts.py)
            a = to_torch_csr(a)
        elif kind is None:
            raise TypeError(
                f"A must be a scipy.sparse matrix or a torch sparse tensor, got {type(a).__name__}; "
                "use Dense for a dense array, MatrixFree(op.matvec, n) for a LinearOperator"
            )
        shape = tuple(a.shape)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"A must be square, got shape {shape}")
        check_finite(a.data if kind == "scipy" else a.values(), name="A")  # its stored entries
        self.a = a
        self._kind = kind
        self._copies: dict[tuple[str, str, str], Any] = {}
        self._shifted = LRUCache(4)  # scale·A + shift·I for the Chebyshev recurrence
        hermitian = self._structure(a, hermitian, "hermitian", skew=False)
        if hermitian and skew_hermitian is None:
            skew_hermitian = False  # (only A = 0 is both)
        skew_hermitian = self._structure(a, skew_hermitian, "skew_hermitian", skew=True)
        super().__init__(
            self._product,
            shape[0],
            tol=tol,
            m=m,
            hermitian=hermitian,
            spectrum=spectral_interval(a) if hermitian else None,
            method=method,
            skew_hermitian=skew_hermitian,
        )

    @staticmethod
    def _structure(a: Any, flag: bool | None, name: str, *, skew: bool) -> bool:
        """``flag`` checked against ``A`` (``A = A^H``, or with ``skew`` ``A^H = −A``,
        tested exactly in O(nonzeros), once), or found where it is None."""
        if flag is not None and not isinstance(flag, bool):
            raise TypeError(f"{name} must be True, False or None, got {flag!r}")
        exact = flag is not False and sparse_is_hermitian(a, skew=skew)
        if flag and not exact:
            what = "A^H != -A" if skew else "A != A^H"
            raise ValueError(
                f"{name}=True but A is not {'skew-' if skew else ''}Hermitian ({what}); "
                f"pass {name}=None or False"
            )
        return exact

    def _matrix_for(self, y: Any) -> Any:
        """``A`` in ``y``'s library, device and precision: the matrix itself when they
        match, else a copy made once per device and dtype (a scipy matrix acting on
        torch states, e.g. a built-in finite-difference problem on a GPU)."""
        if self._kind == "scipy" and not is_torch_array(y):  # scipy promotes precisions
            return self.a
        # torch does not mix float32 and float64 in a product (a real matrix with
        # complex states is promoted per product, so complex states share the copy)
        precision = str(finfo_of(y).dtype)
        same_library = self._kind == "torch" and is_torch_array(y)
        if same_library and self.a.device == y.device and str(finfo_of(self.a).dtype) == precision:
            return self.a
        key = (type(y).__name__, str(device(y)), precision)
        hit = self._copies.get(key)
        if hit is None:
            hit = self._copies[key] = sparse_like(self.a, y)
        return hit

    def _product(self, v: Any) -> Any:
        return promoted_product(self._matrix_for(v), v.reshape(-1, 1)).reshape(v.shape)

    def shifted_product(self, scale: float, shift: float, like: Any) -> Callable[[Any], Any]:
        """The block product with ``scale·A + shift·I`` for rows like ``like`` (what
        `expint.phiv`'s Chebyshev recurrence runs on): the matrix is formed once per
        ``(scale, shift)`` and kept — they depend on the spectral interval and the
        sign of the step only, not on its length."""
        key = (scale, shift, type(like).__name__, str(device(like)), str(finfo_of(like).dtype))
        matrix = self._shifted.get(key)
        if matrix is None:
            # a torch matrix is shifted on the host (float64 or complex128), then moved
            host = self.a if self._kind == "scipy" else sparse_like(self.a, np.zeros(0))
            matrix = shifted_csr(host, scale, shift)
            if is_torch_array(like):
                matrix = sparse_like(matrix, like)
            self._shifted.put(key, matrix)
        return lambda x: promoted_product(matrix, x.T).T

    def apply(self, y: Any, t: float | None = None) -> Any:
        if y.ndim == 1:
            return self.matvec(y)
        flat = y.reshape(-1, self.n)
        return promoted_product(self._matrix_for(y), flat.T).T.reshape(y.shape)


class ScalarTime(EvaluatedOperator):
    r"""Time-dependent scalar linear part ``L(t) = a(t) I``.

    Parameters
    ----------
    rate : callable
        ``rate(t) -> float``, the scalar ``a(t)``.
    integral : callable
        ``integral(s, t) -> float`` $= \int_s^t a(\tau)\, d\tau$; it may be called
        with numpy arrays for ``s``.  The propagator is ``exp(integral(s, t))`` exactly
        (for diffusion models: ``α_t/α_s``).
    n : int, optional
        State size (``None``: any).

    Notes
    -----
    The φ-coefficients of a step from ``t`` with size ``h`` and node ``c`` are

    $$
    \varphi_0 = e^{I(t, t + ch)},\qquad
    \varphi_k = \int_0^1 e^{I(t + \theta c h,\, t + c h)}
    \frac{\theta^{k-1}}{(k-1)!}\, d\theta,
    $$

    evaluated by composite Gauss–Legendre quadrature (16 nodes per panel, one panel
    per 4 units of ``|I|``), so they are exact to rounding for smooth rates.
    """

    time_dependent = True

    def __init__(
        self,
        rate: Callable[[float], float],
        integral: Callable[[Any, Any], Any],
        n: int | None = None,
    ):
        super().__init__()
        for name, f in (("rate", rate), ("integral", integral)):
            if isinstance(f, type) or not callable(f):
                raise TypeError(f"{name} must be a callable (an instance, not a class)")
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
            raise ValueError(f"n must be a positive integer or None (any size), got {n!r}")
        self.rate = rate
        self.integral = integral
        self.n = int(n) if n is not None else -1
        self.dtype = np.float64
        self._rate_checked = False

    def check_state(self, y: Any, *, name: str = "y0") -> None:
        if self.n >= 0:
            super().check_state(y, name=name)

    def apply(self, y: Any, t: float | None = None) -> Any:
        if t is None:
            raise ValueError("ScalarTime.apply needs the time t")
        rate = check_real(self.rate(t), name="ScalarTime's rate(t)")
        if not math.isfinite(rate):
            raise ValueError(f"ScalarTime's rate(t) is not finite at t = {t:g}")
        return y * rate

    def _integral(self, s: np.ndarray, t: float) -> np.ndarray:
        """``integral(s, t)`` for an array ``s``: one vectorised call if the callable
        takes arrays, else one call per entry; real and finite, or a ``ValueError``
        naming ``integral`` (a NaN would otherwise surface as an integer conversion
        error, and a complex value would lose its imaginary part)."""
        out = None
        try:
            arr = np.asarray(self.integral(s, t))
            if arr.shape == s.shape and arr.dtype.kind in "fiuc":
                out = arr
        except Exception:  # a callable written for scalars: fall back to one call per entry
            pass
        if out is None:
            values = []
            for si in s.ravel():
                value = self.integral(float(si), t)
                try:
                    values.append(complex(value))
                except (TypeError, ValueError):
                    raise TypeError(
                        "ScalarTime's integral(s, t) must return a real number (or an array like s); "
                        f"got {type(value).__name__}"
                    ) from None
            out = np.array(values).reshape(s.shape)
        if np.iscomplexobj(out):
            if np.any(out.imag != 0):
                raise TypeError(
                    "ScalarTime's integral(s, t) returned a complex value: ScalarTime is for a real "
                    "rate a(t); use Diagonal or Dense for a complex linear part"
                )
            out = out.real
        out = out.astype(float)
        if not np.all(np.isfinite(out)):
            raise ValueError(
                f"ScalarTime's integral(s, t) is not finite between s = {float(s.ravel()[0]):g} and t = {t:g}"
            )
        return out

    def _check_rate(self, t: float, h: float) -> None:
        """Once per operator: ``integral(t, t + δ)/δ`` against ``rate(t + δ/2)``.  A
        swapped sign or argument order in either callable gives a solution that is
        silently wrong for schemes that use only the integral and right for those that
        use the rate (the Rosenbrock pairs); this catches it on the first step."""
        self._rate_checked = True
        delta = 1e-4 * h
        mean = float(self._integral(np.array([t]), t + delta)[0]) / delta
        mid = check_real(self.rate(t + delta / 2), name="ScalarTime's rate(t)")
        if abs(mean - mid) > 1e-3 * (abs(mid) + 1.0 / abs(h)):
            raise ValueError(
                f"ScalarTime: integral(s, t) is not the integral of rate from s to t near t = {t:g}: "
                f"integral(t, t + δ)/δ = {mean:.6g} but rate(t + δ/2) = {mid:.6g} (δ = {delta:.3g}); "
                "check the sign and the order of integral's arguments"
            )

    def _coefficients(self, h: float, c: float, kmax: int, t: float | None) -> Any:
        if t is None:
            raise ValueError("ScalarTime coefficients need the step's start time t")
        if not self._rate_checked and h != 0:
            self._check_rate(t, h)
        self.phi_evaluations += 1
        t_end = t + c * h
        total = float(self._integral(np.array([t]), t_end)[0])
        out = np.empty(kmax + 1)
        # a growth beyond e^709 is +inf, as φ of a `Diagonal` gives it (the run then
        # stops on the non-finite state), not math.exp's OverflowError
        with np.errstate(over="ignore"):
            out[0] = np.exp(total)
            if kmax == 0:
                return out
            panels = max(1, min(4096, math.ceil(abs(total) / 4.0)))
            theta, weights = gauss_legendre(0.0, 1.0, 16, panels)
            kernel = np.exp(self._integral(t + theta * c * h, t_end)) * weights
            for k in range(1, kmax + 1):
                out[k] = float(np.sum(kernel * theta ** (k - 1))) / math.factorial(k - 1)
        return out

    def _combine(self, coeffs: Any, ws: Sequence[Any | None], h: float, c: float) -> Any:
        out = None
        for k, w in enumerate(ws):
            if w is None:
                continue
            term = w * float(coeffs[k])
            out = term if out is None else out + term
        return out

    def _identity_like(self) -> Any:
        return 1.0

    def _prepare(self, coef: Any, like: Any) -> Any:
        return float(coef)
