r"""Per-sample step sizes for a batch: ``solve(..., batch_steps="independent")``.

With a `Diagonal` or `ScalarTime` linear part the φ-coefficients act entry by entry,
so one step can advance every member of a batch ``y`` of shape ``(B, n)`` with its own
time $t_b$ and step size $h_b$: the coefficients of member $b$ are those of the
scalar step $(t_b, h_b)$, stacked into ``(B, n)`` arrays (``(B, 1)`` for `ScalarTime`),
and the nonlinear part is called once for the whole batch with the stage times
$t_b + c_i h_b$ as an array of shape ``(B, 1)``.  Each member has its own error norm

$$
\|\hat e\|_b = \Big(\frac1n \sum_i \Big(\frac{|\hat e_{b,i}|}
{\mathrm{atol}_i + \mathrm{rtol}\max(|u_{b,i}|, |u^{+}_{b,i}|)}\Big)^2\Big)^{1/2},
$$

its own PI controller state, acceptance and rejection, so one stiff or fast-moving
member no longer sets the step size of the whole batch.  Step sizes are rounded down
to the ladder $2^{j/4}$ as in the shared mode: members on the same rung share one
cached coefficient set, so a step costs one φ evaluation per distinct rung, not per
member.  Members that reached ``t_end`` drop out of the batch; the others go on, so
the nonlinear part is called on the members still running — a state of shape
``(B', n)``, ``B' ≤ B`` — and must act row by row (checked on every call).
Batches that cannot advance together (other linear parts, the Adams pairs) run member
by member instead (`expint._members`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._adaptive import (
    _EPS,
    _FAC_MAX,
    _FAC_MIN,
    _MIN_FIRST,
    _SAFETY,
    Tolerances,
    atol_like,
    on_ladder,
    scaled_error,
)
from ._backend import (
    array_namespace,
    cast,
    copy_array,
    from_host,
    is_torch_array,
    records_gradients,
    to_like,
    to_numpy,
)
from ._schemes._rk import derivative_weights


def _gather(values: list[Any], inverse: np.ndarray, like: Any) -> Any:
    """Coefficients of the distinct step sizes (``values``) for every member
    (``inverse[b]`` indexes ``values``), with the batch on the leading axis."""
    first = values[0]
    if first is None:
        return None
    if isinstance(first, float):  # ScalarTime: one scalar per member, broadcast over n
        return to_like(np.array(values, dtype=float)[inverse][:, None], like)
    table = array_namespace(first).stack(values, 0)
    return table[_index(inverse, table)]


def stacked_coefficients(stepper: Any, t: np.ndarray, h: np.ndarray, like: Any) -> list:
    """The tableau's coefficients for members with steps ``(t_b, h_b)``, stacked (the
    cached set itself when every member shares one)."""
    timed = stepper.linear.time_dependent
    keys = [(float(hb), float(tb) if timed else None) for hb, tb in zip(h, t, strict=True)]
    index: dict[tuple, int] = {}
    sets: list[list] = []
    inverse = np.empty(len(keys), dtype=np.int64)
    for b, key in enumerate(keys):
        if key not in index:
            index[key] = len(sets)
            sets.append(stepper.coefficients(key[0], float(t[b]), like))
        inverse[b] = index[key]
    if len(sets) == 1:
        return sets[0]
    out = []
    for r, (_, row) in enumerate(sets[0]):
        e = _gather([m[r][0] for m in sets], inverse, like)
        out.append(
            (e, [(j, _gather([m[r][1][q][1] for m in sets], inverse, like)) for q, (j, _) in enumerate(row)])
        )
    return out


def member_norms(err: Any, y: Any, y_new: Any, tol: Tolerances) -> np.ndarray:
    """``‖ê‖_b`` of the module docstring for each member (NaN where ``u⁺_b`` is not
    finite), on the host."""
    atol = atol_like(tol, y)
    return np.asarray(to_numpy(scaled_error(err, y, y_new, tol.rtol, atol, tol.norm, axis=-1)), dtype=float)


class BatchController:
    """The PI controller of `expint._adaptive.PIController`, one state per member."""

    def __init__(self, embedded_order: int, size: int):
        k = embedded_order + 1
        self.alpha, self.beta = 0.7 / k, 0.4 / k
        self.prev = np.ones(size)
        self.rejected_last = np.zeros(size, dtype=bool)

    def accept(self, idx: np.ndarray, err: np.ndarray) -> np.ndarray:
        err = np.maximum(err, 1e-10)
        fac = _SAFETY * err**-self.alpha * self.prev[idx] ** self.beta
        fac = np.minimum(np.where(self.rejected_last[idx], 1.0, _FAC_MAX), np.maximum(_FAC_MIN, fac))
        self.prev[idx], self.rejected_last[idx] = err, False
        return fac

    def reject(self, idx: np.ndarray, err: np.ndarray) -> np.ndarray:
        self.rejected_last[idx] = True
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            fac = np.minimum(1.0, np.maximum(_FAC_MIN, _SAFETY * err**-self.alpha))
        return np.where(np.isfinite(err), fac, _FAC_MIN)


@dataclass
class BatchRun:
    """What `run_independent` returns: per target, the states of every member (``None``
    where some member did not reach it), the time and state each member reached, counts
    per member, and how the run ended."""

    saved: list[Any]
    t_reached: np.ndarray
    y_reached: Any
    steps: np.ndarray
    rejected: np.ndarray
    success: bool
    message: str


def _index(idx: np.ndarray, like: Any) -> Any:
    """Host row indices in the form ``like`` is indexed with."""
    return from_host(idx, like) if is_torch_array(like) else idx


def _put(y: Any, idx: Any, values: Any) -> Any:
    """``y`` with ``y[idx] = values``: in place (``y`` is the runner's own working copy),
    except while autograd records through either, where an in-place write would
    overwrite values that earlier steps' backward passes need (torch raises at
    ``backward``): then a new tensor.  ``idx``: host row indices, or a tuple of them
    for several axes."""
    key = tuple(_index(i, y) for i in idx) if isinstance(idx, tuple) else _index(idx, y)
    if records_gradients(y) or records_gradients(values):
        return y.index_put(key if isinstance(key, tuple) else (key,), values)
    y[key] = values
    return y


def _times(values: np.ndarray, like: Any) -> Any:
    return to_like(values[:, None], like)


class RowwiseNonlinear:
    """``N(t, y)`` on a sub-batch, with the shape checked on every call (a function
    written for the full batch, e.g. with per-member parameters, fails here clearly
    instead of broadcasting)."""

    def __init__(self, fn: Any):
        self.fn = fn

    def __call__(self, t: Any, y: Any) -> Any:
        try:
            out = self.fn(t, y)
        except (ValueError, RuntimeError, IndexError) as err:
            raise ValueError(
                f"nonlinear(t, y) failed on {y.shape[0]} batch members ({err}): with "
                "batch_steps='independent' it is called on the members still running and must "
                "act row by row"
            ) from err
        if tuple(out.shape) != tuple(y.shape):
            raise ValueError(
                f"nonlinear(t, y) returned shape {tuple(out.shape)} for {y.shape[0]} batch members "
                f"of shape {tuple(y.shape)}: with batch_steps='independent' it is called on the "
                "members still running and must act row by row"
            )
        return out


def first_steps(
    stepper: Any, n0: Any, y0: Any, t0: float, direction: float, tol: Tolerances, k: int
) -> np.ndarray:
    """`expint._adaptive.initial_step` for each member (Hairer, Nørsett & Wanner)."""
    zero = y0 * 0
    with np.errstate(over="ignore"):  # an infinite norm is handled below (atol = 0 at a zero of y0)
        d0 = member_norms(y0, zero, y0, tol)
        d1 = member_norms(n0, zero, y0, tol)
    h0 = np.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / np.maximum(d1, 1e-300))
    n1 = stepper.nonlinear(_times(t0 + direction * h0, y0), y0 + _times(direction * h0, y0) * n0)
    with np.errstate(over="ignore"):
        d2 = member_norms(n1 - n0, zero, y0, tol) / h0
    big = np.maximum(d1, d2)
    with np.errstate(divide="ignore"):
        # (an infinite norm, N nonzero where y0 and atol are 0: start small, as one member does)
        h1 = np.where(
            (big <= 1e-15) | ~np.isfinite(big),
            np.maximum(1e-6, h0 * 1e-3),
            (0.01 / np.maximum(big, 1e-300)) ** (1.0 / k),
        )
    return np.minimum(100 * h0, h1)


def run_independent(
    stepper: Any,
    y0: Any,
    t0: float,
    targets: list[float],
    tol: Tolerances,
    embedded_order: int,
    *,
    first_step: float | None,
    max_step: float,
    max_steps: int,
    bar: Any = None,
    dense: list[Any] | None = None,
) -> BatchRun:
    """Integrate each member of ``y0`` (shape ``(B, n)``) from ``t0`` through the save
    times ``targets`` with its own steps (module docstring); ``saved[i]`` is the batch
    at ``targets[i]``.  ``dense``: one `DenseOutput` per member, each given that
    member's accepted steps (its start state and its rows of the stage values)."""
    size = y0.shape[0]
    tf = targets[-1]
    direction = math.copysign(1.0, tf - t0)
    ctrl = BatchController(embedded_order, size)
    n0 = stepper.nonlinear(_times(np.full(size, t0), y0), y0)
    stepper.nfev += 1
    if first_step is not None:
        h = np.full(size, float(first_step))
    else:
        h = np.maximum(
            first_steps(stepper, n0, y0, t0, direction, tol, embedded_order + 1), _MIN_FIRST * abs(tf - t0)
        )
        stepper.nfev += 1
    t = np.full(size, t0)
    nxt = np.zeros(size, dtype=int)  # each member's next target
    rows: list[list[Any]] = [[None] * size for _ in targets]
    steps = np.zeros(size, dtype=int)
    rejected = np.zeros(size, dtype=int)
    # working copies updated in place; saved rows are copied out
    y, n0 = copy_array(y0), copy_array(n0)
    # per member, the accepted (t, N) a quadrature-blind pair interpolates
    history = _History(size, n0) if stepper.quadrature_blind else None
    goal = np.asarray(targets, dtype=float)
    while True:
        idx = np.flatnonzero(nxt < len(targets))
        if idx.size == 0:
            return BatchRun(_batches(rows), t, y, steps, rejected, True, "reached t_end")
        h[idx] = np.minimum(h[idx], max_step)
        floor = 16 * _EPS * np.maximum(np.abs(t[idx]), abs(tf - t0))
        why = _failure(idx, h[idx] < floor, steps + rejected >= max_steps, t, h, floor, max_steps, tf)
        if why is not None:
            return BatchRun(_batches(rows), t, y, steps, rejected, False, why)
        remaining = np.abs(goal[nxt[idx]] - t[idx])
        hit = h[idx] >= remaining * (1 - 1e-12)
        h_step = np.where(hit, remaining, [on_ladder(x) for x in h[idx]])
        ya = y if idx.size == size else y[_index(idx, y)]
        n0a = n0 if idx.size == size else n0[_index(idx, n0)]
        coeffs = stacked_coefficients(stepper, t[idx], direction * h_step, ya)
        stages: list | None = [] if dense is not None else None
        y_new, err, n_next = stepper.step_with_error(
            _times(t[idx], ya), _times(direction * h_step, ya), ya, n0a, stages, coeffs=coeffs
        )
        if history is not None:
            history.record(idx, t, n0a)
            quadrature = history.error(stepper, idx, t, direction * h_step, ya, n_next, coeffs)
            if quadrature is not None:
                err = err + quadrature
        e = member_norms(err, ya, y_new, tol)
        ok = e <= 1.0  # NaN: rejected
        bad = idx[~ok]
        rejected[bad] += 1
        h[bad] = h_step[~ok] * ctrl.reject(bad, e[~ok])
        good = idx[ok]
        if good.size == 0:
            continue
        steps[good] += 1
        hit_good = hit[ok]
        t_before = t.min()
        if dense is not None and stages is not None:
            _record_dense(dense, idx, ok, t, direction * h_step, ya, stages, goal, nxt, hit)
        t[good] = np.where(hit_good, goal[nxt[good]], t[good] + direction * h_step[ok])
        sel_like = _index(np.flatnonzero(ok), y_new)
        y_good = y_new[sel_like]
        y = _put(y, good, y_good)
        if n_next is None:
            n_good = stepper.nonlinear(_times(t[good], y_good), y_good)
            stepper.nfev += 1
        else:
            n_good = n_next[sel_like]
        n0 = _put(n0, good, n_good)
        # a step shortened to land on a save point does not shorten the next one
        h[good] = np.where(hit_good, h[good], h_step[ok]) * ctrl.accept(good, e[ok])
        for b in good[hit_good]:
            rows[nxt[b]][b] = copy_array(y[int(b)])
            nxt[b] += 1
        if bar is not None:
            bar.update(abs(t.min() - t_before))


class _History:
    """The last accepted ``(t, N)`` of every member, for the quadrature term of a pair
    whose estimate cannot see it (`expint._schemes._rk.RKStepper.quadrature_error`):
    arrays over the batch, oldest first, so a step needs no loop over members."""

    DEPTH = 4  # with N(t + h, u_{n+1}): five points, the quartic's two top derivatives

    def __init__(self, size: int, like: Any):
        self.times = np.full((size, self.DEPTH), np.nan)
        self.count = np.zeros(size, dtype=int)
        self.values = _zeros_like_rows(like, self.DEPTH)  # (size, DEPTH, n)

    def record(self, idx: np.ndarray, t: np.ndarray, n0a: Any) -> None:
        """Add each member's ``(t_b, N_b)`` unless it is already its newest point (a
        member retrying a rejected step)."""
        last = self.times[idx, np.maximum(self.count[idx] - 1, 0)]
        new = (self.count[idx] == 0) | (last != t[idx])
        full = new & (self.count[idx] == self.DEPTH)
        if full.any():  # drop the oldest point of members whose history is full
            rows = idx[full]
            self.times[rows, :-1] = self.times[rows, 1:]
            self.values = _put(self.values, rows, _shift_left(self.values[_index(rows, self.values)]))
            self.count[rows] -= 1
        rows = idx[new]
        slot = self.count[rows]
        self.times[rows, slot] = t[rows]
        self.values = _put(self.values, (rows, slot), n0a[_index(np.flatnonzero(new), n0a)])
        self.count[rows] += 1

    def error(
        self,
        stepper: Any,
        idx: np.ndarray,
        t: np.ndarray,
        h_signed: np.ndarray,
        ya: Any,
        n_next: Any,
        coeffs: list,
    ) -> Any:
        """The quadrature term of each member's trial step, from its points and
        ``N(t + h, u_{n+1})``; None while no member has four points."""
        count = self.count[idx]
        s = np.full((len(idx), self.DEPTH + 1), np.nan)
        s[:, : self.DEPTH] = (self.times[idx] - t[idx, None]) / h_signed[:, None]
        s[np.arange(len(idx)), count] = 1.0
        weights = derivative_weights(s, len(stepper.tab.quadrature_defects))  # (R, k, DEPTH + 1)
        if not weights.any():
            return None
        points = _append_rows(self.values[_index(idx, self.values)], n_next, count)  # (R, DEPTH + 1, n)
        combined = cast(to_like(weights, points), points.dtype) @ points  # (R, k, n)
        return stepper.quadrature_error(
            h_signed, t[idx], ya, [combined[:, i] for i in range(weights.shape[1])], coeffs=coeffs
        )


def _zeros_like_rows(like: Any, depth: int) -> Any:
    """Zeros of shape ``(size, depth, n)`` in ``like``'s library, device and dtype."""
    shape = (like.shape[0], depth, like.shape[1])
    if is_torch_array(like):
        import torch

        return torch.zeros(shape, dtype=like.dtype, device=like.device)
    return np.zeros(shape, dtype=like.dtype)


def _shift_left(rows: Any) -> Any:
    """Each row's points moved one slot towards the start (the last slot keeps a copy)."""
    out = copy_array(rows)
    out[:, :-1] = rows[:, 1:]
    return out


def _append_rows(stored: Any, newest: Any, count: np.ndarray) -> Any:
    """``(R, DEPTH + 1, n)``: each member's stored points with ``newest`` after its
    last one (zero rows beyond; their weights are zero)."""
    if is_torch_array(stored):
        import torch

        out: Any = torch.cat([stored, stored[:, :1] * 0], dim=1)
    else:
        out = np.concatenate([stored, np.zeros_like(stored[:, :1])], axis=1)
    out[_index(np.arange(len(count)), out), _index(count, out)] = newest
    return out


def _record_dense(
    dense: list[Any],
    idx: np.ndarray,
    ok: np.ndarray,
    t: np.ndarray,
    h_signed: np.ndarray,
    ya: Any,
    stages: list,
    goal: np.ndarray,
    nxt: np.ndarray,
    hit: np.ndarray,
) -> None:
    """Give each accepted member its step (before ``y`` and ``t`` move on).  Its rows
    are copied: ``ya`` and the first stage value (``N`` at the step's start) may be the
    runner's working arrays, which the next steps overwrite in place."""
    for row in np.flatnonzero(ok):
        b, r = int(idx[row]), int(row)
        t_next = float(goal[nxt[b]]) if hit[row] else float(t[b] + h_signed[row])
        dense[b].add(
            float(t[b]), float(h_signed[row]), copy_array(ya[r]), [copy_array(s[r]) for s in stages], t_next
        )


def _failure(
    idx: np.ndarray,
    too_small: np.ndarray,
    exhausted: np.ndarray,
    t: np.ndarray,
    h: np.ndarray,
    floor: np.ndarray,
    max_steps: int,
    tf: float,
) -> str | None:
    if np.any(too_small):
        i = int(np.flatnonzero(too_small)[0])
        b = int(idx[i])
        return (
            f"sample {b}: the step size fell to {h[b]:.3g} (below the floor {floor[i]:.1e}) at "
            f"t = {t[b]:.10g}: the solution may blow up or be non-smooth there, or rtol/atol are "
            "too tight for the state's precision"
        )
    if np.any(exhausted[idx]):
        b = int(idx[np.flatnonzero(exhausted[idx])[0]])
        return (
            f"sample {b}: max_steps = {max_steps} (accepted and rejected) reached at "
            f"t = {t[b]:.10g} before t_end = {tf:g}; raise max_steps or loosen rtol/atol"
        )
    return None


def _batches(rows: list[list[Any]]) -> list[Any]:
    """Each target's batch, where every member reached it."""
    out: list[Any] = []
    for row in rows:
        if any(r is None for r in row):
            out.append(None)
            continue
        out.append(array_namespace(row[0]).stack(row, 0))
    return out
