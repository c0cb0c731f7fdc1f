"""Every ``python`` code block in README.md and docs/*.md runs as written.

The blocks of one page run in order in one namespace (a page may build on its earlier
blocks), in a temporary working directory, with matplotlib on a non-interactive
backend.  ``bash`` blocks are not run here (the README's two commands are what CI runs).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """``(line number, source)`` of each python block of a markdown page."""
    text = page.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in _BLOCK.finditer(text)]


PAGES_WITH_CODE = [p for p in PAGES if python_blocks(p)]


def test_the_extractor_finds_the_blocks():
    # a regex that silently matched nothing would make every page pass
    assert len(PAGES_WITH_CODE) >= 4
    assert any("expint.solve" in src for _, src in python_blocks(ROOT / "README.md"))


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: p.name)
def test_code_blocks_run(page, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for line, src in python_blocks(page):
        code = compile(src, f"{page.name}:{line}", "exec")
        exec(code, namespace)
