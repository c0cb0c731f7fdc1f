"""Every ``python`` code block in README.md and docs/*.md runs as written.

The blocks of one page run in order in one namespace (a page may build on its earlier
blocks), in a temporary working directory, with matplotlib on a non-interactive
backend.  ``bash`` blocks run too, in order, in one temporary folder per page, with this
interpreter's ``bin`` folder first on ``PATH`` — except the set-up lines (``make …``,
``pip install …``), which CI runs itself from a fresh clone.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # `make test-fast` skips this module; `make test` runs it

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_SETUP = ("make ", "pip ")


def _blocks(page: Path, lang: str) -> list[tuple[int, str]]:
    pattern = re.compile(rf"^```{lang}\n(.*?)^```", re.DOTALL | re.MULTILINE)
    text = page.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in pattern.finditer(text)]


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """``(line number, source)`` of each python block of a markdown page."""
    return _blocks(page, "python")


def shell_commands(page: Path) -> list[tuple[int, str]]:
    """``(line number, command)`` of each non-set-up line of the page's bash blocks."""
    out = []
    for line, src in _blocks(page, "bash"):
        for k, cmd in enumerate(src.splitlines()):
            if cmd.strip() and not cmd.lstrip().startswith(("#", *_SETUP)):
                out.append((line + k, cmd))
    return out


PAGES_WITH_COMMANDS = [p for p in PAGES if shell_commands(p)]


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


def test_the_shell_extractor_finds_the_commands():
    assert any("expint sample" in cmd for p in PAGES_WITH_COMMANDS for _, cmd in shell_commands(p))


@pytest.mark.parametrize("page", PAGES_WITH_COMMANDS, ids=lambda p: p.name)
def test_shell_commands_run(page, tmp_path):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    for line, cmd in shell_commands(page):
        res = subprocess.run(
            cmd, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert res.returncode == 0, f"{page.name}:{line}: {cmd}\n{res.stderr[-2000:]}"


def test_built_api_pages_show_no_raw_sphinx_roles(tmp_path):
    """mkdocstrings does not render Sphinx roles: the docstrings use $…$ maths and plain
    code spans, and the strict build's HTML must contain no :math:/:class:/... left."""
    mkdocs = Path(sys.executable).parent / "mkdocs"
    if not mkdocs.exists():
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    root = Path(__file__).resolve().parent.parent
    site = tmp_path / "site"
    subprocess.run([str(mkdocs), "build", "--strict", "--site-dir", str(site)], cwd=root, check=True,
                   capture_output=True)  # fmt: skip
    raw = re.compile(r":(math|class|func|meth|attr|mod|data|exc):`|\.\. math::")
    found = [
        f"{p.relative_to(site)}: {m.group(0)}"
        for p in site.rglob("*.html")
        for m in raw.finditer(p.read_text())
    ]
    assert not found, found[:10]
    assert 'class="arithmatex"' in (site / "api" / "index.html").read_text()
