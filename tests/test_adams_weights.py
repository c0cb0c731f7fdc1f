"""The grid-wide exponential-Adams weights (`expint.diffusion._adams.AdamsSteps`) against
the one-step functions, and the Lagrange basis they are built from."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expint._interp import lagrange_basis
from expint.diffusion import EDM, VE, DiscreteVP, FlowMatching, VPCosine, VPLinear, grid
from expint.diffusion._adams import AdamsSteps, GridValues
from expint.diffusion.methods import adams_weights, noise_gain, unipc_weights, variable_disagreement

SCHEDULES = {
    "vp-linear": VPLinear(),
    "vp-cosine": VPCosine(),
    "discrete": DiscreteVP.from_betas(),
    "ve": VE(),
    "edm": EDM(),
    "flow": FlowMatching(),
}


def _grids(schedule):
    yield grid(schedule, 9)
    yield grid(schedule, 6, "uniform")
    if schedule.t_data is not None:  # a grid that ends at σ = 0 (an irregular last step)
        ts = grid(schedule, 5, "uniform")
        ts[-1] = schedule.t_data
        yield ts
    if isinstance(schedule, FlowMatching):  # starts at α = 0 (an irregular first step)
        yield np.linspace(1.0, 0.05, 7)


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_grid_weights_equal_the_one_step_functions(name):
    """Every step, every node set up to degree 3, both targets, every variable: the
    vectorised weights, gains and disagreements are the one-step functions' values bit
    for bit (the same arithmetic on the same schedule values), including the steps that
    end at σ = 0 or start at α = 0, which go through `adams_weights` itself."""
    schedule = SCHEDULES[name]
    checked = 0
    for ts in _grids(schedule):
        values = GridValues(schedule, ts)
        for target in ("eps", "x0"):
            steps = AdamsSteps(values, target)
            for i in range(len(ts) - 1):
                t0, t1 = float(ts[i]), float(ts[i + 1])
                for r in range(min(i, 3) + 1):
                    idx = list(range(i, i - r - 1, -1))
                    for variable in ("t", "rho", "lam"):
                        with np.errstate(all="ignore"):
                            want = adams_weights(schedule, target, variable, ts[idx], t0, t1)
                            got = steps.weights(i, idx, variable)
                        np.testing.assert_array_equal(got, want, err_msg=f"{target} {variable} step {i}")
                        if not np.all(np.isfinite(want)):
                            continue
                        assert steps.gain(i, idx, want) == noise_gain(schedule, target, ts[idx], want, t0, t1)
                        assert steps.disagreement(i, idx, want) == variable_disagreement(
                            schedule, target, variable, ts[idx], want, t0, t1
                        )
                        checked += 1
                    if r == 1 and values.sigma[i + 1] > 0:
                        np.testing.assert_array_equal(
                            steps.unipc(i, idx), unipc_weights(schedule, ts[idx], t0, t1)
                        )
    assert checked > 100


def test_grid_weights_see_a_wrong_node():
    """The comparison above can fail: the weights on shifted nodes differ."""
    schedule = VPLinear()
    ts = grid(schedule, 9)
    steps = AdamsSteps(GridValues(schedule, ts), "eps")
    want = adams_weights(schedule, "eps", "t", ts[[5, 4, 3]], float(ts[5]), float(ts[6]))
    assert not np.allclose(steps.weights(5, [5, 4, 2], "t"), want, rtol=1e-6)


def _basis_by_definition(nodes, x):
    return np.array(
        [
            [np.prod([(xk - sm) / (sj - sm) for m, sm in enumerate(nodes) if m != j]) for xk in x]
            for j, sj in enumerate(nodes)
        ]
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-50, 50), min_size=1, max_size=6, unique=True).filter(
        lambda s: min((abs(a - b) for a in s for b in s if a != b), default=1.0) > 1e-3
    ),
    st.lists(st.floats(-60, 60), min_size=1, max_size=12),
)
def test_lagrange_basis(nodes, x):
    """Against the product formula evaluated term by term, and ℓ_j(s_k) = δ_jk."""
    nodes, x = np.array(nodes), np.array(x)
    got = lagrange_basis(nodes, x)
    want = _basis_by_definition(nodes, x)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.max(np.abs(want), initial=1.0))
    np.testing.assert_array_equal(lagrange_basis(nodes, nodes), np.eye(len(nodes)))
