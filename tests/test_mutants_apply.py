"""`tests/mutants.py` stays runnable: every planted bug still finds the one place it
changes.  A refactor that rewrites a mutated line would otherwise leave `make mutants`
stopping at that mutant (it refuses text found zero or several times), which is how
four of its twelve mutants went stale before this test existed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _mutants() -> list[tuple]:
    spec = importlib.util.spec_from_file_location("expint_mutants", ROOT / "tests" / "mutants.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MUTANTS


@pytest.mark.parametrize("mutant", _mutants(), ids=lambda m: m[0])
def test_each_mutant_changes_exactly_one_place(mutant):
    name, rel, old, new, tests = mutant
    assert old != new, name
    source = (ROOT / rel).read_text()
    assert source.count(old) == 1, f"{name!r}: {source.count(old)} occurrences in {rel}"
    for test in tests:
        assert (ROOT / test).is_file(), f"{name!r} runs {test}, which does not exist"
