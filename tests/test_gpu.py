"""Checks that need a CUDA device (skipped without one; CI has none).

Run on a GPU machine: ``python -m pytest -q tests/test_gpu.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import expint
from expint.diffusion import DiscreteVP, Sampler, grid, toy

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_solve_blow_up_on_the_gpu_names_the_step():
    prob = expint.SemilinearProblem(
        expint.Diagonal(torch.tensor([-1.0], dtype=torch.float64, device="cuda")), lambda t, y: y**3
    )
    y0 = torch.tensor([3.0], dtype=torch.float64, device="cuda")
    with pytest.warns(RuntimeWarning, match="non-finite in step 7"):
        sol = expint.solve(prob, y0, (0.0, 10.0), scheme="etdrk4", dt=0.01)
    assert not sol.success and "(t = 0.07 to 0.08)" in sol.message and sol.stats["steps"] == 8


@cuda
def test_sampler_nan_check_on_the_gpu_without_syncs_inside():
    sch = DiscreteVP.from_betas()
    mix = toy.GaussianMixture.random(sch, shape=(3, 8, 8))
    x = torch.randn(8, 3, 8, 8, device="cuda")
    ts = grid(sch, 10, final_zero=True)
    s = Sampler(sch, ts, "dpmpp3m_pc")
    ref = s(mix, x.cpu())
    s(mix, x)  # the first run on a device moves the coefficients there (a synchronising copy)
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = s(mix, x, check_finite=False)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-4, atol=1e-4)
    # the prior flow with a mean on the device: its values are checked once, when the
    # sampler is built, not on every call (that check would read the device)
    skip = Sampler(sch, grid(sch, 10, t_start=900.0, final_zero=True), "dpmpp3m_pc", prior_from=999.0,
                   prior_mean=torch.zeros(3, 8, 8, device="cuda"))  # fmt: skip
    skip(mix, x)
    torch.cuda.set_sync_debug_mode("error")
    try:
        skip(mix, x, check_finite=False)
    finally:
        torch.cuda.set_sync_debug_mode(0)

    def nan_late(xs, t):
        e = mix(xs, t)
        return e * float("nan") if float(t[0]) < 300 else e

    with pytest.raises(ValueError, match="non-finite at step"):
        s(nan_late, x)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="x_T contains NaN or inf"):
        s(mix, bad)


@cuda
def test_expint_scheduler_half_precision_on_the_gpu():
    from expint.diffusion.integrations.diffusers import ExpintScheduler

    sched = ExpintScheduler(method="dpmpp2m")
    sched.set_timesteps(10, device="cuda")
    mix = toy.GaussianMixture.random(sched.schedule, shape=(3, 8, 8))
    x = torch.randn(4, 3, 8, 8, device="cuda")

    def run(latents, dtype):
        for t in sched.timesteps:
            out = mix(latents.float(), torch.full((4,), float(t), device="cuda")).to(dtype)
            latents = sched.step(out, t, latents).prev_sample
        return latents

    full = run(x, torch.float32)
    sched.set_timesteps(10, device="cuda")
    half = run(x.half(), torch.float16)
    assert half.dtype == torch.float16 and half.device.type == "cuda"
    err = float((half.float() - full).abs().max())
    assert err < 2e-2 * float(full.abs().max()), err
    assert np.isfinite(err)


def _cuda_laplacian(n: int):
    """The 5-point Laplacian of tests' Krylov benchmarks: scipy CSR and torch CSR on
    the GPU."""
    import scipy.sparse as sp

    h = 1.0 / (n + 1)
    ring = sp.diags([np.ones(n - 1), -2 * np.ones(n), np.ones(n - 1)], [-1, 0, 1]) / h**2
    a = (0.01 * (sp.kron(ring, sp.eye(n)) + sp.kron(sp.eye(n), ring))).tocoo()
    at = torch.sparse_coo_tensor(np.vstack([a.row, a.col]), a.data, size=a.shape, device="cuda")
    return a.tocsr(), at.coalesce().to_sparse_csr()


@cuda
@pytest.mark.parametrize(("hermitian", "method"), [(None, "krylov"), (False, "krylov"), (None, "chebyshev")])
def test_phiv_on_a_cuda_sparse_matrix_matches_the_cpu(hermitian, method):
    """A CSR Laplacian on the GPU, Lanczos, Arnoldi and Chebyshev, φ-combination of a
    block of two rows: the result stays on the device and matches scipy's matrix on
    the CPU."""
    n = 64
    a, at = _cuda_laplacian(n)
    rng = np.random.default_rng(0)
    vs = [rng.standard_normal((2, n * n)) for _ in range(3)]
    ref = expint.phiv(a, vs, 0.05, tol=1e-10).w
    tvs = [torch.from_numpy(v).cuda() for v in vs]
    w, info = expint.phiv(at, tvs, 0.05, tol=1e-10, hermitian=hermitian, method=method)
    assert w.device.type == "cuda" and info.chebyshev is (method == "chebyshev")
    assert info.lanczos is (hermitian is None and method == "krylov")
    err = np.linalg.norm(w.cpu().numpy() - ref) / np.linalg.norm(ref)
    assert err < 1e-8, err


@cuda
def test_chebyshev_phiv_synchronises_a_fixed_number_of_times():
    """The Chebyshev loop on the GPU reads nothing back: the synchronising operations
    of a call (norms, the interval, the first product's check) do not grow with the
    number of terms (8 and 22 products here, counted on the CPU)."""
    import warnings

    n = 64
    _, at = _cuda_laplacian(n)
    v = torch.from_numpy(np.random.default_rng(1).standard_normal(n * n)).cuda()
    counts = []
    for t in (0.003, 0.05):
        expint.phiv(at, [v], t, tol=1e-10, method="chebyshev")  # warm-up
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                _, info = expint.phiv(at, [v], t, tol=1e-10, method="chebyshev")
        finally:
            torch.cuda.set_sync_debug_mode(0)
        syncs = sum("synchroniz" in str(x.message) for x in seen)
        counts.append((info.matvecs, syncs))
    (few, first), (many, second) = counts
    assert many >= 2 * few and second <= first + 2, counts


@cuda
def test_dense_output_on_the_gpu_matches_numpy():
    """Adams dense output and per-member interpolants of an independent-steps batch on
    CUDA tensors (the same body runs on torch's CPU in tests/test_dense_output.py)."""
    from _device_checks import dense_output_matches_numpy

    dense_output_matches_numpy(torch, "cuda")


@cuda
def test_rosenbrock_formed_jacobian_on_the_gpu_matches_numpy():
    """``torch.func.jacfwd`` on CUDA, φ-functions of ``J_n`` on the host, applied on the
    device (the same body runs on torch's CPU in tests/test_rosenbrock.py)."""
    from _device_checks import rosenbrock_formed_jacobian_matches_numpy

    rosenbrock_formed_jacobian_matches_numpy(torch, "cuda")
