"""The sub-stepping Krylov integrator behind `expint.phiv`, and its work report.

`_expv` advances ``u' = A u + Σ_k s^{k−1}/(k−1)! f_k`` over ``[0, t]`` in sub-steps with
a-posteriori error control (the method is described in `expint._krylov`); `KrylovInfo`
reports its work.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._backend import (
    array_namespace,
    finfo_of,
    is_complex,
    is_torch_array,
    to_numpy,
)
from ._krylov_basis import (
    _BasisMemory,
    _cgs2,
    _column,
    _column_and_norm_to_host,
    _combine,
    _keeping_basis_memory,
    _lanczos_on_device,
    _lanczos_orthogonalise,
    _row_norms,
)
from ._krylov_projection import _Projection, _rounding


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


def _unit_roundoff(x: Any) -> float:
    """Machine epsilon of ``x``'s (real) precision, numpy array or torch tensor."""
    return float(finfo_of(x).eps)


class _RoundingFloor(Exception):
    """The single-vector form cannot reach the tolerance in floating point."""


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
