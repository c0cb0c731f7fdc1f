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

    def plot(
        self,
        path: Any = None,
        *,
        member: Any = None,
        kind: str = "auto",
        part: str = "auto",
        transform: Any = None,
        ax: Any = None,
    ) -> Any:
        r"""A first look at the solution: each component against ``t``, or for a long
        state a space–time image (component index across, ``t`` up).

        With a dense output (``solve(..., dense_output=True)``) the curves are drawn
        from the interpolant at 400 times over the span; otherwise from the saved
        states (pass ``t_eval`` for more than the two ends).  Event times are marked
        by dotted lines, and a run that stopped early says where in the title.

        Parameters
        ----------
        path : str or path-like, optional
            Write the figure to this file (``.png``, ``.pdf``, ``.svg``, …; the folder
            is created) and return its path.  Without it (and without ``ax``) a new
            figure is made and its axes returned.
        member : int or tuple of int, optional
            For a batch ``y0`` of shape ``(*batch, n)``: which member, an index into
            the batch axes.  Required for a batch, refused otherwise.
        kind : {"auto", "lines", "image"}
            ``"lines"``: one curve per component (legend up to 10 of them);
            ``"image"``: ``pcolormesh`` of the state over (component, ``t``), which
            needs two or more times; ``"auto"``: lines up to 10 components, else
            the image.
        part : {"auto", "real", "imag", "abs"}
            What of a complex state is drawn (``"auto"``: its modulus; a real state
            as it is).
        transform : callable, optional
            Applied to the member's states, a numpy array of shape ``(T, n)`` (times
            first), before drawing; it returns one row per time, e.g. a built-in
            problem's ``to_physical`` (Fourier coefficients to the field).
        ax : matplotlib Axes, optional
            Draw into these axes (e.g. a subplot of your figure) and return them.

        Returns
        -------
        pathlib.Path or matplotlib.axes.Axes
            The file written, or the axes drawn into.

        Raises
        ------
        ValueError
            An unknown ``kind`` or ``part``, a figure format matplotlib cannot write,
            ``member`` missing for a batch or outside it, ``path`` and ``ax`` both
            given, an image of a single time, or a ``transform`` that does not return
            one row per time.
        TypeError
            A ``transform`` that is not callable, or a ``path`` that is not a file name.

        Examples
        --------
        >>> import numpy as np, expint
        >>> prob = expint.SemilinearProblem(expint.Diagonal(np.array([-1.0, -10.0])), lambda t, y: np.sin(y))
        >>> sol = expint.solve(prob, np.ones(2), (0, 3), scheme="etdrk4", n_steps=30, dense_output=True)
        >>> ax = sol.plot()  # or sol.plot("solution.png")
        >>> len(ax.get_lines())
        2
        """
        from ._solution_plot import plot_solution

        return plot_solution(self, path, member=member, kind=kind, part=part, transform=transform, ax=ax)
