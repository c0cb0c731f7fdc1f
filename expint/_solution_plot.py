"""`Solution.plot`: a first look at a solution — each component against time, or a
space–time image of a long state — without writing the matplotlib code."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ._backend import to_numpy

#: Above this many components ``kind="auto"`` draws an image instead of lines.
LINES_MAX = 10
#: Points per curve (lines) or rows (image) drawn from a dense output.
DENSE_POINTS = 400
_PARTS = ("auto", "real", "imag", "abs")
_KINDS = ("auto", "lines", "image")


def plot_solution(
    sol: Any,
    path: Any = None,
    *,
    member: Any = None,
    kind: str = "auto",
    part: str = "auto",
    transform: Any = None,
    ax: Any = None,
) -> Any:
    """See `expint.Solution.plot`."""
    from ._plotting import figure_path, pyplot, save

    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, _KINDS))}, got {kind!r}")
    if part not in _PARTS:
        raise ValueError(f"part must be one of {', '.join(map(repr, _PARTS))}, got {part!r}")
    if path is not None and ax is not None:
        raise ValueError("pass path (to write a file) or ax (to draw into your axes), not both")
    if transform is not None and not callable(transform):
        raise TypeError(f"transform must be a function of the states, got {type(transform).__name__}")
    target = figure_path(path) if path is not None else None
    t, y, label = _series(sol, member, transform)
    n = y.shape[-1]
    if kind == "auto":
        kind = "lines" if n <= LINES_MAX else "image"
    if np.iscomplexobj(y) and part == "auto":
        part = "abs"
    if part != "auto":
        y = np.real(y) if part == "real" else np.imag(y) if part == "imag" else np.abs(y)
    what = label if part in ("auto", "real") else f"{part}({label})"
    if kind == "image" and len(t) < 2:
        raise ValueError(
            "an image needs the state at two or more times; solve with t_eval=... or dense_output=True"
        )
    if ax is None:
        ax = pyplot().subplots(figsize=(7, 4.2))[1]
    events = [float(te) for times in (sol.t_events or []) for te in np.atleast_1d(times)]
    draw = _draw_lines if kind == "lines" else _draw_image
    draw(ax, t, y, what, signed=part != "abs", events=events)
    stopped = "" if sol.success else f" (stopped at t = {t[-1]:.6g})"
    where = "" if member is None else f", member {member}"
    ax.set_title(f"{sol.scheme}{where}{stopped}")
    if target is None:
        return ax
    return save(ax.figure, target)  # (a path comes without ax: the figure is this call's)


def _draw_lines(ax: Any, t: np.ndarray, y: np.ndarray, what: str, signed: bool, events: list) -> None:
    """One curve per component against ``t`` (markers only on a few saved points)."""
    from ._plotting import line_style

    n = y.shape[-1]
    for k in range(n):
        style = line_style(k)
        style["marker"] = None if len(t) > 50 else style.get("marker")
        ax.plot(t, y[:, k], label=f"{what}[{k}]" if n > 1 else what, **style)
    for te in events:
        ax.axvline(te, color="grey", ls=":", lw=1)
    ax.set_xlabel("t")
    ax.set_ylabel(what)
    if 1 < n <= LINES_MAX:
        ax.legend(fontsize="small")


def _draw_image(ax: Any, t: np.ndarray, y: np.ndarray, what: str, signed: bool, events: list) -> None:
    """The state over (component, ``t``): values of both signs on a diverging map centred
    on zero, anything else (a modulus) on a sequential one."""
    signed = signed and bool(np.any(y < 0)) and bool(np.any(y > 0))
    top = float(np.nanmax(np.abs(y))) if signed else 0.0
    limits = {"vmin": -top, "vmax": top} if 0 < top < np.inf else {}
    cmap = "RdBu_r" if signed else "viridis"
    mesh = ax.pcolormesh(np.arange(y.shape[-1]), t, y, shading="auto", cmap=cmap, **limits)
    ax.figure.colorbar(mesh, ax=ax, label=what)
    for te in events:
        ax.axhline(te, color="grey", ls=":", lw=1)
    ax.set_xlabel("component")
    ax.set_ylabel("t")


def _series(sol: Any, member: Any, transform: Any) -> tuple[np.ndarray, np.ndarray, str]:
    """Times, states ``(T, n)`` of the member asked for (through ``transform``), and the
    quantity's name: from the dense output where there is one (``DENSE_POINTS`` times
    over the span), else the saved states."""
    batch = tuple(sol.y.shape[1:-1])
    index = _member_index(member, batch)
    if sol.sol is not None:
        t0, t1 = sol.sol.t_span
        t = np.linspace(t0, t1, DENSE_POINTS) if t1 != t0 else np.array([t0])
        y = to_numpy(_detached(sol.sol(t)))
    else:
        t, y = np.asarray(sol.t, dtype=float), to_numpy(_detached(sol.y))
    for i in index:  # one batch axis at a time, after the time axis
        y = y[:, i]
    if transform is None:
        return t, y.reshape(len(t), -1), "y"
    out = np.asarray(to_numpy(_detached(transform(y))))
    if out.ndim < 1 or out.shape[0] != len(t) or out.size == 0:
        raise ValueError(
            f"transform(y) must return one row per time: got shape {out.shape} for states of shape "
            f"{y.shape} (times first)"
        )
    return t, out.reshape(len(t), -1), f"{getattr(transform, '__name__', 'transform')}(y)"


def _detached(y: Any) -> Any:
    return y.detach() if hasattr(y, "detach") else y


def _member_index(member: Any, batch: tuple[int, ...]) -> tuple[int, ...]:
    """``member`` as an index into the batch axes, checked."""
    if not batch:
        if member is not None:
            raise ValueError("member picks one state of a batch, but this solution holds one state")
        return ()
    if member is None:
        raise ValueError(
            f"the solution holds a batch of shape {batch}; pass member=i (an index into it, "
            f"e.g. member=0{', ' + repr((0,) * len(batch)) if len(batch) > 1 else ''})"
        )
    index = (member,) if isinstance(member, numbers.Integral) else member
    ok = isinstance(index, tuple) and all(
        isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in index
    )
    if not ok or isinstance(member, bool) or len(index) != len(batch):
        raise ValueError(f"member must be {len(batch)} integer index(es) into the batch of shape {batch}")
    for i, size in zip(index, batch, strict=True):
        if not -size <= i < size:
            raise ValueError(f"member {member} is outside the batch of shape {batch}")
    return tuple(int(i) for i in index)
