"""Per-sample step sizes against one shared step sequence, at equal worst-member accuracy.

Usage: python benchmarks/batch_steps.py [--n 1024] [--batch 32] [--torch]

Kuramoto–Sivashinsky (Fourier, N modes, T = 30) on a batch of initial conditions
``a_b · u_0`` whose members differ in how hard they are:

* ``spread``: amplitudes ``a_b`` geometrically spaced from 0.05 to 2;
* ``one hard``: every member at 0.1 except one at 2.

Both modes of `expint.solve` (``batch_steps="shared"`` and ``"independent"``, the
latter also with ``error_norm="max"``) run ``krogstad43`` at rtol 1e-5 … 1e-8 with
``atol = rtol · s``, ``s = 0.05·max|u_0|``.
Error: the largest max-norm error of any member against that member's own run at
rtol 1e-11, divided by ``s`` (the scale the tolerance is stated in).  Printed per
configuration: best of 2 wall times, that error, batched iterations and member-steps
(Σ_b steps_b, the arithmetic actually done), then the time each mode needs for an
error of 1e-6 (log–log interpolation).  The shared mode's error norm averages over
the batch: its easy members take the hard member's small steps and end far more
accurate than asked, which is the work the independent mode saves.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import expint
from expint import problems

TARGET = 1e-6


def batch(kind: str, size: int) -> np.ndarray:
    if kind == "spread":
        return np.geomspace(0.05, 2.0, size)
    amp = np.full(size, 0.1)
    amp[size // 2] = 2.0
    return amp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--torch", action="store_true", help="run on torch tensors (CPU)")
    args = ap.parse_args()
    ks = problems.kuramoto_sivashinsky(args.n)
    span = (0.0, 30.0)
    scale = 0.05 * np.abs(ks.y0).max()
    rtols = [1e-5, 1e-6, 1e-7, 1e-8]
    print(f"KS N = {args.n}, batch {args.batch}, T = {span[1]:g}, krogstad43\n")
    print("| batch | mode | rtol | time (ms) | worst error / s | iterations | member-steps |")
    print("|---|---|---|---|---|---|---|")
    summary = []
    for kind in ("spread", "one hard"):
        y0 = batch(kind, args.batch)[:, None] * ks.y0[None, :]
        ref = np.stack(
            [
                expint.solve(ks.problem, y, span, scheme="krogstad43", rtol=1e-11, atol=1e-11 * scale).y[-1]
                for y in y0
            ]
        )
        start = y0
        if args.torch:
            import torch

            start = torch.from_numpy(y0)
        result = expint.study.WorkPrecisionResult(f"KS {kind}")
        for mode, norm in (("shared", "rms"), ("independent", "rms"), ("independent", "max")):
            label = mode if norm == "rms" else f"{mode}, max norm"
            for rtol in rtols:
                best = np.inf
                for _ in range(2):
                    t0 = time.perf_counter()
                    sol = expint.solve(
                        ks.problem,
                        start,
                        span,
                        scheme="krogstad43",
                        rtol=rtol,
                        atol=rtol * scale,
                        batch_steps=mode,
                        error_norm=norm,
                    )
                    best = min(best, time.perf_counter() - t0)
                y = np.asarray(sol.y[-1])
                err = float(np.max(np.abs(y - ref)) / scale)
                member_steps = sum(sol.stats.get("steps_per_sample", [sol.stats["steps"]] * args.batch))
                result.runs.append(
                    {"label": label, "setting": f"rtol={rtol:g}", "error": err, "seconds": best}
                )
                print(
                    f"| {kind} | {label} | {rtol:.0e} | {1e3 * best:.0f} | {err:.1e} | "
                    f"{sol.stats['steps']} | {member_steps} |"
                )
        times = result.time_to(TARGET)
        shared, indep, indep_max = (times[k] for k in ("shared", "independent", "independent, max norm"))
        summary.append(
            f"| {kind} | {1e3 * shared:.0f} | {1e3 * indep:.0f} | {1e3 * indep_max:.0f} | "
            f"{shared / indep:.2f} | {shared / indep_max:.2f} |"
        )
    print(f"\ntime to a worst error of {TARGET:.0e}·s\n")
    print(
        "| batch | shared (ms) | independent (ms) | independent, max norm (ms) | "
        "shared / independent | shared / independent, max norm |"
    )
    print("|---|---|---|---|---|---|")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
