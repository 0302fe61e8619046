"""mixedts: Thompson sampling for contextual bandits whose actions share structure."""

from ._validation import ValidationError
from .algorithms import (
    GLMTS,
    UCBGLM,
    ContextualBandit,
    FactoredMeTS,
    HierTS,
    JointTS,
    LinTS,
    LinUCB,
    MeTS,
)
from .persistence import CorruptFileError, load
from .priors import MixedEffectPrior

__version__ = "0.1.0"

__all__ = [
    "GLMTS",
    "UCBGLM",
    "ContextualBandit",
    "CorruptFileError",
    "FactoredMeTS",
    "HierTS",
    "JointTS",
    "LinTS",
    "LinUCB",
    "MeTS",
    "MixedEffectPrior",
    "ValidationError",
    "load",
]
