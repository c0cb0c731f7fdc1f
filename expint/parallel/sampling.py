"""Sharded diffusion sampling whose result does not depend on how it was split.

Sample ``i`` starts from noise drawn by a counter-based generator keyed by ``(seed, i)``
(`counter_normal`), on the CPU in float32, so the set of samples is the same
for any world size and batch size.  The sampler's arithmetic is per sample; a network
whose kernels change with the batch size (e.g. some GEMM blockings) can still change
the last bits — compare with `expint.diffusion.metrics.rmse`, not bit for bit,
when batch sizes differ on such a network.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_count, check_device, check_integer, check_real, check_shape
from ..diffusion.grids import grid
from ..diffusion.methods import DEFAULT_METHOD, RhoRK, get_method
from ..diffusion.models import check_prediction
from ..diffusion.sampler import Sampler, check_output
from ..diffusion.schedules import Schedule
from .shards import RunReport, ShardedRun, _positive_int

__all__ = [
    "ModelSpec",
    "counter_normal",
    "initial_noise",
    "item_seed",
    "resolve_model",
    "sample_sharded",
    "steps_for_nfe",
]


@dataclass(frozen=True)
class ModelSpec:
    """A model as the sharded sampler needs it."""

    model: Callable[[Any, Any], Any]
    schedule: Schedule
    prediction: str
    shape: tuple[int, ...]
    name: str = "model"


def _check_spec(value: Any, where: str) -> ModelSpec:
    if hasattr(value, "as_tuple"):
        name = getattr(value, "name", where)
        value = value.as_tuple()
    else:
        name = where
    if not isinstance(value, (tuple, list)) or len(value) != 4:
        raise TypeError(
            f"{where} must return (model, schedule, prediction, sample_shape), got {type(value).__name__}"
            + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else "")
        )
    model, schedule, prediction, shape = value
    if not callable(model):
        raise TypeError(
            f"{where}: the model (item 0) must be callable as model(x, t), got {type(model).__name__}"
        )
    if not isinstance(schedule, Schedule):
        raise TypeError(
            f"{where}: the schedule (item 1) must be an expint.diffusion schedule, "
            f"got {type(schedule).__name__}"
        )
    try:
        prediction = check_prediction(prediction)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: the prediction type (item 2): {exc}") from None
    try:
        shape = check_shape(shape)
    except ValueError:
        raise ValueError(
            f"{where}: the sample shape (item 3) must be a tuple of positive ints, got {value[3]!r}"
        ) from None
    return ModelSpec(model, schedule, prediction, shape, str(name))


def resolve_model(spec: Any) -> ModelSpec:
    """A `ModelSpec` from ``"pkg.module:factory"`` (the factory is called with no
    arguments and returns ``(model, schedule, prediction, sample_shape)`` or an object
    with ``as_tuple()``), from the name of a shipped model (``"digits_eps"``), or from
    such a tuple directly."""
    if not isinstance(spec, str):
        if not (hasattr(spec, "as_tuple") or isinstance(spec, (tuple, list))):
            raise TypeError(
                "model must be 'pkg.module:factory', a shipped model's name, a "
                f"(model, schedule, prediction, sample_shape) tuple or an object with as_tuple(), "
                f"got {type(spec).__name__}"
            )
        return _check_spec(spec, "the model")
    from ..diffusion import pretrained

    if ":" not in spec:
        if spec in pretrained.names():
            return _check_spec(pretrained.load(spec), spec)
        raise ValueError(
            f"model {spec!r} must be 'pkg.module:factory' or a shipped model "
            f"({', '.join(pretrained.names())})"
        )
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ValueError(f"cannot import {module_name!r} for model {spec!r}: {exc}") from None
    factory: Any = module
    for part in attr.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise ValueError(f"module {module_name!r} has no attribute {attr!r} (model {spec!r})")
    if not callable(factory):
        raise TypeError(
            f"{spec} is not callable; it must be a factory returning (model, schedule, prediction, shape)"
        )
    return _check_spec(factory(), spec)


_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # splitmix64's increment (odd, 2^64 / golden ratio)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's output function: a bijective avalanche of 64-bit words (products
    wrap modulo 2⁶⁴, which is the point: numpy's overflow warning is silenced)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def item_seed(seed: int, index: Any) -> np.ndarray:
    """The 64-bit keys (``uint64``, shaped like ``index``) of item(s) ``index``
    (non-negative integers) under run seed ``seed`` (any integer; taken modulo 2⁶⁴)."""
    seed = check_integer(seed, name="seed")
    base = _mix(np.array(seed % 2**64, dtype=np.uint64))
    raw = np.asarray(index)
    if raw.size and not np.issubdtype(raw.dtype, np.integer):
        raise TypeError(f"index must be a non-negative integer or an array of them, got dtype {raw.dtype}")
    if raw.size and np.issubdtype(raw.dtype, np.signedinteger) and raw.min() < 0:
        raise ValueError(f"index must be non-negative, got {raw.min()}")
    idx = raw.astype(np.uint64) + np.uint64(1)
    with np.errstate(over="ignore"):  # arithmetic modulo 2⁶⁴ is the point
        return _mix(base + idx * _GAMMA)


def counter_normal(keys: np.ndarray, size: int) -> np.ndarray:
    r"""Standard normal numbers, ``size`` per key, from a counter-based generator.

    Row ``r`` is a function of ``keys[r]`` alone: uniforms
    $u_j = (\mathrm{mix}(k + (j+1)γ) \gg 11 + 1)\,2^{-53} \in (0, 1]$ (the
    splitmix64 sequence started at the key), paired by Box–Muller.  Every row is made
    at once with array arithmetic, so drawing a shard's noise costs a few vector
    operations rather than a generator per sample, and the numbers do not depend on
    which rows are drawn together.
    """
    size = check_count(size, name="size", minimum=0)
    keys = np.asarray(keys)
    if keys.ndim != 1 or (keys.size and not np.issubdtype(keys.dtype, np.integer)):
        raise TypeError(
            f"keys must be a 1-D array of integer keys (item_seed's), got {keys.dtype} of shape {keys.shape}"
        )
    pairs = (size + 1) // 2
    j = np.arange(1, 2 * pairs + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = _mix(keys.astype(np.uint64)[:, None] + j[None, :] * _GAMMA)
    u = ((z >> np.uint64(11)).astype(np.float64) + 1.0) * 2.0**-53
    r = np.sqrt(-2.0 * np.log(u[:, :pairs]))
    theta = 2.0 * np.pi * u[:, pairs:]
    return np.concatenate([r * np.cos(theta), r * np.sin(theta)], axis=1)[:, :size]


def initial_noise(
    schedule: Schedule, t_start: float, shape: tuple[int, ...], seed: int, start: int, stop: int
) -> Any:
    r"""Noise for items ``start … stop−1``, float32 on the CPU, scaled to the marginal
    standard deviation $\sqrt{α(t)^2 + σ(t)^2}$ of unit-variance data at
    ``t_start`` (1 for VP and flow schedules, ≈ σ_max for VE/EDM).  Item ``i``'s noise
    depends on ``(seed, i)`` only (`counter_normal`)."""
    import torch

    t_start = check_real(t_start, name="t_start")
    schedule.check_times(np.array([t_start]), "t_start")
    start = check_count(start, name="start", minimum=0)
    stop = check_count(stop, name="stop", minimum=start)
    shape = check_shape(shape)
    scale = math.hypot(float(schedule.alpha(np.float64(t_start))), float(schedule.sigma(np.float64(t_start))))
    noise = counter_normal(item_seed(seed, np.arange(start, stop)), math.prod(shape)) * scale
    return torch.from_numpy(noise.astype(np.float32)).reshape(stop - start, *shape)


def steps_for_nfe(method: Any, nfe: int) -> int:
    """Grid steps (ending at σ = 0) that cost ``nfe`` model calls (fewer for a Runge–Kutta
    method whose stiff steps fall back to one Euler call)."""
    nfe = _positive_int(nfe, "nfe")
    m = get_method(method)
    if not isinstance(m, RhoRK):
        return nfe
    s = m.stages  # the last step, to σ = 0, is one call
    if (nfe - 1) % s:
        lo = (nfe - 1) // s * s + 1
        raise ValueError(
            f"{m.name} uses {s}(n−1) + 1 model calls for n steps; nfe {nfe} is not one (try {lo} or {lo + s})"
        )
    return (nfe - 1) // s + 1


def _fingerprint(spec: ModelSpec, t: float, device: Any, dtype: Any) -> float:
    """The model's output sum on fixed noise at time ``t``, 6 significant digits: a
    changed network changes the configuration hash."""
    import torch

    x = initial_noise(spec.schedule, t, spec.shape, 0, 0, 2).to(device=device, dtype=dtype)
    t_batch = torch.full((2,), t, dtype=dtype, device=device)
    with torch.no_grad():
        out = spec.model(x, t_batch)
    check_output(out, x, 0)
    return float(f"{float(out.double().sum()):.6g}")


def _float_dtype(dtype: Any) -> Any:
    """``None`` (float32), a floating torch dtype, or its name (``"float64"``)."""
    import torch

    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype.removeprefix("torch."), dtype)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(
            f"dtype must be a floating-point torch dtype (torch.float32, 'float64'), got {dtype!r}"
        )
    return dtype


def sample_sharded(
    model: Any,
    out: str | Path,
    *,
    n: int,
    batch_size: int,
    nfe: int,
    method: Any = DEFAULT_METHOD,
    grid_kind: str = "auto",
    seed: int = 0,
    device: Any = "cpu",
    dtype: Any = None,
    progress: bool = True,
) -> RunReport:
    """Draw ``n`` samples into shards under ``out``; resumable, any world size.

    Parameters
    ----------
    model : str, tuple or object with ``as_tuple()``
        What `resolve_model` accepts: ``"pkg.module:factory"``, a shipped model's
        name, or ``(model, schedule, prediction, sample_shape)``.
    out : str or Path
        Output folder (shared by all ranks).  Rerunning skips finished shards.
    n, batch_size : int
        Number of samples and samples per shard (one model batch).
    nfe : int
        Model calls per sample; the grid of ``grid_kind`` ends at σ = 0.
    method : str or Method
        Sampling method (default ``DEFAULT_METHOD``).
    seed : int
        Sample ``i`` starts from noise seeded by ``(seed, i)``.
    device, dtype :
        Where and in what precision to sample (a torch device or its name; a floating
        torch dtype or its name, default float32); the noise is drawn on the CPU in
        float32 and moved.

    Returns
    -------
    RunReport
        Read the samples with `expint.parallel.load_samples`.
    """
    n = _positive_int(n, "n")
    nfe = _positive_int(nfe, "nfe")
    seed = check_integer(seed, name="seed")
    device = check_device(device)
    dtype = _float_dtype(dtype)
    spec = resolve_model(model)
    sched = spec.schedule
    meth = get_method(method)
    ts = grid(sched, steps_for_nfe(meth, nfe), kind=grid_kind, final_zero=True)
    sampler = Sampler(sched, ts, meth, spec.prediction)
    config = {
        "model": model if isinstance(model, str) else spec.name,
        "fingerprint": _fingerprint(spec, float(ts[0]), device, dtype),
        "schedule": repr(sched),
        "prediction": spec.prediction,
        "shape": list(spec.shape),
        "method": meth.name,
        "grid": grid_kind,
        "nfe": nfe,
        "seed": seed,
        "dtype": str(dtype).replace("torch.", ""),
    }
    run = ShardedRun(out, n, batch_size, config, kind="samples")

    def compute(start: int, stop: int) -> dict[str, Any]:
        x_T = initial_noise(sched, float(ts[0]), spec.shape, seed, start, stop).to(device=device, dtype=dtype)
        return {"samples": sampler(spec.model, x_T)}

    return run.run(compute, progress=progress)
