"""Sampler accuracy on a Gaussian-mixture toy: expint vs diffusers, NFE 5–20.

Usage: python benchmarks/diffusion_toy.py [--out results] [--dim 64] [--batch 256]

Data: a mixture of 8 isotropic Gaussians in dimension 64 (means ~ N(0, 1.5² I), stds
0.05–0.5) under the 1000-step linear DDPM schedule (β 1e-4 … 0.02); the model is the
exact ε of the noised mixture (``expint.diffusion.toy``), so every error is sampler
error.  For each configuration the reference is the probability-flow ODE solved by
torchdiffeq (dopri5, rtol 1e-9) from the same x_T between the same start and end noise
levels as that configuration; RMSE = sqrt(mean((x − x_ref)²)).

expint: every method (and engine combinations such as the data prediction
interpolated in t) on the grids uniform in λ ("logsnr"), quadratic in t, Karras (ρ-power
7) and uniform in t, from t = 999 with the last step landing on σ = 0; the best grid per
method and NFE is reported.  diffusers: DDIM (leading, trailing), DEIS orders 1–3, DPM-Solver++ 2M/3M,
UniPC orders 2/3 — each with its default spacing, Karras sigmas and (DPM-Solver++)
λ-uniform steps.  Also checks that no expint method gives NaN/inf for any NFE 3–100.
Prints markdown tables and saves results/diffusion_toy.png.
"""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path

import numpy as np
import torch

from expint.diffusion import DEFAULT_METHOD, METHODS, DiscreteVP, ExponentialAdams, Sampler, grid, toy

NFES = (5, 6, 8, 10, 15, 20)
GRIDS = ("logsnr", "quadratic", "karras", "uniform")


def make_problem(dim: int, batch: int):
    sch = DiscreteVP.from_betas("linear", 1e-4, 0.02, 1000)
    rng = np.random.default_rng(0)
    means = 1.5 * rng.standard_normal((8, dim))
    stds = np.linspace(0.05, 0.5, 8)
    model = toy.GaussianMixture(means, stds, sch)
    x_T = torch.randn(batch, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    return sch, model, x_T


class References:
    def __init__(self, model, x_T):
        self.model, self.x_T, self.cache = model, x_T, {}

    def get(self, t0: float, t1: float):
        key = (round(t0, 6), round(t1, 6))
        if key not in self.cache:
            self.cache[key] = self.model.reference(self.x_T, t0, t1, rtol=1e-9)
        return self.cache[key]


def rmse(a, b) -> float:
    return float(((a - b) ** 2).mean().sqrt())


def steps_for(method, nfe: int) -> int:
    """Largest step count whose model evaluations fit in ``nfe``."""
    stages = getattr(METHODS[method] if isinstance(method, str) else method, "stages", 1)
    if stages == 1:
        return nfe
    return max(1, (nfe + stages - 1) // stages)  # the last step (to σ = 0) is one evaluation


def sigma_zero_grid(sch, n: int, kind: str) -> np.ndarray:
    """``n`` steps from t = 999 whose last step lands on σ = 0: the kind's grid to t = 0
    with its last point moved to the clean-data time (like diffusers' final σ = 0)."""
    ts = grid(sch, n, kind, t_start=999.0, t_end=0.0)
    ts[-1] = sch.t_data
    return ts


def candidates():
    """expint's named methods plus engine combinations no other library offers."""
    out = dict(METHODS)
    for r in (1, 2, 3):
        out[f"ExponentialAdams({r}, 't', 'x0')"] = ExponentialAdams(r, "t", "x0")
        out[f"ExponentialAdams({r}, 'rho', 'x0')"] = ExponentialAdams(r, "rho", "x0")
    out["ExponentialAdams(3, 'lam', 'x0')"] = ExponentialAdams(3, "lam", "x0")
    for r in (1, 2):
        for v in ("t", "lam"):
            for tg in ("eps", "x0"):
                m = ExponentialAdams(r, v, tg, corrector=True)
                out[m.name] = m
    return out


def run_expint(sch, model, x_T, refs):
    rows = {}
    ref = refs.get(999.0, -1.0)
    for name, method in candidates().items():
        best = {}
        for nfe in NFES:
            n = steps_for(method, nfe)
            for kind in GRIDS:
                try:
                    s = Sampler(sch, sigma_zero_grid(sch, n, kind), method)
                except ValueError:
                    continue
                if s.nfe > nfe:
                    continue
                err = rmse(s(model, x_T), ref)
                if nfe not in best or err < best[nfe][0]:
                    best[nfe] = (err, kind, s.nfe)
        rows[f"expint {name}"] = best
    return rows


def run_default(sch, model, x_T, refs):
    """What ``sample`` does when nothing is named: DEFAULT_METHOD on the schedule's
    default grid kind, here from t = 999 to σ = 0; and DDIM on the same grid."""
    ref = refs.get(999.0, -1.0)
    rows: dict = {"expint default": {}, "expint ddim (default grid)": {}}
    for nfe in NFES:
        ts = sigma_zero_grid(sch, nfe, "auto")
        for name, method in (("expint default", DEFAULT_METHOD), ("expint ddim (default grid)", "ddim")):
            s = Sampler(sch, ts, method)
            rows[name][nfe] = (rmse(s(model, x_T), ref), sch.default_grid, s.nfe)
    return rows


def diffusers_configs():
    import diffusers as d

    common = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")
    cfgs = {
        "DDIM (leading)": lambda: d.DDIMScheduler(**common, clip_sample=False),
        "DDIM (trailing)": lambda: d.DDIMScheduler(**common, clip_sample=False, timestep_spacing="trailing"),
    }
    for order in (1, 2, 3):
        cfgs[f"DEIS-{order}"] = lambda o=order: d.DEISMultistepScheduler(**common, solver_order=o)
        cfgs[f"DEIS-{order} karras"] = lambda o=order: d.DEISMultistepScheduler(
            **common, solver_order=o, use_karras_sigmas=True
        )
    for order in (2, 3):
        cfgs[f"DPM++{order}M"] = lambda o=order: d.DPMSolverMultistepScheduler(**common, solver_order=o)
        cfgs[f"DPM++{order}M karras"] = lambda o=order: d.DPMSolverMultistepScheduler(
            **common, solver_order=o, use_karras_sigmas=True
        )
        cfgs[f"DPM++{order}M λ-uniform"] = lambda o=order: d.DPMSolverMultistepScheduler(
            **common, solver_order=o, use_lu_lambdas=True
        )
        cfgs[f"UniPC-{order}"] = lambda o=order: d.UniPCMultistepScheduler(**common, solver_order=o)
        cfgs[f"UniPC-{order} karras"] = lambda o=order: d.UniPCMultistepScheduler(
            **common, solver_order=o, use_karras_sigmas=True
        )
    return cfgs


def run_diffusers(sch, model, x_T, refs):
    rows = {}
    for name, make in diffusers_configs().items():
        res = {}
        for nfe in NFES:
            s = make()
            s.set_timesteps(nfe)
            x = x_T.clone() * float(s.init_noise_sigma)
            calls = 0
            for t in s.timesteps:
                out = model(x, torch.full((x.shape[0],), float(t), dtype=x.dtype))
                calls += 1
                x = s.step(out, t, x).prev_sample
            # the noise levels this configuration actually integrates between
            if hasattr(s, "sigmas") and s.sigmas is not None and len(s.sigmas) == len(s.timesteps) + 1:
                rho0, rho1 = float(s.sigmas[0]), float(s.sigmas[-1])
                t0 = float(sch.t_of_rho(np.array([rho0]))[0])
                t1 = float(sch.t_of_rho(np.array([rho1]))[0]) if rho1 > 0 else -1.0
            else:  # DDIM: starts at its first timestep, ends at ᾱ = 1
                t0, t1 = float(s.timesteps[0]), -1.0
            res[nfe] = (rmse(x, refs.get(t0, t1)), f"t {t0:.0f}→{t1:.1f}", calls)
        rows[f"diffusers {name}"] = res
    return rows


def nan_sweep(sch, model, x_T) -> list[str]:
    bad = []
    x = x_T[:16]
    for name in METHODS:
        for nfe in range(3, 101):
            n = steps_for(name, nfe)
            out = Sampler(sch, sigma_zero_grid(sch, n, "logsnr"), name)(model, x, check_finite=False)
            if not torch.isfinite(out).all():
                bad.append(f"{name}@{nfe}")
    return bad


def table(rows: dict) -> str:
    head = "| method | " + " | ".join(f"NFE {n}" for n in NFES) + " |"
    lines = [head, "|---|" + "---|" * len(NFES)]
    for name, res in rows.items():
        cells = [f"{res[n][0]:.2e} ({res[n][1]})" if n in res else "—" for n in NFES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument(
        "--default-only",
        action="store_true",
        help="only the default against DDIM and the diffusers configurations (no method sweep, no NaN sweep)",
    )
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    sch, model, x_T = make_problem(args.dim, args.batch)
    refs = References(model, x_T)
    ours = {} if args.default_only else run_expint(sch, model, x_T, refs)
    theirs = run_diffusers(sch, model, x_T, refs)
    if not args.default_only:
        print("### expint (best grid per method; RMSE against the PF-ODE reference)\n")
        print(table(ours))
        print("\n### diffusers\n")
        print(table(theirs))
        print("\n### best of each library\n")
        print("| NFE | best expint | RMSE | best diffusers | RMSE | ratio diffusers/expint |")
        print("|---|---|---|---|---|---|")
        summary = {}
        for n in NFES:
            be = min(((r[n][0], k) for k, r in ours.items() if n in r))
            bd = min(((r[n][0], k) for k, r in theirs.items() if n in r))
            summary[n] = (be, bd)
            print(f"| {n} | {be[1]} | {be[0]:.2e} | {bd[1]} | {bd[0]:.2e} | {bd[0] / be[0]:.1f} |")
    default = run_default(sch, model, x_T, refs)
    print(f"\n### expint default ({DEFAULT_METHOD}, {sch.default_grid} grid) against DDIM on that grid and ")
    print("the best single diffusers configuration (one configuration for every NFE)\n")
    dd = default["expint default"]
    single = min(theirs, key=lambda k: np.mean([math.log(theirs[k][n][0]) for n in NFES]))
    print(f"| NFE | default | DDIM, same grid | {single} | {single} / default |")
    print("|---|---|---|---|---|")
    for n in NFES:
        ddim, peer = default["expint ddim (default grid)"][n][0], theirs[single][n][0]
        print(f"| {n} | {dd[n][0]:.3g} | {ddim:.3g} | {peer:.3g} | {peer / dd[n][0]:.2f} |")
    gm = math.exp(np.mean([math.log(theirs[single][n][0] / dd[n][0]) for n in NFES]))
    print(f"\ngeometric mean of {single} / default over NFE {NFES[0]}–{NFES[-1]}: {gm:.2f}")
    if args.default_only:
        return
    bad = nan_sweep(sch, model, x_T)
    print(
        f"\nNaN/inf sweep, every expint method, NFE 3–100 (λ-uniform grid to σ = 0): "
        f"{'none' if not bad else ', '.join(bad)}"
    )

    from expint._plotting import pyplot, save

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    for i, (name, res) in enumerate(ours.items()):
        ax.semilogy(
            NFES,
            [res[n][0] if n in res else math.nan for n in NFES],
            "-o",
            ms=3,
            color=plt.cm.tab20(i % 20),
            label=name,
        )
    for res in theirs.values():
        ax.semilogy(NFES, [res[n][0] for n in NFES], ":", color="gray", lw=1)
    ax.semilogy([], [], ":", color="gray", label="diffusers configurations")
    # the envelopes the comparison is about: best configuration of each library per NFE
    for rows, style, label in ((ours, "k-", "best expint"), (theirs, "r--", "best diffusers")):
        ax.semilogy(
            NFES, [min(r[n][0] for r in rows.values() if n in r) for n in NFES], style, lw=3, label=label
        )
    ax.set_xlabel("NFE")
    ax.set_ylabel("RMSE vs PF-ODE reference")
    ax.set_title(f"Gaussian mixture (d = {args.dim}), 1000-step linear DDPM schedule")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6, ncol=2)
    print(f"\nplot: {save(fig, Path(args.out) / 'diffusion_toy.png')}")


if __name__ == "__main__":
    main()
