"""Krylov φ-products: `expint.phiv` against SciPy's `expm_multiply` and
`funm_multiply_krylov`, all in one run.

Usage: python benchmarks/krylov_phiv.py [--sizes 64,128,256] [--tols 1e-6,1e-8,1e-10,1e-12]
       [--raw-work] [--operator laplacian|schrodinger]

Problem: the 5-point Laplacian of the unit square with Dirichlet boundaries on an
``n × n`` interior grid (scipy CSR, ``n²`` unknowns), scaled by a diffusion constant so
that ``‖tA‖₁ ≈ 8 t D/h²`` is the stiffness an exponential step meets (D = 0.01, t = 0.05:
‖tA‖₁ = 17, 67, 264 on 64², 128², 256²).  Two products:

* ``exp``: ``w = e^{tA} v`` (one vector);
* ``phi2``: ``w = e^{tA} v_0 + t φ_1(tA) v_1 + t² φ_2(tA) v_2`` (an exponential-RK
  stage), which SciPy computes as ``e^{tÃ}`` times ``[v_0; 0; 1]`` of the augmented
  matrix ``Ã = [[A, W], [0, J]]`` with ``W = [v_2, v_1]`` and ``J`` the 2 × 2 shift
  (Al-Mohy & Higham 2011, Thm 2.1) — the same operator `phiv` works on.

`phiv` detects that ``A = A^T`` and builds its basis by the Lanczos recurrence on
``A`` itself — for "phi2" through the single-vector form ``Σ_{j<p} t^j/j! w_j +
t^p φ_p(tA) w_p`` (Niesen & Wright's phipm); the row "expint phiv (Arnoldi)"
(``hermitian=False``: Arnoldi, on the augmented operator for "phi2") shows what that
saves.

``--operator schrodinger`` runs the first two tables on ``i`` times the same matrix
(the free Schrödinger operator ``i D Δ_h``: skew-Hermitian, complex, its spectrum on
the imaginary axis), which `phiv` detects and builds its basis for by the same
three-term recurrence (``h_{j−1,j} = −h_{j,j−1}``); the Arnoldi row passes
``skew_hermitian=False`` as well, and ``funm_multiply_krylov`` gets
``assume_a="general"`` (its Hermitian mode does not apply).

Vectors: smooth plus seeded noise.  Reference: ``expm_multiply`` (double precision; its
distance to `phiv`'s Arnoldi path at ``tol = 1e-14`` is reported).  `phiv` and
``funm_multiply_krylov`` run at each tolerance of ``--tols`` (``expm_multiply`` has no
tolerance argument and works to double precision), best of 5 wall times; the error is
relative in the 2-norm.  A second table counts the products with the operator per call
and times those products alone (a floor no cut in overhead can go below).  Each method
runs twice per cell, with the BLAS thread pools at their default size and limited to
one thread (``threadpoolctl``), and keeps its faster configuration (marked ``¹`` for
one thread): numpy and SciPy each ship an OpenBLAS with its own pool, and a pool left
spinning by one library slows the next call of the other (docs/benchmarks.md), so
either default can handicap either side.  `phiv` itself limits BLAS to one thread
inside its Krylov loop on long numpy vectors; the row "expint phiv (BLAS threads
untouched)" switches that off, at the default pool size.  The row "expint phiv (Sparse
operator)" calls `phiv` on ``expint.Sparse(A)``, built once before the timing: it checks
the symmetry and finds the Gershgorin interval at construction, where a call on the raw
matrix does both every time (a solver builds its operator once).  `phiv` keeps the
Chebyshev coefficients of its last 16 ``(p, t, interval)``; every timed call here drops
them first, so the times are those of a first call.  The summary compares at
*equal accuracy*: for each target error, the fastest run of each method that reached
it.  A third table times what a call on a raw matrix does before its first product
(``--raw-work`` prints only that table).  Last, eight right-hand sides of the "phi2"
product on the second-largest grid: one block call against one call each.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla
from scipy.linalg import expm
from threadpoolctl import threadpool_limits

import expint


def laplacian(n: int, diffusion: float = 0.01) -> sp.csr_matrix:
    h = 1.0 / (n + 1)
    ring = sp.diags([np.ones(n - 1), -2 * np.ones(n), np.ones(n - 1)], [-1, 0, 1])
    return (diffusion * (sp.kron(ring, sp.eye(n)) + sp.kron(sp.eye(n), ring)) / h**2).tocsr()


def operator(n: int, kind: str) -> sp.csr_matrix:
    """The Laplacian, or for ``"schrodinger"`` ``i`` times it (skew-Hermitian)."""
    a = laplacian(n)
    return a if kind == "laplacian" else (1j * a).tocsr()


def vectors(n: int, count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, n + 2)[1:-1]
    smooth = (np.sin(np.pi * x)[:, None] * np.sin(2 * np.pi * x)[None, :]).ravel()
    return [smooth + 0.1 * rng.standard_normal(n * n) for _ in range(count)]


def augmented(a: sp.csr_matrix, vs: list[np.ndarray]) -> tuple[sp.csr_matrix, np.ndarray]:
    """``Ã`` and the start vector with ``e^{tÃ} [v_0; 0…0; 1]`` = the φ-combination."""
    p = len(vs) - 1
    w = np.column_stack(vs[:0:-1])  # [v_p, …, v_1]
    j = sp.eye(p, k=1)
    big = sp.bmat([[a, sp.csr_matrix(w)], [None, j]]).tocsr()
    start = np.concatenate([vs[0], np.zeros(p - 1), [1.0]])
    return big, start


def best_time(fn, repeats: int = 5) -> tuple[float, np.ndarray]:
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def best_configuration(fn, repeats: int = 5) -> tuple[float, np.ndarray, bool]:
    """`best_time` with the BLAS pools at their default size and at one thread:
    ``(seconds, result, one_thread)`` of the faster."""
    sec, out = best_time(fn, repeats)
    with threadpool_limits(limits=1):
        sec1, out1 = best_time(fn, repeats)
    return (sec1, out1, True) if sec1 < sec else (sec, out, False)


def methods(a, vs, t: float) -> dict:
    """``name -> run(tol)``; ``expm_multiply`` takes no tolerance (double precision)."""
    n = a.shape[0]
    hermitian = not np.iscomplexobj(a.data)  # the Laplacian; i times it is skew-Hermitian
    if len(vs) == 1:
        op, start, sym = a, vs[0], "hermitian" if hermitian else "general"
    else:
        op, start, sym = (*augmented(a, vs), "general")
    # the symmetric Laplacian: phiv's default path, and its Arnoldi path (on the
    # augmented operator for "phi2") for comparison.  `Sparse` checks the symmetry and
    # finds the spectral interval once, at construction (outside the timing, as a
    # solver builds it once); on the raw matrix every call does both.
    op_sparse = expint.Sparse(a)
    return {
        "expint phiv": lambda tol: cold(expint.phiv)(a, vs, t, tol=tol).w,
        SPARSE: lambda tol: cold(expint.phiv)(op_sparse, vs, t, tol=tol).w,
        UNTOUCHED: lambda tol: threads_untouched(lambda: cold(expint.phiv)(a, vs, t, tol=tol).w),
        ARNOLDI: lambda tol: cold(expint.phiv)(a, vs, t, tol=tol, hermitian=False, skew_hermitian=False).w,
        "scipy funm_multiply_krylov": lambda tol: sla.funm_multiply_krylov(
            expm, op, start, t=t, rtol=tol, assume_a=sym, max_restarts=200
        )[:n],
        "scipy expm_multiply": lambda tol: sla.expm_multiply(t * op, start)[:n],
    }


SPARSE = "expint phiv (Sparse operator)"
ARNOLDI = "expint phiv (Arnoldi)"


def cold(phiv):
    """`phiv` with its kept Chebyshev coefficients dropped first: every timed call
    computes them, as a single call would (repeated calls with one ``t``, a solver's
    steps of one size, reuse them; the cache is private, hence the access)."""
    from expint._chebyshev import chebyshev_coefficients

    def run(*args, **kwargs):
        chebyshev_coefficients.cache_clear()
        return phiv(*args, **kwargs)

    return run


# `phiv` runs its Krylov loop with BLAS on one thread for numpy vectors of 2^13 … 2^17
# entries; this row switches that off (the window is private, hence the access) and runs
# at the pools' default size only, to show what the limit saves
UNTOUCHED = "expint phiv (BLAS threads untouched)"


def threads_untouched(run):
    from expint import _krylov

    saved = _krylov._ONE_THREAD_SIZES
    _krylov._ONE_THREAD_SIZES = (1, 0)  # an empty window
    try:
        return run()
    finally:
        _krylov._ONE_THREAD_SIZES = saved


def time_to(runs: list[tuple[float, float]], target: float) -> float:
    """Fastest run whose error is at most ``target`` (NaN if none)."""
    ok = [sec for sec, err in runs if err <= target]
    return min(ok) if ok else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,128,256")
    ap.add_argument("--tols", default="1e-6,1e-8,1e-10,1e-12")
    ap.add_argument("--targets", default="1e-6,1e-10")
    ap.add_argument("--t", type=float, default=0.05)
    ap.add_argument("--raw-work", action="store_true", help="only the table of per-call work on a raw matrix")
    ap.add_argument("--operator", choices=("laplacian", "schrodinger"), default="laplacian")
    args = ap.parse_args()
    if args.raw_work:
        raw_work_table([int(s) for s in args.sizes.split(",")])
        return
    tols = [float(x) for x in args.tols.split(",")]
    targets = [float(x) for x in args.targets.split(",")]
    print(f"{args.operator}, t = {args.t:g}; cells: best wall time in ms (relative error)\n")
    print("| grid | product | ‖tA‖₁ | method | " + " | ".join(f"tol {x:.0e}" for x in tols) + " |")
    print("|---|---|---|---|" + "---|" * len(tols))
    summary = []
    for n in (int(s) for s in args.sizes.split(",")):
        a = operator(n, args.operator)
        norm = args.t * sla.norm(a, 1)
        for label, count in (("exp", 1), ("phi2", 3)):
            vs = vectors(n, count)
            # independent of phiv (whose Lanczos path at tol 1e-14 would be compared
            # with itself): SciPy's Taylor method to double precision
            ref = methods(a, vs, args.t)["scipy expm_multiply"](0)
            runs = {}
            for name, run in methods(a, vs, args.t).items():
                cells = []
                marks = []
                for tol in tols[-1:] if name == "scipy expm_multiply" else tols:
                    if name == UNTOUCHED:
                        (sec, w), one = best_time(lambda run=run, tol=tol: run(tol)), False
                    else:
                        sec, w, one = best_configuration(lambda run=run, tol=tol: run(tol))
                    cells.append((sec, np.linalg.norm(w - ref) / np.linalg.norm(ref)))
                    marks.append("¹" if one else "")
                runs[name] = cells
                shown = [f"{1e3 * c[0]:.1f}{mark} ({c[1]:.0e})" for c, mark in zip(cells, marks, strict=True)]
                print(f"| {n}² | {label} | {norm:.0f} | {name} | " + " | ".join(shown) + " |")
            tight = expint.phiv(a, vs, args.t, tol=1e-14, hermitian=False, skew_hermitian=False, m=60).w
            dist = np.linalg.norm(ref - tight) / np.linalg.norm(ref)
            print(
                f"| {n}² | {label} | | reference vs phiv (Arnoldi, tol 1e-14): {dist:.0e} |"
                + " |" * len(tols)
            )
            for target in targets:
                raw = time_to(runs["expint phiv"], target)  # the default path on the raw matrix
                wrapped = time_to(runs[SPARSE], target)
                # (a method that never reached the target is NaN, which min() would keep
                # or drop depending on the order)
                peer = np.nanmin([time_to(v, target) for k, v in runs.items() if k.startswith("scipy")])
                ratio = peer / np.nanmin([raw, wrapped])
                cells = f"{1e3 * raw:.1f} | {1e3 * wrapped:.1f} | {1e3 * peer:.1f} | {ratio:.2f}"
                summary.append(f"| {n}² | {label} | {target:.0e} | {cells} |")
    print("\ntime to reach a relative error (fastest run at or below it)\n")
    print(
        "| grid | product | error | expint phiv, raw matrix (ms) | on `Sparse` (ms) | faster scipy (ms) "
        "| scipy / faster expint |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(summary))
    if args.operator != "laplacian":
        return
    products_table(args.t, [int(s) for s in args.sizes.split(",")], targets)
    raw_work_table([int(s) for s in args.sizes.split(",")])
    block_table(args.t, int(args.sizes.split(",")[-2 if "," in args.sizes else -1]))


def counting(op, tally: list[int]) -> sla.LinearOperator:
    """``op`` as a LinearOperator that adds each product with it to ``tally[0]``."""

    def mv(x):
        tally[0] += 1
        return op @ x

    return sla.LinearOperator(op.shape, matvec=mv, rmatvec=mv, dtype=op.dtype)


def products_table(t: float, sizes: list[int], tols: list[float]) -> None:
    """Products with the operator per call (untimed runs) and the wall time of those
    products alone: a method cannot be faster than its products, so this bounds what
    lower overhead per product could still gain."""
    print("\nproducts with the operator per call, and their time alone\n")
    print("| grid | product | tol | phiv | funm_multiply_krylov | one product (ms) | phiv's products (ms) |")
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        a = laplacian(n)
        x = vectors(n, 1)[0]
        with threadpool_limits(limits=1):  # phiv's own setting on these vectors
            one, _ = best_time(lambda a=a, x=x: a @ x, repeats=50)
        for label, count in (("exp", 1), ("phi2", 3)):
            vs = vectors(n, count)
            op, start, sym = (a, vs[0], "hermitian") if count == 1 else (*augmented(a, vs), "general")
            for tol in tols:
                mine = expint.phiv(a, vs, t, tol=tol).info.matvecs
                tally = [0]
                counted = counting(op, tally)
                sla.funm_multiply_krylov(expm, counted, start, t=t, rtol=tol, assume_a=sym, max_restarts=200)
                cells = f"{mine} | {tally[0]} | {1e3 * one:.3f} | {1e3 * one * mine:.1f}"
                print(f"| {n}² | {label} | {tol:.0e} | {cells} |")


def raw_work_table(sizes: list[int], repeats: int = 40) -> None:
    """What a call on a raw scipy matrix does before its first product, and `Sparse`
    does once at construction: the exact symmetry check, Gershgorin's interval and the
    shifted matrix of the recurrence.  Each timed alone, best of ``repeats`` (the parts
    are short, so their minimum is stable where whole calls on this machine vary)."""
    from expint._backend import sparse_is_hermitian
    from expint._chebyshev import shifted_csr, spectral_interval

    print(f"\nper-call work on a raw matrix (ms, best of {repeats} runs each)\n")
    print("| grid | symmetry check | interval | shifted matrix | together | one product |")
    print("|---|---|---|---|---|---|")
    for n in sizes:
        a = laplacian(n)
        x = vectors(n, 1)[0]
        lo, hi = spectral_interval(a)
        parts = [
            lambda a=a: sparse_is_hermitian(a),
            lambda a=a: spectral_interval(a),
            lambda a=a, lo=lo, hi=hi: shifted_csr(a, 2 / (hi - lo), -(hi + lo) / (hi - lo)),
        ]
        times = [best_time(part, repeats)[0] for part in parts]
        one, _ = best_time(lambda a=a, x=x: a @ x, repeats)
        cells = " | ".join(f"{1e3 * sec:.3f}" for sec in [*times, sum(times), one])
        print(f"| {n}² | {cells} |")


def block_table(t: float, n: int, count: int = 8) -> None:
    """Several right-hand sides: one block call of `phiv` against one call per vector."""
    a = laplacian(n)
    rng = np.random.default_rng(1)
    vs = [rng.standard_normal((count, n * n)) for _ in range(3)]
    phiv = cold(expint.phiv)  # each call computes its coefficients, as in the tables above
    block_sec, block = best_time(lambda: phiv(a, vs, t, tol=1e-8).w, repeats=3)
    loop_sec, rows = best_time(
        lambda: np.stack([phiv(a, [v[b] for v in vs], t, tol=1e-8).w for b in range(count)]), repeats=3
    )
    gap = np.linalg.norm(block - rows) / np.linalg.norm(rows)
    print(f"\n{count} right-hand sides (phi2, {n}², tol 1e-8): one block call {1e3 * block_sec:.0f} ms,")
    print(f"one call per vector {1e3 * loop_sec:.0f} ms (ratio {loop_sec / block_sec:.2f}),")
    print(f"results apart by {gap:.0e}")


if __name__ == "__main__":
    main()
