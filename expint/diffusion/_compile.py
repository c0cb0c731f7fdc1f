"""Compile a method's per-row plans into one coefficient table and a named program.

`compile_plans` is a pure function of the plans, the grid rows, the schedule and the
model's prediction type.  It evaluates every coefficient once in float64 (including the
conversion of the model's output into the method's target, ε or x0) and packs them into
a table ``(slots, rows)``; the program refers to table rows by index, so that running a
step is model calls plus fused multiply–adds, with no host work.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from .methods import Plan, StepPlan
from .models import conversion
from .schedules import Schedule

__all__ = ["CompiledStage", "CompiledStep", "Corrector", "Program", "compile_plans"]

#: ``(prediction index, coefficient slot)``: the term ``table[slot] · P[index]``.
Term = tuple[int, int]


@dataclass(frozen=True)
class CompiledStage:
    """One model call: evaluate at ``x_slot · x + Σ table[slot] · P[index]``."""

    time: int  # row of `Program.times`
    x_slot: int | None  # None: the stage state is the step's start state itself
    terms: tuple[Term, ...]
    conversion: tuple[int, int] | None  # slots (a, b): target = a·x_stage + b·output; None: as returned
    pred: int  # index the stage's prediction is stored under


@dataclass(frozen=True)
class Corrector:
    """Recompute the step's start state from the previous one: ``x_slot · x_prev + Σ …``."""

    x_slot: int
    terms: tuple[Term, ...]


@dataclass(frozen=True)
class CompiledStep:
    """The stages of one step, its update ``out_x · x + Σ …`` and the predictions that no
    later step uses (released after it)."""

    stages: tuple[CompiledStage, ...]
    out_x: int
    out_terms: tuple[Term, ...]
    release: tuple[int, ...]
    corrector: Corrector | None


@dataclass(frozen=True)
class Program:
    """Everything `Sampler` runs: steps, the coefficient table and the stage times."""

    steps: tuple[CompiledStep, ...]
    table: np.ndarray  # (slots, rows), float64
    times: np.ndarray  # (stages, rows), float64
    target: str

    @property
    def n_stages(self) -> int:
        return self.times.shape[0]


class _Table:
    """Coefficient slots: one float64 row per slot, one column per grid row."""

    def __init__(self, rows: int):
        self.values: list[np.ndarray] = []
        self.rows = rows

    def add(self, v: Any) -> int:
        # a fresh float64 row per slot (np.array copies; broadcasting a scalar is rare)
        row = np.array(v, dtype=np.float64)
        self.values.append(row if row.shape == (self.rows,) else np.array(np.broadcast_to(row, (self.rows,))))
        return len(self.values) - 1

    def terms(self, per_row: list[list[tuple[int, float]]]) -> tuple[Term, ...]:
        """Slots for terms whose indices agree across rows (row 0's indices)."""
        return tuple((idx, self.add([row[m][1] for row in per_row])) for m, (idx, _) in enumerate(per_row[0]))

    def array(self) -> np.ndarray:
        return np.stack(self.values) if self.values else np.zeros((0, self.rows))


def compile_plans(plans: list[Plan], rows: np.ndarray, schedule: Schedule, prediction: str) -> Program:
    """Compile one plan per grid row (``rows``: shape ``(len(plans), n_steps + 1)``).

    Raises ``ValueError`` when per-row plans differ in structure, a conversion or a
    propagator is undefined on the grid, or a coefficient is not finite.
    """
    if len(plans) > 1:  # harmonised copies: the caller's plans stay as the method made them
        # `_harmonise` reassigns fields of the steps (never mutates a list or a stage in
        # place), so copies of the steps are enough — a deep copy of 256 rows' plans
        # cost more than planning them
        plans = [Plan([copy.copy(step) for step in p.steps], p.target) for p in plans]
        _harmonise(plans)
    _check_structure(plans)
    ref = plans[0]
    table = _Table(len(plans))
    stage_rows = [
        [s.stages[k] for s in per_row]
        for per_row in zip(*(p.steps for p in plans), strict=True)
        for k in range(len(per_row[0].stages))
    ]
    times = np.array([[s.t for s in rows_k] for rows_k in stage_rows]).reshape(-1, len(plans))
    conv = _conversions(schedule, prediction, ref.target, times)
    release = _release_after(ref.steps)
    steps = []
    first = 0  # the step's first stage in `stage_rows`
    for i, step in enumerate(ref.steps):
        per_row = [p.steps[i] for p in plans]
        stages = tuple(
            _compile_stage(stage_rows[m], m, conv[m], table, prediction, ref.target, i)
            for m in range(first, first + len(step.stages))
        )
        first += len(step.stages)
        steps.append(_compile_update(per_row, rows, i, table, stages, release[i]))
    coefficients = table.array()
    if not np.all(np.isfinite(coefficients)):
        raise ValueError("non-finite sampler coefficients; check that the grid stays inside the schedule")
    return Program(tuple(steps), coefficients, times, ref.target)


def _compile_stage(
    stage_rows: list, time: int, conv: np.ndarray, table: _Table, prediction: str, target: str, step: int
) -> CompiledStage:
    if not np.all(np.isfinite(conv)):
        raise ValueError(
            f"step {step}: a {prediction!r} prediction cannot be turned into {target!r} at "
            f"t = {stage_rows[0].t:g} (α or σ vanishes there); choose a grid that avoids it or a "
            "method with the other target"
        )
    identity = not stage_rows[0].terms and all(s.x_coef == 1.0 for s in stage_rows)
    return CompiledStage(
        time=time,
        x_slot=None if identity else table.add([s.x_coef for s in stage_rows]),
        terms=table.terms([s.terms for s in stage_rows]),
        # the common case (ε model, ε method; x0 model, x0 method) needs no conversion
        conversion=None if np.all(conv == [0.0, 1.0]) else (table.add(conv[:, 0]), table.add(conv[:, 1])),
        pred=stage_rows[0].pred,
    )


def _conversions(schedule: Schedule, prediction: str, target: str, t: np.ndarray) -> np.ndarray:
    """`conversion_at` at every time of ``t``, shape ``t.shape + (2,)``: the schedule
    evaluated once on all of them (a plan has one or more stages per step, and a
    schedule call at a single time costs a dozen array operations)."""
    if (prediction, target) in (("eps", "eps"), ("x0", "x0")):
        return np.broadcast_to(np.array([0.0, 1.0]), (*t.shape, 2))
    a, s = np.asarray(schedule.alpha(t), dtype=float), np.asarray(schedule.sigma(t), dtype=float)
    da = ds = np.full(t.shape, np.nan)
    if prediction == "flow":
        da, ds = (np.asarray(v, dtype=float) for v in schedule.derivatives(t))
    values = zip(a.ravel(), s.ravel(), da.ravel(), ds.ravel(), strict=True)
    return np.array([conversion(prediction, target, *v) for v in values]).reshape(*t.shape, 2)


def conversion_at(schedule: Schedule, prediction: str, target: str, t: float) -> tuple[float, float]:
    """``(A, B)`` with ``target = A x + B · prediction`` at time ``t`` (`conversion`)."""
    a, b = _conversions(schedule, prediction, target, np.array([float(t)]))[0]
    return float(a), float(b)


def undefined_start(i: int, t: float) -> ValueError:
    """The error for a step of an ε-target method that starts where α = 0 (its variable
    ``x/α`` is undefined there: flow matching's σ = 1)."""
    return ValueError(
        f"step {i} from t = {t:g}: the propagator is undefined (α = 0 at the start); "
        "start the grid below the schedule's end or use a data-prediction method (dpmpp2m)"
    )


def _compile_update(
    per_row: list[StepPlan],
    rows: np.ndarray,
    i: int,
    table: _Table,
    stages: tuple[CompiledStage, ...],
    release: tuple[int, ...],
) -> CompiledStep:
    out_x = np.array([s.out_x for s in per_row])
    if not np.all(np.isfinite(out_x)):
        raise undefined_start(i, float(rows[0, i]))
    corrector = None
    if per_row[0].corr_x is not None:
        corrector = Corrector(
            table.add([s.corr_x for s in per_row]), table.terms([s.corr_terms for s in per_row])
        )
    return CompiledStep(
        stages=stages,
        out_x=table.add(out_x),
        out_terms=table.terms([s.out_terms for s in per_row]),
        release=release,
        corrector=corrector,
    )


def _release_after(steps: list[StepPlan]) -> list[tuple[int, ...]]:
    """For each step, the predictions that no later step reads (one pass over the plan)."""
    last_use: dict[int, int] = {}
    for i, step in enumerate(steps):
        for term_list in [*(st.terms for st in step.stages), step.out_terms, step.corr_terms]:
            for idx, _ in term_list:
                last_use[idx] = i
    out: list[list[int]] = [[] for _ in steps]
    for idx, i in last_use.items():
        out[i].append(idx)
    return [tuple(r) for r in out]


def _check_structure(plans: list[Plan]) -> None:
    def shape(p: Plan) -> list:
        return [(len(s.stages), [i for i, _ in s.out_terms]) for s in p.steps]

    ref = shape(plans[0])
    if any(shape(p) != ref for p in plans[1:]):
        raise ValueError(
            "per-sample grids give steps of different structure (e.g. only some end at σ = 0); "
            "use grids of the same kind"
        )


def _union(term_lists: list[list[tuple[int, float]]]) -> list[tuple[int, float]] | None:
    """Indices used by any row, in first-use order, or None if they already agree."""
    first = [i for i, _ in term_lists[0]]
    if all([i for i, _ in t] == first for t in term_lists[1:]):
        return None
    order: list[int] = []
    for terms in term_lists:
        order += [i for i, _ in terms if i not in order]
    return [(i, 0.0) for i in order]


def _with_terms(
    term_list: list[tuple[int, float]], union: list[tuple[int, float]]
) -> list[tuple[int, float]]:
    have = dict(term_list)
    return [(idx, have.get(idx, 0.0)) for idx, _ in union]


def _harmonise(plans: list[Plan]) -> None:
    """Give the per-sample plans of one grid the same terms, step by step (in place).

    The stability guards may give rows different degrees on the same step: missing
    history terms are added with weight 0, and a corrector present on only some rows
    is dropped from all of them (a row without one cannot be written in the
    corrector's form).  Steps with different stage counts remain an error.
    """
    for i in range(len(plans[0].steps)):
        steps = [p.steps[i] for p in plans]
        if len({len(s.stages) for s in steps}) > 1:
            return  # reported by the structure check
        union = _union([s.out_terms for s in steps])
        if union is not None:
            for s in steps:
                s.out_terms = _with_terms(s.out_terms, union)
        if len({s.corr_x is None for s in steps}) > 1:
            for s in steps:
                s.corr_x, s.corr_terms = None, []
        elif steps[0].corr_x is not None:
            union = _union([s.corr_terms for s in steps])
            if union is not None:
                for s in steps:
                    s.corr_terms = _with_terms(s.corr_terms, union)
