r"""Linear combinations of φ-functions, the entries of exponential tableaus.

A `PhiExpr` is $\sum_m \alpha_m\, \varphi_{k_m}(c_m z)$ where
``z = hL``.  Each term also carries a start offset ``s_m`` (in units of ``h``): for a
time-dependent linear part the function is built from the propagator that starts at
``t_n + s_m h`` (Lawson schemes need ``e^{(c_i - c_j) h L}`` started at stage ``j``);
for a constant ``L`` the offset is irrelevant.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable

import numpy as np

from .._phi import phi_all

Key = tuple[int, float, float]  # (k, c, s)


class PhiExpr:
    r"""An immutable linear combination $\sum_m α_m φ_{k_m}(c_m z)$, ``z = hL``.

    ``PhiExpr({(k, c, s): α, …})``: each key is the index ``k ≥ 0``, the scale ``c``
    of the argument and the start offset ``s`` (in steps; it matters only for a
    time-dependent ``L``, where the function is built from the propagator started at
    ``t_n + s h``).  Entries combine with ``+``, ``-`` and multiplication by numbers,
    e.g. ``P(1) - P(2)`` for ``P(k) = PhiExpr({(k, 1.0, 0.0): 1.0})``.
    """

    __slots__ = ("terms",)

    def __init__(self, terms: dict[Key, float] | None = None):
        clean = {}
        for key, coef in (terms or {}).items():
            try:  # (the values are checked where a tableau is validated: this runs per step)
                k, c, s = key
            except (TypeError, ValueError):
                raise ValueError(
                    f"PhiExpr keys are (k, c, s) triples (φ_k(c z), started at s h), got {key!r}"
                ) from None
            if coef != 0.0:
                clean[(int(k), float(c), float(s))] = float(coef)
        self.terms: dict[Key, float] = clean

    # algebra ------------------------------------------------------------------------
    def __add__(self, other: PhiExpr) -> PhiExpr:
        out = dict(self.terms)
        for key, coef in other.terms.items():
            out[key] = out.get(key, 0.0) + coef
        return PhiExpr(out)

    def __neg__(self) -> PhiExpr:
        return PhiExpr({k: -v for k, v in self.terms.items()})

    def __sub__(self, other: PhiExpr) -> PhiExpr:
        return self + (-other)

    def __mul__(self, scalar: float) -> PhiExpr:
        return PhiExpr({k: scalar * v for k, v in self.terms.items()})

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PhiExpr) and self.terms == other.terms

    def __hash__(self) -> int:
        return hash(frozenset(self.terms.items()))

    def check(self, where: str) -> None:
        """Raise a ``ValueError`` naming ``where`` unless every term has an integer
        index ``k ≥ 0`` and finite ``c``, ``s`` and coefficient."""
        for (k, c, s), coef in self.terms.items():
            if k < 0 or not all(math.isfinite(v) for v in (c, s, coef)):
                raise ValueError(f"{where}: a term needs k >= 0 and finite c, s and coefficient, got {self}")

    def __bool__(self) -> bool:
        return bool(self.terms)

    def __repr__(self) -> str:
        parts = [f"{v:+g}·φ{k}({c:g}z)" + (f"@{s:g}" if s else "") for (k, c, s), v in self.terms.items()]
        return " ".join(parts) or "0"

    def over_fraction(self, theta: float) -> PhiExpr:
        """The weight over the first fraction ``θ`` of the step: every ``φ_k(cz)``
        (started at ``s``) becomes ``θ^k φ_k(θcz)`` (started at ``θs``), which turns
        ``∫_0^h e^{(h−σ)L} σ^{k−1}/(k−1)! dσ = h^k φ_k(hL)`` into the same integral over
        ``[0, θh]`` — the continuous extensions of the one-step schemes."""
        return PhiExpr({(k, c * theta, s * theta): coef * theta**k for (k, c, s), coef in self.terms.items()})

    # evaluation ---------------------------------------------------------------------
    @property
    def kmax(self) -> int:
        return max((k for k, _, _ in self.terms), default=0)

    def groups(self) -> dict[tuple[float, float], dict[int, float]]:
        """Terms grouped by ``(c, s)``: ``{(c, s): {k: coef}}``."""
        out: dict[tuple[float, float], dict[int, float]] = {}
        for (k, c, s), coef in self.terms.items():
            out.setdefault((c, s), {})[k] = coef
        return out

    def scalar(self, z: complex) -> complex:
        """Value at a scalar ``z`` (used to validate tableaus)."""
        total = 0j
        for (k, c, _s), coef in self.terms.items():
            total += coef * _phi_scalar(c * z)[k]
        return total

    def at_zero(self) -> float:
        """Value at ``z = 0``: φ_k(0) = 1/k!."""
        return sum(coef / math.factorial(k) for (k, _c, _s), coef in self.terms.items())


@functools.lru_cache(maxsize=1024)
def _phi_scalar(w: complex) -> tuple[complex, ...]:
    """φ_0 … φ_5 at one complex point: the catalogue's validation evaluates the same few
    points for every tableau, and a scalar `phi_all` call costs ~1 ms of array overhead
    (importing expint spent over a second here before this cache)."""
    return tuple(complex(v) for v in phi_all(5, np.complex128(w)))


def P(k: int, c: float = 1.0, s: float = 0.0) -> PhiExpr:
    """The single function φ_k(c z) (started at offset ``s``)."""
    return PhiExpr({(k, c, s): 1.0})


def E(c: float, s: float = 0.0) -> PhiExpr:
    """The exponential e^{c z} = φ_0(c z) (started at offset ``s``)."""
    return P(0, c, s)


def total(exprs: Iterable[PhiExpr]) -> PhiExpr:
    out = PhiExpr()
    for e in exprs:
        out = out + e
    return out


class ExprBatch:
    r"""Several φ-expressions as one linear map: expression ``e`` is
    $\sum_p W_{ep}\, \varphi_{k_p}(c_p z) + I_e$ over the distinct pairs
    ``pairs[p] = (k_p, c_p)`` with ``c_p ≠ 0`` and the identity part
    $I_e = \sum α/k!$ of its ``c = 0`` terms.

    A scheme's whole tableau at a new step size is then one product ``W @ Φ`` with the
    stacked values ``Φ`` of the pairs on an operator's spectrum (`Dense.phi_batch`),
    instead of a Python loop over every term of every expression.  Start offsets are
    dropped: the map is for time-independent operators.
    """

    __slots__ = ("identity", "nodes", "pairs", "weights")

    def __init__(self, exprs: Iterable[PhiExpr]):
        exprs = list(exprs)
        self.pairs = sorted({(k, c) for e in exprs for (k, c, _) in e.terms if c != 0.0})
        column = {pair: p for p, pair in enumerate(self.pairs)}
        self.weights = np.zeros((len(exprs), len(self.pairs)))
        self.identity = np.zeros(len(exprs))
        for row, e in enumerate(exprs):
            for (k, c, _), coef in e.terms.items():
                if c == 0.0:
                    self.identity[row] += coef / math.factorial(k)
                else:
                    self.weights[row, column[(k, c)]] += coef
        #: the highest index each node ``c`` needs
        self.nodes: dict[float, int] = {}
        for k, c in self.pairs:
            self.nodes[c] = max(self.nodes.get(c, 0), k)
