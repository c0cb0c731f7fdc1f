"""Samplers on the shipped learned networks: expint against diffusers and k-diffusion.

Usage: python benchmarks/diffusion_learned.py [--model digits_eps] [--device cpu] [--batch 512]
       [--nfe 3,4,5,6,8,10,15,20,30] [--opt-methods dpmpp2m_pc] [--opt-evals 200]
       [--opt-skip 0.03,0.08] [--calib-batch 128] [--peers UniPC,DEIS-2] [--ref-rtol 1e-8]
       [--out results]

Every sampler integrates the same probability-flow ODE of the model from t = 999 to
t = 0 (σ > 0 there) from the same float64 noise.  Reference: dopri5 in v = x/α against
ρ = σ/α at rtol 1e-8 (``--ref-rtol``; its own error, against a 100× looser run, is
printed).  Metrics: per-sample RMSE against the reference and the Fréchet distance in
data space to the reference samples (with the split-half noise floor of the reference
set).

- expint: every preset on every grid kind (uniform, quadratic, logsnr, karras); the
  default (``sample``'s method and grid); and grids from ``optimize_grid`` for the
  methods in ``--opt-methods`` (presets, or ``unipc2_diffusers``/``unipc3_diffusers``:
  diffusers' UniPC in expint's engine, no stability guard), calibrated on a batch of
  other noise (seed 1, 128 samples) and measured on the evaluation batch (seed 0).
  ``--opt-skip 0.03,0.08`` also searches grids whose first call is where the signal
  level α reaches each value, the interval before crossed by the prior flow
  (``optimize_grid(skip=...)``, up to NFE 10), keeping the best on the
  calibration batch.
- diffusers (if installed): DDIM, DEIS-1/2/3, DPM-Solver++ 2M/3M, UniPC-2/3, each with
  its default spacing, ``trailing``, Karras sigmas and λ-uniform steps where the
  scheduler offers them, all ending at t = 0 (``final_sigmas_type="sigma_min"``,
  ``set_alpha_to_one=False``).  Note the naming: diffusers' DEIS ``solver_order=3``
  interpolates 3 points, which is expint's ``lab2``.
- k-diffusion (if installed; its sampling module is loaded without the package's heavy
  dependencies): euler, heun, lms, dpm_2, dpmpp_2m on Karras (ρ = 7) and exponential
  (λ-uniform) sigmas from σ/α at t = 999 to σ/α at t = 0, the model wrapped as a
  denoiser of x/α.  heun and dpm_2 make two calls per step (even NFE only).

Writes ``diffusion_learned_MODEL.json``, ``diffusion_learned_MODEL.png`` (RMSE against
NFE) and ``diffusion_learned_MODEL_samples.png`` (samples at NFE 4 and 10), and prints
markdown tables.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _kdiffusion import load_sampling

from expint.diffusion import (
    DEFAULT_METHOD,
    METHODS,
    ExponentialAdams,
    Sampler,
    grid,
    metrics,
    optimize_grid,
    pretrained,
)
from expint.diffusion.models import conversion
from expint.diffusion.reference import pf_ode_reference

KINDS = ("uniform", "quadratic", "logsnr", "karras")
T0, T1 = 999.0, 0.0
# the diffusers configuration of each shipped model's schedule and prediction type
DIFFUSERS = {
    "digits_eps": dict(beta_schedule="linear", beta_start=1e-4, beta_end=0.02, prediction_type="epsilon"),
    "digits16_unet": dict(beta_schedule="linear", beta_start=1e-4, beta_end=0.02, prediction_type="epsilon"),
    "spiral_v": dict(beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction"),
}


def scalar(fn, t: float) -> float:
    return float(fn(np.array([t]))[0])


def score(x, ref):
    if not bool(torch.isfinite(x).all()):
        return (math.inf, math.inf)
    return (metrics.rmse(x, ref), metrics.frechet_distance(x, ref))


def report(name, row):
    cells = [f"{v[0]:.3g}" if np.isfinite(v[0]) else "NaN" for v in row.values()]
    print(f"  {name}: " + ", ".join(f"{n}: {c}" for n, c in zip(row, cells, strict=True)), flush=True)


# configurations of the engine that are not presets: the UniPC "bh2" form (two-node
# steps weighted as diffusers' UniPC does, its predictor–corrector, no gain guard, order
# capped by the steps left), with 2 and 3 interpolation points
EXTRA = {
    f"unipc{k}_diffusers": ExponentialAdams(
        k - 1, "lam", "x0", corrector=True, weights="unipc", max_gain=None,
        lower_order_final="always", name=f"unipc{k}_diffusers",
    )
    for k in (2, 3)
}  # fmt: skip


def method_of(name: str):
    return EXTRA.get(name, name)


def stages(method: str) -> int:
    return getattr(EXTRA.get(method) or METHODS[method], "stages", 1)


def skip_times(schedule, alphas: list[float]) -> list[float]:
    """The times at which the signal level α reaches each of ``alphas`` (VP: λ = log α/√(1−α²))."""
    lam = np.log(np.asarray(alphas) / np.sqrt(1.0 - np.asarray(alphas) ** 2))
    return [float(t) for t in np.asarray(schedule.t_of_lam(lam), dtype=np.float64)]


def expint_runs(net, x_T, ref, nfes, methods, samples):
    out = {}
    sch = net.schedule
    for name in methods:
        k = stages(name)
        for kind in KINDS:
            row = {}
            for nfe in nfes:
                if nfe % k:
                    continue
                ts = grid(sch, nfe // k, kind, t_start=T0, t_end=T1)
                row[nfe] = score(
                    Sampler(sch, ts, name, net.prediction)(net.model, x_T, check_finite=False), ref
                )
            out[f"expint {name} ({kind})"] = row
            report(f"expint {name} ({kind})", row)
    row = {}
    for nfe in nfes:
        x = Sampler(sch, grid(sch, nfe, t_start=T0, t_end=T1), DEFAULT_METHOD, net.prediction)(net.model, x_T)
        row[nfe] = score(x, ref)
        samples.setdefault(nfe, {})["expint default"] = x
    out["expint default"] = row
    report("expint default", row)
    return out


def optimized_runs(
    net, x_T, ref, nfes, methods, evals, samples, skip_alphas=(), skip_max_nfe=10, calib_batch=128
):
    """optimize_grid on a calibration batch (seed 1), scored on the evaluation batch; up to
    ``skip_max_nfe`` calls, also with the first call at each signal level of
    ``skip_alphas`` (the prior flow before it), the best on the calibration batch kept."""
    out, grids, cost = {}, {}, {}
    skips = skip_times(net.schedule, list(skip_alphas)) if skip_alphas else []
    calib = torch.randn(
        calib_batch, *net.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    calib = calib.to(x_T.device)
    calib_ref = pf_ode_reference(net.model, net.schedule, net.prediction, calib, T0, T1, 1e-7)
    for name in methods:
        k = stages(name)
        row = {}
        for nfe in nfes:
            if nfe % k or nfe // k < 2:
                continue
            ts, info = optimize_grid(
                net.model, net.schedule, nfe, method_of(name), prediction=net.prediction, x_T=calib,
                reference=calib_ref, start=KINDS, t_start=T0, t_end=T1, max_evals=evals,
                skip=skips if nfe <= skip_max_nfe else (), full_output=True,
            )  # fmt: skip
            sampler = Sampler(
                net.schedule, ts, method_of(name), net.prediction, prior_from=info["prior_from"]
            )
            x = sampler(net.model, x_T, check_finite=False)
            row[nfe] = score(x, ref)
            grids[f"{name} {nfe}"] = {"ts": ts.tolist(), "prior_from": info["prior_from"]}
            cost[f"{name} {nfe}"] = info
            samples.setdefault(nfe, {})[f"expint {name} (optimised)"] = x
        out[f"expint {name} (optimised)"] = row
        report(f"expint {name} (optimised)", row)
    return out, grids, cost


def diffusers_peers(model_name):
    import diffusers as d

    common = dict(num_train_timesteps=1000, **DIFFUSERS[model_name])
    classes = {"DDIM": (d.DDIMScheduler, [None])}
    classes["DEIS"] = (d.DEISMultistepScheduler, [1, 2, 3])
    classes["DPM++"] = (d.DPMSolverMultistepScheduler, [2, 3])
    classes["UniPC"] = (d.UniPCMultistepScheduler, [2, 3])
    spacings = {
        "": {},
        " trailing": {"timestep_spacing": "trailing"},
        " karras": {"use_karras_sigmas": True},
        " λ-uniform": {"use_lu_lambdas": True},
    }
    peers = {}
    for label, (cls, orders) in classes.items():
        accepted = inspect.signature(cls.__init__).parameters
        base = dict(common)
        for key, value in (
            ("final_sigmas_type", "sigma_min"),
            ("set_alpha_to_one", False),
            ("clip_sample", False),
        ):
            if key in accepted:
                base[key] = value
        if "thresholding" in accepted:
            base["thresholding"] = False
        for order in orders:
            for tag, extra in spacings.items():
                if not all(k in accepted for k in extra):
                    continue
                kw = {**base, **extra, **({"solver_order": order} if order else {})}
                name = (
                    label
                    if order is None
                    else (f"{label}{order}M" if label == "DPM++" else f"{label}-{order}")
                )
                peers[f"diffusers {name}{tag}"] = lambda cls=cls, kw=kw: cls(**kw)
    return peers


def peer_filter(spec: str):
    """``--peers``: comma-separated substrings a peer's name must contain one of; empty:
    every peer, ``none``: no peer."""
    parts = [p for p in spec.split(",") if p]
    if parts == ["none"]:
        return lambda name: False
    return lambda name: not parts or any(p in name for p in parts)


def diffusers_runs(net, model_name, x_T, ref, nfes, samples, keep=lambda name: True):
    try:
        peers = {k: v for k, v in diffusers_peers(model_name).items() if keep(k)}
    except ImportError as exc:
        print(f"(diffusers not available: {exc}; its rows are skipped)")
        return {}
    out = {}
    for pname, make in peers.items():
        row = {}
        for nfe in nfes:
            s = make()
            s.set_timesteps(nfe, device=x_T.device)
            x = x_T.clone()
            try:
                for t in s.timesteps:
                    tt = torch.full((x.shape[0],), float(t), dtype=x.dtype, device=x.device)
                    x = s.step(net.model(x, tt), t, x).prev_sample
            except (AssertionError, IndexError, RuntimeError, ValueError) as exc:  # a peer config that fails
                print(f"({pname} fails at NFE {nfe}: {type(exc).__name__}: {exc}; row dropped)")
                break
            row[nfe] = score(x, ref)
            samples.setdefault(nfe, {})[pname] = x
        else:
            out[pname] = row
            report(pname, row)
    return out


def kdiffusion_runs(net, x_T, ref, nfes, samples, keep=lambda name: True):
    kd = load_sampling()
    if kd is None:
        print("(k-diffusion not installed: pip install --no-deps k-diffusion; its rows are skipped)")
        return {}
    sch, pred = net.schedule, net.prediction
    r0, r1 = scalar(sch.rho, T0), scalar(sch.rho, T1)
    a0, a1 = scalar(sch.alpha, T0), scalar(sch.alpha, T1)

    def denoiser(v, sigma, **_):
        t = scalar(sch.t_of_rho, min(max(float(sigma[0]), r1), r0))
        a, s = scalar(sch.alpha, t), scalar(sch.sigma, t)
        x = a * v
        out = net.model(x, torch.full((v.shape[0],), t, dtype=v.dtype, device=v.device))
        A, B = conversion(pred, "x0", a, s)
        return A * x + B * out

    spacing = {
        "karras": lambda n: kd.get_sigmas_karras(n, r1, r0, rho=7.0)[:-1],
        "exponential": lambda n: kd.get_sigmas_exponential(n, r1, r0)[:-1],
    }
    two_call = {"heun", "dpm_2"}
    out = {}
    for sampler in ("euler", "heun", "lms", "dpm_2", "dpmpp_2m"):
        fn = getattr(kd, f"sample_{sampler}")
        for sname, make in spacing.items():
            if not keep(f"k-diffusion {sampler} ({sname})"):
                continue
            row = {}
            for nfe in nfes:
                per = 2 if sampler in two_call else 1
                if nfe % per:
                    continue
                sig = make(nfe // per + 1).to(dtype=torch.float64, device=x_T.device)  # nfe/per steps
                v = fn(denoiser, x_T / a0, sig, disable=True)
                x = a1 * v
                row[nfe] = score(x, ref)
                samples.setdefault(nfe, {})[f"k-diffusion {sampler} ({sname})"] = x
            out[f"k-diffusion {sampler} ({sname})"] = row
            report(f"k-diffusion {sampler} ({sname})", row)
    return out


def geomean(values):
    v = np.asarray(values, dtype=float)
    return float(np.exp(np.mean(np.log(v)))) if np.all(np.isfinite(v)) else math.inf


def summarise(results, nfes, ddim_rows):
    peers = {k: r for k, r in results.items() if not k.startswith("expint")}
    span = [n for n in nfes if 4 <= n <= 30]
    lines = []
    if peers:
        full = {k: r for k, r in peers.items() if all(n in r for n in span)}
        single = min(full, key=lambda k: geomean([full[k][n][0] for n in span]))
        d = results["expint default"]
        lines += [
            f"\n### (a) expint default ({DEFAULT_METHOD}, schedule's grid) against the best single peer "
            f"configuration over NFE {span[0]}–{span[-1]}: {single}\n",
            "| NFE | default RMSE | peer RMSE | peer/default | default FD | peer FD |",
            "|---|---|---|---|---|---|",
        ]
        for n in span:
            ratio = full[single][n][0] / d[n][0]
            lines.append(
                f"| {n} | {d[n][0]:.4f} | {full[single][n][0]:.4f} | {ratio:.2f} | {d[n][1]:.4f} | "
                f"{full[single][n][1]:.4f} |"
            )
        g = geomean([full[single][n][0] for n in span]) / geomean([d[n][0] for n in span])
        lines.append(f"\ngeometric mean of peer/default RMSE ratios over NFE {span[0]}–{span[-1]}: {g:.2f}")
        lines += [
            "\n### (b) best expint configuration (optimised grids allowed) against the best peer, per NFE\n",
            "| NFE | best expint | RMSE | FD | best peer | RMSE | FD | peer/expint RMSE |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for n in nfes:
            be = min((r[n][0], k) for k, r in results.items() if k.startswith("expint") and n in r)
            bp = min((r[n][0], k) for k, r in peers.items() if n in r)
            fe, fp = results[be[1]][n][1], results[bp[1]][n][1]
            lines.append(
                f"| {n} | {be[1]} | {be[0]:.4f} | {fe:.4f} | {bp[1]} | {bp[0]:.4f} | {fp:.4f} | "
                f"{bp[0] / be[0]:.2f} |"
            )
    worse = []
    for k, r in results.items():
        if not k.startswith("expint ") or "(" not in k or "optimised" in k:
            continue
        kind = k[k.index("(") + 1 : -1]
        base = ddim_rows.get(kind, {})
        worse += [
            f"{k} NFE {n}: {r[n][0]:.3f} vs {base[n][0]:.3f}"
            for n in r
            if n in base and r[n][0] > base[n][0] * 1.03
        ]
    lines.append(
        "\n### (c) presets worse than DDIM on the same grid (by more than 3%): "
        + (", ".join(worse) if worse else "none")
    )
    return "\n".join(lines)


def plot(results, nfes, model_name, out):
    from expint._plotting import finish, pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for name, row in results.items():
        ns = [n for n in nfes if n in row and np.isfinite(row[n][0])]
        if name == "expint default" or "optimised" in name:
            style = dict(lw=2.0, marker="o", ms=3, label=name)
        elif name.startswith("expint"):
            style = dict(lw=0.5, alpha=0.35, color="tab:blue")
        elif name.startswith("diffusers"):
            style = dict(lw=0.8, ls=":", color="k", alpha=0.5)
        else:
            style = dict(lw=0.8, ls="--", color="tab:red", alpha=0.5)
        ax.semilogy(ns, [row[n][0] for n in ns], **style)
    ax.plot([], [], lw=0.5, color="tab:blue", label="expint presets × grids")
    ax.plot([], [], lw=0.8, ls=":", color="k", label="diffusers schedulers")
    ax.plot([], [], lw=0.8, ls="--", color="tab:red", label="k-diffusion samplers")
    return finish(
        fig,
        ax,
        out,
        xlabel="NFE (network evaluations)",
        ylabel="RMSE against the PF-ODE reference",
        title=f"{model_name}: sampler error on a learned network",
    )


def plot_samples(samples, ref, results, net, out):
    """Reference and the default / best-peer samples at NFE 4 and 10."""
    from expint._plotting import pyplot, save

    plt = pyplot()
    shown = [n for n in (4, 10) if n in samples]
    if not shown:
        return None
    cols = []
    for n in shown:
        peers = [(results[k][n][0], k) for k in samples[n] if not k.startswith("expint") and k in results]
        picks = ["expint default", *[k for k in samples[n] if "optimised" in k][:1]]
        picks += [min(peers)[1]] if peers else []
        cols += [(n, k) for k in picks]
    fig, axes = plt.subplots(1, len(cols) + 1, figsize=(2.6 * (len(cols) + 1), 2.9))
    image = len(net.shape) == 3

    def show(ax, x, title):
        x = x.detach().cpu().double()
        if image:
            k = min(6, math.isqrt(x.shape[0]))  # a 6 × 6 tile, or what a small batch fills
            tiles = x[: k * k, 0].clamp(-1, 1).reshape(k, k, *net.shape[1:])
            ax.imshow(tiles.permute(0, 2, 1, 3).reshape(k * net.shape[1], k * net.shape[2]), cmap="gray")
        else:
            ax.scatter(x[:, 0], x[:, 1], s=2)
            ax.set_xlim(-2.2, 2.2)
            ax.set_ylim(-2.2, 2.2)
        ax.set_title(title, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])

    show(axes[0], ref, "reference (dopri5)")
    for ax, (n, k) in zip(axes[1:], cols, strict=True):
        show(ax, samples[n][k], f"NFE {n}: {k}\nRMSE {results[k][n][0]:.3f}")
    fig.tight_layout()
    return save(fig, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="digits_eps", choices=pretrained.names())
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="results")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--nfe", default="3,4,5,6,8,10,15,20,30")
    ap.add_argument("--methods", default=",".join(m for m in METHODS if not m.endswith("_x0")))
    ap.add_argument("--opt-methods", default="dpmpp2m_pc", help="comma-separated; empty for none")
    ap.add_argument("--opt-evals", type=int, default=200, help="sampler runs per optimised grid")
    ap.add_argument("--calib-batch", type=int, default=128, help="calibration samples (seed 1) for the grids")
    ap.add_argument(
        "--opt-skip",
        default="",
        help="signal levels α for the first model call (prior flow before), e.g. 0.03,0.08",
    )
    ap.add_argument(
        "--peers",
        default="",
        help="only the peers whose name contains one of these comma-separated strings "
        "(e.g. 'UniPC,DEIS-2'); 'none' for no peer; default: all",
    )
    ap.add_argument(
        "--ref-rtol",
        type=float,
        default=1e-8,
        help="rtol of the dopri5 reference (its error is estimated against 100× looser); "
        "a looser one saves model calls on a CPU",
    )
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    nfes = [int(v) for v in args.nfe.split(",")]
    net = pretrained.load(args.model)
    gen = torch.Generator().manual_seed(0)
    x_T = torch.randn(args.batch, *net.shape, dtype=torch.float64, generator=gen).to(args.device)
    ref = pf_ode_reference(net.model, net.schedule, net.prediction, x_T, T0, T1, args.ref_rtol)
    loose = pf_ode_reference(net.model, net.schedule, net.prediction, x_T, T0, T1, 100 * args.ref_rtol)
    ref_err = metrics.rmse(loose, ref)
    floor = metrics.split_half_frechet(ref)
    data_fd = metrics.frechet_distance(ref, net.data())
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(
        f"{args.model} on {device}, batch {args.batch}; reference dopri5 rtol {args.ref_rtol:g} "
        f"(rtol {100 * args.ref_rtol:g} differs by "
        f"RMSE {ref_err:.1e}); Fréchet(reference, training data) = {data_fd:.3f}; split-half noise floor "
        f"of the reference set {floor:.3f}\n"
    )
    samples: dict = {}
    methods = [m for m in args.methods.split(",") if m]
    results = expint_runs(net, x_T, ref, nfes, methods, samples)
    opt_methods = [m for m in args.opt_methods.split(",") if m]
    skip_alphas = [float(a) for a in args.opt_skip.split(",") if a]
    opt, grids, cost = optimized_runs(
        net, x_T, ref, nfes, opt_methods, args.opt_evals, samples, skip_alphas, calib_batch=args.calib_batch
    )
    results.update(opt)
    keep = peer_filter(args.peers)
    results.update(diffusers_runs(net, args.model, x_T, ref, nfes, samples, keep))
    results.update(kdiffusion_runs(net, x_T, ref, nfes, samples, keep))
    print("| configuration | " + " | ".join(f"NFE {n}" for n in nfes) + " |")
    print("|---" * (len(nfes) + 1) + "|")
    for name, row in results.items():
        cells = [(f"{row[n][0]:.3g}" if np.isfinite(row[n][0]) else "NaN") if n in row else "—" for n in nfes]
        print(f"| {name} | " + " | ".join(cells) + " |")
    ddim_rows = {k: results.get(f"expint ddim ({k})", {}) for k in KINDS}
    print(summarise(results, nfes, ddim_rows))
    for key, info in cost.items():
        print(
            f"optimised {key}: calibration loss {info['loss_start']:.4f} ({info['start']}) → "
            f"{info['loss']:.4f}, {info['model_calls']} model calls on {info['batch']} samples + "
            f"{info['reference_calls']} for the reference"
            + (f"; first call at t = {grids[key]['ts'][0]:.1f} (prior flow from {info['prior_from']:g})"
               if info["prior_from"] is not None else "")
        )  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"diffusion_learned_{args.model}"
    (out / f"{stem}.json").write_text(
        json.dumps(
            {
                "model": args.model,
                "device": device,
                "batch": args.batch,
                "reference_rtol": args.ref_rtol,
                "reference_error": ref_err,
                "split_half_floor": floor,
                "results": {k: {str(n): v for n, v in r.items()} for k, r in results.items()},
                "optimised_grids": grids,
                "optimisation_cost": cost,
            },
            indent=1,
        )
    )
    print(f"\nplot: {plot(results, nfes, args.model, out / f'{stem}.png')}")
    print(f"samples: {plot_samples(samples, ref, results, net, out / f'{stem}_samples.png')}")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
