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
from .datasets import load_movielens
from .experts import EXP4, EpsilonGreedyExperts, GeneralizedTS
from .karmed import KLUCB, UCB1, BernoulliTS, GaussianTS
from .models.experts import LogisticExperts, TableExperts
from .persistence import CorruptFileError, load
from .priors import MixedEffectPrior
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
    "ContextualBandit",
    "CorruptFileError",
    "EpsilonGreedyExperts",
    "FactoredMeTS",
    "GaussianTS",
    "GeneralizedTS",
    "HierTS",
    "JointTS",
    "LinTS",
    "LinUCB",
    "LogisticExperts",
    "MeTS",
    "MixedEffectPrior",
    "TableExperts",
    "ValidationError",
    "factorize_ratings",
    "fit_mixed_effect_prior",
    "load",
    "load_movielens",
    "mixing_from_labels",
    "prior_from_labels",
]
