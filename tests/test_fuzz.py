"""Property-based fuzzing of the public entry points.

Any input either gives a result without NaN (``inf`` only where the input is infinite
or the exact value overflows) or raises ``TypeError``/``ValueError`` whose message
names the offending argument — never another exception type, never a silent NaN.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import expint
from expint.diffusion import EDM, DiscreteVP, FlowMatching, VPLinear, grid, sample, toy

pytestmark = pytest.mark.slow  # `make test-fast` skips this module; `make test` runs it

# EXPINT_FUZZ_EXAMPLES=2000 for a long hunt (random examples, new ones each run); without
# it, 60 examples per test from a fixed seed, so that the suite (and CI, which keeps no
# example database) gives the same answer on every run: a hunt finds the bugs, and a
# regression test pins each one
_HUNT = "EXPINT_FUZZ_EXAMPLES" in os.environ
FUZZ = settings(
    max_examples=int(os.environ.get("EXPINT_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=not _HUNT,
)

odd_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.just(np.int64(2)),
    st.just(np.float32(0.5)),
)


def _no_nan(x) -> bool:
    if isinstance(x, torch.Tensor):
        return not bool(torch.isnan(x).any())
    return not np.isnan(np.asarray(x, dtype=complex)).any()


def _check(call, names: tuple[str, ...]):
    """Run ``call``; an exception must be TypeError/ValueError naming an argument."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                return call()
    except (TypeError, ValueError) as exc:
        msg = str(exc)
        assert any(name in msg for name in names), f"{type(exc).__name__}: {msg!r} names none of {names}"
        return None


# -- phi ---------------------------------------------------------------------------------------

arrays = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=0, max_size=4).map(np.array),
    st.lists(st.complex_numbers(allow_nan=False, max_magnitude=1e4), min_size=1, max_size=4).map(np.array),
    st.lists(st.integers(-3, 3), min_size=1, max_size=3).map(np.array),
    st.floats(-1e3, 700.0),
    st.text(max_size=2),
)


@FUZZ
@given(k=odd_scalars, z=arrays)
def test_phi_fuzz(k, z):
    out = _check(lambda: expint.phi(k, z), ("k", "z"))
    if out is not None:
        zz = np.asarray(z, dtype=complex)
        assert _no_nan(out) or np.isnan(zz).any(), (k, z, out)


# -- phiv --------------------------------------------------------------------------------------


@FUZZ
@given(
    entries=st.lists(st.floats(-50, 50) | st.just(float("nan")), min_size=9, max_size=9),
    n_vs=st.integers(0, 3),
    t=odd_scalars,
    tol=st.one_of(st.floats(allow_nan=True), st.just(1e-8)),
    m=st.one_of(st.integers(-1, 12), st.just(np.int64(6)), st.floats(0, 3)),
)
def test_phiv_fuzz(entries, n_vs, t, tol, m):
    a = np.array(entries).reshape(3, 3)
    vs = [np.linspace(1.0, 2.0, 3) * (k + 1) for k in range(n_vs)]

    def call():
        try:
            return expint.phiv(a, vs, t=t, tol=tol, m=m)
        except RuntimeError as err:  # documented: a basis cap m far too small for ‖tA‖
            assert "raise m, loosen tol or raise max_substeps" in str(err), str(err)
            event("sub-step limit")
            return None

    res = _check(call, ("A", "vs", "t", "tol", "m"))
    if res is not None:
        assert _no_nan(res[0])


# -- solve -------------------------------------------------------------------------------------

PROB = expint.SemilinearProblem(expint.Diagonal(np.array([-1.0, -20.0])), lambda t, y: np.sin(y))


@FUZZ
@given(
    y0=st.one_of(
        st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1, max_size=3).map(
            np.array
        ),
        st.lists(st.integers(-2, 2), min_size=2, max_size=2).map(np.array),
        st.just(np.ones((3, 2))),
        st.text(max_size=2),
    ),
    t_span=st.one_of(st.tuples(odd_scalars, odd_scalars), st.just((0.0, 1.0)), st.none()),
    scheme=st.sampled_from(["etdrk4", "krogstad", "etdab3", "lawson_rk4", "nonsense", "", None]),
    step=st.one_of(
        st.tuples(st.just("dt"), st.floats(0.05, 1.0) | st.floats(-1, 0) | st.just(float("nan"))),
        st.tuples(st.just("n_steps"), st.integers(-2, 30) | st.floats(0, 3)),
        st.tuples(st.just("ts"), st.lists(st.floats(-1, 2), min_size=0, max_size=5)),
    ),
)
def test_solve_fuzz(y0, t_span, scheme, step):
    def call():
        return expint.solve(PROB, y0, t_span, scheme=scheme, **{step[0]: step[1]})

    sol = _check(call, ("y0", "t_span", "scheme", "dt", "n_steps", "ts"))
    if sol is not None:
        assert _no_nan(sol.y) or not sol.success


@FUZZ
@given(
    y0=st.one_of(
        st.just(np.array([1.0, -0.5])),
        st.just(np.ones((3, 2))),
        st.lists(st.floats(-5, 5) | st.just(float("inf")), min_size=2, max_size=2).map(np.array),
    ),
    scheme=st.sampled_from(
        ["krogstad43", "hochost43", "whalen53", "etdab43", "etdab54", "exprb32", "krogstad"]
    ),
    rtol=st.one_of(odd_scalars, st.floats(1e-12, 1e-2), st.just(1e-6)),
    atol=st.one_of(odd_scalars, st.just(1e-8), st.just(np.array([1e-8, 1e-9])), st.just(np.ones(3))),
    first_step=st.one_of(st.none(), odd_scalars, st.floats(1e-6, 5)),
    max_step=st.one_of(st.none(), odd_scalars, st.floats(1e-3, 5)),
    max_steps=st.one_of(st.just(100_000), st.integers(-1, 50), st.floats(0, 5)),
    t_eval=st.one_of(st.none(), st.lists(st.floats(-1, 3), max_size=4)),
    extra=st.sampled_from(
        [
            {},
            {"dense_output": True},
            {"error_norm": "max"},
            {"error_norm": "l1"},
            {"batch_steps": "independent"},
            {"batch_steps": "each"},
        ]
    ),
)
def test_adaptive_solve_fuzz(y0, scheme, rtol, atol, first_step, max_step, max_steps, t_eval, extra):
    """Adaptive runs: odd tolerances, step bounds, output times and options either run
    (no NaN in a successful result; a run that ends early says so) or raise an error
    naming the argument."""

    def call():
        return expint.solve(
            PROB,
            y0,
            (0.0, 2.0),
            scheme=scheme,
            rtol=rtol,
            atol=atol,
            first_step=first_step,
            max_step=max_step,
            max_steps=max_steps,
            t_eval=t_eval,
            **extra,
        )

    names = (
        "y0",
        "scheme",
        "rtol",
        "atol",
        "first_step",
        "max_step",
        "max_steps",
        "t_eval",
        "n_steps",
        *extra,
    )
    sol = _check(call, names)
    if sol is not None:
        assert _no_nan(sol.y) or not sol.success
        assert sol.success or sol.message


# -- linear parts ---------------------------------------------------------------------------------

_entries = st.one_of(
    st.floats(-30, 5),
    st.floats(-30, 5),
    st.floats(-30, 5),
    st.just(0.0),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), -1e6, 1e3]),
)


@st.composite
def linear_parts(draw):
    """``(description, operator factory)``: every kind of linear part, from entries that
    are mostly ordinary and sometimes not (NaN, ±inf, very stiff, growing, wrong shape)."""
    import scipy.sparse as sp

    kinds = ["diagonal", "dense", "sparse", "matrix-free", "torch-dense", "complex", "scalar-time"]
    kind = draw(st.sampled_from(kinds))
    n = draw(st.integers(1, 4))
    shape_off = draw(st.sampled_from([0, 0, 0, 0, 1]))  # sometimes not square / wrong length
    d = np.array(draw(st.lists(_entries, min_size=n, max_size=n)))
    off = np.array(draw(st.lists(_entries, min_size=n * (n + shape_off), max_size=n * (n + shape_off))))
    a = 0.1 * off.reshape(n, n + shape_off)
    with np.errstate(invalid="ignore"):  # inf − inf on the diagonal: a NaN entry, as intended
        a[:, :n] += np.diag(d)
    if kind == "scalar-time":  # a(t) = a0 + a1 sin t; its integral, now and then with the sign swapped
        a0, a1 = float(d[0]), float(0.1 * off[0])
        sign = draw(st.sampled_from([1.0, 1.0, 1.0, -1.0]))

        def integral(s, t):
            return sign * (a0 * (t - s) - a1 * (np.cos(t) - np.cos(s)))

        return kind, (lambda: expint.ScalarTime(lambda t: a0 + a1 * np.sin(t), integral, n=n))
    if kind == "diagonal":
        return kind, (lambda: expint.Diagonal(np.concatenate([d, d[:shape_off]])))
    if kind == "dense":
        return kind, (lambda: expint.Dense(a))
    if kind == "complex":
        return kind, (lambda: expint.Dense(a + 1j * a[::-1]))
    if kind == "torch-dense":
        return kind, (lambda: expint.Dense(torch.as_tensor(a)))
    if kind == "sparse":
        return kind, (lambda: expint.Sparse(sp.csr_array(a)))
    return kind, (lambda: expint.MatrixFree(lambda v: v @ a, n))  # L = aᵀ; not square: a wrong length


@FUZZ
@given(
    linear=linear_parts(),
    scheme=st.sampled_from(
        ["etdrk4", "krogstad", "etdab3", "lawson_rk4", "krogstad43", "etdab43", "exprb32"]
    ),
    t_end=st.sampled_from([0.5, 2.0, 10.0]),
)
def test_linear_part_fuzz(linear, scheme, t_end):
    """Every kind of linear part, dense to matrix-free, numpy and torch, real and
    complex: a construction refused with a named error, or a solve without NaN in a
    successful result (a blow-up ends the run with success False)."""
    kind, make = linear
    op = _check(make, ("a", "d", "A", "matrix", "diagonal", "n", "square", "shape", "finite"))
    if op is None:
        return
    n = op.n
    torch_state = kind == "torch-dense"
    y0 = torch.linspace(0.1, 1.0, n, dtype=torch.float64) if torch_state else np.linspace(0.1, 1.0, n)
    if kind == "complex":
        y0 = y0 * (1 + 0.5j)
    sin = torch.sin if torch_state else np.sin

    def call():
        prob = expint.SemilinearProblem(op, lambda t, y: 0.5 * sin(y.real) + 0 * y)
        adaptive = scheme in ("krogstad43", "etdab43", "exprb32")
        step = {"rtol": 1e-6, "atol": 1e-9} if adaptive else {"n_steps": 20}
        return expint.solve(prob, y0, (0.0, t_end), scheme=scheme, **step)

    names = ("y0", "scheme", "linear", "matvec", "nonlinear", "jvp", "jac", "dtype", "finite")
    names += ("integral", "rate")
    sol = _check(call, names)
    if sol is not None:
        assert _no_nan(sol.y) or not sol.success, (kind, scheme, sol.message)
        assert sol.success or sol.message


# -- grid ----------------------------------------------------------------------------------------

SCHEDULES = [DiscreteVP.from_betas(), VPLinear(), EDM(), FlowMatching()]


@FUZZ
@given(
    schedule=st.sampled_from(SCHEDULES),
    n_steps=st.one_of(st.integers(-1, 1200), st.floats(0, 5), st.none()),
    kind=st.one_of(
        st.sampled_from(["uniform", "quadratic", "power", "logsnr", "karras", "cubic"]),
        st.lists(st.floats(-2, 1000), min_size=0, max_size=4),
    ),
    t_start=st.one_of(st.none(), st.floats(-1, 1000)),
    t_end=st.one_of(st.none(), st.floats(-1, 1)),
    rounding=st.sampled_from([None, "floor", "round", "leading", "trailing", "linspace", "ceil"]),
    final_zero=st.booleans(),
    kappa=st.one_of(st.just(2.0), st.floats(-1, 5), st.just(float("nan"))),
)
def test_grid_fuzz(schedule, n_steps, kind, t_start, t_end, rounding, final_zero, kappa):
    def call():
        return grid(
            schedule, n_steps, kind, t_start, t_end, rounding=rounding, final_zero=final_zero, kappa=kappa
        )

    names = ("schedule", "n_steps", "kind", "t_start", "t_end", "rounding", "final_zero", "kappa", "ts", "λ")
    ts = _check(call, names)
    if ts is not None:
        assert np.all(np.isfinite(ts)) and np.all(np.diff(ts) < 0)
        if isinstance(kind, str):
            assert len(ts) == n_steps + 1


# -- sample --------------------------------------------------------------------------------------

SCH = DiscreteVP.from_betas()
MIX = toy.GaussianMixture([[1.0, 0.0], [-1.0, 0.5]], [0.3, 0.4], SCH)


@FUZZ
@given(
    n=st.integers(1, 6),
    method=st.sampled_from(["ddim", "tab3", "dpmpp3m_pc", "rhork2", "ipndm", "lab2", "rhoab1_x0", "dpm++"]),
    prediction=st.sampled_from(["eps", "x0", "v", "noise"]),
    bad=st.sampled_from([None, "nan", "int", "numpy", "shape"]),
    final_zero=st.booleans(),
)
def test_sample_fuzz(n, method, prediction, bad, final_zero):
    x = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    model = MIX
    if bad == "nan":
        x[0, 0] = float("nan")
    elif bad == "int":
        x = x.long()
    elif bad == "numpy":
        x = x.numpy()
    elif bad == "shape":

        def model(x, t):
            return MIX(x, t)[:, :1]

    def call():
        return sample(
            model, x, SCH, grid(SCH, n, final_zero=final_zero), method=method, prediction=prediction
        )

    out = _check(call, ("x_T", "method", "prediction", "model", "ts"))
    if out is not None:
        assert _no_nan(out)


def test_fuzz_helper_rejects_an_unnamed_error():
    """The property itself can fail: an error that names no argument is caught."""

    def bad():
        raise ValueError("something went wrong")

    with pytest.raises(AssertionError, match="names none of"):
        _check(bad, ("x",))


# -- the diffusers scheduler --------------------------------------------------------------------

SCHEDULER_CONFIG = {  # values a user may legitimately pass, edge cases included
    "num_train_timesteps": st.sampled_from([1000, 2, 50, 1200]),
    "beta_start": st.floats(1e-6, 1e-3),
    "beta_end": st.floats(1e-3, 0.05),  # beyond, ᾱ at the start is below 1e-20: x0 cannot be formed
    "beta_schedule": st.sampled_from(["linear", "scaled_linear", "squaredcos_cap_v2"]),
    "prediction_type": st.sampled_from(["epsilon", "sample", "v_prediction", "flow_prediction"]),
    "method": st.sampled_from(["ddim", "tab3", "lab2", "rhork2", "dpmpp2m", "ipndm", "unipc3", "rhoab1_x0"]),
    "grid_kind": st.sampled_from(
        ["logsnr", "tempered", "karras", "uniform", "leading", "trailing", "linspace"]
    ),
    "final_sigmas_type": st.sampled_from(["zero", "sigma_min"]),
    "rescale_betas_zero_snr": st.booleans(),
    "schedule": st.sampled_from(["vp", "flow"]),
    "shift": st.floats(0.1, 10.0),
    "clip_sample": st.booleans(),
    "thresholding": st.booleans(),
    "steps_offset": st.integers(0, 3),
}
SCHEDULER_POISON = {  # one of these per poisoned example
    "num_train_timesteps": st.sampled_from([0, -2, 2.5, 1, True]),
    "beta_start": st.sampled_from([0.0, -0.1, 1.5, float("nan"), float("inf")]),
    "beta_end": st.sampled_from([0.0, -0.1, 1.5, float("nan")]),
    "beta_schedule": st.sampled_from(["cosine", ""]),
    "prediction_type": st.sampled_from(["eps", None]),
    "method": st.sampled_from(["x", "tab9"]),
    "grid_kind": st.sampled_from(["?", "power2"]),
    "final_sigmas_type": st.sampled_from(["none", 0]),
    "schedule": st.sampled_from(["ve", None]),
    "shift": st.sampled_from([0.0, -1.0, float("nan"), float("inf")]),
}


@st.composite
def scheduler_configs(draw):
    keys = draw(st.lists(st.sampled_from(sorted(SCHEDULER_CONFIG)), max_size=6, unique=True))
    config = {k: draw(SCHEDULER_CONFIG[k]) for k in keys}
    if draw(st.booleans()):
        key = draw(st.sampled_from(sorted(SCHEDULER_POISON)))
        config[key] = draw(SCHEDULER_POISON[key])
    return config


def _decreasing(values: list) -> list:
    return sorted(values, reverse=True)


@st.composite
def scheduler_steps(draw):
    """``(num_inference_steps, explicit grid or None, "timesteps" or "sigmas")``: mostly a
    valid count, or a grid with the count left out."""
    kind = draw(st.sampled_from(["timesteps", "sigmas"]))
    choice = draw(st.integers(0, 11))
    if choice < 7:
        return draw(st.integers(1, 40)), None, kind
    if choice < 9:
        return draw(st.one_of(st.integers(-1, 0), st.floats(0, 5), st.none())), None, kind
    explicit = draw(
        st.one_of(
            st.lists(st.floats(-10, 1100), min_size=0, max_size=6),
            st.lists(st.integers(0, 999), min_size=1, max_size=6, unique=True).map(lambda v: sorted(v)[::-1]),
            st.lists(st.floats(1e-3, 80.0), min_size=1, max_size=6, unique=True).map(
                lambda v: sorted(v)[::-1]
            ),
        )
    )
    n = draw(st.one_of(st.none(), st.none(), st.just(len(explicit)), st.integers(0, 8)))
    return n, explicit, kind


@FUZZ
@given(config=scheduler_configs(), steps=scheduler_steps())
def test_diffusers_scheduler_fuzz(config, steps):
    """Odd configs, step counts and explicit grids: a result without NaN from the whole
    pipeline loop, with one model call per timestep, or a named error."""
    n, explicit, explicit_kind = steps
    pytest.importorskip("diffusers")
    from expint.diffusion.integrations.diffusers import ExpintScheduler

    names = (*config, "num_inference_steps", "timesteps", "sigmas", "betas", "mu")

    def make():
        sched = ExpintScheduler.from_config(dict(config))
        extra = {} if explicit is None else {explicit_kind: explicit}
        sched.set_timesteps(n, **extra)
        return sched

    sched = _check(make, names)
    event("refused" if sched is None else "sampled")
    if sched is None:
        return
    x = torch.randn(2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    calls = 0
    for t in sched.timesteps:
        out = 0.5 * x + 0.1  # any smooth model output: the loop must stay finite
        x = sched.step(out, t, x).prev_sample
        calls += 1
    assert calls == len(sched.timesteps)
    assert x.shape == (2, 3) and x.dtype == torch.float64
    assert bool(torch.isfinite(x).all()), (config, n, explicit)


# -- the k-diffusion sampler function ----------------------------------------------------------

KD_SIGMAS = st.one_of(
    # valid: decreasing positive levels, with or without k-diffusion's final 0
    st.tuples(
        st.lists(st.floats(1e-4, 1e4), min_size=1, max_size=7, unique=True).map(_decreasing),
        st.booleans(),
    ).map(lambda p: p[0] + [0.0] if p[1] else p[0]),
    # anything at all
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=5),
    st.lists(st.integers(-2, 100), min_size=0, max_size=4),
)


def _gaussian_denoiser(x, sigma):
    """The exact x0 of data N(0, 1) under ``x = x0 + σ ε``: ``x / (1 + σ²)``."""
    return x / (1 + sigma[:, None] ** 2)


@FUZZ
@given(
    sigmas=KD_SIGMAS,
    as_tensor=st.booleans(),
    method=st.sampled_from(
        ["ddim", "tab3", "lab2", "rhork3", "dpmpp2m", "ipndm", "unipc3", "rhoab1_x0", "x"]
    ),
    bad=st.sampled_from([None, None, None, "numpy", "int", "nan", "shape", "2d sigmas"]),
)
def test_kdiffusion_sampler_fuzz(sigmas, as_tensor, method, bad):
    """`sample_expint` on odd noise levels, methods and inputs: a finite result with the
    method's number of model calls and one callback per step carrying that step's σ, or
    a named error."""
    from expint.diffusion.integrations import sample_expint

    x = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(len(sigmas)))
    model = _gaussian_denoiser
    levels = torch.tensor(sigmas, dtype=torch.float64) if as_tensor else sigmas
    if bad == "numpy":
        x = x.numpy()
    elif bad == "int":
        x = x.long()
    elif bad == "nan":
        x[1, 0] = float("nan")
    elif bad == "shape":

        def model(x, sigma):
            return _gaussian_denoiser(x, sigma)[:, :1]

    elif bad == "2d sigmas":
        levels = [list(sigmas)]
    calls, seen = [], []

    def counted(x, sigma):
        calls.append(sigma)
        return model(x, sigma)

    def call():
        start = x * float(sigmas[0]) if len(sigmas) and bad != "int" else x
        return sample_expint(counted, start, levels, callback=seen.append, disable=True, method=method)

    out = _check(call, ("sigmas", "x must", "x has", "x contains", "method", "model"))
    event("refused" if out is None else "sampled")
    if out is None:
        return
    assert _no_nan(out) and out.shape == x.shape
    sig = [float(s) for s in sigmas]
    steps = len(sig) - 1
    assert [d["i"] for d in seen] == list(range(steps))
    assert [d["sigma"] for d in seen] == sig[:-1]
    per_step = 3 if method == "rhork3" else 1  # ρRK3: three model calls a step
    assert len(calls) == per_step * steps, (len(calls), steps)


# -- dense output queries ----------------------------------------------------------------------

DENSE_SCHEMES = [s.name for s in expint.schemes.catalog() if s.dense_order > 0]


@FUZZ
@given(
    scheme=st.sampled_from(DENSE_SCHEMES),
    steps=st.integers(1, 9),
    backwards=st.booleans(),
    batch=st.booleans(),
    on_torch=st.booleans(),
    queries=st.one_of(
        st.floats(-0.5, 1.5),
        st.lists(st.floats(-0.5, 1.5), min_size=0, max_size=5),
        st.sampled_from([None, "t", float("nan"), [[0.5]], [True], 0.5j]),
    ),
)
def test_dense_output_query_fuzz(scheme, steps, backwards, batch, on_torch, queries):
    """``sol(t)`` of fixed and adaptive runs, forwards and backwards, numpy and torch:
    inside the span a finite state of the right shape that matches the saved states at
    the saved times; anything else a named error."""
    sch = expint.schemes.get(scheme)
    lam = np.array([-1.0, -30.0, 0.5])

    def nonlinear(t, y):
        return (torch.sin(y) if isinstance(y, torch.Tensor) else np.sin(y)) + np.cos(t)

    prob = expint.SemilinearProblem(expint.Diagonal(lam), nonlinear)
    y0 = np.array([[1.0, -0.5, 0.2], [0.3, 0.1, -1.0]]) if batch else np.array([1.0, -0.5, 0.2])
    if on_torch:
        y0 = torch.from_numpy(y0)
    span = (1.0, 0.0) if backwards else (0.0, 1.0)
    step_args: dict = {"rtol": 10.0 ** -(2 + steps % 7), "atol": 1e-9} if sch.adaptive else {"n_steps": steps}
    if sch.rosenbrock is not None and batch:  # one Jacobian per member: each its own steps
        step_args["batch_steps"] = "independent"
    sol = expint.solve(prob, y0, span, scheme=scheme, dense_output=True, **step_args)
    assert sol.success
    ys = np.asarray(sol.y)
    np.testing.assert_allclose(np.asarray(sol.sol(sol.t)), ys, rtol=1e-12, atol=1e-12)
    out = _check(lambda: sol.sol(queries), ("t must", "t =", "t ("))
    if out is None:
        return
    q = np.asarray(queries, dtype=float)
    assert tuple(out.shape) == (*q.shape, *y0.shape)
    assert _no_nan(out) and np.all(np.isfinite(np.asarray(out)))


# -- the study API ----------------------------------------------------------------------------

STUDY_PROBLEM = expint.SemilinearProblem(expint.Diagonal([-1.0, -20.0]), lambda t, y: np.sin(y) + np.cos(t))


STUDY_VALID = {
    "t_span": st.tuples(st.floats(-2, 2), st.floats(-2, 2)).filter(lambda s: s[0] != s[1]),
    "schemes": st.lists(
        st.sampled_from(["etd2rk", "krogstad", "etdab3", "lawson_rk4", "krogstad43"]), min_size=1, max_size=3
    ),
    "steps": st.lists(st.integers(1, 12), min_size=1, max_size=4, unique=True),
    "rtols": st.lists(st.floats(1e-9, 0.5), min_size=1, max_size=3, unique=True),
    "reference": st.sampled_from([None, "fine", [0.0, 0.0]]),
}
STUDY_POISON = {
    "t_span": st.sampled_from([None, 1.0, (0.0,), ("a", 1.0), (0.0, float("nan")), (True, 1.0), (1.0, 1.0)]),
    "schemes": st.sampled_from([[], ["nope"], [3], None, 3]),
    "steps": st.sampled_from([[], [0, 4], [4, 4], [2.5], 4, None, "8", [True]]),
    "rtols": st.sampled_from(
        [[], [0.0], [1.0], [-1e-3], [float("nan")], [1e-3, 1e-3], 1e-3, "1e-3", [1e-20]]
    ),
    "reference": st.sampled_from(["exact", [1.0, 2.0, 3.0], [float("nan"), 0.0], "torch"]),
}


@st.composite
def study_arguments(draw):
    """Valid arguments with, half the time, one of them poisoned."""
    args = {k: draw(v) for k, v in STUDY_VALID.items()}
    if draw(st.booleans()):
        key = draw(st.sampled_from(sorted(STUDY_POISON)))
        args[key] = draw(STUDY_POISON[key])
    return args


@FUZZ
@given(args=study_arguments())
def test_study_fuzz(args):
    """`convergence` and `work_precision` on odd spans, scheme lists, step counts,
    tolerances and references: finite errors (or ``inf`` for a failed run) on the right
    rows, or a named error."""
    y0 = np.array([1.0, -0.5])
    names = ("t_span", "schemes", "scheme", "steps", "rtols", "rtol", "reference", "pass rtols")

    def conv():
        return expint.study.convergence(
            STUDY_PROBLEM, y0, args["t_span"], args["schemes"], args["steps"], reference=args["reference"]
        )

    res = _check(conv, names)
    event("convergence refused" if res is None else "convergence ran")
    if res is not None:
        for name, errs in res.errors.items():
            assert len(errs) == len(res.steps) and not np.isnan(errs).any(), (name, errs)
        res.table()

    def wp():
        return expint.study.work_precision(STUDY_PROBLEM, y0, **args, repeat=1)

    res = _check(wp, names)
    event("work_precision refused" if res is None else "work_precision ran")
    if res is not None:
        assert all(not math.isnan(r["error"]) and r["seconds"] >= 0 for r in res.runs), res.runs
        res.table()


# -- the seeded-noise helpers of expint.parallel and the method constructors --------------------


@FUZZ
@given(
    seed=odd_scalars,
    index=st.one_of(odd_scalars, st.lists(st.integers(-3, 2**40), max_size=3).map(np.array)),
    size=odd_scalars,
    start=odd_scalars,
    stop=odd_scalars,
    t_start=odd_scalars,
    shape=st.one_of(odd_scalars, st.lists(st.integers(-1, 3), max_size=3).map(tuple)),
)
def test_seeded_noise_fuzz(seed, index, size, start, stop, t_start, shape):
    """`item_seed`, `counter_normal` and `initial_noise`: finite numbers of the asked
    shape that depend on ``(seed, index)`` only, or a named error."""
    from expint import parallel

    keys = _check(lambda: parallel.item_seed(seed, index), ("seed", "index"))
    if keys is not None:
        assert keys.dtype == np.uint64 and keys.shape == np.shape(index)
        draws = _check(lambda: parallel.counter_normal(keys.reshape(-1), size), ("keys", "size"))
        if draws is not None:
            assert draws.shape == (keys.size, size) and np.isfinite(draws).all()
    noise = _check(
        lambda: parallel.initial_noise(VPLinear(), t_start, shape, 0, start, stop),
        ("t_start", "shape", "start", "stop"),
    )
    if noise is not None:
        assert noise.shape[0] == stop - start and bool(torch.isfinite(noise).all())
        if stop > start:  # item i's noise does not depend on the range it was drawn in
            again = parallel.initial_noise(VPLinear(), t_start, shape, 0, stop - 1, stop)
            assert torch.equal(noise[-1:], again)


@FUZZ
@given(
    degree=odd_scalars,
    variable=st.sampled_from(["t", "rho", "lam", "x", 1]),
    target=st.sampled_from(["eps", "x0", "v", None]),
    limit=odd_scalars,
    which=st.sampled_from(["max_gain", "max_disagreement", "max_gap_stiffness"]),
    tableau=st.sampled_from(["euler", "heun", "kutta3", "rk4", "rk5", 3]),
)
def test_method_constructor_fuzz(degree, variable, target, limit, which, tableau):
    """`ExponentialAdams`, `RhoRK` and `IPNDM` on odd arguments: a method that samples
    the Gaussian mixture to finite values with the right number of model calls, or a
    named error."""
    from expint.diffusion import IPNDM, ExponentialAdams, RhoRK, Sampler

    sch = VPLinear()
    mix = toy.GaussianMixture(means=[[1.0, 0.0], [-1.0, 0.5]], stds=[0.3, 0.2], schedule=sch)
    ts = grid(sch, 4, "logsnr", t_end=1e-3)
    x = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for make, names in (
        (lambda: ExponentialAdams(degree, variable, target, **{which: limit}), ("degree", "variable",
                                                                                 "target", which)),
        (lambda: RhoRK(tableau, "mine", max_stiffness=limit), ("tableau", "max_stiffness")),
        (lambda: IPNDM(limit), ("max_disagreement",)),
    ):  # fmt: skip
        method = _check(make, names)
        if method is None:
            continue
        calls = []
        out = Sampler(sch, ts, method)(lambda x, t, calls=calls: calls.append(t) or mix(x, t), x)
        assert bool(torch.isfinite(out).all())
        assert len(calls) == (method.stages * 4 if isinstance(method, RhoRK) else 4)


# -- events ----------------------------------------------------------------------------------------


@FUZZ
@given(
    level=st.floats(-1.5, 1.5),
    slope=st.floats(-0.5, 0.5),
    component=st.sampled_from([0, 1]),
    terminal=st.sampled_from([False, True, 0, 1, 2, 3, False, 2, -1, 1.5]),  # mostly valid
    direction=st.sampled_from([-1.0, 0.0, 1.0, 3.0, -1.0, 0.0, 1.0, float("nan"), "up"]),
    scheme=st.sampled_from(
        ["etdrk4", "krogstad", "etdab3", "krogstad43", "etdab43", "exprb32", "lawson_rk4"]
    ),
    backwards=st.booleans(),
)
def test_events_fuzz(level, slope, component, terminal, direction, scheme, backwards):
    """``g(t, y) = y[c] − level − slope·t`` on a damped rotation: every event reported
    is a zero of ``g`` on the solution (its time inside the span, in order, on the side
    ``direction`` asks for), a terminal one ends the run there, or a named error."""
    rot = np.array([[-0.2, 1.0], [-1.0, -0.2]])
    prob = expint.SemilinearProblem(expint.Dense(rot), lambda t, y: 0.2 * np.sin(y[..., ::-1]))

    def g(t, y):
        return y[component] - level - slope * t

    g.terminal, g.direction = terminal, direction
    span = (6.0, 0.0) if backwards else (0.0, 6.0)
    adaptive = scheme in ("krogstad43", "etdab43", "exprb32")
    step = {"rtol": 1e-8, "atol": 1e-10} if adaptive else {"n_steps": 120}
    y0 = np.array([1.0, 0.3])
    sol = _check(
        lambda: expint.solve(prob, y0, span, scheme=scheme, events=g, dense_output=True, **step),
        ("events", "scheme"),
    )
    if sol is None:
        return
    times, states = sol.t_events[0], sol.y_events[0]
    event(f"{len(times)} events")
    assert sol.success and len(times) == len(states)
    sign = 1.0 if not backwards else -1.0
    assert np.all(np.diff(times) * sign > 0) and np.all((times - span[0]) * sign > 0)
    end = sol.sol.t_span[1]
    for t, y in zip(times, states, strict=True):
        assert abs(g(t, y)) < 1e-9, (t, g(t, y))  # a zero of g on the interpolant
        after = t + 1e-4 * sign
        if direction != 0 and (end - after) * sign > 0:  # g's sign just after, in integration order
            assert g(after, sol.sol(after)) * np.sign(direction) > 0, (t, direction)
    count = int(terminal)
    if count and len(times) == count:
        assert sol.message.startswith("a terminal event") and sol.t[-1] == times[-1] == end
    else:
        assert sol.message == "reached t_end" and (count == 0 or len(times) < count)


# -- Solution.plot -----------------------------------------------------------------------------


@FUZZ
@given(
    n=st.sampled_from([1, 3, 12]),
    batch=st.sampled_from([(), (2,), (2, 1)]),
    saved=st.sampled_from(["ends", "t_eval", "dense", "one"]),
    complex_state=st.booleans(),
    member=st.one_of(
        st.none(),
        odd_scalars,
        st.tuples(st.integers(-3, 3)),
        st.tuples(st.integers(-2, 2), st.integers(-1, 1)),
    ),
    kind=st.sampled_from(["auto", "lines", "image", "bars", None]),
    part=st.sampled_from(["auto", "real", "imag", "abs", "phase", 0]),
    path=st.sampled_from([None, "fig.png", "fig.svg", "fig.txt", "fig", 3]),
)
def test_solution_plot_fuzz(tmp_path_factory, n, batch, saved, complex_state, member, kind, part, path):
    """``Solution.plot`` with odd members, kinds, parts and paths: a figure whose curves or
    image hold the member's values, or an error naming the option."""
    import matplotlib.pyplot as plt

    lam = -np.linspace(0.5, 5.0, n) * (1 + 0.5j if complex_state else 1)
    prob = expint.SemilinearProblem(expint.Diagonal(lam), lambda t, y: 0.1 * y * y)
    y0 = np.ones((*batch, n)) * (1 + 1j if complex_state else 1)
    opts = {
        "ends": {},
        "t_eval": {"t_eval": [0.0, 0.25, 0.5, 1.0]},
        "dense": {"dense_output": True},
        "one": {"t_eval": [1.0]},
    }[saved]
    sol = expint.solve(prob, y0, (0.0, 1.0), scheme="etdrk4", n_steps=4, **opts)
    where = None if path is None or path == 3 else tmp_path_factory.mktemp("plot") / path
    got = _check(
        lambda: sol.plot(where if where is not None else path, member=member, kind=kind, part=part),
        ("member", "kind", "part", "path", "figure format", "file name", "two or more times"),
    )
    if got is None:
        plt.close("all")
        return
    if where is not None:
        assert got == where and where.stat().st_size > 0
    else:  # the axes: one finite curve per component, or an image of every (t, component)
        times = 400 if saved == "dense" else len(sol.t)
        if kind == "image" or (kind == "auto" and n > 10):
            (mesh,) = got.collections
            values = np.asarray(mesh.get_array())
            assert values.size == times * n
        else:
            lines = got.get_lines()
            assert len(lines) == n and all(len(ln.get_ydata()) == times for ln in lines)
            values = np.concatenate([ln.get_ydata() for ln in lines])
        assert np.all(np.isfinite(values))
    plt.close("all")


# -- runs that fail ------------------------------------------------------------------------------


@FUZZ
@given(
    y0=st.sampled_from([[3.0], [0.5], [[0.5], [3.0]], [[3.0], [2.0]], [[0.2], [0.4], [3.0]]]),
    scheme=st.sampled_from(["etdrk4", "etdab3", "krogstad43", "etdab43", "exprb32"]),
    backwards=st.booleans(),
    t_eval=st.one_of(st.none(), st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4, unique=True)),
    dense=st.booleans(),
    independent=st.booleans(),
)
def test_failed_run_fuzz(y0, scheme, backwards, t_eval, dense, independent):
    """``y' = ∓y + y²`` blows up from 3 at t = log(3/2) (either direction), not from
    ≤ 0.5: whatever the saved times, batch and scheme, a run either succeeds or ends with
    ``success=False``, a message, at least one saved time inside the span in order, and
    finite states only (a failed run ends at its last finite state, each member's where
    it stopped)."""
    sign = -1.0 if backwards else 1.0
    prob = expint.SemilinearProblem(expint.Diagonal(np.array([-sign])), lambda t, y: sign * y * y)
    y = np.array(y0)
    span = (0.0, -1.0) if backwards else (0.0, 1.0)
    sch = expint.schemes.get(scheme)
    opts: dict = (
        {"rtol": 1e-6, "atol": 1e-8} if sch.adaptive and not scheme.startswith("etdab3") else {"n_steps": 50}
    )
    if scheme in ("etdrk4", "etdab3"):
        opts = {"n_steps": 50}
    if t_eval is not None:
        opts["t_eval"] = sorted((sign * t for t in t_eval), reverse=backwards)
    if dense:
        opts["dense_output"] = True
    if independent and y.ndim > 1 and "rtol" in opts:
        opts["batch_steps"] = "independent"
    if y.ndim > 1 and "rtol" in opts and sch.rosenbrock is not None:
        opts["batch_steps"] = "independent"  # one Jacobian per member: no shared steps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = _check(lambda: expint.solve(prob, y, span, scheme=scheme, **opts), ("t_eval",))
    if sol is None:
        return
    assert len(sol.t) >= 1 and sol.y.shape == (len(sol.t), *y.shape)
    inside = (sol.t - span[0]) * sign
    assert np.all(inside >= -1e-12) and np.all(inside <= 1 + 1e-12)
    assert np.all(np.diff(sol.t) * sign >= 0)  # (t_eval within 1e-12 of a grid time lands on it)
    assert np.isfinite(sol.y).all()  # a failed run ends at its last finite state
    assert sol.success or sol.message


# -- steps in a Dense operator's eigenbasis -------------------------------------------------

EIGENBASIS_SCHEMES = ["krogstad43", "hochost43", "whalen53", "etdab43", "etdab54", "krogstad", "etdab4"]


@FUZZ
@given(
    kind=st.sampled_from(["symmetric", "nonsymmetric", "complex"]),
    n=st.integers(36, 44),
    seed=st.integers(0, 2**16),
    scheme=st.sampled_from(EIGENBASIS_SCHEMES),
    rtol=st.sampled_from([1e-3, 1e-6, 1e-9]),
    batch=st.booleans(),
    dense=st.booleans(),
    on_torch=st.booleans(),
    independent=st.booleans(),
)
def test_eigenbasis_agrees_fuzz(kind, n, seed, scheme, rtol, batch, dense, on_torch, independent):
    """A run that steps in a `Dense` operator's eigenbasis (`expint._eigenbasis`) gives
    what the same run in the original coordinates gives: random well-conditioned
    operators (symmetric, real non-symmetric with a real spectrum, complex), adaptive
    pairs and fixed steps on an irregular grid, batches (with per-sample steps too), dense
    output, torch states."""
    import expint._eigenbasis as eigenbasis

    rng = np.random.default_rng(seed)
    lam = -np.geomspace(0.1, 300.0, n)
    if kind == "symmetric":
        q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        a = (q * lam) @ q.T
    else:
        v = np.eye(n) + 0.2 * rng.standard_normal((n, n)) / np.sqrt(n)
        if kind == "complex":
            v = v + 0.2j * rng.standard_normal((n, n)) / np.sqrt(n)
            lam = lam + 1j * rng.uniform(-5.0, 5.0, n)
        a = (v * lam) @ np.linalg.inv(v)
    complex_state = kind == "complex"

    def nonlinear(t, y):
        mod = y * y.conj() if complex_state else y * y
        return -0.5 * mod * y + 0.3 * np.cos(t) if not complex_state else -0.5 * mod * y + 0.3j * y

    y0 = rng.standard_normal((2, n) if batch else (n,))
    if complex_state:
        y0 = y0 + 1j * rng.standard_normal(y0.shape)
    if on_torch:
        y0 = torch.from_numpy(y0)
    sch = expint.schemes.get(scheme)
    if sch.adaptive:
        kw: dict = {"rtol": rtol, "atol": rtol}
        if batch and independent:  # per-sample steps: the batch together in the eigenbasis
            kw["batch_steps"] = "independent"
    else:
        ts = np.concatenate([[0.0], np.cumsum(rng.uniform(0.5, 1.5, 24))])
        kw = {"ts": ts / ts[-1]}

    def run():
        op = expint.Dense(a)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sol = expint.solve(expint.SemilinearProblem(op, nonlinear), y0, (0.0, 1.0), scheme=scheme,
                               dense_output=dense, **kw)  # fmt: skip
        return sol, op._eigenbasis is not None

    fast, used = run()
    op_ok = expint.Dense(a).phi_method != "expm"
    assert used == op_ok
    keep = eigenbasis.EIGENBASIS_MIN_N
    eigenbasis.EIGENBASIS_MIN_N = 10**9
    try:
        plain, _ = run()
    finally:
        eigenbasis.EIGENBASIS_MIN_N = keep
    event(f"{kind}, eigenbasis used: {op_ok}")
    assert fast.success == plain.success
    if not plain.success:
        return
    assert fast.stats["steps"] == plain.stats["steps"]
    np.testing.assert_array_equal(fast.t, plain.t)
    yf, yp = np.asarray(fast.y), np.asarray(plain.y)
    scale = max(1.0, float(np.max(np.abs(yp))))
    np.testing.assert_allclose(yf, yp, rtol=0, atol=1e-9 * scale)
    if dense:
        times = np.linspace(0.0, 1.0, 7)
        dense_fast, dense_plain = np.asarray(fast.sol(times)), np.asarray(plain.sol(times))
        np.testing.assert_allclose(dense_fast, dense_plain, atol=1e-9 * scale)


@FUZZ
@given(
    kind=st.sampled_from(["symmetric", "nonsymmetric", "complex-hermitian", "skew", "complex-skew"]),
    n=st.integers(2, 70),
    seed=st.integers(0, 2**16),
    p=st.integers(0, 3),
    rows=st.sampled_from([0, 1, 3]),
    t=st.sampled_from([-0.7, 1e-3, 0.1, 1.0]),
    stiffness=st.sampled_from([0.5, 5.0, 50.0]),
    method=st.sampled_from(["auto", "krylov", "chebyshev"]),
    hermitian=st.sampled_from([None, False]),
    on_torch=st.booleans(),
    nested=st.booleans(),
)
def test_phiv_agrees_with_dense_phi_fuzz(
    kind, n, seed, p, rows, t, stiffness, method, hermitian, on_torch, nested
):
    """`phiv` against φ of the dense matrix: random symmetric, non-symmetric, complex
    Hermitian, real skew-symmetric and complex skew-Hermitian matrices with ‖tA‖ up to
    50, one vector or a block (``rows`` 0: one vector), negative times, every method and
    path, torch tensors, and calls nested inside another call's matvec, on the same
    sizes (the basis memory).  Relative error within 1e-6 at
    ``tol = 1e-9``, or a named refusal (``method="chebyshev"`` on a matrix it cannot
    serve)."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, n))
    if kind == "symmetric":
        a = (g + g.T) / 2
    elif kind == "nonsymmetric":
        a = g
    elif kind == "skew":
        a = (g - g.T) / 2
    else:
        g = g + 1j * rng.standard_normal((n, n))
        a = (g + g.conj().T) / 2 if kind == "complex-hermitian" else (g - g.conj().T) / 2
    skew = kind.endswith("skew")
    a = a * (stiffness / abs(t) / max(np.linalg.norm(a, 2), 1e-300))
    if not skew:  # (a shift would end the skew symmetry: those stay oscillatory)
        a = a - (stiffness / abs(t)) * np.eye(n)  # mostly decaying, as a stiff linear part is
    shape = (n,) if rows == 0 else (rows, n)
    vs = [rng.standard_normal(shape) for _ in range(p + 1)]
    phis = expint.phi_matrix_all(p, t * a)
    ref = sum(t**k * (phis[k] @ (v if v.ndim == 1 else v.T)) for k, v in enumerate(vs))
    ref = ref if rows == 0 else ref.T
    lib = (lambda x: torch.from_numpy(np.ascontiguousarray(x))) if on_torch else (lambda x: x)
    matrix = lib(a)
    inner = [lib(v) for v in vs]

    products = []

    def matvec(x):
        products.append(1)
        if nested and len(products) % 4 == 2:  # another Krylov process inside a product
            expint.phiv(matrix, [inner[0]], 0.5 * t, tol=1e-6)
        if on_torch:  # a torch matvec promotes by itself (torch refuses complex @ real)
            return matrix @ x.to(torch.promote_types(matrix.dtype, x.dtype))
        return matrix @ x

    herm = kind in ("symmetric", "complex-hermitian") and hermitian is None
    spectrum = None
    if herm:  # an interval for the Chebyshev path, a little wider than the spectrum
        eig = np.linalg.eigvalsh(a)
        spectrum = (float(eig[0]) - 0.01 * abs(float(eig[0])), float(eig[-1]) + 0.01 * abs(float(eig[-1])))
    op = expint.MatrixFree(
        matvec, n, hermitian=herm, spectrum=spectrum, skew_hermitian=skew and hermitian is None
    )

    def call():
        return expint.phiv(op, inner, t, tol=1e-9, method=method, hermitian=hermitian)

    res = _check(call, ("method", "spectrum", "hermitian", "tol"))
    if res is None:
        event(f"refused: {method}")
        return
    w = np.asarray(res.w)
    assert w.shape == ref.shape
    err = np.linalg.norm(w - ref) / max(np.linalg.norm(ref), 1e-300)
    event(f"{kind}, {method}, lanczos={res.info.lanczos}, chebyshev={res.info.chebyshev}")
    assert err < 1e-6, (err, res.info)
