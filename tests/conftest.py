"""Without torch installed (CI's no-torch job) only the numpy-core modules are collected;
their torch tests are skipped by `_optional.needs_torch`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

CORE_MODULES = {
    "test_phi_scalar.py",
    "test_phi_matrix.py",
    "test_phiv.py",
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
