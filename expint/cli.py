"""The ``expint`` command.

``expint demo`` runs the main job on the built-in default problem: currently the
φ-function accuracy study (table + plot, see :mod:`expint.studies.phi_accuracy`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import expint


def _demo(args: argparse.Namespace) -> int:
    from expint.studies import phi_accuracy

    out = Path(args.out)
    print("expint demo: float64 accuracy of φ_k(z) against 50-digit mpmath\n")
    res = phi_accuracy.run(points=args.points)
    print(phi_accuracy.table(res))
    png = phi_accuracy.plot(res, out / "phi_accuracy.png")
    print(f"\nplot written to {png}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``expint`` console script."""
    ap = argparse.ArgumentParser(prog="expint", description="Exponential integrators.")
    ap.add_argument("--version", action="version", version=f"expint {expint.__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the main study on the built-in default problem")
    demo.add_argument("--out", default="results", help="folder for plots (default: results)")
    demo.add_argument("--points", type=int, default=60, help="arguments per family (default: 60)")
    demo.set_defaults(func=_demo)
    args = ap.parse_args(argv)
    if getattr(args, "points", 1) < 2:
        ap.error("--points must be at least 2")
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
