"""Sharded, resumable runs on ``torch.distributed``: diffusion sampling and ensembles.

Every function works in one process and, unchanged, under ``torchrun --nproc_per_node K``
(gloo on CPUs, NCCL on GPUs): each rank takes every K-th unfinished shard, shards are
written atomically with the configuration hash, and a rerun skips finished work.  See
``docs/scale.md``.
"""

from .ensemble import STATISTICS, EnsembleFailed, ensemble_sharded
from .sampling import (
    ModelSpec,
    counter_normal,
    initial_noise,
    item_seed,
    resolve_model,
    sample_sharded,
    steps_for_nfe,
)
from .shards import MANIFEST, RunReport, ShardedRun, load_arrays, load_samples

__all__ = [
    "MANIFEST",
    "STATISTICS",
    "EnsembleFailed",
    "ModelSpec",
    "RunReport",
    "ShardedRun",
    "counter_normal",
    "ensemble_sharded",
    "initial_noise",
    "item_seed",
    "load_arrays",
    "load_samples",
    "resolve_model",
    "sample_sharded",
    "steps_for_nfe",
]
