"""The semilinear problem ``y' = L(t) y + N(t, y)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._backend import is_array, sparse_kind
from ._operators import LinearOperatorBase, MatrixFree, Sparse


class SemilinearProblem:
    r"""A semilinear ODE $y' = L(t)\, y + N(t, y)$.

    Parameters
    ----------
    linear : LinearOperatorBase, sparse matrix or LinearOperator
        The linear part: an instance of `expint.Diagonal`, `expint.Dense`,
        `expint.MatrixFree`, `expint.Sparse` or `expint.ScalarTime`; a
        ``scipy.sparse`` matrix or torch sparse tensor is wrapped in `expint.Sparse`, a
        ``scipy.sparse.linalg.LinearOperator`` in `expint.MatrixFree` (its ``matvec``).
        It acts on the trailing axis of the state; leading axes are batch axes.
    nonlinear : callable
        ``nonlinear(t, y) -> array`` of the same shape and dtype as ``y`` (``t`` a
        float).
    name : str, optional
        Shown in error messages and plots.
    jvp : callable, optional
        ``jvp(t, y, v) -> ∂N/∂y (t, y) · v``, used by the exponential Rosenbrock
        schemes (``exprb32``, ``exprb43``); without it they use ``torch.func.jvp`` for
        real tensors and difference quotients otherwise.
    jac : callable, optional
        ``jac(t, y) -> ∂N/∂y (t, y)`` as a matrix, for the exponential Rosenbrock
        schemes: ``(n, n)`` for a real state; for a complex state the ``(2n, 2n)`` real
        matrix that maps ``[Re δy, Im δy]`` to ``[Re δN, Im δN]`` (``|y|²y`` and other
        nonlinearities that are not complex-differentiable have only this real-linear
        Jacobian).  The step then forms ``J = L + jac`` with no evaluations of ``N``
        for it; preferred over ``jvp`` when both are given.
    """

    def __init__(
        self,
        linear: Any,
        nonlinear: Callable[[float, Any], Any],
        name: str = "",
        jvp: Callable[[float, Any, Any], Any] | None = None,
        jac: Callable[[float, Any], Any] | None = None,
    ):
        if isinstance(linear, type):
            raise TypeError(
                f"linear must be an operator instance, got the class {linear.__name__}; "
                f"construct it first, e.g. {linear.__name__}(...)"
            )
        if sparse_kind(linear) is not None:
            linear = Sparse(linear)
        elif _is_scipy_linear_operator(linear):
            linear = _from_linear_operator(linear)
        if not isinstance(linear, LinearOperatorBase):
            hint = ""
            if is_array(linear):
                hint = " (wrap an array: Diagonal(d) for a diagonal, Dense(A) for a matrix)"
            raise TypeError(
                "linear must be an expint operator (Diagonal, Dense, MatrixFree, Sparse, ScalarTime), "
                "a sparse matrix or a scipy LinearOperator, "
                f"got {type(linear).__name__}{hint}"
            )
        if isinstance(nonlinear, type) or not callable(nonlinear):
            raise TypeError("nonlinear must be a callable (t, y) -> array, not a class or a value")
        if jvp is not None and (isinstance(jvp, type) or not callable(jvp)):
            raise TypeError("jvp must be a callable (t, y, v) -> ∂N/∂y · v")
        if jac is not None and (isinstance(jac, type) or not callable(jac)):
            raise TypeError("jac must be a callable (t, y) -> the matrix ∂N/∂y")
        self.linear = linear
        self.nonlinear = nonlinear
        self.name = name
        self.jvp = jvp
        self.jac = jac

    def rhs(self, t: float, y: Any) -> Any:
        """The full right-hand side ``L(t) y + N(t, y)`` (for reference solvers)."""
        return self.linear.apply(y, t) + self.nonlinear(t, y)

    def __repr__(self) -> str:
        return f"SemilinearProblem({self.name or type(self.linear).__name__}, n={self.linear.n})"


def _is_scipy_linear_operator(obj: Any) -> bool:
    # by module, so that scipy.sparse.linalg is imported only where one is passed
    return type(obj).__module__.startswith("scipy.sparse.linalg") and hasattr(obj, "matvec")


def _from_linear_operator(op: Any) -> MatrixFree:
    """A scipy ``LinearOperator`` as `MatrixFree` (only its products are used, as by
    `expint.phiv`)."""
    shape = tuple(op.shape)
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"linear must be square, got a LinearOperator of shape {shape}")
    return MatrixFree(op.matvec, shape[0])
