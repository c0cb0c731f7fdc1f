"""Per-step overhead of samplers with a model that costs nothing.

Usage: python benchmarks/sampler_overhead.py [--steps 50] [--device cpu|cuda] [--threads 1] [--sync-debug]
       [--setup-only]

State: batch 1 and batch 256 of 3×32×32 float32.  The "model" returns a tensor made
once (no compute), so the time is the sampler's own: its Python work and its tensor
updates.  Peers in the same run: diffusers' DDIM, DEIS-3, DPM-Solver++(2M) and
UniPC-3 schedulers (``scheduler.step`` per step, timesteps set once), and a *bare fused
update*: a hand-written loop ``x = a·x + Σ c_j ε_j`` with the same number of history
terms as the expint method and its coefficients precomputed on the device — the floor
any sampler can reach.  Times are the best of 9 interleaved repetitions (CUDA: synchronised).
expint runs with its default non-finite check on (a float64 sum of every model output,
read once at the end).  CPU runs use ``--threads`` torch threads (default 1).

A second table times the set-up of ``--steps`` steps on the host, which the per-step
expint rows leave out: building an expint ``Sampler`` (its grid's exponential-integrator
weights), against a diffusers scheduler's construction and ``set_timesteps`` (which its
per-step rows above include), and per-sample grids of 64 rows (all distinct, and
two grids repeated: each distinct row is planned once).  ``--setup-only`` prints that
table alone (it includes ``unipc2``, the default method).

With ``--sync-debug`` (CUDA only) the expint runs are wrapped in
``torch.cuda.set_sync_debug_mode("error")`` with the final check off: any host–device
synchronisation inside sampling raises, so a clean run proves there is none.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from expint.diffusion import DiscreteVP, Sampler, grid

EXPINT = ("ddim", "tab3", "lab3", "rhoab2", "dpmpp2m", "dpmpp3m", "ipndm", "rhork2")
ONE_EVAL = EXPINT[:-1]  # methods with one model call per step, which the bare loop mirrors
SETUP = (*EXPINT, "unipc2")  # the set-up table adds the default method


def _once(fn, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def _time(fns: list, device: str, reps: int = 9) -> list[float]:
    """Best-of-``reps`` times of several functions, run interleaved so that drifts of
    a noisy machine (allocator, other processes) hit them alike."""
    for fn in fns:
        fn()  # warm-up
    best = [float("inf")] * len(fns)
    for _ in range(reps):
        for k, fn in enumerate(fns):
            best[k] = min(best[k], _once(fn, device))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--sync-debug", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--setup-only", action="store_true", help="only the table of set-up times")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    import diffusers as d

    dev, n = args.device, args.steps
    sch = DiscreteVP.from_betas()
    ts = grid(sch, n, "uniform", t_start=999.0, t_end=0.0)
    common = dict(num_train_timesteps=1000, beta_schedule="linear")
    peers = {
        "diffusers DDIM": lambda: d.DDIMScheduler(**common),
        "diffusers DEIS-3": lambda: d.DEISMultistepScheduler(**common, solver_order=3),
        "diffusers DPM++2M": lambda: d.DPMSolverMultistepScheduler(**common, solver_order=2),
        "diffusers UniPC-3": lambda: d.UniPCMultistepScheduler(**common, solver_order=3),
    }
    if args.setup_only:
        setup_table(sch, ts, peers, dev, n)
        return
    print(
        f"device {dev}{' (' + torch.cuda.get_device_name() + ')' if dev == 'cuda' else ''}, {n} steps, "
        f"{torch.get_num_threads()} CPU thread(s), "
        "float32, zero-cost model; µs per step (best of 9, interleaved)\n"
    )
    print("| sampler | batch 1 | batch 256 | ratio to bare fused update (256) |")
    print("|---|---|---|---|")
    results = {}
    for batch in (1, 256):
        x_T = torch.randn(batch, 3, 32, 32, device=dev)
        eps = torch.randn_like(x_T)

        def model(x, t, e=eps):
            return e

        for name in EXPINT:
            s = Sampler(sch, ts, name)
            s(model, x_T)  # coefficients to the device once

            def run(s=s, model=model, x_T=x_T):
                debug = args.sync_debug and dev == "cuda"
                if debug:
                    torch.cuda.set_sync_debug_mode("error")
                try:
                    s(model, x_T, check_finite=not debug)
                finally:
                    if dev == "cuda":
                        torch.cuda.set_sync_debug_mode(0)

            if name not in ONE_EVAL:
                results[(name, batch)] = _time([run], dev)[0] / n * 1e6
                continue
            terms = max(len(step.out_terms) for step in s._program.steps)  # history terms of the update
            convert = any(st.conversion is not None for step in s._program.steps for st in step.stages)
            coefs = torch.rand(n, terms + 3, device=dev)
            views = [[coefs[i, j] for j in range(terms + 3)] for i in range(n)]

            def bare(views=views, terms=terms, convert=convert, model=model, x_T=x_T, eps=eps):
                x = x_T
                hist = [eps] * terms
                for i in range(n):
                    e = model(x, None)
                    if convert:  # ε → x0 for data-prediction methods, as the method must do
                        e = (views[i][-2] * x).addcmul_(views[i][-1], e)
                    hist = [e, *hist[:-1]]
                    acc = views[i][0] * x
                    for j in range(terms):
                        acc.addcmul_(views[i][j + 1], hist[j])
                    x = acc
                return x

            t_run, t_bare = _time([run, bare], dev)
            results[(name, batch)] = t_run / n * 1e6
            results[(f"bare[{name}]", batch)] = t_bare / n * 1e6
        for pname, make in peers.items():

            def run_peer(make=make, model=model, x_T=x_T):
                s = make()
                s.set_timesteps(n, device=dev)
                x = x_T
                for t in s.timesteps:
                    x = s.step(model(x, t), t, x).prev_sample
                return x

            results[(pname, batch)] = _time([run_peer], dev, reps=3)[0] / n * 1e6
    for name in EXPINT:
        r = (
            f"{results[(name, 256)] / results[(f'bare[{name}]', 256)]:.2f}"
            if name in ONE_EVAL
            else "— (2 calls/step)"
        )
        print(f"| expint {name} | {results[(name, 1)]:.1f} | {results[(name, 256)]:.1f} | {r} |")
    for name in ONE_EVAL:
        print(
            f"| bare fused update (as {name}) | {results[(f'bare[{name}]', 1)]:.1f} | "
            f"{results[(f'bare[{name}]', 256)]:.1f} | 1.00 |"
        )
    for pname in peers:
        print(f"| {pname} | {results[(pname, 1)]:.1f} | {results[(pname, 256)]:.1f} | — |")
    ddim = results[("diffusers DDIM", 1)]
    worst = max(results[(nm, 1)] for nm in EXPINT)
    print(
        f"\nslowest expint method at batch 1: {worst:.1f} µs/step vs diffusers DDIM {ddim:.1f} µs/step "
        f"(ratio {worst / ddim:.2f})"
    )
    if args.sync_debug and dev == "cuda":
        print("sync-debug mode 'error' was on for every expint run: no host synchronisation occurred")
    setup_table(sch, ts, peers, dev, n)


def setup_table(sch, ts, peers: dict, dev: str, n: int) -> None:
    """Set-up time in ms (best of 5): an expint `Sampler` built (the weights of every
    step), and each diffusers scheduler's construction plus ``set_timesteps``."""
    print(f"\nset-up of {n} steps on the host, ms (best of 5)\n")
    print("| sampler | set-up |")
    print("|---|---|")
    for name in SETUP:
        best = min(_once(lambda name=name: Sampler(sch, ts, name), dev) for _ in range(5))
        print(f"| expint {name} | {1e3 * best:.2f} |")
    # per-sample grids: 64 distinct rows (each sample's grid ends at its own time), and
    # 64 rows that repeat two grids (planned once per distinct row)
    ends = np.linspace(float(ts[-2]), float(ts[-1]), 64)
    distinct = np.stack([grid(sch, n, "uniform", t_start=float(ts[0]), t_end=float(e)) for e in ends])
    repeated = np.repeat(distinct[[0, -1]], 32, axis=0)
    for label, rows in (("64 distinct rows", distinct), ("64 rows, 2 distinct", repeated)):
        best = min(_once(lambda rows=rows: Sampler(sch, rows, "unipc2"), dev) for _ in range(3))
        print(f"| expint unipc2, per-sample grid of {label} | {1e3 * best:.2f} |")
    for pname, make in peers.items():

        def build(make=make):
            s = make()
            s.set_timesteps(n, device=dev)

        best = min(_once(build, dev) for _ in range(5))
        print(f"| {pname} | {1e3 * best:.2f} |")


if __name__ == "__main__":
    main()
