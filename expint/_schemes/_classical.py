r"""Classical explicit Runge–Kutta tableaus, as validated data, for both engines.

The solver builds its Lawson schemes from them (``lawson_rk2`` is Lawson on ``heun``,
``lawson_rk4`` on ``rk4``) and the diffusion sampler runs them in ρ or $u = e^λ$
(``rhork2``–``rhork4``).  A tableau $(c, A, b)$ with $A$ strictly lower triangular is

$$
k_i = f\Big(t_n + c_i h,\; y_n + h \sum_{j<i} a_{ij} k_j\Big),\qquad
y_{n+1} = y_n + h \sum_i b_i k_i,
$$

and its order is checked at construction against the classical conditions (all eight
for order 4 and the nine more of order 5, Butcher 2016, §31).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CLASSICAL", "ClassicalTableau", "check_classical_order"]


def check_classical_order(a: np.ndarray, b: np.ndarray, c: np.ndarray, order: int, name: str) -> None:
    """Raise a ``ValueError`` unless ``(c, a, b)`` satisfies the classical order
    conditions up to ``order`` (1–5) and the row sums of ``a`` are ``c``."""
    if not np.allclose(a.sum(axis=1), c, atol=1e-14):
        raise ValueError(f"{name}: the rows of a do not sum to c")
    conds = [(b.sum(), 1.0)]
    if order >= 2:
        conds.append((b @ c, 1 / 2))
    if order >= 3:
        conds += [(b @ c**2, 1 / 3), (b @ a @ c, 1 / 6)]
    if order >= 4:
        conds += [(b @ c**3, 1 / 4), ((b * c) @ a @ c, 1 / 8)]
        conds += [(b @ a @ c**2, 1 / 12), (b @ a @ a @ c, 1 / 24)]
    if order >= 5:
        ac = a @ c
        conds += [(b @ c**4, 1 / 5), ((b * c**2) @ ac, 1 / 10), ((b * c) @ a @ c**2, 1 / 15)]
        conds += [((b * c) @ a @ ac, 1 / 30), (b @ ac**2, 1 / 20), (b @ a @ c**3, 1 / 20)]
        conds += [(b @ a @ (c * ac), 1 / 40), (b @ a @ a @ c**2, 1 / 60), (b @ a @ a @ ac, 1 / 120)]
    if order > 5:
        raise ValueError(f"{name}: classical order conditions are implemented up to order 5")
    for got, want in conds:
        if abs(got - want) > 1e-13:
            raise ValueError(f"{name}: classical order-{order} condition fails")


@dataclass(frozen=True)
class ClassicalTableau:
    """An explicit Runge–Kutta method (see module docstring); validated at construction.

    Attributes
    ----------
    name : str
        Key in `CLASSICAL`.
    c : tuple of float
        Nodes, one per stage.
    a : tuple of tuple of float
        Row ``i`` holds ``a_ij`` for ``j < i`` (the first row is empty).
    b : tuple of float
        Weights.
    order : int
        Classical order.
    """

    name: str
    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    order: int

    def __post_init__(self) -> None:
        s = len(self.c)
        if len(self.a) != s or len(self.b) != s or any(len(row) != i for i, row in enumerate(self.a)):
            raise ValueError(f"{self.name}: a must have rows of length 0..{s - 1} and b {s} weights")
        check_classical_order(self.matrix(), np.array(self.b), np.array(self.c), self.order, self.name)

    @property
    def stages(self) -> int:
        return len(self.c)

    def matrix(self) -> np.ndarray:
        """``a`` as a full ``(s, s)`` strictly lower-triangular matrix."""
        out = np.zeros((self.stages, self.stages))
        for i, row in enumerate(self.a):
            out[i, :i] = row
        return out


def _table() -> dict[str, ClassicalTableau]:
    h = 0.5
    rows = [
        ClassicalTableau("euler", (0.0,), ((),), (1.0,), 1),
        ClassicalTableau("heun", (0.0, 1.0), ((), (1.0,)), (0.5, 0.5), 2),
        ClassicalTableau("kutta3", (0.0, h, 1.0), ((), (h,), (-1.0, 2.0)), (1 / 6, 2 / 3, 1 / 6), 3),
        ClassicalTableau(
            "rk4", (0.0, h, h, 1.0), ((), (h,), (0.0, h), (0.0, 0.0, 1.0)), (1 / 6, 1 / 3, 1 / 3, 1 / 6), 4
        ),
    ]
    return {t.name: t for t in rows}


#: Forward Euler, Heun's method, Kutta's third-order method and the classical RK4.
CLASSICAL: dict[str, ClassicalTableau] = _table()
