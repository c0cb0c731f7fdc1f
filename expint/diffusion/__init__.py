"""Diffusion-model sampling with exponential integrators (torch).

The probability-flow ODE of a diffusion model is semilinear with a scalar linear part;
every sampler here is an exponential integrator of it, with all coefficients computed
once per grid in float64.  See ``docs/diffusion.md``.
"""

from . import integrations, metrics, pretrained, toy
from .grids import check_grid, diffusers_timesteps, grid
from .methods import (
    DEFAULT_FLOW_METHOD,
    DEFAULT_METHOD,
    IPNDM,
    METHODS,
    ExponentialAdams,
    Method,
    RhoRK,
    get_method,
)
from .models import PREDICTIONS
from .optimize import optimize_grid
from .sampler import Sampler, prior_flow, sample
from .schedules import EDM, VE, DiscreteVP, FlowMatching, Schedule, VPCosine, VPLinear

__all__ = [
    "DEFAULT_FLOW_METHOD",
    "DEFAULT_METHOD",
    "EDM",
    "IPNDM",
    "METHODS",
    "PREDICTIONS",
    "VE",
    "DiscreteVP",
    "ExponentialAdams",
    "FlowMatching",
    "Method",
    "RhoRK",
    "Sampler",
    "Schedule",
    "VPCosine",
    "VPLinear",
    "check_grid",
    "diffusers_timesteps",
    "get_method",
    "grid",
    "integrations",
    "metrics",
    "optimize_grid",
    "pretrained",
    "prior_flow",
    "sample",
    "toy",
]
