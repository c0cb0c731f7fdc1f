"""What a fixed-step solve on a sparse linear part spends beyond its products with ``L``.

Usage: python benchmarks/krylov_solve_overhead.py [--repeat 3] [--cases NAME,...]
       [--gs-size 256] [--ac-size 128]

On the finite-difference problems of `expint.problems` (a `Sparse` linear part: every
φ-product by `expint.phiv`), times fixed-step solves and, next to each, the products
with ``L`` it made (``stats["krylov_matvecs"]``) timed alone on a vector of the
state's size — a floor that no cut in the Krylov bookkeeping can go below.  Cases:

* ``gs-etdab5``, ``gs-krogstad``: Gray–Scott 256² (131 072 unknowns, T = 100),
  ``etdab5`` on 100 steps and ``krogstad`` on 50 (errors about 5e-7 and 1e-6 on this
  problem; ``‖hL‖ ≈ 2–4``, Lanczos on ``L``);
* ``gs-krogstad-arnoldi``: the same ``krogstad`` run with ``Sparse(L,
  hermitian=False)``, so every stage runs Arnoldi on the augmented operator;
* ``ac-krogstad``, ``ac-etdab5``: 2-D Allen–Cahn 128² (16 384 unknowns, T = 10,
  ``‖hL‖ ≈ 7–13``), ``krogstad`` on 100 steps and ``etdab5`` on 200.

``--gs-size`` and ``--ac-size`` choose other grids.  Best of ``--repeat`` runs each.
Prints a markdown table, with the sum of the final state's magnitudes, so that two
versions of expint can be checked to compute the same thing
(``PYTHONPATH=<a worktree of the other> python benchmarks/krylov_solve_overhead.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from krylov_phiv import best_time  # a sibling script

import expint
from expint import problems


def cases(gs_size: int, ac_size: int) -> dict:
    """``name -> (problem, y0, T, scheme, steps)``."""
    gs = problems.gray_scott(gs_size, variant="fd")
    ac = problems.allen_cahn_2d(ac_size, variant="fd")
    arnoldi = expint.SemilinearProblem(
        expint.Sparse(gs.problem.linear.a, hermitian=False), gs.problem.nonlinear, name="Gray–Scott, Arnoldi"
    )
    return {
        "gs-etdab5": (gs.problem, gs.y0, 100.0, "etdab5", 100),
        "gs-krogstad": (gs.problem, gs.y0, 100.0, "krogstad", 50),
        "gs-krogstad-arnoldi": (arnoldi, gs.y0, 100.0, "krogstad", 50),
        "ac-krogstad": (ac.problem, ac.y0, 10.0, "krogstad", 100),
        "ac-etdab5": (ac.problem, ac.y0, 10.0, "etdab5", 200),
    }


def products_alone(matrix, count: int, repeat: int) -> float:
    """Seconds for ``count`` products with ``matrix`` on one vector."""
    v = np.random.default_rng(0).standard_normal(matrix.shape[0])

    def run():
        x = v
        for _ in range(count):
            x = matrix @ v
        return x

    return best_time(run, repeat)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cases", default="", help="comma-separated names (default: all)")
    ap.add_argument("--gs-size", type=int, default=256, help="Gray–Scott grid points per side")
    ap.add_argument("--ac-size", type=int, default=128, help="Allen–Cahn grid points per side")
    args = ap.parse_args()
    table = cases(args.gs_size, args.ac_size)
    chosen = [c for c in args.cases.split(",") if c] or list(table)
    unknown = sorted(set(chosen) - set(table))
    if unknown:
        ap.error(f"unknown cases {unknown}; choose from {', '.join(table)}")
    print("| case | solve [ms] | products with L | products alone [ms] | solve / products | Σ|y_end| |")
    print("|---|---|---|---|---|---|")
    for name in chosen:
        prob, y0, t_end, scheme, steps = table[name]
        y0 = np.asarray(y0)

        def solve(prob=prob, y0=y0, t_end=t_end, scheme=scheme, steps=steps):
            return expint.solve(prob, y0, (0.0, t_end), scheme=scheme, n_steps=steps)

        sec, sol = best_time(solve, args.repeat)
        products = sol.stats["krylov_matvecs"]
        alone = products_alone(prob.linear.a, products, args.repeat)
        print(
            f"| {name} | {1e3 * sec:.0f} | {products} | {1e3 * alone:.0f} | {sec / alone:.2f} | "
            f"{float(np.abs(sol.y[-1]).sum()):.12g} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
