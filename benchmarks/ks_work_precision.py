"""Kuramoto–Sivashinsky work–precision: expint vs a plain ETDRK4 loop, scipy, torchdiffeq.

Usage: python benchmarks/ks_work_precision.py [--out results] [--quick]

KS (Kassam–Trefethen set-up) with N = 128 and N = 256 Fourier modes to T = 30.  The
reference is the plain Kassam–Trefethen ETDRK4 loop at h = 1/1024 (its distance to
expint's hochost4 at h = 1/512 is printed as a check).  Error: max-norm relative
error of u(x, 30).  Every method runs in this process on this machine; times are the
best of repeated runs for runs under a second.

Prints a markdown table per N, the time ratio expint etdrk4 / plain loop at equal
steps, and the time to reach error 1e-6 (log–log interpolation) for every method,
with the speed-up of expint etdrk4 over the fastest scipy / torchdiffeq method.
Saves results/ks_work_precision.png.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import itertools

from _kt_etdrk4 import ks_etdrk4

import expint
from expint import problems

T_END = 30.0
TARGET = 1e-6


def _timed(fn, budget: float = 1.0):
    """Best time of up to 5 runs within ``budget`` seconds, and the last result."""
    return expint.study.best_time(fn, repeat=5, budget=budget)


def run(n: int, quick: bool = False) -> tuple[list[dict], dict]:
    import torch
    import torchdiffeq
    from scipy.integrate import solve_ivp

    bp = problems.kuramoto_sivashinsky(n)
    to_u = bp.to_physical
    v_ref = ks_etdrk4(n, 1 / 1024, T_END)
    u_ref = to_u(v_ref)
    check = expint.solve(bp.problem, bp.y0, (0, T_END), scheme="hochost4", dt=1 / 512).y[-1]
    ref_check = float(np.max(np.abs(to_u(check) - u_ref)) / np.max(np.abs(u_ref)))

    def err(v) -> float:
        return float(np.max(np.abs(to_u(np.asarray(v)) - u_ref)) / np.max(np.abs(u_ref)))

    rows = []

    def record(method: str, setting: str, t: float, error: float, nfev: int, h: float | None = None) -> None:
        rows.append(dict(method=method, setting=setting, h=h, time=t, error=error, nfev=nfev))

    hs = [1 / 2, 1 / 4, 1 / 8, 1 / 16] if quick else [1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64]
    for h in hs:
        t, v = _timed(lambda h=h: ks_etdrk4(n, h, T_END))
        record("plain ETDRK4 loop", f"h=1/{round(1 / h)}", t, err(v), 4 * round(T_END / h), h)
        for scheme in ("etdrk4", "krogstad", "hochost4", "etdab4"):
            t, sol = _timed(lambda h=h, s=scheme: expint.solve(bp.problem, bp.y0, (0, T_END), scheme=s, dt=h))
            error = err(sol.y[-1]) if sol.success else math.inf
            record(f"expint {scheme}", f"h=1/{round(1 / h)}", t, error, sol.stats["nfev"], h)
    rhs = bp.problem.rhs
    tols = {"RK45": [1e-4, 1e-6, 1e-8], "DOP853": [1e-5, 1e-7, 1e-9, 1e-11], "BDF": [1e-4, 1e-6, 1e-8]}
    if quick:
        tols = {k: v[:2] for k, v in tols.items()}
    for method, rtols in tols.items():
        for rtol in rtols:
            t, res = _timed(
                lambda m=method, r=rtol: solve_ivp(rhs, (0, T_END), bp.y0, method=m, rtol=r, atol=r * 1e-3)
            )
            record(
                f"scipy {method}",
                f"rtol={rtol:g}",
                t,
                err(res.y[:, -1]) if res.success else math.inf,
                res.nfev,
            )
    y0t = torch.from_numpy(bp.y0)
    tt = torch.tensor([0.0, T_END], dtype=torch.float64)
    for rtol in [1e-4] if quick else [1e-4, 1e-7, 1e-10]:
        counter = {"n": 0}

        def f(t, y, c=counter):
            c["n"] += 1
            return rhs(float(t), y)

        t, out = _timed(lambda r=rtol: torchdiffeq.odeint(f, y0t, tt, method="dopri5", rtol=r, atol=r * 1e-3))
        record("torchdiffeq dopri5", f"rtol={rtol:g}", t, err(out[-1].numpy()), counter["n"])
    return rows, {"reference_check": ref_check}


def time_at(rows: list[dict], method: str, target: float = TARGET) -> float:
    """Time to reach error ``target``: log–log interpolation between the runs that
    bracket it; if every run is more accurate than ``target`` (explicit methods whose
    step is set by stability, not accuracy), the time of the cheapest run; NaN if no
    run reaches it."""
    pts = sorted((r["error"], r["time"]) for r in rows if r["method"] == method and np.isfinite(r["error"]))
    for (e1, t1), (e2, t2) in itertools.pairwise(pts):
        if e1 <= target <= e2:
            w = (math.log(target) - math.log(e1)) / (math.log(e2) - math.log(e1)) if e2 > e1 else 0.0
            return math.exp(math.log(t1) + w * (math.log(t2) - math.log(t1)))
    below = [t for e, t in pts if e <= target]
    return min(below) if below else math.nan


def report(n: int, rows: list[dict], info: dict) -> str:
    lines = [
        f"### N = {n}, T = {T_END:g} (reference check: hochost4 h=1/512 vs reference "
        f"{info['reference_check']:.1e})",
        "",
        "| method | setting | error | time [s] | N evals |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        e = f"{r['error']:.2e}" if np.isfinite(r["error"]) else "unstable"
        lines.append(f"| {r['method']} | {r['setting']} | {e} | {r['time']:.4f} | {r['nfev']} |")
    lines += ["", "expint etdrk4 time / plain loop time at the same step:", ""]
    plain = {r["h"]: r["time"] for r in rows if r["method"] == "plain ETDRK4 loop"}
    ratios = [r["time"] / plain[r["h"]] for r in rows if r["method"] == "expint etdrk4"]
    hs = [r["setting"] for r in rows if r["method"] == "expint etdrk4"]
    lines.append("| " + " | ".join(hs) + " |")
    lines.append("|" + "---|" * len(hs))
    lines.append("| " + " | ".join(f"{x:.2f}" for x in ratios) + " |")
    methods = list(dict.fromkeys(r["method"] for r in rows))
    at = {m: time_at(rows, m) for m in methods}
    lines += [
        "",
        f"time to reach error {TARGET:g} (log–log interpolation):",
        "",
        "| method | time [s] |",
        "|---|---|",
    ]
    lines += [f"| {m} | {at[m]:.4f} |" if np.isfinite(at[m]) else f"| {m} | not reached |" for m in methods]
    peers = [at[m] for m in methods if m.startswith(("scipy", "torchdiffeq")) and np.isfinite(at[m])]
    if peers and np.isfinite(at["expint etdrk4"]):
        lines.append(
            f"\nspeed-up of expint etdrk4 over the fastest scipy/torchdiffeq method at error "
            f"{TARGET:g}: {min(peers) / at['expint etdrk4']:.1f}x"
        )
    return "\n".join(lines)


def plot(results: dict[int, list[dict]], path: Path) -> Path:
    from expint._plotting import pyplot, save

    plt = pyplot()

    fig, axes = plt.subplots(1, len(results), figsize=(6.2 * len(results), 4.6), squeeze=False)
    for ax, (n, rows) in zip(axes[0], results.items(), strict=True):
        for i, m in enumerate(dict.fromkeys(r["method"] for r in rows)):
            pts = sorted((r["time"], r["error"]) for r in rows if r["method"] == m)
            style = "-o" if m.startswith("expint") else ("--s" if m.startswith("plain") else ":^")
            ax.loglog([p[0] for p in pts], [p[1] for p in pts], style, label=m, color=f"C{i}", ms=4)
        ax.axhline(TARGET, color="k", lw=0.6, alpha=0.5)
        ax.set_xlabel("wall time [s]")
        ax.set_ylabel("relative max error at T = 30")
        ax.set_title(f"Kuramoto–Sivashinsky, N = {n}")
        ax.grid(alpha=0.3, which="both")
    axes[0, 0].legend(fontsize=7)
    return save(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results")
    ap.add_argument("--quick", action="store_true", help="fewer settings (a smoke run)")
    args = ap.parse_args()
    from tqdm.auto import tqdm

    results = {}
    for n in tqdm([128, 256], desc="KS sizes"):
        rows, info = run(n, quick=args.quick)
        results[n] = rows
        print(report(n, rows, info), "\n", flush=True)
    print(f"plot: {plot(results, Path(args.out) / 'ks_work_precision.png')}")


if __name__ == "__main__":
    main()
