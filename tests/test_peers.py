"""expint against independent implementations of the same formulas.

A peer that implements a method under another name gives a check that no test written
from our own derivation can: a wrong coefficient in a tableau, a misread convention
(k-diffusion's σ, its LMS start-up) or an off-by-one in a step loop shows as a
difference far above rounding.  The peers are installed for the tests by `make test`
(rkstiff from the ``test`` extra; k-diffusion's sampling module with ``--no-deps``,
loaded by ``benchmarks/_kdiffusion.py`` without its training dependencies); each test
skips where its peer is missing.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import expint
from expint import problems

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _kdiffusion import load_sampling  # noqa: E402

from expint.diffusion import (  # noqa: E402
    EDM,
    RhoRK,
    grid,
    toy,
)
from expint.diffusion.integrations import sample_expint  # noqa: E402

KDIFF = load_sampling()
needs_kdiffusion = pytest.mark.skipif(KDIFF is None, reason="needs k-diffusion (make test installs it)")
needs_rkstiff = pytest.mark.skipif(
    importlib.util.find_spec("rkstiff") is None, reason="needs rkstiff (the test extra installs it)"
)


@needs_rkstiff
@pytest.mark.parametrize(
    ("peer", "scheme", "other"),
    [
        # rkstiff's constant-step ETD4 cites Krogstad (2005); its ETD5 is "the fixed-step
        # form of the adaptive ETD(3,5)" of Whalen, Brio & Moloney (2015)
        ("ETD4", "krogstad", "etdrk4"),
        ("ETD5", "whalen53", "hochost4"),
        # IF4: the integrating-factor (Lawson) classical Runge–Kutta method
        ("IF4", "lawson_rk4", "krogstad"),
    ],
)
def test_fixed_step_schemes_are_rkstiffs_on_kuramoto_sivashinsky(peer, scheme, other):
    """On a diagonal linear part the two implementations agree to rounding, and a
    different scheme of the same order does not (so the comparison tells schemes
    apart)."""
    import rkstiff.etd4
    import rkstiff.etd5
    import rkstiff.if4

    cls = {"ETD4": rkstiff.etd4.ETD4, "ETD5": rkstiff.etd5.ETD5, "IF4": rkstiff.if4.IF4}[peer]
    bp = problems.kuramoto_sivashinsky()
    d, y0 = np.asarray(bp.problem.linear.d), np.asarray(bp.y0)
    t_end, h = 5.0, 1 / 16
    solver = cls(lin_op=d, nl_func=lambda u: bp.problem.nonlinear(0.0, u), loglevel="ERROR")
    theirs = solver.evolve(y0.astype(complex), 0.0, t_end, h, store_data=False)
    scale = np.abs(theirs).max()
    ours = expint.solve(bp.problem, y0, (0.0, t_end), scheme=scheme, dt=h).y[-1]
    assert np.abs(ours - theirs).max() / scale < 1e-12
    different = expint.solve(bp.problem, y0, (0.0, t_end), scheme=other, dt=h).y[-1]
    assert np.abs(different - theirs).max() / scale > 1e-11


def _mixture_run():
    sch = EDM(0.002, 80.0)
    mix = toy.GaussianMixture([[1.0, 0.5, 0.0], [-1.0, -0.3, 0.5]], [0.3, 0.5], sch)
    calls = []

    def denoiser(x, sigma):
        calls.append(float(sigma[0]))
        return mix.x0(x, sigma)

    x = torch.randn(32, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    return sch, denoiser, x, calls


def _assert_same_run(peer, method, denoiser, x, sigmas, calls, **options):
    """k-diffusion's ``peer`` and expint's ``method`` from ``x · σ_0``: the same model
    calls (the σ each passed) and the same samples to 1e-12; returns the peer's."""
    theirs = peer(denoiser, x * sigmas[0], sigmas, disable=True, **options)
    their_calls = list(calls)
    calls.clear()
    ours = sample_expint(denoiser, x * sigmas[0], sigmas, disable=True, method=method)
    assert calls == their_calls
    assert float((ours - theirs).abs().max()) < 1e-12 * float(theirs.abs().max())
    return theirs


@needs_kdiffusion
@pytest.mark.parametrize(
    ("peer", "options", "method"),
    [
        ("sample_euler", {}, "ddim"),
        # k-diffusion's LMS of order k interpolates d = ε in σ through k points (degree
        # k − 1) and starts with the points it has: expint's ρAB of degree k − 1
        ("sample_lms", {"order": 2}, "rhoab1"),
        ("sample_lms", {"order": 3}, "rhoab2"),
        ("sample_lms", {}, "rhoab3"),
    ],
)
@pytest.mark.parametrize("final_zero", [True, False])
def test_kdiffusion_samplers_are_expint_methods(peer, options, method, final_zero):
    """The same numbers from the same model calls, on a Karras grid to σ = 0 or to σ_min."""
    sch, denoiser, x, calls = _mixture_run()
    sigmas = torch.as_tensor(grid(sch, 12, "karras", final_zero=final_zero))
    _assert_same_run(getattr(KDIFF, peer), method, denoiser, x, sigmas, calls, **options)


@needs_kdiffusion
def test_kdiffusion_heun_is_rhork2_without_the_stiff_step_guard():
    """k-diffusion's Heun (no churn) is Heun in σ on x: expint's ρRK with the Heun
    tableau once the stiff-step guard is off (``max_stiffness=None``), except on a step
    to σ = 0, where k-diffusion takes one Euler step and expint two DDIM sub-steps.
    With the guard on (``"rhork2"``), steps with ``|Δσ|/σ_next > 1`` differ."""
    sch, denoiser, x, calls = _mixture_run()
    heun = RhoRK("heun", "heun_unguarded", max_stiffness=None)
    sigmas = torch.as_tensor(grid(sch, 12, "karras", final_zero=False))
    theirs = _assert_same_run(KDIFF.sample_heun, heun, denoiser, x, sigmas, calls)
    guarded = sample_expint(denoiser, x * sigmas[0], sigmas, disable=True, method="rhork2")
    assert float((guarded - theirs).abs().max()) > 1e-3 * float(theirs.abs().max())


@needs_kdiffusion
def test_dpmpp2m_is_second_order_like_kdiffusions_but_not_the_same_numbers():
    """``dpmpp2m`` integrates the linear-in-λ x0 interpolant exactly (φ₂ weight);
    DPM-Solver++(2M) replaces that weight by ``φ₁/2``.  Both are second order, so their
    difference shrinks at that order, four times per halving of the steps — not to
    rounding, which docs/coming_from.md says."""
    sch, denoiser, x, _ = _mixture_run()
    gaps = []
    for n in (40, 80, 160):
        sigmas = torch.as_tensor(grid(sch, n, "karras", final_zero=True))
        theirs = KDIFF.sample_dpmpp_2m(denoiser, x * sigmas[0], sigmas, disable=True)
        ours = sample_expint(denoiser, x * sigmas[0], sigmas, disable=True, method="dpmpp2m")
        gaps.append(float((ours - theirs).abs().max()))
    assert gaps[-1] > 1e-8
    orders = np.log2(np.array(gaps[:-1]) / np.array(gaps[1:]))
    assert np.all((orders > 1.6) & (orders < 2.6)), orders
