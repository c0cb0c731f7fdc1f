"""Chebyshev against Lanczos in `expint.phiv`, as the vector gets rougher.

Usage: python benchmarks/chebyshev_phiv.py [--sizes 64,128,256] [--tols 1e-6,1e-10]
       [--noise 0,1e-6,1e-3,0.01,0.03,0.1,1] [--repeats 5]

Problem: the 5-point Dirichlet Laplacian of `benchmarks/krylov_phiv.py` (D = 0.01,
t = 0.05: ‖tA‖₁ = 17, 67, 264 on 64², 128², 256²) and vectors ``smooth + σ·noise``
(the smooth field of that script, seeded Gaussian noise) for each σ of ``--noise``.
Products ``exp`` (``e^{tA} v``) and ``phi2`` (``e^{tA} v_0 + t φ_1(tA) v_1 + t² φ_2(tA)
v_2``, every ``v_k`` of the same kind).

For every cell, `phiv` with ``method="krylov"`` (Lanczos; for "phi2" on phipm's
single-vector form) and ``method="chebyshev"`` (for "phi2" the same single-vector form
with its ``φ_2`` term expanded, or, where its cancellation rules out ``tol``, every term
expanded on its own vector): best wall time of ``--repeats`` (BLAS on one thread, as
`phiv` runs on these sizes), products, and the error against ``expm_multiply`` (SciPy's
Taylor method; for "phi2" on the augmented matrix).  The column ``‖Av‖/(r‖v‖)`` is the
roughness that ``method="auto"`` reads (``r`` the half-width of the Gershgorin
interval); "auto picks" is what it chose and "auto / best" its time against the faster
of the two.  The last table is the cost of one term of each recurrence next to one
product with ``A``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import scipy.sparse.linalg as sla
from threadpoolctl import threadpool_limits

import expint
from expint._chebyshev import spectral_interval

sys.path.insert(0, str(Path(__file__).resolve().parent))
from krylov_phiv import augmented, best_time, cold, laplacian


def fields(n: int, count: int, sigma: float) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, n + 2)[1:-1]
    smooth = (np.sin(np.pi * x)[:, None] * np.sin(2 * np.pi * x)[None, :]).ravel()
    return [smooth * (1 + 0.5 * k) + sigma * rng.standard_normal(n * n) for k in range(count)]


def reference(a, vs, t: float) -> np.ndarray:
    if len(vs) == 1:
        return sla.expm_multiply(t * a, vs[0])
    big, start = augmented(a, vs)
    return sla.expm_multiply(t * big, start)[: a.shape[0]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,128,256")
    ap.add_argument("--tols", default="1e-6,1e-10")
    ap.add_argument("--noise", default="0,1e-6,1e-3,0.01,0.03,0.1,1")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--t", type=float, default=0.05)
    args = ap.parse_args()
    t = args.t
    head = (
        "| grid | product | σ | ‖Av‖/(r‖v‖) | tol | Lanczos ms (products, error) "
        "| Chebyshev ms (products, error) | Lanczos / Chebyshev | auto picks | auto / best |"
    )
    print(head)
    print("|---" * 10 + "|")
    for n in (int(s) for s in args.sizes.split(",")):
        a = laplacian(n)
        lo, hi = spectral_interval(a)
        half = 0.5 * (hi - lo)
        for label, count in (("exp", 1), ("phi2", 3)):
            for sigma in (float(s) for s in args.noise.split(",")):
                vs = fields(n, count, sigma)
                rough = np.linalg.norm(a @ vs[0]) / (half * np.linalg.norm(vs[0]))
                ref = reference(a, vs, t)
                for tol in (float(s) for s in args.tols.split(",")):
                    cells, secs = [], {}
                    with threadpool_limits(limits=1):
                        for method in ("krylov", "chebyshev", "auto"):
                            sec, (w, info) = best_time(
                                lambda m=method, a=a, vs=vs, tol=tol: cold(expint.phiv)(
                                    a, vs, t, tol=tol, method=m
                                ),
                                args.repeats,
                            )
                            err = np.linalg.norm(w - ref) / np.linalg.norm(ref)
                            secs[method] = sec
                            if method != "auto":
                                cells.append(f"{1e3 * sec:.2f} ({info.matvecs}, {err:.0e})")
                            else:
                                picked = "Chebyshev" if info.chebyshev else "Lanczos"
                    ratio = secs["krylov"] / secs["chebyshev"]
                    auto = secs["auto"] / min(secs["krylov"], secs["chebyshev"])
                    print(
                        f"| {n}² | {label} | {sigma:g} | {rough:.3g} | {tol:.0e} | {cells[0]} | {cells[1]} "
                        f"| {ratio:.2f} | {picked} | {auto:.2f} |"
                    )
    per_term(args.sizes, args.repeats)


def per_term(sizes: str, repeats: int) -> None:
    """Wall time per term, (total − products)/terms, against one product."""
    print(
        "\n| grid | one product (ms) | Lanczos per product, beyond it (ms) "
        "| Chebyshev per product, beyond it (ms) |"
    )
    print("|---|---|---|---|")
    for n in (int(s) for s in sizes.split(",")):
        a = laplacian(n)
        v = fields(n, 1, 0.1)[0]
        with threadpool_limits(limits=1):
            one, _ = best_time(lambda a=a, v=v: a @ v, 50)
            row = [f"{1e3 * one:.3f}"]
            for method in ("krylov", "chebyshev"):
                sec, (_, info) = best_time(
                    lambda m=method, a=a, v=v: cold(expint.phiv)(a, [v], 0.05, tol=1e-10, method=m), repeats
                )
                row.append(f"{1e3 * (sec / info.matvecs - one):.3f}")
        print(f"| {n}² | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
