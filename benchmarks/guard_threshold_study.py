"""The ε-target disagreement guard at 0.6 (default) against 0.45 and 0.40.

Usage: python benchmarks/guard_threshold_study.py

The configuration of tests/test_learned_stability.py (both shipped MLPs, batch 48,
seed 0, dopri5 reference at rtol 1e-7; every multistep preset on five grid kinds at
NFE 3–10): for each threshold, the cells where a preset is more than 3% worse than
DDIM on the same grid, and the error of the t/λ presets relative to the default
threshold (the accuracy a lower threshold costs).
"""

from __future__ import annotations

import numpy as np
import torch

from expint.diffusion import Sampler, grid, metrics, pretrained
from expint.diffusion import methods as M
from expint.diffusion.reference import pf_ode_reference

NFES = (3, 4, 5, 6, 8, 10)
KINDS = ("uniform", "quadratic", "tempered", "logsnr", "karras")
SHOWN = ("tab1", "tab2", "tab3", "lab1", "lab2", "lab3", "ipndm")


def presets(threshold: float) -> dict:
    saved = M.AUTO_MAX_DISAGREEMENT["eps"]
    M.AUTO_MAX_DISAGREEMENT["eps"] = threshold  # read by ExponentialAdams at construction
    try:
        out = M._presets()
    finally:
        M.AUTO_MAX_DISAGREEMENT["eps"] = saved
    out["ipndm"] = M.IPNDM(threshold)
    return {k: v for k, v in out.items() if not k.startswith("rhork") and k != "ddim"}


def rmse(net, ts, method, x_T, ref) -> float:
    return metrics.rmse(Sampler(net.schedule, ts, method, net.prediction)(net.model, x_T), ref)


def errors(threshold: float) -> dict:
    out = {}
    for name in ("digits_eps", "spiral_v"):
        net = pretrained.load(name)
        x_T = torch.randn(48, *net.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        ref = pf_ode_reference(net.model, net.schedule, net.prediction, x_T, 999.0, 0.0, rtol=1e-7)
        methods = presets(threshold)
        for kind in KINDS:
            for nfe in NFES:
                ts = grid(net.schedule, nfe, kind=kind, t_start=999.0, t_end=0.0)
                ddim = rmse(net, ts, "ddim", x_T, ref)
                for key, m in methods.items():
                    out[name, key, kind, nfe] = (rmse(net, ts, m, x_T, ref), ddim)
    return out


def main() -> None:
    base = errors(0.6)
    for threshold in (0.6, 0.45, 0.4):
        res = base if threshold == 0.6 else errors(threshold)
        worse = {k: v[0] / v[1] for k, v in res.items() if v[0] > 1.03 * v[1]}
        print(
            f"threshold {threshold}: worse than DDIM (ratio): "
            + ", ".join(f"{k} {r:.3f}" for k, r in sorted(worse.items()))
        )
        if threshold == 0.6:
            continue
        print("| model | method | NFE | error / error at 0.6 on " + ", ".join(KINDS) + " |")
        for name in ("digits_eps", "spiral_v"):
            for key in SHOWN:
                for nfe in NFES:
                    ratios = [res[name, key, k, nfe][0] / base[name, key, k, nfe][0] for k in KINDS]
                    print(f"| {name} | {key} | {nfe} | " + " ".join(f"{r:.2f}" for r in ratios) + " |")
        print(f"largest cost: {max(res[k][0] / base[k][0] for k in res):.2f}×")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
