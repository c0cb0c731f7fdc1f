"""`Solution.plot`: what is drawn is the solution (curves and image hold its values),
the options choose what they say, and bad options are named errors."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from _optional import needs_torch, torch

import expint
from expint._solution_plot import DENSE_POINTS

matplotlib.use("Agg")


def _sin(t, y):
    return torch.sin(y) if isinstance(y, torch.Tensor) else np.sin(y)


def _problem(n: int = 3):
    return expint.SemilinearProblem(expint.Diagonal(-np.linspace(0.5, 10.0, n)), _sin)


def test_lines_hold_the_saved_states_and_the_file_is_written(tmp_path):
    prob = _problem()
    sol = expint.solve(
        prob, np.array([1.0, -0.5, 2.0]), (0, 2), scheme="etdrk4", n_steps=8, t_eval=[0.5, 1, 2]
    )
    ax = sol.plot()
    lines = ax.get_lines()
    assert len(lines) == 3 and ax.get_xlabel() == "t"
    for k, line in enumerate(lines):
        np.testing.assert_array_equal(line.get_xdata(), sol.t)
        np.testing.assert_array_equal(line.get_ydata(), sol.y[:, k])
    out = sol.plot(tmp_path / "sub" / "sol.png")
    assert out == tmp_path / "sub" / "sol.png" and out.stat().st_size > 1000


def test_a_dense_output_is_drawn_from_the_interpolant_with_events_marked():
    prob = _problem()
    event = lambda t, y: y[0] - 1.5  # noqa: E731  (y[0] rises from 1 towards 1.9)
    y0 = np.array([1.0, -0.5, 2.0])
    opts = {"rtol": 1e-8, "atol": 1e-10, "dense_output": True, "events": event}
    sol = expint.solve(prob, y0, (0, 2), scheme="krogstad43", **opts)
    assert len(sol.t_events[0]) == 1
    ax = sol.plot()
    curves = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == DENSE_POINTS]
    assert len(curves) == 3
    t = curves[1].get_xdata()
    np.testing.assert_allclose(curves[1].get_ydata(), sol.sol(t)[:, 1], rtol=0, atol=1e-15)
    marks = [ln for ln in ax.get_lines() if ln not in curves]
    assert len(marks) == 1 and marks[0].get_xdata()[0] == pytest.approx(sol.t_events[0][0])


def test_a_long_state_is_an_image_of_its_values():
    prob = _problem(40)
    sol = expint.solve(
        prob, np.linspace(-1, 1, 40), (0, 1), scheme="etdrk4", n_steps=10, t_eval=np.linspace(0, 1, 6)
    )
    ax = sol.plot()
    (mesh,) = ax.collections
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(6, 40), sol.y)
    assert ax.get_ylabel() == "t" and ax.get_xlabel() == "component"
    assert len(sol.plot(kind="lines").get_lines()) == 40  # asked for: one curve each
    with pytest.raises(ValueError, match="two or more times"):
        expint.solve(prob, np.ones(40), (0, 1), scheme="etdrk4", n_steps=4, t_eval=[1.0]).plot(kind="image")


def test_complex_states_draw_their_modulus_unless_asked():
    prob = expint.SemilinearProblem(expint.Diagonal(np.array([1j, -2.0])), lambda t, y: 0 * y)
    sol = expint.solve(
        prob, np.array([1.0 + 1j, 1.0]), (0, 1), scheme="etdrk4", n_steps=4, t_eval=[0, 0.5, 1]
    )
    ax = sol.plot()
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), np.abs(sol.y[:, 0]))
    assert ax.get_ylabel() == "abs(y)"
    np.testing.assert_allclose(sol.plot(part="imag").get_lines()[0].get_ydata(), sol.y[:, 0].imag)


def test_a_batch_needs_a_member():
    prob = _problem()
    y0 = np.arange(12.0).reshape(2, 2, 3) / 10
    sol = expint.solve(prob, y0, (0, 1), scheme="etdrk4", n_steps=4, t_eval=[0, 0.5, 1])
    with pytest.raises(ValueError, match=r"batch of shape \(2, 2\); pass member="):
        sol.plot()
    ax = sol.plot(member=(1, 0))
    np.testing.assert_array_equal(ax.get_lines()[2].get_ydata(), sol.y[:, 1, 0, 2])
    assert "member (1, 0)" in ax.get_title()
    for bad in [(2, 0), 1, (0, 0, 0), (True, 0), "0"]:
        with pytest.raises(ValueError, match="member"):
            sol.plot(member=bad)


def test_transform_draws_the_physical_field():
    """A spectral state through the problem's ``to_physical``: the image holds the field."""
    from expint import problems

    bp = problems.kuramoto_sivashinsky(32)
    sol = expint.solve(bp.problem, bp.y0, (0, 2), scheme="etdrk4", n_steps=8, t_eval=np.linspace(0, 2, 5))
    ax = sol.plot(transform=bp.to_physical)
    (mesh,) = ax.collections
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(5, 32), bp.to_physical(sol.y))
    assert "to_physical(y)" in mesh.colorbar.ax.get_ylabel()
    with pytest.raises(ValueError, match="one row per time"):
        sol.plot(transform=lambda y: y.sum())
    with pytest.raises(TypeError, match="transform must be a function"):
        sol.plot(transform="physical")


@needs_torch
def test_a_tensor_solution_that_requires_grad_plots():
    prob = _problem()
    y0 = torch.ones(3, dtype=torch.float64, requires_grad=True)
    sol = expint.solve(prob, y0, (0, 1), scheme="etdrk4", n_steps=4, t_eval=[0, 0.5, 1])
    ax = sol.plot()
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), sol.y[:, 0].detach().numpy())


def test_a_failed_run_says_where_it_stopped():
    prob = expint.SemilinearProblem(expint.Diagonal(np.array([-1.0])), lambda t, y: y * y)
    with pytest.warns(RuntimeWarning):
        sol = expint.solve(prob, np.array([3.0]), (0, 1), scheme="krogstad43", rtol=1e-6, atol=1e-8)
    assert not sol.success
    assert "stopped at t = " in sol.plot().get_title()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "bars"}, "kind must be one of"),
        ({"part": "phase"}, "part must be one of"),
        ({"path": "figure.foo"}, "figure format"),
        ({"path": 3}, "file name"),
        ({"member": 0}, "holds one state"),
    ],
)
def test_bad_options_are_named(kwargs, match):
    sol = expint.solve(_problem(), np.ones(3), (0, 1), scheme="etdrk4", n_steps=4)
    with pytest.raises((ValueError, TypeError), match=match):
        sol.plot(**kwargs)


def test_path_and_ax_together_are_refused(tmp_path):
    import matplotlib.pyplot as plt

    sol = expint.solve(_problem(), np.ones(3), (0, 1), scheme="etdrk4", n_steps=4)
    fig, ax = plt.subplots()
    assert sol.plot(ax=ax) is ax
    with pytest.raises(ValueError, match="not both"):
        sol.plot(tmp_path / "a.png", ax=ax)
    plt.close(fig)
