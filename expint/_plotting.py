"""Shared matplotlib plumbing for the studies, problems and benchmarks (lazy import)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_path(path: Any, name: str = "path") -> Path:
    """``path`` as a `Path` whose suffix matplotlib can write (``.png``, ``.pdf``,
    ``.svg``, …): checked before a figure is drawn, and by the command line before the
    study it plots is run."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file name such as 'plot.png', got {type(path).__name__}")
    path = Path(path)
    pyplot()
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = path.suffix.lstrip(".").lower()
    if suffix not in formats:
        raise ValueError(
            f"{name} {str(path)!r} needs a figure format as its suffix, one of "
            f"{', '.join('.' + f for f in sorted(formats))}; e.g. {path.stem or 'plot'}.png"
        )
    return path


def save(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Lay out, write (creating the folder) and close a figure; return its path."""
    try:
        path = figure_path(path)
    except (TypeError, ValueError):
        pyplot().close(fig)
        raise
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path


_COLOURS = 10  # matplotlib's default cycle ("tab10")
_DASHES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">", "*")
# above this many lines the legend goes beside the axes instead of over the curves
_LEGEND_INSIDE_MAX = 8


def line_style(i: int) -> dict[str, Any]:
    """Keyword arguments that tell line ``i`` apart from lines ``0 … i − 1``: the ten
    default colours, then the same colours dashed, dotted, …, each with its own
    marker (a work–precision figure has 15 configurations; colours alone repeat)."""
    return {
        "color": f"C{i % _COLOURS}",
        "ls": _DASHES[(i // _COLOURS) % len(_DASHES)],
        "marker": _MARKERS[(i + i // _COLOURS) % len(_MARKERS)],
    }


def finish(fig: Any, ax: Any, path: str | Path, *, xlabel: str, ylabel: str, title: str) -> Path:
    """Label a single-axes figure, add a light grid and a small legend (beside the axes
    when there are many lines), and `save` it."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    if len(ax.get_lines()) > _LEGEND_INSIDE_MAX:
        width, height = fig.get_size_inches()
        fig.set_size_inches(width + 2.0, height)  # room for the legend, same axes
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    else:
        ax.legend(fontsize=8)
    return save(fig, path)
