"""φ-function accuracy: expint vs the naive formula vs the Kassam–Trefethen contour mean.

Usage: python benchmarks/phi_accuracy.py [--out results]

Prints a markdown table of the worst float64 relative error (against 50-digit mpmath)
over |z| in [1e-12, 1e4] on the negative real axis, the imaginary axis and the ray
arg z = 3π/4, and saves results/phi_accuracy.png (error against |z|).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from expint.studies import phi_accuracy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results", help="folder for the PNG")
    args = ap.parse_args()
    res = phi_accuracy.run()
    print(phi_accuracy.table(res))
    print(f"\nplot: {phi_accuracy.plot(res, Path(args.out) / 'phi_accuracy.png')}")


if __name__ == "__main__":
    main()
