"""Array-namespace layer over numpy and torch.

Every public function accepts numpy arrays, Python scalars or torch tensors and returns
the same kind of object with the input's dtype and device.  Internally the φ-functions
are evaluated in the double-precision counterpart of the input dtype (float32 ->
float64, complex64 -> complex128) on the input's device and cast back once, because
the accuracy targets (≤ 1e-14 relative) need double precision for the intermediate
steps even when the user works in single precision.
"""

from __future__ import annotations

import warnings
from typing import Any, TypeAlias

import numpy as np
from array_api_compat import array_namespace, device, is_torch_array

__all__ = [
    "Array",
    "all_finite",
    "any_true",
    "array_namespace",
    "as_array",
    "as_like",
    "cast",
    "concat",
    "device",
    "fft_module",
    "finfo_of",
    "from_host",
    "is_array",
    "is_complex",
    "is_inexact",
    "is_on_accelerator",
    "is_torch_array",
    "make_complex",
    "promote_types",
    "promote_working",
    "promoted_product",
    "records_gradients",
    "same_array_type",
    "sparse_is_hermitian",
    "sparse_kind",
    "sparse_like",
    "stack",
    "to_float_array",
    "to_like",
    "to_numpy",
    "to_torch_csr",
    "vdot",
    "vector_norm",
]


#: What expint's functions take and return: a ``numpy.ndarray`` or a ``torch.Tensor``
#: (any dtype or device the function accepts), or array-like input where documented.
#: An alias of ``Any`` so that either type checks; the name says what is meant.
Array: TypeAlias = Any


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
    if isinstance(mask, np.ndarray):
        return bool(mask.any())  # the method: half the cost of np.any's dispatch on small arrays
    return bool(np.any(mask))


def copy_array(x: Any) -> Any:
    """A new array (numpy) or tensor (torch) with ``x``'s values."""
    return x.clone() if is_torch_array(x) else x.copy()


def stack(arrays: list[Any], axis: int = 0) -> Any:
    """``np.stack`` / ``torch.stack`` by the type of the first array."""
    if axis == 0 and type(arrays[0]) is np.ndarray:
        # the same array as np.stack for equal shapes, in a quarter of the time on small
        # ones (hot loops stack a few states per step); unequal shapes still raise
        return np.array(arrays)
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


def is_array(x: Any) -> bool:
    """True for a numpy array or a torch tensor."""
    return isinstance(x, np.ndarray) or is_torch_array(x)


def is_inexact(x: Any) -> bool:
    """True for a floating-point or complex dtype."""
    return _dtype_kind(x) in "fc"


def all_finite(x: Any) -> bool:
    """``bool(isfinite(x).all())`` (one host synchronisation for a device tensor)."""
    if is_torch_array(x):
        return bool(x.isfinite().all())
    return bool(np.isfinite(x).all())


def cast(x: Any, dtype: Any) -> Any:
    """``x`` in ``dtype`` (a numpy dtype for arrays, a torch dtype for tensors)."""
    if is_torch_array(x):
        return x.to(dtype)
    return np.asarray(x, dtype=dtype)


def as_like(arr: Any, like: Any) -> Any:
    """Host array ``arr`` as the array type, dtype and device of ``like``."""
    return cast(from_host(np.asarray(arr), like), like.dtype)


def from_host(arr: np.ndarray, like: Any) -> Any:
    """Host array ``arr``, keeping its dtype, as ``like``'s array type on ``like``'s device."""
    if is_torch_array(like):
        import torch

        return torch.from_numpy(np.ascontiguousarray(arr)).to(like.device)
    return arr


def promote_types(arrays: list[Any]) -> Any:
    """The smallest dtype that holds every array's values."""
    if is_torch_array(arrays[0]):
        import torch

        dt = arrays[0].dtype
        for a in arrays[1:]:
            dt = torch.promote_types(dt, a.dtype)
        return dt
    return np.result_type(*arrays)


def vdot(a: Any, b: Any) -> complex:
    """Conjugated dot product of two vectors, as a host number."""
    if is_torch_array(a):
        import torch

        return complex(torch.vdot(a, b).item())
    return complex(np.vdot(a, b))


def vector_norm(a: Any) -> float:
    """2-norm of a vector, as a host number."""
    if is_torch_array(a):
        import torch

        return float(torch.linalg.vector_norm(a).item())
    return float(np.linalg.norm(a))


def to_like(arr: Any, like: Any) -> Any:
    """Coefficient array ``arr`` as the array type and on the device of ``like``: complex
    if ``arr`` is complex, else in ``like``'s real precision."""
    if is_torch_array(like):
        import torch

        base: Any = like.real.dtype if like.is_complex() else like.dtype
        cplx = torch.complex64 if base == torch.float32 else torch.complex128
        arr_complex = arr.is_complex() if is_torch_array(arr) else np.iscomplexobj(arr)
        target = cplx if arr_complex else base
        if not is_torch_array(arr):
            arr = torch.as_tensor(np.asarray(arr))
        return arr.to(device=like.device, dtype=target)
    a = arr if type(arr) is np.ndarray else to_numpy(arr)
    base = like.real.dtype if type(like) is np.ndarray else np.real(np.zeros(0, like.dtype)).dtype
    target = np.result_type(base, np.complex64) if np.iscomplexobj(a) else base
    return a.astype(target, copy=False)


def same_array_type(a: Any, b: Any) -> bool:
    """True when ``a`` and ``b`` are both numpy arrays or both torch tensors."""
    return is_array(a) and is_array(b) and is_torch_array(a) == is_torch_array(b)


def make_complex(re: Any, im: Any) -> Any:
    """``re + i·im`` without ``1j * inf`` turning the real part into NaN."""
    if is_torch_array(re):
        import torch

        return torch.complex(re, im)
    out = np.empty(np.shape(re), dtype=np.result_type(re.dtype, np.complex64))
    out.real, out.imag = re, im
    return out


def records_gradients(x: Any) -> bool:
    """True for a tensor that requires grad while autograd is recording."""
    if not (is_torch_array(x) and x.requires_grad):
        return False
    import torch

    return torch.is_grad_enabled()


def is_on_accelerator(x: Any) -> bool:
    """True for a tensor that lives off the host (reading its values synchronises)."""
    return is_torch_array(x) and x.device.type != "cpu"


def to_float_array(value: Any) -> Any:
    """A tensor unchanged; anything else as a numpy array, integers and booleans as
    float64 (an operator built from integer entries is meant to act on real states)."""
    if is_torch_array(value):
        return value
    arr = np.asarray(value)
    return arr.astype(np.float64) if arr.dtype.kind in "iub" else arr


def sparse_kind(a: Any) -> str | None:
    """``"scipy"`` for a ``scipy.sparse`` matrix or array, ``"torch"`` for a torch sparse
    tensor of any layout (COO, CSR, CSC, BSR, BSC), else None (scipy.sparse is imported
    only for objects from it)."""
    if type(a).__module__.startswith("scipy.sparse"):
        import scipy.sparse

        return "scipy" if scipy.sparse.issparse(a) else None
    if is_torch_array(a):
        import torch

        # ``is_sparse`` is True for COO only; CSR and the others differ in their layout
        return "torch" if a.layout != torch.strided else None
    return None


def sparse_is_hermitian(a: Any, *, skew: bool = False) -> bool:
    """Whether a scipy or torch sparse matrix equals its conjugate transpose exactly —
    or, with ``skew``, minus it (``A^H = −A``) — in O(nonzeros)."""
    if sparse_kind(a) == "scipy":
        c = a.tocsr()
        if c.has_canonical_format:
            # A's CSC arrays are A^T's CSR arrays, and the conversion (a stable counting
            # sort by column) keeps them canonical: equal arrays mean equal matrices,
            # without forming A − A^H or checking the transpose's format
            t = c.tocsc()
            if np.array_equal(c.indptr, t.indptr) and np.array_equal(c.indices, t.indices):
                # the same pattern: the entries decide, stored zeros and all
                data = t.data.conj() if np.iscomplexobj(t.data) else t.data
                return bool(np.array_equal(c.data, -data if skew else data))
        # (explicitly stored zeros off a symmetric pattern, duplicates or unsorted
        # indices need the full test)
        return (a != (-1 if skew else 1) * a.conj().T).nnz == 0
    b = a.to_sparse_coo().coalesce()  # compressed layouts compare in COO form
    bt = b.t().coalesce()
    values = bt.values().conj() if bt.is_complex() else bt.values()
    return bool(b.indices().equal(bt.indices()) and b.values().equal(-values if skew else values))


def csr_diagonal_positions(csr: Any) -> np.ndarray | None:
    """Where a square scipy CSR matrix stores its diagonal: ``p`` with
    ``csr.data[p[i]] = a_ii``, when the format is canonical (sorted, no duplicates)
    and every row stores its diagonal entry; else None.  O(nonzeros), in three
    vectorised passes."""
    n = csr.shape[0]
    if not csr.has_canonical_format or csr.nnz < n:
        return None
    rows = np.repeat(np.arange(n, dtype=csr.indices.dtype), np.diff(csr.indptr))
    positions = np.flatnonzero(csr.indices == rows)
    return positions if positions.size == n else None


def finfo_of(x: Any) -> Any:
    """``np.finfo`` or ``torch.finfo`` of ``x``'s dtype: its real precision (complex64
    gives float32's), with ``eps`` and the real ``dtype``."""
    if is_torch_array(x):
        import torch

        return torch.finfo(x.dtype)
    return np.finfo(x.dtype)


def to_torch_csr(a: Any) -> Any:
    """A torch sparse tensor of any layout as CSR (the fastest product, and cuSPARSE's
    format), without torch's "CSR support is in beta" warning: the choice is ours."""
    import torch

    if a.layout == torch.sparse_csr:
        return a
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support", category=UserWarning)
        return a.to_sparse_csr()


def sparse_like(a: Any, like: Any) -> Any:
    """Sparse matrix ``a`` in ``like``'s library, on its device and in its precision
    (complex entries stay complex): a scipy matrix becomes a torch CSR tensor, a torch
    sparse tensor a scipy CSR matrix.  Values are copied once; callers cache."""
    if is_torch_array(like):
        import torch

        if sparse_kind(a) == "torch":
            csr = to_torch_csr(a)
            crow, col, values = csr.crow_indices(), csr.col_indices(), csr.values()
        else:
            csr = a.tocsr()
            crow, col = torch.from_numpy(csr.indptr), torch.from_numpy(csr.indices)
            values = torch.from_numpy(csr.data)
        values = to_like(values, like)
        with warnings.catch_warnings():  # torch: "CSR support is in beta"
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support", category=UserWarning)
            return torch.sparse_csr_tensor(
                crow.to(like.device), col.to(like.device), values, size=tuple(a.shape), check_invariants=True
            )
    import scipy.sparse

    if sparse_kind(a) == "torch":
        coo = a.to_sparse_coo().coalesce().cpu()
        rows, cols = to_numpy(coo.indices())
        a = scipy.sparse.csr_matrix((to_numpy(coo.values()), (rows, cols)), shape=tuple(a.shape))
    return a.astype(to_like(np.zeros(0, a.dtype), like).dtype, copy=False)


def promoted_product(a: Any, b: Any) -> Any:
    """``a @ b`` for a sparse or dense matrix ``a`` and a dense 2-D ``b`` of the same
    library, both promoted to their common dtype where they differ: numpy promotes by
    itself, torch multiplies neither real by complex nor float32 by float64 (an
    `expint.Sparse` keeps a copy per precision, so only a raw tensor passed to `phiv`
    pays the cast)."""
    if is_torch_array(a) and a.dtype != b.dtype:
        import torch

        common = torch.promote_types(a.dtype, b.dtype)
        a, b = a.to(common), b.to(common)
    return a @ b


def fft_module(x: Any) -> Any:
    """``numpy.fft`` or ``torch.fft`` for ``x``: the libraries' own modules, not
    array-api-compat's wrappers, which add ~10 µs per call (a visible share of a
    spectral right-hand side of a few hundred modes)."""
    if is_torch_array(x):
        import torch

        return torch.fft
    return np.fft
