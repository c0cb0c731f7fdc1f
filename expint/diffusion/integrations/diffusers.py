"""A diffusers scheduler that runs any expint method.

``ExpintScheduler`` follows diffusers' scheduler interface (``SchedulerMixin``,
``ConfigMixin``): build it ``from_config`` of a pipeline's scheduler, call
``set_timesteps(n)``, then the pipeline's loop ``out = unet(x, t); x =
scheduler.step(out, t, x).prev_sample`` samples with the chosen method.  Internally it
is an `expint.diffusion.Sampler` driven one model call at a time
(`Sampler.iterate`), so every coefficient is precomputed and a step does no host
work.  diffusers is imported only when this module is.

Config keys
-----------
A scheduler config describes two things: the model (its noise schedule, what it
predicts, how its outputs were post-processed in training) and the previous
scheduler's solver.  Every key of the first kind that a diffusers DDPM-family or
flow-matching scheduler honours is honoured here — also where the source scheduler left
it at its own default (``HeunDiscreteScheduler()``'s β range, ``DDIMScheduler()``'s
x0 clipping) — or the config is refused with a ``ValueError`` naming the key; keys
of the second kind are replaced by ``method`` and ``grid_kind`` (see ``SOLVER_KEYS``).
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Generator
from typing import Any, ClassVar

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import KarrasDiffusionSchedulers, SchedulerMixin, SchedulerOutput

from ..._backend import to_numpy
from ..._validation import check_count, check_device
from .._compile import conversion_at
from ..grids import KINDS, SPACINGS, grid
from ..methods import DEFAULT_FLOW_METHOD, DEFAULT_METHOD, get_method
from ..sampler import Sampler
from ..schedules import DiscreteVP, FlowMatching, Schedule

_PREDICTIONS = {"epsilon": "eps", "sample": "x0", "v_prediction": "v", "flow_prediction": "flow"}

#: Keys that choose how the previous scheduler solved the ODE (its order, variant,
#: spacing).  They do not describe the model, and expint's ``method`` / ``grid_kind``
#: replace them; ``use_karras_sigmas``, ``use_exponential_sigmas`` and ``use_lu_lambdas``
#: pick the matching ``grid_kind`` when none is given.
SOLVER_KEYS = (
    "solver_order",
    "algorithm_type",
    "solver_type",
    "lower_order_final",
    "euler_at_final",
    "lambda_min_clipped",
    "predict_x0",
    "disable_corrector",
    "solver_p",
    "skip_prk_steps",
    "interpolation_type",
    "timestep_type",
    "timestep_spacing",
    "steps_offset",
    "use_karras_sigmas",
    "use_exponential_sigmas",
    "use_lu_lambdas",
)

# keys expint cannot honour: refused unless "off" (False / None)
_REFUSED = {
    "use_beta_sigmas": "beta-distributed sigmas are not offered; use grid_kind instead",
    "invert_sigmas": "inverted flow sigmas (Mochi) are not supported",
    "shift_terminal": "a stretched terminal shift is not supported",
    "stochastic_sampling": "ExpintScheduler integrates the deterministic probability-flow ODE",
}


def _rescale_zero_snr(alphas_cumprod: np.ndarray) -> np.ndarray:
    """Lin et al. (2024), "Common diffusion noise schedules and sample steps are
    flawed", Alg. 1: shift and scale √ᾱ so the last timestep has zero SNR and the first
    is unchanged.  ᾱ at the last timestep is then set to 2⁻²⁴ (as diffusers'
    multistep schedulers do) so that α > 0 stays representable — or to half the
    previous ᾱ where that is below 2⁻²⁴ (a schedule whose ᾱ ends low, such as DDPM's
    linear one), which keeps ᾱ decreasing: the log-SNR must keep falling to the end."""
    root = np.sqrt(alphas_cumprod)
    first, last = root[0], root[-1]
    root = (root - last) * first / (first - last)
    out = root**2
    out[-1] = min(2.0**-24, 0.5 * out[-2]) if out.size > 1 else 2.0**-24
    return out


def _explicit_grid(values: Any, name: str) -> np.ndarray:
    """``timesteps``/``sigmas`` given to `ExpintScheduler.set_timesteps`: a non-empty,
    finite, strictly decreasing 1-D sequence (one entry per model call)."""
    try:
        arr = np.asarray(to_numpy(values) if torch.is_tensor(values) else values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers, got {values!r}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D sequence, one entry per model call; got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {values!r}")
    if np.any(np.diff(arr) >= 0):
        raise ValueError(f"{name} must be strictly decreasing (from noise towards data), got {arr.tolist()}")
    return arr


class ExpintScheduler(SchedulerMixin, ConfigMixin):
    """diffusers scheduler running an expint sampling method.

    Parameters
    ----------
    num_train_timesteps, beta_start, beta_end, beta_schedule, trained_betas
        The training noise schedule (as in every diffusers scheduler).
    prediction_type : {"epsilon", "sample", "v_prediction", "flow_prediction"}
        What the network predicts.
    method : str, optional
        Any expint method name.  Default: ``expint.diffusion.DEFAULT_METHOD``, or
        ``DEFAULT_FLOW_METHOD`` (``rhoab1_x0``) for flow matching.
        diffusers' DEIS ``solver_order=3`` interpolates 3 points: it is expint's ``lab2``.
    grid_kind : str, optional
        ``"logsnr"``, ``"tempered"``, ``"quadratic"``, ``"karras"``, ``"uniform"``, or a
        diffusers spacing ``"leading"``, ``"trailing"``, ``"linspace"`` (which honours
        ``steps_offset``).  Default: ``"karras"`` if ``use_karras_sigmas``, ``"logsnr"``
        if ``use_exponential_sigmas``/``use_lu_lambdas``, else ``"tempered"`` (VP: near
        uniform at a few steps, near quadratic at many; see ``expint.diffusion.grid``) or ``"uniform"`` in σ
        before the shift (flow matching, as diffusers' ``FlowMatchEulerDiscreteScheduler``).
    final_sigmas_type : {"zero", "sigma_min"}, optional
        End exactly at σ = 0 (clean data) or at the first training timestep.  Default
        ``"zero"``, or ``"sigma_min"`` for a DDIM config with ``set_alpha_to_one=False``;
        the config records the value chosen, so that a saved config switches back to
        diffusers' schedulers (which refuse ``None``).
    rescale_betas_zero_snr : bool
        Rescale the schedule to zero terminal SNR (the model was trained so).
    variance_type : str, optional
        ``"learned"``/``"learned_range"``: the model outputs a variance as extra channels;
        only the first half of the channels (the prediction) is used.
    clip_sample, clip_sample_range, thresholding, dynamic_thresholding_ratio, sample_max_value
        Post-processing of the x0 prediction as in diffusers' DDIM/DDPM/DPM-Solver:
        clipping to ``[−range, range]`` or dynamic thresholding (Saharia et al. 2022).
    schedule : {"vp", "flow"}
        ``"flow"``: flow matching (``x = (1 − σ) x0 + σ ε``, model time ``σ ·
        num_train_timesteps``), set automatically by `from_config` for a
        ``FlowMatch*`` config or ``use_flow_sigmas=True``.
    shift, use_dynamic_shifting, base_shift, max_shift, base_image_seq_len,
    max_image_seq_len, time_shift_type, flow_shift, use_flow_sigmas
        Flow-matching time shift ``σ ↦ sσ/(1 + (s − 1)σ)`` as in
        ``FlowMatchEulerDiscreteScheduler``; with ``use_dynamic_shifting`` the pipeline
        passes ``mu`` to `set_timesteps`.
    **solver_keys
        Keys of the previous scheduler's solver (``SOLVER_KEYS``), accepted and replaced
        by ``method``/``grid_kind``.

    Notes
    -----
    ``set_timesteps(n)`` makes exactly ``n`` model calls for a multistep method (RK
    methods: stages × steps).  Model outputs in float16/bfloat16 are accumulated in a
    float32 state, as diffusers' schedulers do; ``prev_sample`` has the dtype of the
    sample passed in.  img2img/inpainting pipelines may start at a later timestep
    (``set_begin_index`` or the first ``step`` call's timestep); a multistep method then
    starts afresh there, lowering its order on the first steps.
    """

    _compatibles: ClassVar[list[str]] = [e.name for e in KarrasDiffusionSchedulers]
    ignore_for_config: ClassVar[list[str]] = ["solver_keys"]  # inert, and not JSON-serialisable
    order = 1

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        trained_betas: Any = None,
        prediction_type: str = "epsilon",
        method: str | None = None,
        grid_kind: str | None = None,
        final_sigmas_type: str | None = None,
        rescale_betas_zero_snr: bool = False,
        variance_type: str | None = None,
        clip_sample: bool = False,
        clip_sample_range: float = 1.0,
        thresholding: bool = False,
        dynamic_thresholding_ratio: float = 0.995,
        sample_max_value: float = 1.0,
        set_alpha_to_one: bool = True,
        schedule: str = "vp",
        shift: float = 1.0,
        use_dynamic_shifting: bool = False,
        base_shift: float = 0.5,
        max_shift: float = 1.15,
        base_image_seq_len: int = 256,
        max_image_seq_len: int = 4096,
        time_shift_type: str = "exponential",
        flow_shift: float = 1.0,
        use_flow_sigmas: bool = False,
        use_beta_sigmas: bool = False,
        invert_sigmas: bool = False,
        shift_terminal: float | None = None,
        stochastic_sampling: bool = False,
        **solver_keys: Any,
    ):
        check_count(num_train_timesteps, name="num_train_timesteps")
        unknown = sorted(set(solver_keys) - set(SOLVER_KEYS))
        if unknown:
            raise ValueError(
                f"ExpintScheduler does not know the config key(s) {unknown}; it cannot tell whether the "
                "model depends on them.  Remove them from the config if they only describe another solver"
            )
        refused = {
            "use_beta_sigmas": use_beta_sigmas,
            "invert_sigmas": invert_sigmas,
            "shift_terminal": shift_terminal,
            "stochastic_sampling": stochastic_sampling,
        }
        for key, value in refused.items():
            if value:
                raise ValueError(f"config key {key}={value!r} cannot be honoured: {_REFUSED[key]}")
        if prediction_type not in _PREDICTIONS:
            raise ValueError(f"prediction_type must be one of {list(_PREDICTIONS)}, got {prediction_type!r}")
        if final_sigmas_type not in (None, "zero", "sigma_min"):
            raise ValueError(f"final_sigmas_type must be 'zero' or 'sigma_min', got {final_sigmas_type!r}")
        if grid_kind is not None and grid_kind not in (*KINDS, *SPACINGS):
            raise ValueError(f"grid_kind must be one of {[*KINDS, *SPACINGS]}, got {grid_kind!r}")
        if variance_type not in (None, "fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log",
                                 "learned", "learned_range"):  # fmt: skip
            raise ValueError(f"unknown variance_type {variance_type!r}")
        if time_shift_type not in ("exponential", "linear"):
            raise ValueError(f"time_shift_type must be 'exponential' or 'linear', got {time_shift_type!r}")
        flow = schedule == "flow" or use_flow_sigmas
        if schedule not in ("vp", "flow"):
            raise ValueError(f"schedule must be 'vp' or 'flow', got {schedule!r}")
        if flow and prediction_type not in ("flow_prediction", "epsilon"):
            raise ValueError(
                f"a flow-matching config predicts the velocity; prediction_type={prediction_type!r} "
                "does not fit it"
            )
        if flow and grid_kind in SPACINGS:
            raise ValueError(
                f"grid_kind={grid_kind!r} spaces the integer timesteps of a VP schedule; for flow matching "
                f"use one of {[k for k in KINDS if k != 'auto']}"
            )
        if flow:
            for key, value in (("shift", shift), ("flow_shift", flow_shift)):
                if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < math.inf:
                    raise ValueError(f"{key} must be a positive finite number, got {value!r}")
        self.flow = flow
        if final_sigmas_type is None:
            # recorded resolved: a config saved with None would hand None to diffusers'
            # schedulers (DPM-Solver, Euler, UniPC refuse it) when a user switches back
            final_sigmas_type = "zero" if flow or set_alpha_to_one else "sigma_min"
            self.register_to_config(final_sigmas_type=final_sigmas_type)
        self.method = method if method is not None else (DEFAULT_FLOW_METHOD if flow else DEFAULT_METHOD)
        get_method(self.method)  # an unknown name fails here, not at the first set_timesteps
        self.schedule: Schedule
        if flow:
            self.schedule = FlowMatching()
            self.prediction = "flow"
            self.time_scale = float(num_train_timesteps)  # model time = σ · N
            self.alphas_cumprod = None
        else:
            betas = None if trained_betas is None else np.asarray(trained_betas, dtype=np.float64)
            base = DiscreteVP.from_betas(
                beta_schedule, beta_start, beta_end, num_train_timesteps, betas=betas
            )
            ac = _rescale_zero_snr(base.alphas_cumprod) if rescale_betas_zero_snr else base.alphas_cumprod
            self.schedule = DiscreteVP(ac)
            self.prediction = _PREDICTIONS[prediction_type]
            self.time_scale = 1.0
            self.alphas_cumprod = torch.from_numpy(self.schedule.alphas_cumprod)
        self.init_noise_sigma = 1.0
        self.num_inference_steps: int | None = None
        self.timesteps = torch.empty(0, dtype=torch.int64)
        self.sigmas = torch.empty(0)
        self._sampler: Sampler | None = None
        self._ts: np.ndarray | None = None
        self._run: Generator[tuple[Any, Any], Any, Any] | None = None
        self._call = 0
        self._begin_index: int | None = None
        self._dtype: torch.dtype | None = None
        self._first = 0  # model call the current run started at
        self._x: torch.Tensor | None = None  # current model input, in the working dtype
        self._coefs: list[tuple[float, float]] = []  # x0 = A x + B out, per model call

    # -- config ------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Any = None, return_unused_kwargs: bool = False, **kwargs: Any) -> Any:
        """Build from another scheduler's config; a flow-matching config
        (``FlowMatchEulerDiscreteScheduler``: no β keys, a ``shift``) becomes a
        flow-matching scheduler with velocity prediction."""
        cfg = dict(config or {})
        flow = str(cfg.get("_class_name", "")).startswith("FlowMatch") or (
            "shift" in cfg and "beta_start" not in cfg
        )
        if flow and "schedule" not in kwargs:
            kwargs["schedule"] = "flow"
            kwargs.setdefault("prediction_type", "flow_prediction")
        return super().from_config(cfg, return_unused_kwargs=return_unused_kwargs, **kwargs)

    @classmethod
    def extract_init_dict(cls, config_dict: dict, **kwargs: Any) -> tuple:
        # diffusers drops keys that are not in the signature, also those of compatible
        # schedulers, with at most a log line; here every key the source scheduler set
        # explicitly must be seen, so that a model-side key is honoured or refused.  A
        # key the source left at its own default counts too where it is one of ours: the
        # source's default is what the model was run with (HeunDiscreteScheduler's
        # β 0.00085–0.012 is not our 1e-4–0.02; DDIM and DDPM clip x0 by default)
        init_dict, unused, hidden = super().extract_init_dict(config_dict, **kwargs)
        ours = set(inspect.signature(cls.__init__).parameters)
        defaults = set(config_dict.get("_use_default_values", [])) - ours
        merged = {k: v for k, v in config_dict.items() if k not in defaults and not k.startswith("_")}
        merged.update(kwargs)
        for key, value in merged.items():
            init_dict.setdefault(key, value)
            unused.pop(key, None)
        return init_dict, unused, hidden

    # -- grid --------------------------------------------------------------------------
    def _kind(self) -> str:
        cfg = self.config
        if cfg.grid_kind is not None:
            return cfg.grid_kind
        if cfg.get("use_karras_sigmas"):
            return "karras"
        if cfg.get("use_exponential_sigmas") or cfg.get("use_lu_lambdas"):
            return "logsnr"
        return "uniform" if self.flow else "tempered"

    def _final_zero(self) -> bool:
        return self.config.final_sigmas_type == "zero"

    def _shift(self, sigma: Any, mu: float | None) -> Any:
        cfg = self.config
        if cfg.use_dynamic_shifting and mu is not False:
            if mu is None:
                raise ValueError("use_dynamic_shifting=True: pass mu to set_timesteps (the pipeline does)")
            if not math.isfinite(mu):
                raise ValueError(f"mu must be finite, got {mu!r}")
            m = math.exp(mu) if cfg.time_shift_type == "exponential" else mu
            with np.errstate(divide="ignore"):
                return np.where(sigma > 0, m / (m + (1.0 / sigma - 1.0)), 0.0)
        s = cfg.flow_shift if cfg.use_flow_sigmas else cfg.shift
        # the shift maps [0, 1] onto itself; rounding may put σ = 1 at 1 + 2e-16
        return np.clip(s * sigma / (1.0 + (s - 1.0) * sigma), 0.0, 1.0)

    def _flow_grid(self, n: int, sigmas: Any, mu: float | None) -> np.ndarray:
        n_train = self.config.num_train_timesteps
        if sigmas is None:
            kind = self._kind()
            if kind == "uniform":
                # diffusers spaces the model times between σ = 1 and its σ_min, which
                # is already shifted (by the static shift) when it is computed
                s_min = (
                    1.0 / n_train if self.config.use_dynamic_shifting else self._shift(1.0 / n_train, False)
                )
                sigmas = np.linspace(1.0, s_min, n)
            else:
                t = grid(self.schedule, max(n - 1, 1), kind, t_start=1.0 - 1.0 / n_train, t_end=1.0 / n_train)
                sigmas = t[:n] if n > 1 else t[:1]
        ts = self._shift(np.asarray(sigmas, dtype=np.float64), mu)
        return np.concatenate([ts, [0.0]])

    def _vp_grid(self, n: int, timesteps: Any, sigmas: Any) -> np.ndarray:
        sch, zero = self.schedule, self._final_zero()
        end = [sch.t_data] if zero else [0.0]
        if timesteps is not None:
            return np.concatenate([np.asarray(timesteps, dtype=np.float64), end])
        if sigmas is not None:  # ρ = σ/α, diffusers' VP sigmas
            return np.concatenate([np.asarray(sch.t_of_rho(np.asarray(sigmas, dtype=np.float64))), end])
        kind = self._kind()
        if kind in SPACINGS:
            ts = grid(sch, n, rounding=kind, final_zero=zero)
            offset = self.config.get("steps_offset", 0) or 0
            if kind == "leading" and offset:
                ts[:-1] = np.minimum(ts[:-1] + offset, sch.t_max)
            return ts
        return grid(sch, n, kind, t_start=sch.t_max, t_end=0.0, rounding="round", final_zero=zero)

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: Any = None,
        timesteps: Any = None,
        sigmas: Any = None,
        mu: float | None = None,
    ) -> None:
        """Build the grid and precompute the sampler.

        Parameters
        ----------
        num_inference_steps : int, optional
            Number of model calls (multistep methods), ``1 ≤ n ≤ num_train_timesteps``.
        device : optional
            Device of ``timesteps``.
        timesteps : sequence, optional
            Explicit decreasing model times (training timesteps; for flow matching
            ``σ · num_train_timesteps``), one per model call.
        sigmas : sequence, optional
            Explicit decreasing noise levels, one per model call: diffusers' VP
            ``sigmas`` (σ/α), or flow-matching σ before the shift.
        mu : float, optional
            Dynamic-shift parameter (flow matching with ``use_dynamic_shifting``).
        """
        if device is not None:
            device = check_device(device)
        given = timesteps if timesteps is not None else sigmas
        if given is not None:
            if timesteps is not None and sigmas is not None:
                raise ValueError("pass timesteps or sigmas, not both")
            given = _explicit_grid(given, "timesteps" if timesteps is not None else "sigmas")
            timesteps, sigmas = (given, None) if timesteps is not None else (None, given)
            count = len(given)
            if num_inference_steps is not None and num_inference_steps != count:
                raise ValueError(
                    f"num_inference_steps={num_inference_steps} but {count} timesteps/sigmas were given"
                )
            num_inference_steps = count
        n = num_inference_steps
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"num_inference_steps must be a positive integer, got {n!r}")
        if n > self.config.num_train_timesteps:
            raise ValueError(
                f"num_inference_steps={n} cannot be larger than num_train_timesteps="
                f"{self.config.num_train_timesteps}, the timesteps the model was trained on"
            )
        try:
            if self.flow:
                ts = self._flow_grid(
                    n, sigmas if timesteps is None else np.asarray(timesteps) / self.time_scale, mu
                )
            else:
                ts = self._vp_grid(n, timesteps, sigmas)
            self._sampler = Sampler(self.schedule, ts, self.method, self.prediction)
        except ValueError as exc:
            # the messages name the grid's and sampler's own arguments: say which of the
            # caller's made them (the values given, or the config on our grid)
            if given is None:
                zero = "zero" if self._final_zero() else "sigma_min"
                source = f"method={self.method!r}, grid_kind={self._kind()!r}, final_sigmas_type={zero!r}"
            else:
                source = f"{'timesteps' if timesteps is not None else 'sigmas'}={given.tolist()}"
            raise ValueError(f"{source}: {exc}") from None
        self._ts = self._sampler.ts
        times = self._sampler.model_times[:, 0] * self.time_scale
        integral = not self.flow and np.all(times == np.round(times))
        self.timesteps = torch.as_tensor(
            times.astype(np.int64) if integral else times.astype(np.float32), device=device
        )
        self.sigmas = torch.as_tensor(
            np.asarray(self._ts if self.flow else self.schedule.rho(self._ts), dtype=np.float32)
        )
        self.num_inference_steps = len(self._ts) - 1
        self._run = None
        self._call = 0
        self._begin_index = None

    # -- stepping ----------------------------------------------------------------------
    def scale_model_input(self, sample: torch.Tensor, timestep: Any = None) -> torch.Tensor:
        """Identity: VP and flow models take the state as it is."""
        return sample

    @property
    def begin_index(self) -> int | None:
        return self._begin_index

    def set_begin_index(self, begin_index: int = 0) -> None:
        """Start at model call ``begin_index`` (img2img/inpainting pipelines call this)."""
        self._begin_index = int(begin_index)

    def _start(self, timestep: Any, sample: torch.Tensor) -> None:
        """Start the sampler at the model call that ``timestep`` (or the begin index)
        names; a later start runs a fresh sampler on the rest of the grid."""
        times = self.timesteps.double().cpu()
        j = self._begin_index
        if j is None:
            hits = torch.nonzero(times == float(timestep))
            if len(hits) == 0:
                raise ValueError(
                    f"step() got timestep {float(timestep):g}, which is not in scheduler.timesteps; "
                    "iterate over scheduler.timesteps in order (set_timesteps restarts)"
                )
            j = int(hits[0, 0])
        if not 0 <= j < len(times):
            raise ValueError(f"begin index {j} is outside the {len(times)} model calls")
        sampler, ts = self._sampler, self._ts
        if sampler is None or ts is None:
            raise RuntimeError("call set_timesteps before step")
        if j > 0:
            starts = np.cumsum([0, *sampler.stages_per_step])[:-1]
            if j not in starts:
                raise ValueError(
                    f"model call {j} is an inner stage of a {self.method} step; an img2img start "
                    "must be at the start of a step (use a multistep method)"
                )
            step = int(np.nonzero(starts == j)[0][0])
            sampler = Sampler(self.schedule, ts[step:], self.method, self.prediction)
        self._dtype = sample.dtype
        run = self._run = sampler.iterate(sample.to(self._work_dtype()), check_finite=False)
        if self.config.clip_sample or self.config.thresholding:  # host maps only where used
            self._coefs = [
                conversion_at(self.schedule, self.prediction, "x0", float(t))
                for t in sampler.model_times[:, 0]
            ]
        next(run)  # the first model input is ``sample`` itself
        self._call = j

    def _postprocess(self, out: torch.Tensor, x: torch.Tensor, k: int) -> torch.Tensor:
        """Clip or threshold the x0 the output implies (``x0 = A x + B out``), and
        return the output that gives the processed x0."""
        cfg = self.config
        a_coef, b_coef = self._coefs[k]
        x0 = a_coef * x + b_coef * out
        if cfg.thresholding:
            flat = x0.reshape(x0.shape[0], -1).abs()  # the working dtype: float32 or float64
            s = torch.quantile(flat, cfg.dynamic_thresholding_ratio, dim=1)
            s = s.clamp(min=1.0, max=cfg.sample_max_value).to(x0.dtype).reshape(-1, *([1] * (x0.dim() - 1)))
            x0 = torch.maximum(torch.minimum(x0, s), -s) / s
        elif cfg.clip_sample:
            x0 = x0.clamp(-cfg.clip_sample_range, cfg.clip_sample_range)
        return (x0 - a_coef * x) / b_coef

    def step(
        self,
        model_output: torch.Tensor,
        timestep: Any,
        sample: torch.Tensor,
        return_dict: bool = True,
        eta: float = 0.0,
        **unused: Any,
    ) -> SchedulerOutput | tuple:
        """Take the model output at ``timestep`` and return the next model input (or,
        after the last call, the final sample) as ``prev_sample``.

        Pipelines pass extra keywords (``generator``, ``use_clipped_model_output``):
        they are accepted and ignored, because the probability-flow ODE is
        deterministic; ``eta`` other than 0 (stochastic DDIM) is refused.
        """
        if eta:
            raise ValueError(f"ExpintScheduler integrates the probability-flow ODE (eta = 0); got eta={eta}")
        if self._sampler is None:
            raise ValueError("call set_timesteps(num_inference_steps) before step()")
        if self._run is None:
            if self._call >= len(self.timesteps):
                raise ValueError("all timesteps are used; call set_timesteps again to sample anew")
            self._start(timestep, sample)
            self._first = self._call
            self._x = sample.to(self._work_dtype())
        run, x = self._run, self._x
        if run is None or x is None:  # pragma: no cover - set together by _start
            raise RuntimeError("the sampler did not start")
        expected = self.timesteps[self._call]
        if float(timestep) != float(expected):
            raise ValueError(
                f"step() got timestep {float(timestep):g} but the next model call is at {float(expected):g}; "
                "iterate over scheduler.timesteps in order (set_timesteps restarts)"
            )
        if self.config.variance_type in ("learned", "learned_range") and model_output.shape != sample.shape:
            model_output = model_output[:, : sample.shape[1]]
        if sample is not x and sample.data_ptr() != x.data_ptr():
            # continue from the state the pipeline passes, which the model saw: it may be
            # a float16 copy of ours, or blended with known pixels (inpainting)
            x.copy_(sample)
        out = model_output.to(torch.float32) if model_output.dtype != self._work_dtype() else model_output
        if self.config.clip_sample or self.config.thresholding:
            out = self._postprocess(out, x, self._call - self._first)
        self._call += 1
        try:
            nxt, _ = run.send(out)
            self._x = nxt
        except StopIteration as done:
            nxt = done.value
            self._run = None
        prev = nxt.to(self._dtype)
        return SchedulerOutput(prev_sample=prev) if return_dict else (prev,)

    def _work_dtype(self) -> torch.dtype:
        dtype = self._dtype if self._dtype is not None else torch.float32
        return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype

    # -- forward process ---------------------------------------------------------------
    def add_noise(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.Tensor:
        """``α_t x0 + σ_t ε`` at model times ``timesteps`` (training timesteps, or
        ``σ · num_train_timesteps`` for flow matching)."""
        t = torch.as_tensor(timesteps)
        if t.device.type == "cpu":  # (on an accelerator this check would wait for the device)
            self.schedule.check_times(t.double().numpy() / self.time_scale, "timesteps")
        t = t.to(device=original_samples.device, dtype=torch.float64) / self.time_scale
        shape = (-1,) + (1,) * (original_samples.dim() - 1)
        a = self.schedule.alpha(t).to(original_samples.dtype).reshape(shape)
        s = self.schedule.sigma(t).to(original_samples.dtype).reshape(shape)
        return a * original_samples + s * noise

    def scale_noise(self, sample: torch.Tensor, timestep: Any, noise: torch.Tensor) -> torch.Tensor:
        """Flow-matching pipelines' name for `add_noise` (``(1 − σ) x0 + σ ε``)."""
        t = torch.as_tensor(timestep).reshape(-1)
        if t.numel() == 1:
            t = t.expand(sample.shape[0])
        return self.add_noise(sample, noise, t)

    def __len__(self) -> int:
        return self.config.num_train_timesteps
