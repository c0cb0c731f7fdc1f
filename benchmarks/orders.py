"""Observed classical and stiff orders of every scheme in the catalogue.

Usage: python benchmarks/orders.py [--out results]

Classical: the non-stiff test problem (expint.problems.nonstiff) against torchdiffeq
dopri5 at rtol 1e-13 in float64 (torchdiffeq's dopri8 is
less accurate on this problem: 7e-11 off at rtol 1e-13).  Stiff: the Hochbruck–Ostermann parabolic problem
(exact solution), h = 1/4 … 1/256.  Observed order = slope of a log–log least-squares
fit over the last 4 step sizes (the first 3 for order-5 schemes on the stiff problem,
whose error reaches the rounding floor at h = 1/256).  Prints a markdown table and
saves results/orders.png (error against step size, both problems).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torchdiffeq

import expint
from expint import problems


def reference(bp) -> np.ndarray:
    y0 = torch.as_tensor(bp.y0)
    ts = torch.tensor(bp.t_span, dtype=torch.float64)
    out = torchdiffeq.odeint(
        lambda t, y: bp.problem.rhs(float(t), y), y0, ts, method="dopri5", rtol=1e-13, atol=1e-15
    )
    return out[-1].numpy()


def slope(hs, errs) -> float:
    return float(np.polyfit(np.log(hs), np.log(errs), 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results")
    args = ap.parse_args()
    ns = problems.nonstiff()
    ref = reference(ns)
    ho = problems.hochbruck_ostermann()
    exact = ho.exact(1.0)
    n_steps = [5, 10, 20, 40, 80, 160, 320, 640, 1280]
    hs_stiff = [1 / 2**k for k in range(2, 9)]
    rows, curves = [], {}
    for sch in expint.schemes.catalog():
        e_ns = [
            np.max(np.abs(expint.solve(ns.problem, ns.y0, ns.t_span, scheme=sch.name, n_steps=n).y[-1] - ref))
            for n in n_steps
        ]
        e_st = []
        for h in hs_stiff:
            sol = expint.solve(ho.problem, ho.y0, ho.t_span, scheme=sch.name, dt=h)
            e_st.append(np.max(np.abs(sol.y[-1] - exact)) if sol.success else np.inf)
        h_ns = [2.0 / n for n in n_steps]
        # fit the 4 finest steps whose error is well above the reference's accuracy (1e-11)
        ok = [i for i, e in enumerate(e_ns) if 1e-11 < e < 1e-1][-4:]
        p_ns = slope([h_ns[i] for i in ok], [e_ns[i] for i in ok])
        sel = slice(-5, -1) if sch.order == 5 else slice(-4, None)
        p_st = slope(hs_stiff[sel], e_st[sel])
        rows.append((sch, p_ns, p_st))
        curves[sch.name] = (h_ns, e_ns, hs_stiff, e_st)
    print(
        "| scheme | family | stages | classical order | observed (non-stiff) | stiff order (theory) "
        "| observed (Hochbruck–Ostermann) |"
    )
    print("|---|---|---|---|---|---|---|")
    for sch, p_ns, p_st in rows:
        print(
            f"| {sch.name} | {sch.family} | {sch.stages} | {sch.order} | {p_ns:.2f} | {sch.stiff_order} | "
            f"{p_st:.2f} |"
        )

    from expint._plotting import pyplot, save

    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for i, (name, (h1, e1, h2, e2)) in enumerate(curves.items()):
        style = dict(color=plt.cm.tab20(i % 20), marker="o", ms=3)
        axes[0].loglog(h1, e1, label=name, **style)
        axes[1].loglog(h2, e2, label=name, **style)
    axes[0].set_title("non-stiff test problem (vs torchdiffeq dopri5)")
    axes[1].set_title("Hochbruck–Ostermann parabolic problem (exact)")
    for ax in axes:
        ax.set_xlabel("step size h")
        ax.set_ylabel("max error at T")
        ax.grid(alpha=0.3, which="both")
    axes[1].legend(fontsize=7, ncol=2)
    print(f"\nplot: {save(fig, Path(args.out) / 'orders.png')}")


if __name__ == "__main__":
    main()
