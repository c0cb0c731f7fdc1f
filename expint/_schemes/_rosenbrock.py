r"""Exponential Rosenbrock schemes: re-linearise around the current state every step.

With $F(t, u) = L(t) u + N(t, u)$, $J_n = L(t_n) + \partial_u N(t_n, u_n)$,
$v_n = \partial_t F(t_n, u_n) = L'(t_n) u_n + \partial_t N(t_n, u_n)$ and the remainder
$g_n(t, u) = F(t, u) - J_n u - v_n (t - t_n)$ (Hochbruck, Ostermann & Schweitzer
2009), a scheme with nodes $c_i$ is

$$
U_i = u_n + h c_i φ_1(c_i h J_n) F_n + h^2 c_i^2 φ_2(c_i h J_n) v_n
      + h \sum_{j<i} a_{ij}(h J_n) D_j,\qquad D_j = g_n(t_n + c_j h, U_j) - g_n(t_n, u_n),
$$

$u_{n+1} = u_n + h φ_1(hJ_n) F_n + h^2 φ_2(hJ_n) v_n + h \sum_i b_i(hJ_n) D_i$, and the
error estimate $h \sum_i (b_i - \hat b_i)(hJ_n) D_i$.  The $v_n$ terms make the
time-dependent problem autonomous (without them the order drops to 1 when $N$
depends on $t$).

Every product with a φ-function of $hJ_n$ is one Krylov approximation (`expint.phiv`)
on the operator $v \mapsto L v + \partial_u N\, v$, so the linear part may be any
operator.  Jacobian–vector products come from the problem's ``jvp`` if it has one, else
``torch.func.jvp`` for real tensors, else a forward difference
$(N(u + εv) - N(u))/ε$, $ε = \sqrt{\text{eps}}\,(1 + \|u\|)/\|v\|$.

Small systems (at most `RosenbrockStepper.dense_max` real unknowns) form $J_n$ as a
matrix instead: the columns of $\partial_u N$ from ``jvp``, by ``torch.func.jacfwd`` for
tensors (on the real view for complex ones; the Krylov products by ``torch.func.jvp``
it replaces cost ~1 ms each on a CPU), or by central differences (error ~eps^{2/3},
against the forward difference's ~eps^{1/2}: a Jacobian error δ adds δ·(U_j − u_n) to
the defects, which is what floors the forward-difference Krylov path near 1e-8), one
batched call where ``N`` takes a batch.  Its φ-products: one symmetric
eigendecomposition (`expint.Dense`) when $J_n$ is symmetric (a diffusion operator plus a
pointwise reaction), one general one up to `RosenbrockStepper.dense_eig_max` unknowns
when its eigenvectors are well conditioned; otherwise, up to
`RosenbrockStepper.dense_expm_max` unknowns, one
exponential of the augmented matrix $\begin{pmatrix} chJ_n & W \\ 0 & J_p
\end{pmatrix}$ per φ-combination, the update and the error estimate sharing one
(`_FormedJacobian`); above that, Krylov on the formed
matrix.  On a stiff problem this is what makes a step cheap: Krylov on $hJ_n$ with
$\|hJ_n\| \sim 10^3$–$10^5$ needs hundreds of products per step.

A complex state is handled as the real vector of its real and imaginary parts: ``N`` is
often not complex-differentiable (``|u|²u``, ``Re(ifft(·))``), so its Jacobian is only
real-linear.
One state at a time: each state has its own Jacobian, so `expint.solve` runs a batch
member by member (`expint._members`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._backend import (
    all_finite,
    concat,
    is_complex,
    is_torch_array,
    make_complex,
    records_gradients,
    stack,
    to_like,
    to_numpy,
    vector_norm,
)
from .._operators import Dense, MatrixFree
from .._phi import phi_combinations_expm
from ._phiexpr import P, PhiExpr, _phi_scalar
from ._rk import _combine_grouped, _combine_grouped_many


@dataclass(frozen=True)
class RosenbrockTableau:
    """Data of an exponential Rosenbrock pair (module docstring); ``a[(i, j)]`` and
    ``b``, ``b_err`` weight the defects ``D_j`` (``D_1 = 0``, so index 0 is unused)."""

    name: str
    c: tuple[float, ...]
    a: dict[tuple[int, int], PhiExpr]
    b: tuple[PhiExpr, ...]
    b_err: tuple[PhiExpr, ...]
    order: int
    embedded_order: int
    description: str = ""
    stages: int = field(init=False)

    def __post_init__(self) -> None:
        s = len(self.c)
        object.__setattr__(self, "stages", s)
        if self.c[0] != 0.0 or len(self.b) != s or len(self.b_err) != s:
            raise ValueError(f"{self.name}: c must start at 0 and b, b_err have one entry per stage")
        if self.b[0] or self.b_err[0] or any(j == 0 for _, j in self.a):
            raise ValueError(f"{self.name}: D_1 = 0, so no weight may act on stage 1")
        # the quadrature conditions of HOS 2009 (Table 1) as functions of z; the other
        # stiff conditions involve a_ij and hold by construction of the published pairs
        for z in (0.0, -1.7, 0.6 + 0.4j):
            self._check(self.b, self.order, z, "b")
            self._check(
                tuple(bi - ei for bi, ei in zip(self.b, self.b_err, strict=True)), self.embedded_order, z, "b̂"
            )

    @property
    def dense_order(self) -> int:
        """Order of the continuous extension (`RosenbrockStepper.dense`): the step's own.
        Its weights over ``[0, θh]`` satisfy the quadrature conditions checked above at
        every ``θ`` (``φ_k(z) ↦ θ^k φ_k(θz)`` maps each side onto the other), and the
        local errors measured in tests/test_rosenbrock.py are ``O(h^{p+1})`` at
        ``θ = 0.3`` and ``0.5`` for both pairs."""
        return self.order

    def _check(self, b: tuple[PhiExpr, ...], order: int, z: complex, which: str) -> None:

        def val(e: PhiExpr) -> complex:
            return e.scalar(z) if z != 0 else complex(e.at_zero())

        # order 3: Σ b_i c_i²/2 = φ_3; order 4 adds Σ b_i c_i³/6 = φ_4 (the weights act on
        # defects D_i = O(c_i² h²), so there are no conditions of order 1 and 2)
        conds = [(2, 3)] if order >= 3 else []
        if order >= 4:
            conds.append((3, 4))
        for power, k in conds:
            lhs = sum(val(bi) * ci**power / math.factorial(power) for bi, ci in zip(b, self.c, strict=True))
            rhs = 1 / math.factorial(k) if z == 0 else _phi_scalar(z)[k]
            if abs(lhs - rhs) > 1e-12 * max(1.0, abs(rhs)):
                raise ValueError(f"{self.name}: weights {which} fail the order-{order} condition at z = {z}")


def rosenbrock_tableaus() -> list[RosenbrockTableau]:
    """``exprb32`` and ``exprb43`` (Hochbruck, Ostermann & Schweitzer 2009)."""
    p3, p4 = P(3), P(4)
    zero = PhiExpr()
    return [
        RosenbrockTableau(
            "exprb32",
            (0.0, 1.0),
            {},
            (zero, 2 * p3),
            (zero, 2 * p3),
            3,
            2,
            "exponential Rosenbrock–Euler with a third-order correction: 3(2) pair",
        ),
        RosenbrockTableau(
            "exprb43",
            (0.0, 0.5, 1.0),
            {(2, 1): P(1)},
            (zero, 16 * p3 - 48 * p4, -2 * p3 + 12 * p4),
            (zero, -48 * p4, 12 * p4),
            4,
            3,
            "exponential Rosenbrock 4(3) pair",
        ),
    ]


class _RealView:
    """Complex vectors of length n as real vectors of length 2n (and back)."""

    def __init__(self, complex_state: bool):
        self.on = complex_state

    def real(self, v: Any) -> Any:
        return concat([v.real, v.imag], axis=-1) if self.on else v

    def back(self, x: Any) -> Any:
        if not self.on:
            return x
        n = x.shape[-1] // 2
        return make_complex(x[..., :n], x[..., n:])


@dataclass
class _Linearisation:
    """One step's linearisation: the real view, ``J_n`` as an operator, ``F_n`` and
    ``v_n`` on the real view, the remainder ``g`` and ``g_0 = g(t_n, u_n)``, and the
    highest φ index per node to request (None for Krylov)."""

    view: _RealView
    jac: Any
    fr: Any
    vr: Any
    g: Any
    g0: Any
    top: dict[tuple[float, float], int] | None


class RosenbrockStepper:
    """Advance by one exponential Rosenbrock step (module docstring)."""

    #: relative tolerance of every Krylov product: far below the schemes' own errors, so
    #: that the time discretisation is what a convergence study or tolerance measures
    krylov_tol = 1e-12
    #: largest real dimension for which J_n is formed as a matrix (numpy states): its
    #: columns cost that many products, and a symmetric eigendecomposition of this size
    #: a few milliseconds
    dense_max = 256
    #: largest real dimension for which a formed non-symmetric J_n is eigendecomposed
    #: first (kept where its eigenvectors are well conditioned): this small, a general
    #: eigensolver costs about what the two to four augmented exponentials replacing it
    #: do (Allen–Cahn, 19 unknowns: the same time either way in alternating runs), while
    #: at 64 the exponentials were 1.4–2.2× faster on NLS (`benchmarks/rosenbrock_small.py`)
    dense_eig_max = 32
    #: largest real dimension for which the φ-products of a formed non-symmetric J_n are
    #: exponentials of the augmented matrix (`_FormedJacobian`), whose cost grows like
    #: (m + p)³: at 256 (KS with 128 modes) they were slower than Krylov on the formed
    #: matrix in a comparison made while choosing this limit
    dense_expm_max = 128

    def __init__(
        self, tableau: RosenbrockTableau, linear: Any, nonlinear: Any, jvp: Any = None, jac: Any = None
    ):
        self.tab = tableau
        self.linear = linear
        self.nonlinear = nonlinear
        self.user_jvp = jvp
        self.user_jac = jac
        self.nfev = 0
        self.krylov_matvecs = 0
        self._batched: dict[str, bool] = {}  # whether `nonlinear`/`jvp` take a batch (once known)
        self._l_matrix: np.ndarray | None = None  # L on the real view, for the formed J_n
        # the highest φ index at each node over a whole step: a formed J_n then gets its
        # φ_0…φ_K at a node from one evaluation per step, not one per stage that needs
        # a higher index than the last
        self._top_index: dict[tuple[float, float], int] = {}
        exprs = [P(1), P(2), *tableau.a.values(), *tableau.b, *tableau.b_err]
        exprs += [P(k, c) for c in tableau.c[1:] for k in (1, 2)]
        for expr in exprs:
            if isinstance(expr, PhiExpr):
                for cs, ks in expr.groups().items():
                    self._top_index[cs] = max(self._top_index.get(cs, 0), max(ks))

    def _n(self, t: float, u: Any) -> Any:
        self.nfev += u.shape[0] if u.ndim > 1 else 1  # a batch of states counts each
        return self.nonlinear(t, u)

    def _krylov(self, matvec: Any, m: int) -> MatrixFree:
        return MatrixFree(matvec, m, tol=self.krylov_tol, m=40)

    def _jvp(self, t: float, u: Any, n_u: Any) -> Any:
        """``v -> ∂N(t, u)/∂u · v``."""
        if self.user_jvp is not None:
            return lambda v: _checked_jvp(self.user_jvp(t, u, v), v)
        if is_torch_array(u) and not is_complex(u):
            import torch.func

            def tj(v: Any) -> Any:
                self.nfev += 1
                return torch.func.jvp(lambda y: self.nonlinear(t, y), (u,), (v,))[1]

            return tj
        scale = 1.0 + vector_norm(u)

        def fd(v: Any) -> Any:
            nv = vector_norm(v)
            if nv == 0.0:
                return v * 0
            eps = math.sqrt(np.finfo(float).eps) * scale / nv
            return (self._n(t, u + eps * v) - n_u) / eps

        return fd

    def step(self, t: float, h: float, u: Any, n0: Any = None, stages: list | None = None) -> Any:
        """``u(t + h)``; a list passed as ``stages`` receives what `dense` needs."""
        return self._step(t, h, u, n0, with_error=False, stages=stages)[0]

    def step_with_error(
        self, t: float, h: float, u: Any, n0: Any = None, stages: list | None = None
    ) -> tuple:
        u_new, err = self._step(t, h, u, n0, with_error=True, stages=stages)
        return u_new, err, None

    def dense(self, t: float, h: float, u: Any, stages: list, theta: float) -> Any:
        r"""``u(t + θh)`` from a step's start ``u`` and its record: the step's weights
        over the fraction ``θ`` (`PhiExpr.over_fraction`) on the same ``J_n``, ``F_n``,
        ``v_n`` and defects ``D_i``.  ``J_n`` is formed again from ``u`` (the record keeps
        ``N(t, u)`` and the defects, not an ``n × n`` matrix per step), the same way the
        step formed it."""
        n_u, defects = stages[0]
        lin = self._linearise(t, u, n_u)
        parts = [(lin.fr, h * P(1).over_fraction(theta)), (lin.vr, h * h * P(2).over_fraction(theta))]
        parts += [(defects[i], h * b.over_fraction(theta)) for i, b in enumerate(self.tab.b) if b]
        out = u + lin.view.back(_combine_grouped(lin.jac, h, t, lin.fr * 0, PhiExpr(), parts))
        return out if out.dtype == u.dtype else to_like(out, u)  # as `_step`: the state's precision

    def _step(
        self, t: float, h: float, u: Any, n0: Any, with_error: bool, stages: list | None = None
    ) -> tuple[Any, Any]:
        if u.ndim != 1:
            raise ValueError(
                f"scheme {self.tab.name!r} integrates one state at a time (shape (n,)); each state of a "
                "batch has its own Jacobian (expint.solve runs a batch member by member)"
            )
        n_u = self._n(t, u) if n0 is None else n0
        if records_gradients(u) or records_gradients(n_u):
            raise ValueError(
                f"scheme {self.tab.name!r} takes the φ-functions of its Jacobian J_n = L + ∂N/∂y on the "
                "host (numpy), which autograd cannot follow: gradients would miss J_n's dependence on the "
                "state and on N's parameters.  For gradients use an exponential Runge–Kutta scheme (e.g. "
                "krogstad43, etdrk4) on a Diagonal or ScalarTime linear part; for exprb without gradients, "
                "pass y0.detach() and solve under torch.no_grad()"
            )
        lin = self._linearise(t, u, n_u)
        view, jac, fr, vr, top = lin.view, lin.jac, lin.fr, lin.vr, lin.top
        if top is not None and getattr(jac, "spectral", False):
            # every node's φ_0…φ_K on J_n's eigenvalues in one evaluation (a new J every step)
            jac.prefetch(h, [P(k, c) for (c, _), k in top.items() if c], t)
        defects: list[Any] = [None]
        for i in range(1, self.tab.stages):
            ci = self.tab.c[i]
            parts = [(fr, h * ci * P(1, ci)), (vr, h * h * ci * ci * P(2, ci))]
            parts += [(defects[j], h * a) for (ii, j), a in self.tab.a.items() if ii == i]
            stage = u + view.back(_combine_grouped(jac, h, t, fr * 0, PhiExpr(), parts, top))
            defects.append(view.real(lin.g(t + ci * h, stage) - lin.g0))
        parts = [(fr, h * P(1)), (vr, h * h * P(2))]
        parts += [(defects[i], h * b) for i, b in enumerate(self.tab.b) if b]
        err = None
        if with_error:  # the update and the estimate together: one exponential on a formed J_n
            eparts = [(defects[i], h * e) for i, e in enumerate(self.tab.b_err) if e]
            update, estimate = _combine_grouped_many(jac, h, t, [parts, eparts], top)
            err = view.back(estimate)
        else:
            update = _combine_grouped(jac, h, t, fr * 0, PhiExpr(), parts, top)
        u_new = u + view.back(update)
        if u_new.dtype != u.dtype:  # J_n's φ-functions are float64 (host): keep the state's precision
            u_new = to_like(u_new, u)
            err = None if err is None else to_like(err, u)
        if isinstance(jac, MatrixFree):
            self.krylov_matvecs += jac.krylov_info.matvecs
        if stages is not None:
            stages.append((n_u, defects))
        return u_new, err

    def _linearise(self, t: float, u: Any, n_u: Any) -> _Linearisation:
        """``J_n`` (as the operator the φ-functions act on), ``F_n``, ``v_n`` and the
        remainder ``g_n`` at ``(t, u)`` (module docstring); deterministic in its inputs,
        so `dense` gets the step's own ``J_n`` back."""
        lin = self.linear
        view = _RealView(is_complex(u))
        m = 2 * u.shape[-1] if view.on else u.shape[-1]
        jn = (
            self._user_jacobian(t, u, m)
            if self.user_jac is not None
            else self._dense_jacobian_of_n(t, u, view, m)
        )
        if jn is None:
            jv = self._jvp(t, u, n_u)
        else:

            def jv(w: Any) -> Any:  # one state or a batch of them (rows)
                return view.back(view.real(w) @ jn.T)

        dt = math.sqrt(np.finfo(float).eps) * max(1.0, abs(t))
        v_n = (self._n(t + dt, u) - n_u) / dt  # ∂F/∂t by a forward difference: ∂N/∂t …
        l_u = lin.apply(u, t)
        if lin.time_dependent:  # … + L'(t) u: without it the remainder g_n keeps a term
            # linear in t − t_n, and the order drops to 1 (errors halved per halved step)
            v_n = v_n + (lin.apply(u, t + dt) - l_u) / dt
        f_n = l_u + n_u

        def matvec(x: Any) -> Any:
            w = view.back(x)
            return view.real(lin.apply(w, t) + jv(w))

        jac = self._operator(matvec, m, jn, view, t)

        def g(tt: float, y: Any) -> Any:  # the remainder g_n(t, y) up to the constant g_n(t_n, u_n)
            out = self._n(tt, y) - jv(y) - v_n * (tt - t)
            # L(t) − L(t_n) vanishes for a constant linear part: skip two products per stage
            return out + (lin.apply(y, tt) - lin.apply(y, t)) if lin.time_dependent else out

        g0 = n_u - jv(u)  # g(t_n, u_n) without evaluating N again (the L terms cancel)
        # only an eigendecomposed J_n caches φ_0…φ_K per node; elsewhere padding costs work
        top = self._top_index if getattr(jac, "spectral", False) else None
        return _Linearisation(view, jac, view.real(f_n), view.real(v_n), g, g0, top)

    def _user_jacobian(self, t: float, u: Any, m: int) -> Any:
        """The problem's ``jac(t, u)``, checked, as an array like the state's real part."""
        out = self.user_jac(t, u)
        shape = tuple(getattr(out, "shape", ()))
        if shape != (m, m):
            what = "a complex state's real view" if is_complex(u) else "a real state"
            raise ValueError(
                f"jac(t, y) returned shape {shape}; for {what} of length {u.shape[-1]} it must be "
                f"({m}, {m}), the matrix ∂N/∂y" + (" on [Re y, Im y]" if is_complex(u) else "")
            )
        if is_complex(out):
            raise ValueError(
                "jac(t, y) returned a complex matrix; it must be real: for a complex state, the "
                "real matrix of ∂N/∂y on [Re y, Im y] (shape (2n, 2n))"
            )
        return to_like(out, u.real)

    def _dense_jacobian_of_n(self, t: float, u: Any, view: _RealView, m: int) -> Any:
        """``∂N/∂u`` at ``(t, u)`` as an ``(m, m)`` matrix on the real view, or ``None``
        (a large state: products only).  Columns from the problem's ``jvp``; else, for a
        tensor, by ``torch.func.jacfwd`` (`_torch_jacobian_of_n`); else (numpy) by central
        differences: their error, ~ε^{2/3} instead of the forward difference's ~ε^{1/2},
        is what lets the defects ``D_j`` stay second order down to tolerances near 1e-10
        (a Jacobian error δ adds ``δ·(U_j − u_n)`` to them)."""
        torch_state = is_torch_array(u)
        if m > self.dense_max or not (torch_state or isinstance(u, np.ndarray)) or not all_finite(u):
            return None
        if self.user_jvp is None and torch_state:
            return self._torch_jacobian_of_n(t, u, view)
        directions = view.back(to_like(np.eye(m), u.real))  # row k: the k-th real direction
        if self.user_jvp is not None:
            jn = view.real(self._rows("jvp", lambda d: _checked_jvp(self.user_jvp(t, u, d), d), directions)).T
        else:
            step = np.finfo(float).eps ** (1 / 3) * (1.0 + float(np.max(np.abs(u))))

            def n_at(y: Any) -> Any:
                return self._n(t, y)

            diff = self._rows("n", n_at, u + step * directions) - self._rows("n", n_at, u - step * directions)
            jn = view.real(diff).T / (2 * step)
        return jn if all_finite(jn) else None

    def _torch_jacobian_of_n(self, t: float, u: Any, view: _RealView) -> Any:
        """``∂N/∂u`` of a tensor state on the real view by ``torch.func.jacfwd`` (one
        vectorised call, on the state's device; for a complex state the derivative of
        ``x ↦ real(N(back(x)))``, which forward-mode autodiff takes through complex
        operations as real-linear maps), or ``None`` where ``N`` cannot be traced so
        (e.g. a custom ``autograd.Function`` without a ``vmap`` rule: remembered, and the
        step falls back to Krylov products, ~1 ms each by ``torch.func.jvp`` on a CPU).
        The Krylov products, where there still are any, are then matrix–vector
        products."""
        if self._batched.get("jacfwd") is False:
            return None
        import torch
        import torch.func

        def real_n(x: Any) -> Any:
            return view.real(self.nonlinear(t, view.back(x)))

        x = view.real(u)
        try:
            jn = torch.func.jacfwd(real_n)(x)
        except Exception:  # any failure to trace N: products by jvp instead
            self._batched["jacfwd"] = False
            return None
        m = x.shape[-1]
        if tuple(jn.shape) != (m, m) or jn.is_complex() or not bool(torch.isfinite(jn).all()):
            return None
        self.nfev += m  # m directional derivatives, as m evaluations of N
        return jn.to(x.dtype)

    def _rows(self, which: str, fn: Any, rows: Any) -> Any:
        """``fn`` of each row of ``rows``: one batched call where the user function treats
        leading axes as batch axes (as every expint problem does), else row by row.
        Which applies is found on the first call (remembered per ``which``): the batch
        must come back with the right shape and agree with the last row computed alone
        (``A @ y`` instead of ``y @ A.T`` would transpose a square batch silently)."""
        known = self._batched.get(which)
        if known is not False:
            try:
                out = fn(rows)
                ok = tuple(getattr(out, "shape", ())) == tuple(rows.shape)
            except Exception:  # any failure on a batch means: one state at a time
                ok = False
            if ok and known is None:
                last, alone = to_numpy(out[-1]), to_numpy(fn(rows[-1]))
                scale = float(np.max(np.abs(alone))) if alone.size else 0.0
                ok = bool(np.allclose(last, alone, rtol=1e-10, atol=1e-12 * scale))
            self._batched[which] = ok
            if ok:
                return out
        return stack([fn(r) for r in rows])

    def _operator(self, matvec: Any, m: int, jn: Any, view: _RealView, t: float) -> Any:
        """The operator whose φ-functions the step applies, for the formed
        ``J_n = L + ∂N/∂u`` (on the host, as `Dense` does for any state: for a tensor
        state ``J_n`` makes one trip there per step): `Dense` where it is symmetric (one
        symmetric eigendecomposition serves every node) or small with well-conditioned
        eigenvectors (`dense_eig_max`), `_FormedJacobian` (one augmented exponential per
        φ-combination) up to `dense_expm_max` unknowns, else Krylov on the
        formed matrix (a product is then one matrix–vector product instead of an
        evaluation of ``N``); Krylov on ``matvec`` where no matrix was formed."""
        if jn is None or m > self.dense_max:
            return self._krylov(matvec, m)
        host = to_numpy(jn)
        jmat = self._linear_matrix(m, view, t, jn) + host
        if np.array_equal(jmat, jmat.T):
            return Dense(jmat)
        if m <= self.dense_eig_max:
            dense = Dense(jmat)
            if dense.phi_method != "expm":  # well-conditioned eigenvectors
                return dense
        if m <= self.dense_expm_max:
            return _FormedJacobian(jmat)
        on_state = jmat if isinstance(jn, np.ndarray) else to_like(jmat, jn)
        return self._krylov(lambda x: on_state @ x, m)

    def _linear_matrix(self, m: int, view: _RealView, t: float, like: Any) -> np.ndarray:
        """``L`` on the real view as an ``(m, m)`` host matrix: one batched product with
        the identity (in ``like``'s array type, which ``L`` is applied to in the run),
        kept for the whole run unless ``L`` depends on time."""
        cached = self._l_matrix
        if cached is not None and cached.shape == (m, m) and not self.linear.time_dependent:
            return cached
        rows = view.real(self.linear.apply(view.back(to_like(np.eye(m), like)), t))  # row k: L e_k
        self._l_matrix = to_numpy(rows).T
        return self._l_matrix


class _FormedJacobian:
    r"""A formed, non-symmetric ``J_n`` (real ``m × m``, numpy) whose φ-combinations
    $\sum_k φ_k(chJ_n) w_k$ are each one exponential of an ``(m + p)``-sized augmented
    matrix (`expint._phi.phi_combination_expm`); `phi_combinations` puts several
    combinations at one node into one exponential (`expint._phi.phi_combinations_expm`:
    a step's update and error estimate: `(m + 2p)³` flops instead of `2(m + p)³`).

    A Rosenbrock step uses a ``J_n`` for two to four combinations and never again, so
    decomposing it is the wrong trade from a few dozen unknowns on: a general
    eigensolver costs several such exponentials, and its result is only as accurate as
    its eigenvector matrix is well conditioned — on Kuramoto–Sivashinsky a few states per
    hundred give ``κ₂(V) > 1000``, whose steps then ran Krylov at many times the cost.
    The exponential is backward stable whatever the conditioning of the eigenvectors."""

    spectral = False

    def __init__(self, a: np.ndarray):
        self.a = a

    def phi_combination(self, h: float, c: float, ws: list, t: float | None = None) -> Any:
        return self.phi_combinations(h, c, [ws], t)[0]

    def phi_combinations(self, h: float, c: float, wss: list[list], t: float | None = None) -> list:
        """Several combinations at one node from one augmented exponential
        (`expint._phi.phi_combinations_expm`): a step's update and its error estimate.
        The vectors are one state's (a Rosenbrock step integrates one state at a time)."""
        like = next((w for ws in wss for w in ws if w is not None), None)
        if like is None:
            return [None] * len(wss)
        host = [[None if w is None else to_numpy(w) for w in ws] for ws in wss]
        outs = phi_combinations_expm((c * h) * self.a, host)
        return [o if o is None or isinstance(like, np.ndarray) else to_like(o, like) for o in outs]


def _checked_jvp(out: Any, v: Any) -> Any:
    got = tuple(getattr(out, "shape", ()))
    if got != tuple(v.shape):
        raise ValueError(
            f"jvp(t, y, v) returned shape {got} for v of shape {tuple(v.shape)}; "
            "it must return ∂N/∂y · v, shaped like v"
        )
    return out
