"""Gradients through the φ-functions and through `solve` on torch tensors
(docs/operators.md, *Autograd*: `Diagonal` coefficients are computed with the state's array
library, so gradients reach its diagonal and ``y0``)."""

from __future__ import annotations

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
