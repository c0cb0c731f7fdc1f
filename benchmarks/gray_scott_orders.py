"""Why `etdab5` converges slowly on the 256² Gray–Scott problem: order reduction of
exponential Adams methods on a non-smooth start.

Usage: python benchmarks/gray_scott_orders.py [--n 256] [--steps 50,100,200,400]

The real-FFT Gray–Scott problem (`expint.problems.gray_scott`, T = 100) starts from a
square patch with sharp edges, so the fields carry modes up to the grid's Nyquist
wavenumber, which decay at rates up to ``max|λ(L)|``.  ``N(u(t))`` inherits that
transient.  A Runge–Kutta step resolves it inside the step; an Adams step extrapolates
``N`` by a polynomial through the last few steps, which cannot follow a component that
decays like ``e^{λt}`` with ``h|λ| ≳ 1``.  Its error then falls more slowly than
``h^p`` until ``h`` is small against ``1/max|λ|``.

The script runs `etdab5` and `krogstad` on fixed steps from the problem's own initial
state ("sharp") and from the same state with its Fourier coefficients multiplied by
``exp(−|k|²/k_c²)``, ``k_c`` a quarter of the Nyquist wavenumber ("smoothed": the
same patch with soft edges).  Errors are relative max errors of the final state
against `hochost4` with 3200 steps (its distance to `hochost4` with 1600 steps and to
`krogstad` with 3200 is printed as the reference's accuracy).  The observed order is the
log–log slope between successive step counts.  Prints one markdown table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import expint
from expint import problems

T_END = 100.0


def smoothed(bp, n: int, length: float = 2.5) -> np.ndarray:
    """``y0`` with every Fourier coefficient damped by ``exp(−|k|²/k_c²)``."""
    k = 2 * np.pi * np.fft.fftfreq(n, length / n)
    kr = 2 * np.pi * np.fft.rfftfreq(n, length / n)
    k2 = (k[:, None] ** 2 + kr[None, :] ** 2).ravel()
    k_cut = 0.25 * np.pi * n / length
    damp = np.exp(-k2 / k_cut**2)
    return bp.y0 * np.concatenate([damp, damp])


def final(bp, y0: np.ndarray, scheme: str, steps: int) -> np.ndarray:
    return expint.solve(bp.problem, y0, (0.0, T_END), scheme=scheme, n_steps=steps).y[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--steps", default="50,100,200,400")
    args = ap.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    start = time.perf_counter()
    bp = problems.gray_scott(args.n)
    lam = float(np.max(np.abs(np.asarray(bp.problem.linear.d))))
    print(f"Gray–Scott {args.n}², T = {T_END:g}; max|λ(L)| = {lam:.2f}\n")
    heads = [f"{s} steps (h|λ| = {T_END / s * lam:.2g})" for s in steps]
    print("| start | scheme | " + " | ".join(heads) + " |")
    print("|---|---|" + "---|" * len(steps))
    for label, y0 in (("sharp", bp.y0), ("smoothed", smoothed(bp, args.n))):
        ref = final(bp, y0, "hochost4", 3200)
        scale = np.max(np.abs(ref))
        half = np.max(np.abs(final(bp, y0, "hochost4", 1600) - ref)) / scale
        other = np.max(np.abs(final(bp, y0, "krogstad", 3200) - ref)) / scale
        for scheme in ("etdab5", "krogstad"):
            errs = [np.max(np.abs(final(bp, y0, scheme, s) - ref)) / scale for s in steps]
            cells = [f"{errs[0]:.2e}"] + [
                f"{e:.2e} ({np.log(errs[i] / e) / np.log(steps[i + 1] / steps[i]):.1f})"
                for i, e in enumerate(errs[1:])
            ]
            print(f"| {label} | {scheme} | " + " | ".join(cells) + " |")
        print(f"| {label} | reference | hochost4 1600 steps: {half:.1e}; krogstad 3200: {other:.1e} |")
    elapsed = time.perf_counter() - start
    print(f"\n(observed order between successive step counts in parentheses); {elapsed:.0f} s")


if __name__ == "__main__":
    main()
