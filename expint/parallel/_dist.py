"""The few torch.distributed calls the sharded runner needs, with a one-process
fallback when no process group is initialised (or torch is absent)."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["barrier", "broadcast", "init_from_env", "rank_world"]


def _dist() -> Any:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is optional for the runner
        return None
    return dist if dist.is_available() and dist.is_initialized() else None


def rank_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group, ``(0, 1)`` without one."""
    dist = _dist()
    return (dist.get_rank(), dist.get_world_size()) if dist else (0, 1)


def barrier() -> None:
    dist = _dist()
    if dist:
        dist.barrier()


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (pickled; small objects only)."""
    dist = _dist()
    if not dist:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def init_from_env(device: str = "cpu") -> bool:
    """Join the process group described by torchrun's environment variables
    (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``), with NCCL for CUDA
    devices and gloo otherwise.  Returns whether a group was created here (the caller
    then destroys it); nothing happens without those variables or when a group exists.
    """
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return False
    import torch.distributed as dist

    if dist.is_initialized():
        return False
    dist.init_process_group(backend="nccl" if str(device).startswith("cuda") else "gloo")
    return True


def finish(created: bool) -> None:
    """Destroy the group if `init_from_env` created it."""
    if created:
        import torch.distributed as dist

        dist.destroy_process_group()
