"""The ``expint`` command.

``expint demo`` runs the main job on the built-in default problem, Kuramoto–
Sivashinsky: a space–time plot of the solution and a convergence table of several
schemes (`expint.studies.ks`, on `expint.study`).  ``expint study PROBLEM --schemes a,b``
runs a convergence (or, with ``--adaptive``, work–precision) study on any built-in
problem.  ``expint phi-accuracy`` prints the φ-function
accuracy table (`expint.studies.phi_accuracy`).  ``expint schemes`` prints the
scheme catalogue.  ``expint sample``, ``expint fd`` and ``expint ensemble`` are the
sharded runs of `expint.parallel`.  Errors in the arguments (including an ``--out`` folder that cannot
be written) are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import expint
from expint._plotting import figure_path
from expint.parallel import commands


def _writable(folder: str) -> Path:
    """The ``--out`` folder, created; ``argparse.ArgumentTypeError`` if it cannot be
    written (checked before any work is done)."""
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
        # one probe per process: the ranks of a `torchrun` job check the same folder at
        # once, and a shared name let one rank delete another's probe (exit status 2)
        probe = out / f".expint-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink(missing_ok=True)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot write to {folder!r}: {exc.strerror or exc}") from None
    return out


def _output_file(check: Callable[[str], Any] | None = None) -> Callable[[str], Path]:
    """An argparse type for a file the command writes at its end (``--plot``,
    ``--json``): ``check`` (e.g. the figure format) and a writable folder, both before
    the run, so a typo does not cost the whole study."""

    def parse(text: str) -> Path:
        if check is not None:
            try:
                check(text)
            except (TypeError, ValueError) as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
        path = Path(text)
        _writable(str(path.parent))
        return path

    return parse


def _demo(args: argparse.Namespace) -> int:
    from expint.studies import ks

    out = args.out
    print("expint demo: Kuramoto–Sivashinsky (Kassam–Trefethen set-up, N = 128)\n")
    png, sol = ks.spacetime(out, progress=not args.quiet)
    print(
        f"solved t in [0, 150] with ETDRK4, h = 1/4: {sol.stats['steps']} steps, "
        f"{sol.stats['nfev']} nonlinear evaluations; space-time plot: {png}\n"
    )
    res = ks.convergence()
    print(f"convergence at T = {ks.T_CONV:g} (relative max error of the final Fourier state):\n")
    print(ks.table(res))
    print(f"\nconvergence plot: {ks.plot(res, out / 'ks_convergence.png')}")
    return 0


def _phi_accuracy(args: argparse.Namespace) -> int:
    from expint.studies import phi_accuracy

    out = args.out
    print("expint phi-accuracy: float64 accuracy of φ_k(z) against 50-digit mpmath\n")
    res = phi_accuracy.run(points=args.points)
    print(phi_accuracy.table(res))
    png = phi_accuracy.plot(res, out / "phi_accuracy.png")
    print(f"\nplot written to {png}")
    return 0


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line (``expint demo: error: ...``) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


#: end times for studies where a problem's literature span is too long (chaos, metastability)
STUDY_T_END = {"kuramoto_sivashinsky": 30.0, "allen_cahn": 20.0, "gray_scott": 200.0}


def _number_list(kind: type) -> Callable[[str], list]:
    def parse(text: str) -> list:
        try:
            vals = [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {kind.__name__}s, got {text!r}"
            ) from None
        if not vals or any(v <= 0 for v in vals):
            raise argparse.ArgumentTypeError(
                f"expected positive comma-separated {kind.__name__}s, got {text!r}"
            )
        return vals

    return parse


def _study(args: argparse.Namespace) -> int:
    from expint import problems

    make = problems.PROBLEMS[args.problem]
    if args.size is None:
        bp = make()
    else:  # every built-in problem takes its size (points, modes or intervals) first
        try:
            bp = make(args.size)
        except (TypeError, ValueError) as err:
            raise ValueError(f"--size {args.size} does not fit {args.problem}: {err}") from None
    t_end = args.t_end if args.t_end is not None else STUDY_T_END.get(args.problem, bp.t_span[1])
    if not (math.isfinite(t_end) and t_end > bp.t_span[0]):
        raise ValueError(
            f"--t-end must be a finite time after the problem's start t = {bp.t_span[0]:g}, got {t_end:g}"
        )
    span = (bp.t_span[0], t_end)
    names = [s.strip() for s in args.schemes.split(",") if s.strip()]
    for name in names:
        expint.schemes.get(name)  # an unknown name is a usage error listing the valid ones
    base = max(1, round((t_end - span[0]) / bp.dt))
    steps = args.steps or [max(1, base // 2), base, 2 * base, 4 * base]
    show = not args.quiet
    if args.error_norm is not None and not args.adaptive:
        raise ValueError("--error-norm sets the step-size control of --adaptive runs; add --adaptive")
    if args.adaptive:
        rtols = args.rtols or [10.0**-k for k in range(3, 9)]
        res: Any = expint.study.work_precision(
            bp,
            None,
            span,
            names,
            steps=steps,
            rtols=rtols,
            reference=args.reference,
            progress=show,
            error_norm=args.error_norm or "rms",
        )
        title = "work–precision"
    else:
        res = expint.study.convergence(bp, None, span, names, steps, reference=args.reference, progress=show)
        title = "convergence"
    print(f"expint study: {title} on {bp.name}, t in [{span[0]:g}, {t_end:g}]\n")
    print(res.table())
    if args.plot:
        print(f"\nplot: {res.plot(args.plot)}")
    if args.json:
        res.to_json(args.json)
        print(f"json: {args.json}")
    return 0


def _schemes(args: argparse.Namespace) -> int:
    print(expint.schemes.table())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``expint`` console script."""
    ap = _Parser(prog="expint", description="Exponential integrators.")
    ap.add_argument("--version", action="version", version=f"expint {expint.__version__}")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo = sub.add_parser("demo", help="run the main study on the built-in default problem (KS)")
    demo.add_argument("--out", default="results", type=_writable, help="folder for plots (default: results)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(func=_demo)
    acc = sub.add_parser("phi-accuracy", help="φ-function accuracy table against mpmath")
    acc.add_argument("--out", default="results", type=_writable, help="folder for plots (default: results)")
    acc.add_argument("--points", type=int, default=60, help="arguments per family (default: 60)")
    acc.set_defaults(func=_phi_accuracy)
    sub.add_parser("schemes", help="print the scheme catalogue").set_defaults(func=_schemes)
    from expint.problems import ALIASES, PROBLEMS, canonical_name

    st = sub.add_parser("study", help="convergence or work–precision study on a built-in problem")
    aliases = ", ".join(f"{k} = {v}" for k, v in ALIASES.items())
    st.add_argument(
        "problem", type=canonical_name, choices=sorted(PROBLEMS), help=f"built-in problem ({aliases})"
    )
    st.add_argument("--schemes", required=True, help="comma-separated scheme names (see `expint schemes`)")
    st.add_argument("--adaptive", action="store_true", help="work–precision: adaptive schemes over --rtols")
    st.add_argument(
        "--steps", type=_number_list(int), help="comma-separated step counts (default: 4 refinements)"
    )
    st.add_argument("--rtols", type=_number_list(float), help="comma-separated rtols (default: 1e-3 … 1e-8)")
    st.add_argument(
        "--error-norm",
        choices=["rms", "max"],
        help="step-size control norm of --adaptive runs (default: rms; max holds the largest entry's error)",
    )
    st.add_argument(
        "--size",
        type=int,
        help="the problem's size: Chebyshev or finite-difference intervals, Fourier modes, grid points "
        "per side (its first parameter; default: the problem's own)",
    )
    st.add_argument("--t-end", type=float, help="end time (default: a per-problem study span)")
    st.add_argument("--reference", choices=["fine", "torchdiffeq", "scipy"], default="fine")
    st.add_argument(
        "--plot", type=_output_file(lambda p: figure_path(p, "--plot")), help="write the figure to this file"
    )
    st.add_argument("--json", type=_output_file(), help="write the result as JSON to this file")
    st.add_argument("--quiet", action="store_true", help="no progress bar")
    st.set_defaults(func=_study)
    commands.add_commands(sub, _writable, _output_file())
    args = ap.parse_args(argv)
    if getattr(args, "points", 2) < 2:
        ap.error("--points must be at least 2")
    try:
        return args.func(args)
    except (commands.UsageError, ValueError) as exc:
        sys.stderr.write(f"expint {args.command}: error: {exc}\n")
        return 2
    except commands.RunFailed as exc:  # the input was fine; the computation failed
        sys.stderr.write(f"expint {args.command}: failed: {exc}\n")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
