r"""Batches run one member at a time.

Two kinds of batch cannot advance in one step, so `solve` runs their members one
after the other, each a run of its own on the single state ``y0[b]`` (``N``, ``jac``
and ``jvp`` see states of shape ``(n,)``), and assembles one `Solution` with the
batch's shape:

* the exponential Rosenbrock pairs: a step linearises ``N`` around the state it starts
  from, so every member has its own Jacobian and its own φ-functions of ``L + J_b``.
  On a fixed grid every member takes the grid's steps (what a batch means there);
  adaptive runs need ``batch_steps="independent"``;
* per-sample steps (``batch_steps="independent"``) where the coefficients are not
  element-wise — a `Dense`, `Sparse` or `MatrixFree` linear part — or where each
  member carries a history (the Adams pairs).  (With an ETD Runge–Kutta pair on a
  `Diagonal` or `ScalarTime` linear part the batch advances together:
  `expint._batch_steps`.)

After a member fails, the `Solution` follows the per-sample convention: the times
every member reached, then each member's state where it stopped at the earliest of
those stopping times, with ``stats["t_reached"]`` per member.  The members share the
problem's operator, so coefficients one member computes serve the others from its
cache.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ._backend import stack
from ._dense import BatchDenseOutput
from ._solution import Solution

#: Statistics summed over the members (``steps`` is their maximum, as for per-sample steps).
_SUMMED = ("nfev", "rejected_steps", "phi_evaluations", "krylov_matvecs")


def solve_members(
    run_one: Callable[[Any], Solution],
    y0: Any,
    saved: np.ndarray,
    forward: bool,
    bar: Any,
    from_dense: Callable[[BatchDenseOutput, bool], tuple[np.ndarray, Any]] | None,
    per_sample: bool,
) -> Solution:
    """Run ``run_one(member_state)`` for every member of ``y0`` (shape ``(..., n)``) and
    assemble the batch's `Solution`.

    ``saved`` are the times a complete run saves (each member run saves them too, and
    ``t_end`` after them, so that a failed batch can report every finished member's
    final state); ``forward`` is the direction of integration;
    ``from_dense(batch_dense, success)`` gives the saved times and states of a run with
    dense output (``None`` without); ``per_sample`` adds each member's steps and
    rejections to the stats (adaptive runs, where they differ)."""
    shape = tuple(y0.shape)
    flat = y0.reshape(-1, shape[-1])
    sols = []
    with warnings.catch_warnings():
        # a member's failure is reported once below, naming the member; the tolerance
        # checks were made on the whole batch before the members ran
        warnings.filterwarnings("ignore", message=r"expint\.solve: |atol = ")
        for b in range(flat.shape[0]):
            sols.append(run_one(flat[b]))
            if bar is not None:
                bar.update(1)
    failed = [b for b, s in enumerate(sols) if not s.success]
    success = not failed
    message = sols[0].message if success else f"member {_index(failed[0], shape)}: {sols[failed[0]].message}"
    if not success:
        warnings.warn(f"expint.solve: {message}; stopping", RuntimeWarning, stacklevel=4)
    stats = _stats(sols, shape, per_sample)
    if from_dense is not None:
        batch_dense = BatchDenseOutput([s.sol for s in sols], shape)
        t_out, y_out = from_dense(batch_dense, success)
        return Solution(t_out, y_out, stats, success, message, sols[0].scheme, batch_dense)
    return Solution(*_saved_states(sols, shape, saved, forward), stats, success, message, sols[0].scheme)


def _index(b: int, shape: tuple) -> Any:
    """Member ``b`` of the flattened batch as an index into ``y0``'s batch axes."""
    idx = np.unravel_index(b, shape[:-1])
    return int(idx[0]) if len(idx) == 1 else tuple(int(i) for i in idx)


def _stats(sols: list[Solution], shape: tuple, per_sample: bool) -> dict:
    batch = shape[:-1]
    stats: dict[str, Any] = {"steps": max(s.stats["steps"] for s in sols)}
    for key in _SUMMED:
        if key in sols[0].stats:
            stats[key] = sum(s.stats[key] for s in sols)

    def per_member(values: list) -> list:
        return np.array(values).reshape(batch).tolist()

    if per_sample:
        stats["steps_per_sample"] = per_member([s.stats["steps"] for s in sols])
        stats["rejected_per_sample"] = per_member([s.stats["rejected_steps"] for s in sols])
    if not all(s.success for s in sols):
        stats["t_reached"] = per_member([float(s.t[-1]) for s in sols])
    return stats


def _saved_states(
    sols: list[Solution], shape: tuple, saved: np.ndarray, forward: bool
) -> tuple[np.ndarray, Any]:
    """The times every member saved, with the batch's states there; after a failure
    also each member's last state, at the earliest time a member stopped."""
    reached = [_prefix(s.t, saved) for s in sols]
    common = min(reached)
    t_out = saved[:common]
    states = [stack([s.y[k] for s in sols]).reshape(shape) for k in range(common)]
    if all(s.success for s in sols):
        return t_out, stack(states)
    ends = np.array([float(s.t[-1]) for s in sols])
    t_stop = float(ends.min() if forward else ends.max())
    if not (common and np.all(ends == t_out[-1])):
        t_out = np.append(t_out, t_stop)
        states.append(stack([s.y[-1] for s in sols]).reshape(shape))
    return t_out, stack(states)


def _prefix(t: np.ndarray, saved: np.ndarray) -> int:
    """How many of the times ``saved`` lead ``t``."""
    n = min(len(t), len(saved))
    same = np.asarray(t[:n]) == saved[:n]
    return n if bool(same.all()) else int(np.argmin(same))
