r"""Exponential Runge–Kutta tableaus as validated data.

A scheme with stages ``i = 1..s`` is

$$
U_i = e^{c_i hL} u_n + h \sum_{j<i} a_{ij}(hL) N_j,\qquad
u_{n+1} = e^{hL} u_n + h \sum_i b_i(hL) N_i,\qquad
N_j = N(t_n + c_j h, U_j),
$$

with every ``a_ij``, ``b_i`` a `PhiExpr`.  Lawson (integrating-factor)
schemes are the special case ``a_ij = α_ij e^{(c_i - c_j) hL}``,
``b_i = β_i e^{(1 - c_i) hL}`` of a classical tableau ``(α, β, c)``.

`ExpRKTableau.validate` checks, at construction:

* ETD family, as functions of ``z`` (at several complex sample points):
  ``Σ_j a_ij = c_i φ_1(c_i z)`` (exact for constant ``N``), ``Σ_i b_i = φ_1``,
  ``Σ_i b_i c_i = φ_2`` (order ≥ 2) and ``Σ_i b_i c_i²/2 = φ_3`` (order ≥ 3);
* every family: at ``z = 0`` the tableau is a classical RK method satisfying the
  classical order conditions up to its order (all 8 conditions for order 4).

An *embedded pair* adds error weights ``e_i`` (``b_err``): the step still advances with
``b`` and ``h Σ_i e_i(hL) N_i`` estimates the error of the embedded solution with
weights ``b̂ = b − e``.  With ``fsal`` the estimate also uses ``N(t_n + h, u_{n+1})``
(the first stage of the next step, so an accepted step costs nothing extra): ``e`` then
has one more entry than ``b``.  The embedded method — the stages plus, for ``fsal``, a
stage at ``c = 1`` with row ``b`` — is validated as a tableau of ``embedded_order``,
and must *fail* the classical conditions of ``order`` (an estimate of a method of the
same order would vanish as ``h → 0`` faster than the error it is meant to measure).

*Dense output* (ETD family): replacing each ``φ_k(z)`` in ``b_i`` by ``θ^k φ_k(θz)``
gives weights ``b_i(θ)`` with ``u(t_n + θh) ≈ e^{θhL} u_n + h Σ_i b_i(θ) N_i``: the
quadrature conditions become ``Σ_i b_i(θ) c_i^j/j! = θ^{j+1} φ_{j+1}(θz)``, the exact
integral of a degree-``j`` polynomial over ``[t_n, t_n + θh]``.  `dense_order` is the
order up to which these hold as functions of ``z`` and the classical conditions of the
continuous extension hold at ``z = 0`` (at most 3: the order-4 conditions do not
hold for all θ with these weights); 0 where there is no such extension (Lawson).

``Σ_i b_i c_i³/6 = φ_4`` is *not* required as a function of ``z``: no 4-stage
method with nodes (0, ½, ½, 1) satisfies it (Cox–Matthews, Krogstad,
Strehmel–Weiner and Hochbruck–Ostermann all give ``(−φ_2/2 + 3φ_3)/6``); it holds at
``z = 0`` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._classical import ClassicalTableau, check_classical_order
from ._phiexpr import E, P, PhiExpr, _phi_scalar, total

_SAMPLES = (-3.7, -0.4 + 1.3j, 0.9, -25.0 + 2.0j, 2.5j)


def _close(a: complex, b: complex, tol: float = 1e-12) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


@dataclass(frozen=True)
class ExpRKTableau:
    r"""Data of an exponential Runge–Kutta scheme, validated when built.

    The scheme advances $U_i = e^{c_i hL} u_n + h\sum_{j<i} a_{ij}(hL) N_j$,
    $u_{n+1} = e^{hL} u_n + h\sum_i b_i(hL) N_i$ with $N_j = N(t_n + c_j h, U_j)$.
    Pass an instance to `expint.solve` as ``scheme=`` to run it.

    Parameters
    ----------
    name, family : str
        A name, and ``"etdrk"`` (entries are φ-function combinations; the
        φ-conditions below are checked as functions of ``z = hL``) or ``"lawson"``
        (entries are exponentials ``e^{(c_i − c_j)z}`` times classical coefficients).
    c : tuple of float
        The nodes ``c_1 … c_s``.
    a : dict
        ``{(i, j): PhiExpr}`` for ``j < i`` (0-based), the stage coefficients.
    b : tuple of PhiExpr
        The ``s`` weights.
    order, stiff_order : int
        Classical order (checked at ``z = 0``, all conditions up to 4) and the order
        claimed for stiff problems (``1 ≤ stiff_order ≤ order``).
    description : str
    b_err, embedded_order :
        Error weights ``e_i`` (``b̂ = b − e`` is the embedded method, validated at
        ``embedded_order`` and required to fail ``order``): an adaptive pair.
    fsal : bool
        The estimate also uses ``N(t_n + h, u_{n+1})`` (``b_err`` one entry longer).

    Raises
    ------
    ValueError, TypeError
        Where a claim does not hold: rows that do not sum to ``c_i φ_1(c_i z)``, weights
        that fail ``Σ b_i c_i^q/q! = φ_{q+1}`` for the claimed order (up to 3), a
        classical order condition, a non-lower-triangular ``a``, entries that are not
        finite `PhiExpr`, an unknown family, or half an embedded pair.
    """

    name: str
    family: str  # "lawson" or "etdrk"
    c: tuple[float, ...]
    a: dict[tuple[int, int], PhiExpr]  # (i, j), 0-based, j < i
    b: tuple[PhiExpr, ...]
    order: int
    stiff_order: int
    description: str = ""
    b_err: tuple[PhiExpr, ...] = ()
    embedded_order: int = 0
    fsal: bool = False
    stage_exp: tuple[PhiExpr, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stage_exp", tuple(E(ci) for ci in self.c))
        self.validate()

    @property
    def stages(self) -> int:
        return len(self.c)

    def row(self, i: int) -> list[tuple[int, PhiExpr]]:
        return [(j, self.a[(i, j)]) for j in range(i) if self.a.get((i, j))]

    def validate(self) -> None:
        if self.family not in ("etdrk", "lawson"):
            raise ValueError(f"{self.name}: family must be 'etdrk' or 'lawson', got {self.family!r}")
        if not 1 <= self.stiff_order <= self.order:
            raise ValueError(
                f"{self.name}: need 1 <= stiff_order <= order, got order {self.order}, "
                f"stiff_order {self.stiff_order}"
            )
        if bool(self.b_err) != (self.embedded_order >= 1):
            raise ValueError(f"{self.name}: an embedded pair needs both b_err and embedded_order >= 1")
        for entry in (*self.a.values(), *self.b, *self.b_err):
            if not isinstance(entry, PhiExpr):
                raise TypeError(f"{self.name}: tableau entries must be PhiExpr, got {type(entry).__name__}")
            entry.check(self.name)
        s = self.stages
        if len(self.b) != s:
            raise ValueError(f"{self.name}: {len(self.b)} weights for {s} stages")
        for i, j in self.a:
            if not 0 <= j < i < s:
                raise ValueError(f"{self.name}: a[{i},{j}] is not strictly lower triangular")
        if self.family == "etdrk":
            self._check_phi_conditions()
        self._check_classical()
        if self.b_err:
            self._check_embedded()

    def dense_weights(self, theta: float) -> tuple[PhiExpr, tuple[PhiExpr, ...]]:
        """``(e^{θz}, (b_1(θ), …, b_s(θ)))`` of the continuous extension at ``θ ∈ [0, 1]``
        (module docstring); valid where `dense_order` > 0."""
        return E(theta), tuple(bi.over_fraction(theta) for bi in self.b)

    @property
    def dense_order(self) -> int:
        """Order of the continuous extension (0: none); checked numerically."""
        cached = self.__dict__.get("_dense_order")
        if cached is None:
            cached = self._find_dense_order()
            object.__setattr__(self, "_dense_order", cached)
        return cached

    def _find_dense_order(self) -> int:

        if self.family != "etdrk":
            return 0
        c = np.array(self.c)
        a0 = np.zeros((self.stages, self.stages))
        for (i, j), e in self.a.items():
            a0[i, j] = e.at_zero()
        best = min(self.order, 3)
        for theta in (0.3, 0.8):
            _, b = self.dense_weights(theta)
            for q in range(best):  # Σ b_i(θ) c_i^q/q! = θ^{q+1} φ_{q+1}(θz) as functions of z
                for z in _SAMPLES:
                    lhs = sum(bi.scalar(z) * ci**q / math.factorial(q) for bi, ci in zip(b, c, strict=True))
                    if not _close(lhs, theta ** (q + 1) * _phi_scalar(theta * z)[q + 1]):
                        best = q
                        break
            b0 = np.array([bi.at_zero() for bi in b])
            if best >= 3 and abs(b0 @ a0 @ c - theta**3 / 6) > 1e-13:
                best = 2
        return best

    @property
    def adaptive(self) -> bool:
        """True for an embedded pair (the step comes with an error estimate)."""
        return bool(self.b_err)

    @property
    def quadrature_defects(self) -> tuple[PhiExpr, ...]:
        r"""For a pair whose estimate cannot see the quadrature error, the defects
        ``D_k = φ_k − Σ_i b_i c_i^{k−1}/(k−1)!`` of the first two quadrature conditions
        the weights miss; ``()`` for every other tableau.

        The quadrature error is the part of the local error that remains when ``N``
        depends on ``t`` alone: with ``g(s) = N(s, u(s))`` it is
        ``−Σ_k h^k D_k(hL) g^{(k−1)}(t_n)``.  An estimate ``Σ_i e_i N_i`` sees it only if
        some ``Σ_i e_i c_i^m ≠ 0``; the FSAL 4(3) pairs move weight between two values at
        ``c = 1`` (every such sum vanishes), so a forcing ``f(t)`` leaves their estimate
        at zero.  Their stepper adds ``−Σ_k h^k D_k(hL) p^{(k−1)}(t_n)`` with ``p`` the
        polynomial through ``N`` at the last accepted steps (`expint._schemes._rk`).
        """
        cached = self.__dict__.get("_quadrature_defects")
        if cached is None:
            cached = self._find_quadrature_defects()
            object.__setattr__(self, "_quadrature_defects", cached)
        return cached

    def _find_quadrature_defects(self) -> tuple[PhiExpr, ...]:
        if self.family != "etdrk" or not self.b_err:
            return ()
        nodes = (*self.c, 1.0) if self.fsal else self.c
        for m in range(self.order + 1):
            for z in _SAMPLES:
                if not _close(sum(e.scalar(z) * cm**m for e, cm in zip(self.b_err, nodes, strict=True)), 0.0):
                    return ()  # the estimate sees a quadrature term (e.g. whalen53's fourth difference)
        defects, ks = [], []
        for k in range(1, 6):  # the first two conditions that fail, up to φ_5
            fact = math.factorial(k - 1)
            d = P(k) - total(bi * (ci ** (k - 1) / fact) for bi, ci in zip(self.b, self.c, strict=True))
            if any(not _close(d.scalar(z), 0.0) for z in _SAMPLES):
                defects.append(d)
                ks.append(k)
                if len(defects) == 2:
                    break
        if ks != [4, 5]:  # the stepper's polynomial supplies the third and fourth derivatives
            raise ValueError(
                f"{self.name}: the error weights cannot see the quadrature error and the weights "
                f"miss the quadrature conditions k = {ks}; the quadrature term is implemented for "
                "k = 4, 5 (fourth-order weights): give the pair error weights on distinct nodes"
            )
        return tuple(defects)

    def embedded(self) -> ExpRKTableau:
        """The embedded method ``b̂ = b − e`` as a tableau of its own (``fsal``: with the
        extra stage at ``c = 1`` whose row is ``b``)."""
        s = self.stages
        c, a, b = self.c, dict(self.a), list(self.b)
        if self.fsal:
            c = (*c, 1.0)
            a.update({(s, j): bj for j, bj in enumerate(self.b) if bj})
            b.append(PhiExpr())
        b_hat = tuple(bi - ei for bi, ei in zip(b, self.b_err, strict=True))
        return ExpRKTableau(
            f"{self.name} (embedded)",
            self.family,
            c,
            a,
            b_hat,
            self.embedded_order,
            min(self.stiff_order, self.embedded_order),
        )

    def _check_embedded(self) -> None:
        want = self.stages + (1 if self.fsal else 0)
        if len(self.b_err) != want:
            raise ValueError(f"{self.name}: {len(self.b_err)} error weights, expected {want}")
        if not 1 <= self.embedded_order < self.order:
            raise ValueError(f"{self.name}: embedded order must be below the order {self.order}")
        emb = self.embedded()  # validates b̂ up to embedded_order
        try:
            emb._check_classical_at(self.order)
        except ValueError:
            return
        raise ValueError(
            f"{self.name}: the embedded weights are of order {self.order} too; the estimate is void"
        )

    def _check_phi_conditions(self) -> None:

        for z in _SAMPLES:
            for i, ci in enumerate(self.c):
                lhs = sum((e.scalar(z) for _, e in self.row(i)), 0.0)
                rhs = ci * _phi_scalar(ci * z)[1]
                if not _close(lhs, rhs):
                    raise ValueError(f"{self.name}: row {i} does not sum to c_i φ_1(c_i z) at z={z}")
            conds = [(0, 1), (1, 2), (2, 3)][: min(self.order, 3)]
            for power, k in conds:
                fact = [1.0, 1.0, 2.0][power]
                lhs = sum(bi.scalar(z) * ci**power / fact for bi, ci in zip(self.b, self.c, strict=True))
                rhs = _phi_scalar(z)[k]
                if not _close(lhs, rhs):
                    raise ValueError(f"{self.name}: Σ b_i c_i^{power}/{power}! != φ_{k} at z={z}")

    def _check_classical(self) -> None:
        self._check_classical_at(self.order)

    def _check_classical_at(self, order: int) -> None:
        s = self.stages
        a0 = np.zeros((s, s))
        for (i, j), e in self.a.items():
            a0[i, j] = e.at_zero()
        b0 = np.array([e.at_zero() for e in self.b])
        check_classical_order(a0, b0, np.array(self.c), order, f"{self.name} (at z = 0)")


def lawson(name: str, classical: ClassicalTableau, description: str = "") -> ExpRKTableau:
    """Lawson (integrating-factor) scheme from a classical explicit RK tableau."""
    c = classical.c
    a = {}
    for i, row in enumerate(classical.a):
        for j, v in enumerate(row):
            if v:
                a[(i, j)] = v * E(c[i] - c[j], s=c[j])
    b = tuple(bi * E(1.0 - ci, s=ci) for bi, ci in zip(classical.b, c, strict=True))
    return ExpRKTableau(name, "lawson", tuple(c), a, b, classical.order, 1, description)
