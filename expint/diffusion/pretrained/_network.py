"""The small networks behind the shipped models: an MLP with a sinusoidal time
embedding and residual blocks, in plain torch (no download, no extra dependency)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def time_features(t: Any, dim: int, scale: float) -> Any:
    r"""Sinusoidal embedding of ``t / scale`` with ``dim`` features:
    $[\sin(ω_k s), \cos(ω_k s)]$, $ω_k = 1000^{k/(d/2)}$."""
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


def build_unet(channels: int, base: int, t_dim: int) -> Any:
    """A small U-Net for ``(B, channels, H, W)`` images with ``H, W`` divisible by 4.

    Two resolutions below the input (``base``, ``2·base``, ``2·base`` channels), one
    residual block per level on the way down and up, skip connections by concatenation,
    group normalisation, and the time features added to every block through a linear map.
    """
    import torch
    from torch import nn
    from torch.nn import functional as F

    def norm(c: int) -> Any:
        return nn.GroupNorm(min(8, c), c)

    class Block(nn.Module):
        def __init__(self, c_in: int, c_out: int) -> None:
            super().__init__()
            self.n1, self.c1 = norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
            self.t = nn.Linear(t_dim, c_out)
            self.n2, self.c2 = norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
            self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

        def forward(self, x: Any, tf: Any) -> Any:
            h = self.c1(F.silu(self.n1(x))) + self.t(tf)[:, :, None, None]
            return self.skip(x) + self.c2(F.silu(self.n2(h)))

    c1, c2 = base, 2 * base

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Conv2d(channels, c1, 3, padding=1)
            self.d1 = Block(c1, c1)
            self.down1 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
            self.d2 = Block(c2, c2)
            self.down2 = nn.Conv2d(c2, c2, 3, stride=2, padding=1)
            self.mid = Block(c2, c2)
            self.u2 = Block(2 * c2, c2)
            self.u1 = Block(c2 + c1, c1)
            self.out = nn.Sequential(norm(c1), nn.SiLU(), nn.Conv2d(c1, channels, 3, padding=1))

        def forward(self, x: Any, tf: Any) -> Any:
            h1 = self.d1(self.inp(x), tf)
            h2 = self.d2(self.down1(h1), tf)
            h = self.mid(self.down2(h2), tf)
            h = self.u2(torch.cat([F.interpolate(h, scale_factor=2.0, mode="nearest"), h2], 1), tf)
            h = self.u1(torch.cat([F.interpolate(h, scale_factor=2.0, mode="nearest"), h1], 1), tf)
            return self.out(h)

    return UNet()
