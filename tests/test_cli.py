"""The ``expint`` command line."""

from __future__ import annotations

import pytest

from expint.cli import main


def test_demo_prints_table_and_writes_plot(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--points", "4"]) == 0
    out = capsys.readouterr().out
    assert "| k | argument | expint | naive | contour32 |" in out
    assert (tmp_path / "phi_accuracy.png").stat().st_size > 10_000


def test_bad_arguments_exit_with_usage(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--points", "1"])
    assert "--points must be at least 2" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["nonsense"])
