"""A small stiff system with no linear part to split off: where scipy is the better tool.

Usage: python benchmarks/small_stiff_system.py [--rtols 1e-4,1e-6,1e-8] [--repeats R]

Robertson's chemical kinetics (3 unknowns, rate constants 0.04, 1e4, 3e7; y0 = (1, 0,
0), T = 40), written for expint as ``L = 0`` (``Diagonal(zeros)``) and ``N = f`` with
the exact Jacobian (``jac=``): the exponential Rosenbrock pairs ``exprb32`` and
``exprb43`` re-linearise around every state, so all the stiffness sits in ``J_n``.
Against scipy ``solve_ivp`` Radau, BDF and LSODA with the same Jacobian, the same
``rtol`` and ``atol = 1e-10`` (y2 peaks near 4e-5).  Error: the largest relative error
of the final state against Radau at rtol 1e-12, atol 1e-16.  Columns: best wall time
of ``--repeats`` runs (ms), steps, error.

An exponential step here costs a few dozen small numpy operations per stage (an
eigendecomposition of ``J_n``, φ-functions of its eigenvalues, the products), where
LSODA's is compiled Fortran around one Python call of ``f``: on a system this small
expint's per-step overhead, not its step count, decides (docs/solver.md, "Choosing a
scheme").
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from scipy.integrate import solve_ivp

import expint

Y0 = np.array([1.0, 0.0, 0.0])
T_END = 40.0
ATOL = 1e-10


def rhs(t: float, y: np.ndarray) -> np.ndarray:
    r1, r2, r3 = 0.04 * y[0], 1e4 * y[1] * y[2], 3e7 * y[1] ** 2
    return np.array([-r1 + r2, r1 - r2 - r3, r3])


def jac(t: float, y: np.ndarray) -> np.ndarray:
    return np.array(
        [
            [-0.04, 1e4 * y[2], 1e4 * y[1]],
            [0.04, -1e4 * y[2] - 6e7 * y[1], -1e4 * y[1]],
            [0.0, 6e7 * y[1], 0.0],
        ]
    )


def runners() -> dict:
    prob = expint.SemilinearProblem(expint.Diagonal(np.zeros(3)), rhs, jac=jac, name="Robertson")

    def expint_run(scheme):
        def run(rtol):
            sol = expint.solve(prob, Y0, (0.0, T_END), scheme=scheme, rtol=rtol, atol=ATOL)
            return sol.y[-1], sol.stats["steps"], sol.success

        return run

    def scipy_run(method):
        def run(rtol):
            out = solve_ivp(rhs, (0.0, T_END), Y0, method=method, rtol=rtol, atol=ATOL, jac=jac)
            return out.y[:, -1], out.t.size - 1, out.success

        return run

    out = {f"expint {s}": expint_run(s) for s in ("exprb32", "exprb43")}
    out |= {f"scipy {m}": scipy_run(m) for m in ("Radau", "BDF", "LSODA")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rtols", default="1e-4,1e-6,1e-8")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rtols = [float(r) for r in args.rtols.split(",")]
    ref = solve_ivp(rhs, (0.0, T_END), Y0, method="Radau", rtol=1e-12, atol=1e-16, jac=jac).y[:, -1]
    print(f"Robertson, T = {T_END:g}, atol = {ATOL:g}; cells: best ms of {args.repeats} (steps, error)\n")
    print("| configuration | " + " | ".join(f"rtol {r:.0e}" for r in rtols) + " |")
    print("|---|" + "---|" * len(rtols))
    for name, run in runners().items():
        cells = []
        for rtol in rtols:
            best, (y, steps, ok) = expint.study.best_time(
                lambda run=run, rtol=rtol: run(rtol), repeat=args.repeats, budget=math.inf
            )
            err = float(np.max(np.abs(y - ref) / np.abs(ref)))
            cells.append(f"{1e3 * best:.1f} ({steps}, {err:.1e})" if ok else "failed")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
