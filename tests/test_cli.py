"""The ``expint`` command line."""

from __future__ import annotations

import pytest

from expint.cli import main

pytestmark = pytest.mark.slow  # `make test-fast` skips this module; `make test` runs it


def test_demo_runs_the_ks_study(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "| scheme | h = 0.5 |" in out and "| etdrk4 |" in out and "observed order" in out
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


def test_phi_accuracy_prints_its_own_title(tmp_path, capsys):
    assert main(["phi-accuracy", "--out", str(tmp_path), "--points", "2"]) == 0
    assert capsys.readouterr().out.startswith("expint phi-accuracy:")


@pytest.mark.parametrize("command", ["demo", "phi-accuracy"])
def test_unwritable_out_is_one_line_and_status_2(tmp_path, capsys, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--out", str(blocker / "sub")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write to" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["study", "nonstiff", "--schemes", "etd2rk", "--plot", "fig.foo"], ["--plot", ".png", "fig.png"]),
        (["study", "nonstiff", "--schemes", "etd2rk", "--plot", "fig"], ["--plot", "suffix"]),
        (["study", "nonstiff", "--schemes", "etd2rk", "--json", "{blocked}/r.json"], ["cannot write to"]),
        (["fd", "data:digits", "--ref", "data:digits", "--save-stats", "{blocked}/s.npz"], ["cannot write"]),
    ],
)
def test_output_files_are_checked_before_the_run(tmp_path, capsys, monkeypatch, args, words):
    """A figure format matplotlib cannot write, or a file in a folder that cannot be
    made, is a usage error before any work: the study or Fréchet distance is never run."""
    from expint import study

    def never(*a, **k):
        raise AssertionError("the run started")

    monkeypatch.setattr(study, "convergence", never)
    monkeypatch.setattr("expint.parallel.commands._fd", never)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([a.format(blocked=blocker) for a in args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert all(w in err for w in words), err


def test_schemes_command_prints_the_catalogue(capsys):
    import expint

    assert main(["schemes"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| name | family | stages | order | stiff order |")
    for s in expint.schemes.catalog():
        assert f"| {s.name} | {s.family} | {s.stages} | {s.order} | {s.stiff_order} |" in out
    # the dense-order column: blank where dense_output is refused
    assert "| etdab5 | etdab | 1 | 5 | 5 |  | 5 |" in out
    assert "| lawson_rk4 | lawson | 4 | 4 | 1 |  |  |" in out


def test_compact_reprs():
    import expint
    from expint import problems

    r = repr(problems.kuramoto_sivashinsky())
    assert r == "BuiltinProblem('kuramoto_sivashinsky', n=128, t_span=(0.0, 150.0), dt=0.25, linear=Diagonal)"
    s = repr(expint.schemes.get("krogstad"))
    assert s.startswith("Scheme(name='krogstad', family='etdrk'") and "tableau" not in s and len(s) < 200


@pytest.mark.parametrize(
    "obj",
    [
        "expint.diffusion.sample",
        "expint.diffusion.Sampler",
        "expint.diffusion.grid",
        "expint.Dense",
        "expint.diffusion.VPLinear.alpha",
        "expint.diffusion.DiscreteVP.sigma",
        "expint.diffusion.EDM.lam",
        "expint.diffusion.FlowMatching.rho",
    ],
)
def test_help_shows_parameters_and_returns(obj):
    import importlib
    import pydoc

    module, _, attr = obj.rpartition(".")
    try:
        target = getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError:
        owner, _, cls = module.rpartition(".")
        target = getattr(getattr(importlib.import_module(owner), cls), attr)
    text = pydoc.render_doc(target)
    assert "Parameters" in text and "Returns" in text, obj


def _check_writable_many_times(folder: str) -> None:
    from expint.cli import _writable

    for _ in range(300):
        _writable(folder)


def test_out_folder_check_survives_concurrent_ranks(tmp_path):
    """The ranks of a torchrun job check the same --out folder at once; each must use its
    own probe file (a shared one let a rank delete another's: exit status 2 at random)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_check_writable_many_times, args=(str(tmp_path / "out"),)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert list((tmp_path / "out").iterdir()) == []
