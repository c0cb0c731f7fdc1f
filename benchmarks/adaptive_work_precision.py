"""Adaptive work–precision: expint's pairs and best fixed step against rkstiff, scipy and
torchdiffeq, all in one run.

Usage: python benchmarks/adaptive_work_precision.py [--out results] [--quick]
       [--problems ks,nls,allen_cahn,gray_scott,gray_scott_fd]

Problems: Kuramoto–Sivashinsky (N = 256, T = 30), cubic NLS (two-soliton breather,
amplitude 2, N = 512, T = π/2), Allen–Cahn (Chebyshev N = 20, T = 20) and 2-D
Gray–Scott (256², T = 100; 64² with ``--quick``) in its real-FFT form and, as
``gray_scott_fd``, its finite-difference form (sparse 5-point Laplacian: expint's
φ-products by Krylov; scipy's BDF and Radau get the sparsity pattern of the Jacobian;
rkstiff takes no sparse linear part).  Error: relative max error of the final
state against a fine run of two different fourth-order schemes (their distance is
printed as the reference's accuracy).  Every configuration is timed in this process,
best of up to three runs, through `expint.study.work_precision`:

* expint ``krogstad43``, ``hochost43``, ``whalen53`` and the Adams pairs ``etdab43``,
  ``etdab54`` over rtol 1e-3 … 1e-9 (``atol = rtol·max|y0|``), and ``krogstad`` and
  ``etdab5`` on fixed steps;
* rkstiff ETD34, ETD35 (Whalen, Brio & Moloney 2015) and IF45DP over the same tolerances
  (their ``epsilon``), solver construction (its φ-coefficients) included;
* scipy ``solve_ivp`` BDF, Radau and LSODA on the real form of the same ODE (dense
  finite-difference Jacobian: the Fourier and Chebyshev Jacobians are dense; skipped
  on Gray–Scott, whose Jacobian would have 2.6e5² entries), plus DOP853;
* torchdiffeq dopri5 (float64, CPU).

A peer run is stopped after 30 s (error reported as failed), and a configuration
whose run takes over 20 s is not run at tighter tolerances (marked "skipped").
Prints a markdown table per problem, the time each configuration needs for error 1e-6
(log–log interpolation) and the speed-up of expint's fastest configuration over the
fastest of rkstiff and of scipy's stiff methods; writes ``adaptive_work_precision.json``
and one PNG per problem.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

import expint
from expint import problems

TARGET = 1e-6
PEER_TIMEOUT = 30  # seconds; a timed-out run counts as failed, and tighter ones are skipped


def _real_form(rhs, shape, complex_state: bool):
    """``f(t, x)`` on real vectors for scipy (LSODA takes no complex states)."""
    n = int(np.prod(shape))

    def f(t, x):
        y = (x[:n] + 1j * x[n:]) if complex_state else x
        out = np.asarray(rhs(t, y.reshape(shape))).ravel()
        return np.concatenate([out.real, out.imag]) if complex_state else out

    return f


def jacobian_pattern(bp) -> object:
    """Sparsity of ``L + ∂N/∂y`` for the finite-difference Gray–Scott state ``(u, v)``:
    the stencil plus the pointwise coupling of ``u`` and ``v`` at each grid point."""
    import scipy.sparse as sp

    lin = bp.problem.linear.a
    half = lin.shape[0] // 2
    eye = sp.eye(half)
    coupling = sp.bmat([[eye, eye], [eye, eye]])
    return ((abs(lin) + coupling) != 0).astype(float).tocsr()


def scipy_peers(bp, t_end: float, methods: tuple[str, ...], sparsity=None) -> dict:
    from scipy.integrate import solve_ivp

    y0 = np.asarray(bp.y0)
    cplx = np.iscomplexobj(y0)
    f = _real_form(bp.problem.rhs, y0.shape, cplx)
    x0 = np.concatenate([y0.real.ravel(), y0.imag.ravel()]) if cplx else y0.ravel()
    scale = float(np.max(np.abs(y0)))
    n = y0.size

    def make(method):
        def run(rtol):
            extra = {"jac_sparsity": sparsity} if sparsity is not None and method in ("BDF", "Radau") else {}
            out = solve_ivp(f, (0.0, t_end), x0, method=method, rtol=rtol, atol=rtol * scale, **extra)
            x = out.y[:, -1]
            y = (x[:n] + 1j * x[n:]) if cplx else x
            if not out.success:
                return np.full(y0.shape, np.nan), out.nfev, out.t.size - 1
            return y.reshape(y0.shape), out.nfev, out.t.size - 1

        return run

    return {f"scipy {m}": make(m) for m in methods}


def rkstiff_peers(bp, t_end: float) -> dict:
    from rkstiff.etd34 import ETD34
    from rkstiff.etd35 import ETD35
    from rkstiff.if45dp import IF45DP
    from rkstiff.solveras import SolverConfig

    lin = bp.problem.linear
    diagonal = isinstance(lin, expint.Diagonal)
    op = np.asarray(lin.d) if diagonal else np.asarray(lin.a)

    def nl(u):
        return bp.problem.nonlinear(0.0, u)

    def make(cls, **kw):
        def run(rtol):
            solver = cls(lin_op=op, nl_func=nl, config=SolverConfig(epsilon=rtol), loglevel="ERROR", **kw)
            return solver.evolve(np.asarray(bp.y0, dtype=complex), 0.0, t_end, store_data=False)

        return run

    extra = {} if diagonal else {"diagonalize": True}
    peers = {"rkstiff ETD34": make(ETD34, **extra), "rkstiff ETD35": make(ETD35, **extra)}
    if diagonal:  # IF45DP takes a diagonal linear part only
        peers["rkstiff IF45DP"] = make(IF45DP)
    return peers


def torchdiffeq_peer(bp, t_end: float, via_numpy: bool = False) -> dict:
    """dopri5 on torch tensors; ``via_numpy``: the right-hand side evaluated on numpy
    arrays (a scipy sparse linear part takes no tensors)."""
    import torch
    import torchdiffeq

    y0 = torch.as_tensor(np.asarray(bp.y0))
    ts = torch.tensor([0.0, t_end], dtype=torch.float64)
    scale = float(y0.abs().max())

    def rhs(t, y):
        if via_numpy:
            return torch.from_numpy(np.asarray(bp.problem.rhs(float(t), y.numpy())))
        return bp.problem.rhs(float(t), y)

    def run(rtol):
        out = torchdiffeq.odeint(rhs, y0, ts, rtol=rtol, atol=rtol * scale)
        return out[-1].numpy()

    return {"torchdiffeq dopri5": run}


def with_timeout(peers: dict, seconds: int) -> dict:
    """Each peer run stopped after ``seconds`` (SIGALRM) with a NaN state: some peers
    take many minutes at tight tolerances (rkstiff's IF45DP on the NLS breather); a
    peer that raises (torchdiffeq's step-size underflow) also counts as failed."""
    import signal

    def wrap(run):
        def timed_run(rtol):
            def stop(signum, frame):
                raise TimeoutError

            old = signal.signal(signal.SIGALRM, stop)
            signal.alarm(seconds)
            try:
                return run(rtol)
            except TimeoutError:
                return np.nan
            except Exception as err:  # a peer that gives up (e.g. dopri5's "underflow in dt")
                print(f"\n  peer run failed at rtol {rtol:g}: {type(err).__name__}: {err}", file=sys.stderr)
                return np.nan
            finally:
                signal.alarm(0)
                signal.signal(signal.SIGALRM, old)

        return timed_run

    return {k: wrap(v) for k, v in peers.items()}


def cases(quick: bool) -> dict:
    gs_n = 64 if quick else 256
    return {
        "ks": (problems.kuramoto_sivashinsky(256), 30.0, [150, 212, 300, 424, 600, 848, 1200]),
        "nls": (problems.nls(amplitude=2.0), math.pi / 2, [100, 141, 200, 283, 400, 566, 800]),
        "allen_cahn": (problems.allen_cahn(), 20.0, [40, 57, 80, 113, 160, 226, 320]),
        "gray_scott": (problems.gray_scott(gs_n), 100.0, [25, 50, 100, 200]),
        "gray_scott_fd": (problems.gray_scott(gs_n, variant="fd"), 100.0, [25, 50, 100, 200]),
    }


def summary(res) -> dict:
    times = res.time_to(TARGET)

    def fastest(keep) -> float:  # NaN (target not reached) must not win a min()
        return min((v for k, v in times.items() if keep(k) and math.isfinite(v)), default=math.nan)

    best = {
        "expint": fastest(lambda k: not k.startswith(("rkstiff", "scipy", "torch"))),
        "rkstiff": fastest(lambda k: k.startswith("rkstiff")),
        "scipy stiff": fastest(lambda k: k in ("scipy BDF", "scipy Radau", "scipy LSODA")),
    }
    return {"time_to_target": times, "best": best}


def print_result(res, title: str) -> dict:
    """Print a work–precision result's table and the fastest-configuration ratios;
    return its `summary`."""
    print(f"\n## {title}\n")
    print(res.table(TARGET))
    s = summary(res)
    b = s["best"]
    print(
        f"\nfastest to {TARGET:.0e}: expint {1e3 * b['expint']:.1f} ms, "
        f"rkstiff {1e3 * b['rkstiff']:.1f} ms "
        f"(ratio {b['rkstiff'] / b['expint']:.2f}), scipy stiff {1e3 * b['scipy stiff']:.1f} ms "
        f"(ratio {b['scipy stiff'] / b['expint']:.2f})"
    )
    sys.stdout.flush()
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results")
    ap.add_argument("--quick", action="store_true", help="fewer tolerances, Gray–Scott on 64²")
    ap.add_argument("--problems", default="ks,nls,allen_cahn,gray_scott,gray_scott_fd")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rtols = [1e-3, 1e-5, 1e-7] if args.quick else [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9]
    report = {}
    for key in args.problems.split(","):
        bp, t_end, steps = cases(args.quick)[key]
        if key == "gray_scott_fd":  # rkstiff needs a diagonal or dense L; scipy gets the pattern
            peers = scipy_peers(bp, t_end, ("BDF", "Radau", "DOP853"), sparsity=jacobian_pattern(bp))
        elif key == "gray_scott":
            peers = rkstiff_peers(bp, t_end) | scipy_peers(bp, t_end, ("DOP853",))
        else:
            peers = rkstiff_peers(bp, t_end) | scipy_peers(bp, t_end, ("BDF", "Radau", "LSODA", "DOP853"))
        peers |= torchdiffeq_peer(bp, t_end, via_numpy=key == "gray_scott_fd")
        peers = with_timeout(peers, PEER_TIMEOUT)
        res = expint.study.work_precision(
            bp,
            None,
            (0.0, t_end),
            ["krogstad43", "hochost43", "whalen53", "etdab43", "etdab54", "krogstad", "etdab5"],
            steps=steps,
            rtols=rtols,
            peers=peers,
            max_seconds=20.0,
            progress=True,
        )
        s = print_result(res, f"{bp.name}: n = {np.size(bp.y0)}, T = {t_end:g}")
        res.plot(out / f"adaptive_wp_{key}.png")
        report[key] = {"result": json.loads(res.to_json()), **s}
    (out / "adaptive_work_precision.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
