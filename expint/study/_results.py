"""Result objects of the studies: markdown tables, JSON export, figures."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ._fit import OrderFit, fit_order

_ERROR_LABEL = "relative max error at t_end"


def _check_error_level(value: object, name: str) -> None:
    """An error level to look up: a positive finite real (NaN, 0 or a string would give
    an all-NaN answer or a comparison error naming nothing)."""
    real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not real or not math.isfinite(float(value)) or float(value) <= 0:  # type: ignore[arg-type]
        raise ValueError(f"{name} must be a positive finite error level (e.g. 1e-6), got {value!r}")


def _cell(x: float) -> str:
    return f"{x:.2e}" if math.isfinite(x) else "failed"


@dataclass
class ConvergenceResult:
    """Errors of several schemes over a refinement of the step size.

    Attributes
    ----------
    problem : str
    t_span : tuple of float
    steps : list of int
        Numbers of uniform steps; ``h[i] = |t_span| / steps[i]``.
    h : list of float
    errors : dict
        Scheme name -> relative max error of the final state per step count
        (``inf`` where the run failed).
    nfev, seconds : dict
        Scheme name -> nonlinear evaluations and wall time of each run.
    reference_accuracy : float
        Estimated relative error of the reference (NaN if unknown).
    reference : str
        How the reference was computed.
    unit_roundoff : float
        ``eps`` of the state's dtype (0 if unknown): ``n`` steps accumulate relative
        rounding errors of order ``n·eps``, which no refinement can get below.
    """

    problem: str
    t_span: tuple[float, float]
    steps: list[int]
    h: list[float]
    errors: dict[str, list[float]] = field(default_factory=dict)
    nfev: dict[str, list[int]] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    reference_accuracy: float = math.nan
    reference: str = ""
    unit_roundoff: float = 0.0

    def floors(self) -> list[float]:
        """Per step count, the error below which a point is left out of the order fit:
        10× the reference's accuracy (below it the error measures the reference) or
        ``10·n·eps``, the rounding of ``n`` steps (``expint study nls --schemes
        etdab5,whalen53``: both level off at 6.0e-13 = 2.1·n·eps with 1257 steps),
        whichever is larger."""
        ref = 10 * self.reference_accuracy if math.isfinite(self.reference_accuracy) else 0.0
        return [max(ref, 10 * n * self.unit_roundoff) for n in self.steps]

    def fits(self) -> dict[str, OrderFit]:
        """Order fits per scheme (errors at or below `floors` excluded)."""
        floors = self.floors()
        return {name: fit_order(self.h, errs, floors) for name, errs in self.errors.items()}

    @property
    def orders(self) -> dict[str, float]:
        """Observed order per scheme: least-squares slope on the asymptotic range."""
        return {name: f.order for name, f in self.fits().items()}

    def table(self) -> str:
        """Markdown table: one row per scheme, one column per step size, the order."""
        head = "| scheme | " + " | ".join(f"h = {h:.3g}" for h in self.h) + " | observed order |"
        lines = [head, "|---|" + "---|" * (len(self.h) + 1)]
        partial = unfitted = False
        for name, f in self.fits().items():
            cells = " | ".join(_cell(e) for e in self.errors[name])
            used = "" if len(f.used) == len(self.h) else f" ({len(f.used)} of {len(self.h)})"
            partial |= bool(used)
            order = f"{f.order:.2f}" if math.isfinite(f.order) else "—"
            unfitted |= not math.isfinite(f.order)
            lines.append(f"| {name} | {cells} | {order}{used} |")
        acc = f"{self.reference_accuracy:.1e}" if math.isfinite(self.reference_accuracy) else "unknown"
        lines.append(f"\nreference: {self.reference}; its estimated accuracy: {acc}")
        if unfitted:
            lines.append("—: no order without two usable step sizes (pass more steps, or coarser ones)")
        if partial:
            lines.append(
                "(k of m): the order is fitted on k step sizes; the others are pre-asymptotic or "
                "below the error floor (10× the reference's accuracy, or the rounding of n steps, 10·n·eps)"
            )
        return "\n".join(lines)

    def to_json(self, path: str | Path | None = None) -> str:
        """The result (with the fitted orders) as JSON; written to ``path`` if given."""
        data = asdict(self)
        data["orders"] = self.orders
        text = json.dumps(data, indent=1, default=_nan_safe)
        if path is not None:
            Path(path).write_text(text)
        return text

    def plot(self, path: str | Path) -> Path:
        """Error against step size, log–log, with a reference slope per fitted order."""
        from .._plotting import finish, line_style, pyplot

        fig, ax = pyplot().subplots(figsize=(6, 4.4))
        for i, (name, errs) in enumerate(self.errors.items()):
            ax.loglog(self.h, errs, ms=4, label=f"{name} ({self.orders[name]:.2f})", **line_style(i))
        if math.isfinite(self.reference_accuracy):
            ax.axhline(self.reference_accuracy, color="grey", ls=":", lw=1, label="reference accuracy")
        return finish(
            fig, ax, path, xlabel="step size h", ylabel=_ERROR_LABEL, title=f"{self.problem}: convergence"
        )


@dataclass
class WorkPrecisionResult:
    """Error against cost for several solver configurations.

    Attributes
    ----------
    problem : str
    runs : list of dict
        One per run: ``label`` (scheme, or a peer's name), ``setting`` (``"n_steps=…"``
        or ``"rtol=…"``), ``error``, ``seconds`` (best of the repeats), ``nfev``,
        ``steps``.
    reference_accuracy : float
    reference : str
    """

    problem: str
    runs: list[dict] = field(default_factory=list)
    reference_accuracy: float = math.nan
    reference: str = ""

    def series(self) -> dict[str, list[dict]]:
        """Runs grouped by label, in the order they were made."""
        out: dict[str, list[dict]] = {}
        for r in self.runs:
            out.setdefault(r["label"], []).append(r)
        return out

    def time_to(self, error: float) -> dict[str, float]:
        """Seconds each configuration needs for ``error``: log–log interpolation between
        the two runs that bracket it; if none do but some run is at least that accurate,
        the fastest such run's time (an upper bound); NaN if no run reaches ``error``."""
        _check_error_level(error, "error")
        out = {}
        for label, runs in self.series().items():
            pts = sorted((r["error"], r["seconds"]) for r in runs if math.isfinite(r["error"]))
            reached = [sec for e, sec in pts if e <= error]
            out[label] = min(reached) if reached else math.nan
            for (e1, s1), (e2, s2) in itertools.pairwise(pts):
                if 0 < e1 <= error <= e2:
                    w = 0.0 if e2 == e1 else math.log(error / e1) / math.log(e2 / e1)
                    out[label] = min(out[label], math.exp(math.log(s1) + w * (math.log(s2) - math.log(s1))))
                    break
        return out

    def table(self, target: float = 1e-6) -> str:
        """Markdown table of every run, then the time to reach ``target`` per label."""
        _check_error_level(target, "target")
        lines = [
            "| configuration | setting | error | time [ms] | nfev | steps |",
            "|---|---|---|---|---|---|",
        ]
        for r in self.runs:
            if "skipped" in r["setting"]:
                lines.append(f"| {r['label']} | {r['setting']} | – | – | – | – |")
                continue
            lines.append(
                f"| {r['label']} | {r['setting']} | {_cell(r['error'])} | {1e3 * r['seconds']:.1f} | "
                f"{r['nfev']} | {r['steps']} |"
            )
        times = self.time_to(target)
        lines += ["", f"| configuration | time to error {target:.0e} [ms] |", "|---|---|"]
        lines += [
            f"| {k} | {1e3 * v:.1f} |" if math.isfinite(v) else f"| {k} | not reached |"
            for k, v in times.items()
        ]
        acc = f"{self.reference_accuracy:.1e}" if math.isfinite(self.reference_accuracy) else "unknown"
        lines.append(f"\nreference: {self.reference}; its estimated accuracy: {acc}")
        return "\n".join(lines)

    def to_json(self, path: str | Path | None = None) -> str:
        """The result as JSON; written to ``path`` if given."""
        text = json.dumps(asdict(self), indent=1, default=_nan_safe)
        if path is not None:
            Path(path).write_text(text)
        return text

    def plot(self, path: str | Path) -> Path:
        """Error against wall time, log–log."""
        from .._plotting import finish, line_style, pyplot

        fig, ax = pyplot().subplots(figsize=(6.4, 4.6))
        for i, (label, runs) in enumerate(self.series().items()):
            ok = [r for r in runs if math.isfinite(r["error"])]
            secs, errs = [r["seconds"] for r in ok], [r["error"] for r in ok]
            ax.loglog(secs, errs, ms=4, label=label, **line_style(i))
        return finish(
            fig,
            ax,
            path,
            xlabel="wall time [s]",
            ylabel=_ERROR_LABEL,
            title=f"{self.problem}: work–precision",
        )


def _nan_safe(x: object) -> object:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, tuple):
        return list(x)
    raise TypeError(f"cannot serialise {type(x).__name__}")
