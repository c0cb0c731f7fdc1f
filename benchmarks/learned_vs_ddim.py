"""Every multistep preset against DDIM on the shipped learned models, grid by grid.

Usage: python benchmarks/learned_vs_ddim.py [--model digits_eps] [--batch 128]
       [--nfe 3,4,5,6,8,10,15,20] [--methods tab3,...] [--unguarded] [--max-stiffness X]

Per-sample RMSE against a dopri5 reference of the same probability-flow ODE from the
same float64 noise (v = x/α against ρ = σ/α, rtol 1e-8; its own error is printed as the
distance to an rtol 1e-6 solution), t = 999 → 0.  One markdown table per grid kind;
``!`` marks a cell worse than DDIM's.  ``--unguarded`` turns the stability guards off
(the published methods' exact weights on every step); ``--max-stiffness`` sets the
Runge–Kutta presets' threshold for DDIM sub-steps (``RhoRK``; default 1).  A
Runge–Kutta preset of ``s`` stages runs ``NFE/s`` steps.
"""

from __future__ import annotations

import argparse
import copy

import torch

from expint.diffusion import METHODS, Sampler, get_method, grid, metrics, pretrained
from expint.diffusion.reference import pf_ode_reference

KINDS = ("uniform", "quadratic", "tempered", "logsnr", "karras")


def reference(net, x_T, rtol):
    return pf_ode_reference(net.model, net.schedule, net.prediction, x_T, 999.0, 0.0, rtol)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="digits_eps", choices=pretrained.names())
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--nfe", default="3,4,5,6,8,10,15,20")
    default = ",".join(m for m in METHODS if m != "ddim")
    ap.add_argument("--methods", default=default)
    ap.add_argument("--unguarded", action="store_true")
    ap.add_argument("--max-stiffness", type=float, default=None, help="RhoRK threshold (default: 1)")
    args = ap.parse_args()
    net = pretrained.load(args.model)
    x_T = torch.randn(args.batch, *net.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = reference(net, x_T, 1e-8)
    check = metrics.rmse(reference(net, x_T, 1e-6), ref)
    print(f"{args.model}, batch {args.batch}: reference error ≈ {check:.1e}")
    nfes = [int(v) for v in args.nfe.split(",")]

    def method(name):
        m = get_method(name)
        if args.unguarded:
            m = copy.copy(m)
            for guard in ("max_gain", "max_disagreement"):
                if hasattr(m, guard):
                    setattr(m, guard, None)
        if args.max_stiffness is not None and hasattr(m, "max_stiffness"):
            m = copy.copy(m)
            m.max_stiffness = args.max_stiffness
        return m

    def error(name, kind, nfe):
        m = method(name)
        stages = getattr(m, "stages", 1)
        ts = grid(net.schedule, max(1, nfe // stages), kind=kind, t_start=999.0, t_end=0.0)
        return metrics.rmse(Sampler(net.schedule, ts, m, net.prediction)(net.model, x_T), ref)

    for kind in KINDS:
        print(f"\n{kind} grid, RMSE against the reference\n")
        print("| method | " + " | ".join(f"NFE {n}" for n in nfes) + " |\n|---|" + "---|" * len(nfes))
        ddim = [error("ddim", kind, n) for n in nfes]
        print("| ddim | " + " | ".join(f"{v:.3f}" for v in ddim) + " |")
        for name in args.methods.split(","):
            stages = getattr(method(name), "stages", 1)
            cells = []
            for n, d in zip(nfes, ddim, strict=True):
                if n % stages:  # NFE/stages steps would not spend n calls
                    cells.append("—")
                    continue
                v = error(name, kind, n)
                cells.append(f"{v:.3f}" + ("!" if v > d * 1.0001 else ""))
            print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
