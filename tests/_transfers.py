"""Counting host transfers: on a GPU every value sent to the device or read back waits
for the queued kernels, so tests count the calls of the backend's conversion
functions (on the CPU) in the modules that run a loop."""

from __future__ import annotations

from types import ModuleType

import pytest

import expint._krylov
import expint._krylov_basis
import expint._krylov_expv
import expint._krylov_projection

CONVERSIONS = ("to_numpy", "to_like", "as_like")

#: Every module of `expint.phiv`'s Krylov loop: a transfer made in one left out would
#: go uncounted.
KRYLOV_MODULES = (expint._krylov, expint._krylov_basis, expint._krylov_expv, expint._krylov_projection)


def count_transfers(monkeypatch: pytest.MonkeyPatch, *modules: ModuleType) -> dict[str, int]:
    """Wrap the conversion functions that ``modules`` import; the returned dict's
    ``"transfers"`` counts their calls (reset it between runs)."""
    counts = {"transfers": 0}

    def counting(fn):
        def wrapped(*args, **kwargs):
            counts["transfers"] += 1
            return fn(*args, **kwargs)

        return wrapped

    for module in modules:
        for name in CONVERSIONS:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, counting(getattr(module, name)))
    return counts
