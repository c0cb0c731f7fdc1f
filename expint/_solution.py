"""Result object of `expint.solve`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Solution:
    """Saved states of an integration.

    Attributes
    ----------
    t : numpy.ndarray
        Saved times (float64), increasing in the direction of integration.
    y : array or torch.Tensor
        Saved states stacked on a new leading axis: ``y[i]`` is the state at ``t[i]``
        (with the batch shape of ``y0``); ``y[-1]`` is the final state.
    stats : dict
        ``steps``, ``nfev`` (nonlinear evaluations), ``rejected_steps``,
        ``phi_evaluations`` (φ-coefficient sets computed), and ``krylov_matvecs`` for
        matrix-free operators.
    success : bool
        False if the state became non-finite.
    message : str
        What happened.
    scheme : str
        The scheme used.
    sol : DenseOutput, BatchDenseOutput or None
        With ``dense_output=True``: ``sol(t)`` gives the state at any ``t`` in the
        integrated span from the continuous extension of each step (with
        ``batch_steps="independent"``, of each member's own steps); else ``None``.
    t_events : list of numpy.ndarray or None
        With ``events``: for each event function, the times of its zeros, in order.
    y_events : list of arrays or None
        With ``events``: for each event function, the states at those times stacked on
        a new leading axis (length 0 where it had none).
    """

    t: np.ndarray
    y: Any
    stats: dict = field(default_factory=dict)
    success: bool = True
    message: str = ""
    scheme: str = ""
    sol: Any = field(default=None, repr=False)
    t_events: list | None = field(default=None, repr=False)
    y_events: list | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (
            f"Solution(scheme={self.scheme!r}, success={self.success}, saved={len(self.t)}, "
            f"t=[{self.t[0]:g} … {self.t[-1]:g}], stats={self.stats})"
        )
