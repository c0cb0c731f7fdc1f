"""On the shipped learned networks every preset is at least as accurate as DDIM on the
same grid kind with the same number of network evaluations, 3–10 (issue: few-step
stability).  A Runge–Kutta preset of ``s`` stages runs ``n/s`` steps for ``n`` calls.

Reference: the same probability-flow ODE from the same noise, integrated by
torchdiffeq's dopri5 in v = x/α against ρ = σ/α (rtol 1e-7), from t = 999 to t = 0.
"Ties" are allowed to 3% (different methods that reduce to DDIM on a step differ by
rounding and by the neighbouring steps).  The cells listed in ``KNOWN`` are measured
failures, kept as strict xfails so that fixing one shows up.
"""

from __future__ import annotations

import pytest
import torch

from expint.diffusion import METHODS, Sampler, grid, metrics, pretrained
from expint.diffusion.reference import pf_ode_reference

pytestmark = pytest.mark.slow  # `make test-fast` skips this module; `make test` runs it

NFES = (3, 4, 5, 6, 8, 10)
KINDS = ("uniform", "quadratic", "tempered", "logsnr", "karras")
PRESETS = [m for m in METHODS if m != "ddim"]
# measured with this test's noise (batch 48, seed 0); ratio to DDIM in the comment.  The
# eight ε-extrapolation cells at 3–4 calls on digits_eps (tab1–3 tempered, lab1–3
# log-SNR; 1.07–1.55×) went with the gap-stiffness guard (benchmarks/gap_stiffness_study.py)
KNOWN: set[tuple[str, str, str, int]] = set()


def _reference(net, x_T):
    pytest.importorskip("torchdiffeq")
    return pf_ode_reference(net.model, net.schedule, net.prediction, x_T, 999.0, 0.0, rtol=1e-7)


# the MLPs only: the U-Net (digits16_unet) costs ~0.2 s per call on this CPU; its
# presets-vs-DDIM check is section (c) of benchmarks/diffusion_learned.py, run on a GPU
CPU_MODELS = [n for n in pretrained.names() if pretrained.SPECS[n].arch == "mlp"]


@pytest.fixture(scope="module", params=CPU_MODELS)
def learned(request):
    net = pretrained.load(request.param)
    x_T = torch.randn(48, *net.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = _reference(net, x_T)

    def error(method, kind, nfe):
        steps = nfe // getattr(METHODS[method], "stages", 1)
        ts = grid(net.schedule, steps, kind=kind, t_start=999.0, t_end=0.0)
        sampler = Sampler(net.schedule, ts, method, net.prediction)
        assert sampler.nfe == nfe
        return metrics.rmse(sampler(net.model, x_T), ref)

    ddim = {(k, n): error("ddim", k, n) for k in KINDS for n in NFES}
    return request.param, error, ddim


@pytest.mark.parametrize("method", PRESETS)
def test_every_preset_is_at_least_as_accurate_as_ddim(learned, method):
    name, error, ddim = learned
    worse, known_ok = [], []
    stages = getattr(METHODS[method], "stages", 1)
    for kind in KINDS:
        for nfe in [n for n in NFES if n % stages == 0]:
            err = error(method, kind, nfe)
            bad = err > 1.03 * ddim[kind, nfe]
            if (name, method, kind, nfe) in KNOWN:
                known_ok.append((kind, nfe, bad))
            elif bad:
                worse.append(f"{kind} NFE {nfe}: {err:.3f} vs DDIM {ddim[kind, nfe]:.3f}")
    assert not worse, f"{name} {method}: " + "; ".join(worse)
    if known_ok:
        fixed = [(k, n) for k, n, bad in known_ok if not bad]
        if fixed:
            pytest.fail(f"known failures now pass, remove them from KNOWN: {name} {method} {fixed}")
        pytest.xfail(f"{name} {method}: known failures {[(k, n) for k, n, _ in known_ok]}")


def test_default_method_and_grid_beat_ddim_clearly(learned):
    from expint.diffusion import DEFAULT_METHOD

    name, error, ddim = learned
    kind = pretrained.load(name).schedule.default_grid
    for nfe in (5, 10):
        assert error(DEFAULT_METHOD, kind, nfe) < 0.5 * ddim[kind, nfe], (name, kind, nfe)
