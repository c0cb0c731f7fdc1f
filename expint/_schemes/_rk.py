"""One generic stepper for every exponential Runge–Kutta tableau (Lawson and ETD).

Operators whose φ-functions are concrete objects (``Diagonal``, ``Dense``,
``ScalarTime``) get the tableau evaluated once per step size into coefficient
arrays, so a step is a handful of multiply–adds (the shape of a hand-written
Kassam–Trefethen loop).  ``MatrixFree`` operators get each stage as one
`expint.phiv` call per distinct node ``c`` appearing in that stage.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from .._backend import as_like, stack
from .._cache import LRUCache
from .._operators import EvaluatedCoefficients
from ._phiexpr import E, ExprBatch, PhiExpr
from ._tableau import ExpRKTableau

_CACHE = 8


class RKStepper:
    """Advance ``y' = L y + N(t, y)`` by one exponential RK step."""

    def __init__(self, tableau: ExpRKTableau, linear: Any, nonlinear: Any, cache: int = _CACHE):
        self.tab = tableau
        self.linear = linear
        self.nonlinear = nonlinear
        # which of the two operator protocols the step uses (decided once: an isinstance
        # check against a runtime protocol costs microseconds)
        self._evaluated_coefficients = isinstance(linear, EvaluatedCoefficients)
        self._fusing = self._evaluated_coefficients and getattr(linear, "fusable", False)
        self.nfev = 0
        self._coeffs = LRUCache(cache)
        self._fused = LRUCache(cache)
        # stage i: (exp(c_i hL) expr, [(j, a_ij expr)]); then the update
        self._rows = [(tableau.stage_exp[i], tableau.row(i)) for i in range(tableau.stages)]
        self._final = (E(1.0), [(i, b) for i, b in enumerate(tableau.b) if b])
        # an embedded pair's error row: no e^{hL} u term, weights on the stages (and on
        # N(t + h, u_{n+1}) for FSAL, index s)
        self._error = (PhiExpr(), [(i, e) for i, e in enumerate(tableau.b_err) if e])
        self._error_at = tableau.stages + 1
        # a pair blind to the quadrature error: its defects D_k, evaluated as one more
        # row (weights h·D_k(hL)), and the accepted (t, N) it interpolates
        self._defects = tableau.quadrature_defects
        quad = [(PhiExpr(), list(enumerate(self._defects)))] if self._defects else []
        # the accepted (t, N) the term interpolates, oldest first: references to values
        # the steps computed anyway, so the weights depend on the node pattern alone
        self._accepted: deque[tuple[float, Any]] = deque(maxlen=len(self._defects) + 2)
        self._weights = LRUCache(cache)
        self._all_rows = [*self._rows, self._final] + ([self._error] if tableau.adaptive else []) + quad
        # each row's exponential, None where it is the identity (or absent: the error row)
        self._exps = [None if _is_identity(e) or not e else e for e, _ in self._all_rows]
        self._batch: ExprBatch | None = None  # built on first use by an operator with `phi_batch`

    # -- coefficients -----------------------------------------------------------------
    @property
    def evaluated_coefficients(self) -> bool:
        """True when the operator's φ-coefficients are concrete (the hot-loop path)."""
        return self._evaluated_coefficients

    def coefficients(self, h: float, t: float, like: Any) -> list:
        """The tableau evaluated at step ``h`` from ``t`` for states like ``like`` (cached):
        one ``(exp coefficient or None, [(j, a_ij coefficient)])`` per stage, then the
        update row and, for a pair, the error row."""
        return self._evaluated(h, t, like)

    def _evaluated(self, h: float, t: float, like: Any) -> list:
        key = (h, t if self.linear.time_dependent else None)
        hit = self._coeffs.get(key)
        if hit is not None:
            return hit
        lin = self.linear
        rows, exps = self._all_rows, self._exps
        if getattr(lin, "batches", False):
            # the whole tableau as one linear map of the φ-values (`ExprBatch`)
            if self._batch is None:
                weights = [a for _, r in rows for _, a in r]
                self._batch = ExprBatch([e for e in exps if e is not None] + weights)
            n_exp = sum(e is not None for e in exps)
            scale = np.full(len(self._batch.identity), float(h))
            scale[:n_exp] = 1.0  # the exponentials carry no factor h
            coefs = iter(lin.phi_batch(h, self._batch, scale, like))
        else:
            lin.prefetch(h, [e for r in rows for e in [r[0], *(a for _, a in r[1])]], t)
            coefs = iter(
                [lin.phi_expr(h, e.terms, t, like) for e in exps if e is not None]
                + [lin.phi_expr(h, (h * a).terms, t, like) for _, r in rows for _, a in r]
            )
        firsts = [None if e is None else next(coefs) for e in exps]
        out = [(e, [(j, next(coefs)) for j, _ in row]) for e, (_, row) in zip(firsts, rows, strict=True)]
        return self._coeffs.put(key, out)

    # -- the step ---------------------------------------------------------------------
    def step(self, t: float, h: float, u: Any, n0: Any = None, stages: list | None = None) -> Any:
        """``u(t + h)`` from ``u(t)``; ``n0 = N(t, u)`` may be passed if already known
        (used only when the first node is ``c_1 = 0``); a list passed as ``stages``
        receives the stage values ``N_i`` (for dense output)."""
        return self._stages(t, h, u, n0, [] if stages is None else stages)

    def step_with_error(
        self,
        t: Any,
        h: Any,
        u: Any,
        n0: Any = None,
        stages: list | None = None,
        coeffs: list | None = None,
    ) -> tuple[Any, Any, Any]:
        """``(u_{n+1}, err, n_next)`` for an embedded pair: the step, the error estimate
        ``h Σ_i e_i(hL) N_i`` and, for FSAL pairs, ``N(t + h, u_{n+1})`` (pass it as
        ``n0`` of the next step; ``None`` otherwise).  ``stages`` as in `step`.

        ``coeffs`` (evaluated operators only): coefficients from `coefficients`, or
        stacked per batch member with ``t`` and ``h`` arrays of shape ``(batch, 1)``
        (per-sample step sizes, `expint._batch_steps`)."""
        if not self.tab.adaptive:
            raise TypeError(f"scheme {self.tab.name!r} has no error estimate")
        n_vals: list[Any] = [] if stages is None else stages
        if coeffs is not None:
            u_new = self._step_evaluated(t, h, u, n0, n_vals, coeffs)
        else:
            u_new = self._stages(t, h, u, n0, n_vals)
        n_stages = len(n_vals)
        n_next = None
        if self.tab.fsal:
            self.nfev += 1
            n_next = self.nonlinear(t + h, u_new)
            n_vals.append(n_next)
        # the quadrature term's vectors (shared steps; per-sample: `expint._batch_steps`)
        quadrature = None
        if self._defects and coeffs is None:
            quadrature = self._quadrature_vectors(t, h, n_vals[0], n_next)
        if coeffs is None and self._fusing:
            # the error row, after the update, with the quadrature term's rows fused in
            idx, fused = self._fused_rows(h, t, u)[-1]
            vectors = [n_vals[j] for j in idx]
            if self._defects:
                have = [] if quadrature is None else quadrature
                vectors += have + [n_vals[0] * 0] * (len(self._defects) - len(have))  # (the first steps)
            err = self.linear.apply_fused(fused, vectors)
        else:
            if self._evaluated_coefficients:
                apply = self.linear.apply_coefficient
                row = (coeffs if coeffs is not None else self._evaluated(h, t, u))[self._error_at][1]
                err = None
                for j, a in row:
                    term = apply(a, n_vals[j])
                    err = term if err is None else err + term
            else:
                parts = [(n_vals[j], h * e) for j, e in self._error[1]]
                err = _combine_grouped(self.linear, h, t, u, PhiExpr(), parts)
            if quadrature is not None:
                err = err + self.quadrature_error(h, t, u, quadrature)
        del n_vals[n_stages:]  # the caller's stages are those of the step
        return u_new, err, n_next

    @property
    def quadrature_blind(self) -> bool:
        """Whether the pair's estimate needs the quadrature term (`quadrature_error`)."""
        return bool(self._defects)

    def _quadrature_vectors(self, t: float, h: float, n_start: Any, n_end: Any) -> list | None:
        """The vectors ``v_k`` of the quadrature term of a shared step (`quadrature_error`)
        from the accepted ``(t, N)`` this stepper keeps (a retry of a rejected step starts
        from the same ``t`` and adds no point) and ``n_end = N(t + h, u_{n+1})``; ``None``
        while too few points are known.  Steps on the size ladder repeat their node
        pattern, whose weights are kept."""
        if not self._accepted or self._accepted[-1][0] != t:
            self._accepted.append((t, n_start))
        # in units of the step: steps on the size ladder repeat a few patterns
        nodes = (*(round((tj - t) / h, 12) for tj, _ in self._accepted), 1.0)
        weights = self._weights.get(nodes)
        if weights is None:
            usable = min(len(self._defects), len(nodes) - 3)  # derivatives the points resolve
            weights = ()
            if usable >= 1:
                found = derivative_weights(np.array([nodes]), len(self._defects))[0, :usable]
                # in the state's dtype: a product of mixed types converts on every step
                weights = as_like(found, n_end)
            self._weights.put(nodes, weights)
        if len(weights) == 0:
            return None
        values = stack([*(n for _, n in self._accepted), n_end]).reshape(len(nodes), -1)
        return list((weights @ values).reshape(len(weights), *n_end.shape))

    def quadrature_error(self, h: Any, t: Any, u: Any, vectors: list[Any], coeffs: list | None = None) -> Any:
        r"""``Σ_k h D_k(hL) v_k`` for ``v_k = −(k−1)! α_{k−1}`` (`derivative_weights`; the
        first ``len(vectors)`` defects, fewer where the points resolve fewer):
        the leading quadrature error ``−Σ_k h^k D_k(hL) p^{(k−1)}(t)`` of a step whose
        estimate cannot see it (`ExpRKTableau.quadrature_defects`), with ``p`` the
        polynomial through ``N`` on the computed solution at the last accepted steps and
        at ``t + h`` (the FSAL value).  Those values are as accurate as the solution, so
        their differences measure ``g(s) = N(s, u(s))``, not the stages' errors.
        ``coeffs``: stacked per-sample coefficients, as for `step_with_error`."""
        if self._evaluated_coefficients:
            apply = self.linear.apply_coefficient
            row = (coeffs if coeffs is not None else self._evaluated(h, t, u))[-1][1]
            out = apply(row[0][1], vectors[0])
            for (_, a), v in zip(row[1 : len(vectors)], vectors[1:], strict=True):
                out = out + apply(a, v)
            return out
        parts = [(v, h * d) for v, d in zip(vectors, self._defects[: len(vectors)], strict=True)]
        return _combine_grouped(self.linear, h, t, u, PhiExpr(), parts)

    def dense(self, t: float, h: float, u: Any, stages: list, theta: float) -> Any:
        """``u(t + θh)`` from a step's start ``u``, its stage values and the continuous
        extension of the tableau (see `ExpRKTableau.dense_weights`)."""
        exp_expr, b = self.tab.dense_weights(theta)
        parts = [(stages[i], h * bi) for i, bi in enumerate(b) if bi]
        return combine_once(self.linear, self._evaluated_coefficients, h, t, u, exp_expr, parts)

    def _stages(self, t: float, h: float, u: Any, n0: Any, n_vals: list[Any]) -> Any:
        if self._evaluated_coefficients:
            return self._step_evaluated(t, h, u, n0, n_vals)
        return self._step_krylov(t, h, u, n0, n_vals)

    def _stage_value(self, i: int, t: float, h: float, stage: Any, n0: Any) -> Any:
        if i == 0 and n0 is not None and self.tab.c[0] == 0.0:
            return n0
        self.nfev += 1
        return self.nonlinear(t + self.tab.c[i] * h, stage)

    def _fused_rows(self, h: float, t: float, like: Any) -> list:
        """Per stage (then the update): ``(indices into [u, N_1, N_2, …], fused)`` with
        ``fused`` the operator's `fuse` of those vectors' coefficients (``None`` for a
        stage value that is ``u`` itself); for a pair, last, the error row as
        ``(indices into [N_1, N_2, …], fused)``."""
        key = (h, t if self.linear.time_dependent else None)
        hit = self._fused.get(key)
        if hit is not None:
            return hit
        out = []
        rows = self._evaluated(h, t, like)
        for e, row in rows[: self.tab.stages + 1]:
            idx = [0] + [j + 1 for j, _ in row]
            coefs = [e] + [a for _, a in row]
            if e is None:  # the exponential is the identity: e^{0·hL} u = u
                if not row:
                    out.append(([0], None))
                    continue
                coefs[0] = self.linear.phi_expr(h, {(0, 0.0, 0.0): 1.0}, t, like)
            out.append((idx, self.linear.fuse(coefs)))
        if self.tab.adaptive:
            error_row = rows[self._error_at][1]
            coefs = [a for _, a in error_row] + ([a for _, a in rows[-1][1]] if self._defects else [])
            out.append(([j for j, _ in error_row], self.linear.fuse(coefs)))
        return self._fused.put(key, out)

    def _step_fused(self, t: Any, h: Any, u: Any, n0: Any, n_vals: list[Any]) -> Any:
        fuse = self.linear.apply_fused
        vals = [u]  # u, then N_1, N_2, …: the indices of `_fused_rows`
        last = self.tab.stages
        for i, (idx, fused) in enumerate(self._fused_rows(h, t, u)):
            acc = u if fused is None else fuse(fused, [vals[j] for j in idx])
            if i == last:
                return acc
            n_i = self._stage_value(i, t, h, acc, n0)
            n_vals.append(n_i)
            vals.append(n_i)
        raise AssertionError("unreachable")  # pragma: no cover

    def _step_evaluated(
        self, t: Any, h: Any, u: Any, n0: Any, n_vals: list[Any], coeffs: list | None = None
    ) -> Any:
        if coeffs is None and self._fusing:
            return self._step_fused(t, h, u, n0, n_vals)
        lin = self.linear  # this loop is the hot path: bind the apply function once
        apply = lin.apply_coefficient
        if coeffs is None:
            coeffs = self._evaluated(h, t, u)
        last = self.tab.stages
        for i, (e, row) in enumerate(coeffs):
            acc = u if e is None else apply(e, u)
            for j, a in row:
                acc = acc + apply(a, n_vals[j])
            if i == last:
                return acc
            n_vals.append(self._stage_value(i, t, h, acc, n0))
        raise AssertionError("unreachable")  # pragma: no cover

    def _step_krylov(self, t: float, h: float, u: Any, n0: Any, n_vals: list[Any]) -> Any:
        for i, (exp_expr, row) in enumerate([*self._rows, self._final]):
            acc = _combine_grouped(self.linear, h, t, u, exp_expr, [(n_vals[j], h * a) for j, a in row])
            if i == len(self._rows):
                return acc
            n_vals.append(self._stage_value(i, t, h, acc, n0))
        raise AssertionError("unreachable")  # pragma: no cover


def derivative_weights(s: np.ndarray, count: int) -> np.ndarray:
    """Weights ``w[b, i, j]`` with ``Σ_j w[b, i, j] g_j = −(k−1)! α_{k−1}``, ``k = 4 + i``,
    where ``Σ_m α_m s^m`` interpolates values ``g_j`` at nodes ``s[b, j]`` (in units of
    the step, from its start); rows of nodes padded with NaN after their last point
    get zero weights there, and zero weights for every ``k`` their points cannot
    resolve (``k − 1 ≥`` the number of points).

    Only the two highest coefficients of the interpolant are needed, and Newton's form
    gives them from divided differences: ``α_{m−1} = f[s_0…s_{m−1}]`` and
    ``α_{m−2} = f[s_0…s_{m−2}] − (s_0 + … + s_{m−2}) f[s_0…s_{m−1}]``, with
    ``f[s_0…s_k] = Σ_{j≤k} g_j / Π_{i≤k, i≠j} (s_j − s_i)``."""
    batch, width = s.shape
    out = np.zeros((batch, count, width))
    counts = np.sum(~np.isnan(s), axis=1)
    for m in np.unique(counts):
        m = int(m)
        if min(count, m - 3) < 1:
            continue
        rows = np.flatnonzero(counts == m)
        nodes = s[rows, :m]
        gaps = nodes[:, :, None] - nodes[:, None, :]  # s_j − s_i
        gaps[:, np.arange(m), np.arange(m)] = 1.0
        top = 1.0 / np.prod(gaps, axis=2)  # f[s_0…s_{m−1}]: all m points
        below = np.zeros_like(top)  # f[s_0…s_{m−2}]: the first m − 1
        below[:, : m - 1] = 1.0 / np.prod(gaps[:, : m - 1, : m - 1], axis=2)
        highest = top  # α_{m−1}, the derivative of order m − 1
        second = below - np.sum(nodes[:, : m - 1], axis=1, keepdims=True) * top  # α_{m−2}
        # k − 1 = 3 (and 4): α_3 is `highest` with four points, `second` with five
        alphas = {m - 1: highest, m - 2: second}
        for i in range(min(count, m - 3)):
            out[rows, i, :m] = -math.factorial(3 + i) * alphas[3 + i]
    return out


def combine_once(
    linear: Any,
    evaluated: bool,
    h: float,
    t: float,
    u: Any,
    exp_expr: PhiExpr,
    parts: list[tuple[Any, PhiExpr]],
) -> Any:
    """``exp_expr(hL) u + Σ expr(hL) vec`` over ``parts = [(vec, expr)]`` for a one-off
    set of weights (a continuous extension at some θ): evaluated coefficients where the
    operator has them (``evaluated``), uncached; grouped Krylov calls otherwise."""
    if not evaluated:
        return _combine_grouped(linear, h, t, u, exp_expr, parts)
    # every node's φ_0…φ_K in one evaluation: asked term by term, a term with a higher
    # index than the last would evaluate its node again
    linear.prefetch(h, [exp_expr, *(e for _, e in parts)], t)
    out = linear.apply_coefficient(linear.phi_expr(h, exp_expr.terms, t, u), u)
    for vec, expr in parts:
        out = out + linear.apply_coefficient(linear.phi_expr(h, expr.terms, t, u), vec)
    return out


def _is_identity(expr: PhiExpr) -> bool:
    return list(expr.terms) in ([(0, 0.0, 0.0)],) and expr.terms[(0, 0.0, 0.0)] == 1.0


def _combine_grouped(
    linear: Any,
    h: float,
    t: float,
    u: Any,
    exp_expr: PhiExpr,
    parts: list[tuple[Any, PhiExpr]],
    top_index: dict[tuple[float, float], int] | None = None,
) -> Any:
    """Σ over (c, s) groups of φ_k(c h L) W_k, one Krylov call per group.

    ``exp_expr`` multiplies ``u``; each part is ``(vector, expr)``.  ``top_index``
    (operators that cache φ_0…φ_K per node, not Krylov): the highest index the caller
    will ask for at each ``(c, s)`` in this step, requested on the first call so that
    one evaluation serves the step.
    """
    return _combine_grouped_many(linear, h, t, [[(u, exp_expr), *parts]], top_index)[0]


def _combine_grouped_many(
    linear: Any,
    h: float,
    t: float,
    combinations: list[list[tuple[Any, PhiExpr]]],
    top_index: dict[tuple[float, float], int] | None = None,
) -> list[Any]:
    """Several `_combine_grouped` sums (each a list of ``(vector, expr)``) on the same
    operator and step.  An operator with ``phi_combinations(h, c, wss, t)`` gets every
    sum's terms at a node in one call (one augmented exponential for all of them, on a
    formed Rosenbrock Jacobian); others one ``phi_combination`` call per sum and node.
    """
    grouped: list[dict[tuple[float, float], dict[int, Any]]] = []
    for parts in combinations:
        groups: dict[tuple[float, float], dict[int, Any]] = {}
        for vec, expr in parts:
            for cs, ks in expr.groups().items():
                slot = groups.setdefault(cs, {})
                for k, coef in ks.items():
                    term = vec * coef
                    slot[k] = term if k not in slot else slot[k] + term
        grouped.append(groups)
    outs: list[Any] = [None] * len(combinations)

    def accumulate(m: int, val: Any) -> None:
        outs[m] = val if outs[m] is None else outs[m] + val

    many = getattr(linear, "phi_combinations", None)
    nodes = list(dict.fromkeys(cs for groups in grouped for cs in groups))
    for c, s in nodes:
        present = [m for m, groups in enumerate(grouped) if (c, s) in groups]
        if c == 0.0:  # φ_k(0) = 1/k!
            for m in present:
                accumulate(m, sum(w / math.factorial(k) for k, w in grouped[m][(c, s)].items()))
            continue
        wss = []
        for m in present:
            ks = grouped[m][(c, s)]
            top = max(ks) if top_index is None else max(max(ks), top_index.get((c, s), 0))
            wss.append([ks.get(k) for k in range(top + 1)])
        if many is not None and len(wss) > 1:
            vals = many(h, c, wss, t + s * h)
        else:
            vals = [linear.phi_combination(h, c, ws, t + s * h) for ws in wss]
        for m, val in zip(present, vals, strict=True):
            accumulate(m, val)
    return outs
