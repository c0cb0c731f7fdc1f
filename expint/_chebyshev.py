r"""Chebyshev expansion of φ-combinations for Hermitian operators with a known spectrum.

For a Hermitian ``A`` whose eigenvalues lie in ``[a, b]`` (centre ``c``, half-width
``r``), each term of ``w = Σ_k t^k φ_k(tA) v_k`` is expanded in Chebyshev polynomials
of the scaled operator ``Â = (A − c)/r``, whose spectrum lies in ``[−1, 1]``:

$$
t^k \varphi_k(tA)\, v_k = \sum_{j\ge 0} c^{(k)}_j\, T_j(\hat A)\, v_k,\qquad
T_{j+1}(\hat A) v = 2 \hat A\, T_j(\hat A) v - T_{j-1}(\hat A) v .
$$

The coefficients ``c^{(k)}_j`` are those of the scalar function
``x ↦ t^k φ_k(t(c + r x))`` on ``[−1, 1]``, computed once per call from its values at
Chebyshev–Lobatto points (a DCT-I of `expint.phi_all`), on a grid refined until the
trailing coefficients are at rounding level.  Since ``‖T_j(Â)‖₂ ≤ 1`` for a Hermitian
``Â`` with its spectrum in ``[−1, 1]``, truncating after ``m`` terms leaves an error of
at most

$$
\sum_k \|v_k\| \sum_{j\ge m} |c^{(k)}_j| ,
$$

a bound known before the first product (Tal-Ezer & Kosloff 1984 for the exponential;
the φ-functions are entire, so their coefficients decay as fast).  Unlike a Krylov
method, the recurrence needs no inner products and no small exponentials: one product
with ``A`` and four in-place vector updates per term, nothing read back to the host
until the end — cheaper per product than Lanczos, and free of host synchronisation on a GPU.
What it does not do is adapt to the vector: Lanczos converges faster on a vector with
little weight in the stiff end of the spectrum (a smooth field on a fine grid), which is
why `phiv` only picks this method by itself for vectors that are not smooth
(`prefer_chebyshev`).

The interval comes from Gershgorin's theorem for explicit matrices (`spectral_interval`:
every eigenvalue of a Hermitian ``A`` lies in some ``[a_ii − R_i, a_ii + R_i]``,
``R_i = Σ_{j≠i} |a_ij|``) or from the caller (``phiv(..., spectrum=(a, b))``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.fft import dct

from ._backend import csr_diagonal_positions, is_array, is_torch_array, sparse_kind, to_numpy
from ._phi import phi_all

__all__ = [
    "ChebyshevUnfit",
    "chebyshev_coefficients",
    "chebyshev_phiv",
    "check_spectrum",
    "prefer_chebyshev",
    "spectral_interval",
]


class ChebyshevUnfit(Exception):
    """The expansion cannot meet the tolerance here (the result is too small next to
    the vectors for the working precision, or the interval is too wide)."""


def spectral_interval(a: Any) -> tuple[float, float] | None:
    """Gershgorin interval ``[min_i(a_ii − R_i), max_i(a_ii + R_i)]`` of an explicit
    Hermitian matrix (dense numpy or torch array, scipy or torch sparse matrix), or an
    operator's ``spectrum`` attribute; None when ``A`` is known only by its products.

    O(entries), the cost of a few products with ``A``.  Only meaningful for a Hermitian
    ``A`` (real diagonal, real spectrum); the caller checks that.
    """
    kind = sparse_kind(a)
    if kind == "scipy":
        import scipy.sparse as sp

        csr = a.tocsr()
        diag = np.real(csr.diagonal())
        # |A|·1 through a matrix that shares the index arrays: 6× faster than
        # abs(A).sum(axis=1) on the 256² Laplacian
        magnitudes = sp.csr_array((np.abs(csr.data), csr.indices, csr.indptr), shape=csr.shape, copy=False)
        radius = magnitudes @ np.ones(csr.shape[1]) - np.abs(diag)
    elif kind == "torch":
        coo = a.to_sparse_coo().coalesce()
        rows, cols = coo.indices()
        values = coo.values()
        n = int(a.shape[0])
        sums = values.abs().new_zeros(n).index_add_(0, rows, values.abs())
        on_diag = rows == cols
        diag_t = values.real.new_zeros(n).index_add_(0, rows[on_diag], values[on_diag].real)
        diag = np.asarray(to_numpy(diag_t), dtype=float)
        radius = np.asarray(to_numpy(sums), dtype=float) - np.abs(diag)
    elif is_array(a):
        if is_torch_array(a):
            import torch

            diag = np.asarray(to_numpy(torch.diagonal(a).real), dtype=float)
            radius = np.asarray(to_numpy(a.abs().sum(dim=1)), dtype=float) - np.abs(diag)
        else:
            diag = np.real(np.diagonal(a)).astype(float)
            radius = np.abs(a).sum(axis=1) - np.abs(diag)
    else:
        given = getattr(a, "spectrum", None)
        return None if given is None else (float(given[0]), float(given[1]))
    if diag.size == 0:
        return None
    radius = np.maximum(radius, 0.0)  # rounding in the row sums
    return float(np.min(diag - radius)), float(np.max(diag + radius))


def check_spectrum(spectrum: Any) -> tuple[float, float]:
    """Validate a user-given interval ``(a, b)``, ``a ≤ b``, finite."""
    try:
        lo, hi = (float(x) for x in spectrum)
    except (TypeError, ValueError):
        raise TypeError(f"spectrum must be a pair (a, b) of real numbers, got {spectrum!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError(f"spectrum must be a finite interval (a, b) with a <= b, got {spectrum!r}")
    return lo, hi


# the coefficient grid doubles until its last coefficients are at rounding level; past
# this many points the interval is too wide for a polynomial of reasonable degree
_MAX_POINTS = 2**16


# a solver's steps of one size call phiv with the same (p, t, interval) again and
# again, and on small grids the coefficients (φ values and a DCT on up to thousands of
# points) are a noticeable part of a call
@lru_cache(maxsize=16)
def chebyshev_coefficients(p: int, t: float, lo: float, hi: float) -> np.ndarray:
    r"""Chebyshev coefficients of ``x ↦ t^k φ_k(t(c + r x))`` on ``[−1, 1]``,
    ``k = 0 … p`` (columns), ``c = (a+b)/2``, ``r = (b−a)/2``.

    From the values at the ``M + 1`` Chebyshev–Lobatto points ``x_i = cos(πi/M)``:
    ``c_j = (2 − δ_{j0} − δ_{jM})/(2M) · DCT-I(f)_j``, exact for the interpolant and
    within the aliased tail of the series coefficients; ``M`` doubles (from about
    ``16 √(|t| r)``) until the last
    quarter of the coefficients is below ``8ε · max|f_k|``; coefficients below that
    level at the end are dropped (rounding noise of the DCT).

    Raises `ChebyshevUnfit` past ``2**16`` points or where the values overflow.
    The last 16 results are kept (keyed on the exact arguments) and returned
    read-only.
    """
    centre, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    points = 16
    # the exponential's coefficients e^{-z} I_j(z), z = |t| r, fall like e^{-j²/2z} once
    # j ≪ z: below ε by j ≈ 8.6 √z; start the grid at twice that
    needed = 16 * math.sqrt(abs(t) * half) + 32
    if needed > _MAX_POINTS:  # (decided before sampling 2¹⁶ points to find it out)
        raise ChebyshevUnfit("the interval is too wide for the Chebyshev expansion")
    while points < needed:
        points *= 2
    while True:
        x = np.cos(np.pi * np.arange(points + 1) / points)
        with np.errstate(over="ignore", invalid="ignore"):
            z = t * (centre + half * x)
            if p == 0:  # phi_all's general path costs more than the DCT here
                values = np.exp(z)[None]
            else:
                values = np.asarray(phi_all(p, z), dtype=float) * (t ** np.arange(p + 1))[:, None]
        if not np.all(np.isfinite(values)):
            raise ChebyshevUnfit("φ values overflow on the interval")
        coeffs = dct(values, type=1, axis=1) / points
        coeffs[:, 0] *= 0.5
        coeffs[:, -1] *= 0.5
        # the DCT's rounding leaves every coefficient at ~ε max|f|, however small the
        # true one: the grid is fine enough once the last quarter is at that level
        size = np.max(np.abs(values), axis=1, keepdims=True)
        tail = np.max(np.abs(coeffs[:, -(points // 4) :]), axis=1, keepdims=True)
        noise = 8 * np.finfo(float).eps * size
        if np.all(tail <= noise):
            # drop the trailing coefficients at rounding level: they are noise, and
            # summed into the truncation bound they would keep it from ever reaching 0
            significant = np.flatnonzero(np.any(np.abs(coeffs) > noise, axis=0))
            keep = int(significant[-1]) + 1 if significant.size else 1
            kept = coeffs[:, :keep].T  # (keep, p+1)
            kept.flags.writeable = False  # shared by every call with these arguments
            return kept
        if points >= _MAX_POINTS:
            raise ChebyshevUnfit("the interval is too wide for the Chebyshev expansion")
        points *= 2


def prefer_chebyshev(av_norm: float, v_norm: float, lo: float, hi: float) -> bool:
    """Whether to expand in Chebyshev polynomials rather than run Lanczos.

    Lanczos adapts to the vector: when ``v`` has little weight at the stiff end of the
    spectrum it converges in far fewer products than the Chebyshev bound needs, which
    is set by the whole interval.  ``‖Av‖ / (r ‖v‖)`` (``r`` the interval's half-width;
    ``Av`` is a product `phiv` makes anyway) measures that weight: near zero for a
    smooth field on a fine grid, a sizeable fraction of one for a rough one.  The
    threshold is from ``python benchmarks/chebyshev_phiv.py``.
    """
    half = 0.5 * (hi - lo)
    if half <= 0 or v_norm == 0:
        return False
    return av_norm / (half * v_norm) >= _ROUGHNESS_THRESHOLD


_ROUGHNESS_THRESHOLD = 0.01
_FLOOR_SAFETY = 2.0


#: ``shifted(a, b)``: the block product with ``aA + bI`` for the recurrence, or None
#: (`shifted_product`, bound to one matrix and its vectors by `expint.phiv`).
ShiftedFactory = Callable[[float, float], Callable[[Any], Any] | None]


def chebyshev_phiv(
    amul: Callable[[Any], Any],
    vs: Sequence[Any],
    t: float,
    lo: float,
    hi: float,
    tol: float,
    eps: float,
    row_norms: Callable[[Any], np.ndarray],
    first_product: Any = None,
    *,
    orders: Sequence[int] | None = None,
    base: Any = None,
    base_rounding: np.ndarray | None = None,
    shifted: ShiftedFactory | None = None,
) -> tuple[Any, int, float]:
    r"""``base + Σ_i t^{k_i} φ_{k_i}(tA) v_i`` for blocks ``v_i`` of shape ``(B, n)``,
    ``t > 0``, with ``k_i = orders[i]`` (default ``0, 1, …``: ``Σ_k t^k φ_k(tA) v_k``).

    Runs the three-term recurrence on all non-zero ``v_k`` at once (one block product
    per term) until the truncation bound is below ``tol · ‖w_b‖`` for every row ``b``.
    The number of terms is first chosen for ``‖w‖`` at its largest possible value
    (``Σ_k ‖v_k‖ Σ_j |c_j^{(k)}|``); then the norms of the result are read back once,
    and the recurrence continues where a row's result came out smaller.

    ``first_product``: ``A v_0`` where it is already known and ``v_0`` is the only
    vector (one row), saving a product.  ``base`` (shape ``(B, n)``) is added to the
    result before its norms are taken, and ``base_rounding`` (per row) to the rounding
    estimate: the polynomial part of phipm's single-vector form and its cancellation.

    ``shifted(a, b)``: the block product with ``aA + bI`` (`shifted_product`), or None.
    With it the recurrence ``T_{j+1} = 2Â T_j − T_{j−1}`` runs on the matrix
    ``2Â = (2/r)(A − cI)`` formed once: one product and two passes over the vectors
    per term instead of one product and four.

    Rounding: each ``T_j(Â) v`` computed by the recurrence carries an error of up to
    ``~(j+1) ε ‖v‖``, so the sum's rounding is estimated as
    ``ρ = ε Σ_k ‖v_k‖ Σ_j (j+1)|c_j^{(k)}|``.  On 1-D and 2-D Laplacians with 50 to
    1000 terms, the error left after the whole series stays below 2ρ
    (``tests/test_chebyshev.py::test_rounding_estimate_covers_the_attainable_accuracy``),
    so the accepted bound is ``truncation + 2ρ``.

    Returns ``(w, products, bound)``; raises `ChebyshevUnfit` where ``2ρ`` alone
    exceeds ``tol · ‖w‖``.
    """
    rows = vs[0].shape[0]
    if hi - lo <= 0:  # A = cI: any interval around c will do
        pad = max(abs(hi), 1.0) * 1e-8
        lo, hi = lo - pad, hi + pad
    centre, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    orders = list(range(len(vs))) if orders is None else list(orders)
    coeffs = chebyshev_coefficients(max(orders), t, lo, hi)[:, orders]  # (terms, len(vs))
    if len(coeffs) < 2:  # the recurrence starts with T_0 and T_1
        coeffs = np.concatenate([coeffs, np.zeros((2 - len(coeffs), coeffs.shape[1]))])
    norms = np.stack([row_norms(v) for v in vs])  # (p+1, B)
    used = [k for k in range(len(vs)) if np.any(norms[k] > 0)]
    if not used:
        return (vs[0] * 0 if base is None else base), 0, 0.0
    coeffs, norms = coeffs[:, used], norms[used]
    magnitudes = np.abs(coeffs)
    with np.errstate(over="ignore"):  # growth near the range: an infinite floor declines
        # tails[j, b] = Σ_k ‖v_k[b]‖ Σ_{i≥j} |c_i^{(k)}|: the error bound after j terms
        tails = np.cumsum(magnitudes[::-1], axis=0)[::-1] @ norms
        tails = np.concatenate([tails, np.zeros((1, rows))])
        floor = eps * ((np.arange(1, len(coeffs) + 1)[:, None] * magnitudes).sum(axis=0) @ norms)
        if base_rounding is not None:
            floor = floor + base_rounding
    if not np.all(np.isfinite(floor)):
        raise ChebyshevUnfit("the expansion's terms overflow")

    def terms_for(target: np.ndarray) -> int:
        # the first j whose bound meets the target (the appended zero row always does)
        return int(np.argmax(np.all(tails <= target[None, :], axis=1)))

    # the recurrence runs on all used v_k stacked, (K·B, n), in three buffers of our own;
    # the loop below is what runs per product, so its operations are bound once here
    start = _stack_rows([vs[k] for k in used])
    scale_into, axpy, subtract_into = _vector_ops(start)
    bufs = [start, start * 0, start * 0]
    # flat views of each buffer and of each v_k's block of rows in it, made once:
    # `axpy` works on flat arrays, and the loop below runs once per product
    flat = [b.reshape(-1) for b in bufs]
    parts = [[b[i * rows : (i + 1) * rows].reshape(-1) for i in range(len(used))] for b in bufs]
    weights = coeffs.tolist()
    y = bufs[0][:rows] * 0
    if base is not None:
        y += base
    y_flat = y.reshape(-1)
    single_part = len(used) == 1

    prev, cur, nxt = 0, 1, 2  # indices into bufs: T_{j−1}, T_j, scratch
    for c_k, part in zip(weights[0], parts[prev], strict=True):
        axpy(y_flat, c_k, part)
    # T_1 = Â T_0 = (A T_0 − c T_0)/r;  T_{j+1} = (2/r) A T_j − (2c/r) T_j − T_{j−1}
    reuse = first_product is not None and used == [0] and rows == 1
    scale_into(bufs[cur], first_product if reuse else amul(start), 1.0 / half)
    axpy(flat[cur], -centre / half, flat[prev])
    for c_k, part in zip(weights[1], parts[cur], strict=True):
        axpy(y_flat, c_k, part)
    done, scale, shift = 2, 2.0 / half, -2.0 * centre / half
    want = max(terms_for(tol * (magnitudes.sum(axis=0) @ norms)), 2)
    double_mul = None if shifted is None else shifted(scale, shift)
    while True:
        while done < want:
            out = bufs[nxt]
            if double_mul is not None:
                subtract_into(out, double_mul(bufs[cur]), bufs[prev])
            else:
                scale_into(out, amul(bufs[cur]), scale)
                axpy(flat[nxt], shift, flat[cur])
                out -= bufs[prev]
            if single_part:
                axpy(y_flat, weights[done][0], flat[nxt])
            else:
                for c_k, part in zip(weights[done], parts[nxt], strict=True):
                    axpy(y_flat, c_k, part)
            prev, cur, nxt = cur, nxt, prev
            done += 1
        result = row_norms(y)
        if not np.all(np.isfinite(result)):
            raise ChebyshevUnfit("the result overflows")
        need = tol * result
        bound = tails[done] + _FLOOR_SAFETY * floor
        if np.all(bound <= need):
            return y, done - 1 - int(reuse), float(np.max(bound))
        # (a zero row has floor 0 and is met already)
        if np.any((need <= _FLOOR_SAFETY * floor) & (floor > 0)) or done >= len(coeffs):
            raise ChebyshevUnfit("the result is too small next to the vectors for the working precision")
        want = max(terms_for(0.9 * (need - _FLOOR_SAFETY * floor)), done + 1)


def _stack_rows(blocks: list[Any]) -> Any:
    """The blocks stacked along rows, always a fresh contiguous array (it is updated
    in place)."""
    if is_torch_array(blocks[0]):
        import torch

        return torch.cat(blocks, dim=0).contiguous()
    return np.ascontiguousarray(np.concatenate(blocks, axis=0))


def _vector_ops(like: Any) -> tuple[Callable[..., None], Callable[..., None], Callable[..., None]]:
    """``(scale_into, axpy, subtract_into)`` for contiguous arrays of ``like``'s type and
    dtype (the recurrence's own buffers): ``scale_into(out, x, s)`` sets ``out = s·x``,
    ``axpy(y, a, x)`` adds ``a·x`` to ``y`` (both 1-D) and ``subtract_into(out, x, z)``
    sets ``out = x − z``, all in place.  For numpy, ``axpy`` is BLAS's: numpy's
    ``y += a * x`` allocates ``a * x`` first, a temporary as long as the block and one
    more pass over memory per term."""
    if is_torch_array(like):
        import torch

        def torch_scale_into(out: Any, x: Any, s: float) -> None:
            torch.mul(x, s, out=out)

        def torch_axpy(y: Any, a: float, x: Any) -> None:
            y.add_(x, alpha=a)

        def torch_subtract_into(out: Any, x: Any, z: Any) -> None:
            torch.sub(x, z, out=out)

        return torch_scale_into, torch_axpy, torch_subtract_into

    def scale_into(out: Any, x: Any, s: float) -> None:
        np.multiply(x, s, out=out)

    def subtract_into(out: Any, x: Any, z: Any) -> None:
        np.subtract(x, z, out=out)

    if like.dtype.char not in "fdFD":
        return scale_into, _numpy_axpy, subtract_into
    blas = _blas_axpy(like.dtype)

    def axpy(y: Any, a: float, x: Any) -> None:
        blas(x, y, a=a)  # flat, contiguous, of like's dtype: BLAS updates y in place

    return scale_into, axpy, subtract_into


def _numpy_axpy(y: Any, a: float, x: Any) -> None:
    y += a * x


_AXPY: dict[str, Any] = {}


def _blas_axpy(dtype: np.dtype) -> Any:
    hit = _AXPY.get(dtype.char)
    if hit is None:
        from scipy.linalg.blas import get_blas_funcs

        hit = _AXPY[dtype.char] = get_blas_funcs("axpy", dtype=dtype)
    return hit


def shifted_product(a: Any, scale: float, shift: float, like: Any) -> Callable[[Any], Any] | None:
    """The block product ``X ↦ ((scale·A + shift·I) X^T)^T`` for rows ``X`` like ``like``,
    with the matrix formed here, once, in ``O(entries)``: for a dense numpy array or a
    scipy sparse matrix acting on numpy vectors, and for operators that offer their own
    (``a.shifted_product``, e.g. `expint.Sparse`, which keeps it).  None otherwise (the
    Chebyshev recurrence then scales and shifts each product)."""
    own = getattr(a, "shifted_product", None)
    if callable(own):
        return own(scale, shift, like)
    if is_torch_array(like):
        return None
    if sparse_kind(a) == "scipy":
        matrix = shifted_csr(a, scale, shift)
        return lambda x: (matrix @ x.T).T
    if type(a) is np.ndarray and a.ndim == 2:
        matrix = a * scale
        matrix[np.diag_indices_from(matrix)] += shift
        return lambda x: x @ matrix.T
    return None


def shifted_csr(a: Any, scale: float, shift: float) -> Any:
    """``scale·A + shift·I`` for a scipy sparse ``A``, in CSR form (a new matrix)."""
    import scipy.sparse as sp

    csr = a.tocsr()
    positions = csr_diagonal_positions(csr)
    if positions is None:  # a row without a stored diagonal entry: the shift adds one
        return (csr * scale + sp.identity(csr.shape[0], dtype=csr.dtype, format="csr") * shift).tocsr()
    # the same sparsity pattern: scale the values, shift the diagonal's in place, share
    # the index arrays (no sparse sum, no new index arrays)
    data = csr.data * scale
    data[positions] += shift
    return sp.csr_array((data, csr.indices, csr.indptr), shape=csr.shape, copy=False)
