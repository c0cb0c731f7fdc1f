"""Allen–Cahn (1-D, Chebyshev) at growing resolution: where expint overtakes scipy.

Usage: python benchmarks/allen_cahn_scaling.py [--sizes 20,40,80,160] [--quick] [--out results]

`benchmarks/adaptive_work_precision.py` runs the Kassam–Trefethen Allen–Cahn problem
with 20 Chebyshev intervals (19 unknowns), where scipy's LSODA is level with expint's
fastest configuration: a step is a few dozen operations on 19 numbers, so Python's cost
per operation sets every solver's time, and LSODA's is compiled Fortran.  This script
runs the same problem, ``u_t = 0.01 u_xx + u − u³`` on [−1, 1] to ``T = 20``, with
``n`` Chebyshev intervals for each ``n`` of ``--sizes`` and the same configurations as
that script, all timed in one process through `expint.study.work_precision`:

* expint ``krogstad43``, ``whalen53`` (adaptive, rtol 1e-3 … 1e-7, or 1e-3, 1e-5, 1e-7
  with ``--quick``) and ``krogstad``, ``etdab5`` on fixed steps;
* rkstiff ETD34 and ETD35 (eigendecomposed linear part, its ``diagonalize=True``);
* scipy ``solve_ivp`` BDF, Radau and LSODA (the Jacobian is dense: ``L`` is a dense
  Chebyshev matrix, so no sparsity pattern applies).

Error: relative max error of the final state against a fine ``hochost4`` run (its step
count and its distance to ``krogstad`` on the same grid, the reference's accuracy, are
printed).
For each size it prints the time every configuration needs for a relative error of
1e-6 (log–log interpolation) and the speed-up of expint's fastest configuration over
scipy's fastest stiff method and over rkstiff's fastest; writes
``allen_cahn_scaling.json`` and ``allen_cahn_scaling.png`` (time to 1e-6 against ``n``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adaptive_work_precision import (
    PEER_TIMEOUT,
    TARGET,
    print_result,
    rkstiff_peers,
    scipy_peers,
    with_timeout,
)

import expint
from expint import problems

T_END = 20.0
STEPS = [40, 57, 80, 113, 160, 226, 320, 452]
SCHEMES = ["krogstad43", "whalen53", "krogstad", "etdab5"]


def run_size(n: int, rtols: list[float]) -> dict:
    bp = problems.allen_cahn(n)
    peers = rkstiff_peers(bp, T_END) | scipy_peers(bp, T_END, ("BDF", "Radau", "LSODA"))
    res = expint.study.work_precision(
        bp,
        None,
        (0.0, T_END),
        SCHEMES,
        steps=STEPS,
        rtols=rtols,
        peers=with_timeout(peers, PEER_TIMEOUT),
        max_seconds=20.0,
        progress=True,
    )
    s = print_result(res, f"Allen–Cahn, {n} Chebyshev intervals ({n - 1} unknowns), T = {T_END:g}")
    return {"result": json.loads(res.to_json()), **s}


def plot(report: dict, path: Path) -> None:
    from expint._plotting import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    sizes = sorted(int(n) for n in report)
    labels = list(report[str(sizes[0])]["time_to_target"])
    for label in labels:
        times = [report[str(n)]["time_to_target"].get(label, math.nan) for n in sizes]
        style = "-" if not label.startswith(("scipy", "rkstiff")) else "--"
        ax.loglog(sizes, [1e3 * t for t in times], style, marker="o", label=label)
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("Chebyshev intervals n (n − 1 unknowns)")
    ax.set_ylabel(f"time to relative error {TARGET:.0e} [ms]")
    ax.set_title("Allen–Cahn, T = 20: time to 1e-6 against resolution")
    ax.legend(fontsize=7, ncol=2)
    save(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20,40,80,160")
    ap.add_argument("--quick", action="store_true", help="rtols 1e-3, 1e-5, 1e-7 only")
    ap.add_argument("--out", default="results")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rtols = [1e-3, 1e-5, 1e-7] if args.quick else [1e-3, 1e-4, 1e-5, 1e-6, 1e-7]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {str(n): run_size(n, rtols) for n in sizes}
    print("\n| n (unknowns) | expint fastest [ms] | scipy stiff fastest [ms] | ratio |", end="")
    print(" rkstiff fastest [ms] | ratio |\n|---|---|---|---|---|---|")
    for n, r in report.items():
        b = r["best"]
        print(
            f"| {n} ({int(n) - 1}) | {1e3 * b['expint']:.1f} | {1e3 * b['scipy stiff']:.1f} | "
            f"{b['scipy stiff'] / b['expint']:.2f} | {1e3 * b['rkstiff']:.1f} | "
            f"{b['rkstiff'] / b['expint']:.2f} |"
        )
    (out / "allen_cahn_scaling.json").write_text(json.dumps(report, indent=1))
    plot(report, out / "allen_cahn_scaling.png")


if __name__ == "__main__":
    main()
