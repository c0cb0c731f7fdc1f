"""Array-namespace layer over numpy and torch.

Every public function accepts numpy arrays, Python scalars or torch tensors and returns
the same kind of object with the input's dtype and device.  Internally the φ-functions
are evaluated in the double-precision counterpart of the input dtype (float32 ->
float64, complex64 -> complex128) on the input's device and cast back once, because
the accuracy targets (≤ 1e-14 relative) need double precision for the intermediate
steps even when the user works in single precision.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_torch_array

__all__ = [
    "array_namespace",
    "as_array",
    "is_complex",
    "is_torch_array",
    "promote_working",
    "to_numpy",
]


def as_array(x: Any, *, name: str = "z") -> Any:
    """Return ``x`` as an array (numpy for Python scalars and sequences)."""
    if is_torch_array(x) or isinstance(x, np.ndarray):
        return x
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real or complex number or array, not bool")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - numpy's own message is clear enough
        raise TypeError(f"{name} must be array-like, got {type(x).__name__}") from exc
    if arr.dtype == object:
        raise TypeError(f"{name} must be numeric array-like, got objects of {type(x).__name__}")
    return arr


def is_complex(x: Any) -> bool:
    """True when ``x`` has a complex dtype."""
    if is_torch_array(x):
        return x.is_complex()
    return np.iscomplexobj(x)


def _dtype_kind(x: Any) -> str:
    if is_torch_array(x):
        if x.is_complex():
            return "c"
        if x.is_floating_point():
            return "f"
        import torch

        return "b" if x.dtype == torch.bool else "i"
    return np.asarray(x).dtype.kind


def promote_working(x: Any, *, name: str = "z") -> tuple[Any, Any]:
    """Cast ``x`` to its double-precision working dtype.

    Returns ``(x_work, original_dtype)``.  Integer and boolean input is rejected with a
    ``TypeError`` naming ``name`` (the result dtype would be a guess).
    """
    kind = _dtype_kind(x)
    if kind == "b":
        raise TypeError(f"{name} has a boolean dtype; pass a floating or complex array")
    if kind in "iu":
        raise TypeError(
            f"{name} has an integer dtype; pass a floating-point array "
            f"(e.g. {name}.astype(float) or {name}.double())"
        )
    if is_torch_array(x):
        import torch

        orig: Any = x.dtype
        return x.to(torch.complex128 if x.is_complex() else torch.float64), orig
    arr = np.asarray(x)
    orig = arr.dtype
    if kind == "c":
        return arr.astype(np.complex128), orig
    if kind != "f":
        raise TypeError(f"{name} must have a floating or complex dtype, got {orig}")
    return arr.astype(np.float64), orig


def cast_back(x: Any, dtype: Any) -> Any:
    """Cast a working-precision result back to the caller's dtype."""
    if is_torch_array(x):
        return x.to(dtype)
    return np.asarray(x).astype(dtype, copy=False)


def to_numpy(x: Any) -> np.ndarray:
    """Host numpy copy of an array or tensor (detached)."""
    if is_torch_array(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def any_true(mask: Any) -> bool:
    """``bool(mask.any())`` for numpy arrays and torch tensors."""
    if is_torch_array(mask):
        return bool(mask.any().item())
    return bool(np.any(mask))


def stack(arrays: list[Any], axis: int = 0) -> Any:
    """``np.stack`` / ``torch.stack`` by the type of the first array."""
    if is_torch_array(arrays[0]):
        import torch

        return torch.stack(arrays, dim=axis)
    return np.stack(arrays, axis=axis)


def concat(arrays: list[Any], axis: int = 0) -> Any:
    """``np.concatenate`` / ``torch.cat`` by the type of the first array."""
    if is_torch_array(arrays[0]):
        import torch

        return torch.cat(arrays, dim=axis)
    return np.concatenate(arrays, axis=axis)
