r"""What a network predicts, and how each prediction becomes ε or x0.

With ``x = α x0 + σ ε`` every supported parameterisation is affine in ``(x, out)``:

=========== ================================ =====================================
prediction  ε                                x0
=========== ================================ =====================================
``eps``     ``out``                          ``(x − σ out)/α``
``x0``      ``(x − α out)/σ``                ``out``
``v``       ``(σ x + α out)/(α² + σ²)``      ``(α x − σ out)/(α² + σ²)``
``score``   ``−σ out``                       ``(x + σ² out)/α``
``flow``    ``(α out − α' x)/(ασ' − σα')``   ``(σ' x − σ out)/(ασ' − σα')``
=========== ================================ =====================================

(``v = α ε − σ x0`` as in diffusers; ``flow`` is the velocity ``dx/dt = α' x0 + σ' ε``.)
`conversion` returns the pair ``(A, B)`` with ``target = A x + B out``, computed
once per stage in float64 so the sampler applies it as one fused multiply–add.
"""

from __future__ import annotations

import numpy as np

PREDICTIONS = ("eps", "x0", "v", "score", "flow")


def check_prediction(prediction: str) -> str:
    if prediction not in PREDICTIONS:
        raise ValueError(f"unknown prediction type {prediction!r}; valid: {', '.join(PREDICTIONS)}")
    return prediction


def conversion(
    prediction: str, target: str, alpha: float, sigma: float, dalpha: float = np.nan, dsigma: float = np.nan
) -> tuple[float, float]:
    """``(A, B)`` with ``target = A·x + B·out`` for a model output ``out``."""
    a, s = float(alpha), float(sigma)
    norm = a * a + s * s
    det = a * dsigma - s * dalpha
    table = {
        ("eps", "eps"): (0.0, 1.0),
        ("eps", "x0"): (1 / a, -s / a) if a else (np.nan, np.nan),
        ("x0", "x0"): (0.0, 1.0),
        ("x0", "eps"): (1 / s, -a / s) if s else (np.nan, np.nan),
        ("v", "eps"): (s / norm, a / norm),
        ("v", "x0"): (a / norm, -s / norm),
        ("score", "eps"): (0.0, -s),
        ("score", "x0"): (1 / a, s * s / a) if a else (np.nan, np.nan),
        ("flow", "eps"): (-dalpha / det, a / det) if det else (np.nan, np.nan),
        ("flow", "x0"): (dsigma / det, -s / det) if det else (np.nan, np.nan),
    }
    return table[(prediction, target)]
