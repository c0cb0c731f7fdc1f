"""`phiv` on torch sparse layouts against the scipy CSR matrix, on the CPU.

Usage: python benchmarks/torch_sparse_layouts.py [--n 128] [--rounds 5]

The 5-point Laplacian of ``krylov_phiv.py`` (D = 0.01, t = 0.05) on an ``n × n``
grid, ``tol = 1e-10``, products "exp" (``e^{tA}v``) and "phi2" (an exponential-RK
stage).  ``A`` is passed as a scipy CSR matrix (numpy vectors), as torch COO, CSR and
CSC tensors (torch vectors), and as `expint.Sparse` of the COO tensor (which stores it
as CSR).  Rounds are interleaved; each configuration keeps its fastest call.  Prints
milliseconds and the time relative to scipy.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from krylov_phiv import cold  # timed calls start without kept Chebyshev coefficients

import expint


def main() -> None:
    import torch
    from krylov_phiv import laplacian

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    a = laplacian(args.n)
    coo = a.tocoo()
    at = torch.sparse_coo_tensor(
        np.vstack([coo.row, coo.col]), coo.data, size=a.shape, check_invariants=True
    ).coalesce()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: "CSR support is in beta"
        layouts = {
            "scipy CSR": a,
            "torch COO": at,
            "torch CSR": at.to_sparse_csr(),
            "torch CSC": at.to_sparse_csc(),
            "Sparse(torch COO)": expint.Sparse(at),
        }
    rng = np.random.default_rng(0)
    x = np.linspace(0.0, 1.0, args.n)
    smooth = (np.sin(np.pi * x)[:, None] * np.sin(np.pi * x)[None, :]).ravel()
    v = smooth + 0.1 * rng.standard_normal(a.shape[0])
    print(f"| {args.n}² Laplacian, tol 1e-10 | " + " | ".join(layouts) + " |")
    print("|---|" + "---|" * len(layouts))
    for kind, vs in (("exp", [v]), ("phi2", [v, 0.5 * v, 0.25 * v])):
        best = dict.fromkeys(layouts, np.inf)
        for _ in range(args.rounds):
            for name, mat in layouts.items():
                vecs = vs if name.startswith("scipy") else [torch.from_numpy(u) for u in vs]
                start = time.perf_counter()
                cold(expint.phiv)(mat, vecs, 0.05, tol=1e-10)
                best[name] = min(best[name], time.perf_counter() - start)
        base = best["scipy CSR"]
        cells = [f"{1e3 * s:.1f} ms ({s / base:.1f}×)" for s in best.values()]
        print(f"| {kind} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
