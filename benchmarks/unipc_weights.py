"""Exact exponential-Adams weights against UniPC's ("bh2") weights on the shipped models.

Usage: python benchmarks/unipc_weights.py [--batch 512] [--seeds 0,1,2]

Both learned networks (``digits_eps``, ``spiral_v``), the probability-flow ODE from
t = 999 to t = 0, per-sample RMSE against torchdiffeq's dopri5 (rtol 1e-8) from the
same noise, on several noise batches (RMSE on ``spiral_v`` is dominated by a few
samples and moves by up to 2× between batches).  Rows:

* ``UniPC-3 form``: ``ExponentialAdams(2, "lam", "x0", corrector=True,
  weights="unipc", lower_order_final="always", max_gain=None)`` — diffusers' UniPC-3;
* ``exact, same taper``: the same with ``weights="exact"``;
* ``diffusers UniPC-3``: the scheduler itself (sigmas in float64, so the first row
  must agree to rounding);
* ``dpmpp2m_pc`` (exact weights, the default until 2026-11-28) and ``unipc2`` (the
  same with UniPC's two-node weights, the default since).

on the "trailing" grid (``t = 999, 999 − 1000/n, …``, then 0) and on the schedule's
default grid; then, per model and batch, the geometric mean over NFE of the RMSE ratio
``dpmpp2m_pc / unipc2`` on the default grid.  docs/diffusion.md quotes the output.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from expint.diffusion import METHODS, ExponentialAdams, Sampler, grid, metrics, pretrained
from expint.diffusion.reference import pf_ode_reference

NFES = (4, 6, 8, 10, 15, 20)


def trailing(nfe: int) -> np.ndarray:
    return np.append(np.round(np.arange(1000, 0, -1000 / nfe)) - 1.0, 0.0)


def diffusers_unipc3(net, ts: np.ndarray, x_T: torch.Tensor) -> torch.Tensor:
    import diffusers

    sch = net.schedule
    ac = np.asarray(sch.alphas_cumprod, dtype=float)
    betas = 1.0 - ac / np.concatenate([[1.0], ac[:-1]])
    s = diffusers.UniPCMultistepScheduler(
        trained_betas=betas.tolist(),
        prediction_type={"eps": "epsilon", "v": "v_prediction", "x0": "sample"}[net.prediction],
        solver_order=3,
        timestep_spacing="trailing",
        final_sigmas_type="sigma_min",
    )
    s.set_timesteps(len(ts) - 1)
    sig = np.sqrt((1 - sch.alphas_cumprod) / sch.alphas_cumprod)
    s.sigmas = torch.from_numpy(np.concatenate([sig[s.timesteps.numpy()], sig[:1]]))
    x = x_T.clone()
    for t in s.timesteps:
        x = s.step(net.model(x, torch.full((x.shape[0],), float(t), dtype=x.dtype)), t, x).prev_sample
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()
    taper = dict(corrector=True, lower_order_final="always", max_gain=None)
    methods = {
        "UniPC-3 form": ExponentialAdams(2, "lam", "x0", weights="unipc", **taper),
        "exact, same taper": ExponentialAdams(2, "lam", "x0", **taper),
        "dpmpp2m_pc": METHODS["dpmpp2m_pc"],
        "unipc2": METHODS["unipc2"],
    }
    print("| model | seed | grid | method | " + " | ".join(f"NFE {n}" for n in NFES) + " |")
    print("|---|---|---|---|" + "---|" * len(NFES))
    summary = []
    for name in ("digits_eps", "spiral_v"):
        net = pretrained.load(name)
        for seed in (int(v) for v in args.seeds.split(",")):
            gen = torch.Generator().manual_seed(seed)
            x_T = torch.randn(args.batch, *net.shape, dtype=torch.float64, generator=gen)
            ref = pf_ode_reference(net.model, net.schedule, net.prediction, x_T, 999.0, 0.0, rtol=1e-8)
            grids = {
                "trailing": trailing,
                net.schedule.default_grid: lambda n, net=net: grid(net.schedule, n, t_start=999.0, t_end=0.0),
            }
            for gname, make in grids.items():
                rows = {k: [] for k in methods}
                if gname == "trailing":
                    rows["diffusers UniPC-3"] = []
                for nfe in NFES:
                    ts = make(nfe)
                    for k, m in methods.items():
                        x = Sampler(net.schedule, ts, m, net.prediction)(net.model, x_T)
                        rows[k].append(metrics.rmse(x, ref))
                    if gname == "trailing":
                        rows["diffusers UniPC-3"].append(metrics.rmse(diffusers_unipc3(net, ts, x_T), ref))
                for k, errs in rows.items():
                    cells = " | ".join(f"{e:.4f}" for e in errs)
                    print(f"| {name} | {seed} | {gname} | {k} | {cells} |", flush=True)
            ratio = np.array(rows["dpmpp2m_pc"]) / np.array(rows["unipc2"])
            summary.append(
                f"| {name} | {seed} | {np.exp(np.mean(np.log(ratio))):.2f} | "
                + " | ".join(f"{r:.2f}" for r in ratio)
                + " |"
            )
    print(
        "\n| model | seed | dpmpp2m_pc / unipc2, geometric mean | "
        + " | ".join(f"NFE {n}" for n in NFES)
        + " |"
    )
    print("|---|---|---|" + "---|" * len(NFES))
    print("\n".join(summary))


if __name__ == "__main__":
    main()
