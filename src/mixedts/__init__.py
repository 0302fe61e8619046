"""mixedts: Thompson sampling for contextual bandits whose actions share structure."""

from ._validation import ValidationError
from .datasets import load_movielens
from .models.experts import LogisticExperts, TableExperts
from .persistence import CorruptFileError, load
from .policies import (
    EXP4,
    GLMTS,
    KLUCB,
    UCB1,
    UCBGLM,
    BernoulliTS,
    ContextFreeBandit,
    ContextualBandit,
    DiffusionTS,
    EpsilonGreedyExperts,
    FactoredMeTS,
    GaussianTS,
    GeneralizedTS,
    HierTS,
    JointTS,
    LinTS,
    LinUCB,
    MeTS,
    register,
)
from .priors import MixedEffectPrior
from .priors_diffusion import DiffusionPrior, ReLULink
from .priors_linear import LinearEffectPrior
from .structure import (
    factorize_ratings,
    fit_mixed_effect_prior,
    mixing_from_labels,
    prior_from_labels,
)

__version__ = "0.1.0"

__all__ = [
    "EXP4",
    "GLMTS",
    "KLUCB",
    "UCB1",
    "UCBGLM",
    "BernoulliTS",
    "ContextFreeBandit",
    "ContextualBandit",
    "CorruptFileError",
    "DiffusionPrior",
    "DiffusionTS",
    "EpsilonGreedyExperts",
    "FactoredMeTS",
    "GaussianTS",
    "GeneralizedTS",
    "HierTS",
    "JointTS",
    "LinTS",
    "LinUCB",
    "LinearEffectPrior",
    "LogisticExperts",
    "MeTS",
    "MixedEffectPrior",
    "ReLULink",
    "TableExperts",
    "ValidationError",
    "factorize_ratings",
    "fit_mixed_effect_prior",
    "load",
    "load_movielens",
    "mixing_from_labels",
    "prior_from_labels",
    "register",
]
