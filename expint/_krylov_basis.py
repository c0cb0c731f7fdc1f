"""The Krylov basis of `expint.phiv`: building it, combining it, keeping its memory.

Orthogonalisation of each new product ``A v_j``: classical Gram–Schmidt in blocks,
twice, for Arnoldi (`_cgs2`); the three-term recurrence for a Hermitian or
skew-Hermitian ``A`` (`_lanczos_orthogonalise`, and `_lanczos_on_device` with the
recurrence's scalars kept on a torch device).  Rows of right-hand sides advance
together, each with its own projected matrix.  The basis lives in a block of memory
reused across calls (`_BasisMemory`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from ._backend import (
    array_namespace,
    as_like,
    device,
    is_complex,
    is_torch_array,
    to_like,
    to_numpy,
)


def _row_norms(x: Any) -> np.ndarray:
    """2-norms of the rows of ``x`` on the host (one transfer)."""
    if isinstance(x, np.ndarray):
        # the hot path: one BLAS dot per row (np.linalg.norm along an axis squares into
        # a temporary first, several times slower on long vectors, real or complex)
        flat = x.reshape(-1, x.shape[-1])
        with np.errstate(over="ignore"):
            squares = np.array([np.vdot(row, row).real for row in flat])
        norms = np.sqrt(squares)
        for i in np.flatnonzero(~np.isfinite(norms)):  # the squares overflowed: scale first
            top = np.max(np.abs(flat[i]))
            if np.isfinite(top):
                norms[i] = top * math.sqrt(np.vdot(flat[i] / top, flat[i] / top).real)
        return norms.reshape(x.shape[:-1])
    xp = array_namespace(x)
    if is_torch_array(x):  # one kernel instead of four (launches count on a GPU)
        import torch

        norms = np.asarray(to_numpy(torch.linalg.vector_norm(x, dim=-1)), dtype=float)
    else:
        norms = np.asarray(to_numpy(xp.sqrt(xp.sum(xp.abs(x) ** 2, axis=-1))), dtype=float)
    if not np.all(np.isfinite(norms)):  # squares past the range (rare: a second pass)
        top = xp.max(xp.abs(x), axis=-1, keepdims=True)
        safe = xp.where(top > 0, top, xp.ones_like(top))
        scaled = xp.sqrt(xp.sum(xp.abs(x / safe) ** 2, axis=-1)) * safe[..., 0]
        norms = np.asarray(to_numpy(scaled), dtype=float)
    return norms


def _combine(basis: Any, coeffs: np.ndarray, like: Any) -> Any:
    """Row ``b`` of the result is ``Σ_i coeffs[b, i] basis[b, i]``, in the dtype of
    ``like`` (``basis``: ``(B, K, N)``, ``coeffs``: ``(B, K)``)."""
    c = coeffs if is_complex(like) else np.real(coeffs)
    return (as_like(c[:, None, :], like) @ basis)[:, 0]


#: Spare blocks of memory for the Krylov basis of `_expv`, one per kind of host array
#: (``"numpy"``, ``"torch"`` on the CPU).  A basis of long vectors takes up to 32 MiB
#: (`_lanczos_limit`), which the C library maps afresh for every call and whose pages
#: then fault in again at every φ-product; torch's CPU allocator keeps no cache either
#: (on a GPU torch's caching allocator already reuses memory, so device tensors are
#: left to it).  With the reused first product: 1.1–1.5× on finite-difference
#: Gray–Scott 256² solves (`benchmarks/krylov_solve_overhead.py`).  A call takes its
#: kind's block and puts it back when done; a concurrent or re-entrant call (a matvec
#: that itself calls `phiv`) finds none and allocates its own.  `free_spare_basis` (and
#: `MatrixFree.clear_cache`) frees them.
_SPARE_BASIS: dict[str, list[Any]] = {"numpy": [], "torch": []}


def free_spare_basis() -> None:
    """Free the spare blocks `phiv` keeps for its Krylov basis (`_SPARE_BASIS`)."""
    for blocks in _SPARE_BASIS.values():
        blocks.clear()


class _BasisMemory:
    """Where one `_expv` call keeps its basis: for numpy arrays and CPU tensors in its
    kind's spare block (taken on first use, returned by `release`), for tensors on
    another device a fresh one."""

    def __init__(self) -> None:
        self._block: Any = None
        self._kind = ""

    def basis(self, shape: tuple[int, ...], like: Any) -> Any:
        if isinstance(like, np.ndarray):
            kind, nbytes = "numpy", math.prod(shape) * like.dtype.itemsize
        elif is_torch_array(like) and like.device.type == "cpu":
            kind, nbytes = "torch", math.prod(shape) * like.element_size()
        else:
            return array_namespace(like).empty(shape, dtype=like.dtype, device=device(like))
        try:
            block = _SPARE_BASIS[kind].pop()  # atomic: two threads never get the same block
        except IndexError:
            block = None
        if block is None or block.shape[0] < nbytes:
            if kind == "numpy":
                block = np.empty(nbytes, dtype=np.uint8)
            else:
                import torch

                block = torch.empty(nbytes, dtype=torch.uint8)
        self._block, self._kind = block, kind
        return block[:nbytes].view(like.dtype).reshape(shape)

    def release(self) -> None:
        if self._block is not None and not _SPARE_BASIS[self._kind]:
            _SPARE_BASIS[self._kind].append(self._block)
        self._block = None


_R = TypeVar("_R")


def _keeping_basis_memory(run: Callable[..., _R]) -> Callable[..., _R]:
    """``run`` (which takes a ``memory`` keyword) with a `_BasisMemory` of its own,
    released however the call ends."""

    @functools.wraps(run)
    def wrapped(*args: Any, **kwargs: Any) -> _R:
        memory = _BasisMemory()
        try:
            return run(*args, memory=memory, **kwargs)
        finally:
            memory.release()

    return wrapped


def _lanczos_orthogonalise(
    u: Any, basis: Any, h: np.ndarray, j: int, conj: Callable[[Any], Any], skew: bool = False
) -> Any:
    """``u = A v_j`` minus its components along ``v_j`` and ``v_{j−1}``, written into
    the basis slot ``j + 1`` (returned, a view) and filling column ``j`` of the
    (tridiagonal) ``h``; numpy rows (torch: `_lanczos_on_device`).  For Hermitian
    ``A``, ``h[j−1, j] = h[j, j−1]`` is known from the previous step (skew-Hermitian:
    ``−h[j, j−1]``), and ``α_j = v_j^H u`` is computed after that subtraction (the
    modified form, as in Paige's analysis).  In place in the slot: on long vectors the
    recurrence is memory-bound, and every temporary is another pass."""
    out = basis[:, j + 1]
    if j > 0:
        h[:, j - 1, j] = -h[:, j, j - 1] if skew else h[:, j, j - 1]
        out[...] = basis[:, j - 1]
        out *= _column(-h[:, j - 1, j].real, u)
        out += u
    else:
        out[...] = u
    if u.shape[0] == 1:
        alpha = (conj(basis[0, j]) @ out[0])[None]
    else:
        alpha = (conj(basis[:, j])[:, None, :] @ out[:, :, None])[:, 0, 0]
    out -= basis[:, j] * alpha[:, None]
    _store_diagonal(h, j, to_numpy(alpha), skew)
    return out


def _store_diagonal(h: np.ndarray, j: int, alpha: np.ndarray, skew: bool) -> None:
    """``h[j, j] = α_j`` as the structure has it: real for a Hermitian ``A``, imaginary
    for a skew-Hermitian one (zero for a real one), up to the rounding dropped here."""
    if not skew:
        h[:, j, j] = alpha.real
    elif np.iscomplexobj(h):
        h[:, j, j] = 1j * alpha.imag
    else:
        h[:, j, j] = 0.0


def _cgs2(u: Any, basis: Any, j: int, conj: Callable[[Any], Any]) -> tuple[Any, Any]:
    """``u`` orthogonalised against basis vectors ``0 … j`` by classical Gram–Schmidt in
    blocks, twice ("CGS2"): as orthogonal as modified Gram–Schmidt repeated (the error
    estimate needs orthogonality to rounding level), with all ``j + 1`` inner products
    of every row as one batched product instead of ``j + 1`` dot products.  Returns
    ``(u, c)``, ``c`` the ``(B, j + 1)`` coefficients of both passes summed (column
    ``j`` of the Hessenberg matrix), in ``u``'s library."""
    total = None
    for _ in range(2):
        # V^H u as conj(V^T conj(u)): conjugating the basis itself would copy all j + 1
        # long vectors on every pass (numpy has no conjugating matrix product)
        if u.shape[0] == 1:  # plain matrix–vector products: a third faster than batched
            c = conj(basis[0, : j + 1] @ conj(u[0]))[None]
            u = u - (c[0] @ basis[0, : j + 1])[None]
        else:
            c = conj(basis[:, : j + 1] @ conj(u)[:, :, None])[:, :, 0]
            u = u - (c[:, None, :] @ basis[:, : j + 1])[:, 0]
        total = c if total is None else total + c
    return u, total


def _column_and_norm_to_host(u: Any, coeffs: Any, h: np.ndarray, j: int) -> tuple[np.ndarray, Any]:
    """Torch Arnoldi: add the Gram–Schmidt coefficients to column ``j`` of ``h`` and
    return ``‖u‖`` on the host and on the device, both read back in one transfer (see
    `_lanczos_on_device`); the device norm is None where the host must rescale."""
    import torch

    norm = torch.linalg.vector_norm(u, dim=-1)
    host = to_numpy(torch.cat([coeffs, norm[:, None].to(coeffs.dtype)], dim=1))
    h[:, : j + 1, j] += host[:, : j + 1]
    hnext = np.asarray(host[:, j + 1].real, dtype=float)
    if not math.isfinite(float(hnext.sum())):
        return _row_norms(u), None
    return hnext, norm


def _lanczos_on_device(
    u: Any, basis: Any, h: np.ndarray, j: int, beta: Any, skew: bool = False
) -> tuple[Any, np.ndarray, Any]:
    """`_lanczos_orthogonalise` and the norm of the result for torch rows, with the
    recurrence's scalars kept on the tensors' device: ``beta`` is the previous
    ``h[j, j−1]`` there, and ``α_j`` and ``‖u‖`` come back to the host together, the
    iteration's one synchronising transfer (each host scalar sent to a GPU, or read
    from it, waits for the queued kernels).  Returns ``(slot, ‖u‖ on the host, ‖u‖ on
    the device)``; the last is None where the norm needs the host's rescaling (its
    squares overflowed) or is not finite."""
    import torch

    out = basis[:, j + 1]
    out.copy_(u)
    if j > 0:
        h[:, j - 1, j] = -h[:, j, j - 1] if skew else h[:, j, j - 1]
        # fused, no temporary row: out −= h[j−1, j] v_{j−1}
        out.addcmul_(basis[:, j - 1], beta[:, None], value=1 if skew else -1)
    # as matrix products (BLAS dot); torch.linalg.vecdot was 10× slower on CPU rows
    if out.shape[0] == 1:
        alpha = (basis[0, j].conj() @ out[0])[None]
    else:
        alpha = (basis[:, j].conj()[:, None, :] @ out[:, :, None])[:, 0, 0]
    out.addcmul_(basis[:, j], alpha[:, None], value=-1)
    norm = torch.linalg.vector_norm(out, dim=-1)
    both = to_numpy(torch.stack([alpha, norm.to(alpha.dtype)]))
    _store_diagonal(h, j, both[0], skew)
    hnext = np.asarray(both[1].real, dtype=float)
    if not math.isfinite(float(hnext.sum())):
        return out, _row_norms(out), None
    return out, hnext, norm


def _column(values: np.ndarray, like: Any) -> Any:
    """Host scale factors as a ``(B, 1)`` column in ``like``'s real precision."""
    if isinstance(like, np.ndarray):  # the hot path: no conversion needed
        return values[:, None]
    return to_like(values[:, None], like)
