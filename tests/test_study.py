"""The study API: order fits, convergence and work–precision studies, the command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from _optional import needs_torch

import expint
from expint import problems
from expint.cli import main
from expint.study import ConvergenceResult, fit_order

H = 0.5 ** np.arange(1, 8)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.5, 4.0, 5.0])
def test_fit_recovers_a_known_order_from_noisy_data(p, rng):
    err = 3.0 * H**p * np.exp(0.05 * rng.standard_normal(H.size))
    assert abs(fit_order(H, err).order - p) < 0.1


def test_fit_leaves_out_pre_asymptotic_and_round_off_points():
    err = 2.0 * H**4
    err[0] = math.inf  # an unstable coarse step
    err[1] = 50.0 * err[1]  # not converging yet
    err[-2:] = [1e-13, 1.1e-13]  # rounding error stagnates the fine end
    fit = fit_order(H, err)
    assert abs(fit.order - 4.0) < 1e-9 and fit.used == (2, 3, 4)
    # a naive fit through every finite point would be far off: the trimming matters
    finite = np.isfinite(err)
    assert abs(np.polyfit(np.log(H[finite]), np.log(err[finite]), 1)[0] - 4.0) > 1.0


def test_fit_floor_and_degenerate_input():
    err = 2.0 * H**2
    assert fit_order(H, err, floor=err[2] * 1.01).used == (0, 1)
    assert math.isnan(fit_order(H[:1], err[:1]).order)
    with pytest.raises(ValueError, match="same length"):
        fit_order(H, err[:-1])
    # a negative or NaN step size was dropped silently, text raised numpy's error
    with pytest.raises(ValueError, match="h must hold positive finite step sizes"):
        fit_order(-H, err)
    with pytest.raises(ValueError, match="h must hold positive finite step sizes"):
        fit_order(np.r_[np.nan, H[1:]], err)
    with pytest.raises(TypeError, match="h and errors must be sequences of real numbers"):
        fit_order("abc", [1.0, 2.0, 3.0])
    # a failed run (inf or NaN error) is still dropped, not an error
    assert fit_order(H, np.r_[np.inf, err[1:]]).used == tuple(range(1, len(H)))


def test_per_point_floors_and_the_rounding_of_many_steps():
    err = 3.0 * H**5
    floors = np.full(H.shape, 0.0)
    floors[-2:] = err[-2:] * 2  # the finest two at the floor
    assert fit_order(H, err, floor=floors).used == tuple(range(len(H) - 2))
    with pytest.raises(ValueError, match="one value per point"):
        fit_order(H, err, floor=floors[:-1])
    # a fifth-order scheme whose two finest runs level off at the rounding of their steps
    # (as etdab5 and whalen53 do on the NLS soliton at 2.1·n·eps): left out of the fit,
    # the order is the truncation's, and the table says how many points it used
    steps = [100, 200, 400, 800]
    eps = float(np.finfo(float).eps)
    errs = [3e-10, 3e-10 / 32, 2.1 * 400 * eps, 2.1 * 800 * eps]
    res = ConvergenceResult("toy", (0.0, 1.0), steps, [1 / n for n in steps], {"s": errs}, unit_roundoff=eps)
    assert abs(res.orders["s"] - 5) < 1e-9 and "5.00 (2 of 4)" in res.table() and "10·n·eps" in res.table()
    res.unit_roundoff = 0.0  # without the rounding floor a stagnated point biases the fit
    assert 2 in res.fits()["s"].used and abs(res.orders["s"] - 5) > 0.2


def test_convergence_study_observes_the_classical_orders(tmp_path):
    res = expint.study.convergence(
        problems.nonstiff(), None, (0.0, 2.0), ["etd2rk", "etd3rk", "krogstad"], [8, 16, 32, 64]
    )
    assert abs(res.orders["etd2rk"] - 2) < 0.2 and abs(res.orders["etd3rk"] - 3) < 0.2
    assert abs(res.orders["krogstad"] - 4) < 0.2
    assert res.reference_accuracy < 1e-12 and "hochost4 with 1024 steps" in res.reference
    assert res.table().count("\n| ") == 3 and "observed order" in res.table()  # a row per scheme
    data = json.loads(res.to_json(tmp_path / "c.json"))
    assert data["orders"]["krogstad"] == pytest.approx(res.orders["krogstad"])
    assert json.loads((tmp_path / "c.json").read_text())["steps"] == [8, 16, 32, 64]
    assert res.plot(tmp_path / "c.png").stat().st_size > 10_000


def test_a_built_in_problem_supplies_its_span_and_an_unfitted_order_is_a_dash():
    """``t_span=None`` took a built-in problem's ``y0`` but not its span ("t_span must be a
    pair", naming the value the user had left to the problem); one step count gave
    the order ``nan`` in the table with no word of why."""
    bp = problems.nonstiff()
    res = expint.study.convergence(bp, None, None, ["etd2rk"], [8, 16])
    assert res.t_span == bp.t_span and math.isfinite(res.orders["etd2rk"])
    one = expint.study.convergence(bp, None, None, ["etd2rk"], [8])
    assert math.isnan(one.orders["etd2rk"])
    row = next(line for line in one.table().splitlines() if line.startswith("| etd2rk"))
    assert row.endswith("| — |") and "no order without two usable step sizes" in one.table()
    wp = expint.study.work_precision(bp, None, None, ["etd2rk"], steps=[8], repeat=1)
    assert wp.problem == bp.name and wp.runs[0]["error"] < 0.05


def test_a_failed_run_is_reported_not_raised():
    prob = expint.SemilinearProblem(expint.Diagonal([0.0]), lambda t, y: y**10)  # overflows in 3 steps
    res = expint.study.convergence(
        prob, np.array([10.0]), (0.0, 2.0), "lawson_euler", [4, 8], reference=np.array([0.0])
    )
    assert res.errors["lawson_euler"] == [math.inf, math.inf] and "failed" in res.table()


@pytest.mark.slow  # `make test` runs it; keeps `make test-fast` under a minute
@needs_torch
def test_tolerance_references_report_their_accuracy():
    bp = problems.nonstiff()
    for kind in ("torchdiffeq", "scipy"):
        res = expint.study.convergence(bp, None, (0.0, 1.0), "krogstad", [10, 20], reference=kind)
        assert res.reference_accuracy < 1e-10 and kind in res.reference
        assert abs(res.orders["krogstad"] - 4) < 0.3


def test_work_precision_with_adaptive_fixed_and_peer_runs(tmp_path):
    from scipy.integrate import solve_ivp

    bp = problems.nonstiff()

    def scipy_rk45(rtol):
        out = solve_ivp(bp.problem.rhs, (0.0, 2.0), bp.y0, method="RK45", rtol=rtol, atol=rtol * 1e-3)
        return out.y[:, -1], out.nfev, out.t.size - 1

    res = expint.study.work_precision(
        bp,
        None,
        (0.0, 2.0),
        ["krogstad43", "krogstad"],
        steps=[8, 16, 32],
        rtols=[1e-3, 1e-5, 1e-7],
        peers={"scipy RK45": scipy_rk45},
        repeat=1,
    )
    labels = [r["label"] for r in res.runs]
    assert (
        labels.count("krogstad43") == 3 and labels.count("krogstad") == 3 and labels.count("scipy RK45") == 3
    )
    errs = [r["error"] for r in res.runs if r["label"] == "krogstad43"]
    assert errs[0] > errs[1] > errs[2]  # tighter rtol, smaller error
    assert all(r["nfev"] > 0 for r in res.runs)
    times = res.time_to(1e-5)
    assert math.isfinite(times["krogstad43"]) and math.isnan(res.time_to(1e-30)["krogstad"])
    assert "time to error 1e-06" in res.table()
    assert json.loads(res.to_json())["runs"][0]["setting"] == "rtol=1e-03"
    assert res.plot(tmp_path / "wp.png").stat().st_size > 10_000


def test_work_precision_passes_the_error_norm_to_the_adaptive_runs():
    """``error_norm="max"`` reaches `expint.solve`: each run takes the steps a direct
    solve with that norm takes, at least as many as with the RMS norm (the largest
    entry is at least the root mean square; on the 512 Fourier coefficients of the
    soliton, most of them near zero, it is well above it)."""
    bp = problems.nls()
    span, rtols = (0.0, 1.0), [1e-4, 1e-6]
    scale = float(np.max(np.abs(bp.y0)))
    runs = {
        norm: expint.study.work_precision(
            bp, None, span, ["krogstad43"], rtols=rtols, repeat=1, reference=bp.exact(1.0), error_norm=norm
        ).runs
        for norm in ("rms", "max")
    }
    for i, rtol in enumerate(rtols):
        direct = expint.solve(
            bp.problem, bp.y0, span, scheme="krogstad43", rtol=rtol, atol=rtol * scale, error_norm="max"
        )
        assert runs["max"][i]["steps"] == direct.stats["steps"]
        assert runs["max"][i]["steps"] > runs["rms"][i]["steps"]
    with pytest.raises(ValueError, match="error_norm must be 'rms' or 'max'"):
        expint.study.work_precision(bp, None, span, ["krogstad43"], rtols=rtols, error_norm="l2")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": [10, 2.5]}, "positive integers"),
        ({"steps": []}, "positive integers"),
        ({"schemes": []}, "at least one scheme"),
        ({"reference": "exact"}, "reference must be"),
        ({"reference": [1.0, 2.0, 3.0]}, r"shaped like y0"),
        ({"reference": [float("nan")] * 6}, "finite"),
        ({"steps": [4, 8, 4]}, "must not repeat"),
        ({"problem": "nonstiff"}, "SemilinearProblem or a built-in problem"),
        ({"y0": None, "problem": problems.nonstiff().problem}, "y0 is required"),
        (
            {"y0": [1.0, 0.5, 0.0], "t_span": None, "problem": problems.nonstiff().problem},
            "t_span is required",
        ),
        # each of these raised an error that named no argument
        ({"t_span": ("a", 1.0)}, r"t_span must be a pair of real numbers"),
        ({"t_span": 1.0}, r"t_span must be a pair of real numbers"),
        ({"steps": 4}, "steps must be a sequence"),
        ({"schemes": None}, "schemes must be a sequence"),
        ({"schemes": 5}, "schemes must be a sequence"),
    ],
)
def test_bad_study_input(kwargs, match):
    args = {
        "problem": problems.nonstiff(),
        "y0": None,
        "t_span": (0.0, 1.0),
        "schemes": ["etd2rk"],
        "steps": [4, 8],
    }
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        expint.study.convergence(**args)
    with pytest.raises(ValueError, match="pass rtols for adaptive schemes"):
        expint.study.work_precision(problems.nonstiff(), None, (0.0, 1.0), ["krogstad43"], steps=[4])
    with pytest.raises(ValueError, match=r"rtols must lie in \(0, 1\)"):
        expint.study.work_precision(problems.nonstiff(), None, (0.0, 1.0), ["krogstad43"], rtols=[2.0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rtols": 1e-3}, "rtols must be a sequence"),
        ({"rtols": ["a"]}, r"rtols must lie in \(0, 1\)"),
        ({"rtols": [1e-3, 1e-3]}, "rtols must not repeat"),
        ({"repeat": 0}, "repeat must be a positive integer"),
        ({"repeat": "3"}, "repeat must be a positive integer"),
        ({"budget": float("nan")}, "budget must be a positive number"),
        ({"max_seconds": -1.0}, "max_seconds must be a positive number"),
        ({"peers": [lambda r: None]}, "peers must be a dict"),
        ({"peers": {"x": 3}}, "peers must map a label"),
        ({"peers": {"x": lambda r: np.zeros(5)}}, r"peers\['x'\] returned shape \(5,\)"),
    ],
)
def test_bad_work_precision_input(kwargs, match):
    """Each of these raised an error naming no argument (``peers`` as a list: an
    ``AttributeError``), or was accepted (``repeat=0``, a NaN budget, a negative
    ``max_seconds``, a repeated tolerance, which ran twice)."""
    args = {"rtols": [1e-3], "repeat": 1}
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        expint.study.work_precision(problems.nonstiff(), None, (0.0, 1.0), ["krogstad43"], **args)


def test_result_lookups_name_a_bad_error_level_and_path():
    """``time_to(0)`` answered all NaN and ``table(nan)`` dropped its time table
    silently; ``time_to("a")`` and ``plot(None)`` raised errors naming nothing."""
    bp = problems.nonstiff()
    res = expint.study.work_precision(bp, None, (0.0, 1.0), ["krogstad43"], rtols=[1e-3], repeat=1)
    conv = expint.study.convergence(bp, None, (0.0, 1.0), ["etd2rk"], [4, 8])
    for bad in (0.0, -1.0, float("nan"), "a", None):
        with pytest.raises(ValueError, match="error must be a positive finite error level"):
            res.time_to(bad)
        with pytest.raises(ValueError, match="target must be a positive finite error level"):
            res.table(bad)
    for result in (res, conv):
        with pytest.raises(TypeError, match="path must be a file name"):
            result.plot(None)


def test_a_peer_that_fails_counts_as_failed_and_a_zero_reference_measures_absolute_error():
    """A peer returning NaN is a failed run (error ``inf``, as a failed expint run; it was
    NaN, which reads as a skipped setting).  Against a zero reference the error is the
    absolute one (it was divided by 1e-300)."""
    bp = problems.nonstiff()
    res = expint.study.work_precision(
        bp, None, (0.0, 1.0), ["krogstad43"], rtols=[1e-3], repeat=1, peers={"nan": lambda r: bp.y0 * np.nan}
    )
    assert [r["error"] for r in res.runs if r["label"] == "nan"] == [math.inf]
    # a bare NaN or None (what benchmarks/adaptive_work_precision.py's timeout wrapper
    # returns) is a failed run too; the shape check that came with the line above made
    # it an error, and the benchmark stopped at its first timed-out peer
    for failed in (np.nan, None):
        res = expint.study.work_precision(
            bp,
            None,
            (0.0, 1.0),
            ["krogstad43"],
            rtols=[1e-3],
            repeat=1,
            peers={"failed": lambda r, f=failed: f},
        )
        assert [r["error"] for r in res.runs if r["label"] == "failed"] == [math.inf]
    zero = np.zeros_like(bp.y0)
    conv = expint.study.convergence(bp, None, (0.0, 1.0), ["etd2rk"], [4, 8], reference=zero)
    final = expint.solve(bp.problem, bp.y0, (0.0, 1.0), scheme="etd2rk", n_steps=8).y[-1]
    assert conv.errors["etd2rk"][1] == pytest.approx(np.abs(final).max(), rel=1e-12)


@pytest.mark.slow  # `make test` runs it; keeps `make test-fast` under a minute
def test_study_command(tmp_path, capsys):
    args = ["study", "nonstiff", "--schemes", "etd2rk,krogstad", "--steps", "8,16,32", "--quiet"]
    assert main([*args, "--json", str(tmp_path / "s.json"), "--plot", str(tmp_path / "s.png")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("expint study: convergence on nonstiff") and "| krogstad |" in out
    assert json.loads((tmp_path / "s.json").read_text())["steps"] == [8, 16, 32]
    assert (tmp_path / "s.png").stat().st_size > 10_000
    assert (
        main(
            ["study", "nonstiff", "--schemes", "krogstad43", "--adaptive", "--rtols", "1e-3,1e-6", "--quiet"]
        )
        == 0
    )
    assert "| krogstad43 | rtol=1e-06 |" in capsys.readouterr().out
    adaptive = ["study", "nonstiff", "--schemes", "krogstad43", "--adaptive", "--rtols", "1e-4"]
    assert main([*adaptive, "--error-norm", "max", "--quiet"]) == 0
    assert "| krogstad43 | rtol=1e-04 |" in capsys.readouterr().out
    assert main(["study", "nonstiff", "--schemes", "etd2rk", "--steps", "4,8", "--error-norm", "max"]) == 2
    assert "add --adaptive" in capsys.readouterr().err
    assert main(["study", "ks", "--schemes", "etd2rk", "--steps", "2,4", "--t-end", "0.5", "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("expint study: convergence on kuramoto_sivashinsky")
    assert main(["study", "nonstiff", "--schemes", "nope", "--quiet"]) == 2
    assert "unknown scheme 'nope'" in capsys.readouterr().err
    # a negative end time reported the default step counts it produced as repeated
    assert main(["study", "ks", "--schemes", "etd2rk", "--t-end", "-1", "--quiet"]) == 2
    assert "--t-end must be a finite time after the problem's start" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["study", "nonstiff", "--schemes", "etd2rk", "--steps", "8,-1"])


def test_study_command_size(capsys, monkeypatch):
    """``--size`` builds the built-in problem at that size (its first parameter); a size
    the problem refuses is a usage error naming ``--size``."""
    from expint import study
    from expint.cli import main

    seen = []
    real = study.convergence

    def spy(problem, *args, **kwargs):
        seen.append(problem.y0.shape)
        return real(problem, *args, **kwargs)

    monkeypatch.setattr(study, "convergence", spy)
    ac = ["study", "allen_cahn", "--schemes", "krogstad", "--quiet"]
    assert main([*ac, "--size", "40", "--steps", "8,16"]) == 0
    assert seen == [(39,)]  # 40 Chebyshev intervals, 39 interior unknowns
    ks = ["study", "ks", "--schemes", "etd2rk", "--steps", "2,4", "--t-end", "0.5", "--quiet"]
    assert main([*ks, "--size", "32"]) == 0
    assert seen[-1] == (32,)
    capsys.readouterr()
    assert main([*ac, "--size", "1"]) == 2
    err = capsys.readouterr().err
    assert "--size 1 does not fit allen_cahn" in err and "n must be" in err
    with pytest.raises(SystemExit):
        main(["study", "nonstiff", "--size", "six", "--schemes", "etd2rk"])


def test_figures_tell_many_lines_apart():
    """A work–precision figure carries ~15 configurations: no two of the first 40 lines
    share colour, dash and marker, and the first ten differ in colour and marker."""
    from expint._plotting import line_style

    styles = [tuple(sorted(line_style(i).items())) for i in range(40)]
    assert len(set(styles)) == 40
    assert len({line_style(i)["color"] for i in range(10)}) == 10
    assert len({line_style(i)["marker"] for i in range(10)}) == 10


def test_a_slow_configuration_is_not_run_at_tighter_settings():
    import time

    bp = problems.nonstiff()
    ref = expint.solve(bp.problem, bp.y0, (0.0, 1.0), scheme="hochost4", n_steps=400).y[-1]

    def slow_peer(rtol):
        time.sleep(0.03)
        return ref

    res = expint.study.work_precision(
        bp,
        None,
        (0.0, 1.0),
        ["krogstad43"],
        rtols=[1e-3, 1e-5, 1e-7],
        peers={"slow": slow_peer},
        reference=ref,
        repeat=1,
        max_seconds=0.01,
    )
    slow = [r for r in res.runs if r["label"] == "slow"]
    assert slow[0]["seconds"] >= 0.03 and slow[0]["error"] == 0.0
    assert [r["setting"] for r in slow[1:]] == ["rtol=1e-05 skipped", "rtol=1e-07 skipped"]
    assert "| slow | rtol=1e-05 skipped | – |" in res.table()


def test_time_to_interpolates_and_bounds():
    from expint.study import WorkPrecisionResult

    def run(label, err, sec):
        return {"label": label, "setting": "", "error": err, "seconds": sec, "nfev": 1, "steps": 1}

    res = WorkPrecisionResult(
        "p", [run("a", 1e-4, 1.0), run("a", 1e-8, 16.0), run("b", 1e-9, 3.0), run("c", 1e-3, 0.1)]
    )
    t = res.time_to(1e-6)
    assert t["a"] == pytest.approx(4.0)  # halfway in log error, halfway in log time
    assert t["b"] == 3.0  # every run more accurate: the fastest such run bounds it
    assert math.isnan(t["c"]) and "| c | not reached |" in res.table(1e-6)


def test_a_reference_run_that_blows_up_is_refused():
    """``y' = y²`` from 1 blows up at t = 1: the default reference ended in inf/NaN and
    every error came out NaN; it is now a ``ValueError`` naming ``reference``."""
    prob = expint.SemilinearProblem(expint.Diagonal([0.0]), lambda t, y: y * y)
    with (
        pytest.warns(RuntimeWarning),
        pytest.raises(ValueError, match="reference: the hochost4 run with 128 steps stopped"),
    ):
        expint.study.convergence(prob, np.array([1.0]), (0.0, 2.0), ["etd2rk"], [4, 8])
