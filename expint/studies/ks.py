"""The default study: Kuramoto–Sivashinsky (Kassam–Trefethen set-up).

1. The solution on t ∈ [0, 150] with ETDRK4 at h = 1/4, saved every 0.5 and drawn as a
   space–time image (``ks_spacetime.png``).
2. A convergence table at T = 30 (before the flow's chaos amplifies errors beyond
   use), by `expint.study.convergence`: relative max error of the final state (the
   Fourier coefficients) for
   several schemes and step sizes against a reference from two different 4th-order
   schemes at h = 1/512 (their distance is printed as the reference's accuracy), with
   observed orders (``ks_convergence.png``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import expint
from expint import problems

SCHEMES = ("etdrk4", "krogstad", "hochost4", "etdab4", "etd2rk")
STEPS = (1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32)
T_CONV = 30.0


def spacetime(out: Path, n: int = 128, progress: bool = True) -> tuple[Path, expint.Solution]:
    bp = problems.kuramoto_sivashinsky(n)
    t_eval = np.linspace(0.0, 150.0, 301)
    sol = expint.solve(
        bp.problem, bp.y0, bp.t_span, scheme="etdrk4", dt=bp.dt, t_eval=t_eval, progress=progress
    )
    path = problems.plot_spacetime(
        bp, sol, out / "ks_spacetime.png", title=f"Kuramoto–Sivashinsky, N = {n}, ETDRK4, h = 1/4"
    )
    return path, sol


def convergence(n: int = 128) -> expint.study.ConvergenceResult:
    """The convergence study, run by `expint.study.convergence` (reference: hochost4 at
    h = 1/512, i.e. 16× the finest step count; its distance to krogstad is its accuracy)."""
    bp = problems.kuramoto_sivashinsky(n)
    steps = [round(T_CONV / h) for h in STEPS]
    return expint.study.convergence(bp, None, (0.0, T_CONV), SCHEMES, steps)


def table(res: expint.study.ConvergenceResult) -> str:
    return res.table()


def plot(res: expint.study.ConvergenceResult, path: Path) -> Path:
    return res.plot(path)
