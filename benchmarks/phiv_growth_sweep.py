"""`phiv` on growing exponentials up to and past the floating-point range.

Usage: python benchmarks/phiv_growth_sweep.py [--max-substeps 1000]

Rows: ``A = diag(linspace(−λ, λ, 120))`` at ``t = 1`` for λ from 300 to 800 and
``p = 0, 1, 2`` (random vectors, seed 1), on the Lanczos process (``hermitian=None``,
detected) and on Arnoldi (``hermitian=False``); then the 1-D Dirichlet Laplacian
(n = 400) at ``t·λ_max = −360 … −720`` for ``p = 0, 1``.  References are exact (the
diagonal, and the sine transform for the Laplacian).  Each row prints the relative
error, sub-steps and rejections, or the error raised: a range error is expected where the
exact result overflows, and tolerated within a factor of ~20 of the largest double
(intermediate products such as ``β·e^{τH}`` overflow first).  ``tol = 1e-8``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import expint


def _report(label: str, a, vs, t: float, ref: np.ndarray, hermitian, max_substeps: int) -> None:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            w, info = expint.phiv(a, vs, t, tol=1e-8, max_substeps=max_substeps, hermitian=hermitian)
            failure = None
        except (ValueError, RuntimeError) as exc:
            w, info, failure = None, None, exc
    seconds = time.perf_counter() - start
    if w is None:
        range_error = isinstance(failure, ValueError) and "floating-point range" in str(failure)
        peak = np.abs(ref[np.isfinite(ref)]).max(initial=0.0)
        if range_error and not np.all(np.isfinite(ref)):
            verdict = "range error (the exact result overflows)"
        elif range_error:
            verdict = f"range error (max |exact| = {peak:.1e}){'' if peak > 1e307 else '  UNEXPECTED'}"
        else:
            verdict = f"UNEXPECTED {type(failure).__name__}: {str(failure)[:60]}"
    elif not np.all(np.isfinite(ref)):
        verdict = "WRONG: finite result, the exact one overflows"
    else:
        s = np.abs(ref).max()
        err = np.linalg.norm((w - ref) / s) / np.linalg.norm(ref / s)
        flag = "  WRONG" if err > 1e-6 else ""
        verdict = f"error {err:.1e}, {info.substeps} sub-steps, {info.rejected} rejected{flag}"
    print(f"| {label} | {verdict} | {seconds:.2f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-substeps", type=int, default=1000)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from laplacian import eigenvalues_1d, exact_phiv, sparse_1d

    rng = np.random.default_rng(1)
    print("| case | result | s |\n|---|---|---|")
    n = 120
    for top in (300, 600, 650, 690, 700, 705, 709, 712, 720, 800):
        for p in (0, 1, 2):
            d = np.linspace(-top, top, n)
            vs = [rng.standard_normal(n) for _ in range(p + 1)]
            with np.errstate(over="ignore", invalid="ignore"):
                ref = sum(expint.phi(k, d) * v for k, v in enumerate(vs))
            for hermitian in (None, False):
                process = "Arnoldi" if hermitian is False else "Lanczos"
                label = f"diag λ = {top}, p = {p}, {process}"
                _report(label, np.diag(d), vs, 1.0, ref, hermitian, args.max_substeps)
    m = 400
    lmax = np.abs(eigenvalues_1d(m)).max()
    for growth in (360, 600, 690, 705, 720):
        for p in (0, 1):
            vs = [rng.standard_normal(m) for _ in range(p + 1)]
            t = -growth / lmax
            with np.errstate(over="ignore", invalid="ignore"):
                ref = exact_phiv(1, m, vs, t)
            _report(f"Laplacian t·λ = {growth}, p = {p}", sparse_1d(m), vs, t, ref, None, args.max_substeps)


if __name__ == "__main__":
    main()
