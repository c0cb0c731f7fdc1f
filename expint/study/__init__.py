"""Convergence and work–precision studies with a reference of known accuracy.

``convergence(problem, y0, t_span, schemes, steps)`` refines fixed steps;
``work_precision(problem, y0, t_span, schemes, steps=..., rtols=..., peers=...)`` times
fixed-step, adaptive and external solvers against one reference.  Both return result
objects with ``table()`` (markdown), ``to_json()`` and ``plot(path)``; the convergence
result has ``orders`` (least-squares slopes on the asymptotic range, `fit_order`).
The command ``expint study PROBLEM --schemes a,b,c`` runs them on the built-in
problems.
"""

from ._fit import OrderFit, fit_order
from ._reference import Reference, make_reference, relative_error
from ._results import ConvergenceResult, WorkPrecisionResult
from ._run import best_time, convergence, work_precision

__all__ = [
    "ConvergenceResult",
    "OrderFit",
    "Reference",
    "WorkPrecisionResult",
    "best_time",
    "convergence",
    "fit_order",
    "make_reference",
    "relative_error",
    "work_precision",
]
