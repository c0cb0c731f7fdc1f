"""``expint sample``, ``expint fd`` and ``expint ensemble`` (registered by `expint.cli`).

Each runs in one process or under ``torchrun`` (the process group is created from
torchrun's environment and destroyed at the end).  Bad input is one line on stderr and
exit status 2.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from . import _dist


class UsageError(Exception):
    """Raised by a command for input it refuses; ``expint.cli`` prints it and exits 2."""


class RunFailed(Exception):
    """Raised by a command whose computation failed on valid input (an ensemble member
    that blew up); ``expint.cli`` prints it without a traceback and exits 1."""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _device(name: str | None) -> Any:
    """``cuda`` under torchrun means this rank's GPU (``LOCAL_RANK``)."""
    if name == "cuda" and "LOCAL_RANK" in os.environ:
        return f"cuda:{os.environ['LOCAL_RANK']}"
    return name


def _options(args: argparse.Namespace, *same: str, **renamed: str) -> dict[str, Any]:
    """Keyword arguments from parsed options: ``same`` keep their name, ``renamed`` maps
    keyword → option name."""
    return {key: getattr(args, key) for key in same} | {
        key: getattr(args, opt) for key, opt in renamed.items()
    }


def _in_group(device: str | None, body: Callable[[], int]) -> int:
    from .ensemble import EnsembleFailed

    created = _dist.init_from_env(device or "cpu")
    try:
        return body()
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        raise UsageError(str(exc)) from None
    except EnsembleFailed as exc:
        raise RunFailed(str(exc)) from None
    finally:
        _dist.finish(created)


def _sample(args: argparse.Namespace) -> int:
    import torch

    from .sampling import sample_sharded
    from .shards import load_samples

    device = _device(args.device)

    def body() -> int:
        report = sample_sharded(
            args.model,
            args.out,
            **_options(args, "n", "nfe", "method", "seed", batch_size="batch", grid_kind="grid"),
            device=device,
            dtype=getattr(torch, args.dtype),
            progress=not args.quiet,
        )
        if _dist.rank_world()[0] == 0:
            x = load_samples(args.out)
            print(
                f"{x.shape[0]} samples of shape {tuple(x.shape[1:])} in {args.out} "
                f"({report.skipped} shards reused, {report.n_shards - report.skipped} computed)"
            )
        return 0

    return _in_group(device, body)


def _fd(args: argparse.Namespace) -> int:
    from ..diffusion.fd import fd

    def body() -> int:
        value = fd(
            args.samples, args.ref, args.features, device=args.device or "cpu", save_stats=args.save_stats
        )
        print(f"{value:.6g}")
        return 0

    return _in_group(None, body)


def _ensemble(args: argparse.Namespace) -> int:
    from .ensemble import ensemble_sharded

    device = _device(args.device)

    def body() -> int:
        stats = tuple(s for s in args.stats.split(",") if s)
        report = ensemble_sharded(
            args.problem,
            args.out,
            **_options(args, "n", "perturb", "t_end", "scheme", "dt", "seed", batch_size="batch"),
            statistics=stats,
            device=device,
            progress=not args.quiet,
        )
        if _dist.rank_world()[0] == 0:
            print(
                f"{report.n_items} members in {args.out} ({report.skipped} shards reused); "
                f"statistics {', '.join(stats) or 'none'} in {args.out}/stats.npz"
            )
        return 0

    return _in_group(device, body)


def add_commands(sub: Any, writable: Callable[[str], Any], output_file: Callable[[str], Any]) -> None:
    """Register the three commands on the ``expint`` subparsers; ``writable`` checks (and
    creates) an output folder, ``output_file`` a file's folder, before any work."""
    from ..diffusion.methods import DEFAULT_METHOD
    from ..problems import ALIASES, PROBLEMS, canonical_name

    s = sub.add_parser("sample", help="draw samples from a diffusion model into resumable shards")
    s.add_argument(
        "--model",
        required=True,
        help="pkg.module:factory returning (model, schedule, prediction, "
        "sample_shape), or a shipped model name (digits_eps)",
    )
    s.add_argument("--n", type=_positive, required=True, help="number of samples")
    s.add_argument(
        "--batch", type=_positive, default=256, help="samples per shard and model batch (default 256)"
    )
    s.add_argument("--nfe", type=_positive, required=True, help="model evaluations per sample")
    s.add_argument("--method", default=DEFAULT_METHOD, help=f"sampling method (default {DEFAULT_METHOD})")
    s.add_argument("--grid", default="auto", help="grid kind (default: the schedule's), ending at sigma = 0")
    s.add_argument("--seed", type=int, default=0, help="sample i starts from noise seeded by (seed, i)")
    s.add_argument("--out", required=True, type=writable, help="output folder (rerun to resume)")
    s.add_argument(
        "--device", default="cpu", help="torch device; under torchrun 'cuda' means each rank's GPU"
    )
    s.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_sample)

    f = sub.add_parser("fd", help="Fréchet distance between two sample sets")
    f.add_argument("samples", help="run folder, .npy, .npz (mu/sigma statistics) or data:NAME")
    f.add_argument(
        "--ref", required=True, help="the other set: run folder, .npy, .npz statistics or data:NAME"
    )
    f.add_argument(
        "--features",
        default="pixels",
        help="pixels (default), inception (pytorch-fid, local weights) or pkg.module:function",
    )
    f.add_argument(
        "--save-stats", type=output_file, default=None, help="write the first set's mu/sigma to this .npz"
    )
    f.add_argument("--device", default=None, help="device for the feature network")
    f.set_defaults(func=_fd)

    e = sub.add_parser("ensemble", help="integrate perturbed copies of a built-in problem into shards")
    names = ", ".join([*PROBLEMS, *(f"{k} = {v}" for k, v in ALIASES.items())])
    e.add_argument("problem", type=canonical_name, choices=list(PROBLEMS), metavar="PROBLEM", help=names)
    e.add_argument("--n", type=_positive, required=True, help="number of members")
    e.add_argument("--perturb", type=float, required=True, help="std of the white-noise perturbation")
    e.add_argument("--t-end", type=float, default=None, help="final time (default: the problem's)")
    e.add_argument("--out", required=True, type=writable, help="output folder (rerun to resume)")
    e.add_argument("--batch", type=_positive, default=64, help="members per shard (default 64)")
    e.add_argument("--scheme", default="etdrk4", help="scheme (default etdrk4)")
    e.add_argument("--dt", type=float, default=None, help="step size (default: the problem's)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--stats", default="mean,std", help="statistics over members: mean,std,min,max")
    e.add_argument("--device", default=None, help="integrate torch tensors on this device (default numpy)")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=_ensemble)
