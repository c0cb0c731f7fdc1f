"""A plain numpy ETDRK4 loop for Kuramoto–Sivashinsky, written straight from
Kassam & Trefethen (2005), as the peer for expint's generic stepper.

The φ-coefficients are the paper's contour-integral means over M = 32 points on the
upper half circle (valid here: the KS spectrum is real).
"""

from __future__ import annotations

import numpy as np


def ks_etdrk4(n: int, h: float, t_end: float) -> np.ndarray:
    """Return the Fourier state at ``t_end`` (``t_end/h`` must be an integer)."""
    x = 32 * np.pi * np.arange(1, n + 1) / n
    u = np.cos(x / 16) * (1 + np.sin(x / 16))
    v = np.fft.fft(u)
    k = np.concatenate([np.arange(0, n // 2), [0], np.arange(-n // 2 + 1, 0)]) / 16
    lin = k**2 - k**4
    e = np.exp(h * lin)
    e2 = np.exp(h * lin / 2)
    m = 32
    r = np.exp(1j * np.pi * (np.arange(1, m + 1) - 0.5) / m)
    lr = h * lin[:, None] + r[None, :]
    q = h * np.real(np.mean((np.exp(lr / 2) - 1) / lr, axis=1))
    f1 = h * np.real(np.mean((-4 - lr + np.exp(lr) * (4 - 3 * lr + lr**2)) / lr**3, axis=1))
    f2 = h * np.real(np.mean((2 + lr + np.exp(lr) * (-2 + lr)) / lr**3, axis=1))
    f3 = h * np.real(np.mean((-4 - 3 * lr - lr**2 + np.exp(lr) * (4 - lr)) / lr**3, axis=1))
    g = -0.5j * k
    steps = round(t_end / h)
    for _ in range(steps):
        nv = g * np.fft.fft(np.real(np.fft.ifft(v)) ** 2)
        a = e2 * v + q * nv
        na = g * np.fft.fft(np.real(np.fft.ifft(a)) ** 2)
        b = e2 * v + q * na
        nb = g * np.fft.fft(np.real(np.fft.ifft(b)) ** 2)
        c = e2 * a + q * (2 * nb - nv)
        nc = g * np.fft.fft(np.real(np.fft.ifft(c)) ** 2)
        v = e * v + nv * f1 + 2 * (na + nb) * f2 + nc * f3
    return v
