"""``Sampler`` and ``sample``: run a method's plan on the device.

All coefficients (including the conversion of the model's prediction into the method's
target) are computed once per grid in float64 on the host, packed into one tensor and
moved/cast once per (device, dtype, batch size).  A step is then model calls plus fused
multiply–adds of device tensors: no host synchronisation, no per-step Python scalar
maths.  The only optional sync is the final non-finite check (``check_finite``): each step's
state sum goes into a device buffer, read once at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np

from .._backend import Array, is_torch_array
from .._validation import check_real
from ._compile import Program, compile_plans, undefined_start
from .grids import check_grid
from .methods import DEFAULT_METHOD, Method, get_method
from .models import check_prediction
from .schedules import Schedule

__all__ = ["Sampler", "prior_flow", "sample"]


class Sampler:
    """Precomputed sampler for one schedule, grid, method and prediction type.

    Parameters
    ----------
    schedule : Schedule
        The noise schedule the model was trained with.
    ts : array
        Decreasing times, shape ``(n_steps + 1,)``, or ``(batch, n_steps + 1)`` for a
        separate grid per sample.
    method : str or Method
        A preset from `METHODS` (default ``unipc2``, `DEFAULT_METHOD`):
        ``ddim``, ``tab1``, ``rhoab1``, ``lab1``, ``tab2``, ``rhoab2``, ``lab2``, ``tab3``,
        ``rhoab3``, ``lab3``, ``rhork2``, ``rhork3``, ``rhork4``, ``ipndm``, ``rhoab1_x0``,
        ``rhoab2_x0``, ``dpmpp2m``, ``dpmpp3m``, ``dpmpp2m_pc``, ``dpmpp3m_pc``, ``unipc2``,
        ``unipc3`` (the tests check this list against the registry), or an instance such as
        ``ExponentialAdams(2, "t", "x0")``.  diffusers' DEIS ``solver_order=3`` is ``lab2``.
    prediction : {"eps", "x0", "v", "score", "flow"}
        What the model returns.
    prior_from : float, optional
        The time of ``x_T`` when it is earlier in sampling than the first model call
        (``prior_from > ts[0]``): the interval ``[prior_from, ts[0]]`` is crossed
        without model calls by `prior_flow`, the probability-flow ODE of a data
        distribution concentrated at ``prior_mean``.  At high noise a network's data
        estimate ``x̂_0 = (x − σ ε̂)/α`` amplifies its ε error by ``σ/α`` (about 157 at
        t = 999 of the linear DDPM schedule) while carrying almost no information about
        the sample, so with a handful of calls it pays to spend none there
        (``optimize_grid(..., skip=...)`` chooses where).  The price is a bias of
        about ``α(ts[0])·‖x_0 − prior_mean‖`` that does not shrink with more calls.
    prior_mean : float or tensor
        The data mean the prior flow assumes (a scalar, or a tensor broadcasting
        against one sample); 0 for centred data.

    Notes
    -----
    Call it as ``sampler(model, x_T)`` with ``model(x, t)``, ``t`` a float tensor of
    shape ``(batch,)`` in the schedule's time units.  Model outputs are kept (not
    copied) for the multistep history: a model must return a new tensor each call, not
    a buffer it overwrites (detected by torch's version counter: a ``ValueError`` names
    the step).  Returning the same unchanged tensor every call is fine.
    """

    def __init__(
        self,
        schedule: Schedule,
        ts: Any,
        method: Any = DEFAULT_METHOD,
        prediction: str = "eps",
        *,
        prior_from: float | None = None,
        prior_mean: Any = 0.0,
    ):
        if isinstance(schedule, type):
            raise TypeError(f"schedule must be an instance, e.g. {schedule.__name__}(), not the class")
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be an expint.diffusion schedule, got {type(schedule).__name__}")
        self.schedule = schedule
        self.method: Method = get_method(method)
        self.prediction = check_prediction(prediction)
        self.ts = check_grid(schedule, ts)
        rows = np.atleast_2d(self.ts)
        self.n_steps = rows.shape[1] - 1
        if self.method.target == "eps":  # x/α: a step may not start where α = 0
            starts = np.argwhere(np.asarray(schedule.alpha(rows[:, :-1])) == 0)
            if starts.size:
                raise undefined_start(int(starts[0, 1]), float(rows[tuple(starts[0])]))
        # a per-sample grid often repeats rows (groups of samples sharing a grid): each
        # distinct row is planned once (planning is the host work of the set-up)
        distinct, which = np.unique(rows, axis=0, return_inverse=True)
        planned = [self.method.plan(schedule, row) for row in distinct]
        plans = [planned[k] for k in np.ravel(which)]
        self._program: Program = compile_plans(plans, rows, schedule, self.prediction)
        self.target = self._program.target
        # step end times for callbacks: floats, or per-sample arrays for 2-D grids
        self._t_after = [
            float(rows[0, j]) if len(rows) == 1 else rows[:, j].copy() for j in range(1, rows.shape[1])
        ]
        #: Interpolation degree of each step of an Adams method (``None`` for Runge–Kutta steps).
        self.degrees = [step.degree for step in plans[0].steps]
        self._device_cache: dict = {}
        self.prior_from = _check_prior_from(schedule, prior_from, rows[:, 0])
        self.prior_mean = check_prior_mean(prior_mean)

    @property
    def stages_per_step(self) -> list[int]:
        """Model calls of each step (1 for multistep methods)."""
        return [len(step.stages) for step in self._program.steps]

    @property
    def nfe(self) -> int:
        """Model evaluations per sample."""
        return self._program.n_stages

    def _on(self, x: Any) -> tuple[list, Any]:
        import torch

        key = (x.device, x.dtype, x.shape[0])
        hit = self._device_cache.get(key)
        if hit is None:
            real = x.real.dtype if x.is_complex() else x.dtype
            rows = self._program.table.shape[1]
            if rows not in (1, x.shape[0]):
                raise ValueError(
                    f"the grid has {rows} rows (per-sample grids) but x_T has batch {x.shape[0]}"
                )
            coef = torch.as_tensor(self._program.table, dtype=real).to(x.device)
            shape = (rows,) + (1,) * (x.dim() - 1)
            views = [coef[k].reshape(shape) for k in range(coef.shape[0])]
            # the model's times in float32 at least: bfloat16 spaces numbers near 1000 by 4
            # (a DDPM timestep 999 became 1000, past the schedule's end) and float16 by 0.5
            wide = torch.float32 if real in (torch.float16, torch.bfloat16) else real
            times = torch.as_tensor(self._program.times, dtype=wide).to(x.device)
            if rows == 1:
                times = times.expand(-1, x.shape[0])
            hit = self._device_cache[key] = (views, times)
        return hit

    # -- run ---------------------------------------------------------------------------
    def __call__(
        self,
        model: Callable[[Any, Any], Any],
        x_T: Any,
        *,
        progress: bool = False,
        callback: Callable[[dict], None] | None = None,
        check_finite: bool = True,
    ) -> Any:
        """Integrate from ``ts[0]`` to ``ts[-1]`` starting at ``x_T``.

        Parameters
        ----------
        model : callable
            ``model(x, t) -> tensor shaped like x``; ``t`` has shape ``(batch,)``.
        x_T : torch.Tensor
            Initial state at ``ts[0]``, shape ``(batch, ...)``, any float dtype/device.
        progress : bool
            Show a tqdm bar.
        callback : callable, optional
            Called after each step with ``{"i", "t", "x", "pred", "x_in", "t_in"}``:
            ``pred`` is the step's last prediction, in the method's target space (ε or
            x0), made at state ``x_in`` and time ``t_in``; ``t`` is the step's end time.
            Times are floats, or float64 arrays of shape ``(batch,)`` for per-sample
            grids.
        check_finite : bool
            Refuse a non-finite ``x_T`` and raise a ``ValueError`` naming the first step
            whose state became non-finite (a model output with NaN or inf shows there).
            Costs one sum of the new state per step on the device (about a tenth of a
            fused update) and one host synchronisation, after the last step.

        Returns
        -------
        torch.Tensor
            The state at ``ts[-1]``, shaped like ``x_T``.
        """
        if not callable(model):
            raise TypeError("model must be callable as model(x, t)")
        run = self.iterate(x_T, progress=progress, callback=callback, check_finite=check_finite)
        xs, t = next(run)
        while True:
            try:
                xs, t = run.send(model(xs, t))
            except StopIteration as done:
                return done.value

    def iterate(
        self,
        x_T: Any,
        *,
        progress: bool = False,
        callback: Callable[[dict], None] | None = None,
        check_finite: bool = True,
    ) -> Generator[tuple[Any, Any], Any, Any]:
        """The sampler as a generator, for callers that own the model loop (e.g. a
        diffusers pipeline): it yields ``(x, t)`` for each model call, expects the model
        output through ``send``, and returns the final state (``StopIteration.value``)."""
        import torch

        check_start(x_T, "x_T")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable as callback(info), got {type(callback).__name__}")
        views, times = self._on(x_T)
        if self.prior_from is not None:
            _check_mean_shape(self.prior_mean, tuple(x_T.shape), "prior_mean")
            first = np.asarray(self.ts[..., 0], dtype=np.float64).reshape(-1)
            x_T = _flow(self.schedule, x_T, np.full(1, self.prior_from), first, self.prior_mean)
        sums = None
        if check_finite:  # one slot per step, the last for x_T; read once at the end
            real = x_T.real.dtype if x_T.is_complex() else x_T.dtype
            if real in (torch.float16, torch.bfloat16):
                real = torch.float32
            sums = torch.empty(len(self._program.steps) + 1, dtype=real, device=x_T.device)
            slots = sums.unbind()  # the per-step views, made once
            _probe(x_T, slots[-1])
        preds: dict[int, Any] = {}
        raw: dict[int, int] = {}  # held model outputs (index → tensor version when stored)
        x = x_T
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(self._program.steps), desc=f"expint {self.method.name}", unit="step")
        last = last_in = None
        last_t = 0
        x_prev = x
        for i, step in enumerate(self._program.steps):
            for stage in step.stages:
                xs = (
                    x if stage.x_slot is None else _combine(views[stage.x_slot], x, stage.terms, views, preds)
                )
                out = yield xs, times[stage.time]
                check_output(out, xs, i)
                last_in, last_t = xs, stage.time
                if stage.conversion is None:
                    # the history holds model outputs as returned: one that changed since
                    # (a model writing every result into the same buffer) is an error
                    _check_unchanged(raw, preds, i, self.method.name)
                    raw[stage.pred] = out._version
                    last = preds[stage.pred] = out
                else:
                    a, b = stage.conversion
                    last = preds[stage.pred] = (views[a] * xs).addcmul_(views[b], out)
            if step.corrector is not None:  # recompute x_i from x_{i−1} with the new value
                x = _combine(views[step.corrector.x_slot], x_prev, step.corrector.terms, views, preds)
            x_prev = x
            x = _combine(views[step.out_x], x, step.out_terms, views, preds)
            if sums is not None:
                # every prediction of the step has a nonzero weight in x: NaN/inf in
                # an output shows here, in a state still hot in cache
                _probe(x, slots[i])
            for idx in step.release:
                preds.pop(idx, None)
                raw.pop(idx, None)
            if bar is not None:
                bar.update()
            if callback is not None:
                callback(
                    {
                        "i": i,
                        "t": self._t_after[i],
                        "x": x,
                        "pred": last,  # the last stage's prediction, in the method's target space
                        "x_in": last_in,  # ... the state it was made at
                        "t_in": self._stage_time(last_t),  # ... and that state's time
                    }
                )
        if bar is not None:
            bar.close()
        if sums is not None and not bool(torch.isfinite(sums).all()):
            if not bool(torch.isfinite(sums[-1])):
                raise ValueError("x_T contains NaN or inf; start from finite noise")
            bad = int(torch.nonzero(~torch.isfinite(sums))[0, 0])
            ends = np.atleast_2d(self.ts)[0]
            raise ValueError(
                f"the state became non-finite at step {bad} (t = {ends[bad]:g} to {ends[bad + 1]:g}): the "
                "model returned non-finite values there (or the state overflowed); the samples are invalid"
            )
        return x

    def _stage_time(self, stage: int) -> Any:
        row = self._program.times[stage]
        return float(row[0]) if row.shape[0] == 1 else row.copy()

    @property
    def model_times(self) -> np.ndarray:
        """Times of the model calls in order, shape ``(nfe, rows)`` (float64)."""
        return self._program.times


def check_start(x: Any, name: str) -> None:
    """Raise a ``TypeError``/``ValueError`` naming ``name`` unless ``x`` is a floating-point
    (or complex) torch tensor with a leading batch axis."""
    if not is_torch_array(x):
        raise TypeError(f"{name} must be a torch tensor (torch.from_numpy(...) for numpy data)")
    if not (x.is_floating_point() or x.is_complex()):
        raise TypeError(f"{name} has dtype {x.dtype}; pass a floating-point tensor")
    if x.dim() < 1:
        raise ValueError(f"{name} must have a leading batch axis")


def check_output(out: Any, xs: Any, step: int) -> None:
    if not is_torch_array(out):
        # diffusers' networks return an output object whose tensor is ``.sample``
        hint = (
            "; a diffusers network returns an output object: pass lambda x, t: net(x, t).sample"
            if is_torch_array(getattr(out, "sample", None))
            else " (e.g. torch.from_numpy(...) on x's device)"
        )
        raise TypeError(
            f"step {step}: model returned {type(out).__module__}.{type(out).__name__}; it must return a "
            f"torch tensor shaped like x{hint}"
        )
    if out.shape != xs.shape:
        raise ValueError(
            f"step {step}: model returned shape {tuple(out.shape)} for an input of shape {tuple(xs.shape)}; "
            "it must return a tensor shaped like x"
        )


def _probe(x: Any, out: Any) -> None:
    """Write into the 0-d tensor ``out`` a value that is non-finite if ``x`` has NaN or
    inf: its sum (NaN and inf propagate).  One reduction kernel written straight into
    ``out`` (no extra copy kernel, which matters where launches dominate, as on a GPU
    at small batch); ~10% of a fused update on a CPU, where ``isfinite().all()`` costs
    three updates.  Half precision is summed in float32 (``out``'s dtype) so that it
    does not overflow; a float32 sum overflows only for entries of order 1e32."""
    import torch

    x = x.detach()  # a check, not part of the result: `out=` refuses tensors needing grad
    flat = (torch.view_as_real(x) if x.is_complex() else x).reshape(-1)
    if flat.dtype == out.dtype:
        torch.sum(flat, 0, out=out)
    else:
        torch.sum(flat, 0, dtype=out.dtype, out=out)


def _check_unchanged(raw: dict[int, int], preds: dict, step: int, method: str) -> None:
    """Raise if a held model output was modified in place after it was returned
    (torch's version counter; a few attribute reads per model call)."""
    for idx, version in raw.items():
        if preds[idx]._version != version:
            raise ValueError(
                f"step {step}: an earlier model output that the {method} history still holds was "
                "overwritten (a model that writes each result into the same buffer); return a new "
                "tensor each call (e.g. out.clone())"
            )


def _combine(c0: Any, x: Any, terms: Sequence[tuple[int, int]], views: list, preds: dict) -> Any:
    """``c0·x + Σ c_k P_k``: one multiply, then fused in-place multiply–adds on the fresh
    result (the kernels a hand-written update would launch)."""
    acc = c0 * x
    for idx, slot in terms:
        acc.addcmul_(views[slot], preds[idx])
    return acc


def prior_flow(schedule: Schedule, x: Any, t_from: float, t_to: Any, mean: Any = 0.0) -> Any:
    r"""Carry ``x`` from ``t_from`` to ``t_to`` along the probability-flow ODE of a data
    distribution concentrated at ``mean``, without a model call.

    For a point mass the data prediction is ``x̂_0 = μ`` everywhere, so the noise
    ``ε = (x − α_s μ)/σ_s`` is constant along each path and

    $$x_t = α_t μ + \frac{σ_t}{σ_s}\,(x_s − α_s μ).$$

    ``t_to`` may be one time or, for per-sample grids, an array of shape ``(batch,)``.
    `Sampler` uses it for ``prior_from``.
    """

    if not is_torch_array(x):
        raise TypeError("x must be a torch tensor")
    t_from_arr = np.full(1, check_real(t_from, name="t_from"))
    schedule.check_times(t_from_arr, "t_from")
    try:
        t_to = np.asarray(t_to, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"t_to must be a time or an array of times, got {t_to!r}") from None
    schedule.check_times(t_to, "t_to")
    if t_to.size not in (1, x.shape[0]):
        raise ValueError(f"t_to must be one time or one per sample ({x.shape[0]}), got {t_to.size} times")
    mean = check_prior_mean(mean, tuple(x.shape), name="mean")
    if not np.all(schedule.sigma(t_from_arr) > 0):
        raise ValueError(f"sigma must be positive at t_from = {t_from}")
    return _flow(schedule, x, t_from_arr, t_to, mean)


def _flow(schedule: Schedule, x: Any, t_from_arr: np.ndarray, t_to: np.ndarray, mean: Any) -> Any:
    """`prior_flow` on checked arguments (the sampler's, checked once when it was
    built: checking a tensor mean's values here would wait for the device)."""
    import torch

    a_s, s_s = schedule.alpha(t_from_arr), schedule.sigma(t_from_arr)
    a_t, s_t = schedule.alpha(t_to), schedule.sigma(t_to)
    ratio = s_t / s_s
    shift = a_t - ratio * a_s  # the coefficient of μ
    real = x.real.dtype if x.is_complex() else x.dtype
    shape = (-1,) + (1,) * (x.dim() - 1)
    r = torch.as_tensor(ratio, dtype=real, device=x.device).reshape(shape)
    out = x * r
    if not (isinstance(mean, (int, float)) and mean == 0):
        m = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
        out = out + torch.as_tensor(shift, dtype=real, device=x.device).reshape(shape) * m
    return out


def check_prior_mean(mean: Any, shape: tuple[int, ...] | None = None, name: str = "prior_mean") -> Any:
    """``mean`` unchanged if it is a finite number, tensor or array (broadcasting against
    a batch of ``shape`` when given); a ``TypeError``/``ValueError`` naming
    ``name`` otherwise: a NaN mean would turn every sample into NaN without a
    model call."""
    if isinstance(mean, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number or a tensor, got {mean!r}")
    if isinstance(mean, (int, float, np.integer, np.floating)):  # the common case, no torch needed
        if not np.isfinite(mean):
            raise ValueError(f"{name} must be finite, got {mean!r}")
        return mean
    import torch

    try:
        values = torch.as_tensor(mean)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a number or a tensor, got {type(mean).__name__}") from None
    if not (values.is_floating_point() or values.is_complex() or values.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{name} must be a number or a tensor, got dtype {values.dtype}")
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"{name} must be finite (it contains NaN or inf)")
    if shape is not None:
        _check_mean_shape(values, shape, name)
    return mean


def _check_mean_shape(mean: Any, shape: tuple[int, ...], name: str) -> None:
    """A mean that broadcasts against a batch of ``shape`` (shapes only: no device
    read)."""
    import torch

    if not hasattr(mean, "shape"):
        return
    try:
        ok = torch.broadcast_shapes(tuple(mean.shape), shape) == torch.Size(shape)
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(
            f"{name} of shape {tuple(mean.shape)} does not broadcast to the samples' shape {shape}"
        )


def _check_prior_from(schedule: Schedule, prior_from: Any, firsts: np.ndarray) -> float | None:
    if prior_from is None:
        return None
    if isinstance(prior_from, bool) or not isinstance(prior_from, (int, float, np.integer, np.floating)):
        raise TypeError(f"prior_from must be a time (a float) or None, got {prior_from!r}")
    value = float(prior_from)
    schedule.check_times(np.array([value]), "prior_from")
    if not np.all(value > firsts):
        raise ValueError(
            f"prior_from = {value} must be later in sampling than the first grid time ts[0] = "
            f"{float(np.max(firsts))} (it is the time of x_T; the model is first called at ts[0])"
        )
    if not float(schedule.sigma(np.array([value]))[0]) > 0:
        raise ValueError(f"sigma must be positive at prior_from = {value}")
    return value


def sample(
    model: Callable[[Array, Array], Array],
    x_T: Array,
    schedule: Schedule,
    ts: Array,
    *,
    method: str | Method = DEFAULT_METHOD,
    prediction: str = "eps",
    progress: bool = False,
    callback: Callable[[dict], None] | None = None,
) -> Array:
    """Sample in one call: ``Sampler(schedule, ts, method, prediction)(model, x_T, ...)``.

    A grid of ``n`` steps costs ``n`` model calls for multistep methods and
    ``stages × n`` for Runge–Kutta methods.

    Parameters
    ----------
    model : callable
        ``model(x, t) -> tensor shaped like x``, with ``t`` a float tensor of shape
        ``(batch,)`` in the schedule's time units.
    x_T : torch.Tensor
        Initial state at ``ts[0]`` (for VP schedules: standard normal noise).
    schedule : Schedule
        The noise schedule the model was trained with.
    ts : array
        Decreasing times from `grid`, shape ``(n + 1,)`` or per-sample
        ``(batch, n + 1)``.
    method : str or Method
        A method name (default ``DEFAULT_METHOD``) or an instance such as
        ``ExponentialAdams(2, "t", "x0")``.  diffusers' DEIS ``solver_order=3`` is
        expint's ``lab2``.
    prediction : {"eps", "x0", "v", "score", "flow"}
        What the model returns.
    progress : bool
        Show a tqdm bar.
    callback : callable, optional
        See `Sampler.__call__`.

    Returns
    -------
    torch.Tensor
        The state at ``ts[-1]`` (clean samples when the grid ends at σ = 0).
    """
    return Sampler(schedule, ts, method=method, prediction=prediction)(
        model, x_T, progress=progress, callback=callback
    )
