"""How large may `phiv`'s Lanczos basis grow?  The tuning behind ``_LANCZOS_BASIS_BYTES``.

Usage: python benchmarks/lanczos_basis_limit.py [--rounds 6]

Lanczos keeps its whole basis for the final combination.  On long vectors a larger
basis lets one sub-step cover a stiffer ``tA`` (fewer products, no rejected sub-steps),
but the basis is allocated on every call, and glibc serves blocks above 32 MiB by a
fresh ``mmap`` whose pages fault in on first touch.  This script times `expint.phiv`
with the byte budget of the basis at 0 (the fixed limit of 60 vectors), 32 MiB and
64 MiB, on the 1-D Dirichlet Laplacian with n = 3000 (‖tA‖₁ = 360; 24 KB per vector,
so both budgets allow 120) and on the 2-D 256² Laplacian of
``benchmarks/krylov_phiv.py`` (‖tA‖₁ = 264; 512 KiB per vector: 62 vectors in 32 MiB,
120 in 64 MiB), for ``exp`` and a ``phi2`` combination at tol 1e-6 and 1e-10.  The
configurations are interleaved over ``--rounds`` rounds (three calls each) and each cell
reports the fastest call, with the number of products with ``A``: this machine's speed
drifts by tens of percent within minutes, and interleaving keeps the drift out of the
comparison.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
from krylov_phiv import cold  # timed calls start without kept Chebyshev coefficients

import expint
from expint import _krylov

BUDGETS = {"60 vectors": 0, "32 MiB": 32 * 2**20, "64 MiB": 64 * 2**20}


def laplacian_1d(n: int) -> sp.csr_matrix:
    h = 1.0 / (n + 1)
    return sp.diags([np.ones(n - 1), -2 * np.ones(n), np.ones(n - 1)], [-1, 0, 1], format="csr") / h**2


def cases() -> dict:
    from krylov_phiv import laplacian, vectors

    rng = np.random.default_rng(0)
    return {
        "1-D n=3000": (laplacian_1d(3000), [rng.standard_normal(3000) for _ in range(3)], 1e-5),
        "2-D 256²": (laplacian(256), vectors(256, 3), 0.05),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    best: dict[tuple, float] = {}
    products: dict[tuple, int] = {}
    saved = _krylov._LANCZOS_BASIS_BYTES
    try:
        for _ in range(args.rounds):
            for case, (a, vs, t) in cases().items():
                for label, count in (("exp", 1), ("phi2", 3)):
                    for tol in (1e-6, 1e-10):
                        for name, budget in BUDGETS.items():
                            _krylov._LANCZOS_BASIS_BYTES = budget
                            for _ in range(3):
                                t0 = time.perf_counter()
                                out = cold(expint.phiv)(a, vs[:count], t, tol=tol)
                                sec = time.perf_counter() - t0
                                key = (case, label, tol, name)
                                best[key] = min(best.get(key, np.inf), sec)
                                products[key] = out.info.matvecs
    finally:
        _krylov._LANCZOS_BASIS_BYTES = saved
    print("fastest call in ms (products with A)\n")
    print("| case | product | tol | " + " | ".join(BUDGETS) + " |")
    print("|---|---|---|" + "---|" * len(BUDGETS))
    for case in cases():
        for label in ("exp", "phi2"):
            for tol in (1e-6, 1e-10):
                keys = [(case, label, tol, name) for name in BUDGETS]
                cells = [f"{1e3 * best[k]:.1f} ({products[k]})" for k in keys]
                print(f"| {case} | {label} | {tol:.0e} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
