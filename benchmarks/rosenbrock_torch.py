"""Exponential Rosenbrock steps on small tensor states: the formed Jacobian against
Krylov products by ``torch.func.jvp``, with the numpy run alongside.

Usage: python benchmarks/rosenbrock_torch.py [--quick] [--device cuda]

`exprb32` and `exprb43` at ``rtol = atol = 1e-6`` on Hochbruck–Ostermann (49 and 199
unknowns, T = 1), Allen–Cahn (Chebyshev, 19 unknowns, T = 10) and the NLS soliton (32
complex Fourier modes, 64 real unknowns, T = 1), each run three ways:

* ``numpy``: the problem as built (its exact ``jvp`` forms ``J_n``);
* ``torch``: the same problem without ``jvp`` on a CPU tensor: ``J_n`` from one
  ``torch.func.jacfwd`` call per step (on ``[Re u, Im u]`` for the complex state),
  then the φ-functions of the formed matrix;
* ``torch, Krylov``: ``RosenbrockStepper.dense_max = 0`` (what a state of more than
  256 real unknowns, or a nonlinearity that ``jacfwd`` cannot trace, gets): every
  Krylov product is one ``torch.func.jvp``, or for the complex state one forward
  difference.  Skipped with ``--quick`` on the 199-unknown problem (minutes).

Best of two wall times (torch on one CPU thread, or on ``--device``: the tensor runs
there, ``J_n``'s φ-functions on the host), accepted steps, Krylov products, and the
largest difference of the final state from the numpy run.
"""

from __future__ import annotations

import argparse
import math
from functools import partial

import numpy as np
import torch

import expint
from expint import problems
from expint._schemes._rosenbrock import RosenbrockStepper


def best_time(fn, repeats: int = 2):
    return expint.study.best_time(fn, repeat=repeats, budget=math.inf)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the Krylov runs on 199 unknowns")
    ap.add_argument("--device", default="cpu", help="torch device of the tensor runs (default cpu)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cases = [
        ("Hochbruck–Ostermann", problems.hochbruck_ostermann(50), 1.0),
        ("Hochbruck–Ostermann", problems.hochbruck_ostermann(200), 1.0),
        ("Allen–Cahn", problems.allen_cahn(), 10.0),
        ("NLS soliton (complex)", problems.nls(32, length=20.0), 1.0),
    ]
    print("| problem | n | scheme | run | ms | steps | Krylov products | vs numpy |")
    print("|---|---|---|---|---|---|---|---|")
    for label, bp, t_end in cases:
        bare = expint.SemilinearProblem(bp.problem.linear, bp.problem.nonlinear)  # no jvp
        n = bp.y0.shape[-1]
        for scheme in ("exprb32", "exprb43"):
            kwargs = {"scheme": scheme, "rtol": 1e-6, "atol": 1e-6}
            sec, ref = best_time(partial(expint.solve, bp.problem, bp.y0, (0.0, t_end), **kwargs))
            runs = [("numpy", sec, ref)]
            y0 = torch.as_tensor(bp.y0, device=args.device)
            on_torch = partial(expint.solve, bare, y0, (0.0, t_end), **kwargs)
            runs.append(("torch", *best_time(on_torch)))
            if not (args.quick and n > 100):
                saved = RosenbrockStepper.dense_max
                RosenbrockStepper.dense_max = 0
                try:
                    timed = best_time(on_torch, repeats=1)
                finally:
                    RosenbrockStepper.dense_max = saved
                runs.append(("torch, Krylov", *timed))
            for name, sec, sol in runs:
                final = sol.y[-1].cpu().numpy() if hasattr(sol.y, "cpu") else sol.y[-1]
                diff = float(np.max(np.abs(final - ref.y[-1])))
                print(
                    f"| {label} | {n} | {scheme} | {name} | {sec * 1e3:.0f} | {sol.stats['steps']} | "
                    f"{sol.stats.get('krylov_matvecs', 0)} | {diff:.1e} |"
                )


if __name__ == "__main__":
    main()
