"""The small networks behind the shipped models: an MLP with a sinusoidal time
embedding and residual blocks, in plain torch (no download, no extra dependency)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def time_features(t: Any, dim: int, scale: float) -> Any:
    r"""Sinusoidal embedding of ``t / scale`` with ``dim`` features:
    :math:`[\sin(ω_k s), \cos(ω_k s)]`, :math:`ω_k = 1000^{k/(d/2)}`."""
    import torch

    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=t.dtype, device=t.device) * (math.log(1000.0) / half))
    s = (t / scale)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(s), torch.cos(s)], dim=1)


def build_mlp(dim: int, width: int, blocks: int, t_dim: int) -> Any:
    """``torch.nn.Module`` mapping ``(x (B, dim), t features (B, t_dim))`` to ``(B, dim)``."""
    import torch
    from torch import nn

    class ResidualMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Linear(dim + t_dim, width)
            self.blocks = nn.ModuleList(
                nn.Sequential(nn.SiLU(), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
                for _ in range(blocks)
            )
            self.out = nn.Sequential(nn.SiLU(), nn.Linear(width, dim))

        def forward(self, x: Any, tf: Any) -> Any:
            h = self.inp(torch.cat([x, tf], dim=1))
            for block in self.blocks:
                h = h + block(h)
            return self.out(h)

    return ResidualMLP()


def state_to_arrays(module: Any) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in module.state_dict().items()}


def arrays_to_state(module: Any, arrays: dict[str, np.ndarray]) -> None:
    import torch

    module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()})
