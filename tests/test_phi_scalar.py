"""Element-wise φ_k against 50-digit mpmath, identities and input errors."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from _optional import BACKENDS, needs_torch, torch
from hypothesis import given, settings
from hypothesis import strategies as st

import expint
from mpref import phi_scalar, phi_scalar_array, relative_error

KMAX = 8
# exp(z) below the smallest normal float64 cannot be represented to relative
# accuracy at all; there the error is measured against this absolute floor instead.
TINY64 = np.finfo(np.float64).tiny
TINY32 = float(np.finfo(np.float32).tiny)


def _real_grid() -> np.ndarray:
    mags = np.concatenate([[1e-300, 1e-200, 1e-100, 1e-30, 1e-16, 1e-8], np.logspace(-6, 5, 45)])
    pos = mags[mags <= 700]
    return np.concatenate([-mags, [0.0], pos, [700.0, -1e5]])


def _complex_grid() -> np.ndarray:
    radii = np.concatenate([[1e-300, 1e-100, 1e-12], np.logspace(-6, 4, 26)])
    angles = np.linspace(0.0, np.pi, 13)
    z = (radii[:, None] * np.exp(1j * angles)[None, :]).ravel()
    axis = 1j * np.logspace(-8, 4, 25)
    extra = np.array([700 + 1e4j, 700 + 3j, -1e4 + 1e4j, 650 - 200j, 1e-300j])
    z = np.concatenate([z, axis, -axis, extra])
    return z[z.real <= 700]


@pytest.fixture(scope="module")
def real_ref():
    z = _real_grid()
    return z, [phi_scalar_array(k, z) for k in range(KMAX + 1)]


@pytest.fixture(scope="module")
def complex_ref():
    z = _complex_grid()
    return z, [phi_scalar_array(k, z) for k in range(KMAX + 1)]


@pytest.mark.parametrize("family", ["real_ref", "complex_ref"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_grid_float64(family, backend, request):
    z, refs = request.getfixturevalue(family)
    arg = torch.from_numpy(z) if backend == "torch" else z
    vals = expint.phi_all(KMAX, arg)
    vals = vals.numpy() if backend == "torch" else vals
    for k in range(KMAX + 1):
        err = relative_error(vals[k], refs[k], floor=TINY64 * 1e14)
        assert err.max() <= 1e-14, (k, z[np.argmax(err)], err.max())


@needs_torch
def test_numpy_and_torch_agree(complex_ref):
    z, _ = complex_ref
    a = expint.phi_all(KMAX, z)
    b = expint.phi_all(KMAX, torch.from_numpy(z)).numpy()
    # different libm implementations: both are within 1e-14 of mpmath, so of each other
    np.testing.assert_allclose(a, b, rtol=2e-14, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
@pytest.mark.parametrize("backend", BACKENDS)
def test_single_precision(dtype, backend):
    z = _complex_grid() if dtype == np.complex64 else _real_grid()
    z = z[np.abs(z) < 80].astype(dtype)  # keep values inside float32's range
    arg = torch.from_numpy(z) if backend == "torch" else z
    vals = expint.phi_all(KMAX, arg)
    assert vals.dtype == (torch.from_numpy(z).dtype if backend == "torch" else z.dtype)
    vals = vals.numpy() if backend == "torch" else vals
    for k in range(KMAX + 1):
        ref = phi_scalar_array(k, z.astype(np.complex128 if dtype == np.complex64 else np.float64))
        err = relative_error(
            vals[k].astype(np.complex128 if dtype == np.complex64 else np.float64), ref, floor=TINY32 * 1e6
        )
        assert err.max() <= 1e-6, (k, err.max())


finite_real = st.floats(min_value=-1e5, max_value=700, allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(z=finite_real, k=st.integers(min_value=0, max_value=KMAX))
def test_hypothesis_real(z, k):
    val = expint.phi(k, z)
    ref = phi_scalar(k, z)
    err = relative_error(np.array([val]), np.array([ref], dtype=object), floor=TINY64 * 1e14)[0]
    assert err <= 1e-14


def _condition(k: int, z: complex) -> float:
    """|z φ_k'(z) / φ_k(z)| with φ_k' = φ_k − k φ_{k+1}: the relative condition number."""
    fk, fk1 = phi_scalar(k, z), phi_scalar(k + 1, z)
    with mp.workdps(30):
        return float(abs(z * (fk - k * fk1) / fk)) if fk != 0 else float("inf")


@settings(max_examples=150, deadline=None)
@given(
    r=st.floats(min_value=1e-300, max_value=1e4),
    theta=st.floats(min_value=-math.pi, max_value=math.pi),
    k=st.integers(min_value=0, max_value=KMAX),
)
def test_hypothesis_complex(r, theta, k):
    """≤ 1e-14 relative, except within the conditioning of φ_k: next to a complex zero of
    φ_k (k ≥ 2; e.g. φ_2 vanishes at 2.0888 + 7.4615i) even the exact value of a rounded
    input moves by κ·eps relative, so no float algorithm can promise 1e-14 there."""
    z = complex(r * math.cos(theta), r * math.sin(theta))
    if z.real > 700:
        return
    val = expint.phi(k, z)
    ref = phi_scalar(k, z)
    err = relative_error(np.array([val]), np.array([ref], dtype=object), floor=TINY64 * 1e14)[0]
    assert err <= max(1e-14, 16 * 2.2e-16 * _condition(k, z))


def test_near_a_complex_zero_the_error_follows_the_condition_number():
    z0 = complex(2.088843015613044, 7.461489285654254)  # a zero of φ_2 (mpmath findroot)
    for d in (1e-3, 1e-6, 1e-9):
        z = z0 + d * abs(z0)
        err = relative_error(np.array([expint.phi(2, z)]), np.array([phi_scalar(2, z)], dtype=object))[0]
        assert err <= 16 * 2.2e-16 * _condition(2, z)


def test_values_at_zero_are_inverse_factorials():
    for k in range(KMAX + 1):
        assert expint.phi(k, 0.0) == pytest.approx(1 / math.factorial(k), rel=0, abs=0)
        assert expint.phi(k, 0j) == 1 / math.factorial(k)


def test_recurrence_identity():
    rng = np.random.default_rng(0)
    z = rng.uniform(-50, 50, 200) + 1j * rng.uniform(-50, 50, 200)
    p = expint.phi_all(KMAX, z)
    for k in range(KMAX):
        lhs = z * p[k + 1] + 1 / math.factorial(k)
        # the identity can only hold to rounding relative to the size of its terms
        scale = np.abs(z * p[k + 1]) + 1 / math.factorial(k)
        assert np.all(np.abs(lhs - p[k]) <= 1e-14 * scale)


def test_conjugate_symmetry():
    rng = np.random.default_rng(1)
    z = rng.normal(size=300) * 30 + 1j * rng.normal(size=300) * 300
    p = expint.phi_all(KMAX, z)
    q = expint.phi_all(KMAX, np.conj(z))
    np.testing.assert_array_equal(np.conj(p), q)


def test_large_negative_limit_and_infinities():
    for k in range(1, KMAX + 1):
        x = 1e12
        assert expint.phi(k, -x) == pytest.approx(1 / (math.factorial(k - 1) * x), rel=1e-10)
        assert expint.phi(k, -math.inf) == 0.0
        assert expint.phi(k, math.inf) == math.inf
    assert expint.phi(0, -math.inf) == 0.0


def test_no_overflow_where_value_is_finite():
    # e^730 overflows float64, φ_8(730) = e^730/730^8 (1 + …) ≈ 2e294 does not
    val = expint.phi(8, 730.0)
    with mp.workdps(50):
        ref = phi_scalar(8, 730.0)
    assert np.isfinite(val)
    assert abs(val - float(ref)) / float(ref) < 1e-14
    assert expint.phi(0, 730.0) == math.inf


_EXTREMES = [0.0, 1e-300, -1.0, 701.0, 730.0, 1e3, -1e12, math.inf, -math.inf, 5.0 + 1e4j, -math.inf + 2j]


@settings(max_examples=60, deadline=None)
@given(
    entries=st.lists(st.sampled_from(_EXTREMES) | st.floats(-800, 800), min_size=1, max_size=6),
    k=st.integers(0, 4),
)
def test_an_entry_is_unaffected_by_its_neighbours(entries, k):
    """φ acts entry by entry: an array's values equal those of each entry alone (to
    rounding: the Taylor degree follows the largest small entry), also where some other
    entry needs the overflow-safe path (Re z > 700) and one is at −inf (whose shift once
    came out NaN there)."""
    z = np.array(entries, dtype=complex if any(isinstance(e, complex) for e in entries) else float)
    together = np.asarray(expint.phi_all(k, z))
    alone = np.stack([np.asarray(expint.phi_all(k, z[i : i + 1]))[:, 0] for i in range(z.size)], axis=1)
    np.testing.assert_allclose(together, alone, rtol=1e-14, atol=0)
    assert not np.isnan(together).any(), (entries, together)


def test_imaginary_parts_kept_on_imaginary_axis():
    y = np.array([1e-3, 1.0, 10.0, 1e3])
    p = expint.phi(2, 1j * y)
    assert np.all(np.abs(p.imag) > 0)


@needs_torch
def test_keeps_shape_dtype_device_and_scalars():
    z = torch.linspace(-5, 5, 12, dtype=torch.float32).reshape(3, 4)
    out = expint.phi(3, z)
    assert out.shape == z.shape and out.dtype == torch.float32 and out.device == z.device
    assert expint.phi_all(2, z).shape == (3, 3, 4)
    assert isinstance(expint.phi(1, 0.5), np.ndarray) or np.isscalar(expint.phi(1, 0.5))
    assert np.asarray(expint.phi(1, 0.5)).dtype == np.float64


@pytest.mark.parametrize(
    ("k", "z", "exc", "match"),
    [
        (-1, 1.0, ValueError, "k must be a non-negative integer"),
        (1.5, 1.0, TypeError, "k must be a non-negative integer"),
        (True, 1.0, TypeError, "k must be"),
        (1, np.array([1, 2]), TypeError, "integer dtype"),
        pytest.param(
            1, torch and torch.tensor([1, 2]), TypeError, "integer dtype", marks=needs_torch, id="torch-int"
        ),
        (1, np.array([1.0, np.nan]), ValueError, "NaN"),
        (1, "abc", TypeError, "z must"),
    ],
)
def test_bad_input(k, z, exc, match):
    with pytest.raises(exc, match=match):
        expint.phi(k, z)


def test_lower_indices_by_backward_recurrence_match_their_own_series():
    """``phi_all(K)`` sums the Taylor series for φ_K only and gets φ_k, k < K, by
    ``φ_k = z φ_{k+1} + 1/k!`` inside the discs; ``phi_all(k)`` sums φ_k's own series."""
    mags = np.concatenate([np.logspace(-12, 0.9, 200), np.linspace(0.5, 8.0, 200)])
    z = np.concatenate([mags * r for r in (-1.0, 1j, np.exp(0.75j * np.pi), np.exp(2j), 1.0)])
    high = expint.phi_all(8, z)
    for k in range(1, 8):
        own = expint.phi_all(k, z)[k]
        np.testing.assert_allclose(high[k], own, rtol=1e-15, atol=0)
