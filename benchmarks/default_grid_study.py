"""How the exponent κ of the power grid t_i = (t_s^{1/κ}(1 − i/n) + t_e^{1/κ} i/n)^κ should
depend on the number of model calls, for the default method on the shipped models.

Usage: python benchmarks/default_grid_study.py [--models digits_eps,spiral_v] [--batch 512]

For each model: the default method (``DEFAULT_METHOD``) on power grids from t = 999 to
t = 0 with κ = 1 (uniform in t), 1.25, 1.5, 1.75, 2 (DEIS's quadratic grid) and 2.5, at
NFE 3–30, RMSE against a dopri5 reference (rtol 1e-8) of the same probability-flow ODE
from the same noise (seed 0, as ``diffusion_learned.py``); the grid ``grid(...,
kind="auto")`` picks for each NFE is reported beside the best κ.  Prints a markdown
table per model.
"""

from __future__ import annotations

import argparse

import torch

from expint.diffusion import DEFAULT_METHOD, Sampler, grid, metrics, pretrained
from expint.diffusion.reference import pf_ode_reference

KAPPAS = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5)
NFES = (3, 4, 5, 6, 8, 10, 15, 20, 30)


def study(name: str, batch: int) -> None:
    net = pretrained.load(name)
    x_T = torch.randn(batch, *net.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = pf_ode_reference(net.model, net.schedule, net.prediction, x_T, 999.0, 0.0, 1e-8)

    def rmse(ts):
        return metrics.rmse(Sampler(net.schedule, ts, DEFAULT_METHOD, net.prediction)(net.model, x_T), ref)

    print(f"\n### {name} ({DEFAULT_METHOD}, batch {batch}): RMSE by κ\n")
    print("| NFE | " + " | ".join(f"κ = {k:g}" for k in KAPPAS) + " | best κ | auto |")
    print("|---|" + "---|" * (len(KAPPAS) + 2))
    for nfe in NFES:
        errs = [rmse(grid(net.schedule, nfe, "power", t_start=999.0, t_end=0.0, kappa=k)) for k in KAPPAS]
        auto = rmse(grid(net.schedule, nfe, t_start=999.0, t_end=0.0))
        best = KAPPAS[min(range(len(KAPPAS)), key=errs.__getitem__)]
        cells = " | ".join(f"{e:.3g}" for e in errs)
        print(f"| {nfe} | {cells} | {best:g} | {auto:.3g} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="digits_eps,spiral_v")
    ap.add_argument("--batch", type=int, default=512)
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for name in args.models.split(","):
        study(name, args.batch)


if __name__ == "__main__":
    main()
