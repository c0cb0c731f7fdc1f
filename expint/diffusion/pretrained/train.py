"""Train a shipped model: ``python -m expint.diffusion.pretrained.train NAME [--steps N] [--device D]``.

Seeded; the MLPs take a few minutes on 2 CPU cores, ``digits16_unet`` a few minutes on
a GPU (``--device cuda``; the same seed on another device gives other weights).  The
loss is the usual denoising one for the model's prediction type: for ``eps``,
$\\|ε_θ(α_t x_0 + σ_t ε, t) - ε\\|^2$
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

from . import SPECS, build_network, load_data, probe_input
from ._network import state_to_arrays, time_features


def train(
    name: str,
    steps: int,
    batch: int = 256,
    lr: float = 2e-3,
    seed: int = 0,
    progress: bool = True,
    device: str = "cpu",
    max_seconds: float | None = None,
) -> dict:
    import torch

    spec = SPECS[name]
    torch.manual_seed(seed)
    g = torch.Generator(device=device).manual_seed(seed)
    flat = torch.from_numpy(load_data(spec.dataset)).float()
    data = flat.reshape(-1, *spec.shape).to(device) if spec.arch == "unet" else flat.to(device)
    sched = spec.schedule()
    shape = tuple(data.shape[1:])
    net = build_network(spec).to(device)
    ema = build_network(spec).to(device)
    ema.load_state_dict(net.state_dict())
    ema_p, net_p = list(ema.parameters()), list(net.parameters())
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
    done = 0
    for i in range(steps):
        if max_seconds is not None and time.perf_counter() - start > max_seconds:
            break  # a safety stop on a rented machine; the steps done are recorded
        idx = torch.randint(0, data.shape[0], (batch,), generator=g, device=device)
        x0 = data[idx]
        t = torch.randint(0, n_train, (batch,), generator=g, device=device).float()
        eps = torch.randn(batch, *shape, generator=g, device=device)
        expand = (slice(None),) + (None,) * len(shape)
        a = sched.alpha(t.double()).float()[expand]
        s = sched.sigma(t.double()).float()[expand]
        xt = a * x0 + s * eps
        target = {"eps": eps, "x0": x0, "v": a * eps - s * x0}[spec.prediction]
        loss = ((net(xt, time_features(t, spec.t_dim, spec.t_scale)) - target) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched_lr.step()
        with torch.no_grad():
            torch._foreach_mul_(ema_p, 0.999)
            torch._foreach_add_(ema_p, net_p, alpha=0.001)
        losses.append(loss.detach())  # no host sync per step on a GPU
        if bar is not None:
            bar.update()
            if i % 500 == 0:
                bar.set_postfix(loss=f"{float(torch.stack(losses[-500:]).mean()):.4f}")
        done = i + 1
    if bar is not None:
        bar.close()
    ema = ema.cpu().eval()
    x, t = probe_input(spec)
    with torch.no_grad():
        inp = x if spec.arch == "unet" else x.reshape(16, -1)
        checksum = float(ema(inp, time_features(t, spec.t_dim, spec.t_scale)).double().sum())
    return {
        "arrays": state_to_arrays(ema),
        "checksum": checksum,
        "final_loss": float(torch.stack(losses[-1000:]).mean()),
        "seconds": time.perf_counter() - start,
        "steps": done,
        "seed": seed,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", choices=list(SPECS))
    ap.add_argument("--steps", type=int, default=12_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="torch device to train on, e.g. cuda")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--max-seconds", type=float, default=None, help="stop early after this long")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    args = ap.parse_args(argv)
    options = {key: getattr(args, key) for key in ("batch", "lr", "seed", "device", "max_seconds")}
    res = train(args.name, args.steps, **options)
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
