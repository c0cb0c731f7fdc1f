"""Gradients through the φ-functions and through `solve` on torch tensors
(docs/operators.md, *Autograd*: `Diagonal` coefficients are computed with the state's array
library, so gradients reach its diagonal and ``y0``)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from _optional import needs_torch, torch

import expint

pytestmark = needs_torch


def test_phi_gradient_satisfies_the_derivative_identity():
    """``z φ_k'(z) = φ_{k−1}(z) − k φ_k(z)`` (differentiate ``Σ_j z^j/(j+k)!``), on
    both branches of the evaluation: the Taylor disc and the recurrence."""
    z = torch.tensor([-40.0, -3.5, -0.7, -1e-3, 0.2, 0.9, 3.0, 12.0], dtype=torch.float64, requires_grad=True)
    for k in (1, 2, 4, 6):
        (grad,) = torch.autograd.grad(expint.phi(k, z).sum(), z)
        zd = z.detach().numpy()
        phis = expint.phi_all(k, zd)
        expected = (phis[k - 1] - k * phis[k]) / zd
        np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-9, atol=1e-14)


def _final_sum(d, y0, **kw):
    prob = expint.SemilinearProblem(expint.Diagonal(d), lambda t, y: torch.sin(y) - 0.5 * y * y)
    return expint.solve(prob, y0, (0.0, 1.0), **kw).y[-1].sum()


@pytest.mark.parametrize(
    "kw",
    [
        {"scheme": "etdrk4", "n_steps": 12},
        {"scheme": "etdab4", "n_steps": 12},
        {"scheme": "krogstad43", "rtol": 1e-9, "atol": 1e-9},
    ],
    ids=["fixed-rk", "fixed-adams", "adaptive"],
)
def test_solve_gradients_match_central_differences(kw):
    """d/dλ and d/dy0 of the final state's sum, by autograd against central differences
    of the same solve; no warning on the way (the non-finite check and the error norm
    read values back from tensors that require grad)."""
    d = torch.tensor([-1.0, -25.0, -1e-3], dtype=torch.float64, requires_grad=True)
    y0 = torch.tensor([0.3, -1.2, 0.8], dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grad_d, grad_y0 = torch.autograd.grad(_final_sum(d, y0, **kw), (d, y0))
    eps = 1e-6
    for grad, which in ((grad_d, 0), (grad_y0, 1)):
        fd = []
        for i in range(3):
            args = [d.detach().clone(), y0.detach().clone()]
            args[which][i] += eps
            up = _final_sum(*args, **kw).item()
            args[which][i] -= 2 * eps
            fd.append((up - _final_sum(*args, **kw).item()) / (2 * eps))
        # difference quotients of a smooth map: ~1e-9 relative; an adaptive run's step
        # sequence is held fixed by autograd but may switch under the ±eps perturbation
        np.testing.assert_allclose(grad.numpy(), fd, rtol=1e-6, atol=1e-8)


def _sparse_problem(n: int = 40, nonlinear=None):
    import scipy.sparse as sp

    lap = sp.diags([np.ones(n - 1), -2 * np.ones(n), np.ones(n - 1)], [-1, 0, 1]).tocsr() * 100.0
    return expint.SemilinearProblem(expint.Sparse(lap), nonlinear or (lambda t, y: -(y**3))), lap


def test_krylov_products_refuse_tensors_that_record_gradients():
    """`phiv` (the φ-products of `MatrixFree`/`Sparse` parts) carries no gradients: a
    vector that requires grad is a clear ValueError, not torch's in-place or ``out=``
    error from deep in the iteration (or in backward); under ``torch.no_grad()`` the
    same call runs and equals the call on detached tensors."""
    prob, lap = _sparse_problem()
    v = torch.linspace(-1.0, 1.0, 40, dtype=torch.float64, requires_grad=True)
    a = torch.from_numpy(lap.toarray())
    for method in ("krylov", "chebyshev"):
        with pytest.raises(ValueError, match=r"vs\[1\] requires grad.*does not carry gradients"):
            expint.phiv(a, [v.detach(), v], 1e-3, method=method)
        with torch.no_grad():
            w = expint.phiv(a, [v, v], 1e-3, method=method).w
        np.testing.assert_array_equal(
            w.numpy(), expint.phiv(a, [v.detach(), v.detach()], 1e-3, method=method).w
        )

    y0 = torch.ones(40, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match="y0 requires grad, but the φ-products of a Sparse linear part"):
        expint.solve(prob, y0, (0.0, 0.1), scheme="krogstad", n_steps=4)
    with torch.no_grad():
        kept = expint.solve(prob, y0, (0.0, 0.1), scheme="krogstad", n_steps=4).y[-1]
    np.testing.assert_array_equal(
        kept, expint.solve(prob, y0.detach(), (0.0, 0.1), scheme="krogstad", n_steps=4).y[-1]
    )

    # gradients entering through N (a parameter that requires grad) meet the same refusal
    rate = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    through_n, _ = _sparse_problem(nonlinear=lambda t, y: -rate * y**3)
    with pytest.raises(ValueError, match=r"requires grad.*does not carry gradients"):
        expint.solve(through_n, y0.detach(), (0.0, 0.1), scheme="krogstad", n_steps=4)


@pytest.mark.parametrize("scheme", ["exprb32", "exprb43"])
@pytest.mark.parametrize("through", ["y0", "N"])
def test_exponential_rosenbrock_refuses_to_record_gradients(scheme, through):
    """An exponential Rosenbrock step takes φ(hJ_n) of its formed Jacobian on the host,
    so autograd sees ``J_n`` as a constant.  Before this refusal the gradient came back
    silently wrong: d/dθ of the final sum for ``N = θ sin y`` (8 unknowns, ``Diagonal``)
    was 0.20395 against 0.20306 by central differences and by `krogstad43`'s autograd
    (0.4 %; a scratch check).  Now a clear ValueError, for gradients entering through
    ``y0`` and through a parameter of ``N``; under ``torch.no_grad()`` the run goes
    through and equals the one on detached tensors."""
    theta = torch.tensor(0.7, dtype=torch.float64, requires_grad=through == "N")
    y0 = torch.linspace(0.1, 1.0, 8, dtype=torch.float64, requires_grad=through == "y0")
    d = expint.Diagonal(-torch.arange(1.0, 9.0, dtype=torch.float64))
    prob = expint.SemilinearProblem(d, lambda t, y: theta * torch.sin(y))
    kw = {"scheme": scheme, "rtol": 1e-6, "atol": 1e-8}
    with pytest.raises(ValueError, match=rf"{scheme}.*autograd cannot follow.*torch.no_grad"):
        expint.solve(prob, y0, (0.0, 1.0), **kw)
    with torch.no_grad():
        kept = expint.solve(prob, y0, (0.0, 1.0), **kw).y[-1]
    detached = expint.SemilinearProblem(d, lambda t, y: theta.detach() * torch.sin(y))
    np.testing.assert_array_equal(kept, expint.solve(detached, y0.detach(), (0.0, 1.0), **kw).y[-1])


@pytest.mark.parametrize("scheme", ["krogstad43", "hochost43", "whalen53"])
def test_per_sample_steps_carry_gradients_to_the_linear_part(scheme):
    """``batch_steps="independent"`` with a ``Diagonal`` part that requires grad: the
    runner wrote accepted members into its working copies in place, which torch
    refused at ``backward`` ("modified by an inplace operation") as soon as the
    coefficients carried gradients (a ``y0`` that required grad went through: its
    products with constant coefficients save no values).  The gradient with respect to
    the diagonal now matches central differences, for the final states and for a dense
    output query; members take different steps (their scales differ by 4×)."""
    base = -torch.tensor([1.0, 4.0, 9.0, 30.0], dtype=torch.float64)
    y0 = torch.tensor([[0.1, 0.4, -0.3, 0.8]], dtype=torch.float64) * torch.tensor([[1.0], [2.0], [0.5]])

    def objective(scale, dense: bool):
        prob = expint.SemilinearProblem(
            expint.Diagonal(base * scale), lambda t, y: torch.sin(y) + torch.cos(3 * t) + 0 * y
        )
        kw = {"scheme": scheme, "rtol": 1e-7, "atol": 1e-9, "batch_steps": "independent"}
        sol = expint.solve(prob, y0, (0.0, 1.0), dense_output=dense, **kw)
        return (sol.sol(0.6) if dense else sol.y[-1]).sum()

    for dense in (False, True):
        scale = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(objective(scale, dense), scale)
        eps = 1e-6
        with torch.no_grad():
            up, down = (
                objective(torch.tensor(0.7 + s, dtype=torch.float64), dense).item() for s in (eps, -eps)
            )
        assert grad.item() == pytest.approx((up - down) / (2 * eps), rel=1e-6)


@pytest.mark.parametrize(
    ("scheme", "kw"), [("etdrk4", {"n_steps": 20}), ("krogstad43", {"rtol": 1e-10, "atol": 1e-12})]
)
def test_event_states_carry_the_event_times_derivative(scheme, kw):
    """``y_events`` is differentiated as the state at the located time ``t*(p)``: the
    gradient includes ``ẏ dt*/dp`` (implicit function theorem, `expint._events`).
    Before, it held ``t*`` fixed: 1.70 instead of 4.87 for this objective with
    ``etdrk4`` (a scratch check; the located time moves by ``dt*/dθ ≈ −0.89``).
    Against central differences of the whole run, where the located time moves; the
    states themselves are those of a run without gradients, bit for bit; a terminal
    event's final state gets the same term."""
    base = -0.3 * torch.arange(1.0, 9.0, dtype=torch.float64)
    y0 = torch.linspace(0.1, 1.0, 8, dtype=torch.float64)

    def crossing(t, y):
        return y[0] - 0.5

    def run(theta, terminal=False):
        crossing.terminal = terminal
        prob = expint.SemilinearProblem(
            expint.Diagonal(base), lambda t, y: theta * torch.sin(y) + math.cos(3 * t)
        )
        return expint.solve(prob, y0, (0.0, 1.0), scheme=scheme, events=crossing, **kw)

    for terminal in (False, True):
        theta = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
        sol = run(theta, terminal)
        state = sol.y[-1] if terminal else sol.y_events[0][0]
        (grad,) = torch.autograd.grad(state[1:].sum(), theta)
        eps = 1e-6
        with torch.no_grad():
            ends = [run(torch.tensor(0.7 + s, dtype=torch.float64), terminal) for s in (eps, -eps)]
            plain = run(torch.tensor(0.7, dtype=torch.float64), terminal)
        fd = sum(
            (e.y[-1] if terminal else e.y_events[0][0])[1:].sum().item() * sgn
            for e, sgn in zip(ends, (1, -1), strict=True)
        )
        assert grad.item() == pytest.approx(fd / (2 * eps), rel=1e-6)
        assert torch.equal(state.detach(), plain.y[-1] if terminal else plain.y_events[0][0])
        assert abs(ends[0].t_events[0][0] - ends[1].t_events[0][0]) > 1e-7  # the time does move
