"""Models hold posteriors; they never choose actions."""

from .base import Model
from .batched import BatchedLinearGaussianModel
from .diffusion import DiffusionModel
from .independent import IndependentGaussianModel
from .joint import JointGaussianModel
from .mixed_effect import MixedEffectModel

__all__ = [
    "BatchedLinearGaussianModel",
    "DiffusionModel",
    "IndependentGaussianModel",
    "JointGaussianModel",
    "MixedEffectModel",
    "Model",
]
