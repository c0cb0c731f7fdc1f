"""Why ``exprb43``'s error estimate fails on the NLS soliton: local errors of one step.

Usage: python benchmarks/rosenbrock_soliton_estimate.py

One step of ``exprb32`` and ``exprb43`` from the exact soliton of ``problems.nls()``
(exact Jacobian), h = 0.4 … 0.025, against the exact solution: the true local error
and the embedded estimate (max-norm, relative to max|u0|), and for ``exprb43`` the
estimate of every third-order embedded formula ``α·(0, 8φ₃, 0) + (1−α)·(0, 0, 2φ₃)``.
A ratio near 32 per halving is ``O(h⁵)``: fourth order locally.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np

from expint import problems
from expint._schemes._phiexpr import P, PhiExpr
from expint._schemes._rosenbrock import RosenbrockStepper, rosenbrock_tableaus

HS = (0.4, 0.2, 0.1, 0.05, 0.025)


def slopes(values: list[float]) -> str:
    return ", ".join(f"{math.log2(a / b):.2f}" for a, b in itertools.pairwise(values))


def main() -> None:
    bp = problems.nls()
    prob = bp.problem
    scale = np.abs(bp.y0).max()
    tabs = {t.name: t for t in rosenbrock_tableaus()}
    for name, tab in tabs.items():
        st = RosenbrockStepper(tab, prob.linear, prob.nonlinear, prob.jvp)
        true, est = [], []
        for h in HS:
            un, err, _ = st.step_with_error(0.0, h, bp.y0)
            true.append(np.abs(un - bp.exact(h)).max() / scale)
            est.append(np.abs(err).max() / scale)
        print(
            f"{name}: true local error " + ", ".join(f"{e:.2e}" for e in true) + f"  (orders {slopes(true)})"
        )
        print(f"{name}: estimate         " + ", ".join(f"{e:.2e}" for e in est) + f"  (orders {slopes(est)})")
    tab = tabs["exprb43"]
    zero = PhiExpr()
    for alpha in (2.0, 1.0, 0.0, -1.0):
        bhat = (zero, alpha * 8 * P(3), (1 - alpha) * 2 * P(3))
        st = RosenbrockStepper(
            replace(tab, b_err=tuple(b - e for b, e in zip(tab.b, bhat, strict=True))),
            prob.linear,
            prob.nonlinear,
            prob.jvp,
        )
        est = [np.abs(st.step_with_error(0.0, h, bp.y0)[1]).max() / scale for h in HS[:4]]
        print(
            f"exprb43 estimate, embedded α = {alpha:+.0f}: "
            + ", ".join(f"{e:.2e}" for e in est)
            + f"  (orders {slopes(est)})"
        )


if __name__ == "__main__":
    main()
