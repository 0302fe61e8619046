"""Models hold posteriors; they never choose actions."""

from .base import Model
from .independent import IndependentGaussianModel
from .joint import JointGaussianModel
from .mixed_effect import MixedEffectModel

__all__ = ["IndependentGaussianModel", "JointGaussianModel", "MixedEffectModel", "Model"]
