"""The two executors share their maths: the diffusion sampler's DDIM and ρ-RK4 steps are
the solver core's ``etd1`` and ``lawson_rk4`` after the change of variables to ρ-time.

With ``ρ = σ/α`` and ``v = x/α`` the probability-flow ODE is ``dv/dρ = ε(α v, t(ρ))``:
a semilinear problem with ``L = 0`` and ``N(ρ, v) = ε(α(ρ) v, t(ρ))``.  For ``L = 0``
exponential Euler is Euler and Lawson-RK4 is RK4, which are DDIM and ``rhork4``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import expint
from expint.diffusion import METHODS, RhoRK, VPLinear, grid, sample, toy
from expint.diffusion.methods import ExponentialAdams

SCH = VPLinear()
MIX = toy.GaussianMixture([[1.0, 0.5, 0.0], [-1.0, -0.3, 0.5]], [0.3, 0.5], SCH)


def _core_in_rho(ts: np.ndarray, x_T: torch.Tensor, scheme: str) -> torch.Tensor:
    rho = np.asarray(SCH.rho(ts), dtype=float)

    def eps_of_v(r: float, v: torch.Tensor) -> torch.Tensor:
        t = float(SCH.t_of_rho(np.array([r]))[0])
        a = float(SCH.alpha(np.array([t]))[0])
        return MIX.eps(a * v, torch.full((v.shape[0],), t, dtype=v.dtype))

    problem = expint.SemilinearProblem(expint.Diagonal(np.zeros(x_T.shape[-1])), eps_of_v)
    a0 = float(SCH.alpha(ts[:1])[0])
    sol = expint.solve(problem, x_T / a0, (rho[0], rho[-1]), scheme=scheme, ts=rho)
    return sol.y[-1] * float(SCH.alpha(ts[-1:])[0])


@pytest.mark.parametrize(("method", "scheme"), [("ddim", "etd1"), ("rhork4", "lawson_rk4")])
def test_sampler_step_equals_core_scheme(method, scheme):
    x_T = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    ts = grid(SCH, 6, "logsnr", t_start=1.0, t_end=0.05)
    # the preset's stiffness guard would turn long ρ-steps into Euler steps: compare the
    # plain tableau
    m = RhoRK("rk4", "rhork4", max_stiffness=None) if method == "rhork4" else METHODS[method]
    ours = sample(MIX, x_T, SCH, ts, method=m)
    core = _core_in_rho(ts, x_T, scheme)
    assert torch.allclose(ours, core, rtol=0, atol=1e-13), float((ours - core).abs().max())


def test_a_wrong_tableau_would_be_caught():
    """The comparison is sharp: Heun in the sampler is not the core's Lawson-RK4."""
    x_T = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    ts = grid(SCH, 6, "logsnr", t_start=1.0, t_end=0.05)
    heun = sample(MIX, x_T, SCH, ts, method=RhoRK("heun", "h", max_stiffness=None))
    assert float((heun - _core_in_rho(ts, x_T, "lawson_rk4")).abs().max()) > 1e-6


def test_methods_report_their_order():
    assert METHODS["ddim"].order == 1
    assert METHODS["tab3"].order == 4
    assert METHODS["dpmpp2m"].order == 2 and METHODS["dpmpp2m_pc"].order == 3
    assert METHODS["rhork2"].order == 2 and METHODS["rhork4"].order == 4
    assert METHODS["ipndm"].order == 4
    assert ExponentialAdams(2, "lam", "x0", corrector=True).order == 4


def test_classical_tableaus_are_validated():
    from expint._schemes._classical import CLASSICAL, ClassicalTableau

    assert [t.order for t in CLASSICAL.values()] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="order-3 condition"):  # Heun's weights claimed as order 3
        ClassicalTableau("bad", (0.0, 1.0), ((), (1.0,)), (0.5, 0.5), 3)
    with pytest.raises(ValueError, match="rows of a do not sum"):
        ClassicalTableau("bad", (0.0, 0.5), ((), (1.0,)), (0.0, 1.0), 1)


def test_sampler_docstring_lists_every_preset_in_registry_order():
    """The API page renders docstrings from source, so the list is written out; this
    keeps it equal to the registry."""
    import re

    from expint.diffusion import Sampler

    doc = Sampler.__doc__ or ""
    block = doc[doc.index("A preset from") : doc.index("(the tests")]
    assert re.findall(r"``(\w+)``", block)[1:] == list(METHODS)
