"""Drop-in adapters for other diffusion libraries."""

from .kdiffusion import sample_expint

__all__ = ["sample_expint"]
