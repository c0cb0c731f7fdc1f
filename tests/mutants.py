"""Planted-bug (mutation) check of the numerical core: ``python tests/mutants.py``.

Each mutant is one small change to the source that a correct test suite must notice;
the script plants them one at a time, runs the fast tests aimed at that code, restores
the file, and prints which mutants survived and the kill rate.  The first five are the
bugs that survived the tests in issue 11; the rest are ordinary slips in the maths.
Run on a clean checkout (it edits files in place and restores them, also on Ctrl-C).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (name, file, old text, new text, tests to run)
MUTANTS = [
    (
        "phiv error estimate forced to 0",
        "expint/_krylov_expv.py",
        "estimates += err_loc",
        "estimates += 0.0 * err_loc",
        ["tests/test_phiv.py"],
    ),
    (
        "Lawson stage offsets dropped (time-dependent ScalarTime)",
        "expint/_schemes/_tableau.py",
        "a[(i, j)] = v * E(c[i] - c[j], s=c[j])",
        "a[(i, j)] = v * E(c[i] - c[j])",
        ["tests/test_solve.py", "tests/test_operators.py"],
    ),
    (
        "k-diffusion callback reports the raw prediction as denoised",
        "expint/diffusion/integrations/kdiffusion.py",
        'denoised = d["pred"] if target == "x0" else d["x_in"] - d["t_in"] * d["pred"]',
        'denoised = d["pred"]',
        ["tests/test_diffusion_integrations.py"],
    ),
    (
        "step count after a failure reported as the total",
        "expint/_solve.py",
        "stats = work.stats(done, stepper, 0)",
        "stats = work.stats(n, stepper, 0)",
        ["tests/test_solve.py", "tests/test_input_handling.py"],
    ),
    (
        "uniform grid ends halfway",
        "expint/diffusion/grids.py",
        "return np.linspace(t_start, t_end, n + 1)",
        "return np.linspace(t_start, 0.5 * (t_start + t_end), n + 1)",
        ["tests/test_diffusion_schedules.py"],
    ),
    (
        "φ Taylor series off by one factorial",
        "expint/_phi.py",
        "coefs[:n] = [1.0 / math.factorial(j + k) for j",
        "coefs[:n] = [1.0 / math.factorial(j + k + 1) for j",
        ["tests/test_phi_scalar.py"],
    ),
    (
        "DiscreteVP interpolation drops the fractional part",
        "expint/diffusion/schedules.py",
        "return lo + frac * (hi - lo)",
        "return lo + 0.0 * frac * (hi - lo)",
        ["tests/test_diffusion_schedules.py"],
    ),
    (
        "RMSE without the square root",
        "expint/diffusion/metrics.py",
        "return float(np.sqrt(np.mean(np.sum((a - b) ** 2, axis=1))))",
        "return float(np.mean(np.sum((a - b) ** 2, axis=1)))",
        ["tests/test_pretrained_and_metrics.py"],
    ),
    (
        "optimize_grid returns its start",
        "expint/diffusion/optimize.py",
        "best_ts, best_loss, start_index, _, prior_from = min(results, key=lambda r: r[1])\n",
        "best_ts, best_loss, start_index, _, prior_from = min(results, key=lambda r: r[1])\n"
        "    best_ts = ts0\n",
        ["tests/test_optimize_grid.py"],
    ),
    (
        "σ of a VP schedule from α without the factor 1/2",
        "expint/diffusion/schedules.py",
        "return 0.5 * xp.log(-xp.expm1(2.0 * log_alpha))",
        "return xp.log(-xp.expm1(2.0 * log_alpha))",
        ["tests/test_diffusion_schedules.py"],
    ),
    (
        "grid-wide Adams weights integrate the previous step's kernel",
        "expint/diffusion/_adams.py",
        "return self._scale[i] * (basis @ self._kernel[i])",
        "return self._scale[i] * (basis @ self._kernel[i - 1])",
        ["tests/test_adams_weights.py"],
    ),
    (
        "Rosenbrock v_n without L'(t) u (time-dependent linear part)",
        "expint/_schemes/_rosenbrock.py",
        "v_n = v_n + (lin.apply(u, t + dt) - l_u) / dt",
        "v_n = v_n + 0.0 * (lin.apply(u, t + dt) - l_u) / dt",
        ["tests/test_rosenbrock.py"],
    ),
    (
        "Lagrange basis keeps the node's own factor",
        "expint/_interp.py",
        "    factors[diagonal, diagonal] = 1.0\n",
        "",
        ["tests/test_adams_weights.py"],
    ),
]


def run_one(name: str, rel: str, old: str, new: str, tests: list[str]) -> tuple[bool, float]:
    path = ROOT / rel
    original = path.read_text()
    if original.count(old) != 1:
        raise SystemExit(f"mutant {name!r}: the text to change occurs {original.count(old)} times in {rel}")
    start = time.perf_counter()
    try:
        path.write_text(original.replace(old, new))
        cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
        rc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True).returncode
    finally:
        path.write_text(original)
    return rc != 0, time.perf_counter() - start


def main() -> int:
    rows = []
    for mutant in MUTANTS:
        killed, seconds = run_one(*mutant)
        rows.append((mutant[0], killed, seconds))
        print(f"{'killed  ' if killed else 'SURVIVED'} {seconds:6.1f} s  {mutant[0]}", flush=True)
    killed = sum(k for _, k, _ in rows)
    print(f"\nkill rate {killed}/{len(rows)} = {killed / len(rows):.0%}")
    return 0 if killed == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
