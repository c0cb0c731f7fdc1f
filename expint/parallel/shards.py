"""Sharded, resumable runs: items ``0 … n−1`` in batches, one ``.npz`` shard per batch.

A run writes ``manifest.json`` (the configuration, its hash, the batch size) and one
``shard-NNNNNN.npz`` per finished batch.  Every file is written to a temporary name
and renamed, so a shard either exists whole or not at all; each shard also records the
configuration hash and its item range.  Rerunning the same configuration skips the
shards that read back whole with the right hash and range, and recomputes the missing,
truncated or foreign ones; a different configuration in the same folder is refused,
naming the keys that differ.

Under ``torch.distributed`` (``torchrun``) rank 0 checks the folder and hands every
rank the same list of shards to do; rank ``r`` of ``W`` takes every ``W``-th of them.
The folder must be visible to every rank (one machine, or a shared file system).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from . import _dist

__all__ = ["MANIFEST", "RunReport", "ShardedRun", "load_arrays", "load_samples"]

MANIFEST = "manifest.json"
FORMAT = 1


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _canonical(config: Mapping[str, Any]) -> str:
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a mapping of names to JSON values, got {type(config).__name__}")
    for key, value in config.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"config[{key!r}] = {value!r} cannot be stored as JSON; "
                "give a str, number, bool, list or dict"
            ) from None
    return json.dumps(dict(config), sort_keys=True)


def config_hash(config: Mapping[str, Any], batch_size: int) -> str:
    """SHA-256 (hex, 16 digits) of the canonical JSON of ``config`` and the batch size."""
    text = _canonical(config) + f"|batch_size={batch_size}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_atomic(path: Path, write: Callable[[Any], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@dataclass(frozen=True)
class RunReport:
    """What one call of `ShardedRun.run` did (on this rank).

    ``computed`` counts the shards this rank computed, ``skipped`` the shards found
    finished when the run started (all ranks), ``compute_s`` and ``io_s`` this rank's
    seconds in ``compute`` and in writing shards and the manifest.
    """

    folder: Path
    n_items: int
    n_shards: int
    computed: int
    skipped: int
    compute_s: float
    io_s: float


class ShardedRun:
    """Items ``0 … n_items−1`` in shards of ``batch_size`` under ``folder``.

    Parameters
    ----------
    folder : str or Path
        Output folder (created).  Must be shared by all ranks.
    n_items : int
        Number of items (samples, ensemble members).
    batch_size : int
        Items per shard; the last shard may be shorter.
    config : mapping
        JSON-serialisable description of everything that determines an item's result
        (model, method, grid, seed, …).  Shards are reused only under the same
        configuration and batch size; ``n_items`` may change between runs (shards whose
        range is unchanged are kept).
    kind : str
        What the items are (recorded in the manifest), e.g. ``"samples"``.
    """

    def __init__(
        self,
        folder: str | Path,
        n_items: int,
        batch_size: int,
        config: Mapping[str, Any],
        *,
        kind: str = "items",
    ):
        self.n_items = _positive_int(n_items, "n_items")
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.config = dict(config)
        self.kind = kind
        self.hash = config_hash(self.config, self.batch_size)
        self.folder = Path(folder)
        starts = range(0, self.n_items, self.batch_size)
        self.ranges = [(s, min(s + self.batch_size, self.n_items)) for s in starts]

    def shard_path(self, index: int) -> Path:
        return self.folder / f"shard-{index:06d}.npz"

    # -- checks (rank 0) ----------------------------------------------------------------
    def _manifest(self) -> dict:
        return {
            "format": FORMAT,
            "kind": self.kind,
            "hash": self.hash,
            "batch_size": self.batch_size,
            "n_items": self.n_items,
            "n_shards": len(self.ranges),
            "config": self.config,
        }

    def _conflict(self) -> str | None:
        """Why the folder's manifest is of another configuration, or ``None``."""
        path = self.folder / MANIFEST
        if not path.exists():
            return None
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            return f"{path} cannot be read ({exc}); delete it or choose another output folder"
        if old.get("hash") == self.hash:
            return None
        mine = {**self.config, "batch_size": self.batch_size, "kind": self.kind}
        theirs = {**old.get("config", {}), "batch_size": old.get("batch_size"), "kind": old.get("kind")}
        diff = [
            f"{k}: {theirs.get(k, '(absent)')!r} there, {mine.get(k, '(absent)')!r} here"
            for k in sorted(set(mine) | set(theirs))
            if mine.get(k, "(absent)") != theirs.get(k, "(absent)")
        ]
        return (
            f"{self.folder} holds shards of a different configuration ({'; '.join(diff) or 'hash differs'}); "
            "use another output folder, or delete this one to start over"
        )

    def shard_ok(self, index: int) -> bool:
        """Whether shard ``index`` reads back whole, with this run's hash and range."""
        try:
            with np.load(self.shard_path(index)) as f:
                if str(f["_hash"]) != self.hash or tuple(f["_range"]) != self.ranges[index]:
                    return False
                rows = self.ranges[index][1] - self.ranges[index][0]
                return all(len(f[k]) == rows for k in f.files if not k.startswith("_"))
        except Exception:
            return False

    def _prepare(self) -> tuple[str | None, list[int]]:
        self.folder.mkdir(parents=True, exist_ok=True)
        conflict = self._conflict()
        if conflict:
            return conflict, []
        for stale in self.folder.glob(".*.tmp"):  # left by a killed run
            stale.unlink(missing_ok=True)
        _write_atomic(
            self.folder / MANIFEST, lambda f: f.write(json.dumps(self._manifest(), indent=1).encode())
        )
        return None, [i for i in range(len(self.ranges)) if not self.shard_ok(i)]

    # -- run ----------------------------------------------------------------------------
    def run(
        self,
        compute: Callable[[int, int], Mapping[str, Any]],
        *,
        progress: bool = True,
    ) -> RunReport:
        """Compute every missing shard, this rank's share of them.

        ``compute(start, stop)`` returns a mapping of names to arrays whose first axis
        has ``stop − start`` rows (items ``start … stop−1``).  Collective: under
        ``torch.distributed`` every rank must call it.
        """
        rank, world = _dist.rank_world()
        if world > len(self.ranges):
            raise ValueError(
                f"world size {world} is larger than the number of shards {len(self.ranges)} "
                f"({self.n_items} items in batches of {self.batch_size}); "
                "use a smaller batch size or fewer processes"
            )
        try:
            verdict = self._prepare() if rank == 0 else None
        except OSError as exc:
            verdict = (f"cannot write to {self.folder}: {exc.strerror or exc}", [])
        conflict, todo = _dist.broadcast(verdict)
        if conflict:
            raise ValueError(conflict)
        skipped = len(self.ranges) - len(todo)
        mine = todo[rank::world]
        bar = self._bar(progress and rank == 0, self._items_done(todo))
        t_compute = t_io = 0.0
        try:
            for index in mine:
                start, stop = self.ranges[index]
                t0 = time.perf_counter()
                arrays = self._check_arrays(compute(start, stop), start, stop)
                t1 = time.perf_counter()
                _write_atomic(self.shard_path(index), partial(self._save, arrays, start, stop))
                t_compute += t1 - t0
                t_io += time.perf_counter() - t1
                if bar is not None:
                    bar.n = self._items_done(todo)
                    bar.refresh()
            _dist.barrier()
            if bar is not None:
                bar.n = self.n_items
                bar.refresh()
        finally:
            if bar is not None:
                bar.close()
        return RunReport(self.folder, self.n_items, len(self.ranges), len(mine), skipped, t_compute, t_io)

    def _bar(self, show: bool, done: int) -> Any:
        if not show:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=self.n_items, initial=done, unit=self.kind, desc="expint")

    def _items_done(self, todo: list[int]) -> int:
        """Items finished by any rank (rank 0 counts the shard files on the shared disk)."""
        missing = sum(self.ranges[i][1] - self.ranges[i][0] for i in todo if not self.shard_path(i).exists())
        return self.n_items - missing

    def _save(self, arrays: Mapping[str, np.ndarray], start: int, stop: int, f: Any) -> None:
        contents: dict[str, Any] = {"_hash": self.hash, "_range": np.array((start, stop)), **arrays}
        np.savez(f, **contents)

    @staticmethod
    def _check_arrays(arrays: Mapping[str, Any], start: int, stop: int) -> dict[str, np.ndarray]:
        if not isinstance(arrays, Mapping) or not arrays:
            raise TypeError(
                f"compute({start}, {stop}) must return a non-empty mapping of names to arrays, "
                f"got {type(arrays).__name__}"
            )
        out = {}
        for name, value in arrays.items():
            if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
                raise ValueError(f"array name {name!r} must be an identifier not starting with '_'")
            arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
            if arr.ndim == 0 or arr.shape[0] != stop - start:
                raise ValueError(
                    f"compute({start}, {stop}) returned {name!r} with shape {arr.shape}; "
                    f"its first axis must have {stop - start} rows"
                )
            out[name] = arr
        return out


def _read_manifest(folder: str | Path) -> tuple[Path, dict]:
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{folder} is not an expint run folder (no {MANIFEST})")
    return folder, json.loads(path.read_text())


def load_arrays(folder: str | Path) -> dict[str, np.ndarray]:
    """Every array of a finished run, shards concatenated in item order.

    Raises ``ValueError`` naming the missing or damaged shards if the run is not
    complete (rerun the same command to finish it).
    """
    folder, man = _read_manifest(folder)
    run = ShardedRun(folder, man["n_items"], man["batch_size"], man["config"], kind=man["kind"])
    bad = [i for i in range(len(run.ranges)) if not run.shard_ok(i)]
    if bad:
        shown = ", ".join(str(i) for i in bad[:8]) + (" …" if len(bad) > 8 else "")
        raise ValueError(
            f"{folder}: {len(bad)} of {len(run.ranges)} shards missing or damaged ({shown}); "
            "rerun the same command to finish the run"
        )
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(len(run.ranges)):
        with np.load(run.shard_path(i)) as f:
            for k in f.files:
                if not k.startswith("_"):
                    parts.setdefault(k, []).append(f[k])
    return {k: np.concatenate(v) for k, v in parts.items()}


def load_samples(folder: str | Path) -> np.ndarray:
    """The samples of a finished run: its largest floating-point array, one row per item."""
    arrays = load_arrays(folder)
    floats = {k: v for k, v in arrays.items() if np.issubdtype(v.dtype, np.floating)}
    if not floats:
        raise ValueError(f"{folder} holds no floating-point arrays")
    return max(floats.values(), key=lambda a: a.size)
