"""Small diffusion models that ship with expint (no download at run time).

``load(name)`` gives a `PretrainedModel`: the network as ``model(x, t)`` in the
convention of `expint.diffusion.sample` (``t`` in the schedule's time units),
its schedule, its prediction type and its sample shape.  The weights were trained by
``python -m expint.diffusion.pretrained.train NAME`` (seeded, a few CPU minutes) and
are stored next to this file as ``NAME.npz`` (float32).

=============== ======================= ============ ========== ===========
name            data                    schedule     prediction shape
=============== ======================= ============ ========== ===========
``digits_eps``  scikit-learn 8×8 digits DDPM linear  ``eps``    (1, 8, 8)
                (pixels scaled to        1000 steps
                [−1, 1])
``spiral_v``    2-D spiral: scikit-     cosine       ``v``      (2,)
                learn's swiss roll       (squaredcos
                (x, z), noise 0.3, / 7   cap v2), 1000
``digits16_unet`` the digits upsampled  DDPM linear  ``eps``    (1, 16, 16)
                (bilinear) to 16×16,    1000 steps
                a small U-Net (0.4 M
                parameters, trained on
                a GPU)
=============== ======================= ============ ========== ===========

>>> import torch
>>> from expint.diffusion import grid, pretrained, sample
>>> net = pretrained.load("digits_eps")
>>> x = sample(net.model, torch.randn(4, *net.shape), net.schedule, grid(net.schedule, 8, final_zero=True))
>>> tuple(x.shape)
(4, 1, 8, 8)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..schedules import DiscreteVP, Schedule
from ._network import arrays_to_state, build_mlp, build_unet, time_features

__all__ = ["SPECS", "PretrainedModel", "load", "names"]

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Spec:
    """How a shipped model is built, trained and used."""

    name: str
    dataset: str
    schedule: Callable[[], Schedule]
    prediction: str
    shape: tuple[int, ...]
    arch: str = "mlp"  # "mlp" (on flattened samples) or "unet" (on (C, H, W) images)
    width: int = 256  # MLP width, or the U-Net's channels at full resolution
    blocks: int = 3
    t_dim: int = 64
    t_scale: float = 1000.0  # time features see t / t_scale

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self.name]


def _linear_ddpm() -> DiscreteVP:
    return DiscreteVP.from_betas("linear", 1e-4, 0.02, 1000)


def _cosine() -> DiscreteVP:
    return DiscreteVP.from_betas("squaredcos_cap_v2", num_train_timesteps=1000)


_DESCRIPTIONS = {
    "digits_eps": "ε-prediction MLP on scikit-learn's 8×8 digits, 1000-step linear DDPM schedule",
    "spiral_v": "v-prediction MLP on a 2-D spiral (scikit-learn's swiss roll), 1000-step cosine schedule",
    "digits16_unet": "ε-prediction U-Net on the digits upsampled to 16×16, 1000-step linear DDPM schedule",
}
SPECS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        Spec("digits_eps", "digits", _linear_ddpm, "eps", (1, 8, 8)),
        Spec("spiral_v", "spiral", _cosine, "v", (2,)),
        Spec("digits16_unet", "digits16", _linear_ddpm, "eps", (1, 16, 16), arch="unet", width=32),
    )
}


def build_network(spec: Spec) -> Any:
    """The untrained ``torch.nn.Module`` of a spec: ``net(x, time features)``, where ``x``
    is ``(B, prod(shape))`` for an MLP and ``(B, *shape)`` for a U-Net."""
    if spec.arch == "unet":
        return build_unet(spec.shape[0], spec.width, spec.t_dim)
    return build_mlp(math.prod(spec.shape), spec.width, spec.blocks, spec.t_dim)


def names() -> list[str]:
    """Names of the shipped models."""
    return list(SPECS)


def load_data(dataset: str) -> np.ndarray:
    """Training data in model space, float64, one row per sample (needs scikit-learn)."""
    if dataset == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("the digits data comes with scikit-learn: pip install scikit-learn") from exc
        return load_digits().data.astype(np.float64) / 8.0 - 1.0
    if dataset == "spiral":
        try:
            from sklearn.datasets import make_swiss_roll
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("the spiral data comes from scikit-learn: pip install scikit-learn") from exc
        roll, _ = make_swiss_roll(n_samples=20_000, noise=0.3, random_state=0)
        return roll[:, [0, 2]] / 7.0  # the (x, z) spiral, about unit standard deviation
    if dataset == "digits16":
        from scipy.ndimage import zoom

        small = load_data("digits").reshape(-1, 8, 8)
        # order-1 (bilinear) zoom keeps the pixels inside [-1, 1]
        return np.stack([zoom(img, 2, order=1, mode="nearest") for img in small]).reshape(len(small), -1)
    raise ValueError(f"unknown dataset {dataset!r}")


class _Network:
    """``model(x, t)``: the MLP on flattened samples, without autograd, with a copy of
    the weights per device and dtype (made once)."""

    def __init__(self, spec: Spec, arrays: dict[str, np.ndarray]):
        self.spec = spec
        self.dim = math.prod(spec.shape)
        self._arrays = arrays
        self._copies: dict = {}

    def _module(self, like: Any) -> Any:
        key = (like.device, like.dtype)
        hit = self._copies.get(key)
        if hit is None:
            hit = build_network(self.spec)
            arrays_to_state(hit, self._arrays)
            hit = self._copies[key] = hit.to(device=like.device, dtype=like.dtype).eval()
        return hit

    def __call__(self, x: Any, t: Any) -> Any:
        import torch

        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch tensor, got {type(x).__name__}")
        if tuple(x.shape[1:]) != self.spec.shape:
            raise ValueError(
                f"x must have shape (batch, {', '.join(map(str, self.spec.shape))}), got {tuple(x.shape)}"
            )
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1).expand(x.shape[0])
        with torch.no_grad():
            net = self._module(x)
            flat = self.spec.arch == "mlp"
            inp = x.reshape(x.shape[0], self.dim) if flat else x
            out = net(inp, time_features(t, self.spec.t_dim, self.spec.t_scale))
        return out.reshape(x.shape)


@dataclass(frozen=True)
class PretrainedModel:
    """A shipped model: ``model(x, t)``, its schedule, prediction type and sample shape.

    ``as_tuple()`` gives ``(model, schedule, prediction, shape)``, the form factories
    for the command line return.
    """

    name: str
    model: Callable[[Any, Any], Any]
    schedule: Schedule
    prediction: str
    shape: tuple[int, ...]
    description: str
    checksum: float  # sum of the outputs on the probe input, recorded at training time

    def as_tuple(self) -> tuple[Callable[[Any, Any], Any], Schedule, str, tuple[int, ...]]:
        return self.model, self.schedule, self.prediction, self.shape

    def data(self) -> np.ndarray:
        """The training data in model space, shape ``(n, *shape)`` (needs scikit-learn)."""
        spec = SPECS[self.name]
        return load_data(spec.dataset).reshape(-1, *spec.shape)

    def __repr__(self) -> str:
        return (
            f"PretrainedModel({self.name!r}, schedule={self.schedule!r}, prediction={self.prediction!r}, "
            f"shape={self.shape})"
        )


def probe_input(spec: Spec) -> tuple[Any, Any]:
    """The fixed input whose output sum is stored as the checksum (float32)."""
    import torch

    g = torch.Generator().manual_seed(1234)
    x = torch.randn(16, *spec.shape, generator=g)
    t = torch.linspace(0.0, 999.0, 16)
    return x, t


def load(name: str) -> PretrainedModel:
    """Load a shipped model by name (see the module docstring)."""
    if not isinstance(name, str) or name not in SPECS:
        raise ValueError(f"unknown pretrained model {name!r}; valid: {', '.join(SPECS)}")
    spec = SPECS[name]
    path = _HERE / f"{name}.npz"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing; train it with: python -m expint.diffusion.pretrained.train {name}"
        )
    with np.load(path) as f:
        arrays = {k[2:]: f[k] for k in f.files if k.startswith("w:")}
        checksum = float(f["checksum"])
    return PretrainedModel(
        name, _Network(spec, arrays), spec.schedule(), spec.prediction, spec.shape, spec.description, checksum
    )
