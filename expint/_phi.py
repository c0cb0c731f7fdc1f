r"""Element-wise and dense-matrix φ-functions.

The φ-functions are

$$
\varphi_0(z) = e^z, \qquad
\varphi_k(z) = \int_0^1 e^{(1-\theta) z} \frac{\theta^{k-1}}{(k-1)!}\, d\theta
= \sum_{j\ge 0} \frac{z^j}{(j+k)!}, \qquad
\varphi_{k+1}(z) = \frac{\varphi_k(z) - 1/k!}{z}.
$$

Element-wise algorithm (float64 working precision, one branch per element):

* ``|z| < r_k`` with ``r_k = max(1, k)``: the Taylor series, summed by Horner's rule
  with as many terms as the remainder bound ``r_k^n k!/(n+k)! < 2^{-56}`` asks for.
  Inside this disc the series is well conditioned: the ratio
  ``φ_k(|z|)/|φ_k(z)|`` that bounds its cancellation stays below ~10.  When several
  indices are asked for, only the highest, ``K``, is summed; below it
  ``φ_k = z φ_{k+1} + 1/k!`` inside ``|z| < r_k`` (the discs are nested), which damps an
  error of ``φ_{k+1}`` by about ``|z|/(k+1) < 1`` and costs two operations instead of
  another 20–40 Horner steps (tests: it agrees with the per-index series to 1e-15).
* ``|z| ≥ r_k``: the forward recurrence started from ``e^z`` and an ``expm1``-based
  ``φ_1``.  An error in ``φ_j`` is damped by ``j/|z| ≤ 1`` at each step, so this is
  stable exactly where the Taylor series is not.  For ``Re z > 700`` the recurrence
  runs on ``e^{-s} φ_j`` (``s = Re z - 700``) and the scale is restored in log space,
  so no intermediate overflows while the true value is finite.

Both switch points depend on ``k`` (a single switch radius loses up to 1e-13 for high
``k``; see ``benchmarks/phi_accuracy.py``).  Dense matrices use the exponential of an
augmented block matrix (Sidje 1998; Al-Mohy & Higham 2011).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from functools import cache
from typing import Any

import numpy as np

from ._backend import (
    Array,
    any_true,
    array_namespace,
    as_array,
    as_like,
    cast_back,
    device,
    from_host,
    is_complex,
    make_complex,
    promote_working,
    to_numpy,
)
from ._blas import one_blas_thread
from ._validation import check_finite, check_no_nan, check_order, check_square

__all__ = ["phi", "phi_all", "phi_matrix", "phi_matrix_all"]

_RE_SHIFT = 700.0  # exp(700) ≈ 1e304 is still finite in float64
_TAIL_TOL = 2.0**-56


def _switch_radius(k: int) -> float:
    return float(max(1, k))


@cache
def _taylor_terms(k: int) -> int:
    """Number of Taylor terms for φ_k inside its disc ``|z| < r_k``."""
    r = _switch_radius(k)
    n = 1
    # remainder of sum_j z^j/(j+k)! relative to 1/k!: r^n k!/(n+k)!
    while math.exp(n * math.log(r) + math.lgamma(k + 1) - math.lgamma(n + k + 1)) > _TAIL_TOL:
        n += 1
    return n + 1


def _input_scalar(z: Any) -> Any:
    """Python scalars become 0-d numpy arrays in double precision; arrays pass."""
    if isinstance(z, (bool, np.bool_)):
        raise TypeError("z must be a real or complex number or array, not bool")
    if isinstance(z, (int, float)):
        return np.asarray(float(z))
    if isinstance(z, complex):
        return np.asarray(z, dtype=np.complex128)
    return as_array(z)


def _expm1_complex(xp: Any, z: Any) -> Any:
    """``e^z - 1`` for complex ``z`` without cancellation in either part.

    ``Re(e^z - 1) = expm1(x) cos y - 2 sin^2(y/2)`` keeps the real part accurate where
    ``e^z`` is close to 1 (small ``|z|`` and near the zeros ``z = 2πin``).
    """
    x, y = xp.real(z), xp.imag(z)
    re = xp.expm1(x) * xp.cos(y) - 2.0 * xp.sin(0.5 * y) ** 2
    im = xp.exp(x) * xp.sin(y)
    return make_complex(re, im)


#: Powers per block of the Taylor polynomial's Paterson–Stockmeyer evaluation
#: (``_taylor``): ~30 terms become 5–6 blocks.
_BLOCK = 6
_ONES_ROW = np.ones(_BLOCK)


@cache
def _taylor_blocks(k: int) -> np.ndarray:
    """``1/(j + k)!`` for the Taylor terms ``j`` of φ_k as an ``(_BLOCK, blocks)``
    matrix: column ``b`` holds ``j = b·_BLOCK … b·_BLOCK + _BLOCK − 1`` (zero-padded)."""
    n = _taylor_terms(k) + 1
    blocks = -(-n // _BLOCK)
    coefs = np.zeros(blocks * _BLOCK)
    coefs[:n] = [1.0 / math.factorial(j + k) for j in range(n)]
    return coefs.reshape(blocks, _BLOCK).T.copy()


def _taylor(xp: Any, z: Any, k: int) -> Any:
    """φ_k(z) by its Taylor polynomial for a 1-D ``z`` inside ``|z| < r_k``.

    Paterson–Stockmeyer: the powers ``z^0 … z^5`` once, every block's partial sum in one
    product with the coefficient matrix, then Horner's rule in ``w = z^6`` over the 5–6
    blocks.  About 15 array operations instead of Horner's 60 on the whole polynomial:
    on the short arrays of small problems the operations are the cost.  Inside the disc
    every term is bounded by the series of ``|z|``, whose sum is within ~10× of
    ``|φ_k(z)|``, so the grouping rounds no worse than Horner (checked against mpmath
    in tests/test_phi_scalar.py)."""
    blocks = _taylor_blocks(k)
    powers = xp.reshape(z, (-1, 1)) * as_like(_ONES_ROW, z)  # every column z, on z's device
    powers[:, 0] = 1.0
    powers = xp.cumprod(powers, axis=1)
    partial = powers @ as_like(blocks, z)
    w = powers[:, -1] * z
    acc = partial[:, -1]
    for b in range(blocks.shape[1] - 2, -1, -1):
        acc = acc * w + partial[:, b]
    return acc


def _recurrence(xp: Any, z: Any, kmax: int) -> list[Any]:
    """φ_0..φ_kmax by the forward recurrence, overflow-safe for ``Re z > 700``."""
    shifted = xp.real(z) > _RE_SHIFT
    em1 = _expm1_complex(xp, z) if is_complex(z) else xp.expm1(z)
    if not any_true(shifted):  # the common case: plain recurrence, no rescaling
        u = [xp.exp(z), em1 / z]
        for j in range(1, kmax):
            u.append((u[j] - 1.0 / math.factorial(j)) / z)
        return u[: kmax + 1]
    # u_j = e^{-s} φ_j(z) with s = max(Re z − 700, 0)
    excess = xp.real(z) - _RE_SHIFT
    # (zeros_like, not 0·excess: an entry at −inf would make its shift NaN)
    shift = xp.where(excess > 0, excess, xp.zeros_like(excess))
    scaled_exp = xp.exp(z - shift)  # e^{z-s}
    u = [scaled_exp, xp.where(shifted, (scaled_exp - xp.exp(-shift)) / z, em1 / z)]
    for j in range(1, kmax):
        u.append((u[j] - xp.exp(-shift) / math.factorial(j)) / z)
    out = []
    for uj in u[: kmax + 1]:
        safe = xp.where(shifted, uj, xp.ones_like(uj))
        out.append(xp.where(shifted, xp.exp(xp.log(safe) + shift), uj))
    return out


def _phi_all_work(kmax: int, z: Any) -> Any:
    """φ_0..φ_kmax of a double-precision array, stacked on a new axis 0."""
    # numpy itself for numpy arrays: the compatibility layer's wrappers cost more than
    # the arithmetic on short arrays (every function used here has numpy's signature)
    xp = np if type(z) is np.ndarray else array_namespace(z)
    # 1-D: numpy arithmetic on 0-d arrays returns scalars, which take no item assignment
    flat = _phi_all_flat(xp, kmax, xp.reshape(z, (-1,)))
    return xp.reshape(flat, (kmax + 1, *z.shape))


def _phi_all_flat(xp: Any, kmax: int, z: Any) -> Any:
    absz = xp.abs(z)
    with np.errstate(all="ignore"):
        rec = _recurrence(xp, z, kmax)
        vals: list[Any] = [None] * (kmax + 1)
        vals[0] = rec[0]
        upper = None  # φ_{k+1} where |z| < r_{k+1}, for the backward recurrence
        for k in range(kmax, 0, -1):
            inside = absz < _switch_radius(k)
            val = rec[k]  # a fresh array: its entries inside the disc are replaced in place
            if any_true(inside):
                if upper is None:
                    # the Taylor series (~20–40 Horner steps) for the highest index only,
                    # and only where it is used: on stiff spectra most entries lie outside
                    val[inside] = _taylor(xp, z[inside], k)
                else:
                    # φ_k = z φ_{k+1} + 1/k!: inside |z| < r_k ≤ r_{k+1} an error in
                    # φ_{k+1} reaches φ_k damped by |z| φ_{k+1}/φ_k ≲ |z|/(k+1) < 1
                    val[inside] = z[inside] * upper[inside] + 1.0 / math.factorial(k)
            upper = val
            vals[k] = val
        out = vals
    res = xp.stack(out, axis=0)
    if not any_true(xp.real(z) == math.inf):
        return res
    if not is_complex(z):
        # φ_k(+inf) = +inf for every k; the recurrence would produce inf - inf there
        res = xp.where(z == math.inf, xp.full_like(res, math.inf), res)
    else:
        # Re z = +inf, finite Im z = y: φ_k(z) ~ e^z / z^k points along e^{iy}, so its
        # limit is inf·cos y + i·inf·sin y (0 where the factor is 0), as for real +inf
        y = xp.imag(z)
        at_inf = (xp.real(z) == math.inf) & xp.isfinite(y)
        cos_y, sin_y = xp.cos(y), xp.sin(y)
        with np.errstate(invalid="ignore"):
            re = xp.where(cos_y == 0, 0.0 * cos_y, cos_y * math.inf)
            im = xp.where(sin_y == 0, 0.0 * sin_y, sin_y * math.inf)
        res = xp.where(at_inf, make_complex(re, im), res)
    return res


def phi_all_unchecked(kmax: int, z: Any) -> Any:
    """`phi_all` without its argument checks and dtype handling, for internal callers
    whose ``z`` is a float64/complex128 array known to hold no NaN (an operator's
    spectrum times a step): on the short arrays of small problems the checks cost more
    than the evaluation."""
    return _phi_all_work(kmax, z)


def phi_all(kmax: int, z: Array) -> Array:
    r"""All φ-functions ``φ_0(z), …, φ_kmax(z)`` element-wise.

    Parameters
    ----------
    kmax : int
        Highest index, ``kmax >= 0``.
    z : array_like or torch.Tensor
        Real or complex argument of any shape.  Python scalars give numpy scalars.

    Returns
    -------
    array or torch.Tensor
        Shape ``(kmax + 1, *z.shape)``, entry ``[k]`` is $\varphi_k(z)$; same
        array type, dtype and device as ``z``.

    Raises
    ------
    TypeError
        ``kmax`` not an integer, or ``z`` with an integer or boolean dtype.
    ValueError
        ``kmax < 0`` or ``z`` containing NaN.

    Notes
    -----
    Accuracy in float64 (measured against 50-digit mpmath, see
    ``tests/test_phi_scalar.py``): relative error below 1e-14 for real ``z`` in
    ``[-1e5, 700]`` and complex ``|z| <= 1e4`` with ``Re z <= 700``, ``k <= 8``.
    ``φ_k(-inf) = 0`` (``k = 0``) resp. the limit ``0``; ``φ_k(+inf) = +inf``.
    """
    kmax = check_order(kmax, name="kmax")
    zw, dtype = promote_working(_input_scalar(z), name="z")
    check_no_nan(zw, name="z")
    return cast_back(_phi_all_work(kmax, zw), dtype)


def phi(k: int, z: Array) -> Array:
    r"""The φ-function $\varphi_k(z)$ element-wise.

    $\varphi_0 = \exp$, $\varphi_{k+1}(z) = (\varphi_k(z) - 1/k!)/z$,
    $\varphi_k(0) = 1/k!$.  See `phi_all` for the algorithm, accuracy and
    errors; this returns ``phi_all(k, z)[k]``.

    Examples
    --------
    >>> import numpy as np, expint
    >>> float(expint.phi(1, 1e-20))   # no cancellation: (e^z - 1)/z -> 1
    1.0
    >>> expint.phi(2, np.array([0.0, -1e5]))
    array([5.0000e-01, 9.9999e-06])
    """
    k = check_order(k, name="k")
    return phi_all(k, z)[k]


def _augmented(a: Any, kmax: int) -> Any:
    """Block matrix ``W`` of size ``n(kmax+1)`` whose exponential's first block row is
    ``[φ_0(A), …, φ_kmax(A)]``: ``A`` in block (0, 0), identities on the block
    super-diagonal, zeros elsewhere."""
    n = a.shape[-1]
    size = n * (kmax + 1)
    xp, where = array_namespace(a), device(a)
    w = xp.zeros((*a.shape[:-2], size, size), dtype=a.dtype, device=where)
    eye = xp.eye(n, dtype=a.dtype, device=where)
    w[..., :n, :n] = a
    for j in range(kmax):
        w[..., j * n : (j + 1) * n, (j + 1) * n : (j + 2) * n] = eye
    return w


def _expm(w: Any) -> Any:
    """Matrix exponential in float64 on the host.

    ``torch.linalg.matrix_exp`` loses up to 5e-12 (relative, Frobenius) on stiff
    non-normal matrices with eigenvalues near -1e4, where ``scipy.linalg.expm``
    (Al-Mohy & Higham's Padé scaling and squaring) stays at 5e-16 (measured in
    ``tests/test_phi_matrix.py``); coefficients are host work computed once per step
    size, so torch input is evaluated by scipy and moved back to its device.
    """
    import scipy.linalg

    return from_host(scipy.linalg.expm(to_numpy(w)), w)


def _shifted_block_row(a: Any, kmax: int) -> Any:
    """The first block row of ``e^W`` when it overflows (spectral abscissa ``s`` of
    ``A`` above ~700): ``e^W = e^s e^{W - sI}`` with the scale restored in log space,
    so entries that are finite come out finite, zeros stay zero and only entries beyond
    the float64 range are ±inf (never inf − inf = NaN)."""
    host = to_numpy(a)
    n = host.shape[-1]
    shift = np.max(np.linalg.eigvals(host).real, axis=-1)[..., None, None]
    eye = np.eye(n * (kmax + 1))
    import scipy.linalg

    f = scipy.linalg.expm(_augmented(host, kmax) - shift * eye)[..., :n, :]
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        mag = np.exp(np.log(np.abs(f)) + shift)
        out = np.where(f == 0, 0.0, (f / np.where(f == 0, 1.0, np.abs(f))) * mag)
    return from_host(out.astype(host.dtype, copy=False), a)


def phi_matrix_all(kmax: int, a: Array) -> Array:
    r"""All matrix φ-functions ``φ_0(A), …, φ_kmax(A)`` of a dense matrix.

    Uses one exponential of the augmented block matrix

    $$
    W = \begin{pmatrix} A & I & & \\ & 0 & I & \\ & & \ddots & I \\ & & & 0
    \end{pmatrix}, \qquad
    e^{W}_{0, j} = \varphi_j(A),
    $$

    computed by Padé scaling and squaring (``scipy.linalg.expm``) in double precision
    on the host, also for torch input (the result is moved back to its device).

    Parameters
    ----------
    kmax : int
        Highest index, ``kmax >= 0``.
    a : array_like or torch.Tensor
        Matrix of shape ``(..., n, n)``, real or complex floating point, finite.

    Returns
    -------
    array or torch.Tensor
        Shape ``(kmax + 1, ..., n, n)``; same type, dtype and device as ``a``.
    """
    kmax = check_order(kmax, name="kmax")
    a = as_array(a, name="A")
    check_square(a, name="A")
    aw, dtype = promote_working(a, name="A")
    check_finite(aw, name="A")
    n = aw.shape[-1]
    if n == 0:
        raise ValueError("A must have at least one row and column, got shape (..., 0, 0)")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is handled below
        block_row = _expm(_augmented(aw, kmax))[..., :n, :]
    xp = array_namespace(block_row)
    if not bool(xp.all(xp.isfinite(block_row))):
        block_row = _shifted_block_row(aw, kmax)
    blocks = [block_row[..., :, j * n : (j + 1) * n] for j in range(kmax + 1)]
    return cast_back(xp.stack(blocks, axis=0), dtype)


def phi_matrix(k: int, a: Array) -> Array:
    r"""The matrix φ-function $\varphi_k(A)$ of a dense (batched) matrix.

    See `phi_matrix_all`; this returns ``phi_matrix_all(k, A)[k]``.
    """
    k = check_order(k, name="k")
    return phi_matrix_all(k, a)[k]


#: sizes ``n + p`` whose augmented exponential runs with BLAS on one thread
#: (`expint._blas`): on this project's 2-core machine, with the pool left alone, the
#: exprb43 runs on 128 real unknowns (KS and NLS with 64 modes, rtol 1e-5) took 2.4× and
#: 4.7× as long, the exprb32 ones about the same (`python benchmarks/rosenbrock_small.py
#: --rtols 1e-5 [--blas-pool]`, docs/benchmarks.md).
_ONE_THREAD_EXPM_SIZES = (96, 192)


def phi_combination_expm(a: np.ndarray, ws: list[np.ndarray | None]) -> np.ndarray | None:
    r"""$\sum_{k=0}^{p} φ_k(A)\, w_k$ for one dense numpy matrix ``A`` (``n × n``) and
    vectors ``w_k`` (``None`` counts as zero), by one exponential of size ``n + p``.

    With $W = [w_p, …, w_1]$ and $J_p$ the ``p × p`` shift (ones on the super-diagonal),

    $$
    \exp\begin{pmatrix} A & ηW \\ 0 & J_p \end{pmatrix}
    \begin{pmatrix} w_0 \\ e_p/η \end{pmatrix}
    = \begin{pmatrix} e^{A} w_0 + \sum_{k=1}^{p} φ_k(A) w_k \\ \cdots \end{pmatrix}
    $$

    (Al-Mohy & Higham 2011, Theorem 2.1).  The scale $η = 2^{-⌈\log_2 \max_k
    \|w_k\|_1⌉}$ keeps ``W`` from inflating the norm that sets the number of squarings
    (their §3).  Against `phi_matrix_all`, which forms every ``φ_k(A)`` from an
    exponential of size ``n(p + 1)``, this is the product alone: what a one-off
    combination needs (an exponential Rosenbrock step has a new ``A`` every step), at
    the cost of one ``(n + p)``-sized exponential per combination.  Overflow leaves
    ±inf/NaN in the result (no warning): the caller checks finiteness.
    """
    return phi_combinations_expm(a, [ws])[0]


def phi_combinations_expm(a: np.ndarray, wss: list[list[np.ndarray | None]]) -> list[np.ndarray | None]:
    r"""Several combinations $\sum_k φ_k(A) w^{(m)}_k$ with the same ``A`` from one
    exponential of size $n + \sum_m p_m$ (`phi_combination_expm` for one): each
    combination has its own shift block on the diagonal,

    $$
    \exp\begin{pmatrix} A & ηW^{(1)} & ηW^{(2)} \\ & J_{p_1} & \\ & & J_{p_2}
    \end{pmatrix},
    $$

    and the blocks above them do not mix (the lower-right part is block diagonal), so
    column ``n + p_1 − 1`` holds the first combination and ``n + p_1 + p_2 − 1`` the
    second.  Two combinations of ``n + p`` cost ``2(n + p)³`` as two exponentials and
    ``(n + 2p)³`` as one (in flops: for ``n = 64``, ``p = 3``, 43% less).  ``η`` is one scale for
    all of them (the largest ``‖w_k‖₁``).  A combination whose vectors are all
    ``None`` gives ``None``.
    """
    import scipy.linalg

    n = a.shape[0]
    ps = [len(ws) - 1 for ws in wss]
    live = [any(w is not None for w in ws) for ws in wss]
    if not any(live):
        return [None] * len(wss)
    vecs = [w for ws in wss for w in ws if w is not None]
    dtype = np.result_type(a.dtype, *(w.dtype for w in vecs), np.float64)
    size = n + sum(p for p, on in zip(ps, live, strict=True) if on)
    big = np.zeros((size, size), dtype=dtype)
    big[:n, :n] = a
    top = max((float(np.sum(np.abs(w))) for ws in wss for w in ws[1:] if w is not None), default=0.0)
    eta = 2.0 ** -math.ceil(math.log2(top)) if 0.0 < top < math.inf else 1.0
    ends: list[int | None] = []  # the column of each combination's result (after its shift block)
    start = n
    for ws, p, on in zip(wss, ps, live, strict=True):
        if not on:
            ends.append(None)
            continue
        for k in range(1, p + 1):
            wk = ws[k]
            if wk is not None:
                big[:n, start + p - k] = eta * wk
        big[start : start + p, start : start + p] = np.eye(p, k=1)
        start += p
        ends.append(start - 1 if p else None)
    low, high = _ONE_THREAD_EXPM_SIZES
    outs: list[np.ndarray | None] = []
    with np.errstate(all="ignore"), one_blas_thread() if low <= size <= high else nullcontext():
        e = scipy.linalg.expm(big)
        for ws, end, on in zip(wss, ends, live, strict=True):
            if not on:
                outs.append(None)
                continue
            out = e[:n, end] / eta if end is not None else np.zeros(n, dtype=dtype)
            if ws[0] is not None:
                out = out + e[:n, :n] @ ws[0]
            outs.append(out)
    return outs
