"""A diffusers scheduler that runs any expint method.

``ExpintScheduler`` follows diffusers' scheduler interface (``SchedulerMixin``,
``ConfigMixin``): build it ``from_config`` of a pipeline's scheduler, call
``set_timesteps(n)``, then the pipeline's loop ``out = unet(x, t); x =
scheduler.step(out, t, x).prev_sample`` samples with the chosen method.  Internally it
is an :class:`expint.diffusion.Sampler` driven one model call at a time
(:meth:`Sampler.iterate`), so every coefficient is precomputed and a step does no host
work.  diffusers is imported only when this module is.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import KarrasDiffusionSchedulers, SchedulerMixin, SchedulerOutput

from ..grids import grid
from ..sampler import Sampler
from ..schedules import DiscreteVP

_PREDICTIONS = {"epsilon": "eps", "sample": "x0", "v_prediction": "v"}


class ExpintScheduler(SchedulerMixin, ConfigMixin):
    """diffusers scheduler running an expint sampling method.

    Parameters
    ----------
    num_train_timesteps, beta_start, beta_end, beta_schedule, trained_betas
        The training noise schedule (as in every diffusers scheduler).
    prediction_type : {"epsilon", "sample", "v_prediction"}
        What the network predicts.
    method : str
        Any expint method name (default ``"dpmpp3m_pc"``).
    grid_kind : str
        expint grid kind: ``"logsnr"``, ``"quadratic"``, ``"karras"``, ``"uniform"``.
    final_sigmas_type : {"zero", "sigma_min"}
        End exactly at σ = 0 (clean data) or at the first training timestep.
    """

    _compatibles: ClassVar[list[str]] = [e.name for e in KarrasDiffusionSchedulers]
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
        method: str = "dpmpp3m_pc",
        grid_kind: str = "logsnr",
        final_sigmas_type: str = "zero",
    ):
        if prediction_type not in _PREDICTIONS:
            raise ValueError(f"prediction_type must be one of {list(_PREDICTIONS)}, got {prediction_type!r}")
        if final_sigmas_type not in ("zero", "sigma_min"):
            raise ValueError(f"final_sigmas_type must be 'zero' or 'sigma_min', got {final_sigmas_type!r}")
        betas = None if trained_betas is None else np.asarray(trained_betas, dtype=np.float64)
        self.schedule = DiscreteVP.from_betas(
            beta_schedule, beta_start, beta_end, num_train_timesteps, betas=betas
        )
        self.alphas_cumprod = torch.from_numpy(self.schedule.alphas_cumprod)
        self.init_noise_sigma = 1.0
        self.num_inference_steps: int | None = None
        self.timesteps = torch.empty(0, dtype=torch.int64)
        self.sigmas = torch.empty(0)
        self._sampler: Sampler | None = None
        self._run = None
        self._call = 0
        self._begin_index = 0

    def set_timesteps(self, num_inference_steps: int, device: Any = None) -> None:
        """Build the grid (rounded to integer training timesteps, duplicates dropped)
        and precompute the sampler."""
        sch = self.schedule
        ts = grid(
            sch, num_inference_steps, self.config.grid_kind, t_start=sch.t_max, t_end=0.0, rounding="round"
        )
        if self.config.final_sigmas_type == "zero":
            ts = np.concatenate([ts[:-1], [sch.t_data]]) if len(ts) > 2 else np.array([ts[0], sch.t_data])
        self._sampler = Sampler(sch, ts, self.config.method, _PREDICTIONS[self.config.prediction_type])
        times = self._sampler.model_times[:, 0]
        integral = np.all(times == np.round(times))
        self.timesteps = torch.as_tensor(
            times.astype(np.int64) if integral else times.astype(np.float32), device=device
        )
        self.sigmas = torch.as_tensor(np.asarray(sch.rho(ts), dtype=np.float32))
        self.num_inference_steps = len(ts) - 1
        self._run = None
        self._call = 0

    def scale_model_input(self, sample: torch.Tensor, timestep: Any = None) -> torch.Tensor:
        """Identity: VP models take the state as it is."""
        return sample

    def set_begin_index(self, begin_index: int = 0) -> None:
        self._begin_index = begin_index

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
        if self._call >= len(self.timesteps):
            raise ValueError("all timesteps are used; call set_timesteps again to sample anew")
        expected = self.timesteps[self._call]
        if float(timestep) != float(expected):
            raise ValueError(
                f"step() got timestep {float(timestep):g} but the next model call is at {float(expected):g}; "
                "iterate over scheduler.timesteps in order (set_timesteps restarts)"
            )
        if self._run is None:
            self._run = self._sampler.iterate(sample, check_finite=False)
            next(self._run)  # the first model input is ``sample`` itself
        self._call += 1
        try:
            nxt, _ = self._run.send(model_output)
        except StopIteration as done:
            nxt = done.value
            self._run = None
        return SchedulerOutput(prev_sample=nxt) if return_dict else (nxt,)

    def add_noise(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.Tensor:
        """``α_t x0 + σ_t ε`` at training timesteps ``timesteps``."""
        t = timesteps.to(device=original_samples.device, dtype=torch.float64)
        shape = (-1,) + (1,) * (original_samples.dim() - 1)
        a = self.schedule.alpha(t).to(original_samples.dtype).reshape(shape)
        s = self.schedule.sigma(t).to(original_samples.dtype).reshape(shape)
        return a * original_samples + s * noise

    def __len__(self) -> int:
        return self.config.num_train_timesteps
