"""Built-in problems: literature numbers, exactness of manufactured solutions, backends."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _optional import needs_torch, torch

import expint
from expint import problems


def test_ks_matches_kassam_trefethen_numbers():
    """REFERENCE.md: etdrk4 at T = 10 has relative max error 6.7e-6 (h = 1/4) and
    1.8e-9 (h = 1/64) against a fine reference."""
    bp = problems.kuramoto_sivashinsky()
    ref = bp.to_physical(expint.solve(bp.problem, bp.y0, (0, 10), scheme="hochost4", dt=1 / 512).y[-1])
    for h, expected in [(1 / 4, 6.7e-6), (1 / 64, 1.8e-9)]:
        u = bp.to_physical(expint.solve(bp.problem, bp.y0, (0, 10), scheme="etdrk4", dt=h).y[-1])
        err = np.max(np.abs(u - ref)) / np.max(np.abs(ref))
        assert expected / 1.2 <= err <= expected * 1.2


def test_allen_cahn_matches_reference_number():
    """REFERENCE.md: etdrk4 at T = 20, h = 1/4 has error 1.6e-5."""
    bp = problems.allen_cahn()
    ref = expint.solve(bp.problem, bp.y0, (0, 20), scheme="hochost4", dt=1 / 256).y[-1]
    w = expint.solve(bp.problem, bp.y0, (0, 20), scheme="etdrk4", dt=0.25).y[-1]
    assert 1.3e-5 <= np.max(np.abs(w - ref)) <= 1.9e-5
    u = bp.to_physical(w)
    assert np.all(np.abs(u) <= 1.01)  # the solution stays between the two stable states


def test_hochbruck_ostermann_exact_solution_satisfies_the_semidiscrete_ode():
    bp = problems.hochbruck_ostermann()
    for t in (0.0, 0.37, 1.0):
        lhs = bp.exact(t)  # d/dt x(1-x)e^t = x(1-x)e^t
        rhs = bp.problem.rhs(t, bp.exact(t))
        np.testing.assert_allclose(rhs, lhs, atol=1e-9)


def test_kdv_converges_and_conserves_mass():
    bp = problems.kdv()
    runs = {
        n: expint.solve(bp.problem, bp.y0, bp.t_span, scheme="etdrk4", n_steps=n).y[-1]
        for n in (1000, 2000, 4000)
    }
    u = {n: bp.to_physical(v) for n, v in runs.items()}
    e1 = np.max(np.abs(u[1000] - u[4000]))
    e2 = np.max(np.abs(u[2000] - u[4000]))
    assert e2 < e1 / 8
    assert abs(runs[4000][0] - bp.y0[0]) <= 1e-10 * abs(bp.y0[0])  # the mean is invariant


def test_burgers_mass_and_decay():
    bp = problems.burgers()
    sol = expint.solve(bp.problem, bp.y0, bp.t_span, scheme="krogstad", dt=bp.dt)
    assert abs(sol.y[-1][0] - bp.y0[0]) <= 1e-12 * abs(bp.y0[0])
    assert np.max(bp.to_physical(sol.y[-1])) < np.max(bp.to_physical(bp.y0))  # viscous decay of the peak


@needs_torch
def test_gray_scott_numpy_and_torch_agree():
    bp = problems.gray_scott(16)
    a = expint.solve(bp.problem, bp.y0, (0, 20), scheme="etdrk4", dt=1.0).y[-1]
    b = expint.solve(bp.problem, torch.from_numpy(bp.y0), (0, 20), scheme="etdrk4", dt=1.0).y[-1]
    np.testing.assert_allclose(b.numpy(), a, rtol=1e-12, atol=1e-10)
    u = bp.to_physical(a)
    assert u.shape == (16, 16) and np.all((u > 0) & (u < 1.1))


@needs_torch
@pytest.mark.parametrize(
    "factory",
    [lambda: problems.gray_scott(16, variant="fd"), lambda: problems.allen_cahn_2d(16, variant="fd")],
)
def test_finite_difference_problems_run_on_torch_states(factory):
    """The finite-difference variants hold a scipy matrix; on torch states (float64 and
    float32) `Sparse` acts through a torch CSR copy made once per device and precision.
    They used to fail with "A (matvec) returned ndarray for a Tensor vector"."""
    bp = factory()
    a = expint.solve(bp.problem, bp.y0, (0, 1), scheme="krogstad", n_steps=4).y[-1]
    b = expint.solve(bp.problem, torch.from_numpy(bp.y0), (0, 1), scheme="krogstad", n_steps=4).y[-1]
    np.testing.assert_allclose(b.numpy(), a, rtol=1e-12, atol=1e-12 * np.abs(a).max())
    c = expint.solve(bp.problem, torch.from_numpy(bp.y0).float(), (0, 1), scheme="krogstad", n_steps=4).y[-1]
    assert c.dtype == torch.float32
    np.testing.assert_allclose(c.double().numpy(), a, atol=1e-4 * np.abs(a).max())


def test_gray_scott_real_fft_and_finite_differences_agree():
    """Real-FFT state (2·n·(n/2+1) entries) and the sparse 5-point variant describe the
    same PDE: equal start, the same reaction term to rounding, and linear parts that
    differ on a smooth field by the 5-point stencil's O(h²) error (a quarter when n
    doubles).  (Solutions from the discontinuous start differ by more as n grows: the
    two Laplacians damp the square's unresolved edge modes differently.)"""
    gaps = []
    for n in (32, 64):
        a, b = problems.gray_scott(n), problems.gray_scott(n, variant="fd")
        assert a.y0.size == 2 * n * (n // 2 + 1) and np.iscomplexobj(a.y0)
        assert isinstance(b.problem.linear, expint.Sparse) and b.y0.size == 2 * n * n
        np.testing.assert_allclose(a.to_physical(a.y0), b.to_physical(b.y0), atol=1e-15)
        np.testing.assert_allclose(a.lift(b.y0), a.y0, atol=1e-12)
        y = b.y0 + 0.1 * np.cos(np.arange(2 * n * n))
        np.testing.assert_allclose(
            a.lift(b.problem.nonlinear(0.0, y)), a.problem.nonlinear(0.0, a.lift(y)), atol=1e-11
        )
        x = 2 * np.pi * np.arange(n) / n
        smooth = np.sin(x)[:, None] * np.cos(2 * x)[None, :]
        p = np.concatenate([smooth.ravel(), 2 * smooth.ravel()])
        fourier = a.problem.linear.d * a.lift(p)
        gap = np.max(np.abs(a.lift(b.problem.linear.matvec(p)) - fourier)) / np.max(np.abs(fourier))
        # the stencil's symbol on the modes (1, 2): 4 sin²(θ/2) + 4 sin²(θ) against 5 θ², θ = 2π/n
        th = 2 * np.pi / n
        symbol = (4 * np.sin(th / 2) ** 2 + 4 * np.sin(th) ** 2) / (5 * th**2)
        assert gap == pytest.approx(1 - symbol, rel=1e-6)
        gaps.append(gap)
    assert 3.9 < gaps[0] / gaps[1] < 4.1, gaps
    with pytest.raises(ValueError, match="variant must be"):
        problems.gray_scott(8, variant="spectral")


def test_nonstiff_problem_is_deterministic():
    a, b = problems.nonstiff(), problems.nonstiff()
    np.testing.assert_array_equal(a.problem.linear.a, b.problem.linear.a)


def test_plot_spacetime(tmp_path):
    bp = problems.burgers(32)
    sol = expint.solve(bp.problem, bp.y0, bp.t_span, scheme="etdrk4", dt=0.05, t_eval=np.linspace(0, 1, 11))
    path = problems.plot_spacetime(bp, sol, tmp_path / "b.png")
    assert path.stat().st_size > 5_000


@pytest.mark.parametrize(
    ("factory", "kwargs", "match"),
    [
        (problems.kuramoto_sivashinsky, {"n": 127}, "even"),
        (problems.burgers, {"n": 1}, "integer ≥ 2"),
        (problems.hochbruck_ostermann, {"intervals": 2}, "integer ≥ 3"),
        (problems.allen_cahn, {"n": 2.5}, "integer"),
    ],
)
def test_bad_sizes(factory, kwargs, match):
    with pytest.raises(ValueError, match=match):
        factory(**kwargs)


@pytest.mark.parametrize(
    ("factory", "kwargs"),
    [  # each was accepted (a negative diffusion: an ill-posed problem that blows up) or
        # ended in a ZeroDivisionError / an error naming the operator's `d`
        (problems.burgers, {"viscosity": -0.1}),
        (problems.burgers, {"viscosity": float("nan")}),
        (problems.kdv, {"a": -1.0}),
        (problems.allen_cahn, {"eps": 0.0}),
        (problems.allen_cahn_2d, {"n": 8, "diffusion": float("nan")}),
        (problems.gray_scott, {"n": 8, "length": 0.0}),
        (problems.gray_scott, {"n": 8, "du": -1e-5}),
        (problems.gray_scott, {"n": 8, "beta": float("inf")}),
        (problems.nls, {"n": 8, "amplitude": True}),
    ],
)
def test_bad_physical_parameters_are_named(factory, kwargs):
    (name,) = (k for k in kwargs if k != "n")
    with pytest.raises(ValueError, match=f"^{name} must be a finite number"):
        factory(**kwargs)


def test_chebyshev_differentiates_polynomials_exactly():
    x, d = problems.chebyshev(12)
    np.testing.assert_allclose(d @ x**5, 5 * x**4, atol=1e-11)
    assert math.isclose(x[0], 1.0) and math.isclose(x[-1], -1.0)


@pytest.mark.slow  # `make test` runs it; keeps `make test-fast` under a minute
def test_allen_cahn_2d_fourier_and_finite_differences_agree():
    """Same PDE, two discretisations: they differ by the O(h²) error of the 5-point
    Laplacian (here ~2e-3 of a field of size ~0.5), far less than the field moves."""
    a, b = problems.allen_cahn_2d(48), problems.allen_cahn_2d(48, variant="fd")
    assert isinstance(b.problem.linear, expint.Sparse) and np.iscomplexobj(a.y0) and a.y0.size == 48 * 25
    ua0 = a.to_physical(a.y0)
    np.testing.assert_allclose(ua0, b.to_physical(b.y0), atol=1e-15)
    ua = a.to_physical(expint.solve(a.problem, a.y0, (0.0, 1.0), scheme="krogstad", n_steps=20).y[-1])
    ub = b.to_physical(expint.solve(b.problem, b.y0, (0.0, 1.0), scheme="krogstad", n_steps=20).y[-1])
    assert np.max(np.abs(ua - ub)) < 5e-3 < np.max(np.abs(ua - ua0))
    with pytest.raises(ValueError, match="variant must be"):
        problems.allen_cahn_2d(8, variant="spectral")


def test_nls_jacobian_vector_product_matches_central_differences(rng):
    """The exact ∂N·w of the cubic NLS (real-linear in the direction w, so a complex
    direction is tested too) against a central difference."""
    bp = problems.nls(n=64)
    y = bp.y0 * (1 + 0.1j)
    w = rng.standard_normal(64) + 1j * rng.standard_normal(64)
    eps = 1e-6
    fd = (bp.problem.nonlinear(0.0, y + eps * w) - bp.problem.nonlinear(0.0, y - eps * w)) / (2 * eps)
    exact = bp.problem.jvp(0.0, y, w)
    assert np.linalg.norm(exact - fd) <= 1e-8 * np.linalg.norm(fd)


def _central_difference(problem, y, w, eps=1e-6):
    return (problem.nonlinear(0.0, y + eps * w) - problem.nonlinear(0.0, y - eps * w)) / (2 * eps)


def test_allen_cahn_jacobian_matches_central_differences(rng):
    """The 1-D problem's ``jac`` (``diag(1 − 3u²)``, so the Rosenbrock schemes spend no
    evaluations of N on their Jacobian) against central differences, numpy and torch."""
    bp = problems.allen_cahn()
    w = bp.y0 + 0.1 * rng.standard_normal(bp.y0.shape)
    jac = bp.problem.jac(0.0, w)
    for direction in np.eye(len(w))[::5]:
        fd = _central_difference(bp.problem, w, direction)
        np.testing.assert_allclose(jac @ direction, fd, rtol=1e-8, atol=1e-8)
    if torch is not None:
        np.testing.assert_allclose(bp.problem.jac(0.0, torch.from_numpy(w)).numpy(), jac, rtol=1e-15)


@pytest.mark.parametrize("variant", ["fourier", "fd"])
def test_allen_cahn_2d_jacobian_vector_product_matches_central_differences(variant, rng):
    bp = problems.allen_cahn_2d(16, variant=variant)
    y = 5.0 * bp.y0
    field = rng.standard_normal((16, 16))
    # a direction like the state: a real field, or the transform of one
    w = np.fft.rfft2(field).ravel() if variant == "fourier" else field.ravel()
    exact = bp.problem.jvp(0.0, y, w)
    fd = _central_difference(bp.problem, y, w)
    assert np.linalg.norm(exact - fd) <= 1e-8 * np.linalg.norm(fd)


def test_rosenbrock_on_allen_cahn_uses_the_exact_jacobian():
    """With ``jac`` the step spends 4 evaluations of N (exprb43) instead of 4 plus one
    per unknown for difference quotients, and the result is the same to their error."""
    bp = problems.allen_cahn()
    exact = expint.solve(bp.problem, bp.y0, (0.0, 2.0), scheme="exprb43", n_steps=10)
    quotients = expint.SemilinearProblem(bp.problem.linear, bp.problem.nonlinear)
    approx = expint.solve(quotients, bp.y0, (0.0, 2.0), scheme="exprb43", n_steps=10)
    assert exact.stats["nfev"] < approx.stats["nfev"] - 10 * len(bp.y0) + 10
    np.testing.assert_allclose(exact.y[-1], approx.y[-1], rtol=1e-7, atol=1e-8)


def test_builtin_callables_name_their_misuse():
    """``exact(nan)`` gave a NaN state and ``exact("a")`` a math error naming nothing;
    ``to_physical``/``lift`` of a field of the wrong length gave a meaningless result."""
    ho, ks = problems.hochbruck_ostermann(20), problems.kuramoto_sivashinsky(32)
    with pytest.raises(ValueError, match=r"hochbruck_ostermann.exact\(t\) needs a finite time"):
        ho.exact(float("nan"))
    with pytest.raises(TypeError, match="t must be a real number"):
        ho.exact("a")
    with pytest.raises(ValueError, match="to_physical takes a state whose last axis has length 32"):
        ks.to_physical(np.ones(5))
    with pytest.raises(ValueError, match="lift takes a perturbation whose last axis has length 32"):
        ks.lift(np.ones(5))
    # valid calls are unchanged: a batch, a numpy time
    assert ks.to_physical(np.tile(ks.y0, (3, 1))).shape == (3, 32)
    np.testing.assert_array_equal(ho.exact(np.float64(0.5)), ho.exact(0.5))


@pytest.mark.parametrize("name", sorted(problems.PROBLEMS))
def test_each_problems_dt_divides_its_span(name):
    """KdV's ``0.4/N²`` made 983.04 steps of its span and NLS's 0.01 made 314.16, so
    ``solve(bp.problem, bp.y0, bp.t_span, dt=bp.dt)`` was refused ("dt does not
    divide the interval"); ``dt`` is now the largest step at most the literature's that
    does."""
    bp = problems.PROBLEMS[name]()
    literature = {"kdv": 0.4 / 256**2, "nls": 0.01}.get(name, bp.dt)
    steps = (bp.t_span[1] - bp.t_span[0]) / bp.dt
    assert abs(steps - round(steps)) < 1e-9 and bp.dt <= literature
    assert bp.dt > literature * (1 - 1 / steps) * (1 - 1e-12)  # no smaller than it must be
    grid = expint._solve.time_grid(bp.t_span[0], bp.t_span[1], dt=bp.dt, n_steps=None, ts=None)
    assert len(grid) == round(steps) + 1


@needs_torch
@pytest.mark.parametrize("name", sorted(problems.PROBLEMS))
def test_to_physical_returns_the_states_array_type(name):
    """Spectral problems returned a tensor for a tensor state but Allen–Cahn, Gray–Scott,
    NLS, Hochbruck–Ostermann and the non-stiff problem a numpy array (their maps work on
    the host): code written for one problem broke on the next."""
    bp = problems.PROBLEMS[name]()
    host = bp.to_physical(np.asarray(bp.y0))
    state = torch.as_tensor(np.asarray(bp.y0))
    for y in (state, state.to(torch.complex64 if state.is_complex() else torch.float32)):
        u = bp.to_physical(y)
        assert isinstance(u, torch.Tensor) and u.device == y.device and not u.is_complex()
        assert u.dtype == (y.real.dtype if y.is_complex() else y.dtype)
        tol = 1e-12 if y.dtype in (torch.float64, torch.complex128) else 1e-5
        np.testing.assert_allclose(u.double().numpy(), host, rtol=tol, atol=tol * np.abs(host).max())
