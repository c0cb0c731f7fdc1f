"""torch for the tests that need it, absent in the no-torch CI job (which tests the
numpy core alone: `tests/conftest.py` collects only the core modules there)."""

from __future__ import annotations

import pytest

try:
    import torch
except ImportError:  # the no-torch job
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="needs torch (the no-torch job tests the numpy core)")
#: array backends to parametrize over: numpy always, torch where installed
BACKENDS = ["numpy"] if torch is None else ["numpy", "torch"]
