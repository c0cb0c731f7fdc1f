"""The scheme catalogue: name -> tableau or multistep rule, with orders.

Coefficients follow the cited papers (full citations in ``docs/references.md``; the
table with orders in ``docs/solver.md``); every tableau is
validated when this module is imported (``ExpRKTableau.validate``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._registry import lookup
from ._classical import CLASSICAL
from ._multistep import AdamsStepper
from ._phiexpr import P, PhiExpr
from ._rk import RKStepper
from ._tableau import ExpRKTableau, lawson

H = 0.5  # the node c = 1/2


def _etd(name, c, a, b, order, stiff, desc) -> ExpRKTableau:
    return ExpRKTableau(name, "etdrk", tuple(c), a, tuple(b), order, stiff, desc)


def _tableaus() -> list[ExpRKTableau]:
    p1, p2, p3 = P(1), P(2), P(3)
    p1h, p2h, p3h = P(1, H), P(2, H), P(3, H)
    b4 = [p1 - 3 * p2 + 4 * p3, 2 * p2 - 4 * p3, 2 * p2 - 4 * p3, -p2 + 4 * p3]
    a52 = 0.5 * p2h - p3 + 0.25 * p2 - 0.5 * p3h
    a54 = 0.25 * p2h - a52
    return [
        lawson("lawson_euler", CLASSICAL["euler"], "Lawson–Euler (integrating-factor Euler)"),
        lawson("lawson_rk2", CLASSICAL["heun"], "Lawson on Heun's method"),
        lawson("lawson_rk4", CLASSICAL["rk4"], "Lawson on the classical RK4"),
        _etd("etd1", [0], {}, [p1], 1, 1, "exponential (Nørsett) Euler"),
        _etd("etd2rk", [0, 1], {(1, 0): p1}, [p1 - p2, p2], 2, 2, "Cox–Matthews ETD2RK"),
        _etd(
            "etd3rk",
            [0, H, 1],
            {(1, 0): H * p1h, (2, 0): -p1, (2, 1): 2 * p1},
            [p1 - 3 * p2 + 4 * p3, 4 * p2 - 8 * p3, -p2 + 4 * p3],
            3,
            2,
            "Cox–Matthews ETD3RK",
        ),
        _etd(
            "etdrk4",
            [0, H, H, 1],
            # a41 = ½φ_{1,½}(e^{z/2} − 1) = φ_1(z) − φ_1(z/2): linear in φ, no products
            {(1, 0): H * p1h, (2, 1): H * p1h, (3, 0): p1 - p1h, (3, 2): p1h},
            b4,
            4,
            2,
            "Cox–Matthews ETDRK4 (as in Kassam–Trefethen)",
        ),
        _etd(
            "krogstad",
            [0, H, H, 1],
            {(1, 0): H * p1h, (2, 0): H * p1h - p2h, (2, 1): p2h, (3, 0): p1 - 2 * p2, (3, 2): 2 * p2},
            b4,
            4,
            3,
            "Krogstad's ETDRK4-B",
        ),
        _etd(
            "strehmel_weiner",
            [0, H, H, 1],
            {
                (1, 0): H * p1h,
                (2, 0): H * p1h - H * p2h,
                (2, 1): H * p2h,
                (3, 0): p1 - 2 * p2,
                (3, 1): -2 * p2,
                (3, 2): 4 * p2,
            },
            [p1 - 3 * p2 + 4 * p3, PhiExpr(), 4 * p2 - 8 * p3, -p2 + 4 * p3],
            4,
            3,
            "Strehmel–Weiner 4-stage",
        ),
        _etd(
            "hochost4",
            [0, H, H, 1, H],
            {
                (1, 0): H * p1h,
                (2, 0): H * p1h - p2h,
                (2, 1): p2h,
                (3, 0): p1 - 2 * p2,
                (3, 1): p2,
                (3, 2): p2,
                (4, 0): H * p1h - 2 * a52 - a54,
                (4, 1): a52,
                (4, 2): a52,
                (4, 3): a54,
            },
            [p1 - 3 * p2 + 4 * p3, PhiExpr(), PhiExpr(), -p2 + 4 * p3, 4 * p2 - 8 * p3],
            4,
            4,
            "Hochbruck–Ostermann 5-stage, stiff order 4",
        ),
    ]


@dataclass(frozen=True)
class Scheme:
    """A catalogue entry.

    Attributes
    ----------
    name : str
        Name accepted by `expint.solve`.
    family : str
        ``"lawson"``, ``"etdrk"`` or ``"etdab"``.
    stages : int
        Nonlinear evaluations per step (after start-up for multistep schemes).
    order : int
        Classical order (non-stiff problems).
    stiff_order : int
        Order guaranteed for stiff parabolic problems (Hochbruck–Ostermann theory).
    description : str
        Where the scheme comes from.
    """

    name: str
    family: str
    stages: int
    order: int
    stiff_order: int
    description: str
    tableau: ExpRKTableau | None = field(default=None, repr=False)
    adams_order: int | None = field(default=None, repr=False)

    def make_stepper(self, linear: Any, nonlinear: Any) -> Any:
        """A fresh stepper for one integration."""
        if self.tableau is not None:
            return RKStepper(self.tableau, linear, nonlinear)
        starter = _BY_NAME["etd2rk" if self.adams_order == 2 else "hochost4"].tableau
        if starter is None or self.adams_order is None:  # pragma: no cover - catalogue invariant
            raise RuntimeError(f"scheme {self.name!r} has neither a tableau nor an Adams order")
        return AdamsStepper(self.adams_order, linear, nonlinear, RKStepper(starter, linear, nonlinear))


def _build() -> dict[str, Scheme]:
    out = {}
    for tab in _tableaus():
        out[tab.name] = Scheme(
            tab.name, tab.family, tab.stages, tab.order, tab.stiff_order, tab.description, tableau=tab
        )
    for q in range(2, 6):
        name = f"etdab{q}"
        out[name] = Scheme(
            name,
            "etdab",
            1,
            q,
            q,
            f"exponential Adams–Bashforth of order {q} (Nørsett), variable step",
            adams_order=q,
        )
    return out


_BY_NAME = _build()


def catalog() -> list[Scheme]:
    """Every scheme, with family, stages, classical and stiff order."""
    return list(_BY_NAME.values())


def names() -> list[str]:
    """Scheme names in catalogue order."""
    return list(_BY_NAME)


def table() -> str:
    """The catalogue as a markdown table (what ``expint schemes`` prints)."""
    rows = ["| name | family | stages | order | stiff order | description |", "|---|---|---|---|---|---|"]
    rows += [
        f"| {s.name} | {s.family} | {s.stages} | {s.order} | {s.stiff_order} | {s.description} |"
        for s in _BY_NAME.values()
    ]
    return "\n".join(rows)


def get(scheme: Any) -> Scheme:
    """Look a scheme up by name (or pass a `Scheme` through)."""
    return lookup(scheme, _BY_NAME, Scheme, "scheme", "etdrk4")
