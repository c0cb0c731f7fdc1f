"""Gray–Scott 256² with numpy, torch on the CPU and torch on CUDA: one configuration, timed.

Usage: python benchmarks/gray_scott_device.py [--n 256] [--t-end 100] [--steps 200]
       [--rtol 1e-6] [--variants fourier,fd]

The built-in Gray–Scott problem (`expint.problems.gray_scott`), in its real-FFT form
(``Diagonal`` L, FFTs in N) and its finite-difference form (``Sparse`` L: Krylov
φ-products; on torch states through a torch CSR copy of the scipy matrix), integrated
to ``t_end`` by ``krogstad`` on ``--steps`` fixed steps and by the adaptive ``whalen53``
at ``--rtol`` (``atol = rtol·max|y0|``).  Each runs on numpy (CPU), torch float64 on
the CPU and, where CUDA is available, torch float64 and float32 on the GPU, each timed
after an untimed warm-up run (φ-coefficients cached, matrix copies and kernels made;
CUDA with ``torch.cuda.synchronize``).  Prints a markdown table of wall
times, the speed-up over numpy, and each run's largest difference from the numpy
result relative to its maximum (the same arithmetic: rounding-level for float64).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import expint
from expint import problems


def _timed(bp, y0, t_end: float, config: dict, sync) -> tuple[float, np.ndarray]:
    def once():
        return expint.solve(bp.problem, y0, (0.0, t_end), **config).y[-1]

    once()  # warm-up for every backend: φ-coefficients, matrix copies, kernels, FFT plans
    if sync is not None:
        sync()
    start = time.perf_counter()
    out = once()
    if sync is not None:
        sync()
    seconds = time.perf_counter() - start
    host = np.asarray(out.cpu().numpy() if hasattr(out, "cpu") else out)
    return seconds, host.astype(np.result_type(host.dtype, np.float64))  # float32/complex64 widened


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--t-end", type=float, default=100.0)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--rtol", type=float, default=1e-6)
    ap.add_argument("--variants", default="fourier,fd")
    args = ap.parse_args()
    import torch

    backends = [("numpy", None, 64), ("torch CPU float64", "cpu", 64)]
    if torch.cuda.is_available():
        backends += [("torch CUDA float64", "cuda", 64), ("torch CUDA float32", "cuda", 32)]
    head = f"| Gray–Scott {args.n}², T = {args.t_end:g} | backend | time | × numpy |"
    print(head + " max rel. diff from numpy |\n|---|---|---|---|---|")
    for variant in args.variants.split(","):
        bp = problems.gray_scott(args.n, variant=variant)
        scale = float(np.max(np.abs(bp.y0)))
        # the real-FFT state is complex: complex128 / complex64 there
        kinds = (
            (torch.complex128, torch.complex64) if np.iscomplexobj(bp.y0) else (torch.float64, torch.float32)
        )
        configs = {
            f"krogstad, {args.steps} steps": {"scheme": "krogstad", "n_steps": args.steps},
            f"whalen53, rtol {args.rtol:g}": {
                "scheme": "whalen53",
                "rtol": args.rtol,
                "atol": args.rtol * scale,
            },
        }
        for label, config in configs.items():
            base_time, base = None, None
            for name, dev, bits in backends:
                if dev is None:
                    y0, sync = bp.y0, None
                else:
                    y0 = torch.from_numpy(bp.y0).to(device=dev, dtype=kinds[bits == 32])
                    sync = torch.cuda.synchronize if dev == "cuda" else None
                seconds, out = _timed(bp, y0, args.t_end, config, sync)
                if base is None:
                    base_time, base = seconds, out
                diff = float(np.max(np.abs(out - base)) / np.max(np.abs(base)))
                row = f"| {variant}: {label} | {name} | {seconds:.2f} s | {base_time / seconds:.2f} |"
                print(f"{row} {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
