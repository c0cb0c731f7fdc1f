"""The ε-target gap-stiffness guard (``max_gap_stiffness``, default 10) over a range of
thresholds.

Usage: python benchmarks/gap_stiffness_study.py [--thresholds none,3,5,10,15,20]

The configuration of tests/test_learned_stability.py (both shipped MLPs, batch 48,
seed 0, dopri5 reference at rtol 1e-7; five grid kinds at NFE 3–10) for the presets
the guard acts on (ε interpolated in t or λ: ``tab1``–``tab3``, ``lab1``–``lab3``).  For
each threshold: the cells where a preset is more than 3% worse than DDIM on the same
grid, and per model and preset the geometric mean over the 30 cells of error / DDIM's
error (lower is better; it shows what a lower threshold gives back).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from guard_threshold_study import KINDS, NFES, rmse
from tqdm import tqdm

from expint.diffusion import grid, pretrained
from expint.diffusion.methods import ExponentialAdams
from expint.diffusion.reference import pf_ode_reference

PRESETS = [(f"{v[0]}ab{r}", r, v) for v in ("t", "lam") for r in (1, 2, 3)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--thresholds", default="none,3,5,10,15,20")
    args = ap.parse_args()
    thresholds = [None if x == "none" else float(x) for x in args.thresholds.split(",")]
    cases = []
    for name in ("digits_eps", "spiral_v"):
        net = pretrained.load(name)
        x_T = torch.randn(48, *net.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        ref = pf_ode_reference(net.model, net.schedule, net.prediction, x_T, 999.0, 0.0, rtol=1e-7)
        grids = {(k, n): grid(net.schedule, n, kind=k, t_start=999.0, t_end=0.0) for k in KINDS for n in NFES}
        ddim = {key: rmse(net, ts, "ddim", x_T, ref) for key, ts in grids.items()}
        cases.append((name, net, x_T, ref, grids, ddim))
    print("| threshold | model | " + " | ".join(p for p, _, _ in PRESETS) + " | cells worse than DDIM |")
    print("|---|---|" + "---|" * len(PRESETS) + "---|")
    bar = tqdm(total=len(thresholds) * len(cases) * len(PRESETS), desc="presets", leave=False)
    for s in thresholds:
        for name, net, x_T, ref, grids, ddim in cases:
            gms, worse = [], []
            for label, degree, variable in PRESETS:
                method = ExponentialAdams(degree, variable, "eps", max_gap_stiffness=s, name=label)
                logs = []
                for key, ts in grids.items():
                    ratio = rmse(net, ts, method, x_T, ref) / ddim[key]
                    logs.append(np.log(ratio))
                    if ratio > 1.03:
                        worse.append(f"{label} {key[0]} {key[1]}: {ratio:.2f}")
                gms.append(float(np.exp(np.mean(logs))))
                bar.update()
            row = " | ".join(f"{g:.3f}" for g in gms)
            print(f"| {s} | {name} | {row} | {'; '.join(worse) or 'none'} |", flush=True)
    bar.close()


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
