"""Tolerance proportionality of the adaptive pairs: achieved error against requested rtol.

Usage: python benchmarks/adaptive_tolerance.py [--quick] [--rosenbrock | --adams] [--only NAME]
       [--error-norm rms|max]

For each embedded pair (the ETD Runge–Kutta pairs, the variant of ``hochost43`` with
the estimate weight ``γ = φ_2`` instead of ``4φ_2`` to show why the catalogue scales
it, then the exponential Adams pairs ``etdab43``/``etdab54``, which ``--adams`` runs
alone) on four problems —
Kuramoto–Sivashinsky (N = 128, T = 10), Allen–Cahn (Chebyshev N = 20, T = 10), cubic
NLS (soliton, T = π), Hochbruck–Ostermann (T = 1), the NLS breather of amplitude 2
(T = π/2) and a forcing in t alone (``y' = λy + cos t``, λ = −1, −2, 0, T = 2) — runs ``expint.solve`` with
``rtol`` = 1e-3 … 1e-10 and ``atol = rtol · max|y0|``, and prints the achieved error
(max-norm, relative to the reference's max) divided by ``rtol``, with the number of
steps and the order implied by how the step count grows (``steps ∝ rtol^{-1/p}``).
The controller measures the estimate in the solver's default RMS norm unless
``--error-norm max`` asks for the norm the achieved error is reported in.
References: the exact solution (NLS, Hochbruck–Ostermann) or torchdiffeq's dopri5 at
rtol 1e-13 (KS, Allen–Cahn, the breather), independent of expint's schemes.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np

import expint
from expint import problems
from expint._schemes._phiexpr import P, PhiExpr


def _dopri5(bp, t_end: float) -> np.ndarray:
    import torch
    import torchdiffeq

    y0 = torch.as_tensor(bp.y0)
    ts = torch.tensor([0.0, t_end], dtype=torch.float64)
    out = torchdiffeq.odeint(lambda t, y: bp.problem.rhs(float(t), y), y0, ts, rtol=1e-13, atol=1e-15)
    return out[-1].numpy()


def cases(quick: bool) -> dict:
    """``label: (problem, T, reference thunk)``: references are computed only for the
    problems that run (the breather's takes a while)."""
    ks = problems.kuramoto_sivashinsky(64 if quick else 128)
    ac, nls, ho = problems.allen_cahn(), problems.nls(), problems.hochbruck_ostermann()
    breather = problems.nls(amplitude=2.0)
    return {
        f"KS N={ks.y0.shape[0]}": (ks, 10.0, lambda: _dopri5(ks, 10.0)),
        "Allen–Cahn": (ac, 10.0, lambda: _dopri5(ac, 10.0)),
        "NLS": (nls, math.pi, lambda: nls.exact(math.pi)),
        "Hochbruck–Ostermann": (ho, 1.0, lambda: ho.exact(1.0)),
        # the breather of benchmarks/adaptive_work_precision.py: conservative and
        # oscillatory, where local errors add up over the steps
        "NLS breather": (breather, math.pi / 2, lambda: _dopri5(breather, math.pi / 2)),
        # N depends on t alone: what an estimate blind to quadrature error misses
        "Forced": (_forced()[0], 2.0, lambda: _forced()[1](2.0)),
    }


def _forced():
    """``(problem with .problem and .y0, exact(t))`` for ``y' = λy + cos t``, λ = −1, −2, 0."""
    lam = np.array([-1.0, -2.0, 0.0])
    y0 = np.array([0.1, 0.2, 0.3])
    bp = SimpleNamespace(
        problem=expint.SemilinearProblem(expint.Diagonal(lam), lambda t, y: np.cos(t) + 0.0 * y), y0=y0
    )

    def exact(t: float) -> np.ndarray:
        d = lam[:2]
        decaying = (-d * np.cos(t) + np.sin(t) + d * np.exp(d * t)) / (1 + d**2) + y0[:2] * np.exp(d * t)
        return np.array([*decaying, y0[2] + np.sin(t)])

    return bp, exact


def schemes(rosenbrock: bool = False, adams: bool = False) -> list:
    # the ETD pairs; the Rosenbrock pairs' Krylov products on L + J make KS at rtol 1e-10
    # take many minutes (tests/test_rosenbrock.py checks their tolerance on small
    # problems), so they run only with --rosenbrock
    if rosenbrock:
        return [s for s in expint.schemes.catalog() if s.rosenbrock is not None]
    adams_pairs = [s for s in expint.schemes.catalog() if s.adaptive and s.family == "etdab"]
    if adams:
        return adams_pairs
    out = [s for s in expint.schemes.catalog() if s.adaptive and s.tableau is not None]
    base = expint.schemes.get("hochost43")
    zero, g = PhiExpr(), P(2)
    tab = replace(base.tableau, name="hochost43 (γ = φ2)", b_err=(zero, zero, zero, g, zero, -g))
    out.append(replace(base, name=tab.name, tableau=tab))
    return out + adams_pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="KS with N = 64 and rtol down to 1e-8")
    ap.add_argument("--rosenbrock", action="store_true", help="the exponential Rosenbrock pairs instead")
    ap.add_argument("--adams", action="store_true", help="only the exponential Adams pairs")
    ap.add_argument("--only", default="", help="run only the problems whose label contains this")
    ap.add_argument("--error-norm", default="rms", choices=("rms", "max"), help="the controller's norm")
    args = ap.parse_args()
    rtols = np.logspace(-3, -8 if args.quick else -10, 6 if args.quick else 8)
    print("| problem | scheme | " + " | ".join(f"{r:.0e}" for r in rtols) + " | order from steps |")
    print("|---|---|" + "---|" * len(rtols) + "---|")
    for label, (bp, t_end, reference) in cases(args.quick).items():
        if args.only not in label:
            continue
        ref = reference()
        scale = np.max(np.abs(ref))
        for sch in schemes(args.rosenbrock, args.adams):
            cells, steps = [], []
            for rtol in rtols:
                sol = expint.solve(
                    bp.problem,
                    bp.y0,
                    (0.0, t_end),
                    scheme=sch,
                    rtol=rtol,
                    atol=rtol * np.max(np.abs(bp.y0)),
                    error_norm=args.error_norm,
                )
                err = np.max(np.abs(sol.y[-1] - ref)) / scale
                steps.append(sol.stats["steps"])
                cells.append(f"{err / rtol:.2g} ({sol.stats['steps']})")
            order = -1.0 / np.polyfit(np.log(rtols), np.log(steps), 1)[0]
            print(f"| {label} | {sch.name} | " + " | ".join(cells) + f" | {order:.2f} |")
    print("\ncells: achieved error / rtol (accepted steps)")


if __name__ == "__main__":
    main()
