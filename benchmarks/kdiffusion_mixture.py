"""k-diffusion's ODE samplers and their expint counterparts on a Gaussian mixture.

Usage: python benchmarks/kdiffusion_mixture.py [--batch 256] [--steps 5,10,20,40,80,160]

k-diffusion's convention (``x = x0 + σ ε``, a denoiser returning x0) is expint's `EDM`
schedule with an x0 prediction, so ``sample_expint`` runs both on the same model and
the same Karras grid (σ 80 → 0.002, then 0).  The model is the exact denoiser of a
two-component mixture in 3-D (``expint.diffusion.toy``), so every error is sampler
error; the reference is the probability-flow ODE solved by torchdiffeq (dopri5, rtol
1e-10) from the same noise.  Prints the RMS error per grid and method pair, and each
method's model calls.  The pairs that must agree to rounding (Euler/``ddim``,
LMS/``rhoab3``) are checked in ``tests/test_peers.py``; this table shows the others.
Needs k-diffusion (``pip install --no-deps k-diffusion``; ``make test`` installs it).
"""

from __future__ import annotations

import argparse

import torch
from _kdiffusion import load_sampling

from expint.diffusion import EDM, grid, toy
from expint.diffusion.integrations import sample_expint

#: k-diffusion sampler -> the expint method shown next to it
PAIRS = (
    ("sample_euler", "ddim"),
    ("sample_heun", "rhork2"),
    ("sample_lms", "rhoab3"),
    ("sample_dpmpp_2m", "dpmpp2m"),
    (None, "dpmpp3m_pc"),
    (None, "unipc2"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", default="5,10,20,40,80,160")
    args = parser.parse_args()
    kd = load_sampling()
    if kd is None:
        raise SystemExit("k-diffusion is not installed: pip install --no-deps k-diffusion")
    sch = EDM(0.002, 80.0)
    mix = toy.GaussianMixture([[1.0, 0.5, 0.0], [-1.0, -0.3, 0.5]], [0.3, 0.5], sch)
    calls = [0]

    def denoiser(x, sigma):
        calls[0] += 1
        return mix.x0(x, sigma)

    noise = torch.randn(args.batch, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = mix.reference(noise * sch.t_max, sch.t_max, 0.0)

    def run(sampler, x, sigmas, **options):
        calls[0] = 0
        out = sampler(denoiser, x, sigmas, disable=True, **options)
        return float(((out - ref) ** 2).mean().sqrt()), calls[0]

    names = [f"k-diffusion {k[7:]} / expint {m}" if k else f"expint {m}" for k, m in PAIRS]
    print("## Gaussian mixture (3-D, EDM), Karras grid to σ = 0: RMS error (model calls)\n")
    print("| steps | " + " | ".join(names) + " |")
    print("|---" * (len(PAIRS) + 1) + "|")
    for n in (int(s) for s in args.steps.split(",")):
        sigmas = torch.as_tensor(grid(sch, n, "karras", final_zero=True))
        x = noise * sigmas[0]
        cells = []
        for peer, method in PAIRS:
            ours, our_calls = run(sample_expint, x, sigmas, method=method)
            cell = f"{ours:.2e} ({our_calls})"
            if peer is not None:
                theirs, their_calls = run(getattr(kd, peer), x, sigmas)
                cell = f"{theirs:.2e} ({their_calls}) / " + cell
            cells.append(cell)
        print(f"| {n} | " + " | ".join(cells) + " |")
    size = float((ref**2).mean().sqrt())
    print(f"\nreference: torchdiffeq dopri5 at rtol 1e-10; RMS of the samples {size:.2f}")


if __name__ == "__main__":
    main()
