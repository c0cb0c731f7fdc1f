"""The ``expint`` command line."""

from __future__ import annotations

import pytest

from expint.cli import main


def test_demo_runs_the_ks_study(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "| scheme | h = 1/2 |" in out and "| etdrk4 |" in out
    assert (tmp_path / "ks_spacetime.png").stat().st_size > 10_000
    assert (tmp_path / "ks_convergence.png").stat().st_size > 10_000


def test_phi_accuracy_prints_table_and_writes_plot(tmp_path, capsys):
    assert main(["phi-accuracy", "--out", str(tmp_path), "--points", "4"]) == 0
    out = capsys.readouterr().out
    assert "| k | argument | expint | naive | contour32 |" in out
    assert (tmp_path / "phi_accuracy.png").stat().st_size > 10_000


def test_bad_arguments_exit_with_usage(capsys):
    with pytest.raises(SystemExit):
        main(["phi-accuracy", "--points", "1"])
    assert "--points must be at least 2" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["nonsense"])
