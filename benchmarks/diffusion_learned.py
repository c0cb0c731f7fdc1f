"""Samplers on a learned network: the shipped ``digits_eps`` model (first version).

Usage: python benchmarks/diffusion_learned.py [--out results] [--batch 512] [--nfe 3,4,5,6,8,10,15,20,30]

Every sampler integrates the same probability-flow ODE of the shipped ε-network from
t = 999 to t = 0 (the first training timestep, σ = 0.01) from the same float64 noise.
Reference: torchdiffeq dopri5 in v = x/α against ρ = σ/α at rtol 1e-8 (its own error is
estimated against rtol 1e-6 and printed).  Metrics: per-sample RMSE against the
reference, and the Fréchet distance in data space to the reference samples (with the
split-half noise floor of the reference set).

expint: every preset on every grid kind (uniform, quadratic, logsnr, karras) ending at
t = 0.  diffusers, in the same run: DDIM, DEIS-1/2/3, DPM-Solver++ 2M/3M and UniPC-2/3
with ``final_sigmas_type="sigma_min"`` (ending at t = 0 too) and each scheduler's
default spacing, plus Karras sigmas where offered.  Prints markdown tables, writes
``diffusion_learned.json`` and ``diffusion_learned.png`` (error against NFE).
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from expint.diffusion import METHODS, Sampler, grid, metrics, pretrained
from expint.diffusion.reference import pf_ode_reference

KINDS = ("uniform", "quadratic", "logsnr", "karras")


def reference(net, x_T: torch.Tensor, rtol: float) -> torch.Tensor:
    return pf_ode_reference(net.model, net.schedule, net.prediction, x_T, 999.0, 0.0, rtol)


def stages(method: str) -> int:
    return getattr(METHODS[method], "stages", 1)


def expint_runs(net, x_T, ref, nfes):
    out = {}
    sch = net.schedule
    for name in METHODS:
        if name.endswith("_x0"):
            continue  # flow-matching presets
        k = stages(name)
        for kind in KINDS:
            row = {}
            for nfe in nfes:
                if nfe % k:
                    continue
                ts = grid(sch, nfe // k, kind, t_start=999.0, t_end=0.0)
                x = Sampler(sch, ts, name)(net.model, x_T, check_finite=False)
                if not torch.isfinite(x).all():
                    row[nfe] = (float("inf"), float("inf"))
                    continue
                row[nfe] = (metrics.rmse(x, ref), metrics.frechet_distance(x, ref))
            out[f"expint {name} ({kind})"] = row
    return out


def diffusers_runs(net, x_T, ref, nfes):
    import diffusers as d

    common = dict(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02)
    peers = {
        "DDIM": lambda: d.DDIMScheduler(**common, set_alpha_to_one=False, clip_sample=False),
        "DDIM trailing": lambda: d.DDIMScheduler(
            **common, set_alpha_to_one=False, clip_sample=False, timestep_spacing="trailing"
        ),
    }
    for order in (1, 2, 3):
        peers[f"DEIS-{order}"] = lambda o=order: d.DEISMultistepScheduler(**common, solver_order=o)
        peers[f"DEIS-{order} karras"] = lambda o=order: d.DEISMultistepScheduler(
            **common, solver_order=o, use_karras_sigmas=True
        )
    for order in (2, 3):
        for karras in (False, True):
            tag = " karras" if karras else ""
            peers[f"DPM++{order}M{tag}"] = lambda o=order, k=karras: d.DPMSolverMultistepScheduler(
                **common, solver_order=o, final_sigmas_type="sigma_min", use_karras_sigmas=k
            )
            peers[f"UniPC-{order}{tag}"] = lambda o=order, k=karras: d.UniPCMultistepScheduler(
                **common, solver_order=o, final_sigmas_type="sigma_min", use_karras_sigmas=k
            )
    out = {}
    for pname, make in peers.items():
        row = {}
        for nfe in nfes:
            s = make()
            s.set_timesteps(nfe)
            x = x_T.clone()
            for t in s.timesteps:
                x = s.step(net.model(x, torch.full((x.shape[0],), float(t), dtype=x.dtype)), t, x).prev_sample
            finite = bool(torch.isfinite(x).all())
            row[nfe] = (
                (metrics.rmse(x, ref), metrics.frechet_distance(x, ref)) if finite else (np.inf, np.inf)
            )
        out[f"diffusers {pname}"] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--nfe", default="3,4,5,6,8,10,15,20,30")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    nfes = [int(v) for v in args.nfe.split(",")]
    net = pretrained.load("digits_eps")
    x_T = torch.randn(args.batch, *net.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = reference(net, x_T, 1e-8)
    ref_err = metrics.rmse(reference(net, x_T, 1e-6), ref)
    floor = metrics.split_half_frechet(ref)
    data_fd = metrics.frechet_distance(ref, net.data())
    print(
        f"digits_eps, batch {args.batch}; reference dopri5 rtol 1e-8 "
        f"(rtol 1e-6 differs by RMSE {ref_err:.1e}); "
        f"Fréchet(reference, training digits) = {data_fd:.3f}; split-half noise floor of the reference set "
        f"{floor:.3f}\n"
    )
    results = {**expint_runs(net, x_T, ref, nfes), **diffusers_runs(net, x_T, ref, nfes)}
    print("| configuration | " + " | ".join(f"NFE {n}" for n in nfes) + " |")
    print("|---" * (len(nfes) + 1) + "|")
    for name, row in results.items():
        cells = [(f"{row[n][0]:.3g}" if np.isfinite(row[n][0]) else "NaN") if n in row else "—" for n in nfes]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\n### best per NFE (RMSE; Fréchet distance to the reference samples)\n")
    print("| NFE | best expint | RMSE | FD | best diffusers | RMSE | FD | diffusers/expint RMSE |")
    print("|---|---|---|---|---|---|---|---|")
    for n in nfes:
        be = min((r[n][0], k) for k, r in results.items() if k.startswith("expint") and n in r)
        bd = min((r[n][0], k) for k, r in results.items() if k.startswith("diffusers") and n in r)
        fe, fd = results[be[1]][n][1], results[bd[1]][n][1]
        ratio = bd[0] / be[0]
        print(f"| {n} | {be[1]} | {be[0]:.3f} | {fe:.3f} | {bd[1]} | {bd[0]:.3f} | {fd:.3f} | {ratio:.2f} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "diffusion_learned.json").write_text(
        json.dumps({k: {str(n): v for n, v in r.items()} for k, r in results.items()}, indent=1)
    )
    from expint._plotting import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    for name, row in results.items():
        ns = [n for n in nfes if n in row and np.isfinite(row[n][0])]
        style = (
            dict(lw=0.6, alpha=0.5)
            if name.startswith("expint")
            else dict(lw=1.0, ls=":", color="k", alpha=0.6)
        )
        ax.semilogy(ns, [row[n][0] for n in ns], **style)
    ax.set_xlabel("NFE")
    ax.set_ylabel("RMSE against the PF-ODE reference")
    ax.set_title("digits_eps: expint presets × grids (thin) and diffusers schedulers (dotted)")
    ax.grid(alpha=0.3, which="both")
    print(f"\nplot: {save(fig, out / 'diffusion_learned.png')}")


if __name__ == "__main__":
    main()
