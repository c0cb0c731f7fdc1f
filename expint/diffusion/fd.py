"""Fréchet distance between sample sets on disk, with pluggable features.

A *source* is a run folder written by `expint.parallel.sample_sharded`, a
``.npy`` array, a ``.npz`` file (saved statistics ``mu``/``sigma`` as pytorch-fid
writes them, or else its largest float array), or ``data:NAME`` for the training data
of a shipped dataset (``data:digits``).  Features are raw pixels by default, Inception
pool features through pytorch-fid when its weights are on disk (nothing is downloaded),
or any ``pkg.module:function`` mapping a float tensor batch to ``(batch, d)`` features.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_count, check_device
from .metrics import frechet_distance, gaussian_stats

__all__ = ["FID_WEIGHTS", "fd", "feature_extractor", "load_source", "source_stats"]

FID_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"  # the file pytorch-fid loads from torch's hub cache


def load_source(source: str | Path) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Samples ``(n, ...)`` from a source, or ``(mu, sigma)`` for saved statistics."""
    text = str(source)
    if text.startswith("data:"):
        from .pretrained import load_data

        return load_data(text[5:])
    path = Path(source)
    if path.is_dir():
        from ..parallel.shards import load_samples

        return load_samples(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist (expected a run folder, .npy, .npz or data:NAME)")
    if path.suffix == ".npy":
        return np.load(path)
    if path.suffix == ".npz":
        with np.load(path) as f:
            if {"mu", "sigma"} <= set(f.files):
                return np.asarray(f["mu"], np.float64), np.asarray(f["sigma"], np.float64)
            floats = [f[k] for k in f.files if np.issubdtype(f[k].dtype, np.floating)]
        if not floats:
            raise ValueError(f"{path} holds no floating-point array")
        return max(floats, key=lambda a: a.size)
    raise ValueError(f"{path}: expected a run folder, a .npy or .npz file, or data:NAME")


def _pixels(x: Any) -> Any:
    return x.reshape(x.shape[0], -1)


def _inception(device: Any) -> Callable[[Any], Any]:
    import torch

    try:
        from pytorch_fid.inception import InceptionV3
    except ImportError:
        raise ImportError("Inception features need pytorch-fid: pip install pytorch-fid") from None
    weights = Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS
    if not weights.exists():
        raise FileNotFoundError(
            f"Inception weights not found at {weights}; expint downloads nothing at run time: "
            f"copy {FID_WEIGHTS} there (pytorch-fid's release file), or set TORCH_HOME"
        )
    net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True, normalize_input=True)
    net = net.to(device).eval()

    def features(x: Any) -> Any:
        x = x.to(device=device, dtype=torch.float32)
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"Inception features need images (batch, 1 or 3, H, W), got {tuple(x.shape)}")
        x = ((x + 1) / 2).clamp(0, 1).expand(-1, 3, -1, -1)  # samples live in [-1, 1]
        with torch.no_grad():
            return net(x)[0].flatten(1)

    return features


def feature_extractor(
    features: str | Callable[[Any], Any] = "pixels", device: Any = "cpu"
) -> Callable[[Any], Any]:
    """``"pixels"``, ``"inception"`` or ``"pkg.module:function"`` (or a callable)."""
    if callable(features):
        return features
    if features == "pixels":
        return _pixels
    if features == "inception":
        return _inception(device)
    if isinstance(features, str) and ":" in features:
        module_name, _, attr = features.partition(":")
        try:
            fn = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot load feature extractor {features!r}: {exc}") from None
        if not callable(fn):
            raise TypeError(f"feature extractor {features!r} is not callable")
        return fn
    raise ValueError(f"features must be 'pixels', 'inception' or 'pkg.module:function', got {features!r}")


def source_stats(
    source: Any, features: Any = "pixels", *, batch_size: int = 256, device: Any = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the features of a source (or its saved statistics)."""
    import torch

    batch_size = check_count(batch_size, name="batch_size")
    device = check_device(device)
    data = load_source(source) if isinstance(source, (str, Path)) else source
    if isinstance(data, tuple):
        return data
    extract = feature_extractor(features, device)
    rows = [
        np.asarray(
            torch.as_tensor(extract(torch.as_tensor(data[i : i + batch_size]))).detach().cpu(), np.float64
        )
        for i in range(0, len(data), batch_size)
    ]
    feats = np.concatenate(rows)
    if feats.ndim != 2:
        raise ValueError(f"features must have shape (batch, d), got {feats.shape[1:]} per batch")
    return gaussian_stats(feats)


def fd(
    a: Any,
    b: Any,
    features: Any = "pixels",
    *,
    batch_size: int = 256,
    device: Any = "cpu",
    save_stats: str | Path | None = None,
) -> float:
    """Fréchet distance (squared) between the features of two sources.

    ``save_stats`` writes ``a``'s ``mu``/``sigma`` (pytorch-fid's ``.npz`` layout), so
    a later call can use that file as a source.
    """
    sa = source_stats(a, features, batch_size=batch_size, device=device)
    sb = source_stats(b, features, batch_size=batch_size, device=device)
    if save_stats is not None:
        np.savez(save_stats, mu=sa[0], sigma=sa[1])
    return frechet_distance(sa, sb)
