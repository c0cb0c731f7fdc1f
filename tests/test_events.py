"""Event location (``solve(..., events=)``): zeros of ``g(t, y)`` located on each
step's continuous extension, checked against scipy's ``solve_ivp`` events at tight
tolerance; terminal events, directions, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _optional import needs_torch, torch
from scipy.integrate import solve_ivp

import expint

A = np.array([[-0.1, 1.0], [-1.0, -0.1]])  # a damped rotation
Y0 = np.array([1.0, 0.0])
T_END = 20.0


def nonlinear(t, y):
    return 0.3 * np.sin(y[..., ::-1])


PROB = expint.SemilinearProblem(expint.Dense(A), nonlinear)


def level(t, y):  # y0 crosses 0.2, both ways
    return y[..., 0] - 0.2


def falling(t, y):  # y1 crosses zero downwards
    return y[..., 1]


falling.direction = -1.0


@pytest.fixture(scope="module")
def scipy_events():
    """scipy's DOP853 at rtol 1e-13 on the full right-hand side, with the same events;
    its zero at t = 0 of ``falling`` (y1(0) = 0, decreasing) is dropped: expint does not
    count a zero at the start time (module docstring of `expint._events`)."""
    ref = solve_ivp(
        lambda t, y: A @ y + nonlinear(t, y), (0.0, T_END), Y0, method="DOP853", rtol=1e-13, atol=1e-13,
        events=[level, falling],
    )  # fmt: skip
    assert ref.t_events[1][0] == 0.0
    return [ref.t_events[0], ref.t_events[1][1:]], [ref.y_events[0], ref.y_events[1][1:]]


@pytest.mark.parametrize(
    ("scheme", "kwargs", "tol"),
    [
        ("etdrk4", {"n_steps": 400}, 1e-7),
        ("krogstad43", {"rtol": 1e-9, "atol": 1e-12}, 1e-9),
        ("etdab4", {"n_steps": 800}, 1e-6),
        ("exprb43", {"rtol": 1e-8, "atol": 1e-10}, 1e-9),
        ("etdab54", {"rtol": 1e-8, "atol": 1e-10}, 1e-8),
    ],
)
def test_event_times_and_states_match_scipy(scipy_events, scheme, kwargs, tol):
    t_ref, y_ref = scipy_events
    sol = expint.solve(PROB, Y0, (0.0, T_END), scheme=scheme, events=[level, falling], **kwargs)
    assert sol.success and sol.message == "reached t_end"
    for got_t, got_y, want_t, want_y in zip(sol.t_events, sol.y_events, t_ref, y_ref, strict=True):
        assert got_t.shape == want_t.shape and got_y.shape == want_y.shape
        np.testing.assert_allclose(got_t, want_t, atol=tol)
        np.testing.assert_allclose(got_y, want_y, atol=tol)
    # each state found is a zero of its function (to the rounding of Brent's method)
    np.testing.assert_allclose(level(0.0, sol.y_events[0]), 0.0, atol=1e-12)
    np.testing.assert_allclose(falling(0.0, sol.y_events[1]), 0.0, atol=1e-12)


def test_event_time_error_falls_at_the_schemes_order(scipy_events):
    """Fixed steps: the event time is as accurate as the state, so its error falls like
    h⁴ for etdrk4 (measured 9.5e-6 at 100 steps, 5.5e-7 at 200); a root found at the
    step end alone would be off by O(h)."""
    t_ref = scipy_events[0][0]
    errs = []
    for n in (100, 200, 400):
        sol = expint.solve(PROB, Y0, (0.0, T_END), scheme="etdrk4", n_steps=n, events=level)
        errs.append(np.abs(sol.t_events[0] - t_ref).max())
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(orders > 3.3), (errs, orders)


@pytest.mark.parametrize(
    ("scheme", "kwargs"), [("etdrk4", {"n_steps": 200}), ("krogstad43", {"rtol": 1e-8, "atol": 1e-10})]
)
@pytest.mark.parametrize("dense_output", [False, True])
def test_a_terminal_event_ends_the_run_there(scipy_events, scheme, kwargs, dense_output):
    def second_crossing(t, y):
        return level(t, y)

    second_crossing.terminal = 2
    t_eval = np.linspace(0.0, T_END, 21)
    sol = expint.solve(
        PROB, Y0, (0.0, T_END), scheme=scheme, events=[second_crossing, falling], t_eval=t_eval,
        dense_output=dense_output, **kwargs,
    )  # fmt: skip
    t_stop = scipy_events[0][0][1]
    assert sol.success and sol.message.startswith("a terminal event occurred at t = ")
    np.testing.assert_allclose(sol.t_events[0], scipy_events[0][0][:2], atol=1e-6)
    # the events of the other function up to the stop, none after it
    t_falling = scipy_events[0][1]
    np.testing.assert_allclose(sol.t_events[1], t_falling[t_falling < t_stop], atol=1e-6)
    # the saved times: the t_eval points before the event, then the event itself
    np.testing.assert_array_equal(sol.t[:-1], t_eval[t_eval < sol.t_events[0][1]])
    assert sol.t[-1] == sol.t_events[0][1]
    # (with dense output the saved state is the interpolant at that time: to rounding)
    np.testing.assert_allclose(sol.y[-1], sol.y_events[0][1], rtol=1e-14)
    if dense_output:
        assert sol.sol.t_span == (0.0, sol.t_events[0][1])


def test_direction_selects_the_crossings():
    rising, both = (lambda t, y: level(t, y)), (lambda t, y: level(t, y))
    rising.direction = 2.5  # only the sign counts
    sol = expint.solve(PROB, Y0, (0.0, T_END), scheme="etdrk4", n_steps=200, events=[both, rising])
    all_times, up = sol.t_events
    assert len(all_times) == 5 and len(up) == 2
    np.testing.assert_array_equal(up, all_times[1::2])  # y0 starts above 0.2: falls first


def test_runs_without_events_have_none():
    sol = expint.solve(PROB, Y0, (0.0, 1.0), scheme="etdrk4", n_steps=4)
    assert sol.t_events is None and sol.y_events is None


def test_an_event_function_with_no_zero_gives_an_empty_record():
    sol = expint.solve(PROB, Y0, (0.0, 1.0), scheme="etdrk4", n_steps=4, events=lambda t, y: 5.0 + y[0])
    assert sol.t_events[0].shape == (0,) and sol.y_events[0].shape == (0, 2)


@needs_torch
def test_events_on_a_torch_state():
    y0 = torch.tensor(Y0)
    sol = expint.solve(PROB_TORCH, y0, (0.0, T_END), scheme="etdrk4", n_steps=200, events=level)
    ref = expint.solve(PROB, Y0, (0.0, T_END), scheme="etdrk4", n_steps=200, events=level)
    np.testing.assert_allclose(sol.t_events[0], ref.t_events[0], rtol=1e-12)
    assert isinstance(sol.y_events[0], torch.Tensor)
    np.testing.assert_allclose(sol.y_events[0].numpy(), ref.y_events[0], atol=1e-12)


PROB_TORCH = (
    expint.SemilinearProblem(expint.Dense(torch.tensor(A)), lambda t, y: 0.3 * torch.sin(y.flip(-1)))
    if torch is not None
    else None
)


def _bad_terminal(t, y):
    return y[0]


_bad_terminal.terminal = -1


def _nan_direction(t, y):
    return y[0]


_nan_direction.direction = float("nan")


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"events": 3}, TypeError, "events must be a callable"),
        ({"events": []}, TypeError, "non-empty list"),
        ({"events": [level, "y0"]}, TypeError, r"events\[1\] must be a callable"),
        ({"events": _bad_terminal}, ValueError, r"events\[0\].terminal must be"),
        ({"events": _nan_direction}, ValueError, r"events\[0\].direction must be"),
        ({"events": lambda t, y: y}, ValueError, r"events\[0\]\(t, y\) must return one number"),
        ({"events": lambda t, y: "x"}, TypeError, r"events\[0\]\(t, y\) must return a real number"),
        ({"events": level, "scheme": "lawson_rk4"}, ValueError, "no continuous extension for events"),
        # NaN from a finite state found no event, silently
        ({"events": lambda t, y: float("nan")}, ValueError, r"returned NaN at t = 0 for a finite state"),
        (
            {"events": lambda t, y: math.nan if t > 0.5 else float(y[0]) + 10.0},
            ValueError,
            r"events\[0\]\(t, y\) returned NaN at t = 0.75 for a finite state",
        ),
    ],
)
def test_bad_events_are_named(kwargs, exc, match):
    args = {"scheme": "etdrk4", "n_steps": 4} | kwargs
    with pytest.raises(exc, match=match):
        expint.solve(PROB, Y0, (0.0, 1.0), **args)


def test_events_with_per_sample_steps_are_refused():
    batch = expint.SemilinearProblem(expint.Diagonal([-1.0, -2.0]), lambda t, y: np.sin(y))
    with pytest.raises(ValueError, match="events need one time for the whole state"):
        expint.solve(
            batch, np.ones((3, 2)), (0.0, 1.0), scheme="krogstad43", rtol=1e-6, atol=1e-6,
            batch_steps="independent", events=lambda t, y: float(y[0, 0]) - 0.5,
        )  # fmt: skip


def test_nan_from_a_state_that_blew_up_is_left_to_the_run():
    """The run reports a non-finite state itself (``success=False``, the step named);
    the event function's NaN there is not the user's error."""
    blowup = expint.SemilinearProblem(expint.Diagonal([0.0]), lambda t, y: y**10)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        sol = expint.solve(blowup, np.array([10.0]), (0.0, 2.0), scheme="etdrk4", n_steps=4,
                           events=lambda t, y: float(y[0]) - 1e400)  # fmt: skip
    assert not sol.success and "non-finite" in sol.message and len(sol.t_events[0]) == 0
