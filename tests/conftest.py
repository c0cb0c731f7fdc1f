"""Without torch installed (CI's no-torch job) only the numpy-core modules are collected;
their torch tests are skipped by `_optional.needs_torch`."""

from __future__ import annotations

import importlib.util
import zlib
from pathlib import Path

import numpy as np
import pytest

CORE_MODULES = {
    "test_phi_scalar.py",
    "test_phi_matrix.py",
    "test_phiv.py",
    "test_chebyshev.py",
    "test_operators.py",
    "test_solve.py",
    "test_problems.py",
}

if importlib.util.find_spec("torch") is None:
    collect_ignore = sorted(
        p.name
        for p in Path(__file__).parent.glob("test_*.py")
        if p.name not in CORE_MODULES - {"test_engines_agree.py"}
    )


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded by the test's id: each test draws the same numbers whatever
    runs before it (a module-level generator would make them depend on test order)."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
