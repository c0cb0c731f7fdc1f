"""Argument checks shared by the public functions (clear errors, never ``assert``)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ._backend import all_finite, any_true, array_namespace


def check_order(k: Any, *, name: str = "k", maximum: int | None = None) -> int:
    """Validate a φ-function index: a non-negative Python or numpy integer."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative integer, got {k!r} ({type(k).__name__})")
    k = int(k)
    if k < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {k}")
    if maximum is not None and k > maximum:
        raise ValueError(f"{name} = {k} is larger than the supported maximum {maximum}")
    return k


def check_count(n: Any, *, name: str, minimum: int = 1) -> int:
    """Validate a count: a Python or numpy integer of at least ``minimum``."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {n!r} ({type(n).__name__})")
    if n < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {n}")
    return int(n)


def check_real(value: Any, *, name: str) -> float:
    """A Python or numpy real number (not a bool) as a float; a ``TypeError`` naming
    ``name`` otherwise.  Range checks are the caller's."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    return float(value)


def check_no_nan(x: Any, *, name: str) -> None:
    """Raise ``ValueError`` if ``x`` contains NaN."""
    if any_true(array_namespace(x).isnan(x)):
        raise ValueError(f"{name} contains NaN; φ-functions are undefined there")


def check_finite(x: Any, *, name: str) -> None:
    """Raise ``ValueError`` if ``x`` contains NaN or ±inf."""
    if not all_finite(x):
        raise ValueError(f"{name} must be finite (it contains NaN or inf)")


def check_square(a: Any, *, name: str = "A") -> int:
    """Return ``n`` for an array of shape ``(..., n, n)``; raise otherwise."""
    shape = tuple(a.shape)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"{name} must be a square matrix of shape (..., n, n), got shape {shape}")
    return shape[-1]


def check_integer(value: Any, *, name: str) -> int:
    """A Python or numpy integer (not a bool) as an ``int``: seeds, offsets, indices.
    Range checks are the caller's (`check_count` for counts)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    return int(value)


def check_device(device: Any, *, name: str = "device") -> Any:
    """``device`` as a ``torch.device`` that this machine can allocate on; a
    ``ValueError`` naming ``name`` otherwise.  Torch itself would answer a misspelt
    name with a ``RuntimeError`` listing every backend, and a missing GPU with an
    ``AssertionError``, only at the first tensor moved there."""
    import torch

    if isinstance(device, bool) or not isinstance(device, (str, int, torch.device)):
        raise TypeError(
            f"{name} must be a torch device or its name ('cpu', 'cuda', 'cuda:1'), got {device!r}"
        )
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(
            f"{name} {device!r} is not a torch device; use e.g. 'cpu', 'cuda' or 'cuda:1'"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name} {device!r}: no CUDA device is available on this machine")
    try:
        torch.empty(0, device=dev)
    except Exception as exc:  # a backend this build lacks, a GPU index past the last
        first = (str(exc).split(". ")[0] or type(exc).__name__)[:200]
        raise ValueError(f"{name} {device!r} cannot be used on this machine: {first}") from None
    return dev


def check_krylov_options(tol: Any, m: Any) -> None:
    """Krylov tolerance in (0, 1) and basis size (a positive integer or None), named
    ``tol`` and ``m`` as in `expint.phiv` and `expint.MatrixFree`."""
    if isinstance(tol, (bool, np.bool_)) or not (isinstance(tol, numbers.Real) and 0 < float(tol) < 1):
        raise ValueError(f"tol must be a number in (0, 1), got {tol!r}")
    bad_m = isinstance(m, (bool, np.bool_)) or not (isinstance(m, numbers.Integral) and int(m) >= 1)
    if m is not None and bad_m:
        raise ValueError(f"m must be a positive integer, got {m!r}")


def check_shape(shape: Any, *, name: str = "shape") -> tuple[int, ...]:
    """A sample shape: a tuple or list of positive integers (a bare integer ``n`` is
    ``(n,)``), as a tuple; a ``ValueError`` naming ``name`` otherwise."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, (bool, np.bool_)):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, (bool, np.bool_)) and int(s) >= 1 for s in shape
    ):
        raise ValueError(f"{name} must be a tuple of positive ints (one sample's shape), got {shape!r}")
    return tuple(int(s) for s in shape)
