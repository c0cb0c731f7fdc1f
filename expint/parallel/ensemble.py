r"""Sharded ensembles of a built-in problem: many perturbed initial conditions.

Member ``i`` starts from

$$
y_0^{(i)} = y_0 + \mathrm{lift}(s\,ξ^{(i)}),\qquad ξ^{(i)} \sim N(0, I),
$$

with ``ξ`` drawn in the physical layout of the state by a counter-based generator
keyed by ``(seed, i)`` (``expint.parallel.counter_normal``) and ``lift`` the problem's
map into state space (the FFT for spectral problems), so the ensemble does not
depend on the world size or batch size.  Each shard is one batched ``expint.solve``
call; the final physical fields are stored as ``final`` and the requested
statistics over members in ``stats.npz``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .. import problems
from .._schemes._catalog import get as get_scheme
from .._solve import solve
from .._validation import check_device, check_integer
from . import _dist
from .sampling import counter_normal, item_seed
from .shards import RunReport, ShardedRun, _positive_int, load_arrays

__all__ = ["STATISTICS", "EnsembleFailed", "ensemble_sharded"]


class EnsembleFailed(RuntimeError):
    """A shard's integration did not reach ``t_end`` (a member blew up); the shards
    written before it are kept, and a rerun resumes after them."""


STATISTICS = {
    "mean": lambda a: a.mean(axis=0),
    "std": lambda a: a.std(axis=0, ddof=1) if len(a) > 1 else np.zeros_like(a[0]),
    "min": lambda a: a.min(axis=0),
    "max": lambda a: a.max(axis=0),
}


def _finite_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite number {'≥' if allow_zero else '>'} 0, got {value!r}")
    return v


def ensemble_sharded(
    problem: str,
    out: str | Path,
    *,
    n: int,
    perturb: float,
    t_end: float | None = None,
    batch_size: int = 64,
    scheme: str = "etdrk4",
    dt: float | None = None,
    seed: int = 0,
    statistics: tuple[str, ...] = ("mean", "std"),
    device: Any = None,
    progress: bool = True,
) -> RunReport:
    """Integrate ``n`` perturbed copies of a built-in problem from ``t = 0`` to ``t_end``.

    Parameters
    ----------
    problem : str
        A name from `expint.problems.PROBLEMS` (default sizes).
    out : str or Path
        Output folder (shared by all ranks); rerunning skips finished shards.
    n, batch_size : int
        Members, and members per shard (one batched solve).
    perturb : float
        Standard deviation ``s ≥ 0`` of the white-noise perturbation of the physical field.
    t_end : float, optional
        Final time (default: the problem's).
    scheme, dt :
        Scheme name and step size (default: the problem's literature step); the
        interval is split into ``ceil(t_end / dt)`` equal steps.
    statistics : tuple of str, or str
        Statistics over members of the final physical field written to
        ``stats.npz`` by rank 0: any of ``mean``, ``std``, ``min``, ``max`` (one name
        may be passed as a string).
    device : optional
        ``None`` integrates numpy arrays; a torch device (``"cpu"``, ``"cuda"``)
        integrates torch tensors there.
    """
    if problem not in problems.PROBLEMS:
        raise ValueError(f"unknown problem {problem!r}; valid: {', '.join(problems.PROBLEMS)}")
    if isinstance(statistics, str):  # one name, not its letters
        statistics = (statistics,)
    unknown = [s for s in statistics if s not in STATISTICS]
    if unknown:
        raise ValueError(f"unknown statistics {unknown}; valid: {', '.join(STATISTICS)}")
    n = _positive_int(n, "n")
    perturb = _finite_positive(perturb, "perturb", allow_zero=True)
    scheme = get_scheme(scheme).name  # unknown names fail here, not in the first shard
    seed = check_integer(seed, name="seed")
    device = None if device is None else check_device(device)
    bp = problems.PROBLEMS[problem]()
    t_end = bp.t_span[1] if t_end is None else _finite_positive(t_end, "t_end")
    dt = bp.dt if dt is None else _finite_positive(dt, "dt")
    n_steps = max(1, math.ceil(t_end / dt - 1e-9))
    config = {
        "problem": problem,
        "perturb": perturb,
        "t_end": t_end,
        "scheme": scheme,
        "n_steps": n_steps,
        "seed": seed,
        "device": "numpy" if device is None else "torch",
    }
    run = ShardedRun(out, n, batch_size, config, kind="members")
    y0 = np.asarray(bp.y0)
    real_size = bp.perturbation_size  # the physical field's (a real FFT state is shorter)

    def compute(start: int, stop: int) -> dict[str, Any]:
        xi = counter_normal(item_seed(seed, np.arange(start, stop)), real_size)
        y = y0 + bp.lift(perturb * xi)
        if device is not None:
            import torch

            y = torch.as_tensor(y, device=device)
        sol = solve(bp.problem, y, (0.0, t_end), scheme=scheme, n_steps=n_steps)
        if not sol.success:
            raise EnsembleFailed(
                f"members {start}–{stop - 1}: {sol.message}; a smaller perturbation or step (dt) may help"
            )
        final = bp.to_physical(sol.y[-1])
        return {"final": final.detach().cpu().numpy() if hasattr(final, "detach") else np.asarray(final)}

    report = run.run(compute, progress=progress)
    if _dist.rank_world()[0] == 0 and statistics:
        final = load_arrays(out)["final"]
        stats = {name: STATISTICS[name](final) for name in statistics}
        np.savez(Path(out) / "stats.npz", x=bp.x, **stats)
    return report
