"""Throughput of sharded sampling (expint.parallel) and the cost of sharding itself.

Usage: python benchmarks/sharded_throughput.py [--n 8000] [--batch 1000] [--nfe 10]
       [--method ddim] [--device cpu|cuda] [--procs 1,2]

The model is the shipped ``digits_eps`` MLP (cheap, so the runner's own costs show).
Rows, all in one run:

* ``bare loop``: one process, ``torch.randn`` for each batch and the sampler, nothing
  written — the floor;
* ``runner, 1 process``: :func:`expint.parallel.sample_sharded` in this process (same
  threads), into a fresh folder; overhead = its time / the bare loop's − 1, split into
  noise (the per-sample counter-based generator), shard I/O and manifest;
* ``torchrun, K processes``: ``torchrun --standalone --nproc_per_node K`` running
  this script's worker mode, one torch thread per process; time from the first rank's
  start of the run to the last rank's end (process start-up and imports excluded);
* ``resume check``: rerunning a finished folder (reads back and verifies every shard).

Samples per second are for the whole set.  Timings are single runs after a warm-up
(noisy machines: compare rows of the same run only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from expint.diffusion import Sampler, grid, pretrained
from expint.parallel import initial_noise, load_samples, sample_sharded


def _bare(net, n: int, batch: int, nfe: int, method: str, device: str) -> float:
    sampler = Sampler(net.schedule, grid(net.schedule, nfe, final_zero=True), method, net.prediction)
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        x = torch.randn(min(batch, n - start), *net.shape, device=device)
        sampler(net.model, x)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def _worker(args: argparse.Namespace) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo")
    device = args.device if args.device == "cpu" else f"cuda:{os.environ['LOCAL_RANK']}"
    sample_sharded(
        "digits_eps",
        args.worker + "-warm",
        n=dist.get_world_size() * 64,
        batch_size=64,
        nfe=args.nfe,
        method=args.method,
        device=device,
        progress=False,
    )
    dist.barrier()
    t0 = time.time()
    rep = sample_sharded(
        "digits_eps",
        args.worker,
        n=args.n,
        batch_size=args.batch,
        nfe=args.nfe,
        method=args.method,
        device=device,
        progress=False,
    )
    t1 = time.time()
    box = [None] * dist.get_world_size()
    dist.all_gather_object(box, (t0, t1, rep.compute_s, rep.io_s))
    if dist.get_rank() == 0:
        start, end = min(b[0] for b in box), max(b[1] for b in box)
        print(
            json.dumps(
                {"elapsed": end - start, "compute": sum(b[2] for b in box), "io": sum(b[3] for b in box)}
            )
        )
    dist.destroy_process_group()


def _torchrun(args: argparse.Namespace, procs: int, folder: str) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={procs}",
        __file__,
        "--",
        "--worker",
        folder,
        "--n",
        str(args.n),
        "--batch",
        str(args.batch),
        "--nfe",
        str(args.nfe),
        "--method",
        args.method,
        "--device",
        args.device,
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--nfe", type=int, default=10)
    ap.add_argument("--method", default="ddim")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--procs", default="1,2")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args([a for a in sys.argv[1:] if a != "--"])
    if args.worker:
        _worker(args)
        return
    net = pretrained.load("digits_eps")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        _bare(net, 2 * args.batch, args.batch, args.nfe, args.method, args.device)  # warm-up
        bare = _bare(net, args.n, args.batch, args.nfe, args.method, args.device)
        rows.append(("bare loop (1 process)", torch.get_num_threads(), bare, ""))
        t0 = time.perf_counter()
        for start in range(0, args.n, args.batch):
            initial_noise(net.schedule, 999.0, net.shape, 0, start, min(start + args.batch, args.n))
        noise = time.perf_counter() - t0

        def runner():
            return sample_sharded(
                "digits_eps",
                f"{tmp}/one",
                n=args.n,
                batch_size=args.batch,
                nfe=args.nfe,
                method=args.method,
                device=args.device,
                progress=False,
            )

        t0 = time.perf_counter()
        rep = runner()
        one = time.perf_counter() - t0
        per_shard = rep.compute_s + rep.io_s
        note = (
            f"overhead {100 * (one / bare - 1):+.1f}%: per shard {100 * (per_shard / bare - 1):+.1f}% "
            f"(noise {100 * noise / bare:.1f}%, shard I/O {100 * rep.io_s / bare:.1f}%), "
            f"once per run {one - per_shard:.3f} s (model load, fingerprint, manifest)"
        )
        rows.append(("runner (1 process)", torch.get_num_threads(), one, note))
        t0 = time.perf_counter()
        runner()
        rows.append(
            ("resume check of the finished run", torch.get_num_threads(), time.perf_counter() - t0, "")
        )
        ref = load_samples(f"{tmp}/one")
        for procs in (int(p) for p in args.procs.split(",")):
            out = f"{tmp}/tr{procs}"
            res = _torchrun(args, procs, out)
            same = bool((load_samples(out) == ref).all())
            rows.append(
                (
                    f"torchrun, {procs} process(es)",
                    1,
                    res["elapsed"],
                    f"shard I/O {100 * res['io'] / res['compute']:.1f}% of compute; "
                    f"samples {'identical' if same else 'DIFFER'}",
                )
            )
    print(
        f"\n{args.n} samples, {args.batch} per shard, NFE {args.nfe} ({args.method}), device {args.device}, "
        f"torch {torch.__version__}\n"
    )
    print("| run | threads/process | time (s) | samples/s | notes |\n|---|---|---|---|---|")
    for name, threads, secs, note in rows:
        print(f"| {name} | {threads} | {secs:.2f} | {args.n / secs:.0f} | {note} |")


if __name__ == "__main__":
    main()
