"""Exponential Rosenbrock steps on small numpy states: how the φ-products of the formed
Jacobian are evaluated.

Usage: python benchmarks/rosenbrock_small.py [--quick] [--repeats R] [--rtols 1e-5,1e-8]
       [--blas-pool]

`exprb32` and `exprb43` at ``rtol = 1e-5`` and ``1e-8`` (``atol = rtol·max|y0|``) on
problems whose ``J_n = L + ∂N/∂u`` is formed every step and is not symmetric:
Kuramoto–Sivashinsky (32 and 64 Fourier modes: 64 and 128 real unknowns, T = 10), the
NLS soliton (32 and 64 modes on [−10, 10), T = π), Allen–Cahn (Chebyshev, 19 unknowns,
T = 10) and upwind convection–diffusion (40 unknowns, Péclet number 50 per cell, a
cubic sink, T = 0.5: an eigenvector matrix with κ₂ ≈ 1e21).  Each is run two ways in
this process:

* ``default``: what `expint.solve` does (up to `RosenbrockStepper.dense_expm_max`
  unknowns, one augmented exponential per φ-combination);
* ``krylov``: ``RosenbrockStepper.dense_expm_max = 0``, Krylov on the formed matrix
  (what a non-symmetric ``J_n`` above that size gets).  A well-conditioned ``J_n`` of at
  most `RosenbrockStepper.dense_eig_max` unknowns (Allen–Cahn's) is eigendecomposed
  either way.

``--blas-pool`` lets the augmented exponentials use OpenBLAS's thread pool (by default
those of 96–192 rows run on one thread: `expint._phi._ONE_THREAD_EXPM_SIZES`).

Columns: best wall time of ``--repeats`` runs (ms), accepted steps, Krylov products,
and the largest difference between the two ways' final states relative to its size.
Run it from another checkout's directory with ``PYTHONPATH`` set to compare versions.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import expint
from expint import problems
from expint._schemes._rosenbrock import RosenbrockStepper

DEFAULT_EXPM_MAX = getattr(RosenbrockStepper, "dense_expm_max", 0)


def convection_diffusion(n: int = 40) -> tuple[expint.SemilinearProblem, np.ndarray]:
    """Upwind ``u_t = ν u_xx − u_x − u³ + cos t`` on (0, 1), Dirichlet ends, ν = 1e-3."""
    dx = 1.0 / (n + 1)
    lap = (np.eye(n, k=1) - 2 * np.eye(n) + np.eye(n, k=-1)) / dx**2
    upwind = (np.eye(n) - np.eye(n, k=-1)) / dx
    prob = expint.SemilinearProblem(expint.Dense(1e-3 * lap - upwind), lambda t, y: -(y**3) + np.cos(t))
    x = np.linspace(0.0, 1.0, n + 2)[1:-1]
    return prob, np.sin(np.pi * x) ** 2


def cases(quick: bool) -> list[tuple[str, expint.SemilinearProblem, np.ndarray, float]]:
    out = []
    for label, bp, t_end in (
        ("KS, 32 modes", problems.kuramoto_sivashinsky(32), 10.0),
        ("KS, 64 modes", problems.kuramoto_sivashinsky(64), 10.0),
        ("NLS, 32 modes", problems.nls(32, length=20.0), math.pi),
        ("NLS, 64 modes", problems.nls(64, length=20.0), math.pi),
        ("Allen–Cahn", problems.allen_cahn(), 10.0),
    ):
        if quick and "64" in label:
            continue
        out.append((label, bp.problem, bp.y0, t_end))
    prob, y0 = convection_diffusion(20 if quick else 40)
    out.append(("convection–diffusion", prob, y0, 0.5))
    return out


def run(prob, y0, t_end: float, scheme: str, rtol: float, expm_max: int, repeats: int):
    saved = getattr(RosenbrockStepper, "dense_expm_max", None)  # None: a version without it
    RosenbrockStepper.dense_expm_max = expm_max
    try:
        kw = {"scheme": scheme, "rtol": rtol, "atol": rtol * float(np.max(np.abs(y0)))}
        sol = expint.solve(prob, y0, (0.0, t_end), **kw)
        best, _ = expint.study.best_time(
            lambda: expint.solve(prob, y0, (0.0, t_end), **kw), repeat=repeats, budget=math.inf
        )
    finally:
        RosenbrockStepper.dense_expm_max = saved
    return best, sol


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the 64-mode problems; 20 cells")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--rtols", default="1e-5,1e-8", help="comma-separated tolerances")
    ap.add_argument("--blas-pool", action="store_true", help="exponentials on BLAS's thread pool")
    args = ap.parse_args()
    if args.blas_pool:
        import expint._phi

        expint._phi._ONE_THREAD_EXPM_SIZES = (1, 0)  # an empty window
    cols = ["problem", "real unknowns", "scheme", "rtol", "default ms", "krylov ms", "ratio", "steps"]
    print("| " + " | ".join([*cols, "Krylov products", "Δ"]) + " |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, prob, y0, t_end in cases(args.quick):
        m = y0.shape[-1] * (2 if np.iscomplexobj(y0) else 1)
        for scheme in ("exprb32", "exprb43"):
            for rtol in (float(r) for r in args.rtols.split(",")):
                t_def, s_def = run(prob, y0, t_end, scheme, rtol, DEFAULT_EXPM_MAX, args.repeats)
                t_kry, s_kry = run(prob, y0, t_end, scheme, rtol, 0, args.repeats)
                diff = np.max(np.abs(s_def.y[-1] - s_kry.y[-1])) / np.max(np.abs(s_kry.y[-1]))
                print(
                    f"| {label} | {m} | {scheme} | {rtol:.0e} | {1e3 * t_def:.0f} | {1e3 * t_kry:.0f} "
                    f"| {t_kry / t_def:.2f} | {s_def.stats['steps']} / {s_kry.stats['steps']} "
                    f"| {s_def.stats['krylov_matvecs']} / {s_kry.stats['krylov_matvecs']} | {diff:.1e} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
