"""Train a shipped model: ``python -m expint.diffusion.pretrained.train NAME [--steps N]``.

Seeded and CPU-only (a few minutes on 2 cores).  The loss is the usual denoising one
for the model's prediction type: for ``eps``, :math:`\\|ε_θ(α_t x_0 + σ_t ε, t) - ε\\|^2`
with training timesteps drawn uniformly.  Adam with a cosine learning-rate decay; the
weights saved are an exponential moving average (decay 0.999), in float32, to
``expint/diffusion/pretrained/NAME.npz`` with the checksum that the tests compare.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from . import SPECS, load_data, probe_input
from ._network import build_mlp, state_to_arrays, time_features


def train(
    name: str, steps: int, batch: int = 256, lr: float = 2e-3, seed: int = 0, progress: bool = True
) -> dict:
    import torch

    spec = SPECS[name]
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    data = torch.from_numpy(load_data(spec.dataset)).float()
    sched = spec.schedule()
    dim = data.shape[1]
    net = build_mlp(dim, spec.width, spec.blocks, spec.t_dim)
    ema = build_mlp(dim, spec.width, spec.blocks, spec.t_dim)
    ema.load_state_dict(net.state_dict())
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched_lr = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i / steps, 1.0)))
    )
    n_train = int(sched.t_max) + 1
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"train {name}", unit="step")
    start, losses = time.perf_counter(), []
    for i in range(steps):
        idx = torch.randint(0, data.shape[0], (batch,), generator=g)
        x0 = data[idx]
        t = torch.randint(0, n_train, (batch,), generator=g).float()
        eps = torch.randn(batch, dim, generator=g)
        a = sched.alpha(t.double()).float()[:, None]
        s = sched.sigma(t.double()).float()[:, None]
        xt = a * x0 + s * eps
        target = {"eps": eps, "x0": x0, "v": a * eps - s * x0}[spec.prediction]
        loss = ((net(xt, time_features(t, spec.t_dim, spec.t_scale)) - target) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched_lr.step()
        with torch.no_grad():
            for pe, pn in zip(ema.parameters(), net.parameters(), strict=True):
                pe.mul_(0.999).add_(pn, alpha=0.001)
        losses.append(float(loss))
        if bar is not None:
            bar.update()
            if i % 500 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-500:]):.4f}")
    if bar is not None:
        bar.close()
    ema.eval()
    x, t = probe_input(spec)
    with torch.no_grad():
        checksum = float(ema(x.reshape(16, dim), time_features(t, spec.t_dim, spec.t_scale)).double().sum())
    return {
        "arrays": state_to_arrays(ema),
        "checksum": checksum,
        "final_loss": float(np.mean(losses[-1000:])),
        "seconds": time.perf_counter() - start,
        "steps": steps,
        "seed": seed,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", choices=list(SPECS))
    ap.add_argument("--steps", type=int, default=12_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    args = ap.parse_args(argv)
    res = train(args.name, args.steps, seed=args.seed)
    path = Path(args.out) / f"{args.name}.npz"
    np.savez(
        path,
        checksum=res["checksum"],
        steps=res["steps"],
        seed=res["seed"],
        final_loss=res["final_loss"],
        **{f"w:{k}": v for k, v in res["arrays"].items()},
    )
    print(
        f"{args.name}: {res['steps']} steps in {res['seconds']:.0f} s, final loss {res['final_loss']:.4f}, "
        f"checksum {res['checksum']:.6f}; wrote {path} ({path.stat().st_size / 1e6:.2f} MB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
