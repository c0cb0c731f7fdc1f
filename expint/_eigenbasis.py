r"""Adaptive steps on a `Dense` linear part, taken in its eigenbasis.

With $A = V Λ V^{-1}$ (the decomposition `Dense` already uses for its φ-functions) and
$z = V^{-1} y$, the problem $y' = A y + N(t, y)$ is

$$
z' = Λ z + V^{-1} N(t, V z),
$$

whose linear part is diagonal.  A step of any exponential Runge–Kutta or Adams scheme
is the same in either coordinates (its coefficients are functions of $hA$, and
$φ(hA) = V φ(hΛ) V^{-1}$), so only the cost changes:

* in $y$, every new step size forms each of the tableau's φ-coefficients as an
  $n × n$ matrix, $O(E n^3)$ for $E$ coefficients, and a stage applies $k$ of them;
* in $z$, a new step size costs φ on $n$ eigenvalues, $O(E n)$, and a stage two
  products with $V$ or $V^{-1}$ (to evaluate $N$ at $y = V z$ and bring it back) plus
  element-wise work.

An adaptive run visits a new step size every few steps, so `expint.solve` takes its
steps in $z$ on a large enough operator (`EIGENBASIS_MIN_N`); so does a fixed-step run
on an irregular grid, or one whose dense output or events evaluate the continuous
extension at new fractions θ of a step (weights that are φ-functions of $θhA$).  A
fixed-step run on a uniform grid forms its matrices once and stays in $y$, where a
stage is one product (`benchmarks/allen_cahn_scaling.py` and
`benchmarks/dense_queries.py` measure both).

Only the stepper works in $z$ (`EigenbasisStepper`): the step loops, the error norm
(per-component tolerances keep their meaning), saved states, dense output and events
all see $y$.  Each step maps its start into $z$ (free when it is the previous step's end,
which the stepper remembers) and its end, error estimate and FSAL value back: three or
four products with an $n × n$ matrix per step.  The transformation's relative error is
about $κ_2(V)$ times the rounding unit, which `Dense` bounds (≤ 1000) before it uses the
decomposition at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._backend import is_complex
from ._operators import Dense, Diagonal, _coefficient_like

#: Smallest `Dense` size whose runs step in the eigenbasis.  Below it the matrices are
#: cheap (a stack of coefficients is one product with the ``n`` rank-one matrices of
#: the decomposition) and the extra products per step cost about what they save
#: (`benchmarks/eigenbasis_threshold.py` times adaptive runs both ways against the
#: size; docs/benchmarks.md has its table).
EIGENBASIS_MIN_N = 36


class Eigenbasis:
    r"""$Λ$ as a `Diagonal` operator and the maps $y ↦ z = V^{-1} y$, $z ↦ y = V z$ on
    the trailing axis, with $V$ and $V^{-1}$ converted once per kind of state."""

    def __init__(self, lam: np.ndarray, v: np.ndarray, v_inv: np.ndarray):
        self.diagonal = Diagonal(lam)
        self._vt, self._v_inv_t = np.ascontiguousarray(v.T), np.ascontiguousarray(v_inv.T)
        self._like: dict[Any, tuple[Any, Any]] = {}

    def _matrices(self, like: Any) -> tuple[Any, Any]:
        # called twice per stage: a dict lookup on the dtype object (its str() costs µs)
        key = like.dtype if type(like) is np.ndarray else (type(like), like.dtype, like.device)
        hit = self._like.get(key)
        if hit is None:
            hit = (_coefficient_like(self._v_inv_t, like), _coefficient_like(self._vt, like))
            self._like[key] = hit
        return hit

    def to_eig(self, y: Any) -> Any:
        return y @ self._matrices(y)[0]

    def from_eig(self, z: Any) -> Any:
        return z @ self._matrices(z)[1]


def eigenbasis_for(linear: Any, y0: Any) -> Eigenbasis | None:
    """The `Eigenbasis` of a `Dense` linear part for steps on states like ``y0`` (the
    caller decides whether its run changes step size often enough to need it), or
    ``None`` where the steps stay in the original coordinates: a small or
    non-`Dense` operator, no well-conditioned decomposition (`Dense.phi_method` is
    ``"expm"``), or a real state whose operator has complex eigenvectors (the steps
    would run in complex arithmetic, twice the work of the real products they
    replace).  Kept on the operator, so repeated solves share the decomposition's
    φ-values (`Dense.clear_cache` forgets them)."""
    if type(linear) is not Dense or linear.n < EIGENBASIS_MIN_N:
        return None
    method, lam, v, v_inv, _ = linear._spectral_form()
    if method == "expm" or (not is_complex(y0) and (np.iscomplexobj(lam) or np.iscomplexobj(v))):
        return None
    if linear._eigenbasis is None:
        linear._eigenbasis = Eigenbasis(lam, v, v_inv)
    return linear._eigenbasis


class _NonlinearInBasis:
    r"""$\hat N(t, z) = V^{-1} N(t, V z)$, remembering the last value's $y$-form: a
    pair's FSAL value goes back to the runner as $N(t, y)$ without a round trip."""

    def __init__(self, nonlinear: Any, basis: Eigenbasis):
        self.nonlinear = nonlinear
        self.basis = basis
        self.last: tuple[Any, Any] | None = None  # (ẑ value, its y-form)

    def __call__(self, t: float, z: Any) -> Any:
        n_y = self.nonlinear(t, self.basis.from_eig(z))
        out = self.basis.to_eig(n_y)
        self.last = (out, n_y)
        return out

    def in_y(self, value: Any) -> Any:
        if self.last is not None and self.last[0] is value:
            return self.last[1]
        return self.basis.from_eig(value)


class EigenbasisStepper:
    """A stepper of the scheme built on ``Λ`` and ``N̂``, seen from ``y``: what the step
    loops (`expint._solve`, `expint._adaptive.run_adaptive`,
    `expint._batch_steps.run_independent`), `expint._dense.DenseOutput` and the event
    watch use (``nonlinear``, ``nfev``, ``step``, ``step_with_error``,
    ``quadrature_error``, ``dense``; anything else comes from the inner stepper)."""

    def __init__(self, make_stepper: Any, basis: Eigenbasis, nonlinear: Any):
        self.basis = basis
        self.nonlinear = nonlinear  # N(t, y): the runner's own evaluations
        self._n_hat = _NonlinearInBasis(nonlinear, basis)
        self.inner = make_stepper(basis.diagonal, self._n_hat)
        self._last: tuple[Any, Any] | None = None  # (y, its z): the previous step's end
        self._n_pair: tuple[Any, Any] | None = None  # (N in y, in z): the last FSAL value

    @property
    def linear(self) -> Diagonal:
        return self.basis.diagonal

    @property
    def nfev(self) -> int:
        return self.inner.nfev

    @nfev.setter
    def nfev(self, value: int) -> None:
        self.inner.nfev = value

    def __getattr__(self, name: str) -> Any:
        # anything else the runner may ask of a stepper (e.g. its ``max_growth``)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _z(self, y: Any) -> Any:
        if self._last is not None and self._last[0] is y:
            return self._last[1]
        return self.basis.to_eig(y)

    def _end(self, z_new: Any) -> Any:
        """A step's end in ``y``, remembered with its ``z`` for the next step's start."""
        u_new = self.basis.from_eig(z_new)
        self._last = (u_new, z_new)
        return u_new

    def step(self, t: Any, h: Any, u: Any, stages: list | None = None) -> Any:
        return self._end(self.inner.step(t, h, self._z(u), stages=stages))

    def step_with_error(
        self, t: Any, h: Any, u: Any, n0: Any = None, stages: list | None = None, coeffs: Any = None
    ) -> tuple:
        """As the inner stepper's; ``coeffs`` (per-sample steps, `expint._batch_steps`)
        are the inner stepper's own stacked coefficients, on ``Λ``."""
        z = self._z(u)
        n0_z = None if n0 is None else self._to_eig_n(n0)
        extra = {} if coeffs is None else {"coeffs": coeffs}
        z_new, err, n_next = self.inner.step_with_error(t, h, z, n0_z, stages, **extra)
        u_new = self._end(z_new)
        n_next_y = None
        if n_next is not None:
            n_next_y = self._n_hat.in_y(n_next)
            self._n_pair = (n_next_y, n_next)
        return u_new, self.basis.from_eig(err), n_next_y

    def _to_eig_n(self, n_y: Any) -> Any:
        if self._n_pair is not None and self._n_pair[0] is n_y:
            return self._n_pair[1]
        return self.basis.to_eig(n_y)

    def quadrature_error(self, h: Any, t: Any, u: Any, vectors: list[Any], coeffs: Any = None) -> Any:
        """The inner pair's quadrature term (`expint._schemes._rk.RKStepper.quadrature_error`)
        for vectors combined from values of ``N`` in ``y`` (per-sample steps keep them
        there): linear in the vectors, so they are mapped in and the term back."""
        in_z = [self.basis.to_eig(v) for v in vectors]
        # ``u`` only sets the coefficients' array type and dtype, which z shares with y
        return self.basis.from_eig(self.inner.quadrature_error(h, t, u, in_z, coeffs=coeffs))

    def dense(self, t: float, h: float, u: Any, stages: list, theta: float) -> Any:
        return self.basis.from_eig(self.inner.dense(t, h, self._z(u), stages, theta))
