"""Per-sample step sizes on a `Dense` linear part: the batch together, in the eigenbasis.

Usage: python benchmarks/dense_batch_steps.py [--n 80] [--batch 16] [--repeat 2]

Allen–Cahn with ``n`` Chebyshev intervals (``n − 1`` unknowns, T = 20), a batch of
``a_b · w_0`` with ``a_b`` evenly spaced in [−1.5, 1.5], ``whalen53`` at rtol 1e-6,
atol 1e-7, ``batch_steps="independent"``, three ways (best of ``--repeat`` each, from an
empty coefficient cache):

* as `expint.solve` runs it: the batch advances together, its steps in the operator's
  eigenbasis (`expint._eigenbasis`);
* member by member, each in the eigenbasis (``_advances_together`` patched to refuse);
* member by member in the original coordinates (the eigenbasis threshold raised out
  of reach): what every per-sample run on a `Dense` part did before.

Prints the times, the per-member step counts and one entry of the final state, which
must agree across the three.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from krylov_phiv import best_time  # a sibling script

import expint
import expint._eigenbasis as eigenbasis
import expint._solve as solve_module
from expint import problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=80)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    bp = problems.allen_cahn(args.n)
    y0 = bp.y0[None, :] * np.linspace(-1.5, 1.5, args.batch)[:, None]

    def run():
        bp.problem.linear.clear_cache()
        return expint.solve(
            bp.problem, y0, (0.0, 20.0), scheme="whalen53", rtol=1e-6, atol=1e-7, batch_steps="independent"
        )

    together, threshold = solve_module._advances_together, eigenbasis.EIGENBASIS_MIN_N
    print(f"## Allen–Cahn, {args.n - 1} unknowns, batch of {args.batch}, whalen53, rtol 1e-6\n")
    print("| how | time [ms] | steps per member | y[-1, 0, 1] |")
    print("|---|---|---|---|")
    try:
        for label in ("together, eigenbasis", "member by member, eigenbasis", "member by member, original"):
            solve_module._advances_together = together if label.startswith("together") else (lambda *a: False)
            eigenbasis.EIGENBASIS_MIN_N = 10**9 if label.endswith("original") else threshold
            seconds, sol = best_time(run, args.repeat)
            steps = sol.stats["steps_per_sample"]
            print(f"| {label} | {1e3 * seconds:.0f} | {min(steps)}–{max(steps)} | {sol.y[-1, 0, 1]:.14f} |")
    finally:
        solve_module._advances_together, eigenbasis.EIGENBASIS_MIN_N = together, threshold


if __name__ == "__main__":
    main()
