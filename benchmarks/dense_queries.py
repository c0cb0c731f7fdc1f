"""What dense output and irregular grids cost on a `Dense` linear part.

Usage: python benchmarks/dense_queries.py [--n 160] [--queries 400] [--repeat 3]

On Allen–Cahn with ``n`` Chebyshev intervals (``n − 1`` unknowns, T = 20), times

* a solve with ``dense_output=True`` and then ``sol.sol`` at ``--queries`` times (what
  `Solution.plot` asks for), for ``krogstad`` (160 steps), ``etdab5`` (320 steps) and
  ``whalen53`` (rtol = atol = 1e-6): each query is the step's continuous extension at
  its own θ, whose weights are φ-functions of ``θhL``;
* a fixed-step ``krogstad`` run on 200 uniform steps and on a grid of 200 steps of
  random sizes (0.5–1.5 times the mean, seeded), where every step size is new.

Best of ``--repeat`` runs each, every run from an empty coefficient cache.  Prints a
markdown table and, as a check that the runs compare like with like, one entry of the
state at t = 10 (queries) or at the end (grids).
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=160)
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    bp = problems.allen_cahn(args.n)
    times = np.linspace(0.0, 20.0, args.queries)
    mid = int(np.argmin(np.abs(times - 10.0)))

    def solve(**kw):
        bp.problem.linear.clear_cache()
        return expint.solve(bp.problem, bp.y0, (0.0, 20.0), **kw)

    print(f"## Allen–Cahn, {args.n - 1} unknowns, T = 20\n")
    print("| run | solve [ms] | queries [ms] | check |")
    print("|---|---|---|---|")
    configs = {
        "krogstad, 160 steps": {"scheme": "krogstad", "n_steps": 160},
        "etdab5, 320 steps": {"scheme": "etdab5", "n_steps": 320},
        "whalen53, rtol 1e-6": {"scheme": "whalen53", "rtol": 1e-6, "atol": 1e-6},
    }
    for label, kw in configs.items():
        t_solve, sol = best_time(lambda kw=kw: solve(dense_output=True, **kw), args.repeat)
        t_query, values = best_time(lambda sol=sol: sol.sol(times), args.repeat)
        print(
            f"| {label}, dense output + {args.queries} queries | {1e3 * t_solve:.1f} | "
            f"{1e3 * t_query:.1f} | {values[mid, 3]:.12f} |"
        )
    rng = np.random.default_rng(0)
    irregular = np.concatenate([[0.0], np.cumsum(rng.uniform(0.5, 1.5, 200))])
    irregular *= 20.0 / irregular[-1]
    for label, kw in {"uniform": {"n_steps": 200}, "irregular": {"ts": irregular}}.items():
        t_solve, sol = best_time(lambda kw=kw: solve(scheme="krogstad", **kw), args.repeat)
        print(f"| krogstad, 200 {label} steps | {1e3 * t_solve:.1f} | – | {sol.y[-1][3]:.14f} |")


if __name__ == "__main__":
    main()
