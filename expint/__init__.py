"""expint — exponential integrators for semilinear ODEs ``y' = L(t) y + N(t, y)``.

The numpy/scipy core imports without torch; torch tensors are accepted wherever arrays
are and keep their dtype and device.
"""

from __future__ import annotations

from . import schemes, study
from ._backend import Array
from ._dense import BatchDenseOutput, DenseOutput
from ._krylov import KrylovInfo, PhivResult, phiv
from ._operators import (
    Dense,
    Diagonal,
    EvaluatedCoefficients,
    EvaluatedOperator,
    KrylovProducts,
    LinearOperatorBase,
    MatrixFree,
    ScalarTime,
    Sparse,
)
from ._phi import phi, phi_all, phi_matrix, phi_matrix_all
from ._problem import SemilinearProblem
from ._solution import Solution
from ._solve import solve, time_grid

__version__ = "0.1.0"

__all__ = [
    "Array",
    "BatchDenseOutput",
    "Dense",
    "DenseOutput",
    "Diagonal",
    "EvaluatedCoefficients",
    "EvaluatedOperator",
    "KrylovInfo",
    "KrylovProducts",
    "LinearOperatorBase",
    "MatrixFree",
    "PhivResult",
    "ScalarTime",
    "SemilinearProblem",
    "Solution",
    "Sparse",
    "__version__",
    "phi",
    "phi_all",
    "phi_matrix",
    "phi_matrix_all",
    "phiv",
    "schemes",
    "solve",
    "study",
    "time_grid",
]
