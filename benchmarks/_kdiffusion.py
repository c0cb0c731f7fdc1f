"""Import k-diffusion's sampling module without the package's heavy dependencies.

``k_diffusion/__init__.py`` imports its training, evaluation and model code (clip,
kornia, wandb, ...); the samplers need only torch, scipy, torchdiffeq, tqdm and one
helper of ``k_diffusion.utils``.  Install with ``pip install --no-deps k-diffusion``;
torchsde (used by the SDE samplers only) is stubbed when it is missing.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path


def load_sampling():
    """k-diffusion's ``sampling`` module, or None when k-diffusion is not installed."""
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    if "torchsde" not in sys.modules and importlib.util.find_spec("torchsde") is None:
        sys.modules["torchsde"] = types.ModuleType("torchsde")
    pkg = types.ModuleType("k_diffusion")
    pkg.__path__ = [str(root)]
    utils = types.ModuleType("k_diffusion.utils")

    def append_dims(x, target_dims):
        return x[(...,) + (None,) * (target_dims - x.ndim)]

    utils.append_dims = append_dims
    pkg.utils = utils
    sys.modules.setdefault("k_diffusion", pkg)
    sys.modules.setdefault("k_diffusion.utils", utils)
    loader = importlib.util.spec_from_file_location("k_diffusion.sampling", root / "sampling.py")
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module
