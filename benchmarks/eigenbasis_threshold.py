"""Where stepping in a `Dense` operator's eigenbasis starts to pay: adaptive runs in
both coordinates against the operator's size.

Usage: python benchmarks/eigenbasis_threshold.py [--sizes 20,24,28,32,40,48,64] [--repeat 5]

Allen–Cahn with ``n`` Chebyshev intervals (``n − 1`` unknowns), T = 20, rtol 1e-5,
``atol = rtol·max|w_0|``, for ``krogstad43``, ``whalen53`` and ``etdab54``: the run as
`expint.solve` takes it with the eigenbasis forced on (``EIGENBASIS_MIN_N = 1``) and
forced off.  Best of ``--repeat`` from an empty coefficient cache; prints both times,
their ratio, the step counts (equal: the same steps in either coordinates) and the
error against a fine ``hochost4`` run.  `expint._eigenbasis.EIGENBASIS_MIN_N` is set
from this table: the smallest size from which no pair is slower in the eigenbasis.
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
from expint import problems


def solve(bp, scheme: str, atol: float):
    bp.problem.linear.clear_cache()
    return expint.solve(bp.problem, bp.y0, (0.0, 20.0), scheme=scheme, rtol=1e-5, atol=atol)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20,24,28,32,40,48,64")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    keep = eigenbasis.EIGENBASIS_MIN_N
    print("| unknowns | scheme | original [ms] | eigenbasis [ms] | ratio | steps | error |")
    print("|---|---|---|---|---|---|---|")
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            bp = problems.allen_cahn(n)
            ref = expint.solve(bp.problem, bp.y0, (0.0, 20.0), scheme="hochost4", n_steps=4000).y[-1]
            atol = 1e-5 * float(np.max(np.abs(bp.y0)))
            for scheme in ("krogstad43", "whalen53", "etdab54"):
                times, sols = [], []
                for threshold in (10**9, 1):
                    eigenbasis.EIGENBASIS_MIN_N = threshold

                    seconds, sol = best_time(lambda bp=bp, s=scheme, a=atol: solve(bp, s, a), args.repeat)
                    times.append(seconds)
                    sols.append(sol)
                err = np.max(np.abs(sols[1].y[-1] - ref)) / np.max(np.abs(ref))
                steps = "/".join(str(s.stats["steps"]) for s in sols)
                print(
                    f"| {n - 1} | {scheme} | {1e3 * times[0]:.1f} | {1e3 * times[1]:.1f} | "
                    f"{times[0] / times[1]:.2f} | {steps} | {err:.1e} |"
                )
    finally:
        eigenbasis.EIGENBASIS_MIN_N = keep


if __name__ == "__main__":
    main()
