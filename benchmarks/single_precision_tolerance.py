"""What a single-precision state can deliver: achieved error against rtol in complex64
and complex128.

Usage: python benchmarks/single_precision_tolerance.py

Kuramoto–Sivashinsky (64 modes, T = 5) by ``krogstad43`` at ``rtol`` = 1e-4 … 1e-7 with
``atol = rtol·max|y0|``, the state in complex64 (numpy) and in complex128, against a
complex128 run at rtol 1e-12: error (max-norm, relative to the reference's largest
entry) divided by rtol, and the accepted steps.  A last row keeps rtol = 1e-6 but sets
``atol = 1e-10``, far below float32's rounding of this state (~1e-7·max|y|), to show
what such an ``atol`` costs.  ``expint.solve`` refuses rtol below the state's unit
roundoff (1.2e-7 for complex64).
"""

from __future__ import annotations

import numpy as np

import expint
from expint import problems


def main() -> None:
    ks = problems.kuramoto_sivashinsky(64)
    span = (0.0, 5.0)
    scale = float(np.abs(ks.y0).max())
    ref = expint.solve(ks.problem, ks.y0, span, scheme="krogstad43", rtol=1e-12, atol=1e-12 * scale).y[-1]
    size = float(np.abs(ref).max())
    print("| rtol | atol | complex64: error/rtol (steps) | complex128: error/rtol (steps) |")
    print("|---|---|---|---|")
    runs = [(r, r * scale) for r in (1e-4, 1e-5, 1e-6, 3e-7, 1.2e-7, 1e-7)] + [(1e-6, 1e-10)]
    for rtol, atol in runs:
        cells = []
        for dtype in (np.complex64, np.complex128):
            try:
                sol = expint.solve(
                    ks.problem, ks.y0.astype(dtype), span, scheme="krogstad43", rtol=rtol, atol=atol
                )
            except ValueError:  # below the state's unit roundoff
                cells.append("refused")
                continue
            err = float(np.abs(sol.y[-1] - ref).max()) / size
            cells.append(f"{err / rtol:.2g} ({sol.stats['steps']})")
        print(f"| {rtol:.2g} | {atol:.1e} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
