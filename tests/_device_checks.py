"""Checks shared by the CPU suite and `tests/test_gpu.py`: the same body runs on torch's
CPU here and on CUDA where a GPU is lent."""

from __future__ import annotations

import numpy as np

import expint
from expint import problems


def dense_output_matches_numpy(torch, device: str) -> None:
    """Dense output on a torch device agrees with numpy: the fixed-step Adams scheme and
    per-sample adaptive steps on a batch (KS with 32 modes, complex Fourier states)."""
    ks = problems.kuramoto_sivashinsky(32)
    times = np.array([0.11, 0.9, 1.87])
    on = torch.as_tensor(ks.y0, device=device)
    kw = {"scheme": "etdab5", "dt": 1 / 16, "dense_output": True}
    got = expint.solve(ks.problem, on, (0.0, 2.0), **kw).sol(torch.as_tensor(times, dtype=torch.float64))
    want = expint.solve(ks.problem, ks.y0, (0.0, 2.0), **kw).sol(times)
    assert got.device.type == torch.device(device).type
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-10, atol=1e-12)
    batch = np.stack([ks.y0, 0.3 * ks.y0])
    kw = {
        "scheme": "krogstad43",
        "rtol": 1e-6,
        "atol": 1e-8,
        "batch_steps": "independent",
        "dense_output": True,
    }
    got = expint.solve(ks.problem, torch.as_tensor(batch, device=device), (0.0, 2.0), **kw).sol(1.23)
    want = expint.solve(ks.problem, batch, (0.0, 2.0), **kw).sol(1.23)
    assert got.shape == batch.shape
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-10, atol=1e-12)


def rosenbrock_formed_jacobian_matches_numpy(torch, device: str) -> None:
    """``exprb43`` on a tensor state forms ``∂N/∂y`` by ``torch.func.jacfwd`` on the
    state's device (on ``[Re u, Im u]`` for a complex one), takes the φ-functions of
    ``J_n`` on the host and applies them on the device; the result and its dense output
    are the numpy run's (Allen–Cahn, 19 real unknowns; the NLS soliton, 32 complex)."""
    for bp, t_end in ((problems.allen_cahn(), 2.0), (problems.nls(32, length=20.0), 0.5)):
        bare = expint.SemilinearProblem(bp.problem.linear, bp.problem.nonlinear)  # no jvp: jacfwd
        kwargs = {"scheme": "exprb43", "rtol": 1e-6, "atol": 1e-6, "dense_output": True}
        want = expint.solve(bp.problem, bp.y0, (0.0, t_end), **kwargs)
        got = expint.solve(bare, torch.as_tensor(bp.y0, device=device), (0.0, t_end), **kwargs)
        assert got.y.device.type == torch.device(device).type
        assert got.stats["krylov_matvecs"] == 0 and got.stats["steps"] == want.stats["steps"]
        np.testing.assert_allclose(got.y[-1].cpu().numpy(), want.y[-1], rtol=1e-12, atol=1e-12)
        probe = 0.37 * t_end
        np.testing.assert_allclose(got.sol(probe).cpu().numpy(), want.sol(probe), rtol=1e-12, atol=1e-12)
