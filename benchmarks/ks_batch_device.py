"""A batch of Kuramoto–Sivashinsky solutions on the torch backend: CPU vs CUDA.

Usage: python benchmarks/ks_batch_device.py [--batch 256] [--n 256] [--t-end 30] [--h 0.0625]

256 initial conditions (the Kassam–Trefethen u0 scaled by 1 + 0.01 i) integrated in one
call with expint's etdrk4, in complex128 (float64) and complex64 (float32), on the CPU
and, if available, on CUDA.  Prints a markdown table of wall times (CUDA timed after a
warm-up run, with torch.cuda.synchronize), the CUDA/CPU speed-up and the largest
difference between the CPU and CUDA solutions.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import expint
from expint import problems


def run(device: str, dtype: torch.dtype, args) -> tuple[float, torch.Tensor]:
    bp = problems.kuramoto_sivashinsky(args.n)
    u0 = np.fft.ifft(bp.y0).real
    batch = np.stack([np.fft.fft(u0 * (1 + 0.01 * i)) for i in range(args.batch)])
    y0 = torch.as_tensor(batch).to(device=device, dtype=dtype)

    def once():
        return expint.solve(bp.problem, y0, (0.0, args.t_end), scheme="etdrk4", dt=args.h).y[-1]

    if device.startswith("cuda"):
        once()  # warm-up: kernels, cuFFT plans, coefficient upload
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = once()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--t-end", type=float, default=30.0)
    ap.add_argument("--h", type=float, default=1 / 16)
    args = ap.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    steps = round(args.t_end / args.h)
    print(
        f"KS batch {args.batch} x N={args.n}, etdrk4, {steps} steps"
        + (f", GPU: {torch.cuda.get_device_name()}" if "cuda" in devices else ", no CUDA device")
    )
    print("\n| dtype | device | time [s] | ms/step | speed-up vs CPU | max rel. diff vs CPU |")
    print("|---|---|---|---|---|---|")
    for dtype in (torch.complex128, torch.complex64):
        cpu_t, cpu_y = run("cpu", dtype, args)
        for dev in devices:
            t, y = (cpu_t, cpu_y) if dev == "cpu" else run(dev, dtype, args)
            diff = float((y.cpu() - cpu_y).abs().max() / cpu_y.abs().max())
            print(
                f"| {str(dtype).replace('torch.', '')} | {dev} | {t:.3f} | {1e3 * t / steps:.3f} | "
                f"{cpu_t / t:.1f} | {diff:.1e} |"
            )


if __name__ == "__main__":
    main()
