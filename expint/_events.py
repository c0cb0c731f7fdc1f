r"""Event location for `expint.solve` (``events=``, as in scipy's ``solve_ivp``).

An event is a zero of a scalar function ``g(t, y)`` along the solution.  After each
accepted step from ``t`` to ``t + h`` every event function is evaluated at the new
state; where its sign changes over the step (or it reaches zero at the step's end), the
zero is located by Brent's method on the step's continuous extension
$\theta \mapsto u(t + \theta h)$, the same interpolant that ``dense_output`` gives, so the
event time and state carry the scheme's dense-output order rather than the step's
resolution.

As in scipy, a function may carry the attributes ``terminal`` (``True``, or a count
``n``: stop the run at the ``n``-th occurrence) and ``direction`` (positive: only
zeros where ``g`` increases; negative: decreasing; zero, the default: both).  A zero at
the start time is not an event, and a zero that ends one step is not counted again
when the next step starts from it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._backend import all_finite, is_torch_array, records_gradients, stack

__all__ = ["EventWatch", "terminal_message"]


def terminal_message(t_event: float) -> str:
    """``Solution.message`` of a run that a terminal event ended."""
    return f"a terminal event occurred at t = {t_event:.10g}"


def _as_list(events: Any) -> list[Callable[[float, Any], Any]]:
    funcs = [events] if callable(events) else events
    if isinstance(funcs, (str, bytes)) or not isinstance(funcs, Sequence) or not funcs:
        raise TypeError(
            "events must be a callable g(t, y) -> float or a non-empty list of them, "
            f"got {type(events).__name__}"
        )
    for i, g in enumerate(funcs):
        if isinstance(g, type) or not callable(g):
            raise TypeError(f"events[{i}] must be a callable g(t, y) -> float, got {type(g).__name__}")
    return list(funcs)


def _terminal_count(g: Any, i: int) -> int:
    """Occurrences after which the run stops (0: never)."""
    value = getattr(g, "terminal", False)
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, numbers.Integral) and int(value) >= 0:
        return int(value)
    raise ValueError(f"events[{i}].terminal must be True, False or a count ≥ 0, got {value!r}")


def _direction(g: Any, i: int) -> float:
    value = getattr(g, "direction", 0.0)
    real = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if not real or not math.isfinite(float(value)):
        raise ValueError(f"events[{i}].direction must be a finite number (its sign is used), got {value!r}")
    return math.copysign(1.0, float(value)) if float(value) != 0 else 0.0


class EventWatch:
    """The event functions of one run, their values at the last accepted state, and
    the events found so far (``t_events[i]`` and ``y_events[i]`` for function ``i``)."""

    def __init__(self, events: Any, t0: float, y0: Any):
        self.funcs = _as_list(events)
        self.remaining = [_terminal_count(g, i) for i, g in enumerate(self.funcs)]
        self.directions = [_direction(g, i) for i, g in enumerate(self.funcs)]
        self.times: list[list[float]] = [[] for _ in self.funcs]
        self.states: list[list[Any]] = [[] for _ in self.funcs]
        self.values = self._values(t0, y0)
        self._like = y0

    def _value(self, i: int, t: float, y: Any) -> float:
        out = self.funcs[i](t, y)
        if is_torch_array(out) or isinstance(out, np.ndarray):
            if math.prod(out.shape) != 1:
                raise ValueError(
                    f"events[{i}](t, y) must return one number, got an array of shape {tuple(out.shape)}"
                )
            out = out.reshape(()).item()
        if isinstance(out, (bool, np.bool_)) or not isinstance(out, numbers.Real):
            raise TypeError(f"events[{i}](t, y) must return a real number, got {type(out).__name__}")
        value = float(out)
        # NaN from a state that blew up is the run's to report (it stops there); NaN
        # from a finite state would silently find no event at all
        if math.isnan(value) and all_finite(y):
            raise ValueError(
                f"events[{i}](t, y) returned NaN at t = {t:.10g} for a finite state; an event "
                "function must return a number whose sign changes at the event"
            )
        return value

    def _values(self, t: float, y: Any) -> list[float]:
        return [self._value(i, t, y) for i in range(len(self.funcs))]

    def _crosses(self, i: int, before: float, after: float) -> bool:
        """A zero in ``(t, t + h]``: a strict sign change, or zero reached at the end
        (NaN, from a state that blew up, crosses nothing: the run reports that itself)."""
        up = before < 0 <= after
        down = before > 0 >= after
        d = self.directions[i]
        return (up and d >= 0) or (down and d <= 0)

    def after_step(
        self, stepper: Any, t: float, h: float, u: Any, stages: list, t_new: float, y_new: Any
    ) -> tuple[float, Any] | None:
        """Record the events of the accepted step from ``(t, u)`` to ``(t_new, y_new)``
        (signed ``h``; ``stages`` as the stepper filled them for dense output).  Returns
        ``(t_event, y_event)`` where a terminal event ends the run, else ``None``."""
        new = self._values(t_new, y_new)
        found = []
        for i, (before, after) in enumerate(zip(self.values, new, strict=True)):
            if self._crosses(i, before, after):
                theta = 1.0 if after == 0 else self._locate(i, stepper, t, h, u, stages, before, after)
                found.append((theta, i))
        self.values = new
        for theta, i in sorted(found):
            t_event = t_new if theta == 1.0 else t + theta * h
            y_event = y_new if theta == 1.0 else stepper.dense(t, h, u, stages, theta)
            if records_gradients(y_event):
                y_event = self._with_time_derivative(i, stepper, t, h, u, stages, theta, y_event)
            self.times[i].append(t_event)
            self.states[i].append(y_event)
            if self.remaining[i] > 0:
                self.remaining[i] -= 1
                if self.remaining[i] == 0:
                    return t_event, y_event
        return None

    def _with_time_derivative(
        self, i: int, stepper: Any, t: float, h: float, u: Any, stages: list, theta: float, y_event: Any
    ) -> Any:
        r"""``y_event`` whose gradient includes the event time's own dependence on the
        inputs ``p``.

        ``t*`` solves ``g(t*, y(t*; p)) = 0``, so by the implicit function theorem
        $dt^*/dp = -(\partial_y g \cdot \partial_p y)/\dot g$ with
        $\dot g = \frac{d}{dt} g(t, y(t))$ at ``t*``, and the event state's total
        derivative is $\partial_p y + \dot y\, dt^*/dp$.  Returned as
        $y^* + \dot y \cdot (-(g^* - \bar g^*)/\dot g)$ with $\bar g^*$ the detached
        value: the added term is zero (the located state is returned unchanged), its
        derivative the missing one.  ``ẏ`` and ``ġ`` are central differences on the step's
        continuous extension (detached; errors ~1e-10 relative).  Left as it is where
        ``g`` returns a plain number (no graph to follow) or ``ġ`` is zero or not finite
        (a tangential zero, whose time is not differentiable)."""
        import torch

        g = self.funcs[i](t + theta * h, y_event)
        if not (is_torch_array(g) and g.requires_grad):
            return y_event
        eps = 1e-6
        lo, hi = max(theta - eps, 0.0), min(theta + eps, 1.0)
        with torch.no_grad():
            ends = [u if x == 0.0 else stepper.dense(t, h, u, stages, x) for x in (lo, hi)]
            span = (hi - lo) * h
            y_dot = (ends[1] - ends[0]) / span
            g_dot = (self._value(i, t + hi * h, ends[1]) - self._value(i, t + lo * h, ends[0])) / span
        if g_dot == 0.0 or not math.isfinite(g_dot):
            return y_event
        g = g.reshape(())
        return y_event + y_dot * (-(g - g.detach()) / g_dot)

    def _locate(
        self, i: int, stepper: Any, t: float, h: float, u: Any, stages: list, before: float, after: float
    ) -> float:
        """The zero's step fraction θ by Brent's method on the continuous extension."""
        from scipy.optimize import brentq

        def g_at(theta: float) -> float:
            if theta <= 0.0:
                return before
            if theta >= 1.0:
                return after
            return self._value(i, t + theta * h, stepper.dense(t, h, u, stages, theta))

        # θ to 1e-14 of the step: the event time to rounding of t for any step size
        return float(brentq(g_at, 0.0, 1.0, xtol=1e-14, rtol=4 * np.finfo(float).eps))

    def results(self) -> tuple[list[np.ndarray], list[Any]]:
        """``(t_events, y_events)``: per function, the event times (float64) and the
        states stacked on a new leading axis (an empty stack where none occurred)."""
        t_events = [np.array(ts, dtype=np.float64) for ts in self.times]
        y_events = [stack(ys) if ys else self._like[None][:0] for ys in self.states]
        return t_events, y_events
