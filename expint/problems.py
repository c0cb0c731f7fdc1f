"""Built-in test problems with their literature parameters.

Each factory returns a `BuiltinProblem`: the `SemilinearProblem`, the
initial state, the time span and literature step size, the spatial grid, a map from
the state to the physical field, and (where known) the exact solution.  Spectral
problems keep the state in Fourier space (complex); their nonlinear functions work on
numpy arrays and on torch tensors (any device) alike, with leading batch axes.

References: Kassam & Trefethen, SIAM J. Sci. Comput. 26 (2005) for KS, Allen–Cahn,
Burgers, KdV; Hochbruck & Ostermann, SIAM J. Numer. Anal. 43 (2005), Ex. 6.1 for the
parabolic problem; Pearson (1993) / Kassam–Trefethen for Gray–Scott.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._backend import (
    array_namespace,
    as_array,
    concat,
    fft_module,
    is_array,
    is_torch_array,
    same_array_type,
    to_like,
    to_numpy,
)
from ._operators import Dense, Diagonal
from ._problem import SemilinearProblem
from ._validation import check_real

__all__ = [
    "ALIASES",
    "PROBLEMS",
    "BuiltinProblem",
    "allen_cahn",
    "allen_cahn_2d",
    "burgers",
    "chebyshev",
    "gray_scott",
    "hochbruck_ostermann",
    "kdv",
    "kuramoto_sivashinsky",
    "nls",
    "nonstiff",
    "plot_spacetime",
]


@dataclass
class BuiltinProblem:
    """A ready-made problem.

    Attributes
    ----------
    name : str
    problem : SemilinearProblem
    y0 : numpy.ndarray
        Initial state (Fourier coefficients for spectral problems).
    t_span : tuple[float, float]
    dt : float
        The step size used in the literature, or where that does not divide ``t_span``
        into whole steps the largest step below it that does (KdV: Kassam–Trefethen's
        ``0.4/N²`` gives 983.04 steps at N = 256, so ``0.006/984``; NLS: ``π/315``
        instead of 0.01), so that ``solve(..., dt=bp.dt)`` runs as it is.
    x : numpy.ndarray
        Spatial grid of the physical field.
    to_physical : callable
        State (any batch shape) -> real physical field on ``x``, as the state's array
        type (numpy, or a torch tensor on the state's device).
    exact : callable or None
        ``exact(t)`` -> exact state, where known.
    notes : str
    lift : callable
        Maps a real perturbation of the physical field(s) into state space (linear; the
        identity for problems whose state is the field, the FFT for spectral ones).
        Used by ensemble runs to perturb ``y0``.
    lift_size : int
        Length of the last axis `lift` takes: the number of real values of the
        physical field(s), `perturbation_size`; 0 (default) where that is the state's
        length (one real value per state entry).  A real-FFT state holds about half
        as many entries as its field has points.
    """

    name: str
    problem: SemilinearProblem
    y0: np.ndarray
    t_span: tuple[float, float]
    dt: float
    x: np.ndarray
    to_physical: Callable[[Any], Any]
    exact: Callable[[float], np.ndarray] | None = None
    notes: str = ""
    extra: dict = field(default_factory=dict)
    lift: Callable[[Any], Any] = lambda v: v
    lift_size: int = 0

    @property
    def perturbation_size(self) -> int:
        """Length of the real perturbation `lift` takes."""
        return self.lift_size or int(np.shape(self.y0)[-1])

    def __post_init__(self) -> None:
        # the callables are wrapped once so that their misuse is named: a NaN or text
        # time gave a NaN state or a math error, and a field of the wrong length a
        # silently meaningless result
        n = int(np.shape(self.y0)[-1])
        length = abs(self.t_span[1] - self.t_span[0])
        self.dt = length / math.ceil(length / self.dt - 1e-9)
        if self.exact is not None:
            self.exact = _checked_time(self.exact, self.name)
        self.to_physical = _checked_length(self.to_physical, n, f"{self.name}.to_physical", "state")
        self.lift = _checked_length(self.lift, self.perturbation_size, f"{self.name}.lift", "perturbation")

    def __repr__(self) -> str:
        lin = self.problem.linear
        return (
            f"BuiltinProblem({self.name!r}, n={np.shape(self.y0)[-1]}, t_span={self.t_span}, dt={self.dt:g}, "
            f"linear={type(lin).__name__})"
        )


def _checked_time(exact: Callable[[float], Any], name: str) -> Callable[[float], Any]:
    def checked(t: Any) -> Any:
        value = check_real(t, name="t")
        if not math.isfinite(value):
            raise ValueError(f"{name}.exact(t) needs a finite time, got {t!r}")
        return exact(value)

    checked.__doc__, checked.__name__ = exact.__doc__, "exact"
    return checked


def _checked_length(fn: Callable[[Any], Any], n: int, where: str, what: str) -> Callable[[Any], Any]:
    def checked(v: Any) -> Any:
        shape = tuple(getattr(v, "shape", np.shape(v)))
        if not shape or shape[-1] != n:
            raise ValueError(f"{where} takes a {what} whose last axis has length {n}, got shape {shape}")
        out = fn(v)
        # some maps work on the host (Chebyshev boundary values, |ifft|): the result
        # comes back as the input's array type, on its device, in its precision
        if is_array(v) and not same_array_type(out, v):
            out = to_like(out, v)
        return out

    # the method's own name (``to_physical``, ``lift``), which plots and reprs show
    checked.__doc__, checked.__name__ = fn.__doc__, where.rsplit(".", 1)[-1]
    return checked


class _Const:
    """A constant array converted once per (array type, dtype, device) it meets."""

    def __init__(self, arr: np.ndarray):
        self.arr = arr
        self._cache: dict = {}

    def like(self, v: Any) -> Any:
        key = (type(v), v.dtype, getattr(v, "device", None))
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = to_like(self.arr, v)
        return hit


def _fft(v: Any) -> Any:
    return fft_module(v)


def _real(v: Any) -> Any:
    return v.real


def _fourier_quadratic(kfac: np.ndarray) -> Callable[[float, Any], Any]:
    """N(v) = kfac · fft(real(ifft(v))²) on the trailing axis."""
    kc = _Const(kfac)

    def nonlinear(t: float, v: Any) -> Any:
        f = _fft(v)
        u = _real(f.ifft(v))
        return kc.like(v) * f.fft(u * u)

    return nonlinear


def _ifft_real(v: Any) -> Any:
    return _real(_fft(v).ifft(v))


def _fft_last(v: Any) -> Any:
    return _fft(v).fft(v)


def kuramoto_sivashinsky(n: int = 128) -> BuiltinProblem:
    r"""Kuramoto–Sivashinsky $u_t = -u u_x - u_{xx} - u_{xxxx}$ on (0, 32π], periodic.

    Kassam–Trefethen set-up: ``N = n`` Fourier modes, ``u0 = cos(x/16)(1 + sin(x/16))``,
    ``h = 1/4``, ``t ∈ [0, 150]``; ``L = k² − k⁴`` with ``k = [0 … N/2−1, 0, −N/2+1 … −1]/16``
    and ``N(v) = −½ i k fft(real(ifft(v))²)``.  The flow is chaotic by ``t = 150``;
    convergence studies use ``T ≤ 30``.
    """
    _check_size(n, "n", even=True)
    x = 32 * np.pi * np.arange(1, n + 1) / n
    u0 = np.cos(x / 16) * (1 + np.sin(x / 16))
    k = np.concatenate([np.arange(0, n // 2), [0], np.arange(-n // 2 + 1, 0)]) / 16.0
    lin = Diagonal(k**2 - k**4)
    prob = SemilinearProblem(lin, _fourier_quadratic(-0.5j * k), name=f"Kuramoto–Sivashinsky N={n}")
    return BuiltinProblem(
        "kuramoto_sivashinsky",
        prob,
        np.fft.fft(u0),
        (0.0, 150.0),
        0.25,
        x,
        _ifft_real,
        notes="chaotic for t ≳ 60; use T ≤ 30 for error studies",
        lift=_fft_last,
    )


def burgers(n: int = 128, viscosity: float = 0.03) -> BuiltinProblem:
    r"""Viscous Burgers $u_t = λ u_{xx} − ½(u²)_x$ on [−π, π), periodic, λ = 0.03,
    ``u0 = exp(−10 sin²(x/2))``, ``L = −λk²``, ``t ∈ [0, 1]``."""
    _check_size(n, "n", even=True)
    viscosity = _check_positive(viscosity, "viscosity")
    x = 2 * np.pi * np.arange(n) / n - np.pi
    k = np.fft.fftfreq(n, 1.0 / n)
    k[n // 2] = 0.0  # the Nyquist mode of an odd derivative is zeroed
    prob = SemilinearProblem(
        Diagonal(-viscosity * np.fft.fftfreq(n, 1.0 / n) ** 2), _fourier_quadratic(-0.5j * k), name="Burgers"
    )
    u0 = np.exp(-10 * np.sin(x / 2) ** 2)
    return BuiltinProblem("burgers", prob, np.fft.fft(u0), (0.0, 1.0), 1e-2, x, _ifft_real, lift=_fft_last)


def kdv(n: int = 256, a: float = 25.0, b: float = 16.0) -> BuiltinProblem:
    r"""Korteweg–de Vries two-soliton $u_t + u u_x + u_{xxx} = 0$ on [−π, π).

    ``u0 = 3A² sech²(A(x+2)/2) + 3B² sech²(B(x+1)/2)``, A = 25, B = 16, ``L = i k³``
    (purely imaginary, very stiff spectrum), ``N(v) = −½ i k fft(real(ifft(v))²)``,
    ``t ∈ [0, 0.006]`` and ``h = 0.4/N²`` as in Kassam–Trefethen (``dt`` is the
    largest step below it that divides the span).  The default solitons need
    ``n ≥ 128``: at ``n = 64`` they are not resolved and the run blows up near
    ``t = 0.003``.
    """
    _check_size(n, "n", even=True)
    a, b = _check_positive(a, "a"), _check_positive(b, "b")
    x = 2 * np.pi * np.arange(n) / n - np.pi
    k = np.fft.fftfreq(n, 1.0 / n)
    k[n // 2] = 0.0
    u0 = 3 * a**2 / np.cosh(a * (x + 2) / 2) ** 2 + 3 * b**2 / np.cosh(b * (x + 1) / 2) ** 2
    prob = SemilinearProblem(Diagonal(1j * k**3), _fourier_quadratic(-0.5j * k), name="KdV")
    return BuiltinProblem(
        "kdv", prob, np.fft.fft(u0), (0.0, 0.006), 0.4 / n**2, x, _ifft_real, lift=_fft_last
    )


def nls(n: int = 512, length: float = 60.0, amplitude: float = 1.0) -> BuiltinProblem:
    r"""Cubic focusing nonlinear Schrödinger $i u_t + \tfrac12 u_{xx} + |u|^2 u = 0$, periodic.

    Fourier pseudo-spectral on ``[−length/2, length/2)`` with ``n`` modes; the state is
    ``û = fft(u)`` (complex), ``L = −i k²/2`` (diagonal, purely imaginary: oscillatory,
    not dissipative), ``N(û) = i fft(|u|² u)``.  ``u0 = amplitude · sech(x)``: for
    amplitude 1 the soliton ``u = sech(x) e^{it/2}`` is exact (``exact``; the periodic
    tails ``sech(length/2)`` and the spectral error are below 1e-12 at the defaults); an
    integer amplitude ``m ≥ 2`` gives an ``m``-soliton breather of period ``π/2``.
    ``t ∈ [0, π]``.
    """
    _check_size(n, "n", even=True)
    amplitude = _check_positive(amplitude, "amplitude")
    length = _check_positive(length, "length")
    x = length * (np.arange(n) / n - 0.5)
    k = 2 * np.pi * np.fft.fftfreq(n, d=length / n)

    def nonlinear(t: float, v: Any) -> Any:
        f = _fft(v)
        u = f.ifft(v)
        return 1j * f.fft((u * u.conj()) * u)

    def jvp(t: float, v: Any, w: Any) -> Any:
        # N is real-linear, not complex-linear, in its direction: δ(|u|²u) = 2|u|²δu + u²·conj(δu)
        f = _fft(v)
        u, du = f.ifft(v), f.ifft(w)
        return 1j * f.fft(2 * (u * u.conj()) * du + (u * u) * du.conj())

    prob = SemilinearProblem(Diagonal(-0.5j * k**2), nonlinear, name=f"cubic NLS N={n}", jvp=jvp)
    u0 = amplitude / np.cosh(x)
    exact = None
    if amplitude == 1.0:

        def exact(t: float) -> np.ndarray:
            return np.fft.fft(u0 * np.exp(0.5j * t))

    return BuiltinProblem(
        "nls",
        prob,
        np.fft.fft(u0.astype(complex)),
        (0.0, math.pi),
        0.01,
        x,
        lambda v: np.abs(np.fft.ifft(to_numpy(v))),
        exact=exact,
        notes="to_physical gives |u|",
        lift=_fft_last,
    )


def chebyshev(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Chebyshev points ``x_j = cos(πj/n)`` and the differentiation matrix (Trefethen 2000)."""
    _check_size(n, "n")
    x = np.cos(np.pi * np.arange(n + 1) / n)
    c = np.hstack([2.0, np.ones(n - 1), 2.0]) * (-1.0) ** np.arange(n + 1)
    dx = x[:, None] - x[None, :]
    d = np.outer(c, 1.0 / c) / (dx + np.eye(n + 1))
    d -= np.diag(d.sum(axis=1))
    return x, d


def allen_cahn(n: int = 20, eps: float = 0.01) -> BuiltinProblem:
    r"""Allen–Cahn $u_t = ε u_{xx} + u − u³$ on [−1, 1], ``u(±1) = ±1``.

    Chebyshev collocation with ``n`` (= 20) intervals; the state is ``w = u − x`` on the
    interior points (``w(±1) = 0``), ``L = ε D²`` restricted to the interior (dense,
    non-normal), ``N(w) = (w + x) − (w + x)³``; ``w0 = 0.53x + 0.47 sin(−1.5πx) − x``,
    ``h = 1/4``.  Kassam–Trefethen integrate to ``t = 70`` (metastable); error studies
    use ``T ≈ 20``.
    """
    eps = _check_positive(eps, "eps")
    x, d = chebyshev(n)
    d2 = (d @ d)[1:-1, 1:-1]
    xi = x[1:-1]
    xc = _Const(xi)

    def nonlinear(t: float, w: Any) -> Any:
        u = w + xc.like(w)
        return u - u * u * u

    def jac(t: float, w: Any) -> Any:  # ∂N/∂w = diag(1 − 3u²): exprb32/exprb43 need no N for it
        u = w + xc.like(w)
        diagonal = 1.0 - 3.0 * u * u
        return diagonal.diag() if is_torch_array(diagonal) else np.diag(diagonal)

    prob = SemilinearProblem(Dense(eps * d2), nonlinear, name="Allen–Cahn", jac=jac)
    w0 = 0.53 * xi + 0.47 * np.sin(-1.5 * np.pi * xi) - xi

    def to_physical(w: Any) -> Any:
        return to_numpy(w) + xi

    return BuiltinProblem("allen_cahn", prob, w0, (0.0, 70.0), 0.25, xi, to_physical)


def hochbruck_ostermann(intervals: int = 200) -> BuiltinProblem:
    r"""Hochbruck–Ostermann (2005, Ex. 6.1) semilinear parabolic test problem.

    $u_t = u_{xx} + 1/(1 + u²) + Φ(x, t)$ on [0, 1], ``u(0) = u(1) = 0``, with
    ``Φ`` chosen so that ``u = x(1 − x)eᵗ``:
    $Φ = x(1-x)e^t + 2e^t - 1/(1 + x²(1-x)²e^{2t})$.  3-point finite differences
    on ``intervals`` intervals (a quadratic is differentiated exactly, so the
    semi-discrete solution *is* the exact one at the nodes and errors are pure time
    errors); ``T = 1``.  ``L`` is symmetric, so `Dense` uses its
    eigendecomposition.
    """
    _check_size(intervals, "intervals", minimum=3)
    m = intervals - 1
    dx = 1.0 / intervals
    x = dx * np.arange(1, intervals)
    lap = (np.diag(-2.0 * np.ones(m)) + np.diag(np.ones(m - 1), 1) + np.diag(np.ones(m - 1), -1)) / dx**2
    q = x * (1 - x)
    qc = _Const(q)

    def nonlinear(t: float, u: Any) -> Any:
        et = math.exp(t)
        qq = qc.like(u)
        ex = qq * et
        return 1.0 / (1.0 + u * u) + ex + 2.0 * et - 1.0 / (1.0 + ex * ex)

    prob = SemilinearProblem(Dense(lap), nonlinear, name="Hochbruck–Ostermann parabolic")
    return BuiltinProblem(
        "hochbruck_ostermann",
        prob,
        q.copy(),
        (0.0, 1.0),
        1 / 64,
        x,
        to_numpy,
        exact=lambda t: q * math.exp(t),
    )


def gray_scott(
    n: int = 64,
    length: float = 2.5,
    du: float = 2e-5,
    dv: float = 1e-5,
    alpha: float = 0.035,
    beta: float = 0.065,
    variant: str = "fourier",
) -> BuiltinProblem:
    r"""2-D Gray–Scott reaction–diffusion on a periodic square of side 2.5.

    $u_t = D_u Δu − uv² + α(1 − u)$, $v_t = D_v Δv + uv² − (α + β)v$ on an ``n × n``
    grid.  ``variant="fourier"``: the state is the two fields' real 2-D FFTs
    (``rfft2``) flattened and concatenated (length ``2·n·(n/2 + 1)``), so
    ``L = diag(−D_u|k|², −D_v|k|²)`` is `Diagonal`.  ``variant="fd"``: the state is
    ``(u, v)`` on the grid (``2n²`` reals) and ``L`` the block-diagonal 5-point periodic
    Laplacian scaled by ``D_u``, ``D_v`` as a scipy sparse matrix (`Sparse`: matrix-free
    φ-products by Krylov).  Start: ``u = 1, v = 0`` with a seeded perturbed square in
    the centre.
    """
    _check_size(n, "n", even=True)
    length, du, dv = (_check_positive(v, name) for v, name in ((length, "length"), (du, "du"), (dv, "dv")))
    alpha = _check_positive(alpha, "alpha", allow_zero=True)
    beta = _check_positive(beta, "beta", allow_zero=True)
    if variant not in ("fourier", "fd"):
        raise ValueError(f"variant must be 'fourier' or 'fd', got {variant!r}")
    xs = length * np.arange(n) / n
    u0 = np.ones((n, n))
    v0 = np.zeros((n, n))
    mid = slice(n // 2 - n // 10, n // 2 + n // 10)
    rng = np.random.default_rng(0)
    u0[mid, mid] = 0.5 + 0.01 * rng.standard_normal(u0[mid, mid].shape)
    v0[mid, mid] = 0.25 + 0.01 * rng.standard_normal(v0[mid, mid].shape)

    def reaction(u: Any, v: Any) -> tuple[Any, Any]:
        uvv = u * v * v
        return -uvv + alpha * (1 - u), uvv - (alpha + beta) * v

    if variant == "fd":
        import scipy.sparse as sp

        lap = _periodic_laplacian(n, length / n)
        nn = n * n

        def nonlinear_fd(t: float, y: Any) -> Any:
            ru, rv = reaction(y[..., :nn], y[..., nn:])
            return concat([ru, rv], -1)

        prob = SemilinearProblem(
            sp.block_diag([du * lap, dv * lap], format="csr"), nonlinear_fd, name="Gray–Scott 2-D FD"
        )
        return BuiltinProblem(
            "gray_scott",
            prob,
            np.concatenate([u0.ravel(), v0.ravel()]),
            (0.0, 1000.0),
            1.0,
            xs,
            lambda y: to_numpy(y)[..., :nn].reshape(-1, n, n)[-1],
            notes="finite differences, matrix-free (Sparse) linear part",
        )
    k = 2 * np.pi * np.fft.fftfreq(n, length / n)
    kr = 2 * np.pi * np.fft.rfftfreq(n, length / n)
    k2 = (k[:, None] ** 2 + kr[None, :] ** 2).ravel()
    lin = Diagonal(np.concatenate([-du * k2, -dv * k2]))
    shape = (n, n // 2 + 1)
    half = k2.size

    def fields(y: Any) -> tuple[Any, Any]:
        f = _fft(y)
        lead = y.shape[:-1]
        u = f.irfft2(y[..., :half].reshape(*lead, *shape), s=(n, n))
        v = f.irfft2(y[..., half:].reshape(*lead, *shape), s=(n, n))
        return u, v

    def transform(p: Any) -> Any:
        return _fft(p).rfft2(p).reshape(*p.shape[:-2], half)

    def nonlinear(t: float, y: Any) -> Any:
        ru, rv = reaction(*fields(y))
        return concat([transform(ru), transform(rv)], -1)

    def lift(p: Any) -> Any:
        lead = p.shape[:-1]
        pu = p[..., : n * n].reshape(*lead, n, n)
        pv = p[..., n * n :].reshape(*lead, n, n)
        return concat([transform(pu), transform(pv)], -1)

    y0 = np.concatenate([np.fft.rfft2(u0).ravel(), np.fft.rfft2(v0).ravel()])
    prob = SemilinearProblem(lin, nonlinear, name="Gray–Scott 2-D")
    return BuiltinProblem(
        "gray_scott",
        prob,
        y0,
        (0.0, 1000.0),
        1.0,
        xs,
        lambda y: to_numpy(fields(as_array(y, name="y"))[0]),
        notes="real FFT",
        lift=lift,
        lift_size=2 * n * n,
    )


def _periodic_laplacian(n: int, h: float) -> Any:
    """The 5-point Laplacian on a periodic ``n × n`` grid of spacing ``h`` (scipy CSR)."""
    import scipy.sparse as sp

    ring = sp.diags([np.ones(n - 1), -2 * np.ones(n), np.ones(n - 1)], [-1, 0, 1], format="lil")
    ring[0, -1] = ring[-1, 0] = 1.0
    return ((sp.kron(ring, sp.eye(n)) + sp.kron(sp.eye(n), ring)) / h**2).tocsr()


def allen_cahn_2d(n: int = 256, diffusion: float = 0.01, variant: str = "fourier") -> BuiltinProblem:
    r"""2-D Allen–Cahn $u_t = D Δu + u − u³$ on the periodic square $[0, 2π)^2$.

    ``variant="fourier"``: the state is ``rfft2(u)`` flattened (real field, real FFT:
    ``n·(n/2 + 1)`` complex entries), ``L = diag(1 − D|k|²)`` (`Diagonal`),
    ``N(v) = −rfft2(u³)``.  ``variant="fd"``: the state is ``u`` itself (``n²`` reals),
    ``L = D Δ_h + I`` with the 5-point periodic Laplacian as a scipy sparse matrix
    (`Sparse`: matrix-free φ-products by Krylov), ``N(u) = −u³``.  Start: seeded noise
    of amplitude 0.1 smoothed by ``exp(−0.05|k|²)``, which coarsens into ±1 domains;
    ``t ∈ [0, 10]``.  ``D = 0.01`` and ``n = 256`` give ``‖L‖ ≈ 330`` (Fourier).
    """
    _check_size(n, "n", even=True)
    diffusion = _check_positive(diffusion, "diffusion")
    if variant not in ("fourier", "fd"):
        raise ValueError(f"variant must be 'fourier' or 'fd', got {variant!r}")
    h = 2 * np.pi / n
    xs = h * np.arange(n)
    k = np.fft.fftfreq(n, 1.0 / n)
    kr = np.fft.rfftfreq(n, 1.0 / n)
    rng = np.random.default_rng(0)
    noise = np.fft.irfft2(
        np.fft.rfft2(0.1 * rng.standard_normal((n, n)))
        * np.exp(-0.05 * (k[:, None] ** 2 + kr[None, :] ** 2)),
        s=(n, n),
    )
    u0 = noise / np.max(np.abs(noise)) * 0.1
    if variant == "fd":
        import scipy.sparse as sp

        lap = _periodic_laplacian(n, h)
        prob = SemilinearProblem(
            diffusion * lap + sp.eye(n * n),
            lambda t, u: -(u * u * u),
            name="Allen–Cahn 2-D FD",
            jvp=lambda t, u, v: -3.0 * u * u * v,
        )
        return BuiltinProblem(
            "allen_cahn_2d",
            prob,
            u0.ravel(),
            (0.0, 10.0),
            0.05,
            xs,
            lambda u: to_numpy(u).reshape(-1, n, n)[-1],
            notes="finite differences, matrix-free (Sparse) linear part",
        )
    shape = (n, n // 2 + 1)
    lin = Diagonal((1.0 - diffusion * (k[:, None] ** 2 + kr[None, :] ** 2)).ravel())

    def field(v: Any) -> Any:
        return fft_module(v).irfft2(v.reshape(*v.shape[:-1], *shape), s=(n, n))

    def nonlinear(t: float, v: Any) -> Any:
        u = field(v)
        return -fft_module(v).rfft2(u * u * u).reshape(v.shape)

    def lift(p: Any) -> Any:
        return fft_module(p).rfft2(p.reshape(*p.shape[:-1], n, n)).reshape(*p.shape[:-1], -1)

    def jvp(t: float, v: Any, dv: Any) -> Any:  # ∂N/∂v · dv = −rfft2(3u² · irfft2(dv))
        u = field(v)
        return -fft_module(v).rfft2(3.0 * u * u * field(dv)).reshape(v.shape)

    prob = SemilinearProblem(lin, nonlinear, name="Allen–Cahn 2-D Fourier", jvp=jvp)
    return BuiltinProblem(
        "allen_cahn_2d",
        prob,
        np.fft.rfft2(u0).ravel(),
        (0.0, 10.0),
        0.05,
        xs,
        lambda v: to_numpy(field(as_array(v, name="y"))),
        notes="real FFT",
        lift=lift,
        lift_size=n * n,
    )


def nonstiff(n: int = 6) -> BuiltinProblem:
    r"""A small non-stiff semilinear system for classical-order studies.

    ``L`` is a dense non-normal matrix with eigenvalues of modulus ≤ 3 (decay and
    rotation); ``N(t, y) = 0.5 sin(y) + 0.3 cos(t) y²/(1 + y²)`` couples nothing but is
    nonlinear and time dependent.  ``t ∈ [0, 2]``.  No closed form: compare with a
    tight reference solution (e.g. torchdiffeq's dopri5 at rtol 1e-13).
    """
    _check_size(n, "n")
    rng = np.random.default_rng(42)
    a = -np.diag(np.linspace(0.2, 3.0, n)) + 0.8 * np.triu(rng.standard_normal((n, n)), 1)
    a[0, 1], a[1, 0] = 2.0, -2.0

    def nonlinear(t: float, y: Any) -> Any:
        s = array_namespace(y).sin(y)
        return 0.5 * s + (0.3 * math.cos(t)) * (y * y) / (1.0 + y * y)

    y0 = np.linspace(1.0, -0.5, n)
    x = np.arange(n, dtype=float)
    return BuiltinProblem(
        "nonstiff",
        SemilinearProblem(Dense(a), nonlinear, name="non-stiff test"),
        y0,
        (0.0, 2.0),
        0.1,
        x,
        to_numpy,
    )


PROBLEMS: dict[str, Callable[..., BuiltinProblem]] = {
    "kuramoto_sivashinsky": kuramoto_sivashinsky,
    "burgers": burgers,
    "kdv": kdv,
    "allen_cahn": allen_cahn,
    "allen_cahn_2d": allen_cahn_2d,
    "hochbruck_ostermann": hochbruck_ostermann,
    "gray_scott": gray_scott,
    "nls": nls,
    "nonstiff": nonstiff,
}
"""The built-in problems by name, with their default sizes."""

ALIASES: dict[str, str] = {"ks": "kuramoto_sivashinsky", "ho": "hochbruck_ostermann"}
"""Short names the command line accepts for `PROBLEMS` entries."""


def canonical_name(name: str) -> str:
    """The `PROBLEMS` key for ``name`` or one of its `ALIASES` (other names unchanged)."""
    return ALIASES.get(name, name)


def _check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """A physical parameter: a finite real number, positive (or ≥ 0).  A negative
    diffusion coefficient makes the problem ill posed (its linear part grows like
    e^{|D|k²t}), so it is refused rather than integrated into a blow-up."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not ok or not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = "≥ 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def _check_size(n: Any, name: str, *, even: bool = False, minimum: int = 2) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {n!r}")
    if even and n % 2:
        raise ValueError(f"{name} must be even for a Fourier grid, got {n}")


def plot_spacetime(bp: BuiltinProblem, sol: Any, path: str | Path, title: str | None = None) -> Path:
    """Save a space–time image of a 1-D solution (``sol`` saved at many ``t_eval``)."""
    from ._plotting import pyplot, save

    plt = pyplot()

    field_ = np.stack([to_numpy(bp.to_physical(y)) for y in sol.y])
    fig, ax = plt.subplots(figsize=(7, 4.2))
    im = ax.pcolormesh(bp.x, sol.t, field_, shading="auto", cmap="RdBu_r")
    fig.colorbar(im, ax=ax, label="u")
    ax.set_xlabel("x")
    ax.set_ylabel("t")
    ax.set_title(title or f"{bp.problem.name}: {sol.scheme}")
    return save(fig, path)
