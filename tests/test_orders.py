"""Observed orders of every scheme in the catalogue (one parametrised list).

Classical orders: on the non-stiff problem against a torchdiffeq dopri5 reference
(rtol 1e-13, float64), log–log fit over 4 step sizes, within ±0.25 of the catalogue's
order.  Stiff orders: on the Hochbruck–Ostermann parabolic problem (exact solution),
fit over h = 1/32 … 1/256.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference import torchdiffeq_reference

import expint
from expint import problems

pytestmark = pytest.mark.slow  # `make test-fast` skips this module; `make test` runs it

# the exponential Rosenbrock pairs run a Krylov approximation on L + J per stage, which on
# these stiff problems costs minutes; tests/test_rosenbrock.py measures their orders
SCHEMES = [s for s in expint.schemes.catalog() if s.family != "exprb"]
IDS = [s.name for s in SCHEMES]


def observed_order(step_sizes, errors) -> float:
    return float(np.polyfit(np.log(step_sizes), np.log(errors), 1)[0])


@pytest.fixture(scope="module")
def nonstiff():
    bp = problems.nonstiff()
    return bp, torchdiffeq_reference(bp.problem, bp.y0, bp.t_span)


@pytest.fixture(scope="module")
def parabolic():
    return problems.hochbruck_ostermann()


def _steps_for(order: int) -> list[int]:
    # asymptotic regime, errors well above rounding
    return {1: [40, 80, 160, 320], 2: [40, 80, 160, 320], 3: [20, 40, 80, 160], 5: [20, 40, 80, 160]}.get(
        order, [10, 20, 40, 80]
    )


@pytest.mark.parametrize("scheme", SCHEMES, ids=IDS)
def test_classical_order_nonstiff(nonstiff, scheme):
    bp, ref = nonstiff
    ns = _steps_for(scheme.order)
    errs = []
    for n in ns:
        sol = expint.solve(bp.problem, bp.y0, bp.t_span, scheme=scheme.name, n_steps=n)
        errs.append(np.max(np.abs(sol.y[-1] - ref)))
    p = observed_order([1.0 / n for n in ns], errs)
    assert abs(p - scheme.order) <= 0.25, (scheme.name, p, errs)


@pytest.mark.parametrize("scheme", SCHEMES, ids=IDS)
def test_stiff_order_parabolic(parabolic, scheme):
    bp = parabolic
    # order 5 reaches the rounding floor (~1e-12) at h = 1/256: use larger steps
    hs = [1 / 16, 1 / 32, 1 / 64, 1 / 128] if scheme.order == 5 else [1 / 32, 1 / 64, 1 / 128, 1 / 256]
    errs = []
    for h in hs:
        sol = expint.solve(bp.problem, bp.y0, bp.t_span, scheme=scheme.name, dt=h)
        errs.append(np.max(np.abs(sol.y[-1] - bp.exact(1.0))))
    p = observed_order(hs, errs)
    if scheme.family == "lawson":
        # integrating-factor schemes drop to order 1 on this problem whatever their
        # classical order (Hochbruck–Ostermann theory)
        assert 0.8 <= p <= 1.3, (scheme.name, p)
    else:
        assert p >= scheme.stiff_order - 0.25, (scheme.name, p, scheme.stiff_order)
        assert p <= scheme.order + 0.3, (scheme.name, p)


def test_order_reduction_of_cox_matthews_vs_hochost4(parabolic):
    """The theory's headline: etdrk4 drops to about 3 here, hochost4 keeps 4."""
    bp = parabolic
    hs = [1 / 32, 1 / 64, 1 / 128, 1 / 256]
    orders = {}
    for name in ("etdrk4", "hochost4"):
        errs = [
            np.max(
                np.abs(expint.solve(bp.problem, bp.y0, bp.t_span, scheme=name, dt=h).y[-1] - bp.exact(1.0))
            )
            for h in hs
        ]
        orders[name] = observed_order(hs, errs)
    assert 2.7 <= orders["etdrk4"] <= 3.3
    assert orders["hochost4"] >= 3.85
