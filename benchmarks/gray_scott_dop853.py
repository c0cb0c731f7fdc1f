"""Why scipy's DOP853 stops converging on the 256² Gray–Scott problem.

Usage: python benchmarks/gray_scott_dop853.py [--n 256] [--rtols 1e-5,1e-6,1e-7,1e-8]

In ``benchmarks/adaptive_work_precision.py --problems gray_scott`` DOP853's relative max
error stays near 4e-6 from rtol 1e-6 to 1e-7.  This script runs DOP853 the same way
(the real form of the real-FFT state, ``atol = rtol·max|y0|``) and reports for each
rtol: the number of evaluations, the relative max error and the relative RMS error of
the final state against `hochost4` with 1600 steps, and where the max error sits: its
wavenumber ``(k_x, k_y)`` in units of the grid's Nyquist wavenumber, ``λ`` of that mode
and the reference's size there.  If the evaluations do not grow as rtol falls, the step
is set by the stability of the explicit method, not by its accuracy; if the max error
sits in a mode that should have decayed, the controller (scipy's RMS norm over all
components) is not seeing it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.integrate import solve_ivp

import expint
from expint import problems

T_END = 100.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--rtols", default="1e-5,1e-6,1e-7,1e-8")
    args = ap.parse_args()
    from adaptive_work_precision import _real_form  # the peers' real form, as in that benchmark

    start = time.perf_counter()
    bp = problems.gray_scott(args.n)
    y0 = np.asarray(bp.y0)
    lam = np.asarray(bp.problem.linear.d)
    ref = expint.solve(bp.problem, y0, (0.0, T_END), scheme="hochost4", n_steps=1600).y[-1]
    half = expint.solve(bp.problem, y0, (0.0, T_END), scheme="hochost4", n_steps=800).y[-1]
    top = np.max(np.abs(ref))
    f = _real_form(bp.problem.rhs, y0.shape, True)
    x0 = np.concatenate([y0.real.ravel(), y0.imag.ravel()])
    size = y0.size
    field = size // 2  # the state is [û; v̂], each n × (n/2 + 1)
    cols = args.n // 2 + 1
    print(f"Gray–Scott {args.n}², T = {T_END:g}, real-FFT form, {2 * size} real unknowns for DOP853")
    print(f"reference hochost4 1600 steps; distance to 800 steps: {np.max(np.abs(half - ref)) / top:.1e}\n")
    heads = ["rtol", "evaluations", "max error", "RMS error", "mode of the max error (k/k_Nyq)", "λ there"]
    print("| " + " | ".join([*heads, "reference there"]) + " |")
    print("|---|---|---|---|---|---|---|")
    for rtol in (float(r) for r in args.rtols.split(",")):
        out = solve_ivp(f, (0.0, T_END), x0, method="DOP853", rtol=rtol, atol=rtol * np.max(np.abs(y0)))
        x = out.y[:, -1]
        err = np.abs(x[:size] + 1j * x[size:] - ref)
        at = int(np.argmax(err))
        row, col = divmod(at % field, cols)
        kx = (row if row <= args.n // 2 else row - args.n) / (args.n // 2)
        ky = col / (args.n // 2)
        cells = [
            f"{rtol:.0e}",
            f"{out.nfev}",
            f"{err[at] / top:.2e}",
            f"{np.sqrt(np.mean(err**2)) / top:.2e}",
            f"{'v̂' if at >= field else 'û'} ({kx:+.2f}, {ky:.2f})",
            f"{lam[at].real:.2f}",
            f"{abs(ref[at]) / top:.1e}",
        ]
        print("| " + " | ".join(cells) + " |")
    print(f"\nmax|λ(L)| = {np.max(np.abs(lam)):.2f}; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
