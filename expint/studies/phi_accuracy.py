r"""Accuracy of element-wise φ_k: expint against two common formulas.

Competitors, each evaluated in float64 on the same arguments:

* **naive** — the closed form $(e^z - \sum_{j<k} z^j/j!)/z^k$;
* **contour** — Kassam & Trefethen's (2005) contour mean with ``M = 32`` points on the
  circle of radius 1 around each ``z``, $\frac1M \sum_j f(z + e^{i\theta_j})$
  with ``f`` the closed form (full circle, so it is valid for complex ``z``; the
  half-circle ``.real`` variant is only valid for real ``z``);
* **expint** — `expint.phi`.

The reference is mpmath's ${}_1F_1(1; k+1; z)/k!$ at 50 digits.  Errors are
relative; where the exact value is below the smallest normal double (``e^z`` for
``z < -708``) the error is measured against that floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import expint

TINY = np.finfo(np.float64).tiny * 1e14


def naive(k: int, z: np.ndarray) -> np.ndarray:
    """Closed form (e^z − Σ_{j<k} z^j/j!)/z^k."""
    with np.errstate(all="ignore"):
        poly = sum(z**j / math.factorial(j) for j in range(k))
        return (np.exp(z) - poly) / z**k


def contour_mean(k: int, z: np.ndarray, m: int = 32) -> np.ndarray:
    """Kassam–Trefethen contour mean of the closed form over M points, radius 1."""
    roots = np.exp(2j * np.pi * (np.arange(1, m + 1) - 0.5) / m)
    pts = np.asarray(z, dtype=complex)[..., None] + roots
    vals = naive(k, pts).mean(axis=-1)
    return vals.real if not np.iscomplexobj(z) else vals


def reference(k: int, z: np.ndarray) -> np.ndarray:
    """50-digit values as an object array of mpmath numbers."""
    import mpmath as mp

    conv = complex if np.iscomplexobj(z) else float
    with mp.workdps(50):
        return np.array(
            [mp.hyp1f1(1, k + 1, mp.mpmathify(conv(v))) / mp.factorial(k) for v in np.ravel(z)],
            dtype=object,
        )


def rel_error(approx: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Relative error (float) of float64 values against mpmath numbers."""
    import mpmath as mp

    out = np.empty(len(ref))
    conv = complex if np.iscomplexobj(approx) else float
    with mp.workdps(50):
        for i, (a, r) in enumerate(zip(np.ravel(approx), ref, strict=True)):
            a = conv(a)
            if not np.isfinite(a):
                out[i] = np.inf
                continue
            out[i] = float(abs(mp.mpmathify(a) - r) / max(abs(r), mp.mpf(TINY)))
    return out


@dataclass
class AccuracyResult:
    """Errors per method, order ``k`` and argument family."""

    ks: list[int]
    magnitudes: np.ndarray
    families: dict[str, np.ndarray]
    errors: dict[tuple[str, str, int], np.ndarray]  # (method, family, k) -> errors per z


METHODS = {"expint": lambda k, z: expint.phi(k, z), "naive": naive, "contour32": contour_mean}


def run(ks: tuple[int, ...] = (1, 2, 4, 8), points: int = 60) -> AccuracyResult:
    """Evaluate every method on three families of arguments of growing modulus."""
    mags = np.logspace(-12, 4, points)
    families = {
        "negative real": -mags,
        "imaginary axis": 1j * mags,
        "complex (arg 3π/4)": mags * np.exp(0.75j * np.pi),
    }
    errors = {}
    for fam, z in families.items():
        for k in ks:
            ref = reference(k, z)
            for name, fn in METHODS.items():
                errors[(name, fam, k)] = rel_error(fn(k, z), ref)
    return AccuracyResult(list(ks), mags, families, errors)


def table(res: AccuracyResult) -> str:
    """Markdown table of the worst relative error per method, family and k."""
    lines = ["| k | argument | " + " | ".join(METHODS) + " |", "|---|---|" + "---|" * len(METHODS)]
    for k in res.ks:
        for fam in res.families:
            cells = [f"{np.max(res.errors[(m, fam, k)]):.1e}" for m in METHODS]
            lines.append(f"| {k} | {fam} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(res: AccuracyResult, path: Path) -> Path:
    """Error against |z| for each k (rows of panels: argument family)."""
    from expint._plotting import pyplot, save

    plt = pyplot()

    fams = list(res.families)
    fig, axes = plt.subplots(
        len(fams),
        len(res.ks),
        figsize=(3.2 * len(res.ks), 2.8 * len(fams)),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    styles = {"expint": ("C0", "-"), "naive": ("C3", ":"), "contour32": ("C2", "--")}
    for i, fam in enumerate(fams):
        for j, k in enumerate(res.ks):
            ax = axes[i, j]
            for m, (col, ls) in styles.items():
                err = np.clip(res.errors[(m, fam, k)], 1e-17, 1e3)
                ax.loglog(res.magnitudes, err, color=col, ls=ls, label=m)
            ax.axhline(1e-14, color="k", lw=0.6, alpha=0.5)
            ax.set_ylim(1e-17, 1e3)
            if i == 0:
                ax.set_title(f"φ_{k}")
            if j == 0:
                ax.set_ylabel(f"{fam}\nrelative error")
            if i == len(fams) - 1:
                ax.set_xlabel("|z|")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("float64 relative error of φ_k(z) against 50-digit mpmath")
    return save(fig, path)
