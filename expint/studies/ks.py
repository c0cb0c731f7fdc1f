"""The default study: Kuramoto–Sivashinsky (Kassam–Trefethen set-up).

1. The solution on t ∈ [0, 150] with ETDRK4 at h = 1/4, saved every 0.5 and drawn as a
   space–time image (``ks_spacetime.png``).
2. A convergence table at T = 30 (before the flow's chaos amplifies errors beyond
   use): relative max error of u(x, 30) for several schemes and step sizes against a
   reference from two different 4th-order schemes at h = 1/512 (their distance is
   printed as the reference's accuracy), with observed orders (``ks_convergence.png``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

import expint
from expint import problems

SCHEMES = ("etdrk4", "krogstad", "hochost4", "etdab4", "etd2rk")
STEPS = (1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32)
T_CONV = 30.0


def spacetime(out: Path, n: int = 128, progress: bool = True) -> tuple[Path, expint.Solution]:
    bp = problems.kuramoto_sivashinsky(n)
    t_eval = np.linspace(0.0, 150.0, 301)
    sol = expint.solve(
        bp.problem, bp.y0, bp.t_span, scheme="etdrk4", dt=bp.dt, t_eval=t_eval, progress=progress
    )
    path = problems.plot_spacetime(
        bp, sol, out / "ks_spacetime.png", title=f"Kuramoto–Sivashinsky, N = {n}, ETDRK4, h = 1/4"
    )
    return path, sol


def convergence(n: int = 128) -> dict:
    bp = problems.kuramoto_sivashinsky(n)
    span = (0.0, T_CONV)
    ref_a = bp.to_physical(expint.solve(bp.problem, bp.y0, span, scheme="hochost4", dt=1 / 512).y[-1])
    ref_b = bp.to_physical(expint.solve(bp.problem, bp.y0, span, scheme="krogstad", dt=1 / 512).y[-1])
    scale = np.max(np.abs(ref_a))
    errors = {}
    for name in SCHEMES:
        errs = []
        for h in STEPS:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                # a step beyond a scheme's stability limit is reported as "unstable"
                warnings.simplefilter("ignore", RuntimeWarning)
                sol = expint.solve(bp.problem, bp.y0, span, scheme=name, dt=h)
            u = bp.to_physical(sol.y[-1])
            errs.append(float(np.max(np.abs(u - ref_a)) / scale) if sol.success else float("inf"))
        errors[name] = errs
    return {"errors": errors, "steps": STEPS, "reference_gap": float(np.max(np.abs(ref_a - ref_b)) / scale)}


def table(res: dict) -> str:
    steps = res["steps"]
    head = "| scheme | " + " | ".join(f"h = 1/{round(1 / h)}" for h in steps) + " | observed order |"
    lines = [head, "|---|" + "---|" * (len(steps) + 1)]
    for name, errs in res["errors"].items():
        fin = [(h, e) for h, e in zip(steps, errs, strict=True) if np.isfinite(e) and e > 1e-13]
        order = np.polyfit(np.log([h for h, _ in fin[-3:]]), np.log([e for _, e in fin[-3:]]), 1)[0]
        cells = [f"{e:.2e}" if np.isfinite(e) else "unstable" for e in errs]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {order:.2f} |")
    lines.append(
        f"\nreference: hochost4 at h = 1/512; its distance to krogstad at h = 1/512 is "
        f"{res['reference_gap']:.1e}"
    )
    return "\n".join(lines)


def plot(res: dict, path: Path) -> Path:
    from expint._plotting import pyplot, save

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4.4))
    for name, errs in res["errors"].items():
        ax.loglog(res["steps"], errs, "-o", ms=4, label=name)
    h = np.array(res["steps"])
    ax.loglog(h, 3e-3 * (h / h[0]) ** 4, "k:", lw=1, label="slope 4")
    ax.set_xlabel("step size h")
    ax.set_ylabel(f"relative max error of u(x, {T_CONV:g})")
    ax.set_title("Kuramoto–Sivashinsky, N = 128: convergence")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save(fig, path)
