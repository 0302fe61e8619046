"""The objects users hold: a model, a decision rule and a generator, one family a file.

Every policy class is registered once, beside its class (``@register``): see
:mod:`mixedts.policies.registry`.
"""

from .base import ContextFreeBandit, ContextualBandit
from .diffusion import DiffusionTS
from .experts import EXP4, EpsilonGreedyExperts, GeneralizedTS
from .glm import GLMTS, UCBGLM
from .karmed import KLUCB, UCB1, BernoulliTS, GaussianTS
from .linear import LinTS, LinUCB
from .mixed_effect import FactoredMeTS, HierTS, JointTS, MeTS
from .registry import POLICIES, ConfigError, register

__all__ = [
    "EXP4",
    "GLMTS",
    "KLUCB",
    "POLICIES",
    "UCB1",
    "UCBGLM",
    "BernoulliTS",
    "ConfigError",
    "ContextFreeBandit",
    "ContextualBandit",
    "DiffusionTS",
    "EpsilonGreedyExperts",
    "FactoredMeTS",
    "GaussianTS",
    "GeneralizedTS",
    "HierTS",
    "JointTS",
    "LinTS",
    "LinUCB",
    "MeTS",
    "register",
]
